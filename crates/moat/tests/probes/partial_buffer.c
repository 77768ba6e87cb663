/* Reads and writes into a buffer whose third page is unmapped: a file read
 * stops where the fault is (the offset moves by what was read), a pipe read
 * or write across it fails with EFAULT and loses no data. Before reads were
 * copied once, the file read failed whole, the pipe's bytes were lost and
 * the next read waited forever. Reads its own binary (more than 12 KiB). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv) {
    (void)argc;
    setvbuf(stdout, NULL, _IONBF, 0);
    char *p = mmap(0, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(p + 8192, 4096);
    int fd = open(argv[0], O_RDONLY);
    long n = read(fd, p + 100, 3 * 4096);
    printf("file read across the hole: %ld, offset now %ld\n", n, (long)lseek(fd, 0, SEEK_CUR));
    n = read(fd, p + 8192, 10);
    printf("file read into the hole: %ld %s, offset now %ld\n", n, n < 0 ? strerror(errno) : "",
           (long)lseek(fd, 0, SEEK_CUR));
    int pf[2];
    if (pipe(pf) != 0 || write(pf[1], "0123456789", 10) != 10) return 1;
    n = read(pf[0], p + 8190, 10);
    printf("pipe read across the hole: %ld %s\n", n, n < 0 ? strerror(errno) : "");
    n = read(pf[0], p, 100);
    printf("then the pipe still holds: %ld\n", n);
    n = write(pf[1], p + 8190, 10);
    printf("pipe write across the hole: %ld %s\n", n, n < 0 ? strerror(errno) : "");
    return 0;
}
