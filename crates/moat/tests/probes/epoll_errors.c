// epoll_ctl's and epoll_wait's answers as Linux gives them: loops and
// nesting past EP_MAX_NESTS (ELOOP), an epoll in itself, duplicates,
// missing entries, regular files (EPERM), EPOLLEXCLUSIVE with MOD, each
// ready fd reported once, and maxevents out of range (LTP epoll_ctl*,
// epoll_wait*).
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>
#define T(name, expr) do { errno = 0; long r = (long)(expr); printf("%-34s %ld %s\n", name, r, r < 0 ? strerrorname_np(errno) : ""); } while (0)
int main(void) {
  struct epoll_event ev = {.events = EPOLLIN};
  int a = epoll_create1(0), b = epoll_create1(0);
  T("add b to a", epoll_ctl(a, EPOLL_CTL_ADD, b, &ev));
  T("add a to b (loop)", epoll_ctl(b, EPOLL_CTL_ADD, a, &ev));
  T("add a to a", epoll_ctl(a, EPOLL_CTL_ADD, a, &ev));
  int e[8];
  for (int i = 0; i < 8; i++) e[i] = epoll_create1(0);
  for (int i = 0; i < 7; i++) {
    char name[40]; snprintf(name, sizeof name, "nest %d into %d", i, i + 1);
    T(name, epoll_ctl(e[i + 1], EPOLL_CTL_ADD, e[i], &ev));
  }
  int p[2]; pipe(p);
  T("add pipe twice", (epoll_ctl(a, EPOLL_CTL_ADD, p[0], &ev), epoll_ctl(a, EPOLL_CTL_ADD, p[0], &ev)));
  T("mod missing", epoll_ctl(a, EPOLL_CTL_MOD, p[1], &ev));
  T("del missing", epoll_ctl(a, EPOLL_CTL_DEL, p[1], &ev));
  T("add regular file", epoll_ctl(a, EPOLL_CTL_ADD, 0 + (int)(long)fileno(fopen("/etc/passwd", "r")), &ev));
  T("bad op", epoll_ctl(a, 99, p[0], &ev));
  T("exclusive mod", ({ struct epoll_event x = {.events = EPOLLIN | EPOLLEXCLUSIVE}; int c = epoll_create1(0); epoll_ctl(c, EPOLL_CTL_ADD, p[1], &x); epoll_ctl(c, EPOLL_CTL_MOD, p[1], &x); }));
  // epoll_wait with several ready fds: each reported once.
  int w = epoll_create1(0);
  int fds[4][2];
  for (int i = 0; i < 4; i++) { pipe(fds[i]); write(fds[i][1], "x", 1); struct epoll_event x = {.events = EPOLLIN, .data.u32 = i}; epoll_ctl(w, EPOLL_CTL_ADD, fds[i][0], &x); }
  struct epoll_event out[32];
  int n = epoll_wait(w, out, 32, 0);
  printf("ready %d:", n);
  for (int i = 0; i < n; i++) printf(" %u", out[i].data.u32);
  printf("\n");
  T("wait maxevents 0", epoll_wait(w, out, 0, 0));
  T("wait maxevents huge", epoll_wait(w, out, 1 << 30, 0));
  return 0;
}
