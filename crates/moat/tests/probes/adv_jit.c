/* Attack: run code the app wrote itself (a JIT): `mov $39,%eax; syscall;
 * ret` (getpid) in an RWX mapping, in an RW mapping made RX by mprotect, in
 * a second view (RX) of a memfd written through an RW view, and after the
 * page was unmapped and mapped again with other code (which must run, not
 * the old). The first two also try a native-looking prctl that would rename
 * the host task "adv-escaped" if it ever reached the host.
 *
 * Expected (as natively, the oracle): every call goes to the kernel the app
 * sees, so getpid returns the app's own pid (the sandbox's, under moat) and
 * the rewritten page runs its new code. */
#include "adv_common.h"

#include <sys/syscall.h>

/* mov $39,%eax; syscall; ret */
static const unsigned char getpid_code[] = {0xb8, 39, 0, 0, 0, 0x0f, 0x05, 0xc3};
/* mov $157,%eax; mov $15,%edi; syscall; ret (the name is the second argument, in rsi) */
static const unsigned char prctl_code[] = {0xb8, 157, 0, 0, 0, 0xbf, 15, 0, 0, 0, 0x0f, 0x05, 0xc3};
/* mov $1234,%eax; ret */
static const unsigned char const_code[] = {0xb8, 0xd2, 0x04, 0, 0, 0xc3};

static void check_getpid(const char *how, void *code) {
    long r = ((long (*)(void))code)();
    say("%s: JIT getpid %s getpid()\n", how, r == getpid() ? "agrees with" : "differs from");
}

static void try_prctl(void *code) {
    /* prctl(PR_SET_NAME, "adv-escaped"): only the app's own name changes. */
    ((long (*)(long, const char *))code)(0, "adv-escaped");
}

int main(void) {
    void *rwx = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memcpy(rwx, getpid_code, sizeof getpid_code);
    check_getpid("RWX mapping", rwx);
    memcpy(rwx, prctl_code, sizeof prctl_code);
    try_prctl(rwx);

    void *rw = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memcpy(rw, getpid_code, sizeof getpid_code);
    if (mprotect(rw, 4096, PROT_READ | PROT_EXEC) != 0)
        perror("mprotect");
    check_getpid("RW then mprotect RX", rw);

    int fd = (int)syscall(SYS_memfd_create, "jit", 0);
    if (fd < 0 || ftruncate(fd, 4096) != 0)
        perror("memfd");
    unsigned char *w = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    void *x = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0);
    memcpy(w, getpid_code, sizeof getpid_code);
    check_getpid("memfd written RW, run RX", x);

    void *again = mmap(rwx, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    munmap(again, 4096);
    again = mmap(rwx, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    memcpy(again, const_code, sizeof const_code);
    say("remapped page: new code returned %ld\n", ((long (*)(void))again)());
    return 0;
}
