// As pid 1 of its PID namespace, sends itself signals every way there is:
// kill, raise (tgkill), sigqueue (rt_sigqueueinfo), a blocked one that a
// handler installed later receives, and one with a handler. Linux drops a
// signal sent from inside to init when its action is the default and it
// is not blocked; prints what arrived.
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

static volatile sig_atomic_t got;

static void handler(int sig) { got = sig; }

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  printf("pid %d\n", getpid());
  kill(getpid(), SIGTERM);
  printf("after kill(TERM)\n");
  raise(SIGINT);
  printf("after raise(INT)\n");
  syscall(SYS_tkill, getpid(), SIGUSR1);
  printf("after tkill(USR1)\n");
  union sigval v = {.sival_int = 7};
  sigqueue(getpid(), SIGUSR2, v);
  printf("after sigqueue(USR2)\n");
  sigqueue(getpid(), SIGRTMIN, v);
  printf("after sigqueue(RTMIN)\n");

  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGHUP);
  sigprocmask(SIG_BLOCK, &set, NULL);
  raise(SIGHUP);
  sigpending(&set);
  printf("HUP pending while blocked: %d\n", sigismember(&set, SIGHUP));
  signal(SIGHUP, handler);
  sigprocmask(SIG_UNBLOCK, &set, NULL);
  printf("after unblocking HUP: got %d\n", got);

  got = 0;
  signal(SIGALRM, handler);
  raise(SIGALRM);
  printf("with a handler, raise(ALRM): got %d\n", got);
  // A signal the app ignores is dropped anyway; its default back, TERM kills nothing.
  signal(SIGTERM, SIG_IGN);
  raise(SIGTERM);
  printf("done\n");
  return 0;
}
