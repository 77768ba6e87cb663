/* Attack: forged rt_sigreturn frames. A SIGUSR1 handler rewrites the frame
 * it was given, then returns through rt_sigreturn: cs=0x23 (32-bit mode), a
 * bogus ss, eflags with TF/NT/IOPL/AC/VM/VIF/VIP, a non-canonical rip, and
 * an fpstate pointer to nowhere, to the kernel half, or to an XSAVE image
 * with a huge size, a corrupt header or reserved MXCSR bits.
 *
 * Expected: rt_sigreturn resumes in 64-bit mode (cs 0x33, ss 0x2b) with only
 * the user-changeable flags (AC, TF among them) taken from the frame; a bad
 * rip or fpstate kills the app with SIGSEGV (its handler runs), never the
 * Sentry. Native Linux is the oracle for every case but cs=0x23, which Linux
 * honours (it has IA-32 emulation) and moat must not.
 *
 * Where the frame resumes, `probe_target` records cs, ss and eflags with
 * instructions that mean the same in 32-bit and 64-bit mode, then far-jumps
 * to 64-bit code that reports them. */
#include "adv_common.h"

#include <sys/syscall.h>
#include <ucontext.h>

#define UC_STRICT_RESTORE_SS 0x4
#define FLAGS_WATCHED (0x100 | 0x4000 | 0x3000 | 0x20000 | 0x40000 | 0x80000 | 0x100000) /* TF NT IOPL VM AC VIF VIP */

uint32_t seen_cs, seen_ss, seen_flags;
void probe_target(void);
void probe_back64(void);
void report_target(void);

__asm__(".data\n"
        ".p2align 3\n"
        "back_ptr: .long probe_back64\n"
        "  .word 0x33\n"
        ".bss\n"
        ".p2align 12\n"
        "low_stack: .skip 4096\n"
        ".globl low_stack_top\n"
        "low_stack_top:\n"
        ".text\n"
        ".globl probe_target\n"
        "probe_target:\n"
        "  .byte 0x8c, 0xd0\n" /* mov %ss, %eax */
        "  .byte 0x8e, 0xd8\n" /* mov %eax, %ds: a 64-bit process's null ds faults in 32-bit mode */
        "  .byte 0x8c, 0xc8\n" /* mov %cs, %eax */
        "  .byte 0x89, 0x04, 0x25\n"
        "  .long seen_cs\n" /* mov %eax, seen_cs */
        "  .byte 0x8c, 0xd0\n" /* mov %ss, %eax */
        "  .byte 0x89, 0x04, 0x25\n"
        "  .long seen_ss\n"
        "  .byte 0x9c, 0x58\n" /* pushf; pop %eax (%rax) */
        "  .byte 0x89, 0x04, 0x25\n"
        "  .long seen_flags\n"
        "  .byte 0xff, 0x2c, 0x25\n"
        "  .long back_ptr\n" /* ljmp *back_ptr: to probe_back64 in 64-bit mode */
        ".globl probe_back64\n"
        "probe_back64:\n"
        "  pushq $0x202\n"
        "  popfq\n"
        "  lea low_stack_top(%rip), %rsp\n"
        "  call report_target\n"
        "  hlt\n");
extern char low_stack_top[];

/* The handler's restorer: rt_sigreturn, and if that ever returns, a report
 * of what it returned (glibc's restorer has nothing after its syscall). */
void restorer(void);
void report_returned(long r);
__asm__(".text\n"
        ".globl restorer\n"
        "restorer:\n"
        "  mov $15, %eax\n"
        "  syscall\n"
        "  mov %rax, %rdi\n"
        "  and $-16, %rsp\n"
        "  call report_returned\n"
        "  hlt\n");

void report_returned(long r) {
    say("%s: rt_sigreturn returned %ld\n", adv_case, r);
    _exit(1);
}

void report_target(void) {
    say("%s: resumed with cs=%#x ss=%#x, watched flags %#x\n", adv_case, seen_cs, seen_ss & 0xffff,
        seen_flags & FLAGS_WATCHED);
    _exit(0);
}

/* What the SIGUSR1 handler does to its frame. */
static long forgery;

enum {
    CS32,
    SS_BOGUS,
    FLAGS,
    TF,
    RIP_NONCANONICAL,
    FP_NOWHERE,
    FP_KERNEL,
    FP_HUGE_SIZE,
    FP_BAD_HEADER,
    FP_BAD_MXCSR,
};

