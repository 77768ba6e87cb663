//! `moat kill ID KILL` and `moat delete --force` end a container whose
//! Sentry does not answer its control socket (stopped with SIGSTOP here, as
//! a stuck or hostile one would not): SIGKILL is the host's to deliver.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use common::oci::{self, busybox_bundle, cgroup_processes, has_exited, moat_at as moat, sentry_in};
use common::{unique_name, Rootfs, TempDir};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// A started container running `sleep 1000` in cgroup `/ID` (top-level,
/// so that delete leaves no parent behind),
/// force-deleted (and its processes killed) when dropped, so that a failing
/// test leaves nothing behind.
struct Container {
    root: PathBuf,
    id: String,
    cgroup: String,
    /// Its host processes (Sentry, Gofers, stubs) once it runs.
    processes: Vec<u32>,
    sentry: u32,
    _dir: TempDir,
    _rootfs: Rootfs,
}

impl Container {
    fn start(label: &str) -> Container {
        let dir = TempDir::new(label);
        let root = dir.path().join("root");
        let bundle = dir.path().join("bundle");
        let rootfs = Rootfs::new();
        let id = unique_name(label);
        let cgroup = format!("/{id}");
        busybox_bundle(&root, &bundle, &rootfs, &["/bin/sleep", "1000"], |spec| {
            spec["linux"]["cgroupsPath"] = cgroup.clone().into();
        });
        oci::create(&root, &bundle, &id, &dir.path().join("console.log"));
        let mut container =
            Container { root, id, cgroup, processes: Vec::new(), sentry: 0, _dir: dir, _rootfs: rootfs };
        let out = moat(&container.root, &["start", &container.id]);
        assert!(out.status.success(), "start: {}", String::from_utf8_lossy(&out.stderr));
        // Up once the Sentry runs under its filter with a stub below it.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let processes = cgroup_processes(&container.cgroup);
            if let Some(sentry) = sentry_in(&container.cgroup, &container.id) {
                if processes.iter().any(|&p| p != sentry && !is_gofer(p)) {
                    container.processes = processes;
                    container.sentry = sentry;
                    return container;
                }
            }
            assert!(Instant::now() < deadline, "the container never came up: cgroup processes {processes:?}");
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn moat(&self, args: &[&str]) -> std::process::Output {
        let mut all = args.to_vec();
        all.push(&self.id);
        moat(&self.root, &all)
    }

    /// Waits until `moat state` says stopped (or panics after 30 s).
    fn wait_stopped(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let status = oci::status(&self.root, &self.id);
            if status == "stopped" {
                return;
            }
            assert!(Instant::now() < deadline, "the container is still {status} after kill");
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Panics naming each process of the container still on the host.
    fn assert_all_gone(&self) {
        let left: Vec<u32> = self.processes.iter().copied().filter(|&p| !has_exited(p)).collect();
        assert!(left.is_empty(), "processes {left:?} of the container (of {:?}) are still there", self.processes);
        assert!(cgroup_processes(&self.cgroup).is_empty(), "the container's cgroup still has processes");
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = self.moat(&["delete", "--force"]);
        let left: Vec<u32> =
            cgroup_processes(&self.cgroup).into_iter().filter(|p| self.processes.contains(p)).collect();
        if !left.is_empty() {
            for pid in left {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            }
            let _ = self.moat(&["delete", "--force"]);
        }
    }
}

fn is_gofer(pid: u32) -> bool {
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    cmdline.split(|&b| b == 0).any(|a| a == b"gofer")
}

#[test]
fn kill_ends_a_container_whose_sentry_is_stopped() {
    let c = Container::start("kill-stopped");
    kill(Pid::from_raw(c.sentry as i32), Signal::SIGSTOP).expect("SIGSTOP the Sentry");
    let out = moat(&c.root, &["kill", &c.id, "KILL"]);
    assert!(out.status.success(), "kill KILL: {} {}", out.status, String::from_utf8_lossy(&out.stderr));
    c.wait_stopped();
    c.assert_all_gone();
    let out = c.moat(&["delete"]);
    assert!(out.status.success(), "delete: {}", String::from_utf8_lossy(&out.stderr));
    assert!(!c.root.join(&c.id).exists(), "delete left the container's state directory");
    assert!(!Path::new(&format!("/sys/fs/cgroup/memory{}", c.cgroup)).exists(), "delete left the container's cgroup");
}

#[test]
fn delete_force_ends_a_container_whose_sentry_is_stopped() {
    let c = Container::start("delete-stopped");
    kill(Pid::from_raw(c.sentry as i32), Signal::SIGSTOP).expect("SIGSTOP the Sentry");
    let out = c.moat(&["delete", "--force"]);
    assert!(out.status.success(), "delete --force: {}", String::from_utf8_lossy(&out.stderr));
    c.assert_all_gone();
    assert!(!c.root.join(&c.id).exists(), "delete --force left the container's state directory");
}
