//! The Sentry's own seccomp filter, checked from outside: once the sandbox
//! runs, the Sentry process (`moat do` itself) is in seccomp filter mode
//! with no_new_privs, and a host call outside its allow-list kills it.

mod common;

use std::fs;
use std::thread;
use std::time::Duration;

use common::{host_descendants, moat_command, run_moat, Rootfs, Running};

const SIGSYS: i32 = 31;

fn status_field(pid: u32, field: &str) -> Option<String> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines().find_map(|l| l.strip_prefix(field)?.strip_prefix(':').map(|v| v.trim().to_owned()))
}

#[test]
fn the_running_sentry_is_seccomp_filtered() {
    let rootfs = Rootfs::new();
    let root = rootfs.path().to_str().expect("rootfs path is not UTF-8");
    let command = moat_command(&["do", "--rootfs", root, "--", "/bin/sh", "-c", "read line; echo \"got $line\""]);
    let mut moat = Running::spawn(command, "moat do (seccomp check)", true);
    let outer = moat.pid();
    // The Sentry is the moat below the one we started, pid 1 of its own PID
    // namespace. The shell blocks reading stdin only after the sandbox is
    // up, so the filter shows soon; poll for it rather than guess a delay.
    let pid = loop {
        let sentry =
            host_descendants(outer).into_iter().find(|(_, c)| c.contains("--in-pid-namespace")).map(|(p, _)| p);
        if let Some(pid) = sentry.filter(|&p| status_field(p, "Seccomp").as_deref() == Some("2")) {
            break pid;
        }
        if moat.has_exited() || moat.past_deadline() {
            panic!("the sentry never showed Seccomp: 2\n{}", moat.finish().describe());
        }
        thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status_field(pid, "NoNewPrivs").as_deref(), Some("1"));
    assert_eq!(status_field(pid, "CapEff").as_deref(), Some("0000000000000000"), "the Sentry keeps no capability");
    assert_eq!(
        status_field(pid, "NSpid").map(|v| v.ends_with("\t1") || v.ends_with(" 1")),
        Some(true),
        "pid 1 of its own namespace"
    );
    for ns in ["pid", "mnt", "ipc", "uts"] {
        let theirs = fs::read_link(format!("/proc/{pid}/ns/{ns}")).expect("ns link");
        let ours = fs::read_link(format!("/proc/self/ns/{ns}")).expect("ns link");
        assert_ne!(theirs, ours, "the Sentry must have a {ns} namespace of its own");
    }
    let mut stdin = moat.take_stdin().expect("moat was spawned with a stdin pipe");
    let _ = std::io::Write::write_all(&mut stdin, b"bye\n");
    drop(stdin);
    let output = moat.finish();
    assert!(output.status == 0 && output.stdout == "got bye\n", "{}", output.describe());
}

#[test]
fn a_host_call_outside_the_list_kills_the_sentry() {
    let rootfs = Rootfs::new();
    let root = rootfs.path().to_str().expect("rootfs path is not UTF-8");
    let out = run_moat(&["do", "--rootfs", root, "--selftest-forbidden-syscall", "--", "/bin/true"]);
    assert_eq!(out.status, 128 + SIGSYS, "the sentry must die by SIGSYS\n{}", out.describe());
}
