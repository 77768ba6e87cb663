//! The isolation layers a container gets from `moat create`, checked from
//! the host: the sandbox process runs in PID, mount, IPC and UTS namespaces
//! of its own under a seccomp filter with no_new_privs, and it, its Gofers
//! and its stubs are all in the container's cgroup, with its limits.

mod common;

use std::collections::HashMap;
use std::fs;
use std::thread;
use std::time::{Duration, Instant};

use common::oci::{self, busybox_bundle, moat_at as moat};
use common::{host_descendants, unique_name, Rootfs, TempDir};
use serde_json::Value;

fn status(pid: u32) -> HashMap<String, String> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines().filter_map(|l| l.split_once(':')).map(|(k, v)| (k.to_owned(), v.trim().to_owned())).collect()
}

/// The cgroup of `pid` in the memory hierarchy (v1), or the unified one.
fn memory_cgroup(pid: u32) -> String {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let line = text.lines().find(|l| l.split(':').nth(1).is_some_and(|c| c.split(',').any(|c| c == "memory")));
    let line = line.or_else(|| text.lines().find(|l| l.starts_with("0::")));
    line.and_then(|l| l.splitn(3, ':').nth(2)).unwrap_or_default().to_owned()
}

#[test]
fn a_container_runs_in_its_namespaces_cgroup_and_filter() {
    let dir = TempDir::new("oci-iso");
    let root = dir.path().join("root");
    let bundle = dir.path().join("bundle");
    let rootfs = Rootfs::new();
    let id = unique_name("iso");
    let cgroup = format!("/moat-test/{id}");
    busybox_bundle(&root, &bundle, &rootfs, &["/bin/sh", "-c", "echo up; while :; do sleep 1; done"], |spec| {
        spec["linux"]["cgroupsPath"] = cgroup.clone().into();
        spec["linux"]["resources"] = serde_json::json!({"memory": {"limit": 268435456}, "pids": {"limit": 64}});
    });
    oci::create(&root, &bundle, &id, &dir.path().join("console.log"));
    let out = moat(&root, &["start", &id]);
    assert!(out.status.success(), "start: {}", String::from_utf8_lossy(&out.stderr));
    let state: Value = serde_json::from_slice(&moat(&root, &["state", &id]).stdout).expect("state json");
    let outer = state["pid"].as_u64().expect("pid") as u32;

    // The sandbox (pid 1 of its namespace) and, below it, Gofers and stubs.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (sandbox, below) = loop {
        let all = host_descendants(outer);
        let sandbox = all.iter().find(|(_, c)| c.contains("--in-pid-namespace")).map(|(p, _)| *p);
        if let Some(sandbox) = sandbox {
            let below = host_descendants(sandbox);
            let has_gofer = below.iter().any(|(_, c)| c.contains(" gofer "));
            if has_gofer && status(sandbox).get("Seccomp").map(String::as_str) == Some("2") && below.len() >= 2 {
                break (sandbox, below);
            }
        }
        assert!(Instant::now() < deadline, "the sandbox never came up: {all:?}");
        thread::sleep(Duration::from_millis(20));
    };
    let st = status(sandbox);
    assert_eq!(st.get("NoNewPrivs").map(String::as_str), Some("1"), "{st:?}");
    assert_eq!(
        st.get("NSpid").map(|v| v.split_whitespace().last() == Some("1")),
        Some(true),
        "pid 1 of its own namespace: {st:?}"
    );
    for ns in ["pid", "mnt", "ipc", "uts"] {
        let theirs = fs::read_link(format!("/proc/{sandbox}/ns/{ns}")).expect("ns link");
        let ours = fs::read_link(format!("/proc/self/ns/{ns}")).expect("ns link");
        assert_ne!(theirs, ours, "the sandbox must have a {ns} namespace of its own");
    }
    for pid in [outer, sandbox].into_iter().chain(below.iter().map(|(p, _)| *p)) {
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
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists()
                || status(pid).get("State").is_some_and(|s| s.starts_with('Z')),
            "{pid} ({cmd}) outlived the container"
        );
    }
    assert!(!std::path::Path::new(&format!("/sys/fs/cgroup/memory{cgroup}")).exists(), "the cgroup outlived delete");
}
