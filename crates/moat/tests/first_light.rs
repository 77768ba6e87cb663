//! First light: busybox shell scripts run natively (chrooted, the oracle) and
//! under `moat do`, compared exactly; plus isolation, ENOSYS and hostile-exec
//! checks of the sandbox itself.
//!
//! The tests must run as root (the native run uses namespaces, mounts and
//! chroot) with busybox-static, util-linux, gcc and libc6-dev installed.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::Duration;

use common::{
    host_descendants, moat_command, run_moat, run_moat_script, run_native_script, unique_name, Output, Rootfs, Running,
    TempDir, BUSYBOX,
};

// ---------------------------------------------------------------------------
// Differential cases
// ---------------------------------------------------------------------------

/// What the native run must print, so that a broken oracle (a chroot that
/// did not come up, a missing applet) fails loudly instead of agreeing with
/// a broken moat.
enum Expect {
    /// Exactly this stdout.
    Stdout(&'static str),
    /// A stdout that holds each of these (for output with dates in it).
    Contains(&'static [&'static str]),
}

/// Runs `/bin/sh -c SCRIPT` natively in a fresh rootfs, checks that the
/// native run gives `expected` and `status`, then runs it under moat and
/// requires the same stdout and exit status.
fn differential(script: &str, expected: Expect, status: i32) {
    let rootfs = Rootfs::new();
    differential_in(&rootfs, script, expected, status);
}

fn differential_in(rootfs: &Rootfs, script: &str, expected: Expect, status: i32) {
    let native = run_native_script(rootfs, script);
    let native_ok = native.status == status
        && match expected {
            Expect::Stdout(out) => native.stdout == out,
            Expect::Contains(parts) => parts.iter().all(|part| native.stdout.contains(part)),
        };
    assert!(
        native_ok,
        "the NATIVE run (the oracle) did not give what this test expects, so the test itself or \
         its chroot setup is broken, not moat\nscript: {script}\nexpected status {status} and stdout {}\n\
         native run:\n{}",
        match expected {
            Expect::Stdout(out) => format!("{out:?}"),
            Expect::Contains(parts) => format!("holding each of {parts:?}"),
        },
        native.describe()
    );

    let moat = run_moat_script(rootfs, script);
    assert_no_panic(&moat);
    assert!(
        moat.stdout == native.stdout && moat.status == native.status,
        "moat differs from native Linux\nscript: {script}\n\n=== native ===\n{}\n\n=== moat ===\n{}",
        native.describe(),
        moat.describe()
    );
}

fn assert_no_panic(output: &Output) {
    assert!(!output.stderr.contains("panicked"), "moat panicked\n{}", output.describe());
}

#[test]
fn pipeline_sort_uniq_head() {
    differential(
        "printf 'b\\na\\nc\\na\\nb\\na\\n' | sort | uniq -c | sort -rn | head -n 2",
        Expect::Stdout("      3 a\n      2 b\n"),
        0,
    );
}

#[test]
fn pipeline_tr_wc() {
    differential(
        "echo 'Hello World' | tr 'a-z' 'A-Z' | tr -d 'O'; echo 'one two three' | wc -w; \
         printf 'x\\ny\\nz\\n' | wc -l",
        Expect::Stdout("HELL WRLD\n3\n3\n"),
        0,
    );
}

#[test]
fn pipeline_grep_sed_awk() {
    differential(
        "seq 1 20 | grep 1 | sed 's/1/one/g' | awk '{ n++; s = s $0 \",\" } END { print n \": \" s }'",
        Expect::Stdout("11: one,one0,oneone,one2,one3,one4,one5,one6,one7,one8,one9,\n"),
        0,
    );
}

#[test]
fn pipeline_yes_head_sigpipe() {
    // yes dies of SIGPIPE once head has had enough; the pipeline's status is wc's.
    differential("yes abc | head -n 10000 | wc -l; yes | head -c 100000 | wc -c", Expect::Stdout("10000\n100000\n"), 0);
}

#[test]
fn command_substitution() {
    differential(
        "x=$(echo hello | tr a-z A-Z); echo \"[$x] $(echo nested $(echo deep))\"; n=$(seq 5 | wc -l); \
         echo $((n * 2)); echo `echo backticks`",
        Expect::Stdout("[HELLO] nested deep\n10\nbackticks\n"),
        0,
    );
}

