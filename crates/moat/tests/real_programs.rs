//! Differential tests with the host's own programs: each case runs natively and
//! under `moat do` (host root) and must give the same stdout and exit status.

mod common;

use std::process::Command;

use common::native::{differential, moat, probe, probe_with, run};

#[test]
fn pthreads_mutex_condvar_join() {
    differential(&[probe("threads").to_str().expect("utf-8 path")]);
}

#[test]
fn python_threads_and_condition() {
    differential(&[
        "python3",
        "-c",
        "import threading\n\
         cv = threading.Condition(); n = [0]\n\
         def w():\n    with cv:\n        n[0] += 1; cv.notify_all()\n\
         ts = [threading.Thread(target=w) for _ in range(8)]\n\
         [t.start() for t in ts]\n\
         with cv:\n    cv.wait_for(lambda: n[0] == 8)\n\
         [t.join() for t in ts]\n\
         print('threads', n[0])",
    ]);
}

#[test]
fn python_json_re_hashlib() {
    differential(&[
        "python3",
        "-c",
        "import json, re, hashlib\n\
         d = json.loads(json.dumps({'a': [1, 2, 3], 'b': 'x' * 10}))\n\
         print(d, re.findall(r'\\d+', 'a1b22c333'), hashlib.sha256(b'moat').hexdigest())\n\
         import sqlite3, tempfile, os\n\
         p = os.path.join(tempfile.mkdtemp(), 'db'); c = sqlite3.connect(p)\n\
         c.execute('create table t(a)'); c.executemany('insert into t values(?)', [(i,) for i in range(1000)])\n\
         c.commit(); print(c.execute('select count(*), sum(a) from t').fetchone()); c.close(); os.unlink(p)",
    ]);
}

#[test]
fn bash_functions_arrays_heredoc() {
    differential(&[
        "bash",
        "-c",
        "f() { local -a a=(\"$@\"); echo \"${#a[@]} ${a[1]}\"; }\n\
         f x y z\n\
         while read -r l; do echo \"line:$l\"; done <<EOF\none\ntwo\nEOF\n\
         for i in 3 1 2; do echo $i; done | sort -n | tr '\\n' ' '; echo",
    ]);
}

#[test]
fn coreutils_sort_sha256_tar_roundtrip() {
    differential(&[
        "sh",
        "-c",
        "w=$(mktemp -d) && cd $w && seq 1 20000 | sort -rn | head -3; \
         seq 1 100000 > f && sha256sum < f; \
         mkdir -p d/e && echo hi > d/e/x && tar czf t.tgz d && rm -r d && tar xzf t.tgz && cat d/e/x; \
         cd / && rm -rf $w",
    ]);
}

#[test]
fn coreutils_mv_replaces_a_file() {
    // mv opens the target with O_PATH|O_DIRECTORY to learn it is no directory.
    differential(&[
        "sh",
        "-c",
        "w=$(mktemp -d) && cd $w && echo a > a && echo b > b && mv a b && cat b && ls; cd / && rm -rf $w",
    ]);
}

#[test]
fn xz_with_threads() {
    differential(&["sh", "-c", "seq 1 200000 | xz -T2 -c | xz -d | sha256sum"]);
}

#[test]
fn sqlite3_cli_transaction_in_tmp() {
    // fcntl record locks guard the database file.
    differential(&[
        "sh",
        "-c",
        "w=$(mktemp -d) && { echo 'create table t(a integer); begin;'; \
         seq 1 10000 | sed 's/.*/insert into t values(&);/'; echo 'commit;'; \
         echo 'select count(*), sum(a), max(a) from t;'; } | sqlite3 $w/db; rm -rf $w",
    ]);
}

#[test]
fn python_setitimer_handler_runs() {
    differential(&[
        "python3",
        "-c",
        "import signal, time\n\
         hits = []\n\
         signal.signal(signal.SIGALRM, lambda *a: hits.append(1))\n\
         signal.setitimer(signal.ITIMER_REAL, 0.05, 0.05)\n\
         while len(hits) < 3: time.sleep(0.01)\n\
         signal.setitimer(signal.ITIMER_REAL, 0)\n\
         print('alarms', len(hits), signal.getitimer(signal.ITIMER_REAL))",
    ]);
}

#[test]
fn python_epoll_and_eventfd() {
    differential(&[
        "python3",
        "-c",
        "import selectors, os, threading, time\n\
         s = selectors.DefaultSelector(); print(type(s).__name__)\n\
         r, w = os.pipe(); s.register(r, selectors.EVENT_READ)\n\
         threading.Thread(target=lambda: (time.sleep(0.05), os.write(w, b'x'))).start()\n\
         print([k.fd == r for k, _ in s.select(5)])\n\
         e = os.eventfd(0); os.eventfd_write(e, 3); print(os.eventfd_read(e))",
    ]);
}

