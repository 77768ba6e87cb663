// sched_rr_get_interval as Linux answers it for SCHED_OTHER tasks, and its
// errors (LTP sched_rr_get_interval*).
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
int main(void) {
  struct timespec ts = {7, 7};
  int r = sched_rr_get_interval(0, &ts);
  // Kernels differ on the value for SCHED_OTHER (0, or the fair slice).
  printf("self %d %s under a second: %d\n", r, r ? strerrorname_np(errno) : "", ts.tv_sec == 0 && ts.tv_nsec < 1000000000);
  r = sched_rr_get_interval(-1, &ts);
  printf("neg %d %s\n", r, r ? strerrorname_np(errno) : "");
  r = sched_rr_get_interval(999999, &ts);
  printf("none %d %s\n", r, r ? strerrorname_np(errno) : "");
  r = sched_rr_get_interval(0, (void *)1);
  printf("efault %d %s\n", r, r ? strerrorname_np(errno) : "");
  return 0;
}
