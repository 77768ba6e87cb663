// F_GETPIPE_SZ and F_SETPIPE_SZ as Linux answers them: the default
// capacity, rounding up to a power of two pages, a pipe holding more than
// the new size (EBUSY), a size past pipe-max-size as root (allowed) and
// the errors for a non-pipe fd and a size past 2^31; and
// /proc/sys/fs/pipe-max-size. Writes that fill the grown pipe fit in it.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void show(const char *what, long r) {
  if (r < 0) printf("%s: %s\n", what, strerror(errno));
  else printf("%s: %ld\n", what, r);
}

int main(void) {
  int p[2];
  pipe2(p, O_NONBLOCK);
  show("default", fcntl(p[0], F_GETPIPE_SZ));
  show("set 5000", fcntl(p[1], F_SETPIPE_SZ, 5000));
  show("set 1", fcntl(p[1], F_SETPIPE_SZ, 1));
  show("set 1 MiB", fcntl(p[0], F_SETPIPE_SZ, 1 << 20));
  static char buf[1 << 20];
  long total = 0, n;
  while ((n = write(p[1], buf, sizeof buf)) > 0) total += n;
  show("filled", total);
  show("shrink below data", fcntl(p[0], F_SETPIPE_SZ, 65536));
  show("set 2^31+1", fcntl(p[0], F_SETPIPE_SZ, (1L << 31) + 1));
  show("not a pipe", fcntl(0 + open("/dev/null", O_RDONLY), F_GETPIPE_SZ));
  char max[32] = {0};
  int fd = open("/proc/sys/fs/pipe-max-size", O_RDONLY);
  show("pipe-max-size read", read(fd, max, sizeof max - 1));
  printf("pipe-max-size: %s", max);
  return 0;
}
