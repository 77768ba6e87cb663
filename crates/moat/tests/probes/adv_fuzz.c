/* Attack: random system calls. From a seed, makes CALLS random syscalls
 * (numbers 0..450, x32 numbers and huge ones) with arguments drawn from
 * pools of valid and invalid fds, boundary pointers (NULL, 1, the last byte
 * of a page, a valid buffer and its last bytes, the end of a mapping, the
 * kernel half, the vsyscall page, the stub page at 0x7ffffff00000, a
 * non-canonical address), sizes (0, 1, 4096, huge, negative) and random
 * flags. Calls run in batches, each in a forked child (its fds 0-2 are
 * /dev/null, its cwd a fresh directory) that a watchdog kills if it blocks,
 * so a batch that kills itself or hangs is only counted. Calls that would
 * just end or freeze the fuzzer (exit, fork, exec, signals to others,
 * sleeps and waits without a bound, arch_prctl, limits on other
 * processes) are not made.
 * Usage: adv_fuzz SEED CALLS [BATCH [trace]]: with BATCH, only that batch
 * runs; with "trace", each call is printed on stderr before it is made (to
 * find the one that breaks the kernel). Run it only under moat: natively
 * it would make random calls on the host.
 *
 * Expected: the app kernel survives anything: the fuzzer finishes and
 * prints its summary. Each batch is announced before it starts and its end
 * reported if it died or blocked, so that the last line names the batch to
 * reproduce. */
#include "adv_common.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#define BATCH 250
#define WATCHDOG_MS 3000
#define SCRATCH (64 << 10)

static uint64_t rng;

