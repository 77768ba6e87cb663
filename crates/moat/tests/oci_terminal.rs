//! `process.terminal` with `--console-socket`, as Docker's `-t` and
//! `docker exec -t` use it: moat sends a pty master to the socket, the
//! container's process has the slave as its terminal, and the window size
//! the engine sets on the master is what the app sees.

mod common;

use std::fs;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::oci::moat_at as moat;
use common::{unique_name, Rootfs, TempDir};
use serde_json::Value;

/// A console-socket server (python3): takes one pty master, sets its window
/// size to 33x101, and copies what the terminal shows to its stdout until
/// the terminal closes.
const CONSOLE: &str = r#"
import fcntl, os, socket, struct, sys, termios
path = sys.argv[1]
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(path); server.listen(1)
open(path + ".ready", "w").close()
conn, _ = server.accept()
_, fds, _, _ = socket.recv_fds(conn, 1024, 1)
master = fds[0]
fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
open(path + ".sized", "w").close()
out = b""
while True:
    try:
        chunk = os.read(master, 4096)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
    if b"terminal-done" in out:
        break
sys.stdout.write(out.decode(errors="replace").replace("\r", ""))
"#;

struct Console {
    child: Child,
    socket: String,
}

impl Console {
    fn start(dir: &Path, name: &str) -> Console {
        let socket = dir.join(name).to_str().expect("utf-8").to_owned();
        let child = Command::new("python3")
            .args(["-c", CONSOLE, &socket])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the console server");
        wait_for(&format!("{socket}.ready"));
        Console { child, socket }
    }

    fn sized(&self) {
        wait_for(&format!("{}.sized", self.socket));
    }

    fn output(mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let mut out = String::new();
        if let Some(mut stdout) = self.child.stdout.take() {
            let _ = stdout.read_to_string(&mut out);
        }
        let mut err = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            let _ = stderr.read_to_string(&mut err);
        }
        out + &err
    }
}

fn wait_for(path: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !Path::new(path).exists() {
        assert!(Instant::now() < deadline, "{path} never appeared");
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_container_and_an_exec_get_a_terminal_of_the_engines_size() {
    let dir = TempDir::new("oci-tty");
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
    // Waits until the window size is set, then reports it; stays up for the exec.
    spec["process"]["args"] = serde_json::json!([
        "/bin/sh",
        "-c",
        "while [ \"$(stty size)\" != '33 101' ]; do sleep 0.1; done; [ -t 0 ] && echo init-is-a-tty; \
         stty size; echo terminal-done; while :; do sleep 1; done"
    ]);
    fs::write(&config, serde_json::to_vec(&spec).expect("json")).expect("write");

    let id = unique_name("tty");
    let console = Console::start(dir.path(), "init.sock");
    let out = moat(&root, &["create", "--bundle", b, "--console-socket", &console.socket, &id]);
    assert!(out.status.success(), "create: {}", String::from_utf8_lossy(&out.stderr));
    console.sized();
    let out = moat(&root, &["start", &id]);
    assert!(out.status.success(), "start: {}", String::from_utf8_lossy(&out.stderr));
    let seen = console.output();
    assert!(seen.contains("init-is-a-tty") && seen.contains("33 101"), "the container's terminal showed:\n{seen}");

    let process = dir.path().join("process.json");
    let exec_spec = serde_json::json!({
        "terminal": true,
        "user": {"uid": 0, "gid": 0},
        "cwd": "/",
        "env": ["PATH=/bin"],
        "args": ["/bin/sh", "-c", "while [ \"$(stty size)\" != '33 101' ]; do sleep 0.1; done; [ -t 1 ] && echo exec-is-a-tty; echo terminal-done"]
    });
    fs::write(&process, serde_json::to_vec(&exec_spec).expect("json")).expect("write");
    let console = Console::start(dir.path(), "exec.sock");
    let p = process.to_str().expect("utf-8");
    let out = moat(&root, &["exec", "--process", p, "--console-socket", &console.socket, "--tty", &id]);
    let seen = console.output();
    assert!(out.status.success(), "exec: {}", String::from_utf8_lossy(&out.stderr));
    assert!(seen.contains("exec-is-a-tty"), "the exec's terminal showed:\n{seen}");

    assert!(moat(&root, &["delete", "--force", &id]).status.success());
}
