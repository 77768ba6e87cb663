// Unix socket probe: fd passing with sendmsg/recvmsg, SOCK_SEQPACKET and
// SOCK_DGRAM boundaries, poll readiness, SIGPIPE and error codes. Prints one
// line per check; the output must be identical natively and under moat.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t sigpipes;
// An address that is never mapped, hidden from the compiler's bounds checks.
static volatile uintptr_t argc_bad_pointer = 8;
static void on_sigpipe(int sig) { (void)sig; sigpipes++; }

#define CHECK(what, expr) printf("%-44s %s\n", what, (expr) ? "ok" : "FAILED")
#define ERR(what, call) do { errno = 0; long r_ = (long)(call); \
    printf("%-44s %ld %s\n", what, r_, r_ < 0 ? strerrorname_np(errno) : "-"); } while (0)

static int send_fds(int sock, const int *fds, int n, const char *data) {
    char ctl[CMSG_SPACE(sizeof(int) * 8)];
    memset(ctl, 0, sizeof ctl);
    struct iovec iov = { (void *)data, strlen(data) };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
                        .msg_controllen = CMSG_SPACE(sizeof(int) * n) };
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * n);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
    return sendmsg(sock, &m, 0);
}

static void fd_passing(void) {
    int sv[2], p[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    pipe(p);
    write(p[1], "via passed fd", 13);
    CHECK("sendmsg SCM_RIGHTS", send_fds(sv[0], p, 2, "two fds") == 7);
    close(p[0]);

    char buf[64] = {0}, ctl[CMSG_SPACE(sizeof(int) * 2)];
    struct iovec iov = { buf, sizeof buf };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl };
    ssize_t n = recvmsg(sv[1], &m, MSG_CMSG_CLOEXEC);
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    int got[2] = {-1, -1};
    if (c && c->cmsg_type == SCM_RIGHTS && c->cmsg_len == CMSG_LEN(sizeof got)) memcpy(got, CMSG_DATA(c), sizeof got);
    printf("recvmsg: %zd bytes '%s' flags=%#x ncmsg_len=%zu\n", n, buf, m.msg_flags, (size_t)(c ? c->cmsg_len : 0));
    CHECK("received fds are close-on-exec", fcntl(got[0], F_GETFD) == FD_CLOEXEC && fcntl(got[1], F_GETFD) == FD_CLOEXEC);
    memset(buf, 0, sizeof buf);
    read(got[0], buf, sizeof buf);
    printf("read through passed fd: '%s'\n", buf);
    write(got[1], "round trip", 10);
    memset(buf, 0, sizeof buf);
    read(got[0], buf, sizeof buf);
    printf("write through passed fd: '%s'\n", buf);

    // Room for one descriptor of three: MSG_CTRUNC, the rest are closed.
    int three[3] = {got[0], got[1], got[0]};
    send_fds(sv[0], three, 3, "3");
    char small[CMSG_SPACE(sizeof(int))];
    m.msg_control = small;
    m.msg_controllen = sizeof small;
    n = recvmsg(sv[1], &m, 0);
    c = CMSG_FIRSTHDR(&m);
    printf("short control: n=%zd ctrunc=%d controllen=%zu cmsg_len=%zu\n", n, !!(m.msg_flags & MSG_CTRUNC),
           (size_t)m.msg_controllen, (size_t)(c ? c->cmsg_len : 0));
    int one = -1;
    if (c) memcpy(&one, CMSG_DATA(c), sizeof one);
    CHECK("the one fd that fit is open, not cloexec", fcntl(one, F_GETFD) == 0);

    // No control buffer at all.
    send_fds(sv[0], three, 1, "0");
    m.msg_control = NULL;
    m.msg_controllen = 0;
    n = recvmsg(sv[1], &m, 0);
    printf("no control: n=%zd ctrunc=%d\n", n, !!(m.msg_flags & MSG_CTRUNC));

    // Bytes sent after a message with fds are not merged into its read.
    send_fds(sv[0], three, 1, "AB");
    write(sv[0], "CD", 2);
    m.msg_control = ctl;
    m.msg_controllen = sizeof ctl;
    memset(buf, 0, sizeof buf);
    n = recvmsg(sv[1], &m, 0);
    printf("stream read stops after fds: n=%zd '%s'\n", n, buf);
    memcpy(&one, CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof one);
    close(one);
    memset(buf, 0, sizeof buf);
    printf("then: n=%zd '%s'\n", read(sv[1], buf, sizeof buf), buf);

    // A child receives a descriptor from its parent.
    pid_t pid = fork();
    if (pid == 0) {
        char cb[CMSG_SPACE(sizeof(int))], d[8];
        struct iovec ci = { d, sizeof d };
        struct msghdr cm = { .msg_iov = &ci, .msg_iovlen = 1, .msg_control = cb, .msg_controllen = sizeof cb };
        if (recvmsg(sv[1], &cm, 0) < 0) _exit(1);
        int fd;
        memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&cm)), sizeof fd);
        write(fd, "from child", 10);
        _exit(0);
    }
    send_fds(sv[0], &got[1], 1, "w");
    int st;
    waitpid(pid, &st, 0);
    memset(buf, 0, sizeof buf);
    read(got[0], buf, sizeof buf);
    printf("child wrote through passed fd: '%s' status=%d\n", buf, st);
    close(got[0]);
    close(got[1]);
    close(sv[0]);
    close(sv[1]);
}

