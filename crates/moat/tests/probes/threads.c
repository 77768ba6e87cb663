/* Eight pthreads contend on a mutex, signal a condition variable and are joined:
   clone(CLONE_THREAD), futex wait/wake and CLONE_CHILD_CLEARTID all have to work. */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/syscall.h>
static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t c = PTHREAD_COND_INITIALIZER;
static long counter; static int ready;
static void *work(void *arg) {
    for (int i = 0; i < 10000; i++) { pthread_mutex_lock(&m); counter++; pthread_mutex_unlock(&m); }
    pthread_mutex_lock(&m); ready++; pthread_cond_broadcast(&c); pthread_mutex_unlock(&m);
    return arg;
}
int main(void) {
    pthread_t t[8];
    for (long i = 0; i < 8; i++) pthread_create(&t[i], 0, work, (void *)i);
    pthread_mutex_lock(&m); while (ready < 8) pthread_cond_wait(&c, &m); pthread_mutex_unlock(&m);
    long sum = 0; for (int i = 0; i < 8; i++) { void *r; pthread_join(t[i], &r); sum += (long)r; }
    printf("counter=%ld sum=%ld pid_is_tid=%d\n", counter, sum, getpid() == syscall(SYS_gettid));
    return 0;
}
