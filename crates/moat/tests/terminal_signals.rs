//! The sandbox's terminal is the Sentry's own pty, as a container's is the
//! kernel's under runc: `tty` names /dev/pts/0, ^C typed on the engine's
//! side interrupts the foreground job (not the sandbox), and a resize
//! reaches the app with SIGWINCH. Checked for OCI `process.terminal` and
//! for `moat do` under a terminal, against the same script natively.

mod common;

use std::fs;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::oci::moat_at as moat;
use common::{moat_binary, unique_name, Rootfs, TempDir};
use serde_json::Value;

/// Python that plays the person at the terminal on a pty master: once the
/// app says `ready` it types ^C (again every half second, in case the
/// foreground job had not started, until the app reports a `status=`);
/// once it says `resize-me` it sets the window to 30x100; it stops at
/// `terminal-done`, the far side closing, or after a minute.
const DRIVE: &str = r#"
import fcntl, os, select, struct, termios, time
def drive(master):
    out = b""; resized = False; typed = 0.0; end = time.monotonic() + 60
    while time.monotonic() < end:
        r, _, _ = select.select([master], [], [], 0.2)
        if r:
            try: chunk = os.read(master, 4096)
            except OSError: break
            if not chunk: break
            out += chunk
        text = out.replace(b"\r", b"")
        if b"ready\n" in text and b"status=" not in text and time.monotonic() - typed > 0.5:
            os.write(master, b"\x03"); typed = time.monotonic()
        if b"resize-me\n" in text and not resized:
            fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0)); resized = True
        if b"terminal-done" in text: break
    return out.decode(errors="replace").replace("\r", "")
"#;

/// A console-socket server: takes one pty master, sets its size to 33x101
/// and drives it (see `DRIVE`), then prints what the terminal showed.
const CONSOLE_SERVER: &str = r#"
import socket, sys
path = sys.argv[1]
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(path); server.listen(1)
open(path + ".ready", "w").close()
conn, _ = server.accept()
_, fds, _, _ = socket.recv_fds(conn, 1024, 1)
fcntl.ioctl(fds[0], termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
sys.stdout.write(drive(fds[0]))
"#;

/// Runs argv[1:] on a fresh pty of 25x91 as its controlling terminal,
/// drives it (see `DRIVE`), and prints what it showed, its exit status, and
/// whether the terminal's mode after it ends is the one before.
const UNDER_PTY: &str = r#"
import sys
master, slave = os.openpty()
fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 25, 91, 0, 0))
before = termios.tcgetattr(slave)
pid = os.fork()
if pid == 0:
    os.close(master); os.setsid(); fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2): os.dup2(slave, fd)
    os.execvp(sys.argv[1], sys.argv[1:])
shown = drive(master)
_, status = os.waitpid(pid, 0)
sys.stdout.write(shown)
print("exit=%d" % os.waitstatus_to_exitcode(status))
print("mode-restored=%s" % (termios.tcgetattr(slave) == before))
"#;

/// What the app runs: its terminal's size, name and the ptys it sees; then
/// `sleep 100` in the foreground for ^C to end; then a resize to wait for.
/// The shell traps SIGINT, as an interactive one does: a non-interactive
/// shell whose foreground child dies of SIGINT exits by it too, natively
/// as pid 1 of a PID namespace as well (bash, dash and busybox alike).
const SCRIPT: &str =
    "stty size; tty; ls /dev/pts; trap 'echo got-int' INT; trap 'echo winched' WINCH; echo ready; sleep 100; \
                      echo status=$?; echo resize-me; while [ \"$(stty size)\" != '30 100' ]; do sleep 0.1; done; \
                      echo size-now=$(stty size); echo terminal-done";

