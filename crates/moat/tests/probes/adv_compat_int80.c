/* Attack: switch to the 32-bit user code segment (a far return to cs=0x23)
 * and make i386 system calls with `int $0x80`: eax=9 (i386 link, which a
 * tracer reading the stop as a 64-bit call takes for mmap, and injects with
 * the app's cs) and eax=20 (i386 getpid); and `int $0x80` straight from
 * 64-bit code.
 *
 * Expected under moat, which runs 64-bit code only (as Linux built without
 * IA-32 emulation): every attempt raises SIGSEGV; with a handler installed,
 * the handler runs in 64-bit mode (cs 0x33), prints and exits 0; without
 * one the process dies of SIGSEGV. (This host has IA-32 emulation, so the
 * native run is no oracle here: it returns from each call.)
 *
 * If the tracer resumes the stub in 32-bit mode at its injection site, the
 * escape page (adv_common.h) catches a CPU that truncates rip; one that
 * faults instead (#GP on the return to user mode) leaves a tracer that
 * suppresses the fault and retries spinning forever. */
#include "adv_common.h"

ADV_COMPAT_CALL(int80_compat, "int $0x80");

long int80_native(long nr);
__asm__(".text\n"
        ".globl int80_native\n"
        "int80_native:\n"
        "  push %rbx\n"
        "  mov %rdi, %rax\n"
        "  xor %ebx, %ebx\n"
        "  xor %ecx, %ecx\n"
        "  int $0x80\n"
        "  pop %rbx\n"
        "  ret\n");

static const int segv[] = {SIGSEGV, 0};

int main(int argc, char **argv) {
    int ok = 1;
    if (adv_wanted(argc, argv, "compat9"))
        ok &= adv_run_case("int $0x80 eax=9 from 32-bit mode", int80_compat, 9, segv, 0);
    if (adv_wanted(argc, argv, "compat20"))
        ok &= adv_run_case("int $0x80 eax=20 from 32-bit mode", int80_compat, 20, segv, 0);
    if (adv_wanted(argc, argv, "native20"))
        ok &= adv_run_case("int $0x80 eax=20 from 64-bit mode", int80_native, 20, segv, 0);
    if (adv_wanted(argc, argv, "nohandler"))
        ok &= adv_run_case("int $0x80 eax=9 from 32-bit mode, no handler", int80_compat, 9, NULL, SIGSEGV);
    return ok ? 0 : 1;
}
