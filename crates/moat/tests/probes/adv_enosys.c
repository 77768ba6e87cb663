/* Attack: flood the kernel with system call numbers it does not have:
 * every number from 512 up to 512+COUNT, numbers near 2^31 and 2^32 and
 * -1, and the x32 numbers (bit 30 set: 0x40000000 + 0..1023). Usage:
 * adv_enosys [COUNT] (default 200000).
 *
 * Expected (as natively, the oracle; this host has no x32 ABI): every call
 * fails with ENOSYS. A kernel that logs each unknown number, or keeps a
 * record of each, must keep its log and its memory bounded. */
#include "adv_common.h"

#include <errno.h>

static long calls, other;

static void call(long nr) {
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(nr), "D"(0), "S"(0), "d"(0) : "rcx", "r11", "memory");
    calls++;
    if (r != -ENOSYS && other++ < 5)
        say("syscall %#lx returned %ld, not -ENOSYS\n", nr, r);
}

int main(int argc, char **argv) {
    long count = argc > 1 ? atol(argv[1]) : 200000;
    for (long nr = 512; nr < 512 + count; nr++)
        call(nr);
    for (long nr = 0; nr < 1024; nr++)
        call(0x40000000 + nr);
    long huge[] = {0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff, 0x1000003e8, -2, -1};
    for (unsigned i = 0; i < sizeof huge / sizeof huge[0]; i++)
        call(huge[i]);
    say("%ld unknown syscall numbers: %s\n", calls, other ? "some did not fail with ENOSYS" : "all ENOSYS");
    return other != 0;
}
