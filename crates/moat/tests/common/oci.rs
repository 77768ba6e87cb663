//! Driving moat as an OCI runtime from tests: a runtime root, busybox
//! bundles made with `moat spec`, and `create` with its stdio on a file
//! (a pipe would stay open, held by the container, after create returns).

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{moat_binary, Rootfs, TempDir};

/// One OCI runtime under test with a `--root` of its own: runc, the
/// oracle, or moat, driven by the same commands.
pub struct Runtime {
    pub name: &'static str,
    pub binary: String,
    pub root: TempDir,
}

/// What one runtime command did.
pub struct RunOut {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl RunOut {
    pub fn ok(&self) -> bool {
        self.status == 0
    }

    pub fn describe(&self) -> String {
        format!("status {}\nstdout: {}\nstderr: {}", self.status, self.stdout, self.stderr)
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.describe()))
    }
}

impl Runtime {
    pub fn moat() -> Runtime {
        Runtime { name: "moat", binary: moat_binary().to_owned(), root: TempDir::new("oci-root-moat") }
    }

    pub fn runc() -> Runtime {
        let binary = ["/usr/sbin/runc", "/usr/bin/runc"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("these tests compare with runc: install Debian's runc (apt-get install runc)");
        Runtime { name: "runc", binary: binary.to_owned(), root: TempDir::new("oci-root-runc") }
    }

    /// runc, then moat: the oracle first, so its failures read first.
    pub fn both() -> [Runtime; 2] {
        [Runtime::runc(), Runtime::moat()]
    }

    /// `BINARY --root ROOT ARGS...`, bounded by timeout(1), with no stdin.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("timeout");
        c.arg("60").arg(&self.binary).arg("--root").arg(self.root.path()).args(args);
        c.stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> RunOut {
        let out = self.command(args).output().expect("spawn");
        RunOut {
            status: out.status.code().unwrap_or(128),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// A command whose output goes to a file: `create` leaves the
    /// container holding its stdio, so a pipe would never close.
    pub fn run_to_file(&self, args: &[&str], file: &Path) -> RunOut {
        let out = fs::File::create(file).expect("output file");
        let status = self
            .command(args)
            .stdout(out.try_clone().expect("dup"))
            .stderr(out)
            .status()
            .expect("spawn")
            .code()
            .unwrap_or(128);
        RunOut { status, stdout: String::new(), stderr: fs::read_to_string(file).unwrap_or_default() }
    }

    pub fn state(&self, id: &str) -> Value {
        let out = self.run(&["state", id]);
        assert!(out.ok(), "{} state {id}: {}", self.name, out.describe());
        out.json()
    }

    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"].as_str().unwrap_or_default().to_owned()
    }

    pub fn wait_status(&self, id: &str, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.status(id) != want {
            assert!(Instant::now() < deadline, "{} {id} never became {want}: {}", self.name, self.state(id));
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// `moat --root ROOT ARGS...`, bounded by timeout(1), with no stdin.
pub fn moat_at(root: &Path, args: &[&str]) -> Output {
    Command::new("timeout")
        .arg("60")
        .arg(moat_binary())
        .arg("--root")
        .arg(root)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("spawn moat")
}

/// Writes a bundle at `dir` whose root is `rootfs` and whose process runs
/// `args` without a terminal, with `edit` applied to the spec.
pub fn busybox_bundle(root: &Path, dir: &Path, rootfs: &Rootfs, args: &[&str], edit: impl FnOnce(&mut Value)) {
    fs::create_dir_all(dir).expect("mkdir the bundle");
    let out = moat_at(root, &["spec", "--bundle", dir.to_str().expect("utf-8")]);
    assert!(out.status.success(), "moat spec: {}", String::from_utf8_lossy(&out.stderr));
    let config = dir.join("config.json");
    let mut spec: Value = serde_json::from_str(&fs::read_to_string(&config).expect("read")).expect("json");
    spec["root"]["path"] = rootfs.path().to_str().expect("utf-8").into();
    spec["process"]["terminal"] = false.into();
    spec["process"]["args"] = args.iter().map(|a| Value::String((*a).to_owned())).collect();
    edit(&mut spec);
    fs::write(&config, serde_json::to_vec(&spec).expect("json")).expect("write config.json");
}

/// `moat create` of `bundle` as `id`, the container's stdio going to
/// `console` (a file), with `extra` flags before the id; panics with what it
/// printed if create fails.
fn create_with(root: &Path, bundle: &Path, id: &str, console: &Path, extra: &[&std::ffi::OsStr]) {
    let file = fs::File::create(console).expect("console file");
    let created = Command::new("timeout")
        .arg("60")
        .arg(moat_binary())
        .arg("--root")
        .arg(root)
        .args(["create", "--bundle", bundle.to_str().expect("utf-8")])
        .args(extra)
        .arg(id)
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("dup"))
        .stderr(file)
        .status()
        .expect("spawn create");
    assert!(created.success(), "create: {}", fs::read_to_string(console).unwrap_or_default());
}

/// `moat create` of `bundle` as `id`, the container's stdio going to
/// `console` (a file); panics with what it printed if create fails.
pub fn create(root: &Path, bundle: &Path, id: &str, console: &Path) {
    create_with(root, bundle, id, console, &[]);
}

/// The container's status, from `moat state`.
pub fn status(root: &Path, id: &str) -> String {
    let out = moat_at(root, &["state", id]);
    assert!(out.status.success(), "state: {}", String::from_utf8_lossy(&out.stderr));
    let state: Value = serde_json::from_slice(&out.stdout).expect("state json");
    state["status"].as_str().unwrap_or_default().to_owned()
}

/// `moat create --pid-file PID_FILE` of `bundle` as `id`, as `create` does
/// otherwise; returns the pid written to the file.
pub fn create_with_pid_file(root: &Path, bundle: &Path, id: &str, console: &Path, pid_file: &Path) -> u32 {
    create_with(root, bundle, id, console, &["--pid-file".as_ref(), pid_file.as_os_str()]);
    let text = fs::read_to_string(pid_file).expect("read the pid file");
    text.trim().parse().unwrap_or_else(|_| panic!("the pid file holds {text:?}, not a pid"))
}

/// The fields of `/proc/PID/status` (empty once the process is gone).
pub fn proc_status(pid: u32) -> HashMap<String, String> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines().filter_map(|l| l.split_once(':')).map(|(k, v)| (k.to_owned(), v.trim().to_owned())).collect()
}

/// Whether host process `pid` has exited (gone, or a zombie).
pub fn has_exited(pid: u32) -> bool {
    proc_status(pid).get("State").is_none_or(|s| s.starts_with('Z'))
}

/// The host processes in cgroup `path` (the memory hierarchy on cgroup v1,
/// else the unified one).
pub fn cgroup_processes(path: &str) -> Vec<u32> {
    let v1 = fs::read_to_string(format!("/sys/fs/cgroup/memory{path}/cgroup.procs"));
    let text = v1.or_else(|_| fs::read_to_string(format!("/sys/fs/cgroup{path}/cgroup.procs"))).unwrap_or_default();
    text.lines().filter_map(|l| l.trim().parse().ok()).collect()
}

/// Container `id`'s Sentry among the processes of its cgroup: the
/// `moat boot` that is pid 1 of the sandbox's PID namespace and runs under
/// the Sentry's seccomp filter (so the container has started).
pub fn sentry_in(cgroup: &str, id: &str) -> Option<u32> {
    cgroup_processes(cgroup).into_iter().find(|&pid| {
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        let is_boot = args.contains(&b"boot".as_slice()) && args.windows(2).any(|w| w == [b"--id", id.as_bytes()]);
        let status = proc_status(pid);
        let first_of_namespace = status.get("NSpid").is_some_and(|v| v.split_whitespace().last() == Some("1"));
        is_boot && first_of_namespace && status.get("Seccomp").map(String::as_str) == Some("2")
    })
}
