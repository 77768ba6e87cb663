/* Attack: unmap, replace or move the stub's pages at 0x7ffffff00000 (code)
 * and 0x7ffffff01000 (data), the top of the address space moat gives apps:
 * munmap them, mmap MAP_FIXED (and MAP_FIXED_NOREPLACE) over them, mprotect
 * them, mremap a mapping onto them or grow one into them, and munmap a
 * range that straddles the boundary; then munmap what lies beyond: a
 * non-canonical address, the kernel half and the vsyscall page.
 *
 * Expected: moat's TASK_SIZE is 0x7ffffff00000 (0x7fffbff00000 under
 * systrap, given as the argument), and the answers are those
 * Linux gives above its TASK_SIZE: munmap EINVAL (natively too for the
 * addresses beyond the stub pages), MAP_FIXED ENOMEM, mprotect
 * ENOMEM, mremap EINVAL (moving) or ENOMEM (growing), and a plain mmap hint
 * there is ignored (the mapping lands below). Afterwards the app can still
 * map, use and unmap memory, and exits normally. (Linux's own TASK_SIZE is
 * higher, so the native run is no oracle.) */
#include "adv_common.h"

#include <errno.h>

/* The top of the app's address space: the stub's code page under ptrace;
 * under systrap the first thread slot (an argument gives it). */
static unsigned long stub_base = 0x7ffffff00000UL;
#define STUB_BASE stub_base
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

static void result(const char *what, long r) {
    if (r == -1)
        say("%s: %s\n", what, strerrorname_np(errno));
    else
        say("%s: %s\n", what, r == 0 ? "0" : "succeeded");
}

static long map(unsigned long addr, unsigned long len, int flags) {
    void *p = mmap((void *)addr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);
    return p == MAP_FAILED ? -1 : (long)p;
}

int main(int argc, char **argv) {
    if (argc > 1)
        stub_base = strtoul(argv[1], NULL, 16);
    result("munmap(code page)", munmap((void *)STUB_BASE, 4096));
    result("munmap(data page)", munmap((void *)(STUB_BASE + 4096), 4096));
    result("munmap(last app page and code page)", munmap((void *)(STUB_BASE - 4096), 8192));
    result("mmap(MAP_FIXED, code page)", map(STUB_BASE, 4096, MAP_FIXED));
    result("mmap(MAP_FIXED, data page)", map(STUB_BASE + 4096, 4096, MAP_FIXED));
    result("mmap(MAP_FIXED, across the boundary)", map(STUB_BASE - 4096, 8192, MAP_FIXED));
    result("mmap(MAP_FIXED_NOREPLACE, code page)", map(STUB_BASE, 4096, MAP_FIXED_NOREPLACE));
    result("mprotect(code page, RWX)", mprotect((void *)STUB_BASE, 4096, PROT_READ | PROT_WRITE | PROT_EXEC));
    result("mprotect(code page, none)", mprotect((void *)STUB_BASE, 4096, PROT_NONE));

    long below = map(STUB_BASE - 4096, 4096, MAP_FIXED);
    result("mmap(MAP_FIXED, last app page)", below == (long)(STUB_BASE - 4096) ? 0 : -1);
    result("mremap(last app page, grow into the code page)", (long)mremap((void *)(STUB_BASE - 4096), 4096, 8192, 0));
    long other = map(0, 4096, 0);
    result("mremap(MAYMOVE|FIXED onto the code page)",
           (long)mremap((void *)other, 4096, 4096, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)STUB_BASE));
    result("mremap(MAYMOVE|FIXED onto the data page)",
           (long)mremap((void *)other, 4096, 4096, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)(STUB_BASE + 4096)));

    long hinted = map(STUB_BASE, 4096, 0);
    say("mmap(hint at the code page): %s\n",
        hinted == -1 ? strerrorname_np(errno) : (unsigned long)hinted < STUB_BASE ? "placed below it" : "placed there");

    result("munmap(non-canonical)", munmap((void *)0x8000000000000000UL, 4096));
    result("munmap(kernel half)", munmap((void *)0xffff888000000000UL, 4096));
    result("munmap(vsyscall page)", munmap((void *)0xffffffffff600000UL, 4096));

    /* The address space still works: map, touch, unmap, many times. */
    for (int i = 0; i < 200; i++) {
        long p = map(0, 1 << 20, 0);
        if (p == -1) {
            say("mmap after the attacks: %s\n", strerrorname_np(errno));
            return 1;
        }
        memset((void *)p, i, 1 << 20);
        if (munmap((void *)p, 1 << 20) != 0) {
            say("munmap after the attacks: %s\n", strerrorname_np(errno));
            return 1;
        }
    }
    say("200 mmap/touch/munmap rounds after the attacks worked\n");
    return 0;
}
