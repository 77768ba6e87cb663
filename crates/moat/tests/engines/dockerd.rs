//! A dockerd of the test's own for the engine tests: its own data root,
//! exec root, socket, containerd and default bridge, with moat registered
//! as the runtime `moat` beside Docker's `runc`, stopped and removed on drop.
#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::bridge::Bridge;
use crate::common::{busybox, moat_binary, CgroupParent, TempDir};
use crate::differential::{creates_in, moat_wrapper, Engine};

/// The image the tests import and run.
pub const IMAGE: &str = "moat-test-busybox";

/// The limit for one docker command. Honest runs take a second or two even
/// on a loaded machine; a hang is a bug and fails its check.
pub const COMMAND_LIMIT: Duration = Duration::from_secs(30);

/// What a finished command left behind.
pub struct Out {
    pub command: String,
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn describe(&self) -> String {
        let timed_out = if self.status == 124 || self.status == 137 { " (124/137: maybe timed out)" } else { "" };
        format!(
            "command: {}\nexit status: {}{timed_out}\nstdout: {}\nstderr: {}",
            self.command,
            self.status,
            self.stdout.trim_end(),
            self.stderr.trim_end()
        )
    }
}

/// A dockerd of the test's own with moat registered, stopped on drop.
pub struct Daemon {
    /// Everything but the exec root: data root, config, socket, logs.
    pub dir: TempDir,
    /// dockerd's exec root: short, since moat's control socket ends up at
    /// `<exec root>/runtime-runc/moby/<64 hex id>/control.sock` and a unix
    /// socket path has at most 107 bytes.
    pub exec_root: PathBuf,
    pub socket: PathBuf,
    pub log: PathBuf,
    /// One line per call of the moat runtime (its arguments).
    pub calls: PathBuf,
    /// Where dockerd puts its containers' cgroups; dropped after dockerd.
    pub cgroup_parent: CgroupParent,
    pub child: Option<Child>,
    /// The containers the current check made, for their moat logs.
    pub containers: std::sync::Mutex<Vec<String>>,
    /// dockerd's default bridge; dropped (removed) after dockerd stops.
    pub bridge: Bridge,
}

impl Daemon {
    pub fn start() -> Daemon {
        let dockerd = find_program("dockerd").unwrap_or_else(|| {
            panic!(
                "fixture: dockerd is missing. This test runs containers on moat through Docker: \
                 install Debian's docker.io (`apt-get install docker.io`; .ci/run does)"
            )
        });
        assert!(
            find_program("docker").is_some(),
            "fixture: the docker CLI is missing: install Debian's docker.io (`apt-get install docker.io`)"
        );
        let dir = TempDir::new("docker");
        let exec_root = short_dir();
        let socket = dir.path().join("docker.sock");
        let log = dir.path().join("dockerd.log");
        fs::create_dir(dir.path().join("cli")).expect("fixture: make the docker CLI's config dir");
        // moat is registered through a wrapper that records each call, so
        // that a test can prove moat, not runc, ran its container.
        let (wrapper, calls) = moat_wrapper(dir.path(), moat_binary());
        let config = serde_json::json!({ "runtimes": { "moat": { "path": wrapper } } });
        fs::write(dir.path().join("daemon.json"), config.to_string()).expect("fixture: write daemon.json");
        let bridge = Bridge::create();
        let mut daemon = Daemon {
            dir,
            exec_root,
            socket,
            log,
            calls,
            cgroup_parent: CgroupParent::new("moat-test-docker"),
            child: None,
            containers: std::sync::Mutex::new(Vec::new()),
            bridge,
        };
        // overlay2 works on ext4; vfs works everywhere.
        for driver in ["overlay2", "vfs"] {
            match daemon.spawn(&dockerd, driver) {
                Ok(()) => return daemon,
                Err(e) => {
                    eprintln!("docker test: dockerd with storage driver {driver} failed: {e}");
                    daemon.stop();
                }
            }
        }
        panic!("fixture: dockerd did not start with overlay2 or vfs; its log:\n{}", daemon.log_tail(40));
    }

