// System V message queues and semaphores: round trips, flags, errors,
// blocking across fork, SEM_UNDO at exit and hostile arguments. Prints what
// it sees (never ids, pids or times, which differ natively); each argument
// names a section to run.
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef MSG_COPY
#define MSG_COPY 040000
#endif

union semun {
    int val;
    struct semid_ds *buf;
    unsigned short *array;
    struct seminfo *info;
};

struct msg {
    long mtype;
    char text[64];
};

static const char *err(long r) {
    return r == -1 ? strerrorname_np(errno) : "ok";
}

static int send(int q, long type, const char *text, int flags) {
    struct msg m = {.mtype = type};
    strcpy(m.text, text);
    return msgsnd(q, &m, strlen(text) + 1, flags);
}

static void recv(int q, size_t size, long type, int flags) {
    struct msg m;
    memset(&m, 0, sizeof m);
    ssize_t n = msgrcv(q, &m, size, type, flags);
    if (n < 0) {
        printf("  rcv(%zu,%ld,%#x) = %s\n", size, type, flags, err(-1));
    } else {
        printf("  rcv(%zu,%ld,%#x) = %zd type=%ld text=%.*s\n", size, type, flags, n, m.mtype, (int)n, m.text);
    }
}

static void msg_basic(void) {
    puts("msg");
    int q = msgget(IPC_PRIVATE, 0600);
    printf("  get %s\n", err(q));
    const long types[] = {3, 1, 2, 1, 5};
    const char *texts[] = {"three", "one", "two", "uno", "five"};
    for (int i = 0; i < 5; i++) {
        printf("  snd %ld %s\n", types[i], err(send(q, types[i], texts[i], 0)));
    }
    struct msqid_ds ds;
    const char *r = err(msgctl(q, IPC_STAT, &ds));
    printf("  stat %s qnum=%lu cbytes=%lu qbytes=%lu mode=%o mine=%d lspid=%d lrpid=%d\n", r,
           ds.msg_qnum, ds.__msg_cbytes, ds.msg_qbytes, ds.msg_perm.mode, ds.msg_perm.uid == geteuid(),
           ds.msg_lspid == getpid(), ds.msg_lrpid);
    recv(q, 64, 2, MSG_COPY | IPC_NOWAIT);
    recv(q, 64, 9, MSG_COPY | IPC_NOWAIT);
    recv(q, 64, 0, MSG_COPY);
    recv(q, 64, 0, MSG_COPY | MSG_EXCEPT | IPC_NOWAIT);
    recv(q, 64, 2, 0);
    recv(q, 64, -4, 0);
    recv(q, 64, 3, MSG_EXCEPT);
    recv(q, 2, 0, IPC_NOWAIT);
    recv(q, 2, 0, MSG_NOERROR);
    recv(q, 64, 7, IPC_NOWAIT);
    recv(q, 64, LONG_MIN, 0);
    recv(q, 64, 0, IPC_NOWAIT);
    printf("  snd type0 %s\n", err(send(q, 0, "x", 0)));
    struct msg big = {.mtype = 1};
    printf("  snd 8193 %s\n", err(msgsnd(q, &big, 8193, 0)));
    char *buf = calloc(1, 8 + 8192);
    *(long *)buf = 1;
    printf("  snd 8192 %s\n", err(msgsnd(q, buf, 8192, 0)));
    printf("  snd 8192 %s\n", err(msgsnd(q, buf, 8192, 0)));
    printf("  snd full %s\n", err(msgsnd(q, buf, 1, IPC_NOWAIT)));
    r = err(msgctl(q, IPC_STAT, &ds));
    printf("  stat %s qnum=%lu cbytes=%lu\n", r, ds.msg_qnum, ds.__msg_cbytes);
    ds.msg_qbytes = 10000;
    ds.msg_perm.mode = 0640;
    printf("  set %s\n", err(msgctl(q, IPC_SET, &ds)));
    memset(&ds, 0, sizeof ds);
    r = err(msgctl(q, IPC_STAT, &ds));
    printf("  stat %s qbytes=%lu mode=%o ctime=%d\n", r, ds.msg_qbytes,
           ds.msg_perm.mode, ds.msg_ctime != 0);
    printf("  snd after set %s\n", err(msgsnd(q, buf, 100, IPC_NOWAIT)));
    printf("  rmid %s\n", err(msgctl(q, IPC_RMID, NULL)));
    printf("  rmid again %s\n", err(msgctl(q, IPC_RMID, NULL)));
    printf("  snd removed %s\n", err(send(q, 1, "x", 0)));
    free(buf);
}

