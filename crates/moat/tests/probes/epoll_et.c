/* epoll edge-triggered and one-shot semantics on pipes. With EPOLLET the first
   epoll_wait after a write reports EPOLLIN, a second wait without draining times
   out with 0 events, and another write reports again (even though data was
   already there). Level-triggered keeps reporting. EPOLLONESHOT reports once and
   then stays disarmed (even across new writes) until EPOLL_CTL_MOD re-arms it.
   Also: EPOLLET on the write end reports EPOLLOUT once, then again after the
   reader frees space; closing the write end gives EPOLLHUP; EPOLL_CTL_ADD twice
   is EEXIST and MOD/DEL of an unregistered fd is ENOENT. Arguments select
   sections (et, lt, oneshot, errors, et_write, hup); none runs them all. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

static int ep;
static char buf[65536];

static void report(const char *what, int timeout) {
    struct epoll_event ev[4];
    memset(ev, 0, sizeof ev);
    int n = epoll_wait(ep, ev, 4, timeout);
    printf("%-40s n=%d", what, n);
    for (int i = 0; i < n; i++)
        printf(" [tag=%llu%s%s%s]", (unsigned long long)ev[i].data.u64, ev[i].events & EPOLLIN ? " IN" : "",
               ev[i].events & EPOLLOUT ? " OUT" : "", ev[i].events & EPOLLHUP ? " HUP" : "");
    printf("\n");
}

static void add(int fd, unsigned events, unsigned long long tag) {
    struct epoll_event e = {.events = events, .data.u64 = tag};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e)) perror("EPOLL_CTL_ADD");
}

static void mkpipe(int p[2]) {
    if (pipe2(p, O_NONBLOCK)) {
        perror("pipe2");
        _exit(1);
    }
}

/* Edge-triggered read end: a new write re-reports even with data still queued. */
static void sec_et(void) {
    int p[2];
    mkpipe(p);
    add(p[0], EPOLLIN | EPOLLET, 1);
    report("ET empty", 0);
    (void)!write(p[1], "a", 1);
    report("ET after write", 100);
    report("ET again, not drained", 50);
    (void)!write(p[1], "b", 1);
    report("ET after second write", 100);
    report("ET again", 50);
    printf("ET drained %zd\n", read(p[0], buf, sizeof buf));
    report("ET after drain", 0);
    epoll_ctl(ep, EPOLL_CTL_DEL, p[0], 0);
}

/* Level-triggered for contrast. */
static void sec_lt(void) {
    int p[2];
    mkpipe(p);
    add(p[0], EPOLLIN, 2);
    (void)!write(p[1], "a", 1);
    report("LT after write", 100);
    report("LT again, not drained", 50);
    printf("LT drained %zd\n", read(p[0], buf, sizeof buf));
    report("LT after drain", 0);
    epoll_ctl(ep, EPOLL_CTL_DEL, p[0], 0);
}

/* One-shot: disarmed after one report until EPOLL_CTL_MOD. */
static void sec_oneshot(void) {
    int p[2];
    mkpipe(p);
    add(p[0], EPOLLIN | EPOLLONESHOT, 3);
    (void)!write(p[1], "a", 1);
    report("ONESHOT after write", 100);
    report("ONESHOT again", 50);
    (void)!write(p[1], "b", 1);
    report("ONESHOT after another write", 50);
    struct epoll_event e = {.events = EPOLLIN | EPOLLONESHOT, .data.u64 = 4};
    printf("MOD %d\n", epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &e));
    report("ONESHOT after MOD", 100);
    report("ONESHOT after MOD, again", 50);
    printf("ONESHOT drained %zd\n", read(p[0], buf, sizeof buf));
    e.events = EPOLLIN | EPOLLONESHOT | EPOLLET;
    e.data.u64 = 5;
    printf("MOD %d\n", epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &e));
    report("ONESHOT|ET re-armed, empty", 50);
    (void)!write(p[1], "c", 1);
    report("ONESHOT|ET after write", 100);
    report("ONESHOT|ET again", 50);
    epoll_ctl(ep, EPOLL_CTL_DEL, p[0], 0);
}

static void sec_errors(void) {
    int p[2];
    mkpipe(p);
    add(p[0], EPOLLIN, 8);
    struct epoll_event e = {.events = EPOLLIN, .data.u64 = 9};
    errno = 0;
    printf("ADD twice EEXIST %d\n", epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &e) == -1 && errno == EEXIST);
    errno = 0;
    printf("MOD unregistered ENOENT %d\n", epoll_ctl(ep, EPOLL_CTL_MOD, p[1], &e) == -1 && errno == ENOENT);
    errno = 0;
    printf("DEL unregistered ENOENT %d\n", epoll_ctl(ep, EPOLL_CTL_DEL, p[1], 0) == -1 && errno == ENOENT);
    epoll_ctl(ep, EPOLL_CTL_DEL, p[0], 0);
}

/* Edge-triggered write end: fill, drain, get a new edge. */
static void sec_et_write(void) {
    int p[2];
    mkpipe(p);
    add(p[1], EPOLLOUT | EPOLLET, 6);
    report("ET write end, empty pipe", 100);
    report("ET write end, again", 50);
    long filled = 0;
    memset(buf, 'z', sizeof buf);
    for (;;) {
        ssize_t n = write(p[1], buf, sizeof buf);
        if (n <= 0) break;
        filled += n;
    }
    report("ET write end, full", 50);
    long drained = 0;
    for (;;) {
        ssize_t n = read(p[0], buf, sizeof buf);
        if (n <= 0) break;
        drained += n;
    }
    printf("filled == drained %d\n", filled == drained);
    report("ET write end, after drain", 100);
    epoll_ctl(ep, EPOLL_CTL_DEL, p[1], 0);
}

/* Hang-up on the read end when the writer closes. */
static void sec_hup(void) {
    int p[2];
    mkpipe(p);
    add(p[0], EPOLLIN, 7);
    close(p[1]);
    report("read end after writer closed", 100);
    epoll_ctl(ep, EPOLL_CTL_DEL, p[0], 0);
}

int main(int argc, char **argv) {
    static const struct {
        const char *name;
        void (*run)(void);
    } secs[] = {
        {"et", sec_et},         {"lt", sec_lt},         {"oneshot", sec_oneshot},
        {"errors", sec_errors}, {"et_write", sec_et_write}, {"hup", sec_hup},
    };
    ep = epoll_create1(EPOLL_CLOEXEC);
    for (unsigned i = 0; i < sizeof secs / sizeof secs[0]; i++) {
        int want = argc < 2;
        for (int a = 1; a < argc; a++) want |= !strcmp(argv[a], secs[i].name);
        if (want) secs[i].run();
    }
    return 0;
}
