/* The vDSO as a program sees it, natively and under moat: where it is,
 * that its clocks and the system call's are one clock, that the time page
 * cannot be made writable or written, and that a forked child's clock goes
 * on from its parent's. Then (argument "loop N") N reads of each clock
 * function, which under moat must not reach the Sentry. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long ns(struct timespec t) { return t.tv_sec * 1000000000LL + t.tv_nsec; }

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "loop") == 0) {
    long n = atol(argv[2]);
    struct timespec t;
    struct timeval tv;
    long long last = 0;
    for (long i = 0; i < n; i++) {
      clock_gettime(CLOCK_MONOTONIC, &t);
      if (ns(t) < last) {
        printf("CLOCK_MONOTONIC went back by %lld ns\n", last - ns(t));
        return 1;
      }
      last = ns(t);
      clock_gettime(CLOCK_REALTIME, &t);
      gettimeofday(&tv, NULL);
      time(NULL);
    }
    printf("%ld reads\n", n);
    return 0;
  }

  unsigned long vdso = getauxval(AT_SYSINFO_EHDR);
  /* The [vdso] line starts at AT_SYSINFO_EHDR, and a [vvar...] page ends there. */
  FILE *maps = fopen("/proc/self/maps", "r");
  char line[512];
  int vdso_ok = 0, vvar_below = 0;
  unsigned long vvar = 0;
  while (maps && fgets(line, sizeof line, maps)) {
    unsigned long lo, hi;
    char perms[8];
    if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3)
      continue;
    if (strstr(line, "[vdso]") && lo == vdso && strcmp(perms, "r-xp") == 0)
      vdso_ok = 1;
    if (strstr(line, "[vvar") && hi == vdso && perms[0] == 'r' && perms[1] == '-') {
      vvar_below = 1;
      vvar = hi - 4096;
    }
  }
  printf("AT_SYSINFO_EHDR is the [vdso], r-x: %s\n", vdso && vdso_ok ? "yes" : "no");
  printf("a read-only [vvar] ends where it starts: %s\n", vvar_below ? "yes" : "no");

  /* vDSO, system call, vDSO: never out of order, on each clock. */
  const int clocks[] = {CLOCK_MONOTONIC, CLOCK_REALTIME, CLOCK_BOOTTIME};
  const char *names[] = {"CLOCK_MONOTONIC", "CLOCK_REALTIME", "CLOCK_BOOTTIME"};
  for (int c = 0; c < 3; c++) {
    int bad = 0;
    for (int i = 0; i < 2000; i++) {
      struct timespec a, b, d;
      clock_gettime(clocks[c], &a);
      syscall(SYS_clock_gettime, clocks[c], &b);
      clock_gettime(clocks[c], &d);
      if (ns(a) > ns(b) || ns(b) > ns(d))
        bad++;
    }
    printf("%s: vDSO <= syscall <= vDSO: %s\n", names[c], bad ? "no" : "yes");
  }
  /* time() may read a coarse clock (static glibc asks for
     CLOCK_REALTIME_COARSE, which lags by up to a tick), so it goes first. */
  struct timeval tv;
  struct timespec rt;
  long t = time(NULL);
  gettimeofday(&tv, NULL);
  syscall(SYS_clock_gettime, CLOCK_REALTIME, &rt);
  printf("gettimeofday, clock_gettime and time agree: %s\n",
         t <= tv.tv_sec && tv.tv_sec <= rt.tv_sec && rt.tv_sec - t <= 1 ? "yes" : "no");

  /* The time page is read-only for good. */
  if (vvar) {
    int w = mprotect((void *)vvar, 4096, PROT_READ | PROT_WRITE);
    int we = errno;
    int x = mprotect((void *)vvar, 4096, PROT_READ | PROT_EXEC);
    int xe = errno;
    printf("mprotect [vvar] writable: %s, executable: %s\n", w ? strerrorname_np(we) : "allowed",
           x ? strerrorname_np(xe) : "allowed");
    int fd = open("/proc/self/mem", O_RDWR);
    char junk[8] = "garbage";
    ssize_t n = pwrite(fd, junk, sizeof junk, (off_t)vvar);
    printf("a write to [vvar] through /proc/self/mem: %s\n", n == (ssize_t)sizeof junk ? "written" : "refused");
    close(fd);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &b);
    printf("the clock still runs: %s\n", ns(a) > 0 && ns(a) <= ns(b) ? "yes" : "no");
  }

  /* A forked child's clock goes on from its parent's. */
  struct timespec before;
  clock_gettime(CLOCK_MONOTONIC, &before);
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    _exit(ns(now) >= ns(before) ? 0 : 1);
  }
  int st;
  waitpid(pid, &st, 0);
  printf("a forked child's clock: %s\n", WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "goes on" : "went back");
  printf("realtime %ld\n", (long)t);
  return 0;
}
