/* Shared by the adversarial probes (adv_*.c): output that survives _exit,
 * one attack per forked child, handlers that report the mode they run in,
 * and the escape page a fooled tracer would run into.
 *
 * The escape: a tracer that resumes a stub in 32-bit mode (cs=0x23) at its
 * own injection site in the stub page (0x7ffffff00000 + a few hundred bytes)
 * makes a CPU that truncates rip to 32 bits run at 0xfff00xxx. The probes
 * map that page with a nop sled ending in a far jump to escape64: native
 * syscalls that name the host task "adv-escaped" (prctl) and clone an
 * untraced child (CLONE_UNTRACED) that sleeps 10 s, which the test looks for
 * on the host. Probes build static and non-PIE, so all their code lies below
 * 4 GiB and can run in 32-bit mode. */
#ifndef ADV_COMMON_H
#define ADV_COMMON_H

#define _GNU_SOURCE
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define ESCAPE_PAGE 0xfff00000UL
#define USER_CS 0x33

void escape64(void);

__asm__(
    ".data\n"
    "adv_zero_word: .long 0\n"
    ".p2align 3\n"
    "adv_ten_seconds: .quad 10, 0\n"
    "adv_escaped_name: .asciz \"adv-escaped\"\n"
    ".text\n"
    ".globl escape64\n"
    "escape64:\n"
    "  mov $157, %eax\n" /* prctl(PR_SET_NAME, "adv-escaped") */
    "  mov $15, %edi\n"
    "  lea adv_escaped_name(%rip), %rsi\n"
    "  syscall\n"
    "  mov $56, %eax\n" /* clone(CLONE_UNTRACED | SIGCHLD, 0, 0, 0, 0) */
    "  mov $0x800011, %edi\n"
    "  xor %esi, %esi\n"
    "  xor %edx, %edx\n"
    "  xor %r10d, %r10d\n"
    "  xor %r8d, %r8d\n"
    "  syscall\n"
    "  mov $202, %eax\n" /* both: futex(&zero, FUTEX_WAIT_PRIVATE, 0, 10 s) */
    "  lea adv_zero_word(%rip), %rdi\n"
    "  mov $0x80, %esi\n"
    "  xor %edx, %edx\n"
    "  lea adv_ten_seconds(%rip), %r10\n"
    "  syscall\n"
    "  mov $231, %eax\n" /* exit_group(42) */
    "  mov $42, %edi\n"
    "  syscall\n"
    "  hlt\n");

/* Defines `long NAME(long nr)`: switches to 32-bit mode with a far return
 * to cs=0x23, runs INSN (a string of 32-bit instructions) with eax=nr and
 * ebx=ecx=0, far-jumps back to 64-bit mode and returns eax. Before the
 * switch the 64-bit argument registers hold what mmap(ESCAPE_PAGE, 4096,
 * RWX, PRIVATE|ANONYMOUS, -1, 0) or mprotect(ESCAPE_PAGE, 4096, RWX) would
 * pass, for a tracer that reads a 32-bit stop as a 64-bit syscall (the
 * kernel's 32-bit `syscall` entry zeroes r8-r11, so mprotect is the call
 * that reaches such a tracer from there). In 32-bit mode the stack is a
 * page below 4 GiB (the kernel's 32-bit `syscall` entry reads an argument
 * from it and gives up before the tracer sees the call if it cannot). */
#define ADV_COMPAT_CALL(NAME, INSN)                                                                \
    long NAME(long nr);                                                                            \
    __asm__(".data\n"                                                                               \
            #NAME "_rsp: .quad 0\n"                                                                \
            ".bss\n"                                                                                \
            ".p2align 12\n"                                                                         \
            #NAME "_stack32: .skip 4096\n"                                                          \
            ".text\n"                                                                               \
            ".globl " #NAME "\n" #NAME ":\n"                                                        \
            "  push %rbx\n"                                                                         \
            "  mov %rdi, %rax\n"                                                                    \
            "  mov $0xfff00000, %edi\n"                                                             \
            "  mov $4096, %esi\n"                                                                   \
            "  mov $7, %edx\n"                                                                      \
            "  mov $0x22, %r10d\n"                                                                  \
            "  mov $-1, %r8\n"                                                                      \
            "  xor %r9d, %r9d\n"                                                                    \
            "  mov %rsp, " #NAME "_rsp(%rip)\n"                                                     \
            "  lea " #NAME "_stack32+4096(%rip), %rsp\n"                                            \
            "  pushq $0x23\n"                                                                       \
            "  lea 1f(%rip), %rcx\n"                                                                \
            "  push %rcx\n"                                                                         \
            "  lretq\n"                                                                             \
            ".code32\n"                                                                             \
            "1: xor %ebx, %ebx\n"                                                                   \
            "  xor %ecx, %ecx\n"                                                                    \
            "  " INSN "\n"                                                                          \
            "  ljmp $0x33, $2f\n"                                                                   \
            ".code64\n"                                                                             \
            "2: mov " #NAME "_rsp(%rip), %rsp\n"                                                    \
            "  movslq %eax, %rax\n"                                                                 \
            "  pop %rbx\n"                                                                          \
            "  ret\n")

