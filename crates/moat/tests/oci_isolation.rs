//! The isolation layers a container gets from `moat create`, checked from
//! the host: the sandbox process (the pid engines are given) is pid 1 of a
//! PID namespace of its own and in the container's mount, IPC, UTS and
//! network namespaces, as are its stubs, under a seccomp filter with
//! no_new_privs; it, its Gofers and its stubs are all in the container's
//! cgroup, with its limits. Engines' hooks act on `/proc/PID/ns/*` of that
//! pid, so it must never be in the host's namespaces.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use common::oci::{self, busybox_bundle, moat_at as moat, proc_status as status};
use common::{host_descendants, unique_name, Rootfs, TempDir};
use serde_json::Value;

/// The cgroup of `pid` in the memory hierarchy (v1), or the unified one.
fn memory_cgroup(pid: u32) -> String {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let line = text.lines().find(|l| l.split(':').nth(1).is_some_and(|c| c.split(',').any(|c| c == "memory")));
    let line = line.or_else(|| text.lines().find(|l| l.starts_with("0::")));
    line.and_then(|l| l.splitn(3, ':').nth(2)).unwrap_or_default().to_owned()
}

/// The namespaces whose hooks and tools engines point at `/proc/PID/ns/*`.
const NAMESPACES: [&str; 5] = ["pid", "net", "mnt", "ipc", "uts"];

fn namespace(pid: u32, ns: &str) -> PathBuf {
    fs::read_link(format!("/proc/{pid}/ns/{ns}")).unwrap_or_else(|e| panic!("/proc/{pid}/ns/{ns}: {e}"))
}

/// Kills the container (if still there) and removes it when dropped.
struct ForceDelete<'a>(&'a Path, &'a str);

impl Drop for ForceDelete<'_> {
    fn drop(&mut self) {
        let _ = moat(self.0, &["delete", "--force", self.1]);
    }
}

#[test]
fn a_container_runs_in_its_namespaces_cgroup_and_filter() {
    let dir = TempDir::new("oci-iso");
    let root = dir.path().join("root");
    let bundle = dir.path().join("bundle");
    let rootfs = Rootfs::new();
    let id = unique_name("iso");
    // Top-level, so that delete leaves no parent behind.
    let cgroup = format!("/{id}");
    busybox_bundle(&root, &bundle, &rootfs, &["/bin/sh", "-c", "echo up; while :; do sleep 1; done"], |spec| {
        spec["linux"]["cgroupsPath"] = cgroup.clone().into();
        spec["linux"]["resources"] = serde_json::json!({"memory": {"limit": 268435456}, "pids": {"limit": 64}});
    });
    let pid_file = dir.path().join("pid");
    let pid = oci::create_with_pid_file(&root, &bundle, &id, &dir.path().join("console.log"), &pid_file);
    let _delete = ForceDelete(&root, &id);
    // Before `start`, when engines run their createRuntime and prestart
    // hooks (Docker's network setup), the pid is in the container's
    // namespaces already.
    for ns in NAMESPACES {
        let host = fs::read_link(format!("/proc/self/ns/{ns}")).expect("ns link");
        assert_ne!(namespace(pid, ns), host, "created: the pid-file pid {pid} is in the host's {ns} namespace");
    }
    let out = moat(&root, &["start", &id]);
    assert!(out.status.success(), "start: {}", String::from_utf8_lossy(&out.stderr));
    let state: Value = serde_json::from_slice(&moat(&root, &["state", &id]).stdout).expect("state json");
    assert_eq!(state["pid"].as_u64(), Some(u64::from(pid)), "state's pid and the pid file differ: {state}");

    // The Sentry (pid 1 of the sandbox's namespace) and, below, Gofers and stubs.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (sentry, below) = loop {
        if let Some(sentry) = oci::sentry_in(&cgroup, &id) {
            let below = host_descendants(sentry);
            if below.iter().any(|(_, c)| c.contains(" gofer ")) && below.iter().any(|(_, c)| !c.contains(" gofer ")) {
                break (sentry, below);
            }
        }
        assert!(Instant::now() < deadline, "the sandbox never came up: {:?}", host_descendants(pid));
        thread::sleep(Duration::from_millis(20));
    };
    let st = status(sentry);
    assert_eq!(st.get("NoNewPrivs").map(String::as_str), Some("1"), "{st:?}");
    let stubs: Vec<u32> = below.iter().filter(|(_, c)| !c.contains(" gofer ")).map(|(p, _)| *p).collect();
    for ns in NAMESPACES {
        let theirs = namespace(pid, ns);
        let host = fs::read_link(format!("/proc/self/ns/{ns}")).expect("ns link");
        assert_ne!(theirs, host, "the pid-file pid {pid} is in the host's {ns} namespace");
        for other in std::iter::once(sentry).chain(stubs.iter().copied()) {
            assert_eq!(namespace(other, ns), theirs, "{ns} namespace: the pid-file pid {pid} and {other} differ");
        }
    }
    for pid in [pid, sentry].into_iter().chain(below.iter().map(|(p, _)| *p)) {
        let cg = memory_cgroup(pid);
        assert!(cg.ends_with(&cgroup), "process {pid} is in {cg:?}, not the container's cgroup {cgroup}");
    }
    let limit = fs::read_to_string(format!("/sys/fs/cgroup/memory{cgroup}/memory.limit_in_bytes"))
        .or_else(|_| fs::read_to_string(format!("/sys/fs/cgroup{cgroup}/memory.max")))
        .expect("memory limit file");
    assert_eq!(limit.trim(), "268435456");

    assert!(moat(&root, &["kill", &id, "KILL"]).status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let state: Value = serde_json::from_slice(&moat(&root, &["state", &id]).stdout).expect("state json");
        if state["status"] == "stopped" {
            break;
        }
        assert!(Instant::now() < deadline, "never stopped: {state}");
        thread::sleep(Duration::from_millis(20));
    }
    let out = moat(&root, &["delete", &id]);
    assert!(out.status.success(), "delete: {}", String::from_utf8_lossy(&out.stderr));
    for (pid, cmd) in below {
        assert!(oci::has_exited(pid), "{pid} ({cmd}) outlived the container");
    }
    assert!(!Path::new(&format!("/sys/fs/cgroup/memory{cgroup}")).exists(), "the cgroup outlived delete");
}

