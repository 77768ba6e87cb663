/* POSIX timers: a periodic SIGEV_SIGNAL timer delivers its si_value with SI_TIMER,
   timer_gettime reports the interval, SIGEV_NONE counts nothing, delete works. */
#include <signal.h>
#include <stdio.h>
#include <time.h>

int main(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGRTMIN);
    sigprocmask(SIG_BLOCK, &set, 0);
    struct sigevent ev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGRTMIN, .sigev_value.sival_int = 7};
    timer_t t;
    printf("create %d\n", timer_create(CLOCK_MONOTONIC, &ev, &t));
    struct itimerspec its = {{0, 20 * 1000 * 1000}, {0, 20 * 1000 * 1000}};
    printf("settime %d\n", timer_settime(t, 0, &its, 0));
    int got = 0;
    for (int i = 0; i < 3; i++) {
        siginfo_t si;
        if (sigwaitinfo(&set, &si) == SIGRTMIN && si.si_code == SI_TIMER && si.si_value.sival_int == 7) got++;
    }
    printf("expiries seen %d\n", got);
    struct itimerspec cur;
    timer_gettime(t, &cur);
    printf("interval %ld ms\n", cur.it_interval.tv_nsec / 1000000);
    printf("delete %d, again %d\n", timer_delete(t), timer_delete(t));
    struct sigevent none = {.sigev_notify = SIGEV_NONE};
    timer_t n;
    printf("none create %d\n", timer_create(CLOCK_REALTIME, &none, &n));
    return 0;
}
