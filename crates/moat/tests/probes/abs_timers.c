// Timers set to an absolute time of CLOCK_REALTIME (seconds since the
// epoch) fire when that time comes: a timerfd with TFD_TIMER_ABSTIME and a
// POSIX timer with TIMER_ABSTIME, each 50 ms ahead; and a CLOCK_MONOTONIC
// absolute timerfd alike. They hung when read as monotonic times.
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

static struct itimerspec soon(clockid_t clock) {
  struct timespec now;
  clock_gettime(clock, &now);
  struct itimerspec its = {0};
  its.it_value = now;
  its.it_value.tv_nsec += 50000000;
  if (its.it_value.tv_nsec >= 1000000000) {
    its.it_value.tv_sec++;
    its.it_value.tv_nsec -= 1000000000;
  }
  return its;
}

int main(void) {
  clockid_t clocks[] = {CLOCK_REALTIME, CLOCK_MONOTONIC};
  for (int i = 0; i < 2; i++) {
    int fd = timerfd_create(clocks[i], 0);
    struct itimerspec its = soon(clocks[i]);
    timerfd_settime(fd, TFD_TIMER_ABSTIME, &its, NULL);
    uint64_t n = 0;
    read(fd, &n, sizeof n);
    printf("timerfd clock %d fired %llu\n", clocks[i], (unsigned long long)n);
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGRTMIN);
  sigprocmask(SIG_BLOCK, &set, NULL);
  struct sigevent sev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGRTMIN};
  timer_t t;
  timer_create(CLOCK_REALTIME, &sev, &t);
  struct itimerspec its = soon(CLOCK_REALTIME);
  timer_settime(t, TIMER_ABSTIME, &its, NULL);
  siginfo_t info;
  int sig = sigwaitinfo(&set, &info);
  printf("posix timer fired: %d\n", sig == SIGRTMIN);
  return 0;
}