#[test]
fn subshell_keeps_parent_state() {
    differential(
        "a=1; (a=2; echo inner=$a; exit 3); echo rc=$? outer=$a; cd /; (cd /etc && pwd); pwd",
        Expect::Stdout("inner=2\nrc=3 outer=1\n/etc\n/\n"),
        0,
    );
}

#[test]
fn and_or_lists() {
    differential(
        "true && echo a || echo b; false && echo c || echo d; false || false || echo e; true && false; echo rc=$?; \
         ! false && echo negated",
        Expect::Stdout("a\nd\ne\nrc=1\nnegated\n"),
        0,
    );
}

#[test]
fn redirection_to_and_from_tmp() {
    differential(
        "echo one > /tmp/f; echo two >> /tmp/f; wc -l < /tmp/f; sort -r < /tmp/f > /tmp/g; cat /tmp/g; \
         ls /nonexistent 2> /tmp/err; echo rc=$?; [ -s /tmp/err ] && echo err-written; \
         exec 3> /tmp/fd3; echo via-fd3 >&3; exec 3>&-; cat /tmp/fd3; cat < /tmp/f 2>&1 | tail -n 1",
        Expect::Stdout("2\ntwo\none\nrc=1\nerr-written\nvia-fd3\ntwo\n"),
        0,
    );
}

#[test]
fn ls_la_etc() {
    // `..` is the root, which is an overlay under moat (Linux's own overlayfs
    // reports it from the upper layer too), so its line and the total that
    // counts it are left out; the total of the other entries is kept.
    differential(
        "ls -la /etc | sed '/ \\.\\.$/d; /^total /d'; ls -lA /etc | grep '^total '",
        Expect::Contains(&[
            "total ",
            "drwxr-xr-x",
            " .\n",
            " root ",
            " hostname\n",
            " init.d\n",
            "-rw------- ",
            " shadow\n",
            "lrwxrwxrwx",
            " motd -> issue\n",
            " mtab -> /proc/self/mounts\n",
        ]),
        0,
    );
}

#[test]
fn find_etc() {
    differential(
        "find /etc | sort; echo --; find /etc -type l | sort; echo --; find /etc -type d | sort; echo --; \
         find /etc -name 'h*' -type f | sort",
        Expect::Stdout(
            "/etc\n/etc/group\n/etc/hostname\n/etc/hosts\n/etc/init.d\n/etc/init.d/rcS\n/etc/issue\n/etc/motd\n\
             /etc/mtab\n/etc/network\n/etc/network/interfaces\n/etc/passwd\n/etc/profile\n/etc/shadow\n/etc/shells\n\
             --\n/etc/motd\n/etc/mtab\n--\n/etc\n/etc/init.d\n/etc/network\n--\n/etc/hostname\n/etc/hosts\n",
        ),
        0,
    );
}

#[test]
fn etc_files_read() {
    differential(
        "cat /etc/hostname; cat /etc/motd; grep root /etc/passwd | cut -d: -f1,3,6; wc -l < /etc/group; \
         head -n 1 /etc/network/interfaces",
        Expect::Stdout("moat-test\nmoat first light\nroot:0:/root\n2\nauto lo\n"),
        0,
    );
}

#[test]
fn proc_self_status_has_pid_line() {
    differential("grep -c '^Pid:' /proc/self/status", Expect::Stdout("1\n"), 0);
}

#[test]
fn sleep_fraction() {
    differential("sleep 0.2; echo rc=$?", Expect::Stdout("rc=0\n"), 0);
}

#[test]
fn background_job_killed() {
    differential("sleep 10 & pid=$!; kill $pid; wait $pid; echo status=$?", Expect::Stdout("status=143\n"), 0);
}

#[test]
fn background_jobs_wait_statuses() {
    differential(
        "(sleep 0.1; exit 3) & p1=$!; (exit 4) & p2=$!; wait $p1; echo a=$?; wait $p2; echo b=$?; \
         sh -c 'kill -TERM $$'; echo term=$?; sh -c 'exit 300'; echo wrapped=$?",
        Expect::Stdout("a=3\nb=4\nterm=143\nwrapped=44\n"),
        0,
    );
}

