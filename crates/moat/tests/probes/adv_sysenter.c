/* Attack: the other ways into the kernel's 32-bit entry points. `sysenter`
 * from 64-bit code and from 32-bit mode (cs=0x23), and `syscall` from
 * 32-bit mode, each with eax=10 and 64-bit mprotect arguments (for a tracer
 * that reads the stop as a 64-bit mprotect and injects one with the app's
 * cs).
 *
 * Expected under moat: never a host syscall. `sysenter` raises SIGILL (AMD:
 * #UD in long mode) or SIGSEGV, handled in 64-bit mode (cs 0x33), as
 * natively on AMD. `syscall` from 32-bit mode gets what Linux without IA-32
 * emulation gives: -ENOSYS back in 32-bit mode (AMD), or a SIGILL/SIGSEGV
 * handled in 64-bit mode. (Natively this host runs it as i386 link.) */
#include "adv_common.h"

ADV_COMPAT_CALL(sysenter_compat, "sysenter");
ADV_COMPAT_CALL(syscall_compat, "syscall");

long sysenter_native(long nr);
__asm__(".text\n"
        ".globl sysenter_native\n"
        "sysenter_native:\n"
        "  push %rbx\n"
        "  mov %rdi, %rax\n"
        "  mov $0xfff00000, %edi\n"
        "  mov $4096, %esi\n"
        "  mov $7, %edx\n"
        "  mov $0x22, %r10d\n"
        "  mov $-1, %r8\n"
        "  xor %r9d, %r9d\n"
        "  xor %ebx, %ebx\n"
        "  xor %ecx, %ecx\n"
        "  sysenter\n"
        "  pop %rbx\n"
        "  ret\n");

/* A 32-bit `syscall` that comes back with -ENOSYS is refused as Linux
 * without IA-32 emulation refuses it. */
static long syscall_compat_refused(long nr) {
    long r = syscall_compat(nr);
    if (r == -38) {
        say("%s: returned -ENOSYS in 32-bit mode\n", adv_case);
        _exit(0);
    }
    return r;
}

static const int ill_or_segv[] = {SIGILL, SIGSEGV, 0};

int main(int argc, char **argv) {
    int ok = 1;
    if (adv_wanted(argc, argv, "sysenter64"))
        ok &= adv_run_case("sysenter eax=10 from 64-bit mode", sysenter_native, 10, ill_or_segv, 0);
    if (adv_wanted(argc, argv, "sysenter32"))
        ok &= adv_run_case("sysenter eax=10 from 32-bit mode", sysenter_compat, 10, ill_or_segv, 0);
    if (adv_wanted(argc, argv, "syscall32"))
        ok &= adv_run_case("syscall eax=10 from 32-bit mode", syscall_compat_refused, 10, ill_or_segv, 0);
    return ok ? 0 : 1;
}
