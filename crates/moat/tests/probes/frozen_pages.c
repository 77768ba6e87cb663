/* Read-only private file mappings, which moat shares between processes
 * (one copy of a file's bytes for the whole sandbox): every way a process
 * may come to write such a page gives it a copy of its own, and no other
 * mapping, process or later exec ever sees the write. Each line must read
 * as it does on Linux. Run with "child OFF" it reports whether its own
 * libc's text at file offset OFF is the file's. */
#define _GNU_SOURCE
#include <elf.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *yes(int ok) { return ok ? "yes" : "no"; }

/* The r-xp mapping of libc in this process: its start, file offset, path. */
static int libc_text(unsigned long *start, unsigned long *off, char *path) {
  FILE *m = fopen("/proc/self/maps", "r");
  char line[512];
  int found = 0;
  while (m && fgets(line, sizeof line, m)) {
    unsigned long lo, hi, o;
    char perms[8], p[256] = "";
    if (sscanf(line, "%lx-%lx %7s %lx %*s %*s %255s", &lo, &hi, perms, &o, p) >= 4 &&
        strcmp(perms, "r-xp") == 0 && strstr(p, "/libc.so")) {
      *start = lo;
      *off = o;
      strcpy(path, p);
      found = 1;
      break;
    }
  }
  if (m)
    fclose(m);
  return found;
}

static int file_byte(const char *path, unsigned long off) {
  int fd = open(path, O_RDONLY);
  unsigned char b = 0;
  int n = pread(fd, &b, 1, off);
  close(fd);
  return n == 1 ? b : -1;
}

int main(int argc, char **argv) {
  unsigned long start, off;
  char libc[256];
  if (!libc_text(&start, &off, libc)) {
    printf("no libc text mapping\n");
    return 1;
  }
  /* A page into the text, well away from anything this probe runs. */
  unsigned long at = off + 0x3000;
  if (argc == 3 && strcmp(argv[1], "child") == 0) {
    unsigned long want = strtoul(argv[2], 0, 0);
    unsigned char mine = *(unsigned char *)(start + (want - off));
    printf("%s\n", yes(mine == file_byte(libc, want)));
    return 0;
  }

  /* The program's own file, mapped read-only twice. */
  int fd = open("/proc/self/exe", O_RDONLY);
  off_t size = lseek(fd, 0, SEEK_END);
  unsigned char *first = malloc(4096);
  pread(fd, first, 4096, 0);
  unsigned char *a = mmap(0, size, PROT_READ, MAP_PRIVATE, fd, 0);
  unsigned char *b = mmap(0, size, PROT_READ, MAP_PRIVATE, fd, 0);
  printf("a read-only mapping shows the file: %s\n", yes(memcmp(a, first, 4096) == 0));

  /* The first page of the writable segment shows the file before the
   * segment's start too (the end of the segment before it). */
  Elf64_Phdr *ph = (Elf64_Phdr *)getauxval(AT_PHDR);
  unsigned long phn = getauxval(AT_PHNUM), bias = 0;
  for (unsigned long i = 0; i < phn; i++)
    if (ph[i].p_type == PT_PHDR)
      bias = (unsigned long)ph - ph[i].p_vaddr;
  for (unsigned long i = 0; i < phn; i++) {
    if (ph[i].p_type != PT_LOAD || !(ph[i].p_flags & PF_W))
      continue;
    unsigned long head = ph[i].p_vaddr & 4095;
    unsigned char before[4096];
    pread(fd, before, head, ph[i].p_offset - head);
    printf("the writable segment's first page is the file's before it: %s\n",
           yes(head > 0 && memcmp((void *)(bias + ph[i].p_vaddr - head), before, head) == 0));
  }

  /* A forked child makes its mapping writable and writes. */
  pid_t pid = fork();
  if (pid == 0) {
    if (mprotect(a, 4096, PROT_READ | PROT_WRITE) == 0)
      a[100] ^= 0xff;
    _exit(a[100] == (first[100] ^ 0xff) ? 0 : 1);
  }
  int st;
  waitpid(pid, &st, 0);
  printf("a forked child wrote its copy: %s\n", yes(WIFEXITED(st) && WEXITSTATUS(st) == 0));
  printf("the parent's mapping is the file's: %s\n", yes(a[100] == first[100]));

  /* This process writes one mapping; the other, and a new one, stay. */
  int w = mprotect(a, 4096, PROT_READ | PROT_WRITE);
  a[200] ^= 0xff;
  unsigned char *c = mmap(0, size, PROT_READ, MAP_PRIVATE, fd, 0);
  printf("mprotect to writable: %d; the write shows there: %s\n", w, yes(a[200] == (first[200] ^ 0xff)));
  printf("another mapping and a new one are the file's: %s %s\n", yes(b[200] == first[200]), yes(c[200] == first[200]));

  /* MADV_DONTNEED on a mapping never written: the file's bytes again. */
  printf("MADV_DONTNEED: %d, then the file's bytes: %s\n", madvise(b, 4096, MADV_DONTNEED),
         yes(memcmp(b, first, 4096) == 0));

  /* Writing to a read-only mapping still faults. */
  pid = fork();
  if (pid == 0) {
    b[300] = 1;
    _exit(0);
  }
  waitpid(pid, &st, 0);
  printf("a write to the read-only mapping: %s\n", WIFSIGNALED(st) ? strsignal(WTERMSIG(st)) : "no fault");

  /* libc's text, patched in place (as a JIT or a hot-patcher would):
   * this process runs the patch, a child it execs runs the file's. */
  unsigned char *page = (unsigned char *)(start + (at - off));
  int p = mprotect(page, 4096, PROT_READ | PROT_WRITE | PROT_EXEC);
  unsigned char old = page[0];
  page[0] ^= 0xff;
  printf("libc text made writable: %d; patched here: %s\n", p, yes(page[0] == (old ^ 0xff)));
  fflush(stdout);
  char arg[32];
  snprintf(arg, sizeof arg, "%#lx", at);
  printf("a new program's libc is the file's: ");
  fflush(stdout);
  pid = fork();
  if (pid == 0) {
    execl("/proc/self/exe", "frozen_pages", "child", arg, (char *)0);
    _exit(127);
  }
  waitpid(pid, &st, 0);
  page[0] = old;
  return 0;
}
