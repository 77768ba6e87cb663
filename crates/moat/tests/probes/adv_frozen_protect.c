/* A read-only private mapping of a root file (pages moat shares between
 * processes) made writable when the Sentry has no room left for the copy
 * it must take first: the mprotect may fail (ENOMEM), but the mapping
 * stays as it was, shows the file, and never shows another process's
 * memory given the pages a failed change let go. Usage: adv_frozen_protect FILE */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static const char SECRET[] = "the other process's secret";

int main(int argc, char **argv) {
  if (argc < 2)
    return 2;
  int go[2], done[2];
  if (pipe(go) || pipe(done))
    return 2;
  pid_t pid = fork();
  if (pid == 0) {
    /* Another process: fresh memory, written once the parent's change failed. */
    char c;
    read(go[0], &c, 1);
    for (int i = 0; i < 64; i++) {
      char *s = mmap(0, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (s != MAP_FAILED)
        for (int o = 0; o < 1 << 16; o += 4096)
          memcpy(s + o, SECRET, sizeof SECRET);
    }
    write(done[1], "k", 1);
    pause();
    _exit(0);
  }
  int fd = open(argv[1], O_RDONLY);
  unsigned char file[4096] = {0};
  pread(fd, file, sizeof file, 0);
  unsigned char *p = mmap(0, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
  if (p == MAP_FAILED)
    return 2;
  /* Leave no room: reserve address space (nothing touched) until none is left. */
  for (int b = 44; b >= 12; b--)
    for (int n = 0; n < 4096; n++)
      if (mmap(0, (size_t)1 << b, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0) == MAP_FAILED)
        break;
  int r = mprotect(p, 4096, PROT_READ | PROT_WRITE);
  printf("mprotect: %s\n", r == 0 ? "done" : errno == ENOMEM ? "ENOMEM" : strerror(errno));
  FILE *m = fopen("/proc/self/maps", "r");
  char line[512], want[32];
  int seen = 0;
  snprintf(want, sizeof want, "%lx-", (unsigned long)p);
  while (m && fgets(line, sizeof line, m))
    seen |= strncmp(line, want, strlen(want)) == 0;
  printf("the mapping is still there: %s\n", seen ? "yes" : "no");
  write(go[1], "g", 1);
  char c;
  read(done[0], &c, 1);
  printf("it shows the file: %s\n", memcmp(p, file, sizeof file) == 0 ? "yes" : "no");
  printf("it shows the other process's memory: %s\n", memmem(p, 4096, SECRET, sizeof SECRET - 1) ? "yes" : "no");
  kill(pid, 9);
  waitpid(pid, 0, 0);
  return 0;
}
