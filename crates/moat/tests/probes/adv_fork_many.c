/* Attack: many processes alive at once. Fork N children (default 500) that
 * each block reading a pipe, so all are alive together; then close the
 * pipe and reap them all. Usage: adv_fork_many [N].
 *
 * Expected (as natively, the oracle): every fork succeeds and every child
 * exits 0 once the pipe closes. Per-process costs in the Sentry must be
 * what the process uses, not a fixed reservation (a 1 GiB reservation each
 * in a 64 GiB memory file fails the 62nd fork with ENOMEM). */
#include "adv_common.h"

#include <errno.h>

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 500;
    int p[2];
    if (pipe(p) != 0)
        return 2;
    int forked = 0;
    for (; forked < n; forked++) {
        pid_t pid = fork();
        if (pid < 0) {
            say("fork %d of %d failed: %s\n", forked + 1, n, strerrorname_np(errno));
            break;
        }
        if (pid == 0) {
            close(p[1]);
            char c;
            _exit(read(p[0], &c, 1) == 0 ? 0 : 1);
        }
    }
    if (forked == n)
        say("%d children alive at once\n", forked);
    close(p[1]);
    int clean = 0, reaped = 0, st;
    while (wait(&st) > 0) {
        reaped++;
        clean += WIFEXITED(st) && WEXITSTATUS(st) == 0;
    }
    say("reaped %d, %d exited 0\n", reaped, clean);
    return forked == n && clean == n ? 0 : 1;
}
