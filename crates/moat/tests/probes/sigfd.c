/* signalfd, timerfd, sigqueue with a value, sigtimedwait with a timeout, and an
   epoll set over a timerfd and a signalfd. */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

int main(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    sigprocmask(SIG_BLOCK, &set, 0);

    union sigval v = {.sival_int = 42};
    sigqueue(getpid(), SIGUSR1, v);
    siginfo_t si;
    int s = sigwaitinfo(&set, &si);
    printf("sigwaitinfo %d code=%d value=%d\n", s, si.si_code, si.si_value.sival_int);

    struct timespec ts = {0, 20 * 1000 * 1000};
    printf("sigtimedwait timeout %d\n", sigtimedwait(&set, &si, &ts));

    int sfd = signalfd(-1, &set, SFD_CLOEXEC);
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
    struct itimerspec it = {{0, 10 * 1000 * 1000}, {0, 10 * 1000 * 1000}};
    timerfd_settime(tfd, 0, &it, 0);
    int ep = epoll_create1(0);
    struct epoll_event e = {.events = EPOLLIN, .data.u32 = 1};
    epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &e);
    e.data.u32 = 2;
    epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &e);
    int ticks = 0, sigs = 0;
    kill(getpid(), SIGUSR2);
    while (ticks < 3 || sigs < 1) {
        struct epoll_event out[2];
        int n = epoll_wait(ep, out, 2, 1000);
        for (int i = 0; i < n; i++) {
            if (out[i].data.u32 == 1) {
                uint64_t x;
                if (read(tfd, &x, 8) == 8) ticks++;
            } else {
                struct signalfd_siginfo fi;
                if (read(sfd, &fi, sizeof fi) == sizeof fi && fi.ssi_signo == SIGUSR2) sigs++;
            }
        }
        if (n == 0) break;
    }
    printf("ticks>=3 %d signalfd %d\n", ticks >= 3, sigs);
    it.it_value.tv_nsec = 0;
    it.it_interval.tv_nsec = 0;
    timerfd_settime(tfd, 0, &it, 0);
    struct itimerspec cur;
    timerfd_gettime(tfd, &cur);
    printf("disarmed %ld\n", cur.it_value.tv_nsec);
    return 0;
}