static void forge(int sig, siginfo_t *si, void *ucv) {
    (void)sig;
    (void)si;
    ucontext_t *uc = ucv;
    greg_t *g = uc->uc_mcontext.gregs;
    unsigned char *fp = (unsigned char *)uc->uc_mcontext.fpregs;
    /* Resume at probe_target on a stack below 4 GiB, in 64-bit mode. */
    g[REG_RIP] = (greg_t)probe_target;
    g[REG_RSP] = (greg_t)low_stack_top;
    switch (forgery) {
    case CS32:
        g[REG_CSGSFS] = (g[REG_CSGSFS] & ~0xffffLL) | 0x23;
        break;
    case SS_BOGUS:
        /* ss lives in the last u16 of CSGSFS; a non-strict frame lets Linux fix it up. */
        uc->uc_flags &= ~UC_STRICT_RESTORE_SS;
        g[REG_CSGSFS] = (g[REG_CSGSFS] & 0x0000ffffffffffffLL) | (0x13LL << 48);
        break;
    case FLAGS:
        g[REG_EFL] |= 0x4000 | 0x3000 | 0x20000 | 0x40000 | 0x80000 | 0x100000;
        break;
    case TF:
        g[REG_EFL] |= 0x100;
        break;
    case RIP_NONCANONICAL:
        g[REG_RIP] = (greg_t)0x8000000000001000ULL;
        break;
    case FP_NOWHERE:
        uc->uc_mcontext.fpregs = (fpregset_t)0x1000;
        break;
    case FP_KERNEL:
        uc->uc_mcontext.fpregs = (fpregset_t)0xffff888000000000ULL;
        break;
    case FP_HUGE_SIZE:
        /* sw_reserved: magic1 at 464, extended_size at 468, xstate_size at 480. */
        memcpy(fp + 468, &(uint32_t){0x7ffffff0}, 4);
        memcpy(fp + 480, &(uint32_t){0x7fffff00}, 4);
        break;
    case FP_BAD_HEADER:
        /* The XSAVE header's reserved bytes (512 + 16 ..) must be zero. */
        memset(fp + 512 + 16, 0xff, 48);
        break;
    case FP_BAD_MXCSR:
        memcpy(fp + 24, &(uint32_t){0xffff0000}, 4);
        break;
    }
}

static long attack(long which) {
    forgery = which;
    /* The kernel's struct sigaction, to name our own restorer. */
    struct {
        void *handler;
        unsigned long flags;
        void *restorer;
        uint64_t mask;
    } ksa = {(void *)forge, SA_SIGINFO | 0x04000000 /* SA_RESTORER */, (void *)restorer, 0};
    if (syscall(SYS_rt_sigaction, SIGUSR1, &ksa, NULL, 8) != 0) {
        say("%s: rt_sigaction failed\n", adv_case);
        _exit(7);
    }
    raise(SIGUSR1);
    return 0;
}

static const int segv[] = {SIGSEGV, 0};
static const int trap[] = {SIGTRAP, 0};

static void run(int argc, char **argv, const char *key, const char *name, long which, const int *expected) {
    if (adv_wanted(argc, argv, key))
        adv_run_case(name, attack, which, expected, 0);
}

int main(int argc, char **argv) {
    run(argc, argv, "cs32", "frame with cs=0x23", CS32, segv);
    run(argc, argv, "ss", "frame with ss=0x13, not strict", SS_BOGUS, segv);
    run(argc, argv, "flags", "frame with NT IOPL VM AC VIF VIP", FLAGS, segv);
    run(argc, argv, "tf", "frame with TF", TF, trap);
    run(argc, argv, "rip", "frame with a non-canonical rip", RIP_NONCANONICAL, segv);
    run(argc, argv, "fp_nowhere", "fpstate at 0x1000", FP_NOWHERE, segv);
    run(argc, argv, "fp_kernel", "fpstate in the kernel half", FP_KERNEL, segv);
    run(argc, argv, "fp_huge", "fpstate with a huge XSAVE size", FP_HUGE_SIZE, segv);
    run(argc, argv, "fp_header", "fpstate with a corrupt XSAVE header", FP_BAD_HEADER, segv);
    run(argc, argv, "fp_mxcsr", "fpstate with reserved MXCSR bits", FP_BAD_MXCSR, segv);
    return 0;
}
