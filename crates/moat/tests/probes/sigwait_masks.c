/* Temporarily-replaced signal masks and timed signal waits. sigsuspend with an
   empty mask runs the handler of a blocked signal (already pending, or sent later
   by another thread) and returns -1/EINTR with the old mask restored. pselect and
   ppoll with a mask that unblocks SIGUSR2 are interrupted by it (EINTR, handler
   ran, mask restored afterwards); with a mask that keeps it blocked they time out
   (0) and leave the signal pending. rt_sigtimedwait times out with EAGAIN (both
   via glibc's sigtimedwait and the raw syscall, with zero and non-zero timeouts)
   and returns the signal number when one is pending, consuming it. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t usr1, usr2;
static void on_usr1(int s) {
    (void)s;
    usr1++;
}
static void on_usr2(int s) {
    (void)s;
    usr2++;
}

static void nap(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, 0);
}

static int late_sig;
static void *late_kill(void *a) {
    (void)a;
    nap(50);
    kill(getpid(), late_sig);
    return 0;
}

static int blocked(int sig) {
    sigset_t m;
    sigprocmask(SIG_BLOCK, 0, &m);
    return sigismember(&m, sig);
}
static int pending(int sig) {
    sigset_t m;
    sigpending(&m);
    return sigismember(&m, sig);
}

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, 0);
    sa.sa_handler = on_usr2;
    sigaction(SIGUSR2, &sa, 0);

    /* Every thread (the helper ones too) has USR1, USR2 and ALRM blocked. */
    sigset_t b, empty, only_usr2_blocked;
    sigemptyset(&b);
    sigaddset(&b, SIGUSR1);
    sigaddset(&b, SIGUSR2);
    sigaddset(&b, SIGALRM);
    sigprocmask(SIG_BLOCK, &b, 0);
    sigemptyset(&empty);
    sigemptyset(&only_usr2_blocked);
    sigaddset(&only_usr2_blocked, SIGUSR2);

    /* sigsuspend on an already-pending signal. */
    kill(getpid(), SIGUSR1);
    printf("usr1 pending before sigsuspend %d, handler ran %d\n", pending(SIGUSR1), usr1);
    errno = 0;
    int r = sigsuspend(&empty);
    printf("sigsuspend (pending): r=%d EINTR=%d usr1=%d still blocked %d\n", r, errno == EINTR, usr1,
           blocked(SIGUSR1));

    /* sigsuspend woken by a signal sent later from another thread. */
    pthread_t t;
    late_sig = SIGUSR1;
    pthread_create(&t, 0, late_kill, 0);
    errno = 0;
    r = sigsuspend(&empty);
    printf("sigsuspend (late): r=%d EINTR=%d usr1=%d still blocked %d\n", r, errno == EINTR, usr1, blocked(SIGUSR1));
    pthread_join(t, 0);

    int p[2];
    if (pipe(p)) return 1;

    /* pselect interrupted by a signal its mask unblocks. */
    late_sig = SIGUSR2;
    pthread_create(&t, 0, late_kill, 0);
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(p[0], &rs);
    struct timespec five = {5, 0};
    errno = 0;
    r = pselect(p[0] + 1, &rs, 0, 0, &five, &empty);
    printf("pselect unblocking mask: r=%d EINTR=%d usr2=%d still blocked %d\n", r, errno == EINTR, usr2,
           blocked(SIGUSR2));
    pthread_join(t, 0);

    /* pselect whose mask keeps it blocked: times out and the signal stays pending. */
    kill(getpid(), SIGUSR2);
    FD_ZERO(&rs);
    FD_SET(p[0], &rs);
    struct timespec short_to = {0, 50 * 1000 * 1000};
    errno = 0;
    r = pselect(p[0] + 1, &rs, 0, 0, &short_to, &only_usr2_blocked);
    printf("pselect blocking mask: r=%d usr2=%d pending %d\n", r, usr2, pending(SIGUSR2));

    /* ppoll with the signal already pending and a mask that unblocks it: EINTR at once. */
    struct pollfd pf = {.fd = p[0], .events = POLLIN};
    errno = 0;
    r = ppoll(&pf, 1, &five, &empty);
    printf("ppoll pending+unblocking mask: r=%d EINTR=%d usr2=%d pending %d still blocked %d\n", r, errno == EINTR,
           usr2, pending(SIGUSR2), blocked(SIGUSR2));

    /* ppoll with data ready and a signal pending that the mask keeps blocked: returns 1. */
    (void)!write(p[1], "x", 1);
    kill(getpid(), SIGUSR2);
    r = ppoll(&pf, 1, &five, &only_usr2_blocked);
    printf("ppoll ready: r=%d revents IN %d usr2=%d pending %d\n", r, (pf.revents & POLLIN) != 0, usr2,
           pending(SIGUSR2));

    /* sigtimedwait consumes the pending signal without running the handler. */
    sigset_t w;
    sigemptyset(&w);
    sigaddset(&w, SIGUSR2);
    siginfo_t si;
    struct timespec zero = {0, 0};
    r = sigtimedwait(&w, &si, &zero);
    printf("sigtimedwait pending: r=%d is SIGUSR2 %d si_signo ok %d SI_USER %d usr2=%d pending %d\n", r,
           r == SIGUSR2, si.si_signo == SIGUSR2, si.si_code == SI_USER, usr2, pending(SIGUSR2));

    errno = 0;
    r = sigtimedwait(&w, &si, &zero);
    printf("sigtimedwait zero timeout: r=%d EAGAIN=%d\n", r, errno == EAGAIN);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    errno = 0;
    r = sigtimedwait(&w, &si, &short_to);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    printf("sigtimedwait 50ms: r=%d EAGAIN=%d waited >= 40ms %d\n", r, errno == EAGAIN, ms >= 40);
    errno = 0;
    long rr = syscall(SYS_rt_sigtimedwait, &w, &si, &short_to, 8);
    printf("raw rt_sigtimedwait: r=%ld EAGAIN=%d\n", rr, errno == EAGAIN);
    errno = 0;
    rr = syscall(SYS_rt_sigtimedwait, &w, &si, &short_to, 4);
    printf("raw rt_sigtimedwait bad sigsetsize: r=%ld EINVAL=%d\n", rr, errno == EINVAL);

    /* A signal sent later by another thread ends the wait with its number. */
    late_sig = SIGALRM;
    sigaddset(&w, SIGALRM);
    pthread_create(&t, 0, late_kill, 0);
    rr = syscall(SYS_rt_sigtimedwait, &w, &si, &five, 8);
    printf("raw rt_sigtimedwait late: is SIGALRM %d\n", rr == SIGALRM);
    pthread_join(t, 0);

    /* A signal not in the set does not end the wait (blocked) ... */
    kill(getpid(), SIGUSR1);
    errno = 0;
    r = sigtimedwait(&w, &si, &short_to);
    printf("other blocked signal ignored: r=%d EAGAIN=%d usr1 pending %d\n", r, errno == EAGAIN, pending(SIGUSR1));
    /* ... but an unblocked one with a handler interrupts it with EINTR. */
    sigset_t u1;
    sigemptyset(&u1);
    sigaddset(&u1, SIGUSR1);
    int before = usr1;
    late_sig = SIGUSR1;
    pthread_create(&t, 0, late_kill, 0); /* created with SIGUSR1 still blocked */
    pthread_sigmask(SIG_UNBLOCK, &u1, 0);
    printf("unblocking ran handler %d\n", usr1 == before + 1);
    errno = 0;
    r = sigtimedwait(&w, &si, &five);
    printf("handled signal interrupts sigtimedwait: r=%d EINTR=%d usr1 ran %d\n", r, errno == EINTR,
           usr1 == before + 2);
    pthread_join(t, 0);
    return 0;
}
