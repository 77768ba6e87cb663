/* Calls sysinfo and times twice each and prints what came back. Under an OCI
 * seccomp rule with errnoRet 512 (sysinfo) and 514 (times) — numbers Linux
 * uses inside the kernel for restarts — each call fails with that errno
 * once, as under runc; it is not restarted. */
#include <errno.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/times.h>
#include <unistd.h>

int main(void) {
    struct sysinfo si;
    struct tms tm;
    for (int i = 0; i < 2; i++) {
        long r = syscall(SYS_sysinfo, &si);
        printf("sysinfo: %ld errno %d\n", r, r < 0 ? errno : 0);
        r = syscall(SYS_times, &tm);
        printf("times: %ld errno %d\n", r < 0 ? r : 0, r < 0 ? errno : 0);
    }
    return 0;
}