#[test]
fn trap_runs_on_signal() {
    differential("trap 'echo caught' USR1; kill -USR1 $$; echo after", Expect::Stdout("caught\nafter\n"), 0);
}

#[test]
fn exit_status_is_passed_on() {
    differential("echo before; exit 7", Expect::Stdout("before\n"), 7);
}

#[test]
fn here_document() {
    differential(
        "cat <<EOF\nline one\n  indented $((1 + 2))\nEOF\ncat <<'EOF'\nraw $HOME\nEOF\n",
        Expect::Stdout("line one\n  indented 3\nraw $HOME\n"),
        0,
    );
}

#[test]
fn read_loop() {
    differential(
        "printf 'a 1\\nb 2\\nc 3\\n' > /tmp/in; while read k v; do echo \"$v:$k\"; done < /tmp/in; \
         printf 'x\\ny\\n' | while read line; do echo got-$line; done",
        Expect::Stdout("1:a\n2:b\n3:c\ngot-x\ngot-y\n"),
        0,
    );
}

#[test]
fn cd_and_pwd() {
    differential(
        "cd /etc && pwd; cd ..; pwd; cd /tmp; mkdir d; cd d; pwd; cd -; cd /etc/network/../init.d; pwd; \
         cd /nonexistent 2>/dev/null; echo rc=$?; pwd",
        Expect::Stdout("/etc\n/\n/tmp/d\n/tmp\n/etc/init.d\nrc=2\n/etc/init.d\n"),
        0,
    );
}

#[test]
fn test_and_bracket() {
    differential(
        "[ -d /etc ] && echo dir; [ -f /etc/passwd ] && echo file; test -L /etc/motd && echo link; \
         [ 3 -lt 10 ] && echo lt; [ abc = abc ] && echo eq; [ -e /nope ] || echo absent; \
         [ -x /bin/busybox ] && echo executable; [ -s /etc/hostname ] && echo nonempty; \
         [ -w /tmp ] && echo writable; [ -n \"\" ] || echo empty-string",
        Expect::Stdout("dir\nfile\nlink\nlt\neq\nabsent\nexecutable\nnonempty\nwritable\nempty-string\n"),
        0,
    );
}

#[test]
fn arithmetic() {
    differential(
        "i=0; s=0; while [ $i -lt 10 ]; do i=$((i + 1)); s=$((s + i * i)); done; \
         echo $s $((7 / 2)) $((7 % 3)) $((1 << 10)) $((-5 + 2)) $((0x10)) $((3 > 2 ? 1 : 0))",
        Expect::Stdout("385 3 1 1024 -3 16 1\n"),
        0,
    );
}

#[test]
fn loops_and_case() {
    differential(
        "for x in apple banana cherry 42; do case $x in a*) echo \"A:$x\";; *an*) echo \"AN:$x\";; \
         [0-9]*) echo \"num:$x\";; *) echo \"other:$x\";; esac; done; \
         n=3; while [ $n -gt 0 ]; do echo n=$n; n=$((n - 1)); done; \
         until [ $n -ge 2 ]; do n=$((n + 1)); done; echo n=$n; \
         for i in 1 2 3 4 5; do [ $i = 2 ] && continue; [ $i = 4 ] && break; echo i=$i; done",
        Expect::Stdout("A:apple\nAN:banana\nother:cherry\nnum:42\nn=3\nn=2\nn=1\nn=2\ni=1\ni=3\n"),
        0,
    );
}

#[test]
fn printf_formats() {
    differential(
        "printf '%s|%5d|%-4s|%x|%o|%.2f\\n' abc 42 ab 255 8 3.14159; printf '%c%c\\n' x y; \
         printf 'a\\tb\\\\n\\n'; printf '%s\\n' one two",
        Expect::Stdout("abc|   42|ab  |ff|10|3.14\nxy\na\tb\\n\none\ntwo\n"),
        0,
    );
}

#[test]
fn dev_null_and_zero() {
    differential(
        "cat /dev/null; echo rc=$?; head -c 16 /dev/zero | wc -c; echo hi > /dev/null; echo rc=$?; \
         head -c 32 /dev/urandom | wc -c; head -c 8 /dev/random | wc -c; od -An -tx1 -N4 /dev/zero; \
         wc -c < /dev/null",
        Expect::Stdout("rc=0\n16\nrc=0\n32\n8\n 00 00 00 00\n0\n"),
        0,
    );
}

