/* Attack: be in 32-bit mode (cs=0x23, reached with a far return) when a
 * signal is delivered: faults (`hlt` gives SIGSEGV, `ud2` SIGILL, `int3`
 * SIGTRAP) and an asynchronous SIGALRM while spinning there.
 *
 * Expected (as natively, which is the oracle): the handler, 64-bit C code,
 * runs in 64-bit mode (cs 0x33), prints and exits 0; with no handler the
 * process dies of the signal. A Sentry that builds the frame but keeps the
 * app's cs runs the handler's 64-bit code as 32-bit code. */
#include "adv_common.h"

#include <sys/time.h>

ADV_COMPAT_CALL(hlt_compat, "hlt");
ADV_COMPAT_CALL(ud2_compat, "ud2");
ADV_COMPAT_CALL(int3_compat, "int3");
ADV_COMPAT_CALL(spin_compat, "3: jmp 3b");

static long alarm_while_spinning(long nr) {
    struct itimerval it = {.it_value = {.tv_usec = 20000}};
    setitimer(ITIMER_REAL, &it, NULL);
    return spin_compat(nr);
}

static const int segv[] = {SIGSEGV, 0};
static const int ill[] = {SIGILL, 0};
static const int trap[] = {SIGTRAP, 0};
static const int alrm[] = {SIGALRM, 0};

int main(int argc, char **argv) {
    int ok = 1;
    if (adv_wanted(argc, argv, "hlt"))
        ok &= adv_run_case("hlt in 32-bit mode", hlt_compat, 0, segv, 0);
    if (adv_wanted(argc, argv, "ud2"))
        ok &= adv_run_case("ud2 in 32-bit mode", ud2_compat, 0, ill, 0);
    if (adv_wanted(argc, argv, "int3"))
        ok &= adv_run_case("int3 in 32-bit mode", int3_compat, 0, trap, 0);
    if (adv_wanted(argc, argv, "alarm"))
        ok &= adv_run_case("SIGALRM while spinning in 32-bit mode", alarm_while_spinning, 0, alrm, 0);
    if (adv_wanted(argc, argv, "nohandler"))
        ok &= adv_run_case("hlt in 32-bit mode, no handler", hlt_compat, 0, NULL, SIGSEGV);
    return ok ? 0 : 1;
}
