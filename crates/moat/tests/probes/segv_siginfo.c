/* SIGSEGV siginfo: a SA_SIGINFO handler reads si_signo, si_code and si_addr and
   siglongjmp's out. A read through an unmapped pointer ((char *)0x1234 + 0x10)
   reports si_addr equal to that pointer and SEGV_MAPERR; a NULL read reports
   si_addr 0; a write to a PROT_READ page and a read of a PROT_NONE page report
   SEGV_ACCERR with si_addr the exact faulting address inside the page; a write
   after munmap is SEGV_MAPERR again; an mprotect to PROT_WRITE makes the write
   succeed; executing a non-executable page is SEGV_ACCERR at the page. The
   handler's ucontext also must be non-NULL. Arguments select sections (maperr,
   accerr, prot_none, nx); none runs them all. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static sigjmp_buf env;
static volatile int got_signo, got_code, have_uc;
static void *volatile got_addr;

static void on_segv(int sig, siginfo_t *si, void *uc) {
    got_signo = sig == si->si_signo ? sig : -1;
    got_code = si->si_code;
    got_addr = si->si_addr;
    have_uc = uc != 0;
    siglongjmp(env, 1);
}

static const char *code_name(int c) {
    return c == SEGV_MAPERR ? "SEGV_MAPERR" : c == SEGV_ACCERR ? "SEGV_ACCERR" : "other";
}

/* Runs one faulting access; returns 1 if it faulted. */
static int try_read(volatile char *p) {
    got_signo = got_code = have_uc = 0;
    got_addr = (void *)1;
    if (sigsetjmp(env, 1) == 0) {
        (void)*p;
        return 0;
    }
    return 1;
}
static int try_write(volatile char *p) {
    got_signo = got_code = have_uc = 0;
    got_addr = (void *)1;
    if (sigsetjmp(env, 1) == 0) {
        *p = 1;
        return 0;
    }
    return 1;
}

static void show(const char *what, int faulted, void *expect) {
    printf("%-28s faulted=%d signo=SIGSEGV:%d code=%s si_addr==expected:%d uc:%d\n", what, faulted,
           got_signo == SIGSEGV, faulted ? code_name(got_code) : "-", got_addr == expect, have_uc);
}

static long pg;

/* Unmapped addresses: SEGV_MAPERR with the exact address. */
static void sec_maperr(void) {
    char *volatile bad = (char *)0x1234 + 0x10;
    show("read of 0x1244", try_read(bad), (char *)0x1244);
    char *volatile null = 0;
    show("read of NULL", try_read(null), 0);
    char *m = mmap(0, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) _exit(1);
    munmap(m, 2 * pg);
    show("write after munmap", try_write(m + pg + 1), m + pg + 1);
}

/* Writes to a read-only mapping: SEGV_ACCERR inside the page; mprotect fixes it. */
static void sec_accerr(void) {
    char *ro = mmap(0, 2 * pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (ro == MAP_FAILED) _exit(1);
    int f = try_write(ro + 100);
    show("write to PROT_READ", f, ro + 100);
    printf("  si_addr inside page %d\n", (char *)got_addr >= ro && (char *)got_addr < ro + pg);
    f = try_write(ro + pg + 7);
    show("write to 2nd PROT_READ page", f, ro + pg + 7);
    show("read of PROT_READ", try_read(ro + 5), (void *)1);
    mprotect(ro, pg, PROT_READ | PROT_WRITE);
    f = try_write(ro + 100);
    show("write after mprotect RW", f, (void *)1);
    printf("  value written %d\n", ro[100]);
    munmap(ro, 2 * pg);
}

/* Reading a PROT_NONE page is an access error, not a mapping error. */
static void sec_prot_none(void) {
    char *pn = mmap(0, pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (pn == MAP_FAILED) _exit(1);
    show("read of PROT_NONE (mmap)", try_read(pn + 33), pn + 33);
    char *rw = mmap(0, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    rw[0] = 1;
    mprotect(rw, pg, PROT_NONE);
    show("read of PROT_NONE (mprotect)", try_read(rw + 9), rw + 9);
}

/* Executing a non-executable page. */
static void sec_nx(void) {
    char *nx = mmap(0, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(nx, 0xc3, pg); /* ret */
    got_signo = got_code = 0;
    got_addr = (void *)1;
    volatile int faulted = 0;
    if (sigsetjmp(env, 1) == 0) {
        ((void (*)(void))nx)();
    } else {
        faulted = 1;
    }
    show("call into PROT_READ|WRITE", faulted, nx);
}

int main(int argc, char **argv) {
    static const struct {
        const char *name;
        void (*run)(void);
    } secs[] = {{"maperr", sec_maperr}, {"accerr", sec_accerr}, {"prot_none", sec_prot_none}, {"nx", sec_nx}};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, 0);
    pg = sysconf(_SC_PAGESIZE);
    for (unsigned i = 0; i < sizeof secs / sizeof secs[0]; i++) {
        int want = argc < 2;
        for (int a = 1; a < argc; a++) want |= !strcmp(argv[a], secs[i].name);
        if (want) secs[i].run();
    }
    return 0;
}
