// Path calls' errors as Linux gives them: names past NAME_MAX, paths past
// PATH_MAX, missing and looping names, files where directories belong, and
// flags the *at calls do not take (LTP's link04, unlink07, unlinkat01,
// fstatat01, linkat01, truncate03, writev01, mmap08 and friends).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#define T(name, expr) do { errno = 0; long r = (long)(expr); printf("%-32s %ld %s\n", name, r, r < 0 ? strerrorname_np(errno) : ""); } while (0)
int main(int argc, char **argv) {
  char dir[] = "/var/tmp/errsXXXXXX";
  mkdtemp(dir);
  chdir(dir);
  close(open("file", O_CREAT | O_WRONLY, 0644));
  mkdir("sub", 0755);
  symlink("loop1", "loop2"); symlink("loop2", "loop1");
  char longname[300]; memset(longname, 'a', 299); longname[299] = 0;
  char longpath[5000]; memset(longpath, 'b', 4999); longpath[4999] = 0;
  int fd = open("file", O_RDWR);
  int dfd = open("sub", O_RDONLY | O_DIRECTORY);
  struct iovec iov[2] = {{"ab", 2}, {(void *)1, 5}};
  T("writev bad iov", writev(fd, iov, 2));
  struct iovec neg = {"ab", (size_t)-1};
  T("writev neg len", writev(fd, &neg, 1));
  T("writev count 0", writev(fd, iov, 0));
  T("mmap bad fd", (long)mmap(NULL, 4096, PROT_READ, MAP_SHARED, 999, 0) == -1 ? -1 : 0);
  T("mmap dir fd", (long)mmap(NULL, 4096, PROT_READ, MAP_SHARED, dfd, 0) == -1 ? -1 : 0);
  T("mmap len 0", (long)mmap(NULL, 0, PROT_READ, MAP_SHARED, fd, 0) == -1 ? -1 : 0);
  T("link name too long", link("file", longname));
  T("link path too long", link("file", longpath));
  T("link missing src", link("nope", "x"));
  T("link through file", link("file", "file/x"));
  T("link to existing", link("file", "sub"));
  T("link dir", link("sub", "sub2"));
  T("link loop", link("loop1/x", "y"));
  T("link efault", link((char *)1, "y"));
  T("unlink missing", unlink("nope"));
  T("unlink empty", unlink(""));
  T("unlink through file", unlink("file/x"));
  T("unlink dir", unlink("sub"));
  T("unlink too long", unlink(longname));
  T("unlink efault", unlink((char *)1));
  T("fchmodat bad dirfd", fchmodat(999, "file", 0644, 0));
  T("fchmodat notdir fd", fchmodat(fd, "file", 0644, 0));
  T("fchmodat loop", fchmodat(AT_FDCWD, "loop1", 0644, 0));
  T("fchmodat bad flag", fchmodat(AT_FDCWD, "file", 0644, 0x1));
  T("truncate dir", truncate("sub", 0));
  T("truncate neg", truncate("file", -1));
  T("truncate missing", truncate("nope", 0));
  T("truncate through file", truncate("file/x", 0));
  T("truncate loop", truncate("loop1", 0));
  T("ftruncate rdonly", ({ int r = open("file", O_RDONLY); ftruncate(r, 0); }));
  T("unlinkat bad flag", unlinkat(AT_FDCWD, "file", 0x1));
  T("unlinkat removedir file", unlinkat(AT_FDCWD, "file", AT_REMOVEDIR));
  T("unlinkat bad dirfd", unlinkat(999, "file", 0));
  T("unlinkat notdir fd", unlinkat(fd, "file", 0));
  struct stat st;
  T("fstatat bad dirfd", fstatat(999, "file", &st, 0));
  T("fstatat notdir fd", fstatat(fd, "file", &st, 0));
  T("fstatat bad flag", fstatat(AT_FDCWD, "file", &st, 0x1));
  T("fstatat loop", fstatat(AT_FDCWD, "loop1", &st, 0));
  T("linkat bad flag", linkat(AT_FDCWD, "file", AT_FDCWD, "z", 0x1));
  T("linkat notdir fd", linkat(fd, "file", AT_FDCWD, "z", 0));
  T("linkat empty no flag", linkat(fd, "", AT_FDCWD, "z", 0));
  T("rmdir nonempty", ({ close(open("sub/f", O_CREAT|O_WRONLY, 0644)); rmdir("sub"); }));
  T("rmdir dot", rmdir("sub/."));
  T("mkdir exists", mkdir("file", 0755));
  T("rename dir to file", rename("sub", "file"));
  T("rename file to dir", rename("file", "sub"));
  T("rename into self", rename("sub", "sub/inner"));
  unlink("sub/f"); rmdir("sub"); unlink("file"); unlink("loop1"); unlink("loop2"); unlink("z");
  chdir("/"); rmdir(dir);
  return 0;
}
