/*
 * moat's vDSO: the clock functions an app calls without a system call.
 *
 * The Sentry maps this image into every process after one page of its own,
 * the time page (`[vvar]`, read-only, shared by the whole sandbox), and
 * rewrites that page about once a second: a TSC reading, the sandbox's
 * CLOCK_MONOTONIC at that reading, the TSC's rate in ns (32.32 fixed point)
 * and the offsets of CLOCK_REALTIME and CLOCK_BOOTTIME from it. The Sentry's
 * own clock_gettime computes the same function from its private copy of
 * those values, so what the app reads here and what a system call returns
 * are one clock. Until the page is enabled (the Sentry calibrates the TSC
 * first), and for every other clock, these functions make the system call,
 * which the Sentry serves like any other.
 *
 * Layout of the time page: `struct vvar` here, the words W_* and
 * `Params::words` in crates/sentry/src/kernel/clock.rs.
 */

typedef unsigned long u64;
typedef long i64;
typedef unsigned int u32;

struct vvar {
	volatile u64 seq; /* odd while the Sentry rewrites the page */
	volatile u64 enabled;
	volatile u64 tsc_base;
	volatile u64 mult;
	volatile u64 mono_base;
	volatile i64 real_off;
	volatile i64 boot_off;
};

/* The page before the image (vdso.lds). */
extern const struct vvar moat_vvar __attribute__((visibility("hidden")));

struct timespec {
	i64 tv_sec;
	i64 tv_nsec;
};
struct timeval {
	i64 tv_sec;
	i64 tv_usec;
};
struct timezone {
	int tz_minuteswest;
	int tz_dsttime;
};

#define CLOCK_REALTIME 0
#define CLOCK_MONOTONIC 1
#define CLOCK_REALTIME_COARSE 5
#define CLOCK_MONOTONIC_COARSE 6
#define CLOCK_BOOTTIME 7

#define NR_gettimeofday 96
#define NR_time 201
#define NR_clock_gettime 228
#define NR_clock_getres 229
#define NR_getcpu 309

static inline long syscall2(long nr, long a, long b)
{
	long r;
	__asm__ volatile("syscall" : "=a"(r) : "0"(nr), "D"(a), "S"(b) : "rcx", "r11", "memory");
	return r;
}

static inline long syscall3(long nr, long a, long b, long c)
{
	long r;
	__asm__ volatile("syscall" : "=a"(r) : "0"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
	return r;
}

static inline u64 rdtsc_ordered(void)
{
	u32 lo, hi;
	__asm__ volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi) : : "memory");
	return ((u64)hi << 32) | lo;
}

/*
 * The sandbox's CLOCK_MONOTONIC in ns, and the offsets of the other two
 * clocks; 0 if the page is not enabled, or the Sentry is in the middle of
 * rewriting it for longer than a short wait (the system call then answers).
 */
static int mono_now(u64 *ns, i64 *real_off, i64 *boot_off)
{
	u64 seq, tsc_base, mult, base, c;
	i64 ro, bo;
	for (int tries = 0;; tries++) {
		if (tries == 4096)
			return 0;
		seq = moat_vvar.seq;
		if (seq & 1) {
			__asm__ volatile("pause" ::: "memory");
			continue;
		}
		__asm__ volatile("" ::: "memory");
		if (!moat_vvar.enabled)
			return 0;
		tsc_base = moat_vvar.tsc_base;
		mult = moat_vvar.mult;
		base = moat_vvar.mono_base;
		ro = moat_vvar.real_off;
		bo = moat_vvar.boot_off;
		c = rdtsc_ordered();
		__asm__ volatile("" ::: "memory");
		if (moat_vvar.seq == seq)
			break;
	}
	/* A TSC behind the base (another CPU's, a hair early) counts as the base. */
	u64 delta = (i64)(c - tsc_base) > 0 ? c - tsc_base : 0;
	*ns = base + (u64)(((unsigned __int128)delta * mult) >> 32);
	*real_off = ro;
	*boot_off = bo;
	return 1;
}

static int clock_ns(int clock, u64 *ns)
{
	u64 mono;
	i64 ro, bo;
	switch (clock) {
	case CLOCK_REALTIME:
	case CLOCK_REALTIME_COARSE:
	case CLOCK_MONOTONIC:
	case CLOCK_MONOTONIC_COARSE:
	case CLOCK_BOOTTIME:
		break;
	default:
		return 0;
	}
	if (!mono_now(&mono, &ro, &bo))
		return 0;
	if (clock == CLOCK_REALTIME || clock == CLOCK_REALTIME_COARSE)
		*ns = mono + (u64)ro;
	else if (clock == CLOCK_BOOTTIME)
		*ns = mono + (u64)bo;
	else
		*ns = mono;
	return 1;
}

int __vdso_clock_gettime(int clock, struct timespec *ts)
{
	u64 ns;
	if (!clock_ns(clock, &ns))
		return (int)syscall2(NR_clock_gettime, clock, (long)ts);
	ts->tv_sec = (i64)(ns / 1000000000UL);
	ts->tv_nsec = (i64)(ns % 1000000000UL);
	return 0;
}

int __vdso_gettimeofday(struct timeval *tv, struct timezone *tz)
{
	u64 ns;
	if (!clock_ns(CLOCK_REALTIME, &ns))
		return (int)syscall2(NR_gettimeofday, (long)tv, (long)tz);
	if (tv) {
		tv->tv_sec = (i64)(ns / 1000000000UL);
		tv->tv_usec = (i64)(ns % 1000000000UL / 1000);
	}
	if (tz) {
		tz->tz_minuteswest = 0;
		tz->tz_dsttime = 0;
	}
	return 0;
}

long __vdso_time(long *t)
{
	u64 ns;
	if (!clock_ns(CLOCK_REALTIME, &ns))
		return syscall2(NR_time, (long)t, 0);
	long s = (long)(ns / 1000000000UL);
	if (t)
		*t = s;
	return s;
}

int __vdso_clock_getres(int clock, struct timespec *res)
{
	u64 ns;
	/* The Sentry gives every clock it serves a resolution of 1 ns. */
	if (!clock_ns(clock, &ns))
		return (int)syscall2(NR_clock_getres, clock, (long)res);
	if (res) {
		res->tv_sec = 0;
		res->tv_nsec = 1;
	}
	return 0;
}

/* The sandbox has one CPU and one node as far as getcpu is concerned (as the Sentry's getcpu). */
long __vdso_getcpu(unsigned *cpu, unsigned *node, void *cache)
{
	(void)cache;
	if (cpu)
		*cpu = 0;
	if (node)
		*node = 0;
	return 0;
}

int clock_gettime(int, struct timespec *) __attribute__((weak, alias("__vdso_clock_gettime")));
int gettimeofday(struct timeval *, struct timezone *) __attribute__((weak, alias("__vdso_gettimeofday")));
long time(long *) __attribute__((weak, alias("__vdso_time")));
int clock_getres(int, struct timespec *) __attribute__((weak, alias("__vdso_clock_getres")));
long getcpu(unsigned *, unsigned *, void *) __attribute__((weak, alias("__vdso_getcpu")));