static int probe_key(int salt) {
    return 0x6d000000 | ((getpid() & 0xffff) << 4) | salt;
}

static void keys(void) {
    puts("keys");
    key_t k = probe_key(1);
    printf("  absent %s\n", err(msgget(k, 0600)));
    int q = msgget(k, IPC_CREAT | 0600);
    printf("  create %s\n", err(q));
    printf("  excl %s\n", err(msgget(k, IPC_CREAT | IPC_EXCL | 0600)));
    printf("  again same=%d\n", msgget(k, 0) == q);
    printf("  creat same=%d\n", msgget(k, IPC_CREAT | 0666) == q);
    int s = semget(k, 2, IPC_CREAT | 0600);
    printf("  sem same key %s\n", err(s));
    printf("  sem more %s\n", err(semget(k, 3, 0)));
    printf("  sem fewer same=%d\n", semget(k, 1, 0) == s);
    pid_t c = fork();
    if (c == 0) {
        if (setgid(65534) || setuid(65534)) {
            _exit(9);
        }
        struct msqid_ds ds;
        printf("  other get0 same=%d\n", msgget(k, 0) == q);
        printf("  other get0400 %s\n", err(msgget(k, 0400)));
        printf("  other snd %s\n", err(send(q, 1, "x", IPC_NOWAIT)));
        printf("  other rcv ");
        fflush(stdout);
        recv(q, 64, 0, IPC_NOWAIT);
        printf("  other stat %s\n", err(msgctl(q, IPC_STAT, &ds)));
        printf("  other rmid %s\n", err(msgctl(q, IPC_RMID, NULL)));
        printf("  other semop %s\n", err(semop(s, &(struct sembuf){0, 1, 0}, 1)));
        printf("  other getval %s\n", err(semctl(s, 0, GETVAL)));
        printf("  other sem rmid %s\n", err(semctl(s, 0, IPC_RMID)));
        fflush(stdout);
        _exit(0);
    }
    int st;
    waitpid(c, &st, 0);
    printf("  child %d\n", WEXITSTATUS(st));
    const char *r = err(msgctl(q, IPC_RMID, NULL));
    printf("  rmid %s %s\n", r, err(semctl(s, 0, IPC_RMID)));
    printf("  gone %s\n", err(msgget(k, 0)));
}

// A reader blocked in msgrcv (or a semop sleeper) sees EIDRM when the object
// is removed. Nothing says when the child is asleep for msgrcv, so the parent
// waits a little and tries again while the child was early (EINVAL).
static void eidrm_msg(void) {
    puts("eidrm_msg");
    for (int attempt = 0; attempt < 50; attempt++) {
        int q = msgget(IPC_PRIVATE, 0600);
        pid_t c = fork();
        if (c == 0) {
            struct msg m;
            msgrcv(q, &m, sizeof m.text, 0, 0);
            _exit(errno == EIDRM ? 0 : 1);
        }
        usleep(20000 * (attempt + 1));
        msgctl(q, IPC_RMID, NULL);
        int st;
        waitpid(c, &st, 0);
        if (WEXITSTATUS(st) == 0) {
            puts("  blocked reader: EIDRM");
            return;
        }
    }
    puts("  never saw EIDRM");
}

static void prodcons(void) {
    puts("prodcons");
    int q = msgget(IPC_PRIVATE, 0600);
    struct msqid_ds ds;
    msgctl(q, IPC_STAT, &ds);
    ds.msg_qbytes = 64; // a few messages at a time, so the producer blocks
    msgctl(q, IPC_SET, &ds);
    pid_t c = fork();
    if (c == 0) {
        for (int i = 1; i <= 200; i++) {
            char t[16];
            snprintf(t, sizeof t, "%d", i);
            if (send(q, 1 + i % 3, t, 0)) {
                _exit(1);
            }
        }
        send(q, 9, "end", 0);
        _exit(0);
    }
    long sum = 0, count = 0, bytype[4] = {0};
    for (;;) {
        struct msg m;
        if (msgrcv(q, &m, sizeof m.text, 0, 0) < 0) {
            printf("  rcv %s\n", err(-1));
            break;
        }
        if (m.mtype == 9) {
            break;
        }
        sum += atol(m.text);
        count++;
        bytype[m.mtype]++;
    }
    int st;
    waitpid(c, &st, 0);
    printf("  count=%ld sum=%ld types=%ld,%ld,%ld child=%d\n", count, sum, bytype[1], bytype[2], bytype[3],
           WEXITSTATUS(st));
    msgctl(q, IPC_RMID, NULL);
}

