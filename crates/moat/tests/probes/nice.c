// nice, getpriority and setpriority as Linux answers them: values kept,
// clamped and inherited, shown in /proc/PID/stat, and the errors for an
// unknown which and a missing process (LTP nice*, getpriority*, setpriority*).
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#define T(name, expr) do { errno = 0; long r = (long)(expr); printf("%-28s %ld %s\n", name, r, errno ? strerrorname_np(errno) : ""); } while (0)
static int stat_nice(pid_t pid) {
  char path[64], buf[512]; snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r"); size_t n = fread(buf, 1, sizeof buf - 1, f); fclose(f); buf[n] = 0;
  char *p = strrchr(buf, ')') + 2; int prio = 0, nice = 0;
  for (int field = 3; *p; p++) if (*p == ' ') { field++; if (field == 18) sscanf(p + 1, "%d %d", &prio, &nice); }
  return prio * 100 + nice;
}
int main(void) {
  T("getpriority self", getpriority(PRIO_PROCESS, 0));
  T("nice(5)", nice(5));
  T("getpriority after", getpriority(PRIO_PROCESS, 0));
  printf("stat prio*100+nice %d\n", stat_nice(getpid()));
  pid_t c = fork();
  if (c == 0) { printf("child nice %d\n", getpriority(PRIO_PROCESS, 0)); _exit(0); }
  waitpid(c, NULL, 0);
  T("setpriority 50 clamps", setpriority(PRIO_PROCESS, 0, 50));
  T("getpriority clamped", getpriority(PRIO_PROCESS, 0));
  T("bad which", setpriority(99, 0, 0));
  T("no such pid", getpriority(PRIO_PROCESS, 999999));
  return 0;
}