    /// Starts dockerd and waits until `docker info` answers.
    pub fn spawn(&mut self, dockerd: &Path, driver: &str) -> Result<(), String> {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| format!("cannot open {}: {e}", self.log.display()))?;
        let d = self.dir.path();
        let mut command = Command::new(dockerd);
        command
            .arg("--config-file")
            .arg(d.join("daemon.json"))
            .arg("--data-root")
            .arg(d.join(format!("data-{driver}")))
            .arg("--exec-root")
            .arg(&self.exec_root)
            .arg("--pidfile")
            .arg(d.join("dockerd.pid"))
            .arg("-H")
            .arg(format!("unix://{}", self.socket.display()))
            .args(["--iptables=false", "--ip6tables=false", "--ip-forward=false", "--ip-masq=false"])
            .arg(format!("--bridge={}", self.bridge.name))
            .arg(format!("--cgroup-parent={}", self.cgroup_parent.path()))
            .args(["--storage-driver", driver, "--exec-opt", "native.cgroupdriver=cgroupfs"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log);
        // dockerd gets SIGTERM should this test die without stopping it.
        host::sys::die_with_parent(&mut command, Signal::SIGTERM as i32);
        let child = command.spawn().map_err(|e| format!("cannot run {}: {e}", dockerd.display()))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                return Err(format!("dockerd exited ({status}); its log:\n{}", self.log_tail(20)));
            }
            let info = self.docker(&["info", "--format", "{{.Driver}}"]);
            if info.status == 0 && info.stdout.trim() == driver {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("docker info did not answer in 60 s: {}\n{}", info.describe(), self.log_tail(20)));
            }
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// Builds a busybox rootfs from the host's static busybox and imports
    /// it as IMAGE.
    pub fn import_image(&self) {
        let rootfs = self.dir.path().join("rootfs");
        for sub in ["bin", "etc", "proc", "sys", "dev", "tmp", "root"] {
            fs::create_dir_all(rootfs.join(sub)).expect("fixture: make the image's rootfs");
        }
        fs::copy(busybox(), rootfs.join("bin/busybox")).expect("fixture: copy busybox into the image");
        let install = Command::new("chroot")
            .arg(&rootfs)
            .args(["/bin/busybox", "--install", "-s", "/bin"])
            .output()
            .expect("fixture: run chroot");
        assert!(install.status.success(), "fixture: busybox --install -s failed: {install:?}");
        let passwd = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n";
        fs::write(rootfs.join("etc/passwd"), passwd).expect("fixture: write passwd");
        fs::write(rootfs.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").expect("fixture: write group");
        let chmod = Command::new("chmod").arg("1777").arg(rootfs.join("tmp")).status().expect("fixture: chmod");
        assert!(chmod.success(), "fixture: chmod 1777 tmp failed");
        let tar = self.dir.path().join("busybox-rootfs.tar");
        let status = Command::new("tar").arg("-C").arg(&rootfs).arg("-cf").arg(&tar).arg(".").status();
        assert!(status.map(|s| s.success()).unwrap_or(false), "fixture: tar of the busybox rootfs failed");
        let tar = tar.to_str().expect("utf-8 path").to_owned();
        let out = self.docker(&["import", "-c", r#"CMD ["/bin/sh"]"#, "-c", "ENV PATH=/bin", &tar, IMAGE]);
        assert!(out.status == 0, "fixture: docker import of the busybox image failed:\n{}", out.describe());
    }

    /// `docker -H unix://SOCKET`, for a shell command line.
    pub fn docker_prefix(&self) -> String {
        format!("docker -H unix://{}", self.socket.display())
    }

    pub fn docker_command(&self, limit: Duration, args: &[&str]) -> Command {
        let mut command = Command::new("timeout");
        command
            .args(["-k", "5", &limit.as_secs().to_string(), "docker", "-H"])
            .arg(format!("unix://{}", self.socket.display()))
            .args(args)
            .env("DOCKER_CONFIG", self.dir.path().join("cli"));
        command
    }

    pub fn docker(&self, args: &[&str]) -> Out {
        self.run_docker(args, None, COMMAND_LIMIT)
    }

    pub fn docker_with_stdin(&self, args: &[&str], stdin: &[u8]) -> Out {
        self.run_docker(args, Some(stdin), COMMAND_LIMIT)
    }

    /// `docker ARGS NAME` with its own time limit.
    pub fn docker_limited(&self, args: &[&str], name: &str, limit: Duration) -> Out {
        let mut all = args.to_vec();
        all.push(name);
        self.run_docker(&all, None, limit)
    }

    pub fn run_docker(&self, args: &[&str], stdin: Option<&[u8]>, limit: Duration) -> Out {
        let shown = format!("{} {}", self.docker_prefix(), shell_words(args));
        self.output(self.docker_command(limit, args), stdin, &shown)
    }

    pub fn output(&self, mut command: Command, stdin: Option<&[u8]>, shown: &str) -> Out {
        command.env("DOCKER_CONFIG", self.dir.path().join("cli"));
        command.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) => {
                return Out { command: shown.to_owned(), status: -1, stdout: String::new(), stderr: e.to_string() }
            }
        };
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            let _ = pipe.write_all(input);
        }
        let out = child.wait_with_output().expect("wait for a command");
        Out {
            command: shown.to_owned(),
            status: out.status.code().unwrap_or(128),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `docker inspect -f FORMAT NAME`, trimmed (or the error).
    pub fn inspect(&self, name: &str, format: &str) -> String {
        let out = self.docker(&["inspect", "-f", format, name]);
        if out.status == 0 {
            out.stdout.trim().to_owned()
        } else {
            format!("(inspect failed: {})", out.stderr.trim())
        }
    }

    /// Waits until the container is no longer running.
    pub fn wait_exited(&self, name: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if self.inspect(name, "{{.State.Running}}") == "false" {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(250));
        }
    }

    /// Remembers a container of the current check, for its moat log.
    pub fn note_container(&self, name: &str) {
        let id = self.inspect(name, "{{.Id}}");
        self.containers.lock().unwrap_or_else(|e| e.into_inner()).push(format!("{name} {id}"));
    }

    /// `docker rm -f NAME`, after saving moat's log should `result` be a
    /// failure (the log goes with the container).
    pub fn remove(&self, name: &str, result: Result<(), String>) -> Result<(), String> {
        let result = result.map_err(|e| format!("{e}{}", self.moat_logs()));
        self.containers.lock().unwrap_or_else(|e| e.into_inner()).clear();
        let out = self.docker(&["rm", "-f", name]);
        match (result, out.status) {
            (Err(e), _) => Err(e),
            (Ok(()), 0) => Ok(()),
            (Ok(()), _) => Err(format!("docker rm -f {name} failed\n{}", out.describe())),
        }
    }

    /// The last lines of moat's `--log` of the current check's containers.
    pub fn moat_logs(&self) -> String {
        let mut text = String::new();
        for entry in self.containers.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let (name, id) = entry.split_once(' ').unwrap_or((entry, ""));
            let path =
                self.exec_root.join("containerd/daemon/io.containerd.runtime.v2.task/moby").join(id).join("log.json");
            match fs::read_to_string(&path) {
                Ok(log) => {
                    let lines: Vec<&str> = log.lines().collect();
                    let tail = lines[lines.len().saturating_sub(15)..].join("\n");
                    text.push_str(&format!("\nmoat's log of {name} ({}):\n{tail}", path.display()));
                }
                Err(e) => text.push_str(&format!("\nmoat's log of {name}: cannot read {}: {e}", path.display())),
            }
        }
        text
    }

    /// moat's logs and dockerd's errors since `log_mark`, for a failure.
    pub fn diagnostics(&self, log_mark: u64) -> String {
        let mut text = self.moat_logs();
        let log = fs::read(&self.log).unwrap_or_default();
        let new = String::from_utf8_lossy(log.get(log_mark as usize..).unwrap_or_default()).into_owned();
        let errors: Vec<&str> =
            new.lines().filter(|l| l.contains("level=error") || l.contains("level=warning")).collect();
        if !errors.is_empty() {
            let tail = errors[errors.len().saturating_sub(8)..].join("\n");
            text.push_str(&format!("\ndockerd's errors:\n{tail}"));
        }
        text
    }

    pub fn dockerd_log_len(&self) -> u64 {
        fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0)
    }

    pub fn log_tail(&self, n: usize) -> String {
        let log = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Removes every container, then stops dockerd: SIGTERM, then SIGKILL
    /// after 20 s; then its containerd, should it outlive it.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        if child.try_wait().ok().flatten().is_none() {
            let all = self.run_docker(&["ps", "-aq"], None, Duration::from_secs(15));
            let ids: Vec<&str> = all.stdout.split_whitespace().collect();
            if !ids.is_empty() {
                let mut args = vec!["rm", "-f"];
                args.extend(ids);
                let _ = self.run_docker(&args, None, Duration::from_secs(30));
            }
        }
        let pid = Pid::from_raw(child.id() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        while child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                eprintln!("docker test: dockerd ignored SIGTERM for 20 s; killing it");
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            thread::sleep(Duration::from_millis(100));
        }
        let containerd = self.exec_root.join("containerd/containerd.pid");
        if let Some(pid) = fs::read_to_string(&containerd).ok().and_then(|s| s.trim().parse::<i32>().ok()) {
            let pid = Pid::from_raw(pid);
            if kill(pid, None).is_ok() && is_ours(pid.as_raw(), &self.exec_root) {
                eprintln!("docker test: dockerd's containerd {pid} outlived it; stopping it");
                let _ = kill(pid, Signal::SIGTERM);
                thread::sleep(Duration::from_secs(2));
                let _ = kill(pid, Signal::SIGKILL);
            }
        }
    }

    /// Unmounts what dockerd left mounted below its directories (the
    /// netns/default bind, overlay2's private bind).
    pub fn unmount_leftovers(&self) {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let roots = [self.dir.path().to_path_buf(), self.exec_root.clone()];
        let mut points: Vec<String> = mountinfo
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|p| roots.iter().any(|r| Path::new(p).starts_with(r)))
            .map(str::to_owned)
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for point in points {
            let _ = Command::new("umount").args(["-l", &point]).status();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
        for pid in leftover_processes(&self.exec_root) {
            eprintln!("docker test: warning: process {pid} of this test's dockerd outlived it; killing it");
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        self.unmount_leftovers();
        // Like TempDir: never leave the exec root's file system.
        let _ = Command::new("rm").args(["-rf", "--one-file-system"]).arg(&self.exec_root).status();
    }
}

