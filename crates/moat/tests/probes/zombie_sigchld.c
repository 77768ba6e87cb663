/* Zombie reaping and SIGCHLD. Three children exit with 1, 2 and 3; a SA_SIGINFO
   SIGCHLD handler counts deliveries (they may coalesce, so only count >= 1 is
   printed) and checks si_code is CLD_EXITED with a plausible si_status. A
   zombie can be inspected with waitid(WNOWAIT) and still be reaped afterwards;
   waitpid(-1) then reaps all three (statuses printed sorted). A child killed by
   SIGKILL reports WIFSIGNALED with WTERMSIG 9; waitpid(WNOHANG) on a running
   child returns 0; a stopped child is reported by WUNTRACED and a continued one
   by WCONTINUED; once everything is reaped waitpid(-1) fails with ECHILD. With
   SIGCHLD set to SIG_IGN children are reaped automatically and wait fails with
   ECHILD. Arguments select sections (exit, kill, stop, echild, ignore; echild
   expects the earlier ones to have reaped everything); none runs them all. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t chld_count, bad_info;

static void on_chld(int s, siginfo_t *si, void *uc) {
    (void)s;
    (void)uc;
    chld_count++;
    if (si->si_code == CLD_EXITED) {
        if (si->si_status < 1 || si->si_status > 3) bad_info = 1;
    } else if (si->si_code != CLD_KILLED && si->si_code != CLD_STOPPED && si->si_code != CLD_CONTINUED) {
        bad_info = 1;
    }
}

static void nap(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, 0);
}

static pid_t wait_retry(pid_t p, int *st, int flags) {
    pid_t r;
    do {
        r = waitpid(p, st, flags);
    } while (r == -1 && errno == EINTR);
    return r;
}

static int cmp(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

/* Three children exit 1, 2, 3: SIGCHLD, a WNOWAIT peek, then reaping by waitpid(-1). */
static void sec_exit(void) {
    pid_t kids[3];
    for (int i = 0; i < 3; i++) {
        kids[i] = fork();
        if (kids[i] == 0) _exit(i + 1);
    }

    /* Peek at the second child's zombie without reaping it. */
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int r;
    do {
        r = waitid(P_PID, kids[1], &si, WEXITED | WNOWAIT);
    } while (r == -1 && errno == EINTR);
    printf("waitid WNOWAIT: r=%d pid match %d code CLD_EXITED %d status %d\n", r, si.si_pid == kids[1],
           si.si_code == CLD_EXITED, si.si_status);

    /* All three are zombies eventually; give their SIGCHLDs time to arrive. */
    for (int i = 0; i < 1000 && chld_count == 0; i++) nap(2);
    nap(50);
    printf("SIGCHLD count >= 1: %d, siginfo sane %d\n", chld_count >= 1, !bad_info);

    int sts[3], n = 0, match = 0;
    for (int i = 0; i < 3; i++) {
        int st = 0;
        pid_t p = wait_retry(-1, &st, 0);
        for (int j = 0; j < 3; j++) match += p == kids[j];
        if (WIFEXITED(st)) sts[n++] = WEXITSTATUS(st);
    }
    qsort(sts, n, sizeof sts[0], cmp);
    printf("reaped %d (pids matched %d):", n, match);
    for (int i = 0; i < n; i++) printf(" %d", sts[i]);
    printf("\n");
}

/* A running child: WNOHANG gives 0; SIGKILL ends it with WTERMSIG 9. */
static void sec_kill(void) {
    pid_t c = fork();
    if (c == 0) {
        for (;;) pause();
    }
    int st = 0;
    printf("WNOHANG on running child: %d\n", (int)wait_retry(c, &st, WNOHANG));
    kill(c, SIGKILL);
    pid_t p = wait_retry(c, &st, 0);
    printf("after SIGKILL: reaped=%d WIFSIGNALED %d WTERMSIG %d WIFEXITED %d\n", p == c, WIFSIGNALED(st),
           WTERMSIG(st), WIFEXITED(st));
}

/* Job control: a stopped child is reported by WUNTRACED, a continued one by WCONTINUED. */
static void sec_stop(void) {
    pid_t c = fork();
    if (c == 0) {
        for (;;) pause();
    }
    int st = 0;
    kill(c, SIGSTOP);
    pid_t p = wait_retry(c, &st, WUNTRACED);
    printf("after SIGSTOP: reaped=%d WIFSTOPPED %d WSTOPSIG %d\n", p == c, WIFSTOPPED(st), WSTOPSIG(st));
    kill(c, SIGCONT);
    p = wait_retry(c, &st, WCONTINUED);
    printf("after SIGCONT: reaped=%d WIFCONTINUED %d\n", p == c, WIFCONTINUED(st));
    kill(c, SIGKILL);
    p = wait_retry(c, &st, 0);
    printf("after SIGKILL: reaped=%d WTERMSIG %d\n", p == c, WTERMSIG(st));
}

/* Nothing left to wait for. */
static void sec_echild(void) {
    int st = 0;
    errno = 0;
    pid_t p = wait_retry(-1, &st, 0);
    printf("nothing left: r=%d ECHILD=%d\n", (int)p, errno == ECHILD);
    errno = 0;
    p = wait_retry(-1, &st, WNOHANG);
    printf("nothing left WNOHANG: r=%d ECHILD=%d\n", (int)p, errno == ECHILD);
}

/* SIGCHLD ignored: children never become waitable zombies. */
static void sec_ignore(void) {
    signal(SIGCHLD, SIG_IGN);
    pid_t c = fork();
    if (c == 0) _exit(4);
    int st = 0;
    errno = 0;
    pid_t p = wait_retry(c, &st, 0);
    printf("SIG_IGN auto-reap: r=%d ECHILD=%d\n", (int)p, errno == ECHILD);
}

int main(int argc, char **argv) {
    static const struct {
        const char *name;
        void (*run)(void);
    } secs[] = {
        {"exit", sec_exit}, {"kill", sec_kill}, {"stop", sec_stop}, {"echild", sec_echild}, {"ignore", sec_ignore},
    };
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_chld;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGCHLD, &sa, 0);
    for (unsigned i = 0; i < sizeof secs / sizeof secs[0]; i++) {
        int want = argc < 2;
        for (int a = 1; a < argc; a++) want |= !strcmp(argv[a], secs[i].name);
        if (want) secs[i].run();
        fflush(stdout);
    }
    return 0;
}
