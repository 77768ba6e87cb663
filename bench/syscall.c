/* Per-call cost of a few system calls, for bench/syscall.sh: prints the
 * nanoseconds one call (or one round trip) takes, as the median of 5
 * batches. Usage: syscall MODE [N]; MODE is getppid, clock_gettime, read,
 * openclose, pipe (a ping-pong of one byte between two processes) or fork
 * (fork, _exit in the child, wait). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void batch(const char *mode, long n) {
    char c = 0;
    if (!strcmp(mode, "getppid")) {
        for (long i = 0; i < n; i++)
            syscall(SYS_getppid);
    } else if (!strcmp(mode, "clock_gettime")) {
        struct timespec t;
        for (long i = 0; i < n; i++)
            clock_gettime(CLOCK_MONOTONIC, &t);
    } else if (!strcmp(mode, "read")) {
        int fd = open("/dev/zero", O_RDONLY);
        for (long i = 0; i < n; i++)
            if (read(fd, &c, 1) != 1)
                exit(1);
        close(fd);
    } else if (!strcmp(mode, "openclose")) {
        for (long i = 0; i < n; i++)
            close(open("/etc/hostname", O_RDONLY));
    } else if (!strcmp(mode, "pipe")) {
        int a[2], b[2];
        if (pipe(a) || pipe(b))
            exit(1);
        pid_t pid = fork();
        if (pid == 0) {
            for (long i = 0; i < n; i++)
                if (read(a[0], &c, 1) != 1 || write(b[1], &c, 1) != 1)
                    _exit(1);
            _exit(0);
        }
        for (long i = 0; i < n; i++)
            if (write(a[1], &c, 1) != 1 || read(b[0], &c, 1) != 1)
                exit(1);
        waitpid(pid, NULL, 0);
        close(a[0]), close(a[1]), close(b[0]), close(b[1]);
    } else if (!strcmp(mode, "fork")) {
        for (long i = 0; i < n; i++) {
            pid_t pid = fork();
            if (pid == 0)
                _exit(0);
            waitpid(pid, NULL, 0);
        }
    } else {
        fprintf(stderr, "unknown mode %s\n", mode);
        exit(2);
    }
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "getppid";
    long n = argc > 2 ? atol(argv[2]) : 10000;
    double per[5];
    batch(mode, n / 10 + 1);
    for (int i = 0; i < 5; i++) {
        double t0 = now_ns();
        batch(mode, n);
        per[i] = (now_ns() - t0) / n;
    }
    qsort(per, 5, sizeof per[0], cmp);
    printf("%.1f\n", per[2]);
    return 0;
}
