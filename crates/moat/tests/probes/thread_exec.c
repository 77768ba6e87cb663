/* execve from a non-main thread: while the main thread sleeps (and a third thread
   is blocked in a read), a second thread calls execve. All other threads are
   destroyed and the process continues as the new image with the same pid. With
   no arguments the thread execs "/bin/echo from-thread" (the output must be
   echo's, exit 0). With "self" it re-execs this probe in "after" mode, which
   prints whether its pid is unchanged, whether its tid now equals its pid (the
   exec'ing thread takes over the leader's identity), whether it has a single
   thread, and whether a signal handler and blocked mask were reset/kept as
   execve specifies (handlers reset to default, mask kept). */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char **environ;
static char *self_path;
static int self_mode;
static char pidbuf[32];

static void on_usr2(int s) { (void)s; }

static void *exec_thread(void *a) {
    (void)a;
    usleep(50 * 1000);
    if (self_mode) {
        /* The blocked mask is per-thread: this thread's mask is what survives. */
        sigset_t s;
        sigemptyset(&s);
        sigaddset(&s, SIGUSR1);
        pthread_sigmask(SIG_BLOCK, &s, 0);
        char *argv[] = {self_path, "after", pidbuf, 0};
        execve(self_path, argv, environ);
    } else {
        char *argv[] = {"echo", "from-thread", 0};
        execve("/bin/echo", argv, environ);
    }
    perror("execve");
    _exit(99);
}

static int rfd;
static void *reader(void *a) {
    (void)a;
    char c;
    (void)!read(rfd, &c, 1);
    return 0;
}

static int count_threads(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    int n = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "Threads:", 8)) n = atoi(line + 8);
    fclose(f);
    return n;
}

int main(int argc, char **argv) {
    if (argc >= 3 && !strcmp(argv[1], "after")) {
        pid_t pid = getpid();
        printf("after exec: same pid %d\n", pid == (pid_t)atol(argv[2]));
        printf("after exec: tid == pid %d\n", (pid_t)syscall(SYS_gettid) == pid);
        printf("after exec: threads %d\n", count_threads());
        struct sigaction old;
        sigaction(SIGUSR2, 0, &old);
        printf("after exec: SIGUSR2 handler reset to default %d\n", old.sa_handler == SIG_DFL);
        sigset_t m;
        sigprocmask(SIG_BLOCK, 0, &m);
        printf("after exec: SIGUSR1 still blocked %d\n", sigismember(&m, SIGUSR1));
        return 0;
    }
    self_mode = argc >= 2 && !strcmp(argv[1], "self");
    self_path = argv[0];
    snprintf(pidbuf, sizeof pidbuf, "%ld", (long)getpid());
    signal(SIGUSR2, on_usr2);

    int p[2];
    if (pipe(p)) return 1;
    rfd = p[0];
    pthread_t r, t;
    pthread_create(&r, 0, reader, 0);
    pthread_create(&t, 0, exec_thread, 0);
    sleep(20);
    printf("main woke up: execve did not happen\n");
    return 1;
}