#[test]
fn a_container_joins_the_network_namespace_its_spec_names() {
    let dir = TempDir::new("oci-netns");
    let root = dir.path().join("root");
    let bundle = dir.path().join("bundle");
    let rootfs = Rootfs::new();
    let id = unique_name("netns");
    // A network namespace of the test's own, as containerd's CRI pins one
    // for a pod, held by a process that dies with the test.
    let mut holder = common::Running::spawn(
        {
            let mut c = std::process::Command::new("unshare");
            c.args(["--net", "sleep", "1000"]);
            c
        },
        "unshare --net sleep",
        false,
    );
    let holder_pid = holder.pid();
    let path = format!("/proc/{holder_pid}/ns/net");
    let deadline = Instant::now() + Duration::from_secs(30);
    while namespace(holder_pid, "net") == fs::read_link("/proc/self/ns/net").expect("ns link") {
        assert!(Instant::now() < deadline && !holder.has_exited(), "unshare --net never made its namespace");
        thread::sleep(Duration::from_millis(10));
    }
    busybox_bundle(&root, &bundle, &rootfs, &["/bin/true"], |spec| {
        spec["linux"]["cgroupsPath"] = format!("/{id}").into();
        let namespaces = spec["linux"]["namespaces"].as_array_mut().expect("namespaces");
        for ns in namespaces.iter_mut().filter(|ns| ns["type"] == "network") {
            ns["path"] = path.clone().into();
        }
    });
    let pid = oci::create_with_pid_file(&root, &bundle, &id, &dir.path().join("console.log"), &dir.path().join("pid"));
    let _delete = ForceDelete(&root, &id);
    assert_eq!(
        namespace(pid, "net"),
        namespace(holder_pid, "net"),
        "the sandbox is not in the spec's network namespace"
    );
    let out = moat(&root, &["delete", "--force", &id]);
    assert!(out.status.success(), "delete: {}", String::from_utf8_lossy(&out.stderr));
}