#[test]
fn dev_full_write_fails() {
    differential("echo x > /dev/full; echo rc=$?; head -c 4 /dev/full | wc -c", Expect::Stdout("rc=1\n4\n"), 0);
}

#[test]
fn dev_has_character_devices() {
    differential(
        "for d in null zero full random urandom tty; do [ -c /dev/$d ] && echo \"$d ok\"; done",
        Expect::Stdout("null ok\nzero ok\nfull ok\nrandom ok\nurandom ok\ntty ok\n"),
        0,
    );
}

#[test]
fn mkdir_touch_ls_recursive() {
    differential(
        "mkdir -p /tmp/a/b && touch /tmp/a/b/c && ls -R /tmp/a",
        Expect::Stdout("/tmp/a:\nb\n\n/tmp/a/b:\nc\n"),
        0,
    );
}

#[test]
fn rm_and_mv() {
    differential(
        "mkdir /tmp/w; cd /tmp/w; echo 1 > one; mv one two; ls; cat two; rm two; ls; echo rc=$?; \
         rm nothere 2>/dev/null; echo rc=$?; mkdir -p x/y; touch x/y/z; mv x q; ls -R; rm -r q; ls -A; \
         rmdir /tmp/w; [ -e /tmp/w ] || echo gone",
        Expect::Stdout("two\n1\nrc=0\nrc=1\n.:\nq\n\n./q:\ny\n\n./q/y:\nz\ngone\n"),
        0,
    );
}

#[test]
fn symlink_and_readlink() {
    differential(
        "cd /tmp; echo data > target; ln -s target link; readlink link; cat link; ln -s /etc/hostname abs; \
         readlink -f abs; cat abs; ls -l link | awk '{ print $1, $(NF-2), $(NF-1), $NF }'; \
         ln -s /nowhere dangling; cat dangling 2>/dev/null; echo rc=$?; readlink dangling; \
         ln target hard; stat -c '%h' target",
        Expect::Stdout("target\ndata\n/etc/hostname\nmoat-test\nlrwxrwxrwx link -> target\nrc=1\n/nowhere\n2\n"),
        0,
    );
}

#[test]
fn file_modes_and_umask() {
    differential(
        "umask 022; touch /tmp/m; stat -c '%a %s %F' /tmp/m; mkdir /tmp/md; stat -c '%a %F' /tmp/md; \
         chmod 600 /tmp/m; stat -c %a /tmp/m; umask 077; touch /tmp/n; stat -c %a /tmp/n; \
         printf abc > /tmp/m; stat -c %s /tmp/m; truncate -s 10 /tmp/m; stat -c %s /tmp/m",
        Expect::Stdout("644 0 regular empty file\n755 directory\n600\n600\n3\n10\n"),
        0,
    );
}

#[test]
fn large_file_through_tmp() {
    // seq 1 200000 is 1,288,895 bytes: more than 1 MiB through a tmpfs and pipes.
    differential(
        "seq 1 200000 > /tmp/big; wc -c < /tmp/big; cat /tmp/big | md5sum | cut -d' ' -f1 > /tmp/sum1; \
         cat /tmp/big > /tmp/big2; md5sum < /tmp/big2 | cut -d' ' -f1 > /tmp/sum2; cmp /tmp/sum1 /tmp/sum2 && echo same; \
         tail -n 1 /tmp/big; head -c 1048576 /tmp/big | wc -c; sed -n '100000p' /tmp/big; \
         awk '{ s += $1 } END { print s }' /tmp/big",
        Expect::Stdout("1288895\nsame\n200000\n1048576\n100000\n20000100000\n"),
        0,
    );
}

#[test]
fn shebang_script_in_tmp() {
    differential(
        "printf '#!/bin/sh\\necho \"script: $# $1\"\\nexit 5\\n' > /tmp/s.sh; chmod 755 /tmp/s.sh; \
         /tmp/s.sh x y; echo rc=$?; cd /tmp && ./s.sh; echo rc=$?",
        Expect::Stdout("script: 2 x\nrc=5\nscript: 0 \nrc=5\n"),
        0,
    );
}

