// TCP over loopback inside one process (a server thread and a client), for
// bench/net.sh: throughput, request/response latency and connection rate.
//   net stream MIB   -> MB/s sending MIB mebibytes in 64 KiB writes
//   net rr N         -> microseconds per 1-byte round trip, over N trips
//   net crr N        -> connections per second (connect, accept, 1-byte
//                       round trip, close), over N connections
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

static int dial(struct sockaddr_in *addr) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0) die("socket");
  if (connect(s, (struct sockaddr *)addr, sizeof *addr) < 0) die("connect");
  int one = 1;
  setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return s;
}

int main(int argc, char **argv) {
  if (argc != 3 || !strchr("src", argv[1][0])) {
    fprintf(stderr, "usage: net stream MIB | rr N | crr N\n");
    return 2;
  }
  mode = argv[1][0];
  count = atol(argv[2]);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  listener = socket(AF_INET, SOCK_STREAM, 0);
  if (listener < 0) die("socket");
  if (bind(listener, (struct sockaddr *)&addr, sizeof addr) < 0) die("bind");
  socklen_t len = sizeof addr;
  if (getsockname(listener, (struct sockaddr *)&addr, &len) < 0) die("getsockname");
  if (listen(listener, 64) < 0) die("listen");
  pthread_t server;
  pthread_create(&server, NULL, serve, NULL);

  static char buf[65536];
  double t0 = now(), result = 0;
  if (mode == 's') {
    int s = dial(&addr);
    for (long i = 0; i < count * 16; i++) full_write(s, buf, sizeof buf);
    close(s);
    pthread_join(server, NULL);
    result = count * 1.048576 / (now() - t0);
  } else if (mode == 'r') {
    int s = dial(&addr);
    for (long i = 0; i < count; i++) {
      full_write(s, "x", 1);
      if (read(s, buf, 1) != 1) die("read");
    }
    result = (now() - t0) * 1e6 / count;
    close(s);
    pthread_join(server, NULL);
  } else {
    for (long i = 0; i < count; i++) {
      int s = dial(&addr);
      full_write(s, "x", 1);
      if (read(s, buf, 1) != 1) die("read");
      close(s);
    }
    pthread_join(server, NULL);
    result = count / (now() - t0);
  }
  printf("%.1f\n", result);
  return 0;
}
