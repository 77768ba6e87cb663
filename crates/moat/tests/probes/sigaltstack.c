/* sigaltstack: a SIGSEGV handler installed with SA_ONSTACK catches a stack
   overflow caused by unbounded recursion. The handler checks that it runs on the
   alternate stack (the address of one of its locals lies inside the registered
   range, and sigaltstack() reports SS_ONSTACK), then siglongjmp's out. This is
   done twice to check the signal mask is restored by siglongjmp and the altstack
   is reusable; afterwards SS_ONSTACK is clear, and sigaltstack() refuses to
   change the stack from within the handler (EPERM) and rejects a too-small
   stack (ENOMEM). */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ALT_SIZE (256 * 1024)

static char *alt, *other_alt;
static sigjmp_buf env;
static volatile int ran, on_alt, ss_onstack, eperm;

static void on_segv(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)si;
    (void)uc;
    volatile char local = 0;
    uintptr_t a = (uintptr_t)&local;
    ran++;
    on_alt = a >= (uintptr_t)alt && a < (uintptr_t)alt + ALT_SIZE;
    stack_t cur;
    sigaltstack(0, &cur);
    ss_onstack = (cur.ss_flags & SS_ONSTACK) != 0;
    /* Changing the altstack while running on it is refused. */
    stack_t other = {.ss_sp = other_alt, .ss_size = ALT_SIZE, .ss_flags = 0};
    eperm = sigaltstack(&other, 0) == -1 && errno == EPERM;
    siglongjmp(env, 1);
}

#pragma GCC diagnostic ignored "-Winfinite-recursion"
static volatile long sink;
static long recurse(long n) {
    volatile char pad[1024];
    pad[0] = (char)n;
    pad[1023] = (char)(n >> 8);
    long r = recurse(n + 1) + pad[0] + pad[1023];
    sink = r;
    return r;
}

int main(void) {
    alt = malloc(ALT_SIZE);
    other_alt = malloc(ALT_SIZE);
    stack_t ss = {.ss_sp = alt, .ss_size = ALT_SIZE, .ss_flags = 0};
    if (sigaltstack(&ss, 0)) {
        perror("sigaltstack");
        return 1;
    }
    stack_t small = {.ss_sp = alt, .ss_size = 512, .ss_flags = 0};
    errno = 0;
    printf("too small rejected ENOMEM %d\n", sigaltstack(&small, 0) == -1 && errno == ENOMEM);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigaction(SIGSEGV, &sa, 0);

    for (int round = 1; round <= 2; round++) {
        ran = on_alt = ss_onstack = eperm = 0;
        if (sigsetjmp(env, 1) == 0) {
            sink = recurse(0);
            printf("recursion returned?!\n");
            return 1;
        }
        printf("round %d: handler ran %d on altstack %d SS_ONSTACK %d EPERM in handler %d\n", round, ran, on_alt,
               ss_onstack, eperm);
        sigset_t m;
        sigprocmask(SIG_BLOCK, 0, &m);
        printf("round %d: SIGSEGV unblocked after siglongjmp %d\n", round, !sigismember(&m, SIGSEGV));
        stack_t cur;
        sigaltstack(0, &cur);
        printf("round %d: after: onstack %d disabled %d same sp %d size ok %d\n", round,
               (cur.ss_flags & SS_ONSTACK) != 0, (cur.ss_flags & SS_DISABLE) != 0, cur.ss_sp == alt,
               cur.ss_size == ALT_SIZE);
    }

    stack_t dis = {.ss_sp = 0, .ss_size = 0, .ss_flags = SS_DISABLE};
    sigaltstack(&dis, 0);
    stack_t cur;
    sigaltstack(0, &cur);
    printf("disabled %d\n", (cur.ss_flags & SS_DISABLE) != 0);
    return 0;
}
