/* An epoll watching itself through another, and epolls nested past Linux's
 * limit: both refused with ELOOP, and a wait on the first returns. Before
 * the check, the second epoll_ctl succeeded and the wait hung the Sentry's
 * thread on its own lock. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>

int main(void) {
    struct epoll_event ev = {.events = EPOLLIN};
    int a = epoll_create1(0), b = epoll_create1(0);
    int r1 = epoll_ctl(a, EPOLL_CTL_ADD, b, &ev);
    int r2 = epoll_ctl(b, EPOLL_CTL_ADD, a, &ev);
    printf("a watches b: %d; b watches a: %d (%s)\n", r1, r2, r2 ? strerror(errno) : "accepted");
    int e[8], i, r = 0;
    e[0] = epoll_create1(0);
    for (i = 1; i < 8 && r == 0; i++) {
        e[i] = epoll_create1(0);
        r = epoll_ctl(e[i], EPOLL_CTL_ADD, e[i - 1], &ev);
    }
    printf("nesting refused at level %d: %s\n", i - 1, r ? strerror(errno) : "never");
    struct epoll_event out;
    printf("wait on a: %d\n", epoll_wait(a, &out, 1, 0));
    return 0;
}
