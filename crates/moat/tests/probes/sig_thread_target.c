/* Signal delivery to a chosen thread: pthread_kill(t2, SIGUSR1) must run the
   handler on t2 itself (the handler's gettid() equals the tid t2 recorded for
   itself), and a process-directed kill(getpid(), SIGUSR2) with SIGUSR2 blocked in
   every thread except one must be handled by that one thread (the main thread
   included, which has it blocked). Also checks tgkill to a thread that blocks
   the signal leaves it pending for that thread only (sigpending in that thread). */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static pid_t tid(void) { return (pid_t)syscall(SYS_gettid); }

static volatile pid_t handler_tid1, handler_tid2;
static volatile int hits1, hits2;
static volatile pid_t t2_tid, t3_tid;
static volatile int stop;

static void on_usr1(int s) {
    (void)s;
    handler_tid1 = tid();
    hits1++;
}
static void on_usr2(int s) {
    (void)s;
    handler_tid2 = tid();
    hits2++;
}

static void nap(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, 0);
}

static void *t2_main(void *a) {
    (void)a;
    t2_tid = tid();
    while (!stop) nap(5);
    return 0;
}

/* The only thread that leaves SIGUSR2 unblocked. */
static void *t3_main(void *a) {
    (void)a;
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR2);
    pthread_sigmask(SIG_UNBLOCK, &s, 0);
    t3_tid = tid();
    while (!stop) nap(5);
    return 0;
}

/* Blocks SIGUSR1 and reports whether it sees it pending after a tgkill. */
static volatile int t4_ready, t4_go, t4_pending;
static volatile pid_t t4_tid;
static void *t4_main(void *a) {
    (void)a;
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &s, 0);
    t4_tid = tid();
    t4_ready = 1;
    while (!t4_go) nap(2);
    sigset_t p;
    sigpending(&p);
    t4_pending = sigismember(&p, SIGUSR1);
    /* consume it so it never reaches the handler */
    int sig = 0;
    sigwait(&s, &sig);
    t4_pending += (sig == SIGUSR1);
    return 0;
}

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, 0);
    sa.sa_handler = on_usr2;
    sigaction(SIGUSR2, &sa, 0);

    /* Every thread inherits SIGUSR2 blocked; t3 alone unblocks it. */
    sigset_t s2;
    sigemptyset(&s2);
    sigaddset(&s2, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &s2, 0);

    pthread_t t2, t3, t4;
    pthread_create(&t2, 0, t2_main, 0);
    pthread_create(&t3, 0, t3_main, 0);
    while (!t2_tid || !t3_tid) nap(2);

    pthread_kill(t2, SIGUSR1);
    for (int i = 0; i < 2000 && !hits1; i++) nap(2);
    printf("usr1 hits %d\n", hits1);
    printf("on target %d\n", handler_tid1 == t2_tid);
    printf("not on main %d\n", handler_tid1 != tid());

    kill(getpid(), SIGUSR2);
    for (int i = 0; i < 2000 && !hits2; i++) nap(2);
    printf("usr2 hits %d\n", hits2);
    printf("handled by the unblocked thread %d\n", handler_tid2 == t3_tid);

    /* A second process-directed signal goes to the same (only eligible) thread. */
    kill(getpid(), SIGUSR2);
    for (int i = 0; i < 2000 && hits2 < 2; i++) nap(2);
    printf("usr2 hits %d again on it %d\n", hits2, handler_tid2 == t3_tid);

    pthread_create(&t4, 0, t4_main, 0);
    while (!t4_ready) nap(2);
    pthread_kill(t4, SIGUSR1);
    nap(20);
    t4_go = 1;
    pthread_join(t4, 0);
    printf("blocked thread saw it pending and sigwait took it %d\n", t4_pending);
    printf("handler untouched %d\n", hits1 == 1);
    sigset_t p;
    sigpending(&p);
    printf("main sees usr1 pending %d\n", sigismember(&p, SIGUSR1));

    stop = 1;
    pthread_join(t2, 0);
    pthread_join(t3, 0);
    return 0;
}