#[test]
fn bash_process_substitution_wait_and_select() {
    differential(&[
        "bash",
        "-c",
        "diff <(seq 3) <(seq 3) && echo same; cat <(echo procsub)\n\
         sleep 0.1 & a=$!; (exit 3) & b=$!; wait $a; echo a=$?; wait $b; echo b=$?\n\
         read -t 0.1 x < <(sleep 1); echo timeout=$?\n\
         trap 'echo trapped' USR1; kill -USR1 $$; echo end",
    ]);
    differential(&[
        "python3",
        "-c",
        "import select, os\n\
         r, w = os.pipe(); os.write(w, b'x')\n\
         print(select.select([r], [w], [], 1))\n\
         p = select.poll(); p.register(r); print(p.poll(10))",
    ]);
}

#[test]
fn mremap_grows_and_moves() {
    differential(&[probe("mremap").to_str().expect("utf-8 path")]);
}

#[test]
fn rlimits_nofile_fsize_as_are_enforced() {
    differential(&[
        "bash",
        "-c",
        "ulimit -n 20; python3 -c 'import os\ntry:\n    [os.open(\"/dev/null\", 0) for _ in range(30)]\nexcept OSError as e: print(e.errno)'\n\
         ulimit -n; ulimit -Hn\n\
         f=$(mktemp); (ulimit -f 1; head -c 5000 /dev/zero > $f) 2>/dev/null; echo fsize=$? size=$(wc -c < $f); rm -f $f\n\
         ulimit -s\n\
         (ulimit -v 100000; python3 -c 'x = bytearray(200 * 1024 * 1024)' 2>&1 | tail -1)",
    ]);
}

#[test]
fn signalfd_timerfd_sigqueue_sigtimedwait() {
    differential(&[probe("sigfd").to_str().expect("utf-8 path")]);
}

#[test]
fn memfd_flock_xattr_fallocate_copy() {
    differential(&[
        "python3",
        "-c",
        "import os, fcntl, shutil, tempfile\n\
         d = tempfile.mkdtemp(); p = d + '/l'\n\
         fd = os.memfd_create('x'); os.write(fd, b'memfd'); os.lseek(fd, 0, 0)\n\
         print(os.read(fd, 10), os.readlink(f'/proc/self/fd/{fd}'))\n\
         f = open(p, 'w'); fcntl.flock(f, fcntl.LOCK_EX); g = open(p)\n\
         try: fcntl.flock(g, fcntl.LOCK_EX | fcntl.LOCK_NB)\n\
         except BlockingIOError: print('locked')\n\
         f.close(); fcntl.flock(g, fcntl.LOCK_EX | fcntl.LOCK_NB); print('got it')\n\
         h = open(p, 'r+'); os.posix_fallocate(h.fileno(), 0, 100); print(os.stat(p).st_size)\n\
         shutil.copyfile('/etc/hostname', d + '/h'); print(open(d + '/h').read() == open('/etc/hostname').read())\n\
         t = os.open(d, os.O_TMPFILE | os.O_RDWR, 0o600); os.write(t, b'tmp'); os.lseek(t, 0, 0)\n\
         print(os.read(t, 3), sorted(os.listdir(d)))\n\
         shutil.rmtree(d)",
    ]);
}

#[test]
fn python_pty_openpty_and_fork() {
    // Copied where the sandbox sees it: a checkout under /tmp is hidden by its tmpfs.
    let script = common::native::scratch("pty").join("pty_pair.py");
    std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/scripts/pty_pair.py"), &script).expect("copy the script");
    differential(&["python3", script.to_str().expect("utf-8")]);
}

#[test]
fn python_process_pool_and_shared_file_mapping() {
    // multiprocessing's semaphores live in /dev/shm and are mapped MAP_SHARED.
    differential(&[
        "python3",
        "-c",
        "from concurrent.futures import ProcessPoolExecutor\n\
         import subprocess, mmap, os, tempfile\n\
         with ProcessPoolExecutor(2) as ex: print(list(ex.map(abs, [-1, -2, 3])))\n\
         print(subprocess.run(['echo', 'sub'], capture_output=True, text=True).stdout.strip())\n\
         d = tempfile.mkdtemp(dir='/dev/shm'); p = d + '/x'\n\
         fd = os.open(p, os.O_CREAT | os.O_RDWR); os.ftruncate(fd, 4096)\n\
         m = mmap.mmap(fd, 4096); pid = os.fork()\n\
         if pid == 0:\n    m[:5] = b'child'; os._exit(0)\n\
         os.waitpid(pid, 0); print(m[:5], os.pread(fd, 5, 0))\n\
         os.unlink(p); os.rmdir(d)",
    ]);
}