#[test]
fn xargs_runs_programs() {
    differential(
        "echo a b c | xargs -n1 echo item; seq 3 | xargs sh -c 'echo $#' argv0",
        Expect::Stdout("item a\nitem b\nitem c\n3\n"),
        0,
    );
}

#[test]
fn tar_and_gzip_round_trip() {
    differential(
        "cd /tmp && mkdir t && echo hi > t/f && tar czf t.tgz t && rm -r t && tar xzf t.tgz && cat t/f; \
         gzip -c /etc/passwd | gunzip | cmp - /etc/passwd && echo same",
        Expect::Stdout("hi\nsame\n"),
        0,
    );
}

/// The shell's view of failed execs: the exit statuses, and that on ENOEXEC
/// (truncated ELF, empty file) ash runs the file as a script instead (by
/// re-executing itself through /proc/self/exe), which prints the first
/// "line" of the ELF (its unprintable bytes removed here) as a command that
/// was not found.
#[test]
fn exec_failures_inside_shell() {
    let rootfs = Rootfs::new();
    rootfs.add_hostile_files();
    differential_in(
        &rootfs,
        "for f in /opt/hostile/truncated /opt/hostile/empty /opt/hostile/not-executable \
         /opt/hostile/bad-interpreter /etc /opt/hostile/missing; do $f >/dev/null 2>&1; echo \"$f rc=$?\"; done; \
         /opt/hostile/truncated 2>&1 | head -n 1 | sed 's/[^ -~]//g'",
        Expect::Stdout(
            "/opt/hostile/truncated rc=127\n/opt/hostile/empty rc=0\n/opt/hostile/not-executable rc=126\n\
             /opt/hostile/bad-interpreter rc=127\n/etc rc=126\n/opt/hostile/missing rc=127\n\
             /opt/hostile/truncated: line 1: ELF: not found\n",
        ),
        0,
    );
}

// ---------------------------------------------------------------------------
// Isolation
// ---------------------------------------------------------------------------

#[test]
fn uname_reports_moat_release() {
    let host = fs::read_to_string("/proc/sys/kernel/osrelease").expect("cannot read the host's kernel release");
    let host = host.trim();
    let rootfs = Rootfs::new();
    let root = rootfs.path().to_str().expect("rootfs path is not UTF-8");
    let moat = run_moat(&["do", "--rootfs", root, "--", "/bin/uname", "-r"]);
    assert_no_panic(&moat);
    let release = moat.stdout.trim();
    assert!(
        moat.status == 0 && release.ends_with("-moat") && release != host && moat.stdout.lines().count() == 1,
        "`uname -r` under moat must print moat's own release (ending in -moat), not the host's {host:?}\n{}",
        moat.describe()
    );
}

#[test]
fn first_process_is_pid_1() {
    differential("echo $$", Expect::Stdout("1\n"), 0);
}

/// Parses the output of [`PROC_LISTING`]: the background ls's pid and the
/// numeric names it saw in /proc.
fn proc_pids(output: &Output) -> Option<(u32, BTreeSet<u32>)> {
    let mut lines = output.stdout.lines();
    let ls_pid = lines.next()?.strip_prefix("lspid=")?.parse().ok()?;
    let pids = lines.filter_map(|name| name.parse().ok()).collect();
    Some((ls_pid, pids))
}

const PROC_LISTING: &str = "ls -1 /proc > /tmp/listing & p=$!; wait $p; echo lspid=$p; cat /tmp/listing";

#[test]
fn proc_lists_only_sandbox_pids() {
    let rootfs = Rootfs::new();
    let native = run_native_script(&rootfs, PROC_LISTING);
    let expected = |(ls_pid, pids): &(u32, BTreeSet<u32>)| *pids == BTreeSet::from([1, *ls_pid]);
    assert!(
        native.status == 0 && proc_pids(&native).as_ref().is_some_and(expected),
        "the NATIVE run (the oracle) should list exactly pids 1 and the ls's in its own pid namespace; \
         the test setup is broken\n{}",
        native.describe()
    );

    let moat = run_moat_script(&rootfs, PROC_LISTING);
    assert_no_panic(&moat);
    let parsed = proc_pids(&moat);
    assert!(
        moat.status == 0 && parsed.as_ref().is_some_and(expected),
        "/proc under moat must list exactly the sandbox's pids (1, the shell, and the ls's); \
         got {parsed:?}\n{}",
        moat.describe()
    );
    let own = std::process::id();
    assert!(
        !parsed.is_some_and(|(_, pids)| pids.contains(&own)),
        "/proc under moat shows the test process's host pid {own}\n{}",
        moat.describe()
    );
}

