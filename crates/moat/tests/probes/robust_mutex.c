/* A robust mutex held by a thread that exits: the next locker gets EOWNERDEAD,
   makes the mutex consistent and can use it again. Also creates threads through
   clone3, which glibc prefers. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>

static pthread_mutex_t m;

static void *holder(void *a) {
    (void)a;
    pthread_mutex_lock(&m);
    return 0; /* exits holding it */
}

int main(void) {
    pthread_mutexattr_t at;
    pthread_mutexattr_init(&at);
    pthread_mutexattr_setrobust(&at, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&m, &at);
    pthread_t t;
    pthread_create(&t, 0, holder, 0);
    pthread_join(t, 0);
    int r = pthread_mutex_lock(&m);
    printf("lock after owner died: %s\n", r == EOWNERDEAD ? "EOWNERDEAD" : "other");
    printf("consistent: %d\n", pthread_mutex_consistent(&m));
    printf("unlock: %d\n", pthread_mutex_unlock(&m));
    printf("relock: %d\n", pthread_mutex_lock(&m));
    return 0;
}