static void seqpacket(const char *dir) {
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof a.sun_path, "%s/seq.sock", dir);
    int l = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    CHECK("bind seqpacket path", bind(l, (struct sockaddr *)&a, sizeof a) == 0);
    ERR("bind again", bind(l, (struct sockaddr *)&a, sizeof a));
    int l2 = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    ERR("bind to a taken path", bind(l2, (struct sockaddr *)&a, sizeof a));
    ERR("connect before listen", connect(l2, (struct sockaddr *)&a, sizeof a));
    CHECK("listen", listen(l, 4) == 0);
    struct sockaddr_un got;
    socklen_t gl = sizeof got;
    getsockname(l, (struct sockaddr *)&got, &gl);
    CHECK("getsockname is the path", gl == offsetof(struct sockaddr_un, sun_path) + strlen(a.sun_path) + 1 &&
                                          strcmp(got.sun_path, a.sun_path) == 0);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    ERR("stream connect to seqpacket", connect(s, (struct sockaddr *)&a, sizeof a));
    close(s);

    int c = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    CHECK("connect", connect(c, (struct sockaddr *)&a, sizeof a) == 0);
    ERR("connect again", connect(c, (struct sockaddr *)&a, sizeof a));
    struct pollfd pl = { l, POLLIN | POLLOUT, 0 };
    int pn = poll(&pl, 1, 1000);
    printf("listener poll: %d revents=%#x\n", pn, pl.revents);
    gl = sizeof got;
    int srv = accept(l, (struct sockaddr *)&got, &gl);
    printf("accepted: ok=%d peer addrlen=%u\n", srv >= 0, gl);
    gl = sizeof got;
    getpeername(c, (struct sockaddr *)&got, &gl);
    CHECK("client's peer is the path", strcmp(got.sun_path, a.sun_path) == 0);

    send(c, "first", 5, 0);
    send(c, "", 0, 0);
    send(c, "the third message", 17, 0);
    send(c, "fourth", 6, 0);
    char buf[64];
    for (int i = 0; i < 2; i++) {
        memset(buf, 0, sizeof buf);
        ssize_t n = recv(srv, buf, sizeof buf, 0);
        printf("seqpacket recv %d: %zd '%s'\n", i, n, buf);
    }
    memset(buf, 0, sizeof buf);
    struct iovec iov = { buf, 3 };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
    ssize_t n = recvmsg(srv, &m, 0);
    printf("short buffer: %zd '%s' trunc=%d\n", n, buf, !!(m.msg_flags & MSG_TRUNC));
    printf("MSG_PEEK|MSG_TRUNC: %zd\n", recv(srv, buf, 2, MSG_PEEK | MSG_TRUNC));
    memset(buf, 0, sizeof buf);
    printf("then: %zd '%s'\n", recv(srv, buf, sizeof buf, 0), buf);

    struct pollfd pc = { c, POLLIN | POLLOUT | POLLRDHUP, 0 };
    pn = poll(&pc, 1, 0);
    printf("client poll: %d revents=%#x\n", pn, pc.revents);
    close(srv);
    pn = poll(&pc, 1, 0);
    printf("client poll after peer close: %d revents=%#x\n", pn, pc.revents);
    printf("recv after peer close: %zd\n", recv(c, buf, sizeof buf, 0));
    ERR("send after peer close (MSG_NOSIGNAL)", send(c, "x", 1, MSG_NOSIGNAL));
    close(c);

    fcntl(l, F_SETFL, O_NONBLOCK);
    ERR("nonblocking accept, nothing pending", accept(l, NULL, NULL));
    close(l);
    close(l2);
    ERR("connect after the listener closed", connect(socket(AF_UNIX, SOCK_SEQPACKET, 0), (struct sockaddr *)&a, sizeof a));
    unlink(a.sun_path);
    ERR("connect after unlink", connect(socket(AF_UNIX, SOCK_SEQPACKET, 0), (struct sockaddr *)&a, sizeof a));
}

