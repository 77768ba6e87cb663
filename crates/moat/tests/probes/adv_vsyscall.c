/* Attack: the legacy vsyscall page at 0xffffffffff600000, which the host
 * kernel emulates for the stub (outside ptrace's view): call its
 * gettimeofday (+0x000), time (+0x400) and getcpu (+0x800) entries, read
 * the page, and jump into the middle of an entry (+0x010).
 *
 * Expected, as Linux in its default `xonly` vsyscall mode (the native run is
 * the oracle): the three calls work (the time agrees with clock_gettime
 * within a second; getcpu returns 0 and a valid cpu and node 0); reading the
 * page and jumping to +0x010 raise SIGSEGV, whose handler runs. */
#include "adv_common.h"

#include <sys/time.h>
#include <time.h>

#define VSYSCALL 0xffffffffff600000UL

static long now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec;
}

static int close_to_now(long t) {
    long d = t - now_s();
    return d >= -1 && d <= 1;
}

static long vgettimeofday(long unused) {
    (void)unused;
    long (*f)(struct timeval *, void *) = (void *)(VSYSCALL + 0x000);
    struct timeval tv = {0};
    long r = f(&tv, NULL);
    say("%s: returned %ld, %s clock_gettime\n", adv_case, r, close_to_now(tv.tv_sec) ? "agrees with" : "differs from");
    _exit(0);
}

static long vtime(long unused) {
    (void)unused;
    long (*f)(long *) = (void *)(VSYSCALL + 0x400);
    long t = 0;
    long r = f(&t);
    say("%s: %s clock_gettime, stored %s\n", adv_case, close_to_now(r) ? "agrees with" : "differs from",
        t == r ? "the same" : "something else");
    _exit(0);
}

static long vgetcpu(long unused) {
    (void)unused;
    long (*f)(unsigned *, unsigned *, void *) = (void *)(VSYSCALL + 0x800);
    unsigned cpu = ~0u, node = ~0u;
    long r = f(&cpu, &node, NULL);
    long ncpu = sysconf(_SC_NPROCESSORS_CONF);
    say("%s: returned %ld, cpu %s, node %u\n", adv_case, r, cpu < (unsigned)ncpu ? "valid" : "invalid", node);
    _exit(0);
}

static long vread(long unused) {
    (void)unused;
    return *(volatile unsigned char *)VSYSCALL;
}

static long vjump_inside(long unused) {
    (void)unused;
    long (*f)(void) = (void *)(VSYSCALL + 0x10);
    return f();
}

static const int segv[] = {SIGSEGV, 0};

int main(int argc, char **argv) {
    if (adv_wanted(argc, argv, "gettimeofday"))
        adv_run_case("vsyscall gettimeofday", vgettimeofday, 0, segv, 0);
    if (adv_wanted(argc, argv, "time"))
        adv_run_case("vsyscall time", vtime, 0, segv, 0);
    if (adv_wanted(argc, argv, "getcpu"))
        adv_run_case("vsyscall getcpu", vgetcpu, 0, segv, 0);
    if (adv_wanted(argc, argv, "read"))
        adv_run_case("reading the vsyscall page", vread, 0, segv, 0);
    if (adv_wanted(argc, argv, "inside"))
        adv_run_case("jumping to vsyscall+0x10", vjump_inside, 0, segv, 0);
    return 0;
}