static int sem_op(int s, unsigned short num, short op, short flg) {
    struct sembuf b = {num, op, flg};
    return semop(s, &b, 1);
}

static void show_sems(int s, int n) {
    unsigned short v[8];
    printf("  getall %s", err(semctl(s, 0, GETALL, (union semun){.array = v})));
    for (int i = 0; i < n; i++) {
        printf(" %u", v[i]);
    }
    printf("\n");
}

static void sem_basic(void) {
    puts("sem");
    int s = semget(IPC_PRIVATE, 3, 0600);
    printf("  get %s\n", err(s));
    show_sems(s, 3);
    const char *r = err(semctl(s, 1, SETVAL, (union semun){.val = 7}));
    printf("  setval %s getval=%d\n", r, semctl(s, 1, GETVAL));
    printf("  getpid mine=%d\n", semctl(s, 1, GETPID) == getpid());
    unsigned short set[3] = {1, 2, 3};
    printf("  setall %s\n", err(semctl(s, 0, SETALL, (union semun){.array = set})));
    show_sems(s, 3);
    struct sembuf ops[3] = {{0, 1, 0}, {1, -2, 0}, {2, 5, 0}};
    printf("  semop3 %s\n", err(semop(s, ops, 3)));
    show_sems(s, 3);
    struct sembuf atomic[2] = {{0, 1, 0}, {1, -1, IPC_NOWAIT}};
    printf("  partial nowait %s\n", err(semop(s, atomic, 2)));
    show_sems(s, 3);
    struct sembuf same[3] = {{2, -3, 0}, {2, -3, 0}, {2, 1, 0}};
    printf("  same sem twice %s\n", err(semop(s, same, 3)));
    show_sems(s, 3);
    printf("  zero nowait %s\n", err(sem_op(s, 0, 0, IPC_NOWAIT)));
    printf("  zero ok %s\n", err(sem_op(s, 1, 0, 0)));
    printf("  range %s\n", err(sem_op(s, 0, 32767, 0)));
    printf("  efbig %s\n", err(sem_op(s, 3, 1, 0)));
    printf("  setval range %s", err(semctl(s, 0, SETVAL, (union semun){.val = 32768})));
    printf(" %s\n", err(semctl(s, 0, SETVAL, (union semun){.val = -1})));
    printf("  setval 32767 %s\n", err(semctl(s, 0, SETVAL, (union semun){.val = 32767})));
    printf("  getval bad num %s", err(semctl(s, 3, GETVAL)));
    printf(" %s\n", err(semctl(s, -1, GETVAL)));
    printf("  ncnt=%d zcnt=%d\n", semctl(s, 0, GETNCNT), semctl(s, 0, GETZCNT));
    struct semid_ds ds;
    r = err(semctl(s, 0, IPC_STAT, (union semun){.buf = &ds}));
    printf("  stat %s nsems=%lu mode=%o otime=%d\n", r,
           ds.sem_nsems, ds.sem_perm.mode, ds.sem_otime != 0);
    ds.sem_perm.mode = 0604;
    printf("  set %s\n", err(semctl(s, 0, IPC_SET, (union semun){.buf = &ds})));
    semctl(s, 0, IPC_STAT, (union semun){.buf = &ds});
    printf("  mode=%o\n", ds.sem_perm.mode);
    printf("  bad cmd %s\n", err(semctl(s, 0, 99)));
    r = err(semctl(s, 0, IPC_RMID));
    printf("  rmid %s %s\n", r, err(semctl(s, 0, GETVAL)));
    printf("  nsems 0 %s\n", err(semget(IPC_PRIVATE, 0, 0600)));
}