static void dgram(const char *dir) {
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof a.sun_path, "%s/dg.sock", dir);
    int r = socket(AF_UNIX, SOCK_DGRAM, 0);
    bind(r, (struct sockaddr *)&a, sizeof a);
    int s = socket(AF_UNIX, SOCK_DGRAM, 0);
    ERR("send unconnected", send(s, "x", 1, 0));
    sendto(s, "hello", 5, 0, (struct sockaddr *)&a, sizeof a);
    sendto(s, "world!", 6, 0, (struct sockaddr *)&a, sizeof a);
    struct sockaddr_un from;
    socklen_t fl = sizeof from;
    char buf[64] = {0};
    ssize_t n = recvfrom(r, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
    printf("recvfrom unnamed sender: %zd '%s' addrlen=%u\n", n, buf, fl);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    ERR("autobind", bind(s, (struct sockaddr *)&sa, sizeof(sa_family_t)));
    fl = sizeof from;
    getsockname(s, (struct sockaddr *)&from, &fl);
    printf("autobound name: len=%u abstract=%d\n", fl, from.sun_path[0] == 0);
    sendto(s, "named", 5, 0, (struct sockaddr *)&a, sizeof a);
    n = recv(r, buf, sizeof buf, 0);
    printf("datagrams keep boundaries: %zd\n", n);
    fl = sizeof from;
    memset(buf, 0, sizeof buf);
    n = recvfrom(r, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
    printf("recvfrom named sender: %zd '%s' addrlen=%u abstract=%d\n", n, buf, fl, from.sun_path[0] == 0);
    ERR("listen on dgram", listen(r, 1));
    int big = 300000;
    char *p = calloc(1, big);
    ERR("oversized datagram", sendto(s, p, big, 0, (struct sockaddr *)&a, sizeof a));
    free(p);
    int st = socket(AF_UNIX, SOCK_STREAM, 0);
    ERR("stream connect to dgram", connect(st, (struct sockaddr *)&a, sizeof a));
    close(st);
    close(r);
    close(s);
    unlink(a.sun_path);
}

static void stream_misc(const char *dir) {
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    struct stat st;
    fstat(sv[0], &st);
    CHECK("fstat says S_IFSOCK", S_ISSOCK(st.st_mode));
    struct ucred cr;
    socklen_t cl = sizeof cr;
    getsockopt(sv[0], SOL_SOCKET, SO_PEERCRED, &cr, &cl);
    CHECK("SO_PEERCRED is this process", cl == sizeof cr && cr.pid == getpid() && cr.uid == geteuid());
    int v;
    socklen_t vl = sizeof v;
    getsockopt(sv[0], SOL_SOCKET, SO_TYPE, &v, &vl);
    printf("SO_TYPE=%d SO_ACCEPTCONN=", v);
    getsockopt(sv[0], SOL_SOCKET, SO_ACCEPTCONN, &v, &vl);
    printf("%d\n", v);
    ERR("getsockopt unknown level", getsockopt(sv[0], 6, 1, &v, &vl));
    ERR("getsockopt unknown option", getsockopt(sv[0], SOL_SOCKET, 9999, &v, &vl));

    struct iovec iov[3] = { {"wri", 3}, {"te", 2}, {"v!", 2} };
    printf("writev: %zd\n", writev(sv[0], iov, 3));
    char a[4] = {0}, b[8] = {0};
    struct iovec riov[2] = { {a, 3}, {b, 7} };
    printf("readv: %zd '%s' '%s'\n", readv(sv[1], riov, 2), a, b);

    printf("sigpipes before: %d\n", (int)sigpipes);
    shutdown(sv[1], SHUT_RD);
    ERR("send to a reader that shut down", send(sv[0], "x", 1, 0));
    printf("sigpipes after send: %d\n", (int)sigpipes);
    ERR("send MSG_NOSIGNAL", send(sv[0], "x", 1, MSG_NOSIGNAL));
    ERR("write to a reader that shut down", write(sv[0], "x", 1));
    printf("sigpipes after write: %d\n", (int)sigpipes);
    shutdown(sv[0], SHUT_WR);
    struct pollfd pf = { sv[1], POLLIN | POLLOUT | POLLRDHUP, 0 };
    int pn = poll(&pf, 1, 0);
    printf("poll after both shutdowns: %d revents=%#x\n", pn, pf.revents);
    pf.fd = sv[0];
    pn = poll(&pf, 1, 0);
    printf("writer side: %d revents=%#x\n", pn, pf.revents);
    char c;
    printf("read after SHUT_WR: %zd\n", read(sv[1], &c, 1));
    ERR("shutdown with a bad how", shutdown(sv[0], 7));
    close(sv[0]);
    close(sv[1]);

    int u = socket(AF_UNIX, SOCK_STREAM, 0);
    ERR("recv unconnected stream", recv(u, &c, 1, 0));
    ERR("send unconnected stream", send(u, &c, 1, 0));
    ERR("accept without listen", accept(u, NULL, NULL));
    ERR("getpeername unconnected", getpeername(u, NULL, NULL));
    struct sockaddr_un bad = { .sun_family = AF_UNIX };
    ERR("bind with addrlen 200", bind(u, (struct sockaddr *)&bad, 200));
    ERR("connect with a bad pointer", connect(u, (struct sockaddr *)8, sizeof bad));
    ERR("sendmsg with a bad msghdr", sendmsg(u, (struct msghdr *)8, 0));
    struct sockaddr_in6 { sa_family_t f; char pad[26]; } in6 = { 10, {0} };
    ERR("connect with AF_INET6 address", connect(u, (struct sockaddr *)&in6, sizeof in6));
    snprintf(bad.sun_path, sizeof bad.sun_path, "%s/missing", dir);
    ERR("connect to a missing path", connect(u, (struct sockaddr *)&bad, sizeof bad));
    snprintf(bad.sun_path, sizeof bad.sun_path, "%s/plain", dir);
    close(open(bad.sun_path, O_CREAT | O_WRONLY, 0600));
    ERR("connect to a plain file", connect(u, (struct sockaddr *)&bad, sizeof bad));
    unlink(bad.sun_path);
    ERR("socket with a bad type", socket(AF_UNIX, 7, 0));
    ERR("socket with a bad protocol", socket(AF_UNIX, SOCK_STREAM, 9));
    ERR("socket with a bad flag", socket(AF_UNIX, SOCK_STREAM | 0x100, 0));
    int *bad_sv = (int *)(uintptr_t)argc_bad_pointer;
    ERR("socketpair with a bad pointer", socketpair(AF_UNIX, SOCK_STREAM, 0, bad_sv));
    ERR("sendto on stream with address", sendto(u, "x", 1, 0, (struct sockaddr *)&bad, sizeof bad));
    close(u);

    // A blocked reader is woken by the writer.
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    pid_t pid = fork();
    if (pid == 0) {
        usleep(20000);
        write(sv[1], "wake up", 7);
        _exit(0);
    }
    char buf[16] = {0};
    printf("blocking read: %zd '%s'\n", read(sv[0], buf, sizeof buf), buf);
    waitpid(pid, NULL, 0);
    // A full socket blocks the writer until the reader drains it.
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    size_t total = 0;
    char chunk[4096] = {0};
    while (write(sv[1], chunk, sizeof chunk) > 0) total += sizeof chunk;
    printf("buffer filled, then: %s\n", strerrorname_np(errno));
    CHECK("a socket buffer holds 64K..1M", total >= 65536 && total <= (1 << 20));
    struct pollfd w = { sv[1], POLLOUT, 0 };
    printf("full writer poll: %d\n", poll(&w, 1, 0));
    size_t drained = 0;
    while (drained < total) {
        ssize_t n = read(sv[0], chunk, sizeof chunk);
        if (n <= 0) break;
        drained += n;
    }
    printf("drained all: %d, writer poll: %d\n", drained == total, poll(&w, 1, 0));
    close(sv[0]);
    close(sv[1]);
}

static void timeouts_mmsg_creds(void) {
    int sv[2];
    socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
    struct timeval tv = { 0, 100000 }; // a whole number of jiffies for any HZ
    setsockopt(sv[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct timeval back;
    socklen_t bl = sizeof back;
    getsockopt(sv[1], SOL_SOCKET, SO_RCVTIMEO, &back, &bl);
    printf("SO_RCVTIMEO: %ld.%06ld\n", (long)back.tv_sec, (long)back.tv_usec);
    char buf[64];
    ERR("recv times out", recv(sv[1], buf, sizeof buf, 0));
    tv.tv_usec = 2000000;
    ERR("SO_RCVTIMEO with usec out of range", setsockopt(sv[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));

    struct mmsghdr out[3], in[4];
    struct iovec oi[3] = { {"a", 1}, {"bb", 2}, {"ccc", 3} }, ii[4];
    char ib[4][8];
    memset(out, 0, sizeof out);
    memset(in, 0, sizeof in);
    for (int i = 0; i < 3; i++) { out[i].msg_hdr.msg_iov = &oi[i]; out[i].msg_hdr.msg_iovlen = 1; }
    for (int i = 0; i < 4; i++) {
        ii[i] = (struct iovec){ ib[i], sizeof ib[i] };
        in[i].msg_hdr.msg_iov = &ii[i];
        in[i].msg_hdr.msg_iovlen = 1;
    }
    printf("sendmmsg: %d\n", sendmmsg(sv[0], out, 3, 0));
    int n = recvmmsg(sv[1], in, 4, MSG_WAITFORONE, NULL);
    printf("recvmmsg: %d lens=%u,%u,%u\n", n, in[0].msg_len, in[1].msg_len, in[2].msg_len);

    // Explicit SCM_CREDENTIALS; the receiver has SO_PASSCRED on.
    int on = 1;
    setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &on, sizeof on);
    struct ucred me = { getpid(), getuid(), getgid() };
    char ctl[CMSG_SPACE(sizeof me)];
    memset(ctl, 0, sizeof ctl);
    struct iovec iov = { "c", 1 };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl };
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_CREDENTIALS;
    c->cmsg_len = CMSG_LEN(sizeof me);
    memcpy(CMSG_DATA(c), &me, sizeof me);
    printf("sendmsg SCM_CREDENTIALS: %zd\n", sendmsg(sv[0], &m, 0));
    c->cmsg_len = CMSG_LEN(sizeof me) - 1;
    ERR("SCM_CREDENTIALS of the wrong size", sendmsg(sv[0], &m, 0));
    char rctl[64];
    struct iovec riov = { buf, sizeof buf };
    struct msghdr r = { .msg_iov = &riov, .msg_iovlen = 1, .msg_control = rctl, .msg_controllen = sizeof rctl };
    ssize_t got = recvmsg(sv[1], &r, 0);
    c = CMSG_FIRSTHDR(&r);
    struct ucred who = {0};
    if (c && c->cmsg_type == SCM_CREDENTIALS) memcpy(&who, CMSG_DATA(c), sizeof who);
    printf("received creds: n=%zd controllen=%zu mine=%d\n", got, (size_t)r.msg_controllen,
           who.pid == me.pid && who.uid == me.uid && who.gid == me.gid);
    close(sv[0]);
    close(sv[1]);

    // MSG_WAITALL gathers two writes.
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    pid_t pid = fork();
    if (pid == 0) {
        write(sv[1], "half", 4);
        usleep(20000);
        write(sv[1], "+rest", 5);
        _exit(0);
    }
    memset(buf, 0, sizeof buf);
    printf("MSG_WAITALL: %zd '%s'\n", recv(sv[0], buf, 9, MSG_WAITALL), buf);
    waitpid(pid, NULL, 0);
    close(sv[0]);
    close(sv[1]);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGPIPE, on_sigpipe);
    char tmpl[] = "/tmp/moat-unix-XXXXXX";
    const char *dir = argc > 1 ? argv[1] : mkdtemp(tmpl);
    fd_passing();
    seqpacket(dir);
    dgram(dir);
    stream_misc(dir);
    timeouts_mmsg_creds();
    rmdir(dir);
    return 0;
}
