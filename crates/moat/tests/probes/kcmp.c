// kcmp as Linux answers it: dup'd fds share a description, two opens do
// not; a process's own address space is itself; a forked child shares its
// inherited fd's description but not its address space, fd table or
// handlers; errors for bad fds, types and pids (LTP kcmp*).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#define KCMP(p1, p2, t, a, b) syscall(SYS_kcmp, p1, p2, t, a, b)
#define EQ(name, expr) do { errno = 0; long r = (long)(expr); printf("%-26s %s %s\n", name, r == 0 ? "equal" : r > 0 ? "differ" : "error", r < 0 ? strerrorname_np(errno) : ""); } while (0)
int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  pid_t me = getpid();
  int a = open("/etc/passwd", O_RDONLY), b = dup(a), c = open("/etc/passwd", O_RDONLY);
  EQ("dup'd fds", KCMP(me, me, 0, a, b));
  EQ("two opens", KCMP(me, me, 0, a, c));
  EQ("bad fd", KCMP(me, me, 0, a, 999));
  EQ("own vm", KCMP(me, me, 1, 0, 0));
  EQ("bad type", KCMP(me, me, 99, 0, 0));
  EQ("no such pid", KCMP(me, 999999, 1, 0, 0));
  pid_t child = fork();
  if (child == 0) { pause(); _exit(0); }
  EQ("child vm", KCMP(me, child, 1, 0, 0));
  EQ("child fd a inherited", KCMP(me, child, 0, a, a));
  EQ("child files", KCMP(me, child, 2, 0, 0));
  EQ("child sighand", KCMP(me, child, 4, 0, 0));
  kill(child, 9); waitpid(child, NULL, 0);
  return 0;
}
