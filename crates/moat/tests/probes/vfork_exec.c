/* vfork + execve: the child execve's /bin/echo while the parent is suspended; the
   parent then waitpid's and prints the exit status. A vfork child that _exit(7)s
   reports status 7, a failed execve of a missing file lets the child _exit with
   its own code, and posix_spawn (which glibc implements with
   CLONE_VM|CLONE_VFORK) of /bin/echo works too. Memory sharing: the child's store
   to a variable before execve is visible to the parent, the parent only resumes
   after the child has exited (it sees the child's last store), and posix_spawn of
   a missing file reports ENOENT (glibc's child passes the errno back through the
   shared memory). Arguments select sections (exec, exit, missing, spawn, shared,
   suspend, spawn_enoent); none runs them all. */
#define _GNU_SOURCE
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void status(const char *what, pid_t c, pid_t r, int st) {
    printf("%s: reaped=%d exited=%d code=%d signaled=%d\n", what, r == c, WIFEXITED(st), WEXITSTATUS(st),
           WIFSIGNALED(st));
    fflush(stdout);
}

static void sec_exec(void) {
    fflush(stdout);
    pid_t c = vfork();
    if (c == 0) {
        char *argv[] = {"echo", "from-vfork-child", 0};
        execve("/bin/echo", argv, environ);
        _exit(127);
    }
    int st = 0;
    pid_t r = waitpid(c, &st, 0);
    status("vfork+execve echo", c, r, st);
}

static void sec_exit(void) {
    fflush(stdout);
    pid_t c = vfork();
    if (c == 0) _exit(7);
    int st = 0;
    pid_t r = waitpid(c, &st, 0);
    status("vfork _exit(7)", c, r, st);
}

static void sec_missing(void) {
    fflush(stdout);
    pid_t c = vfork();
    if (c == 0) {
        char *argv[] = {"nope", 0};
        execve("/nonexistent/definitely-not-here", argv, environ);
        _exit(errno == ENOENT ? 2 : 3);
    }
    int st = 0;
    pid_t r = waitpid(c, &st, 0);
    status("vfork execve missing", c, r, st);
}

static void sec_spawn(void) {
    fflush(stdout);
    pid_t sp;
    char *argv[] = {"echo", "from-posix-spawn", 0};
    int e = posix_spawn(&sp, "/bin/echo", 0, 0, argv, environ);
    int st = 0;
    pid_t r = waitpid(sp, &st, 0); /* before printing: echo runs concurrently */
    printf("posix_spawn returned %d\n", e);
    status("posix_spawn echo", sp, r, st);
}

static void sec_shared(void) {
    volatile int shared = 0;
    fflush(stdout);
    pid_t c = vfork();
    if (c == 0) {
        shared = 42;
        char *argv[] = {"true", 0};
        execve("/bin/true", argv, environ);
        _exit(127);
    }
    int st = 0;
    pid_t r = waitpid(c, &st, 0);
    printf("shared store before execve visible %d\n", shared == 42);
    status("vfork+execve true", c, r, st);
}

static void sec_suspend(void) {
    volatile int order = 0;
    fflush(stdout);
    pid_t c = vfork();
    if (c == 0) {
        order = 1;
        usleep(50 * 1000);
        order = 2;
        _exit(0);
    }
    printf("parent resumed after child exit %d\n", order == 2);
    int st = 0;
    pid_t r = waitpid(c, &st, 0);
    status("vfork sleep+_exit", c, r, st);
}

static void sec_spawn_enoent(void) {
    pid_t sp;
    char *argv[] = {"x", 0};
    int e = posix_spawn(&sp, "/nonexistent/x", 0, 0, argv, environ);
    printf("posix_spawn missing returns ENOENT %d\n", e == ENOENT);
    if (e == 0) waitpid(sp, 0, 0);
}

int main(int argc, char **argv) {
    static const struct {
        const char *name;
        void (*run)(void);
    } secs[] = {
        {"exec", sec_exec},     {"exit", sec_exit},       {"missing", sec_missing},           {"spawn", sec_spawn},
        {"shared", sec_shared}, {"suspend", sec_suspend}, {"spawn_enoent", sec_spawn_enoent},
    };
    for (unsigned i = 0; i < sizeof secs / sizeof secs[0]; i++) {
        int want = argc < 2;
        for (int a = 1; a < argc; a++) want |= !strcmp(argv[a], secs[i].name);
        if (want) secs[i].run();
    }
    return 0;
}