/// A fresh directory `/tmp/mXXXX` (short: see `Daemon::exec_root`).
pub fn short_dir() -> PathBuf {
    let seed = std::process::id();
    for n in 0..1000u32 {
        let path = PathBuf::from(format!("/tmp/m{:04x}", (seed.wrapping_add(n.wrapping_mul(7919))) & 0xffff));
        if fs::create_dir(&path).is_ok() {
            return path;
        }
    }
    panic!("fixture: cannot make a short exec root /tmp/mXXXX");
}

/// Whether `pid`'s command line names `dir` (a process of this test's
/// dockerd: its containerd, shims and sandboxes all name the exec root).
pub fn is_ours(pid: i32, dir: &Path) -> bool {
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let mut needle = dir.as_os_str().as_encoded_bytes().to_vec();
    needle.push(b'/');
    cmdline.windows(needle.len()).any(|w| w == needle.as_slice())
}

pub fn leftover_processes(dir: &Path) -> Vec<i32> {
    let me = std::process::id() as i32;
    fs::read_dir("/proc")
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
                .filter(|&pid| pid != me && is_ours(pid, dir))
                .collect()
        })
        .unwrap_or_default()
}

pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin".into());
    std::env::split_paths(&path).chain(["/usr/sbin".into(), "/sbin".into()]).map(|d| d.join(name)).find(|p| p.is_file())
}

/// Arguments as a shell would need them, for failure messages.
pub fn shell_words(args: &[&str]) -> String {
    args.iter()
        .map(|a| {
            if !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,@{}".contains(c)) {
                (*a).to_owned()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl Engine for Daemon {
    fn moat_creates(&self) -> usize {
        creates_in(&self.calls)
    }

    fn log_mark(&self) -> u64 {
        self.dockerd_log_len()
    }

    fn diagnostics(&self, mark: u64) -> String {
        Daemon::diagnostics(self, mark)
    }
}