static void undo(void) {
    puts("undo");
    int s = semget(IPC_PRIVATE, 2, 0600);
    semctl(s, 0, SETVAL, (union semun){.val = 5});
    pid_t c = fork();
    if (c == 0) {
        sem_op(s, 0, -2, SEM_UNDO);
        sem_op(s, 0, -1, SEM_UNDO);
        sem_op(s, 1, 4, SEM_UNDO);
        sem_op(s, 1, 1, 0);
        _exit(semctl(s, 0, GETVAL));
    }
    int st;
    waitpid(c, &st, 0);
    printf("  child saw %d; after exit %d %d\n", WEXITSTATUS(st), semctl(s, 0, GETVAL), semctl(s, 1, GETVAL));
    // SETVAL clears the adjustments of that semaphore.
    int ready[2], go[2];
    if (pipe(ready) || pipe(go)) {
        return;
    }
    c = fork();
    if (c == 0) {
        sem_op(s, 0, 3, SEM_UNDO);
        sem_op(s, 1, 2, SEM_UNDO);
        char b = 'x';
        write(ready[1], &b, 1);
        read(go[0], &b, 1);
        _exit(0);
    }
    char b;
    read(ready[0], &b, 1);
    semctl(s, 0, SETVAL, (union semun){.val = 1});
    write(go[1], "y", 1);
    waitpid(c, &st, 0);
    printf("  after setval and exit %d %d\n", semctl(s, 0, GETVAL), semctl(s, 1, GETVAL));
    // Adjustments are clamped at exit.
    c = fork();
    if (c == 0) {
        sem_op(s, 1, -1, SEM_UNDO);
        sem_op(s, 1, 32767, 0);
        sem_op(s, 0, 1, SEM_UNDO);
        sem_op(s, 0, -2, 0);
        _exit(0);
    }
    waitpid(c, &st, 0);
    printf("  clamped %d %d\n", semctl(s, 0, GETVAL), semctl(s, 1, GETVAL));
    semctl(s, 0, IPC_RMID);
}

static void wait_count(int s, int num, int cmd, int want) {
    while (semctl(s, num, cmd) != want) {
        usleep(1000);
    }
}

static void waitzero(void) {
    puts("waitzero");
    int s = semget(IPC_PRIVATE, 1, 0600);
    semctl(s, 0, SETVAL, (union semun){.val = 2});
    pid_t c = fork();
    if (c == 0) {
        int r = sem_op(s, 0, 0, 0);
        _exit(r == 0 ? 0 : 1);
    }
    wait_count(s, 0, GETZCNT, 1);
    printf("  zcnt=%d ncnt=%d\n", semctl(s, 0, GETZCNT), semctl(s, 0, GETNCNT));
    sem_op(s, 0, -1, 0);
    printf("  still zcnt=%d\n", semctl(s, 0, GETZCNT));
    sem_op(s, 0, -1, 0);
    int st;
    waitpid(c, &st, 0);
    printf("  waiter done %d zcnt=%d\n", WEXITSTATUS(st), semctl(s, 0, GETZCNT));
    c = fork();
    if (c == 0) {
        struct sembuf two[2] = {{0, -2, 0}, {0, 1, 0}};
        int r = semop(s, two, 2);
        _exit(r == 0 ? 0 : 1);
    }
    wait_count(s, 0, GETNCNT, 1);
    printf("  ncnt=%d\n", semctl(s, 0, GETNCNT));
    sem_op(s, 0, 1, 0);
    int ncnt = semctl(s, 0, GETNCNT);
    printf("  one is not enough, ncnt=%d val=%d\n", ncnt, semctl(s, 0, GETVAL));
    sem_op(s, 0, 1, 0);
    waitpid(c, &st, 0);
    printf("  taker done %d val=%d\n", WEXITSTATUS(st), semctl(s, 0, GETVAL));
    c = fork();
    if (c == 0) {
        int r = sem_op(s, 0, -5, 0);
        _exit(r == -1 && errno == EIDRM ? 0 : 1);
    }
    wait_count(s, 0, GETNCNT, 1);
    semctl(s, 0, IPC_RMID);
    waitpid(c, &st, 0);
    printf("  removed under sleeper: EIDRM=%d\n", WEXITSTATUS(st) == 0);
}

static void on_alarm(int sig) {
    (void)sig;
}

