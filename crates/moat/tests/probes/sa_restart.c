/* SA_RESTART versus EINTR: a read() blocked on an empty pipe is interrupted by a
   SIGALRM (from setitimer, then alarm) whose handler runs on the reading thread.
   With SA_RESTART the read is transparently restarted and returns the byte that a
   second thread writes only after the handler has run; without SA_RESTART the
   read returns -1 with errno EINTR. Also checks that a write() into a full pipe
   and a blocked wait4() behave the same way, and that nanosleep is never
   restarted (it returns EINTR even with SA_RESTART). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile int hits;
static void on_alrm(int s) {
    (void)s;
    hits++;
}

static void nap(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, 0);
}

static void install(int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alrm;
    sa.sa_flags = flags;
    sigaction(SIGALRM, &sa, 0);
}

static void arm_ms(long ms) {
    struct itimerval it = {{0, 0}, {ms / 1000, (ms % 1000) * 1000}};
    setitimer(ITIMER_REAL, &it, 0);
}

static int wfd;
/* Writes one byte only once the handler has run, then a little later. */
static void *late_writer(void *a) {
    (void)a;
    while (!hits) nap(2);
    nap(50);
    (void)!write(wfd, "x", 1);
    return 0;
}

/* Drains a full pipe only after the handler has run. */
static int rfd_drain;
static void *late_reader(void *a) {
    (void)a;
    char buf[4096];
    while (!hits) nap(2);
    nap(50);
    (void)!read(rfd_drain, buf, sizeof buf);
    return 0;
}

int main(void) {
    /* Helper threads never take SIGALRM: they are created with it blocked. */
    sigset_t al;
    sigemptyset(&al);
    sigaddset(&al, SIGALRM);

    /* 1. read with SA_RESTART */
    {
        int p[2];
        if (pipe(p)) return 1;
        wfd = p[1];
        install(SA_RESTART);
        hits = 0;
        pthread_t t;
        pthread_sigmask(SIG_BLOCK, &al, 0);
        pthread_create(&t, 0, late_writer, 0);
        pthread_sigmask(SIG_UNBLOCK, &al, 0);
        arm_ms(50);
        char c = 0;
        errno = 0;
        ssize_t n = read(p[0], &c, 1);
        printf("SA_RESTART read: n=%zd c=%c errno=%d hits=%d\n", n, c ? c : '-', n < 0 ? errno : 0, hits);
        pthread_join(t, 0);
        close(p[0]);
        close(p[1]);
    }

    /* 2. read without SA_RESTART (alarm(1) this time) */
    {
        int p[2];
        if (pipe(p)) return 1;
        install(0);
        hits = 0;
        alarm(1);
        char c = 0;
        errno = 0;
        ssize_t n = read(p[0], &c, 1);
        int e = errno;
        printf("no SA_RESTART read: n=%zd EINTR=%d hits=%d\n", n, e == EINTR, hits);
        close(p[0]);
        close(p[1]);
    }

    /* 3. write into a full pipe, with and without SA_RESTART */
    for (int restart = 1; restart >= 0; restart--) {
        int p[2];
        if (pipe(p)) return 1;
        fcntl(p[1], F_SETFL, O_NONBLOCK);
        char buf[4096];
        memset(buf, 'y', sizeof buf);
        long filled = 0;
        for (;;) {
            ssize_t n = write(p[1], buf, sizeof buf);
            if (n <= 0) break;
            filled += n;
        }
        fcntl(p[1], F_SETFL, 0);
        install(restart ? SA_RESTART : 0);
        hits = 0;
        rfd_drain = p[0];
        pthread_t t;
        if (restart) {
            pthread_sigmask(SIG_BLOCK, &al, 0);
            pthread_create(&t, 0, late_reader, 0);
            pthread_sigmask(SIG_UNBLOCK, &al, 0);
        }
        arm_ms(50);
        errno = 0;
        ssize_t n = write(p[1], buf, 1);
        int e = errno;
        printf("%s full-pipe write: n=%zd EINTR=%d hits=%d filled>0 %d\n", restart ? "SA_RESTART" : "no SA_RESTART",
               n, n < 0 && e == EINTR, hits, filled > 0);
        if (restart) pthread_join(t, 0);
        close(p[0]);
        close(p[1]);
    }

    /* 4. wait4 on a child that outlives the alarm */
    for (int restart = 1; restart >= 0; restart--) {
        install(restart ? SA_RESTART : 0);
        hits = 0;
        pid_t c = fork();
        if (c == 0) {
            nap(300);
            _exit(5);
        }
        arm_ms(50);
        int st = 0;
        errno = 0;
        pid_t r = waitpid(c, &st, 0);
        int e = errno;
        printf("%s waitpid: reaped=%d EINTR=%d hits=%d\n", restart ? "SA_RESTART" : "no SA_RESTART", r == c,
               r < 0 && e == EINTR, hits);
        if (r != c) {
            r = waitpid(c, &st, 0);
            printf("  then reaped=%d\n", r == c);
        }
        printf("  status exited=%d code=%d\n", WIFEXITED(st), WEXITSTATUS(st));
    }

    /* 5. nanosleep is never restarted; it reports the remaining time. */
    {
        install(SA_RESTART);
        hits = 0;
        arm_ms(50);
        struct timespec req = {5, 0}, rem = {0, 0};
        errno = 0;
        int r = nanosleep(&req, &rem);
        int e = errno;
        printf("SA_RESTART nanosleep: r=%d EINTR=%d hits=%d rem in [3s,5s) %d\n", r, e == EINTR, hits,
               rem.tv_sec >= 3 && rem.tv_sec < 5);
    }
    return 0;
}
