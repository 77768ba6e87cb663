// Arguments Linux refuses, refused the same way: posix_fadvise, getrandom,
// mlockall, msync, mlock and munlock of unmapped memory, readv, sendfile,
// gettimeofday, sched_setparam, tgkill and timerfd_settime (LTP's
// fadvise, getrandom05, mlock02, msync03, readv02 and friends).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/sendfile.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>
#include <sched.h>
#include <sys/timerfd.h>
#define T(name, expr) do { errno = 0; long r = (long)(expr); printf("%-28s %ld %s\n", name, r, r < 0 ? strerrorname_np(errno) : ""); } while (0)
int main(void) {
  int p[2]; pipe(p);
  int fd = open("/etc/passwd", O_RDONLY);
  T("fadvise bad advice", -posix_fadvise(fd, 0, 0, 999) ? (errno = posix_fadvise(fd, 0, 0, 999), -1) : 0);
  T("fadvise pipe", (errno = posix_fadvise(p[0], 0, 0, POSIX_FADV_NORMAL)) ? -1 : 0);
  T("fadvise badfd", (errno = posix_fadvise(999, 0, 0, POSIX_FADV_NORMAL)) ? -1 : 0);
  T("fadvise neg len", (errno = posix_fadvise(fd, 0, -1, POSIX_FADV_NORMAL)) ? -1 : 0);
  char buf[16];
  T("getrandom bad flags", getrandom(buf, 8, 0x100));
  T("mlockall 0", mlockall(0));
  T("mlockall bad", mlockall(0x10));
  char *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  T("msync unaligned", msync(m + 1, 100, MS_SYNC));
  T("msync both", msync(m, 4096, MS_SYNC | MS_ASYNC));
  T("msync bad flag", msync(m, 4096, 0x100));
  munmap(m + 4096, 4096);
  T("msync unmapped", msync(m + 4096, 4096, MS_SYNC));
  T("mlock unmapped", mlock(m + 4096, 4096));
  T("munlock unmapped", munlock(m + 4096, 4096));
  struct iovec iov = {buf, 8};
  T("readv -1", readv(fd, &iov, -1));
  T("readv 1025", readv(fd, &iov, 1025));
  struct iovec bad = {buf, (size_t)-1};
  T("readv huge len", readv(fd, &bad, 1));
  off_t off = -1;
  int out = open("/dev/null", O_WRONLY);
  T("sendfile neg off", sendfile(out, fd, &off, 10));
  T("sendfile badfd", sendfile(out, 999, NULL, 10));
  T("sendfile out rdonly", sendfile(fd, fd, NULL, 10));
  T("gettimeofday bad", syscall(SYS_gettimeofday, (void *)1, NULL));
  T("sched_setparam bad pid", syscall(SYS_sched_setparam, -1, NULL));
  T("tgkill bad sig", syscall(SYS_tgkill, getpid(), getpid(), 999));
  T("timerfd_settime bad flags", ({ int t = timerfd_create(CLOCK_MONOTONIC, 0); struct itimerspec its = {0}; syscall(SYS_timerfd_settime, t, 0x100, &its, NULL); }));
  return 0;
}