static void timeout(void) {
    puts("timeout");
    int s = semget(IPC_PRIVATE, 1, 0600);
    struct sembuf b = {0, -1, 0};
    struct timespec ts = {0, 20 * 1000 * 1000};
    printf("  semtimedop %s\n", err(semtimedop(s, &b, 1, &ts)));
    struct timespec zero = {0, 0};
    printf("  zero timeout %s\n", err(semtimedop(s, &b, 1, &zero)));
    struct timespec bad = {0, 1000000000};
    printf("  bad timeout %s\n", err(semtimedop(s, &b, 1, &bad)));
    printf("  bad timeout ptr %s\n", err(syscall(SYS_semtimedop, s, &b, 1, (void *)8)));
    sem_op(s, 0, 1, 0);
    printf("  free %s\n", err(semtimedop(s, &b, 1, &ts)));
    // A handled signal ends a sleep with EINTR, SA_RESTART or not.
    for (int restart = 0; restart < 2; restart++) {
        struct sigaction sa = {.sa_handler = on_alarm, .sa_flags = restart ? SA_RESTART : 0};
        sigaction(SIGALRM, &sa, NULL);
        int q = msgget(IPC_PRIVATE, 0600);
        ualarm(30000, 0);
        printf("  sa_restart=%d semop %s\n", restart, err(semop(s, &b, 1)));
        ualarm(30000, 0);
        struct msg m;
        printf("  sa_restart=%d msgrcv %s\n", restart, err(msgrcv(q, &m, 64, 0, 0)));
        msgctl(q, IPC_RMID, NULL);
    }
    semctl(s, 0, IPC_RMID);
}

static void hostile(void) {
    puts("hostile");
    int q = msgget(IPC_PRIVATE, 0600);
    int s = semget(IPC_PRIVATE, 2, 0600);
    struct msg m = {.mtype = 1};
    printf("  snd huge %s\n", err(msgsnd(q, &m, SIZE_MAX, 0)));
    printf("  snd huge2 %s\n", err(msgsnd(q, &m, (size_t)1 << 40, 0)));
    printf("  snd bad ptr %s\n", err(msgsnd(q, (void *)8, 10, 0)));
    char *pages = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    mprotect(pages + 4096, 4096, PROT_NONE);
    *(long *)(pages + 4096 - 16) = 1;
    printf("  snd text past the page %s\n", err(msgsnd(q, pages + 4096 - 16, 100, IPC_NOWAIT)));
    printf("  snd type in guard %s\n", err(msgsnd(q, pages + 4096 - 4, 1, IPC_NOWAIT)));
    printf("  rcv text past the page %s\n", err(msgrcv(q, pages + 4096 - 16, 100, 0, IPC_NOWAIT)));
    printf("  snd neg id %s\n", err(msgsnd(-1, &m, 1, 0)));
    printf("  snd big id %s\n", err(msgsnd(INT_MAX, &m, 1, 0)));
    printf("  rcv neg size %s\n", err(msgrcv(q, &m, (size_t)-1, 0, IPC_NOWAIT)));
    send(q, 1, "hello, a message longer than eight bytes", 0);
    printf("  rcv text past the page %s\n", err(msgrcv(q, pages + 4096 - 16, 100, 0, IPC_NOWAIT)));
    // Linux drops a message it could not copy out; moat keeps it. Another
    // one makes the next answer the same either way.
    send(q, 1, "again", 0);
    printf("  rcv bad ptr %s\n", err(msgrcv(q, (void *)8, 64, 0, IPC_NOWAIT)));
    printf("  rcv copy blocking %s\n", err(msgrcv(q, &m, 64, 0, MSG_COPY)));
    printf("  ctl neg %s %s\n", err(msgctl(-1, IPC_STAT, NULL)), err(msgctl(q, -1, NULL)));
    printf("  ctl bad cmd %s\n", err(msgctl(q, 999, NULL)));
    printf("  ctl stat bad ptr %s\n", err(msgctl(q, IPC_STAT, (void *)8)));
    printf("  ctl set bad ptr %s\n", err(msgctl(q, IPC_SET, (void *)8)));
    printf("  ctl info bad ptr %s\n", err(msgctl(q, IPC_INFO, (void *)8)));
    printf("  semget nsems %s %s\n", err(semget(IPC_PRIVATE, -1, 0600)), err(semget(IPC_PRIVATE, 32001, 0600)));
    struct sembuf b = {0, 1, 0};
    printf("  semop nsops %s %s\n", err(semop(s, &b, 0)), err(semop(s, &b, 501)));
    printf("  semop huge nsops %s\n", err(syscall(SYS_semop, s, &b, (long)-1)));
    printf("  semop bad ptr %s\n", err(semop(s, (void *)8, 1)));
    printf("  semop neg id %s %s\n", err(semop(-1, &b, 1)), err(semop(INT_MAX, &b, 1)));
    printf("  semctl neg %s\n", err(semctl(-5, 0, GETVAL)));
    printf("  getall bad ptr %s\n", err(semctl(s, 0, GETALL, (union semun){.array = (void *)8})));
    printf("  setall bad ptr %s\n", err(semctl(s, 0, SETALL, (union semun){.array = (void *)8})));
    printf("  stat bad ptr %s\n", err(semctl(s, 0, IPC_STAT, (union semun){.buf = (void *)8})));
    printf("  set bad ptr %s\n", err(semctl(s, 0, IPC_SET, (union semun){.buf = (void *)8})));
    unsigned short over[2] = {40000, 1};
    printf("  setall range %s\n", err(semctl(s, 0, SETALL, (union semun){.array = over})));
    const char *r = err(msgctl(q, IPC_RMID, NULL));
    printf("  rm %s %s\n", r, err(semctl(s, 0, IPC_RMID)));
}

