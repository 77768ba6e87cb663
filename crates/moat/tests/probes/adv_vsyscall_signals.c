/* Attack: make the Sentry change a thread's registers while the host's
 * vsyscall emulation is in flight: a SIGSEGV handler for a vsyscall with a
 * bad pointer, signals sent to a thread looping on vsyscall time(), and an
 * execve that ends such a thread. A tracer that answered vsyscalls at a
 * SECCOMP_RET_TRACE stop moved rip before the host ran on, and the host
 * killed the whole process for it (SIGSYS). Expected (as on Linux): the
 * handler runs, every signal is handled, the exec'd program runs. */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

typedef long (*time_fn)(long *);
typedef long (*gtod_fn)(struct timeval *, void *);
static sigjmp_buf jump;
static volatile int handled, stop;
static volatile pid_t looper;

static void on_segv(int sig) { siglongjmp(jump, 1); }
static void on_usr1(int sig) { handled++; }

static void *loop(void *arg) {
  looper = syscall(SYS_gettid);
  time_fn t = (time_fn)0xffffffffff600400UL;
  while (!stop) t(0);
  return 0;
}

int main(int argc, char **argv) {
  if (argc > 1) {
    printf("the exec'd program runs\n");
    return 0;
  }
  setvbuf(stdout, 0, _IONBF, 0);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_segv;
  sigaction(SIGSEGV, &sa, 0);
  if (sigsetjmp(jump, 1) == 0) {
    ((gtod_fn)0xffffffffff600000UL)((struct timeval *)0x1000, 0);
    printf("vsyscall with a bad pointer: returned\n");
  } else {
    printf("vsyscall with a bad pointer: SIGSEGV handled\n");
  }
  signal(SIGUSR1, on_usr1);
  pthread_t th;
  pthread_create(&th, 0, loop, 0);
  while (!looper) ;
  int sent = 0;
  for (; sent < 500; sent++) {
    int before = handled;
    syscall(SYS_tgkill, getpid(), looper, SIGUSR1);
    while (handled == before) ;
  }
  printf("signals to a thread looping on vsyscalls: %d of %d handled\n", handled, sent);
  pthread_t again;
  looper = 0;
  pthread_create(&again, 0, loop, 0);
  while (!looper) ;
  execl("/proc/self/exe", argv[0], "exec'd", (char *)0);
  printf("execve failed\n");
  return 1;
}
