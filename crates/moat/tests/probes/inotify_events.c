// inotify's events as Linux sends them: IN_OPEN, IN_ACCESS and
// IN_CLOSE_NOWRITE, IN_ATTRIB, IN_DELETE_SELF and IN_IGNORED when a watched
// file's last name goes, and IN_IGNORED after inotify_rm_watch (LTP
// inotify*).
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>
static int in;
static void drain(const char *what) {
  char buf[4096] __attribute__((aligned(8)));
  usleep(20000);
  ssize_t n = read(in, buf, sizeof buf);
  printf("%s:", what);
  for (char *p = buf; n > 0 && p < buf + n;) {
    struct inotify_event *e = (struct inotify_event *)p;
    printf(" [%d %x %s%s]", e->wd, e->mask, e->len ? e->name : "-", e->cookie ? " cookie" : "");
    p += sizeof *e + e->len;
  }
  printf("\n");
}
int main(void) {
  char dir[] = "/var/tmp/inoXXXXXX";
  mkdtemp(dir);
  chdir(dir);
  in = inotify_init1(IN_NONBLOCK);
  int wd = inotify_add_watch(in, ".", IN_ALL_EVENTS);
  int fd = open("f", O_CREAT | O_WRONLY, 0644); drain("create");
  write(fd, "x", 1); drain("write");
  close(fd); drain("close");
  fd = open("f", O_RDONLY); char c; read(fd, &c, 1); close(fd); drain("read");
  chmod("f", 0600); drain("chmod");
  rename("f", "g"); drain("rename");
  mkdir("d", 0755); drain("mkdir");
  int wf = inotify_add_watch(in, "g", IN_ALL_EVENTS);
  unlink("g"); drain("unlink watched");
  rmdir("d"); drain("rmdir");
  inotify_rm_watch(in, wd); drain("rm_watch");
  printf("wds %d %d\n", wd, wf);
  chdir("/"); rmdir(dir);
  return 0;
}
