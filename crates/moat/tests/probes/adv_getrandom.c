/* Attack: grow the Sentry by the number of threads: 64 threads each ask
 * getrandom for 32 MiB at once (a Sentry that filled one buffer per call
 * held 2 GiB). Expected: every call returns 32 MiB, as on Linux; the
 * Sentry stays small (checked by the test). Also a mapping whose file
 * offset plus length overflows: EOVERFLOW, as on Linux. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

#define THREADS 64
#define SIZE (32L << 20)
static volatile int go;

static void *draw(void *arg) {
  char *buf = mmap(0, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  while (!go) ;
  long n = getrandom(buf, SIZE, 0);
  munmap(buf, SIZE);
  return (void *)n;
}

int main(void) {
  pthread_t th[THREADS];
  for (int i = 0; i < THREADS; i++) pthread_create(&th[i], 0, draw, 0);
  go = 1;
  int full = 0;
  for (int i = 0; i < THREADS; i++) {
    void *n;
    pthread_join(th[i], &n);
    full += (long)n == SIZE;
  }
  printf("getrandom of 32 MiB in %d threads at once: %d returned 32 MiB\n", THREADS, full);
  int fd = open("/proc/self/exe", O_RDONLY);
  void *p = mmap(0, 8192, PROT_READ, MAP_PRIVATE, fd, 0xfffffffffffff000UL);
  printf("mmap at file offset 2^64-4096: %s\n", p == MAP_FAILED && errno == EOVERFLOW ? "EOVERFLOW" : "mapped");
  return 0;
}
