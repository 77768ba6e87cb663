// TCP throughput, request/response latency and connection rate for
// bench/net.sh: over loopback inside one process (a server thread and a
// client), or from the client to a server elsewhere.
//   net stream MIB [ADDR PORT] -> MB/s sending MIB mebibytes in 64 KiB writes
//   net rr N [ADDR PORT]       -> microseconds per 1-byte round trip, over N trips
//   net crr N [ADDR PORT]      -> connections per second (connect, accept,
//                                 1-byte round trip, close), over N connections
//   net serve PORT             -> serves those clients on 0.0.0.0:PORT until killed
// A remote client's first byte tells the server to sink ('s') or echo ('e').
// Prints one number. Exits 1 with a message on any error.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int listener;
static long count;
static char mode;
static int remote;

static void die(const char *what) {
  perror(what);
  exit(1);
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static void full_write(int fd, const char *buf, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, buf, n);
    if (w <= 0) die("write");
    buf += w;
    n -= (size_t)w;
  }
}

static void *serve(void *arg) {
  (void)arg;
  static char buf[65536];
  long conns = mode == 'c' ? count : 1;
  for (long i = 0; i < conns; i++) {
    int c = accept(listener, NULL, NULL);
    if (c < 0) die("accept");
    int one = 1;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ssize_t r;
    while ((r = read(c, buf, sizeof buf)) > 0) {
      if (mode != 's') full_write(c, buf, (size_t)r);
    }
    close(c);
  }
  return NULL;
}

/// One remote client's connection: sink or echo, as its first byte says.
static void *serve_one(void *arg) {
  int c = (int)(long)arg;
  char buf[65536], how;
  int one = 1;
  setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (read(c, &how, 1) == 1) {
    ssize_t r;
    while ((r = read(c, buf, sizeof buf)) > 0) {
      if (how == 'e') full_write(c, buf, (size_t)r);
    }
  }
  close(c);
  return NULL;
}

static void serve_forever(int port) {
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
  int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  if (l < 0) die("socket");
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(l, (struct sockaddr *)&addr, sizeof addr) < 0) die("bind");
  if (listen(l, 128) < 0) die("listen");
  for (;;) {
    int c = accept(l, NULL, NULL);
    if (c < 0) die("accept");
    pthread_t t;
    pthread_create(&t, NULL, serve_one, (void *)(long)c);
    pthread_detach(t);
  }
}

static int dial(struct sockaddr_in *addr) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0) die("socket");
  if (connect(s, (struct sockaddr *)addr, sizeof *addr) < 0) die("connect");
  int one = 1;
  setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (remote) full_write(s, mode == 's' ? "s" : "e", 1);
  return s;
}

/// The end of a remote stream: everything sent has been read by the server
/// once it closes its side.
static void finish_remote_stream(int s) {
  char buf[64];
  shutdown(s, SHUT_WR);
  while (read(s, buf, sizeof buf) > 0) {
  }
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "serve") == 0) serve_forever(atoi(argv[2]));
  if ((argc != 3 && argc != 5) || !strchr("src", argv[1][0])) {
    fprintf(stderr, "usage: net stream MIB | rr N | crr N [ADDR PORT] | serve PORT\n");
    return 2;
  }
  mode = argv[1][0];
  count = atol(argv[2]);
  remote = argc == 5;
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  pthread_t server;
  if (remote) {
    if (inet_pton(AF_INET, argv[3], &addr.sin_addr) != 1) die("inet_pton");
    addr.sin_port = htons(atoi(argv[4]));
  } else {
    listener = socket(AF_INET, SOCK_STREAM, 0);
    if (listener < 0) die("socket");
    if (bind(listener, (struct sockaddr *)&addr, sizeof addr) < 0) die("bind");
    socklen_t len = sizeof addr;
    if (getsockname(listener, (struct sockaddr *)&addr, &len) < 0) die("getsockname");
    if (listen(listener, 64) < 0) die("listen");
    pthread_create(&server, NULL, serve, NULL);
  }

  static char buf[65536];
  double t0 = now(), result = 0;
  if (mode == 's') {
    int s = dial(&addr);
    for (long i = 0; i < count * 16; i++) full_write(s, buf, sizeof buf);
    if (remote) finish_remote_stream(s);
    close(s);
    if (!remote) pthread_join(server, NULL);
    result = count * 1.048576 / (now() - t0);
  } else if (mode == 'r') {
    int s = dial(&addr);
    for (long i = 0; i < count; i++) {
      full_write(s, "x", 1);
      if (read(s, buf, 1) != 1) die("read");
    }
    result = (now() - t0) * 1e6 / count;
    close(s);
    if (!remote) pthread_join(server, NULL);
  } else {
    for (long i = 0; i < count; i++) {
      int s = dial(&addr);
      full_write(s, "x", 1);
      if (read(s, buf, 1) != 1) die("read");
      close(s);
    }
    if (!remote) pthread_join(server, NULL);
    result = count / (now() - t0);
  }
  printf("%.1f\n", result);
  return 0;
}
