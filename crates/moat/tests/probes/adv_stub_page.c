/* Attack: jump into the stub's own code page (0x7ffffff00000: the host
 * process app code runs in keeps its code there, and its data page after
 * it) at every 16-byte offset of the code page and at a few of the data
 * page, each from a forked child with clean registers (rbx pointing at a
 * zero word) and handlers for the fault signals; an alarm ends a child the
 * stub's code parks in a wait.
 *
 * Expected: whatever the stub's instructions do runs as app code: each
 * `syscall` there is the app's own (trapped, never made on the host), so
 * no host process is renamed, cloned untraced or unmapped, and the Sentry
 * lives on to run the next child and end the sandbox normally. Linux maps
 * nothing there, so the native run is no oracle. */
#include "adv_common.h"

#define STUB_BASE 0x7ffffff00000UL

void jump_clean(uint64_t target);
__asm__(".data\n"
        ".p2align 6\n"
        "stub_zero: .skip 128\n"
        ".text\n"
        ".globl jump_clean\n"
        "jump_clean:\n"
        "  mov %rdi, %r11\n"
        "  lea stub_zero(%rip), %rbx\n"
        "  xor %eax, %eax\n"
        "  xor %ecx, %ecx\n"
        "  xor %edx, %edx\n"
        "  xor %esi, %esi\n"
        "  xor %edi, %edi\n"
        "  xor %ebp, %ebp\n"
        "  xor %r8d, %r8d\n"
        "  xor %r9d, %r9d\n"
        "  xor %r10d, %r10d\n"
        "  xor %r12d, %r12d\n"
        "  xor %r13d, %r13d\n"
        "  xor %r14d, %r14d\n"
        "  xor %r15d, %r15d\n"
        "  jmp *%r11\n");

static void handled(int sig) {
    _exit(100 + sig);
}

enum { HANDLED, ALARM, EXITED, KILLED, OUTCOMES };
static const char *outcome_name[] = {"a handled fault", "the alarm", "an exit", "another signal"};

static pid_t start(uint64_t target) {
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    /* Its own process group, so that whatever it forks dies with it. */
    setpgid(0, 0);
    static char altstack[65536];
    stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack};
    sigaltstack(&ss, NULL);
    struct sigaction sa = {.sa_handler = handled, .sa_flags = SA_ONSTACK};
    int sigs[] = {SIGSEGV, SIGILL, SIGTRAP, SIGBUS, SIGFPE, SIGSYS};
    for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &sa, NULL);
    alarm(1);
    jump_clean(target);
    _exit(1);
}

int main(void) {
    enum { BATCH = 32 };
    uint64_t targets[256 + 8];
    int n = 0;
    for (uint64_t off = 0; off < 4096; off += 16)
        targets[n++] = STUB_BASE + off;
    for (uint64_t off = 0; off < 4096; off += 512)
        targets[n++] = STUB_BASE + 4096 + off;
    int counts[OUTCOMES] = {0};
    for (int first = 0; first < n; first += BATCH) {
        pid_t pids[BATCH];
        int m = n - first < BATCH ? n - first : BATCH;
        for (int i = 0; i < m; i++) {
            pids[i] = start(targets[first + i]);
            if (pids[i] < 0) {
                say("fork failed at target %d\n", first + i);
                return 2;
            }
        }
        for (int i = 0; i < m; i++) {
            int st;
            if (waitpid(pids[i], &st, 0) != pids[i]) {
                say("waitpid failed\n");
                return 3;
            }
            kill(-pids[i], SIGKILL);
            if (WIFEXITED(st))
                counts[WEXITSTATUS(st) > 100 ? HANDLED : EXITED]++;
            else
                counts[WTERMSIG(st) == SIGALRM ? ALARM : KILLED]++;
        }
        /* Reap whatever the stub's clone code forked (reparented to us). */
        while (waitpid(-1, NULL, WNOHANG) > 0)
            ;
    }
    for (int o = 0; o < OUTCOMES; o++)
        say("%d ended by %s\n", counts[o], outcome_name[o]);
    say("all %d jumps into the stub pages ended\n", n);
    return 0;
}