#[test]
fn rootfs_writes_stay_in_the_overlay() {
    let rootfs = Rootfs::new();
    let script = "echo x > /newfile; cat /newfile; echo changed > /etc/hostname; cat /etc/hostname; \
                  rm /etc/group; [ -e /etc/group ] || echo removed; mkdir /newdir && echo made";
    let moat = run_moat_script(&rootfs, script);
    assert_no_panic(&moat);
    assert!(
        moat.status == 0 && moat.stdout == "x\nchanged\nremoved\nmade\n",
        "writes inside the sandbox must be visible inside it\n{}",
        moat.describe()
    );
    assert!(!rootfs.host_path("newfile").exists(), "/newfile written inside the sandbox reached the host rootfs");
    assert!(!rootfs.host_path("newdir").exists(), "/newdir made inside the sandbox reached the host rootfs");
    assert_eq!(
        fs::read_to_string(rootfs.host_path("etc/hostname")).ok().as_deref(),
        Some("moat-test\n"),
        "/etc/hostname overwritten inside the sandbox changed the host rootfs"
    );
    assert!(
        rootfs.host_path("etc/group").exists(),
        "/etc/group removed inside the sandbox vanished from the host rootfs"
    );
}

#[test]
fn host_root_writes_stay_in_the_overlay() {
    let probe = format!("/moat-overlay-probe-{}", unique_name("x"));
    let script = format!("echo x > {probe}; cat {probe}");
    let moat = run_moat(&["do", "--", BUSYBOX, "sh", "-c", &script]);
    let leaked = Path::new(&probe).exists();
    if leaked {
        // Clean up the host before failing.
        let _ = fs::remove_file(&probe);
    }
    assert!(!leaked, "{probe}, written inside `moat do` without --rootfs, appeared on the host");
    assert_no_panic(&moat);
    assert!(
        moat.status == 0 && moat.stdout == "x\n",
        "a file written inside the sandbox (host root under the overlay) must be readable inside it\n{}",
        moat.describe()
    );
}

#[test]
fn gofer_is_a_separate_child_process() {
    let rootfs = Rootfs::new();
    let root = rootfs.path().to_str().expect("rootfs path is not UTF-8");
    // The sandboxed shell waits for a line on stdin, so it stays up for as
    // long as we look, however slowly moat starts.
    let command = moat_command(&["do", "--rootfs", root, "--", "/bin/sh", "-c", "read line; echo \"got $line\""]);
    let mut moat = Running::spawn(command, "moat do (gofer check)", true);
    let moat_pid = moat.pid();

    let gofer = loop {
        let children = host_descendants(moat_pid);
        if let Some(found) = children.iter().find(|(_, cmdline)| cmdline.contains("gofer")) {
            break found.clone();
        }
        if moat.has_exited() || moat.past_deadline() {
            let exited = moat.has_exited();
            let output = moat.finish();
            panic!(
                "no process below moat (pid {moat_pid}) has `gofer` in its command line (children last seen: \
                 {children:?}; moat {})\n{}",
                if exited { "exited" } else { "was still running" },
                output.describe()
            );
        }
        thread::sleep(Duration::from_millis(20));
    };
    assert_ne!(gofer.0, moat_pid, "the gofer must be a process of its own");

    let mut stdin = moat.take_stdin().expect("moat was spawned with a stdin pipe");
    // moat may have exited early and closed its end; the checks below then say why.
    let _ = stdin.write_all(b"bye\n");
    drop(stdin);
    let output = moat.finish();
    assert_no_panic(&output);
    assert!(
        output.status == 0 && output.stdout == "got bye\n",
        "moat with a gofer (pid {}: {}) did not run the program to completion\n{}",
        gofer.0,
        gofer.1,
        output.describe()
    );
}

// ---------------------------------------------------------------------------
// Unimplemented system calls
// ---------------------------------------------------------------------------

