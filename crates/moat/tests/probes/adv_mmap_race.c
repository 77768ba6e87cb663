/* Attack: race mmap and munmap between threads while another process reuses
 * the memory. Two mapper threads each map 64 KiB, check it is zero, fill
 * it with the parent's token, publish it, then unpublish and unmap it; a
 * reader thread keeps reading whatever region is published (a read may
 * fault once the region is gone: that is caught); a forked child keeps
 * mapping fresh pages, checking they are zero and filling them with its own
 * token. Usage: adv_mmap_race ROUNDS (per mapper thread).
 *
 * Expected (Linux's guarantees): memory mmap returned never faults ("lost")
 * and is always zero ("dirty"); memory a sibling unmapped faults or holds
 * the parent's own data, never the child's token ("stale": a host mapping
 * the kernel forgot, onto memory now the child's). */
#include "adv_common.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <fcntl.h>

#define REGION (64 << 10)
#define PAGE 4096
#define PARENT_TOKEN 0x5041524e54544f4bULL
#define CHILD_TOKEN 0x4348494c44544f4bULL

static long rounds;
static _Atomic(uint64_t *) published[2];
static atomic_long lost, dirty, stale, reader_done;
static __thread sigjmp_buf recover;

static void on_segv(int sig) {
    (void)sig;
    siglongjmp(recover, 1);
}

static void *mapper(void *arg) {
    long slot = (long)arg;
    for (volatile long i = 0; i < rounds; i++) {
        uint64_t *p = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            say("mmap failed\n");
            exit(2);
        }
        if (sigsetjmp(recover, 0) == 0) {
            for (size_t w = 0; w < REGION / 8; w += PAGE / 8 / 4) {
                if (p[w] != 0)
                    atomic_fetch_add(&dirty, 1);
                p[w] = PARENT_TOKEN;
            }
        } else {
            atomic_fetch_add(&lost, 1);
        }
        atomic_store(&published[slot], p);
        sched_yield();
        atomic_store(&published[slot], NULL);
        munmap(p, REGION);
    }
    return NULL;
}

static void *reader(void *arg) {
    (void)arg;
    for (volatile long n = 0; !atomic_load(&reader_done); n++) {
        volatile uint64_t *p = atomic_load(&published[n & 1]);
        if (!p)
            continue;
        if (sigsetjmp(recover, 0) == 0) {
            for (size_t w = 0; w < REGION / 8; w += PAGE / 8)
                if (p[w] == CHILD_TOKEN)
                    atomic_fetch_add(&stale, 1);
        }
    }
    return NULL;
}

/* The other process: fresh pages, one mapping each (many allocations, so
 * that freed memory is soon its), checked and filled with its token, until
 * the parent closes the pipe. Exits with how much dirty memory it saw. */
static void child(int stop) {
    long seen = 0;
    enum { PAGES = REGION / PAGE };
    for (long i = 0;; i++) {
        uint64_t *p[PAGES];
        for (int k = 0; k < PAGES; k++) {
            p[k] = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (p[k] == MAP_FAILED)
                _exit(100);
            for (size_t w = 0; w < PAGE / 8; w++) {
                seen += p[k][w] != 0;
                p[k][w] = CHILD_TOKEN;
            }
        }
        for (int k = 0; k < PAGES; k++)
            munmap(p[k], PAGE);
        char c;
        if (read(stop, &c, 1) == 0)
            _exit(seen > 99 ? 99 : (int)seen);
    }
}

int main(int argc, char **argv) {
    rounds = argc > 1 ? atol(argv[1]) : 1000;
    int pipefd[2];
    if (pipe2(pipefd, O_NONBLOCK) != 0)
        return 2;
    pid_t pid = fork();
    if (pid == 0) {
        close(pipefd[1]);
        child(pipefd[0]);
    }
    close(pipefd[0]);
    struct sigaction sa = {.sa_handler = on_segv, .sa_flags = SA_NODEFER};
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
    pthread_t m[2], r;
    pthread_create(&r, NULL, reader, NULL);
    for (long i = 0; i < 2; i++)
        pthread_create(&m[i], NULL, mapper, (void *)i);
    for (int i = 0; i < 2; i++)
        pthread_join(m[i], NULL);
    atomic_store(&reader_done, 1);
    pthread_join(r, NULL);
    close(pipefd[1]);
    int st;
    waitpid(pid, &st, 0);
    long child_dirty = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    say("lost mappings: %ld\n", atomic_load(&lost));
    say("dirty fresh memory: parent %ld, child %ld\n", atomic_load(&dirty), child_dirty);
    say("stale reads of the child's token: %ld\n", atomic_load(&stale));
    return atomic_load(&lost) || atomic_load(&dirty) || child_dirty || atomic_load(&stale);
}