fn python(code: &str, args: &[&str]) -> Child {
    Command::new("python3")
        .arg("-c")
        .arg(format!("import fcntl, os, struct, termios\n{DRIVE}\n{code}"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python3")
}

/// Waits (a bounded time) for `child` and returns its stdout and stderr.
fn output(mut child: Child) -> String {
    let deadline = Instant::now() + Duration::from_secs(90);
    while child.try_wait().ok().flatten().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.read_to_string(&mut out);
    }
    if let Some(mut stderr) = child.stderr.take() {
        let _ = stderr.read_to_string(&mut out);
    }
    out
}

fn wait_for(path: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !Path::new(path).exists() {
        assert!(Instant::now() < deadline, "{path} never appeared");
        thread::sleep(Duration::from_millis(10));
    }
}

/// Whether a line of `shown` ends with `line` (an echoed ^C may come before it).
fn has_line(shown: &str, line: &str) -> bool {
    shown.lines().any(|l| l.trim_end().ends_with(line))
}

#[test]
fn a_containers_console_is_the_sentrys_pty_and_takes_ctrl_c_and_resizes() {
    let dir = TempDir::new("tty-signals");
    let root = dir.path().join("root");
    let bundle = dir.path().join("bundle");
    fs::create_dir(&bundle).expect("mkdir");
    let rootfs = Rootfs::new();
    let b = bundle.to_str().expect("utf-8");
    assert!(moat(&root, &["spec", "--bundle", b]).status.success());
    let config = bundle.join("config.json");
    let mut spec: Value = serde_json::from_str(&fs::read_to_string(&config).expect("read")).expect("json");
    spec["root"]["path"] = rootfs.path().to_str().expect("utf-8").into();
    spec["process"]["terminal"] = true.into();
    // The engine sets the size once it has the master, maybe after boot: wait for it.
    let wait = "while [ \"$(stty size)\" != '33 101' ]; do sleep 0.1; done";
    let run = format!("{wait}; {}; while :; do sleep 1; done", SCRIPT);
    spec["process"]["args"] = serde_json::json!(["/bin/sh", "-c", run]);
    fs::write(&config, serde_json::to_vec(&spec).expect("json")).expect("write");

    let id = unique_name("ttysig");
    let socket = dir.path().join("console.sock").to_str().expect("utf-8").to_owned();
    let console = python(CONSOLE_SERVER, &[&socket]);
    wait_for(&format!("{socket}.ready"));
    let out = moat(&root, &["create", "--bundle", b, "--console-socket", &socket, &id]);
    assert!(out.status.success(), "create: {}", String::from_utf8_lossy(&out.stderr));
    let out = moat(&root, &["start", &id]);
    assert!(out.status.success(), "start: {}", String::from_utf8_lossy(&out.stderr));
    let shown = output(console);
    let state = moat(&root, &["state", &id]);
    let state = String::from_utf8_lossy(&state.stdout).into_owned();
    assert!(moat(&root, &["delete", "--force", &id]).status.success());

    for line in ["33 101", "/dev/pts/0", "got-int", "status=130", "winched", "size-now=30 100", "terminal-done"] {
        assert!(has_line(&shown, line), "no line {line:?}; the container's terminal showed:\n{shown}");
    }
    assert!(shown.lines().any(|l| l.split_whitespace().any(|w| w == "0")), "ls /dev/pts:\n{shown}");
    // ^C ended the foreground sleep; the shell, pid 1, and so the container lived on.
    assert!(state.contains("\"running\""), "after ^C the container is not running: {state}");
}

#[test]
fn moat_do_under_a_terminal_sees_its_size_and_ctrl_c_interrupts_the_foreground_job() {
    let rootfs = Rootfs::new();
    let native = output(python(UNDER_PTY, &["/bin/sh", "-c", SCRIPT]));
    let r = rootfs.path().to_str().expect("utf-8");
    let sandboxed = output(python(UNDER_PTY, &[moat_binary(), "do", "--rootfs", r, "--", "/bin/sh", "-c", SCRIPT]));
    for (what, shown) in [("natively", &native), ("under moat do", &sandboxed)] {
        for line in ["25 91", "got-int", "status=130", "winched", "size-now=30 100", "exit=0", "mode-restored=True"] {
            assert!(has_line(shown, line), "{what}: no line {line:?}; the terminal showed:\n{shown}");
        }
    }
    assert!(has_line(&sandboxed, "/dev/pts/0"), "under moat do, tty did not print /dev/pts/0:\n{sandboxed}");
}
