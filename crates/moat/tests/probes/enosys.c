/*
 * enosys: makes system calls moat does not implement and checks that each
 * fails with ENOSYS and that the program keeps running afterwards.
 *
 * Prints one line per call ("NAME: errno=ENOSYS" when right), then
 * "still running"; exits 0 only if every call gave ENOSYS.
 *
 * The arguments are chosen so that, should a call ever reach a real kernel,
 * it does nothing: kexec_load is given an architecture that is not x86-64
 * (EINVAL before anything is loaded or unloaded), and number 1000 is not a
 * system call on any Linux.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static int expect_enosys(const char *name, long nr, long a0, long a1, long a2, long a3)
{
	errno = 0;
	long ret = syscall(nr, a0, a1, a2, a3);
	int err = errno;

	if (ret == -1 && err == ENOSYS) {
		printf("%s: errno=ENOSYS\n", name);
		return 1;
	}
	printf("%s: returned %ld, errno=%d (%s)\n", name, ret, err, strerror(err));
	return 0;
}

int main(void)
{
	/* KEXEC_ARCH_MASK is 0xffff0000; 0x7fff is no architecture. */
	const long bogus_arch = 0x7fff0000L;
	int ok = 1;

	ok &= expect_enosys("kexec_load", SYS_kexec_load, 0, 0, 0, bogus_arch);
	/* A second call must not be logged a second time. */
	ok &= expect_enosys("kexec_load again", SYS_kexec_load, 0, 0, 0, bogus_arch);
	ok &= expect_enosys("syscall 1000", 1000, 0, 0, 0, 0);
	fflush(stdout);

	static const char still[] = "still running\n";
	if (write(STDOUT_FILENO, still, sizeof still - 1) != (ssize_t)(sizeof still - 1))
		return 2;
	return ok ? 0 : 1;
}
