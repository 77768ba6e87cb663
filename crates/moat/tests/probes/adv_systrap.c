/* Attacks on the systrap platform's hand-off: app threads there run
 * untraced, and the page their handler shares with the Sentry (the
 * thread's slot: a context page and the alternate stack the kernel writes
 * signal frames to, at 0x7fffbff00000 + 64 KiB per slot) is writable by app
 * code. Each attack runs in a forked child; the parent reports how it
 * ended.
 *
 * block: a forged rt_sigreturn, made at the stub's own sigreturn site
 * (found by scanning the stub's code page), that blocks every host signal,
 * then a spin: the Sentry's kicks never arrive. A SIGKILL from the parent
 * must still end the child (the Sentry gives up on the kick and kills its
 * stub).
 *
 * scribble: a second thread writes garbage over the first thread's slot
 * (context words and alternate stack, where its frames are) while the first
 * makes system calls. The child may die or run on; the Sentry must do
 * neither crash nor hang, and the parent ends the child after a while.
 *
 * churn: the thread writes its own state word over and over, never a
 * value that means "posted" (the Sentry, waiting for it, sees the word
 * change without end). A SIGKILL from the parent must still end it: the
 * Sentry keeps checking its kick and the process, and does not spin.
 *
 * Under ptrace there are no slots (the app's own stack lies where they
 * would), so the test says which platform it runs on: `scribble ptrace`
 * says so and does nothing. */
#include "adv_common.h"

#include <pthread.h>
#include <setjmp.h>
#include <sys/syscall.h>

#define STUB_BASE 0x7ffffff00000UL
#define SLOT_AREA 0x7fffbff00000UL
#define SLOT_SIZE 0x10000UL
#define SLOTS 16384

static sigjmp_buf probe_jmp;
static void on_segv(int sig) {
    (void)sig;
    siglongjmp(probe_jmp, 1);
}

/* Whether `addr` can be read (a SIGSEGV handler catches the miss). */
static int readable(volatile const uint64_t *addr) {
    if (sigsetjmp(probe_jmp, 1))
        return 0;
    (void)*addr;
    return 1;
}

/* The calling thread's slot: the one mapped slot whose alternate stack a
 * handler frame of this thread has landed in. With one app thread, the one
 * mapped slot. */
static uint64_t find_slot(void) {
    struct sigaction sa = {.sa_handler = on_segv, .sa_flags = SA_NODEFER};
    sigaction(SIGSEGV, &sa, NULL);
    uint64_t found = 0;
    for (uint64_t i = 0; i < SLOTS; i++) {
        uint64_t at = SLOT_AREA + i * SLOT_SIZE;
        if (readable((const uint64_t *)at)) {
            found = at;
            break;
        }
    }
    signal(SIGSEGV, SIG_DFL);
    return found;
}

/* The stub's `mov $15, %eax; syscall` (rt_sigreturn) site, or 0. */
static uint64_t find_sigreturn_site(void) {
    static const unsigned char pat[] = {0xb8, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05};
    struct sigaction sa = {.sa_handler = on_segv, .sa_flags = SA_NODEFER};
    sigaction(SIGSEGV, &sa, NULL);
    uint64_t site = 0;
    if (readable((const uint64_t *)STUB_BASE)) {
        const unsigned char *p = (const unsigned char *)STUB_BASE;
        for (size_t i = 0; i + sizeof pat <= 4096; i++)
            if (memcmp(p + i, pat, sizeof pat) == 0) {
                site = STUB_BASE + i;
                break;
            }
    }
    signal(SIGSEGV, SIG_DFL);
    return site;
}

/* The kernel's ucontext (x86-64), as rt_sigreturn reads it. */
struct kuc {
    uint64_t flags, link;
    uint64_t ss_sp;
    int32_t ss_flags, pad;
    uint64_t ss_size;
    uint64_t gregs[23]; /* r8..r15, rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip, eflags, cs/gs/fs/ss, err, trapno, oldmask, cr2 */
    uint64_t fpstate;
    uint64_t reserved[8];
    uint64_t sigmask;
};

static void spin_forever(void) {
    for (;;)
        __asm__ volatile("" ::: "memory");
}

static char spin_stack[65536] __attribute__((aligned(16)));

static void block_child(void) {
    uint64_t site = find_sigreturn_site();
    if (!site) {
        printf("block: no stub sigreturn site\n");
        _exit(0);
    }
    static struct kuc uc __attribute__((aligned(64)));
    memset(&uc, 0, sizeof uc);
    uc.gregs[15] = (uint64_t)(spin_stack + sizeof spin_stack - 8); /* rsp */
    uc.gregs[16] = (uint64_t)spin_forever;                         /* rip */
    uc.gregs[17] = 0x202;                                          /* eflags */
    uc.gregs[18] = 0x33 | (0x2bUL << 48);                          /* cs, ss */
    uc.sigmask = ~0UL;                                             /* every host signal blocked */
    uc.ss_flags = 2;                                               /* SS_DISABLE */
    fflush(stdout);
    __asm__ volatile("mov %0, %%rsp\n jmp *%1\n" ::"r"(&uc), "r"(site) : "memory");
    _exit(1);
}

static volatile uint64_t scribble_target;
static volatile int scribbling = 1;

static void *scribbler(void *arg) {
    uint64_t x = (uint64_t)arg | 1;
    uint64_t *slot = (uint64_t *)scribble_target;
    while (scribbling) {
        for (size_t i = 0; i < SLOT_SIZE / 8; i += 7) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            slot[i] = x;
        }
        slot[0] = 3; /* state: "resume", as if the Sentry had answered */
        slot[3] = scribble_target + 0x8000 + (x & 0x7ff8);
    }
    return NULL;
}

static int on_ptrace;

static void scribble_child(void) {
    uint64_t slot = on_ptrace ? 0 : find_slot();
    if (!slot) {
        printf("scribble: no slot\n");
        _exit(0);
    }
    scribble_target = slot;
    pthread_t t;
    pthread_create(&t, NULL, scribbler, (void *)0x9e3779b97f4a7c15UL);
    for (long i = 0; i < 200000; i++)
        syscall(SYS_getppid);
    _exit(0);
}

static void churn_child(void) {
    uint64_t slot = on_ptrace ? 0 : find_slot();
    if (!slot) {
        printf("churn: no slot\n");
        _exit(0);
    }
    volatile uint32_t *state = (volatile uint32_t *)slot;
    for (uint32_t v = 0;; v++)
        *state = 7 + v % 1000; /* past every state the hand-off knows */
}

static void report(const char *what, pid_t pid, int kill_after_ms) {
    if (kill_after_ms) {
        usleep(kill_after_ms * 1000);
        kill(pid, SIGKILL);
    }
    int st;
    waitpid(pid, &st, 0);
    if (WIFSIGNALED(st))
        printf("%s: ended by a signal\n", what);
    else
        printf("%s: ended (exit %d)\n", what, WEXITSTATUS(st));
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    const char *mode = argc > 1 ? argv[1] : "block";
    on_ptrace = argc > 2 && strcmp(argv[2], "ptrace") == 0;
    pid_t pid = fork();
    if (pid == 0) {
        if (strcmp(mode, "block") == 0)
            block_child();
        else if (strcmp(mode, "churn") == 0)
            churn_child();
        else
            scribble_child();
        _exit(0);
    }
    report(mode, pid, strcmp(mode, "scribble") == 0 ? 3000 : 500);
    printf("%s: the parent runs on\n", mode);
    return 0;
}
