/* File-operation costs, one workload per run: fileops OP PATH N [WARMUP]
 *
 *   open+close  open(PATH, O_RDONLY) then close          (PATH: regular file)
 *   stat        stat(PATH)                               (PATH: regular file)
 *   pread       pread 4 KiB at offset 0 of PATH, opened once up front
 *   readdir     opendir/readdir to the end/closedir      (PATH: directory)
 *   read        open, read to EOF with a 1 MiB buffer, close  (PATH: big file)
 *
 * Runs WARMUP iterations of the operation first (default 10; the warm-up count
 * does not depend on N, so two runs with N and 2N differ only by N operations),
 * then times N iterations with CLOCK_MONOTONIC. Prints the ns per operation on
 * stdout; `read` also prints MiB/s after it on the same line. Any failed call
 * is reported on stderr with exit status 1. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PREAD_SIZE 4096
#define READ_BUF (1 << 20)

static const char *path;
static int fd = -1;          /* pread: the open file */
static char *buf;            /* pread / read buffer */
static long expect = -1;     /* readdir: entries; read: bytes; -1 until the first pass */

static void die(const char *what) {
    fprintf(stderr, "fileops: %s %s: %s\n", what, path, strerror(errno));
    exit(1);
}

static void op_open_close(void) {
    int f = open(path, O_RDONLY);
    if (f < 0) die("open");
    if (close(f) < 0) die("close");
}

static void op_stat(void) {
    struct stat st;
    if (stat(path, &st) < 0) die("stat");
}

static void op_pread(void) {
    ssize_t r = pread(fd, buf, PREAD_SIZE, 0);
    if (r < 0) die("pread");
    if (r != PREAD_SIZE) {
        fprintf(stderr, "fileops: pread %s: short read %zd\n", path, r);
        exit(1);
    }
}

static void check_count(const char *what, long got) {
    if (expect < 0) expect = got;
    else if (got != expect) {
        fprintf(stderr, "fileops: %s %s: got %ld, earlier pass got %ld\n", what, path, got, expect);
        exit(1);
    }
}

static void op_readdir(void) {
    DIR *d = opendir(path);
    if (!d) die("opendir");
    long n = 0;
    errno = 0;
    while (readdir(d)) n++;
    if (errno) die("readdir");
    if (closedir(d) < 0) die("closedir");
    check_count("readdir entries", n);
}

static void op_read(void) {
    int f = open(path, O_RDONLY);
    if (f < 0) die("open");
    long total = 0;
    for (;;) {
        ssize_t r = read(f, buf, READ_BUF);
        if (r < 0) die("read");
        if (r == 0) break;
        total += r;
    }
    if (close(f) < 0) die("close");
    check_count("read bytes", total);
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: fileops open+close|stat|pread|readdir|read PATH N [WARMUP]\n");
        return 2;
    }
    const char *op = argv[1];
    path = argv[2];
    long n = atol(argv[3]);
    long warm = argc > 4 ? atol(argv[4]) : 10;
    if (n <= 0 || warm < 0) {
        fprintf(stderr, "fileops: bad N or WARMUP\n");
        return 2;
    }
    void (*fn)(void);
    if (!strcmp(op, "open+close")) fn = op_open_close;
    else if (!strcmp(op, "stat")) fn = op_stat;
    else if (!strcmp(op, "pread")) fn = op_pread;
    else if (!strcmp(op, "readdir")) fn = op_readdir;
    else if (!strcmp(op, "read")) fn = op_read;
    else {
        fprintf(stderr, "fileops: unknown operation %s\n", op);
        return 2;
    }
    if (fn == op_pread || fn == op_read) {
        buf = malloc(READ_BUF);
        if (!buf) die("malloc");
        memset(buf, 0, READ_BUF); /* fault the buffer in before timing */
    }
    if (fn == op_pread && (fd = open(path, O_RDONLY)) < 0) die("open");

    for (long i = 0; i < warm; i++) fn();
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++) fn();
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ns = ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n;
    if (fn == op_read) printf("%.0f %.1f\n", ns, (double)expect / (1 << 20) / (ns / 1e9));
    else printf("%.0f\n", ns);
    return 0;
}