#[test]
fn coreutils_findutils_and_tar_xz() {
    differential(&[
        "bash",
        "-c",
        "ls -l /usr/share/doc/bash | head -5; find /usr/share/doc -name '*.gz' | wc -l; du -s /usr/share/doc/bash\n\
         stat -c '%n %s %F %a' /usr/bin/env /etc/hostname /usr/share\n\
         w=$(mktemp -d); head -c 30000000 /usr/bin/python3.11 > $w/big; sha256sum < $w/big\n\
         cd $w && mkdir t && cp /etc/hostname t/ && seq 1 5000 > t/s && tar cJf t.txz t && rm -r t \\\n\
           && tar xJf t.txz && sha256sum t/s && cd / && rm -rf $w",
    ]);
}

#[test]
fn gcc_git_perl() {
    differential(&[
        "bash",
        "-c",
        "w=$(mktemp -d); cd $w\n\
         printf 'int f(int);\\nint main(void){return f(3)-9;}\\n' > a.c; printf 'int f(int x){return x*x;}\\n' > b.c\n\
         gcc -O2 -o p a.c b.c && ./p; echo gcc-rc=$?\n\
         git init -q r && cd r && git config user.email a@b && git config user.name n\n\
         echo hi > f && git add f && git commit -qm first && echo more >> f && git diff --stat\n\
         git commit -qam second && git log --oneline | wc -l\n\
         cd / && rm -rf $w\n\
         perl -e 'pipe(R,W); if (fork) { close W; print scalar <R>; wait } else { close R; print W \"from child\\n\"; exit }'\n\
         echo 'a=1 b=22' | perl -ne 'print join(\",\", /(\\w)=(\\d+)/g), \"\\n\"'",
    ]);
}

#[test]
fn strace_shows_and_counts_unimplemented_syscalls() {
    let out = run(Command::new(moat()).args([
        "do",
        "--strace",
        "--",
        "python3",
        "-c",
        "import ctypes; s = ctypes.CDLL(None).syscall; print(s(500), s(500), ctypes.get_errno())",
    ]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "-1 -1 0\n", "stderr:\n{stderr}");
    assert_eq!(stderr.matches("syscall_500(").count(), 2, "no strace line for nr 500:\n{stderr}");
    assert!(stderr.lines().any(|l| l.contains("syscall_500(") && l.ends_with(") = -1 ENOSYS")), "{stderr}");
    assert!(stderr.contains("called: ") && stderr.contains(" 500 x2"), "no per-number count:\n{stderr}");
    assert_eq!(stderr.matches("unimplemented syscall unknown (500)").count(), 1, "logged once:\n{stderr}");
}

#[test]
fn avx_state_survives_a_signal_handler() {
    differential(&[probe_with("avx_signal", &["-O1", "-mavx"]).to_str().expect("utf-8 path")]);
}

#[test]
fn robust_mutex_owner_died() {
    differential(&[probe("robust_mutex").to_str().expect("utf-8 path")]);
}

#[test]
fn proc_and_sys_files_tools_read() {
    differential(&[
        "bash",
        "-c",
        "cat /sys/devices/system/cpu/online /sys/devices/system/cpu/possible; nproc\n\
         head -1 /proc/self/limits; wc -l < /proc/self/limits; cat /proc/self/oom_score_adj\n\
         grep -c '^Rss:' /proc/self/smaps_rollup; ls /proc/self/fdinfo/0 /proc/self/fdinfo/1\n\
         cat /proc/sys/vm/overcommit_memory; wc -c < /proc/sys/kernel/random/boot_id; ls /proc/self/task | wc -l",
    ]);
}

#[test]
fn inotify_directory_events() {
    differential(&[probe("inotify").to_str().expect("utf-8 path")]);
}

#[test]
fn posix_timers_signal_with_value() {
    differential(&[probe("posix_timer").to_str().expect("utf-8 path")]);
}

#[test]
fn epoll_loops_and_deep_nesting_are_refused() {
    differential(&[probe("epoll_nesting").to_str().expect("utf-8 path")]);
}

#[test]
fn reads_and_writes_stop_at_a_fault_in_the_buffer_as_on_linux() {
    differential(&[probe("partial_buffer").to_str().expect("utf-8 path")]);
}

/// /dev/stdout, /dev/stderr, /dev/stdin and /dev/fd/N reopen the files the
/// program was given (pipes here), also for a shell's `>` (O_CREAT), as
/// nginx-style images and entrypoint scripts use them. They failed with
/// EACCES and ENOENT before.
#[test]
fn dev_stdio_links_reopen_the_given_files() {
    differential(&[
        "/bin/sh",
        "-c",
        "echo out > /dev/stdout; echo err > /dev/stderr 2>&1; echo in | cat /dev/stdin; echo fd > /dev/fd/1; \
         exec 3>&1; echo three > /dev/fd/3",
    ]);
}
