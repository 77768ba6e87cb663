//! containerd (through `ctr`, with moat as the runc shim's binary) runs a
//! busybox container to completion on moat, with the right output and exit
//! status. The test starts its own containerd in temporary directories and
//! stops it after. (podman.rs, docker.rs and cri.rs compare each engine's
//! runs on moat with the same runs on runc.)

mod common;

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::image::image_archive;
use common::{moat_binary, unique_name, Rootfs, TempDir};

fn require(tool: &str, package: &str) -> PathBuf {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join(tool)).find(|p| p.exists()))
        .unwrap_or_default();
    found.unwrap_or_else(|| panic!("this test needs {tool}: apt-get install {package} (.ci/run does)"))
}

struct Run {
    status: i32,
    stdout: String,
    stderr: String,
}

fn run(command: &mut Command) -> Run {
    let out = command.stdin(Stdio::null()).output().expect("spawn");
    Run {
        status: out.status.code().unwrap_or(128),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A containerd of the test's own, stopped when dropped.
struct Containerd {
    child: Child,
    socket: PathBuf,
    dir: TempDir,
}

impl Containerd {
    fn start() -> Containerd {
        let binary = require("containerd", "containerd (or docker.io)");
        let dir = TempDir::new("containerd");
        let d = dir.path();
        let socket = d.join("c.sock");
        let config = format!(
            "version = 2\nroot = \"{root}\"\nstate = \"{state}\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{socket}\"\n[ttrpc]\n  address = \"{socket}.ttrpc\"\n",
            root = d.join("root").display(),
            state = d.join("state").display(),
            socket = socket.display(),
        );
        fs::write(d.join("config.toml"), config).expect("write config.toml");
        let log = fs::File::create(d.join("containerd.log")).expect("log file");
        let child = Command::new(binary)
            .arg("--config")
            .arg(d.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup"))
            .stderr(log)
            .spawn()
            .expect("start containerd");
        let c = Containerd { child, socket, dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        while run(c.ctr().arg("version")).status != 0 {
            assert!(Instant::now() < deadline, "containerd did not come up: {}", c.log());
            thread::sleep(Duration::from_millis(100));
        }
        c
    }

    fn ctr(&self) -> Command {
        let mut c = Command::new("timeout");
        c.arg("120").arg(require("ctr", "containerd (or docker.io)")).arg("-a").arg(&self.socket);
        c
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), nix::sys::signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Snapshots containerd mounted and did not unmount, so the directory can go.
        let mounts = fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let root = self.dir.path().display().to_string();
        let mut ours: Vec<&str> =
            mounts.lines().filter_map(|l| l.split(' ').nth(1)).filter(|m| m.starts_with(&root)).collect();
        ours.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in ours {
            let _ = nix::mount::umount2(m, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

#[test]
fn containerd_runs_a_container_on_moat() {
    let containerd = Containerd::start();
    let rootfs = Rootfs::new();
    let image = "docker.io/library/moat-engines-test:latest";
    let archive = image_archive(rootfs.path(), image, r#"{"Cmd": ["sh"]}"#, containerd.dir.path());
    let out = run(containerd.ctr().args(["image", "import"]).arg(&archive));
    assert_eq!(out.status, 0, "ctr image import: {}{}", out.stdout, out.stderr);
    let id = unique_name("ctr");
    let out = run(containerd.ctr().args(["run", "--rm", "--runc-binary", moat_binary(), image, &id]).args([
        "/bin/sh",
        "-c",
        "echo hi from containerd; exit 6",
    ]));
    assert_eq!(
        (out.status, out.stdout.as_str()),
        (6, "hi from containerd\n"),
        "ctr run on moat: {}\n--- containerd log ---\n{}",
        out.stderr,
        containerd.log()
    );
}