/// Builds tests/probes/NAME.c statically with the host's gcc into `into`.
fn build_probe(name: &str, into: &Path) {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/probes").join(format!("{name}.c"));
    let output = Command::new("gcc")
        .args(["-static", "-O2", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(into)
        .arg(&source)
        .output()
        .unwrap_or_else(|e| panic!("cannot run gcc to build {}: {e}; install gcc and libc6-dev", source.display()));
    assert!(
        output.status.success(),
        "gcc could not build {} statically (is libc6-dev installed?):\n{}",
        source.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn unimplemented_syscalls_give_enosys() {
    let rootfs = Rootfs::new();
    let build = TempDir::new("probe");
    let binary = build.path().join("enosys");
    build_probe("enosys", &binary);
    fs::copy(&binary, rootfs.host_path("opt/enosys")).expect("cannot copy the enosys probe into the rootfs");

    let root = rootfs.path().to_str().expect("rootfs path is not UTF-8");
    let moat = run_moat(&["do", "--rootfs", root, "--", "/opt/enosys"]);
    assert_no_panic(&moat);
    assert!(
        moat.status == 0
            && moat.stdout
                == "kexec_load: errno=ENOSYS\nkexec_load again: errno=ENOSYS\nsyscall 1000: errno=ENOSYS\n\
                    still running\n",
        "unimplemented system calls must fail with ENOSYS and the program must keep running\n{}",
        moat.describe()
    );
    let logged = moat.stderr.lines().filter(|line| line.contains("unimplemented syscall kexec_load")).count();
    assert_eq!(
        logged,
        1,
        "moat must log `unimplemented syscall kexec_load` on stderr exactly once (it was called twice)\n{}",
        moat.describe()
    );
}

// ---------------------------------------------------------------------------
// Hostile initial programs
// ---------------------------------------------------------------------------

/// `moat do --rootfs R -- PATH` where PATH cannot be executed: exit
/// `status`, nothing on stdout, one `moat: ` line on stderr naming PATH
/// (besides any `unimplemented syscall` reports), and no panic.
fn exec_refused(path: &str, status: i32) {
    let rootfs = Rootfs::new();
    rootfs.add_hostile_files();
    let root = rootfs.path().to_str().expect("rootfs path is not UTF-8");
    let moat = run_moat(&["do", "--rootfs", root, "--", path]);
    assert_no_panic(&moat);
    let messages: Vec<&str> = moat
        .stderr
        .lines()
        .filter(|line| line.starts_with("moat: ") && !line.contains("unimplemented syscall"))
        .collect();
    assert!(
        moat.status == status && moat.stdout.is_empty() && messages.len() == 1 && messages[0].contains(path),
        "executing {path} must fail with exit status {status} and exactly one stderr line starting \
         with `moat: ` that names {path}\n{}",
        moat.describe()
    );
}

#[test]
fn exec_truncated_elf_is_126() {
    exec_refused("/opt/hostile/truncated", 126);
}

#[test]
fn exec_empty_file_is_126() {
    exec_refused("/opt/hostile/empty", 126);
}

#[test]
fn exec_non_executable_file_is_126() {
    exec_refused("/opt/hostile/not-executable", 126);
}

#[test]
fn exec_missing_interpreter_is_127() {
    exec_refused("/opt/hostile/bad-interpreter", 127);
}

#[test]
fn exec_directory_is_126() {
    exec_refused("/etc", 126);
}

#[test]
fn exec_missing_path_is_127() {
    exec_refused("/opt/hostile/missing", 127);
}

/// /proc/PID/oom_score_adj takes what Linux takes (LTP and many daemons
/// write it at start): a value in -1000..=1000, kept and inherited.
#[test]
fn oom_score_adj_is_written_kept_and_inherited() {
    differential(
        "echo 500 > /proc/self/oom_score_adj && cat /proc/self/oom_score_adj; \
         sh -c 'cat /proc/self/oom_score_adj'; \
         (echo 1001 > /proc/self/oom_score_adj) 2>/dev/null || echo refused; \
         echo 700 > /proc/$$/oom_score_adj; cat /proc/$$/oom_score_adj",
        Expect::Stdout("500\n500\nrefused\n700\n"),
        0,
    );
}
