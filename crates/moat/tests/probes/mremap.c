/* mremap grow (moving), shrink in place, mincore, msync, and glibc realloc of big blocks. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <stdlib.h>
int main(void) {
    char *p = mmap(0, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0);
    strcpy(p, "hello"); p[8000] = 'z';
    char *q = mremap(p, 8192, 1 << 20, MREMAP_MAYMOVE);
    q[(1<<20)-1] = 'e';
    char *r = mremap(q, 1 << 20, 4096, 0);
    unsigned char v[1];
    printf("%s %d %d %d\n", r, r == q, mincore(r, 4096, v), msync(r, 4096, MS_SYNC));
    char *big = malloc(1 << 22); memset(big, 1, 1 << 22); big = realloc(big, 1 << 24); printf("%d\n", big[100]);
    return 0;
}
