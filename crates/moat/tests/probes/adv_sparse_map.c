/* Attack: map a huge sparse file MAP_PRIVATE and touch only a few pages, so
 * that a kernel that copies or reserves the whole length up front runs out
 * of memory. Usage: adv_sparse_map PATH GIB [create] — with "create" the
 * probe makes PATH itself (ftruncate to GIB GiB, markers written at three
 * offsets); without it PATH must already be such a file. PATH "anon" maps
 * GIB GiB of anonymous private memory instead.
 *
 * The file is mapped read-only (as a program reading a big file does; a
 * writable private mapping of 40 GiB is more than Linux's overcommit
 * heuristic grants here) and a few pages are then made writable; anonymous
 * memory is mapped writable at once.
 *
 * Expected (as natively, the oracle): the mapping works; the markers read
 * back through it, a hole reads as zeros, writes to the private mapping
 * read back and never reach the file. The Sentry's memory stays bounded. */
#include "adv_common.h"

#include <errno.h>
#include <fcntl.h>

#define PAGE 4096L

static void marker(char *buf, long off) {
    memset(buf, 0, 64);
    snprintf(buf, 64, "marker@%ld", off);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        say("usage: adv_sparse_map PATH GIB [create]\n");
        return 2;
    }
    long size = atol(argv[2]) << 30;
    long offsets[] = {0, size / 2, size - PAGE};
    long hole = size / 4;
    int anon = strcmp(argv[1], "anon") == 0;
    int fd = -1;
    if (!anon) {
        int create = argc > 3 && strcmp(argv[3], "create") == 0;
        fd = open(argv[1], O_RDWR | (create ? O_CREAT | O_TRUNC : 0), 0600);
        if (fd < 0 || (create && ftruncate(fd, size) != 0)) {
            say("cannot make the sparse file: %s\n", strerrorname_np(errno));
            return 1;
        }
        for (int i = 0; create && i < 3; i++) {
            char m[64];
            marker(m, offsets[i]);
            if (pwrite(fd, m, sizeof m, offsets[i]) != sizeof m) {
                say("cannot write a marker: %s\n", strerrorname_np(errno));
                return 1;
            }
        }
    }
    char *p = mmap(NULL, size, PROT_READ | (anon ? PROT_WRITE : 0), MAP_PRIVATE | (anon ? MAP_ANONYMOUS : 0), fd, 0);
    if (p == MAP_FAILED) {
        say("mmap of %s GiB private: %s\n", argv[2], strerrorname_np(errno));
        return 1;
    }
    say("mapped %s GiB private\n", argv[2]);
    for (int i = 0; !anon && i < 3; i++) {
        char m[64];
        marker(m, offsets[i]);
        say("marker at %ld/8 of the file: %s\n", offsets[i] * 8 / size, memcmp(p + offsets[i], m, 64) ? "wrong" : "read back");
    }
    int zero = 1;
    for (long i = 0; i < PAGE; i++)
        zero &= p[hole + i] == 0;
    say("a hole reads as %s\n", zero ? "zeros" : "something else");
    long writes[] = {offsets[0], hole, offsets[1] + PAGE, offsets[2]};
    for (int i = 0; i < 4; i++) {
        if (!anon && mprotect(p + writes[i], PAGE, PROT_READ | PROT_WRITE) != 0) {
            say("mprotect of one page RW: %s\n", strerrorname_np(errno));
            return 1;
        }
        memset(p + writes[i], 'a' + i, PAGE);
    }
    int kept = 1;
    for (int i = 0; i < 4; i++)
        for (long j = 0; j < PAGE; j += 64)
            kept &= p[writes[i] + j] == 'a' + i;
    say("writes to the mapping %s\n", kept ? "read back" : "were lost");
    if (!anon) {
        char m[64], f[64];
        int untouched = 1;
        for (int i = 0; i < 3; i++) {
            marker(m, offsets[i]);
            untouched &= pread(fd, f, 64, offsets[i]) == 64 && memcmp(f, m, 64) == 0;
        }
        untouched &= pread(fd, f, 64, hole) == 64 && f[0] == 0 && f[63] == 0;
        say("the file is %s\n", untouched ? "unchanged" : "changed");
    }
    if (munmap(p, size) != 0) {
        say("munmap: %s\n", strerrorname_np(errno));
        return 1;
    }
    return 0;
}