/* splitmix64: the same stream from the same seed everywhere. */
static uint64_t next(void) {
    uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t pick(const uint64_t *pool, int n) {
    return pool[next() % n];
}

static int denied(long nr) {
    static const int deny[] = {
        15,  /* rt_sigreturn */
        34,  /* pause */
        35,  /* nanosleep */
        56,  /* clone */
        57,  /* fork */
        58,  /* vfork */
        59,  /* execve */
        60,  /* exit */
        62,  /* kill */
        7,   /* poll */
        23,  /* select */
        128, /* rt_sigtimedwait */
        129, /* rt_sigqueueinfo */
        130, /* rt_sigsuspend */
        158, /* arch_prctl: the fuzzer's own TLS */
        169, /* reboot */
        200, /* tkill */
        202, /* futex */
        230, /* clock_nanosleep */
        231, /* exit_group */
        232, /* epoll_wait */
        234, /* tgkill */
        270, /* pselect6 */
        271, /* ppoll */
        281, /* epoll_pwait */
        297, /* rt_tgsigqueueinfo */
        302, /* prlimit64: could limit the fuzzer's own parent */
        322, /* execveat */
        424, /* pidfd_send_signal */
        435, /* clone3 */
        441, /* epoll_pwait2 */
    };
    for (unsigned i = 0; i < sizeof deny / sizeof deny[0]; i++)
        if (deny[i] == nr)
            return 1;
    return 0;
}

static long raw_syscall(long nr, uint64_t a[6]) {
    register long r10 __asm__("r10") = a[3];
    register long r8 __asm__("r8") = a[4];
    register long r9 __asm__("r9") = a[5];
    long r;
    __asm__ volatile("syscall"
                     : "=a"(r)
                     : "a"(nr), "D"(a[0]), "S"(a[1]), "d"(a[2]), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return r;
}

static uint64_t fds[16];
static int nfds;
static uint64_t ptrs[16];
static int nptrs;

static uint64_t random_number(void) {
    uint64_t r = next() % 100;
    if (r < 85)
        return next() % 451;
    if (r < 92)
        return 0x40000000 + next() % 600; /* x32 */
    static const uint64_t huge[] = {451, 512, 1000, 4096, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff, ~0ULL};
    return pick(huge, sizeof huge / sizeof huge[0]);
}

static uint64_t random_arg(void) {
    static const uint64_t sizes[] = {0, 1, 2, 8, 16, 64, 4096, 65536, 0x7fffffff, 0x80000000, ~0ULL, ~0ULL - 4095,
                                     1ULL << 40, (uint64_t)-2};
    switch (next() % 6) {
    case 0:
        return pick(fds, nfds);
    case 1:
    case 2:
        return pick(ptrs, nptrs);
    case 3:
        return pick(sizes, sizeof sizes / sizeof sizes[0]);
    case 4:
        return next() & next() & 0xffffffff; /* flags: a few random bits */
    default:
        return next() % 4 ? next() % 64 : next();
    }
}

/* Sets up the pools in a fresh child. */
static void prepare(int batch) {
    int null = open("/dev/null", O_RDWR);
    for (int fd = 0; fd < 3; fd++)
        dup2(null, fd);
    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/fuzz-%d", batch);
    mkdir(dir, 0700);
    if (chdir(dir) != 0)
        _exit(90);
    nfds = 0;
    static const uint64_t bad[] = {(uint64_t)-1, 0, 1, 2, 1023, 1 << 20, (uint64_t)-100, 0x7fffffff};
    for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++)
        fds[nfds++] = bad[i];
    int p[2], s[2];
    if (pipe2(p, O_NONBLOCK) == 0) {
        fds[nfds++] = p[0];
        fds[nfds++] = p[1];
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, s) == 0)
        fds[nfds++] = s[0];
    fds[nfds++] = eventfd(0, EFD_NONBLOCK);
    fds[nfds++] = open("file", O_RDWR | O_CREAT | O_NONBLOCK, 0600);
    fds[nfds++] = open(".", O_RDONLY | O_DIRECTORY);
    fds[nfds++] = open("/proc/self/status", O_RDONLY);

    /* A scratch buffer with a guard page after it; its bytes are random,
     * with some short names in it (NUL-terminated). */
    char *buf = mmap(NULL, SCRATCH + 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(buf + SCRATCH, 4096);
    for (int i = 0; i < SCRATCH; i += 8) {
        uint64_t v = next();
        memcpy(buf + i, &v, 8);
    }
    strcpy(buf, "name");
    strcpy(buf + 256, "/tmp");
    strcpy(buf + 512, "/proc/self/maps");
    nptrs = 0;
    static const uint64_t odd[] = {0, 1, 0xfff, 0xffff888000000000ULL, 0xffffffffff600000ULL, 0x7ffffff00000ULL,
                                   0x7ffffff01000ULL, 0x8000000000000000ULL};
    for (unsigned i = 0; i < sizeof odd / sizeof odd[0]; i++)
        ptrs[nptrs++] = odd[i];
    ptrs[nptrs++] = (uint64_t)buf;
    ptrs[nptrs++] = (uint64_t)buf + 256;
    ptrs[nptrs++] = (uint64_t)buf + 512;
    ptrs[nptrs++] = (uint64_t)buf + SCRATCH - 1;
    ptrs[nptrs++] = (uint64_t)buf + SCRATCH - 8;
    ptrs[nptrs++] = (uint64_t)buf + SCRATCH;
}

static int trace_fd = -1;

static void run_batch(int batch, long calls) {
    prepare(batch);
    for (long i = 0; i < calls; i++) {
        long nr = (long)random_number();
        uint64_t a[6];
        for (int k = 0; k < 6; k++)
            a[k] = random_arg();
        if (denied(nr))
            continue;
        if (trace_fd >= 0) {
            char line[200];
            int n = snprintf(line, sizeof line, "call %ld: %#lx(%#lx, %#lx, %#lx, %#lx, %#lx, %#lx)\n", i, nr,
                             (unsigned long)a[0], (unsigned long)a[1], (unsigned long)a[2], (unsigned long)a[3],
                             (unsigned long)a[4], (unsigned long)a[5]);
            if (write(trace_fd, line, n) != n)
                trace_fd = -1;
        }
        raw_syscall(nr, a);
    }
    _exit(0);
}

static long ms_since(struct timespec *t0) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        say("usage: adv_fuzz SEED CALLS\n");
        return 2;
    }
    uint64_t seed = strtoull(argv[1], NULL, 0);
    long total = atol(argv[2]);
    int batches = (int)((total + BATCH - 1) / BATCH);
    int only = argc > 3 ? atoi(argv[3]) : -1;
    if (argc > 4 && strcmp(argv[4], "trace") == 0)
        trace_fd = dup2(2, 900);
    int died = 0, hung = 0;
    for (int b = 0; b < batches; b++) {
        if (only >= 0 && b != only)
            continue;
        /* Each batch's stream depends only on the seed and its number. */
        rng = seed * 1000003 + (uint64_t)b;
        long calls = total - (long)b * BATCH < BATCH ? total - (long)b * BATCH : BATCH;
        pid_t pid = fork();
        if (pid < 0) {
            say("fork failed: %s\n", strerrorname_np(errno));
            return 1;
        }
        if (pid == 0)
            run_batch(b, calls);
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        say("seed %llu batch %d: started\n", (unsigned long long)seed, b);
        int st = 0;
        pid_t r;
        while ((r = waitpid(pid, &st, WNOHANG)) == 0 && ms_since(&t0) < WATCHDOG_MS)
            usleep(5000);
        if (r == 0) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            hung++;
            say("seed %llu batch %d: blocked, killed by the watchdog\n", (unsigned long long)seed, b);
        } else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            died++;
            say("seed %llu batch %d: ended by %s %d\n", (unsigned long long)seed, b,
                WIFEXITED(st) ? "exit status" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
        }
    }
    say("fuzzing done: seed %llu, %ld calls in %d batches, %d ended early, %d blocked\n", (unsigned long long)seed,
        total, batches, died, hung);
    return 0;
}