/* printf to stdout with one write(2): nothing is lost when a child _exits. */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
__attribute__((unused)) static void say(const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof buf - 1)
        n = sizeof buf - 1;
    if (write(1, buf, n) != n)
        _exit(99);
}

static const char *signame(int sig) {
    switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGILL: return "SIGILL";
    case SIGTRAP: return "SIGTRAP";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGSYS: return "SIGSYS";
    case SIGALRM: return "SIGALRM";
    case SIGKILL: return "SIGKILL";
    default: return "another signal";
    }
}

static unsigned short current_cs(void) {
    unsigned short cs;
    __asm__ volatile("mov %%cs, %0" : "=r"(cs));
    return cs;
}

/* The attack running in this child, and the signals its handler accepts. */
static const char *adv_case;
static const int *adv_expected;

/* Reports the signal and the code segment the handler runs in, then ends
 * the child: status 0 if the signal was one the case expects and the
 * handler runs in 64-bit mode. */
static void adv_on_signal(int sig, siginfo_t *si, void *uc) {
    (void)si;
    (void)uc;
    unsigned short cs = current_cs();
    say("%s: %s in a handler with cs=%#x\n", adv_case, signame(sig), cs);
    int expected = 0;
    for (const int *e = adv_expected; *e; e++)
        expected |= *e == sig;
    _exit(expected && cs == USER_CS ? 0 : 3);
}

/* Installs adv_on_signal for the fault signals (and SIGALRM), on an
 * alternate stack: app code in 32-bit mode has no usable stack pointer. */
static void adv_install_handlers(void) {
    static char altstack[65536];
    stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack};
    sigaltstack(&ss, NULL);
    struct sigaction sa = {.sa_sigaction = adv_on_signal, .sa_flags = SA_SIGINFO | SA_ONSTACK};
    int sigs[] = {SIGSEGV, SIGILL, SIGTRAP, SIGBUS, SIGFPE, SIGSYS, SIGALRM};
    for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &sa, NULL);
}

/* The escape page: a nop sled over the page, ending in ljmp $0x33, escape64. */
static void adv_map_escape_page(void) {
    unsigned char *p = mmap((void *)ESCAPE_PAGE, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (p == MAP_FAILED) {
        say("%s: cannot map the escape page\n", adv_case);
        _exit(4);
    }
    memset(p, 0x90, 4096);
    unsigned char *j = p + 4096 - 7;
    uint32_t target = (uint32_t)(uintptr_t)escape64;
    uint16_t cs64 = USER_CS;
    j[0] = 0xea;
    memcpy(j + 1, &target, 4);
    memcpy(j + 5, &cs64, 2);
}

/* Runs attack(arg) in a child with the escape page mapped (and, if
 * `expected` is not NULL, handlers that accept the zero-terminated list of
 * signals). Returns true if the child ended as expected: through the
 * handler, or (with no handler) killed by `fatal`. If the attack returns,
 * the child prints what it returned. */
__attribute__((unused)) static int adv_run_case(const char *name, long (*attack)(long), long arg, const int *expected, int fatal) {
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(5);
    }
    if (pid == 0) {
        adv_case = name;
        adv_expected = expected;
        if (expected)
            adv_install_handlers();
        adv_map_escape_page();
        long r = attack(arg);
        say("%s: returned %ld\n", name, r);
        _exit(1);
    }
    int st;
    if (waitpid(pid, &st, 0) != pid) {
        perror("waitpid");
        exit(6);
    }
    if (WIFSIGNALED(st)) {
        say("%s: killed by %s\n", name, signame(WTERMSIG(st)));
        return !expected && WTERMSIG(st) == fatal;
    }
    if (WEXITSTATUS(st) != 0)
        say("%s: exit status %d\n", name, WEXITSTATUS(st));
    return expected && WEXITSTATUS(st) == 0;
}

/* Whether case `key` is to run: those named on the command line, or all. */
__attribute__((unused)) static int adv_wanted(int argc, char **argv, const char *key) {
    if (argc < 2)
        return 1;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], key) == 0)
            return 1;
    return 0;
}

#endif
