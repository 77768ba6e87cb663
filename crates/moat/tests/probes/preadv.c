// preadv, pwritev, preadv2 and pwritev2 as Linux answers them: offsets,
// -1 for the file position (v2 only), RWF_APPEND, unknown flags
// (EOPNOTSUPP), pipes (ESPIPE) and bad counts (LTP preadv*, pwritev*).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>
#define T(name, expr) do { errno = 0; long r = (long)(expr); printf("%-28s %ld %s\n", name, r, r < 0 ? strerrorname_np(errno) : ""); } while (0)
int main(void) {
  char path[] = "/var/tmp/pvXXXXXX";
  int fd = mkstemp(path);
  write(fd, "0123456789abcdef", 16);
  char a[4] = {0}, b[5] = {0};
  struct iovec iov[2] = {{a, 3}, {b, 4}};
  T("preadv at 2", preadv(fd, iov, 2, 2));
  printf("  got %s %s\n", a, b);
  T("preadv neg", preadv(fd, iov, 2, -1));
  T("preadv2 cur pos", (lseek(fd, 5, SEEK_SET), preadv2(fd, iov, 2, -1, 0)));
  printf("  got %s %s pos %ld\n", a, b, (long)lseek(fd, 0, SEEK_CUR));
  T("preadv2 bad flag", preadv2(fd, iov, 2, 0, 0x1000));
  T("preadv2 nowait", preadv2(fd, iov, 1, 0, RWF_NOWAIT));
  struct iovec w[2] = {{"XY", 2}, {"Z", 1}};
  T("pwritev at 1", pwritev(fd, w, 2, 1));
  T("pwritev2 append", pwritev2(fd, w, 2, 0, RWF_APPEND));
  char all[32] = {0};
  pread(fd, all, sizeof all - 1, 0);
  printf("  file %s\n", all);
  int p[2]; pipe(p);
  T("preadv pipe", preadv(p[0], iov, 1, 0));
  T("preadv2 pipe cur", (write(p[1], "hi", 2), preadv2(p[0], iov, 1, -1, 0)));
  T("preadv bad iovcnt", preadv(fd, iov, -1, 0));
  T("pwritev rdonly", ({ int r = open(path, O_RDONLY); pwritev(r, w, 1, 0); }));
  unlink(path);
  return 0;
}