// moat's sandbox-wide bounds (not Linux's, so not run natively): at most
// 2^20 semaphores in all sets and 64 MiB queued in all queues.
static void bounds(void) {
    puts("bounds");
    static int ids[40000];
    int n = 0;
    while (n < 40000 && (ids[n] = semget(IPC_PRIVATE, 32000, 0600)) >= 0) {
        n++;
    }
    printf("  sets of 32000: %d, then %s\n", n, err(-1));
    for (int i = 0; i < n; i++) {
        semctl(ids[i], 0, IPC_RMID);
    }
    int s = semget(IPC_PRIVATE, 32000, 0600);
    printf("  after removal %s\n", err(s));
    semctl(s, 0, IPC_RMID);
    char *buf = calloc(1, 8 + 8192);
    *(long *)buf = 1;
    long total = 0;
    n = 0;
    for (;;) {
        int q = msgget(IPC_PRIVATE, 0600);
        if (q < 0) {
            printf("  msgget %s\n", err(-1));
            break;
        }
        ids[n++] = q;
        int sent = 0;
        while (msgsnd(q, buf, 8192, IPC_NOWAIT) == 0) {
            sent++;
        }
        total += sent * 8192L;
        if (sent == 0) {
            printf("  fresh queue full: %s\n", err(-1));
            break;
        }
    }
    printf("  queued between 60 and 64 MiB: %d\n", total >= (60L << 20) && total <= (64L << 20));
    msgctl(ids[0], IPC_RMID, NULL);
    printf("  after freeing one queue %s\n", err(msgsnd(ids[n - 1], buf, 8192, IPC_NOWAIT)));
    for (int i = 1; i < n; i++) {
        msgctl(ids[i], IPC_RMID, NULL);
    }
    n = 0;
    while (n < 40000 && (ids[n] = msgget(IPC_PRIVATE, 0600)) >= 0) {
        n++;
    }
    printf("  queues: %d, then %s\n", n, err(-1));
    for (int i = 0; i < n; i++) {
        msgctl(ids[i], IPC_RMID, NULL);
    }
    free(buf);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    static const struct {
        const char *name;
        void (*run)(void);
    } sections[] = {
        {"msg", msg_basic}, {"keys", keys},         {"eidrm_msg", eidrm_msg}, {"prodcons", prodcons},
        {"sem", sem_basic}, {"undo", undo},         {"waitzero", waitzero},   {"timeout", timeout},
        {"hostile", hostile}, {"bounds", bounds},
    };
    for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++) {
        int run = argc == 1 && sections[i].run != bounds;
        for (int a = 1; a < argc; a++) {
            run |= strcmp(argv[a], sections[i].name) == 0;
        }
        if (run) {
            sections[i].run();
        }
    }
    return 0;
}
