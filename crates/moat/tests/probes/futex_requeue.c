/* Futex requeue. First, pthread_cond_broadcast wakes all of several waiters
   (glibc may use FUTEX_WAKE or FUTEX_CMP_REQUEUE underneath). Then raw
   syscall(SYS_futex): FUTEX_CMP_REQUEUE with a stale expected value fails with
   EAGAIN; two threads waiting on futex A are requeued (nr_wake 0) to futex B, so
   a FUTEX_WAKE on A finds nobody and neither thread wakes; a FUTEX_CMP_REQUEUE on
   B with nr_wake 1, nr_requeue 1 wakes one and moves the other back to A, where
   FUTEX_WAKE finds exactly one. Also FUTEX_WAIT with a mismatched value gives
   EAGAIN and a timed FUTEX_WAIT gives ETIMEDOUT. Finally, a waiter that used the
   shared op on private memory is not found by a FUTEX_CMP_REQUEUE_PRIVATE (the
   keys differ) but is by a shared FUTEX_WAKE. Prints the counts. Arguments
   select sections (cond, requeue, private_shared); none runs them all. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long futex(uint32_t *uaddr, int op, uint32_t val, long val2, uint32_t *uaddr2, uint32_t val3) {
    return syscall(SYS_futex, uaddr, op, val, val2, uaddr2, val3);
}

static void nap(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, 0);
}

/* ---- condition variable broadcast ---- */
#define NW 5
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int waiting, go, done;

static void *cv_waiter(void *a) {
    (void)a;
    pthread_mutex_lock(&mu);
    waiting++;
    while (!go) pthread_cond_wait(&cv, &mu);
    done++;
    pthread_mutex_unlock(&mu);
    return 0;
}

/* ---- raw futex ---- */
static uint32_t A, B;
static int ready, woken;
static pthread_mutex_t cm = PTHREAD_MUTEX_INITIALIZER;

static void *raw_waiter(void *a) {
    (void)a;
    __atomic_add_fetch(&ready, 1, __ATOMIC_SEQ_CST);
    long r;
    do {
        r = futex(&A, FUTEX_WAIT, 0, 0, 0, 0);
    } while (r == -1 && errno == EINTR);
    pthread_mutex_lock(&cm);
    woken++;
    pthread_mutex_unlock(&cm);
    return (void *)(intptr_t)(r == 0);
}

static int get_woken(void) {
    pthread_mutex_lock(&cm);
    int w = woken;
    pthread_mutex_unlock(&cm);
    return w;
}

static void sec_cond(void) {
    pthread_t t[NW];
    for (int i = 0; i < NW; i++) pthread_create(&t[i], 0, cv_waiter, 0);
    for (;;) {
        pthread_mutex_lock(&mu);
        int w = waiting;
        pthread_mutex_unlock(&mu);
        if (w == NW) break;
        nap(2);
    }
    nap(20);
    pthread_mutex_lock(&mu);
    go = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    for (int i = 0; i < NW; i++) pthread_join(t[i], 0);
    printf("cond_broadcast woke %d of %d\n", done, NW);
}

static int sec_requeue(void) {
    /* Simple errors first. */
    uint32_t x = 7;
    errno = 0;
    long r = futex(&x, FUTEX_WAIT, 8, 0, 0, 0);
    printf("FUTEX_WAIT mismatch: r=%ld EAGAIN=%d\n", r, errno == EAGAIN);
    struct timespec to = {0, 30 * 1000 * 1000};
    errno = 0;
    r = futex(&x, FUTEX_WAIT, 7, (long)&to, 0, 0);
    printf("FUTEX_WAIT timeout: r=%ld ETIMEDOUT=%d\n", r, errno == ETIMEDOUT);
    printf("FUTEX_WAKE nobody: %ld\n", futex(&x, FUTEX_WAKE, INT_MAX, 0, 0, 0));

    pthread_t w[2];
    for (int i = 0; i < 2; i++) pthread_create(&w[i], 0, raw_waiter, 0);
    while (__atomic_load_n(&ready, __ATOMIC_SEQ_CST) < 2) nap(2);
    nap(30);

    errno = 0;
    r = futex(&A, FUTEX_CMP_REQUEUE, 0, INT_MAX, &B, 1);
    printf("CMP_REQUEUE stale val3: r=%ld EAGAIN=%d\n", r, errno == EAGAIN);

    /* A waiter may not have reached the kernel yet: keep requeueing until both moved. */
    long moved = 0;
    for (int i = 0; i < 1000 && moved < 2; i++) {
        r = futex(&A, FUTEX_CMP_REQUEUE, 0, INT_MAX, &B, 0);
        if (r < 0) {
            perror("CMP_REQUEUE");
            return 1;
        }
        moved += r;
        if (moved < 2) nap(5);
    }
    printf("requeued A->B: %ld\n", moved);
    printf("FUTEX_WAKE on A afterwards: %ld\n", futex(&A, FUTEX_WAKE, INT_MAX, 0, 0, 0));
    nap(50);
    printf("woken so far: %d\n", get_woken());

    r = futex(&B, FUTEX_CMP_REQUEUE, 1, 1, &A, 0);
    printf("CMP_REQUEUE B->A wake 1 requeue 1: %ld\n", r);
    for (int i = 0; i < 2000 && get_woken() < 1; i++) nap(2);
    nap(30);
    printf("woken so far: %d\n", get_woken());
    printf("FUTEX_WAKE on B: %ld\n", futex(&B, FUTEX_WAKE, INT_MAX, 0, 0, 0));
    printf("FUTEX_WAKE on A: %ld\n", futex(&A, FUTEX_WAKE, INT_MAX, 0, 0, 0));
    int ok = 0;
    for (int i = 0; i < 2; i++) {
        void *ret;
        pthread_join(w[i], &ret);
        ok += (int)(intptr_t)ret;
    }
    printf("woken total: %d, returned 0: %d\n", get_woken(), ok);

    /* FUTEX_REQUEUE (no compare) with nobody waiting returns 0. */
    printf("FUTEX_REQUEUE empty: %ld\n", futex(&A, FUTEX_REQUEUE, 1, 1, &B, 0));
    return 0;
}

static int sec_private_shared(void) {
    /* A private-op requeue must not match a waiter that used the shared op. */
    ready = 0;
    woken = 0;
    pthread_t pw;
    pthread_create(&pw, 0, raw_waiter, 0);
    while (__atomic_load_n(&ready, __ATOMIC_SEQ_CST) < 1) nap(2);
    nap(30);
    printf("private requeue of a shared waiter: %ld\n", futex(&A, FUTEX_CMP_REQUEUE_PRIVATE, 0, INT_MAX, &B, 0));
    long on_a = 0, on_b = 0;
    for (int i = 0; i < 1000 && on_a + on_b == 0; i++) {
        on_a = futex(&A, FUTEX_WAKE, 1, 0, 0, 0);
        if (!on_a) on_b = futex(&B, FUTEX_WAKE, 1, 0, 0, 0);
        if (on_a + on_b == 0) nap(2);
    }
    printf("shared wake found it on A %ld on B %ld\n", on_a, on_b);
    pthread_join(pw, 0);
    return 0;
}

static int want(int argc, char **argv, const char *section) {
    int w = argc < 2;
    for (int a = 1; a < argc; a++) w |= !strcmp(argv[a], section);
    return w;
}

int main(int argc, char **argv) {
    if (want(argc, argv, "cond")) sec_cond();
    if (want(argc, argv, "requeue") && sec_requeue()) return 1;
    if (want(argc, argv, "private_shared") && sec_private_shared()) return 1;
    return 0;
}
