// A thread waits until the main thread sleeps in futex_wait, as seen in
// /proc/PID/stat (LTP's TST_PROCESS_STATE_WAIT), then wakes it.
#define _GNU_SOURCE
#include <linux/futex.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
static int futex;
static char state_of(pid_t pid) {
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  return strrchr(buf, ')')[2];
}
static void *waker(void *arg) {
  pid_t pid = (pid_t)(long)arg;
  for (int i = 0; i < 10000 && state_of(pid) != 'S'; i++) usleep(1000);
  printf("main seen as %c\n", state_of(pid));
  syscall(SYS_futex, &futex, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
  return NULL;
}
int main(void) {
  pthread_t t;
  setvbuf(stdout, NULL, _IONBF, 0);
  printf("self seen as %c\n", state_of(getpid()));
  pthread_create(&t, NULL, waker, (void *)(long)getpid());
  long r = syscall(SYS_futex, &futex, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
  pthread_join(t, NULL);
  printf("woken: %ld\n", r);
  return 0;
}
