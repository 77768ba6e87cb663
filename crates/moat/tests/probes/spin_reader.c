/* Eight threads make system calls in a tight loop while a ninth blocks in
 * read(2) on a pipe; the main thread writes one byte after a while. The
 * reader must wake and say so (the spinning threads must not starve it, nor
 * the Sentry thread that serves it). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

static int fds[2];
static volatile int done;

static void *spin(void *arg) {
    (void)arg;
    while (!done)
        syscall(SYS_getppid);
    return NULL;
}

static void *reader(void *arg) {
    (void)arg;
    char c;
    if (read(fds[0], &c, 1) == 1)
        printf("the reader woke with %c\n", c);
    done = 1;
    return NULL;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (pipe(fds))
        return 1;
    pthread_t t[9];
    for (int i = 0; i < 8; i++)
        pthread_create(&t[i], NULL, spin, NULL);
    pthread_create(&t[8], NULL, reader, NULL);
    usleep(300000);
    if (write(fds[1], "x", 1) != 1)
        return 1;
    for (int i = 0; i < 9; i++)
        pthread_join(t[i], NULL);
    printf("all threads ended\n");
    return 0;
}
