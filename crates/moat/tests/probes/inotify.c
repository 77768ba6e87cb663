/* inotify on a directory: create, write+close, rename within it, delete, mkdir. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>
#include <fcntl.h>
int main(void) {
    char d[] = "/tmp/inoXXXXXX";
    if (!mkdtemp(d)) return 1;
    int in = inotify_init1(IN_NONBLOCK);
    int wd = inotify_add_watch(in, d, IN_CREATE | IN_DELETE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO);
    char p[256], q[256];
    snprintf(p, sizeof p, "%s/a", d); snprintf(q, sizeof q, "%s/b", d);
    int fd = open(p, O_CREAT | O_WRONLY, 0600); write(fd, "x", 1); close(fd);
    rename(p, q); unlink(q);
    snprintf(p, sizeof p, "%s/sub", d); mkdir(p, 0700); rmdir(p);
    char buf[4096] __attribute__((aligned(8)));
    ssize_t n = read(in, buf, sizeof buf);
    unsigned cookie_from = 0;
    for (char *c = buf; c < buf + n;) {
        struct inotify_event *e = (struct inotify_event *)c;
        printf("wd_ok=%d mask=%#x name=%s cookie_paired=%d\n", e->wd == wd, e->mask, e->len ? e->name : "",
               (e->mask & IN_MOVED_FROM) ? (cookie_from = e->cookie, 1) : (e->mask & IN_MOVED_TO) ? e->cookie == cookie_from : 1);
        c += sizeof *e + e->len;
    }
    printf("rm_watch %d\n", inotify_rm_watch(in, wd));
    rmdir(d);
    return 0;
}
