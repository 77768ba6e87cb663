/* Attack: iovec amplification. 128 iovecs that all point at the same
 * 16 MiB buffer ask for a 2 GiB transfer from 16 MiB of memory: writev to
 * /dev/null and to a non-blocking pipe; readv from /dev/zero into the
 * buffer repeated. Then 128 iovecs on one 1 MiB buffer (128 MiB, which a
 * child drains in a time fit for a test) through a blocking pipe. And
 * lengths that overflow: four of 2^62, one of 2^63 (negative as ssize_t),
 * and pairs whose sum wraps or passes SSIZE_MAX.
 *
 * Expected (as natively, the oracle): Linux caps one transfer at
 * MAX_RW_COUNT (0x7ffff000 bytes), so /dev/null and /dev/zero move exactly
 * that, the non-blocking pipe takes what fits (its 64 KiB), and the drained
 * pipe carries all 128 MiB; a kernel that gathers the iovecs into one
 * buffer first needs 2 GiB of its own memory. Overflowing lengths fail
 * with EINVAL (a length over SSIZE_MAX, or a sum that wraps) or EFAULT. */
#include "adv_common.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/uio.h>

#define BUF (16L << 20)
#define IOVS 128

static struct iovec iov[IOVS];

static void report(const char *what, long r) {
    if (r < 0)
        say("%s: %s\n", what, strerrorname_np(errno));
    else
        say("%s: %#lx bytes\n", what, r);
}

int main(void) {
    char *buf = mmap(NULL, BUF, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(buf, 'x', BUF);
    for (int i = 0; i < IOVS; i++)
        iov[i] = (struct iovec){buf, BUF};

    int null = open("/dev/null", O_WRONLY);
    report("writev of 128 x 16 MiB to /dev/null", writev(null, iov, IOVS));
    int zero = open("/dev/zero", O_RDONLY);
    report("readv of 128 x 16 MiB from /dev/zero", readv(zero, iov, IOVS));

    struct iovec huge[4];
    for (int i = 0; i < 4; i++)
        huge[i] = (struct iovec){buf, 1UL << 62};
    report("readv of 4 x 2^62 bytes from /dev/zero", readv(zero, huge, 4));
    report("writev of 4 x 2^62 bytes to /dev/null", writev(null, huge, 4));
    huge[1].iov_len = 1UL << 63;
    report("readv with a length of 2^63", readv(zero, huge, 2));
    huge[0].iov_len = 1 << 20;
    huge[1].iov_len = ~0UL - (1 << 20) + 2;
    report("writev whose lengths wrap around", writev(null, huge, 2));
    huge[1].iov_len = 0x7fffffffffffffffUL;
    report("writev whose lengths pass SSIZE_MAX", writev(null, huge, 2));
    report("readv whose lengths pass SSIZE_MAX", readv(zero, huge, 2));

    int nb[2];
    if (pipe2(nb, O_NONBLOCK) != 0)
        return 1;
    report("writev of 128 x 16 MiB to a non-blocking pipe", writev(nb[1], iov, IOVS));

    int p[2];
    if (pipe(p) != 0)
        return 1;
    pid_t child = fork();
    if (child == 0) {
        close(p[1]);
        static char sink[1 << 20];
        long total = 0, n;
        while ((n = read(p[0], sink, sizeof sink)) > 0)
            total += n;
        say("the reader drained %#lx bytes\n", total);
        _exit(0);
    }
    close(p[0]);
    for (int i = 0; i < IOVS; i++)
        iov[i].iov_len = 1 << 20;
    report("writev of 128 x 1 MiB to a drained pipe", writev(p[1], iov, IOVS));
    close(p[1]);
    waitpid(child, NULL, 0);
    return 0;
}
