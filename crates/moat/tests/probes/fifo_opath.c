// Calls on FIFOs, O_PATH fds and mknod answer as Linux's: mknod of an
// unknown type (EINVAL), a non-blocking writer with no reader (ENXIO), and
// EBADF for everything but fstat, fchdir, dup, fcntl and *at on an O_PATH
// fd (LTP mknod09, open06, open13).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/xattr.h>
#include <unistd.h>
#define T(name, expr) do { errno = 0; long r = (long)(expr); printf("%-30s %ld %s\n", name, r, r < 0 ? strerrorname_np(errno) : ""); } while (0)
int main(void) {
  char dir[] = "/var/tmp/miscXXXXXX";
  mkdtemp(dir); chdir(dir);
  T("mknod bad type", mknod("n1", 0170000 | 0644, 0));
  T("mknod fifo", mknod("fifo", S_IFIFO | 0644, 0));
  T("open fifo wronly nonblock", open("fifo", O_WRONLY | O_NONBLOCK));
  T("open fifo rdonly nonblock", open("fifo", O_RDONLY | O_NONBLOCK));
  close(open("f", O_CREAT | O_WRONLY, 0644));
  int p = open("f", O_PATH);
  char c;
  T("O_PATH read", read(p, &c, 1));
  T("O_PATH write", write(p, "x", 1));
  T("O_PATH fchmod", fchmod(p, 0600));
  T("O_PATH fchown", fchown(p, 0, 0));
  T("O_PATH fgetxattr", fgetxattr(p, "user.x", &c, 1));
  T("O_PATH ioctl", ioctl(p, FIONREAD, &c));
  T("O_PATH mmap", (long)mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, p, 0) == -1 ? -1 : 0);
  T("O_PATH fstat", ({ struct stat st; fstat(p, &st); }));
  T("O_PATH dup", dup(p) >= 0 ? 0 : -1);
  T("O_PATH fcntl getfl", fcntl(p, F_GETFL) & O_PATH ? 1 : 0);
  T("O_PATH lseek", lseek(p, 0, SEEK_SET));
  T("O_PATH fsync", fsync(p));
  T("O_PATH ftruncate", ftruncate(p, 0));
  T("O_PATH fchdir file", fchdir(p));
  int dp = open(".", O_PATH | O_DIRECTORY);
  T("O_PATH fchdir dir", fchdir(dp));
  T("O_PATH getdents", ({ char b[256]; syscall(217, dp, b, sizeof b); }));
  T("openat via O_PATH dir", openat(dp, "f", O_RDONLY) >= 0 ? 0 : -1);
  unlink("f"); unlink("fifo");
  chdir("/"); rmdir(dir);
  return 0;
}
