// ioprio_get and ioprio_set as Linux answers them: the default, values of
// each class kept as given and inherited, unknown classes and which values
// (EINVAL), a missing process (ESRCH) (LTP ioprio*).
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#define T(name, expr) do { errno = 0; long r = (long)(expr); printf("%-28s %#lx %s\n", name, r, r < 0 ? strerrorname_np(errno) : ""); } while (0)
#define PRIO(c, d) (((c) << 13) | (d))
int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  T("get default", syscall(SYS_ioprio_get, 1, 0));
  T("set be 7", syscall(SYS_ioprio_set, 1, 0, PRIO(2, 7)));
  T("get", syscall(SYS_ioprio_get, 1, 0));
  pid_t c = fork();
  if (c == 0) { printf("child %#lx\n", syscall(SYS_ioprio_get, 1, 0)); fflush(stdout); _exit(0); }
  waitpid(c, NULL, 0);
  T("set idle", syscall(SYS_ioprio_set, 1, 0, PRIO(3, 0)));
  T("get idle", syscall(SYS_ioprio_get, 1, 0));
  T("set bad class", syscall(SYS_ioprio_set, 1, 0, PRIO(5, 0)));
  T("set bad data", syscall(SYS_ioprio_set, 1, 0, PRIO(2, 9)));
  T("get after bad data", syscall(SYS_ioprio_get, 1, 0));
  T("set rt 0", syscall(SYS_ioprio_set, 1, 0, PRIO(1, 0)));
  T("get rt", syscall(SYS_ioprio_get, 1, 0));
  T("set none", syscall(SYS_ioprio_set, 1, 0, 0));
  T("get none", syscall(SYS_ioprio_get, 1, 0));
  T("bad which", syscall(SYS_ioprio_get, 9, 0));
  T("no such pid", syscall(SYS_ioprio_get, 1, 999999));
  return 0;
}
