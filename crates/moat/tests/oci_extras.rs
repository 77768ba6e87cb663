//! The runtime commands beyond the lifecycle: pause/resume through the
//! cgroup freezer, events --stats, update of the limits, and the OCI hooks
//! (prestart, createRuntime, poststart, poststop) with the state on stdin.

mod common;

use std::fs;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use common::oci::{self, busybox_bundle, moat_at as moat, status};
use common::{unique_name, Rootfs, TempDir};
use serde_json::Value;

/// A busybox container running `script`, with `edit` applied to its spec, created.
fn create(root: &Path, dir: &Path, rootfs: &Rootfs, script: &str, edit: impl FnOnce(&mut Value)) -> String {
    let bundle = dir.join("bundle");
    busybox_bundle(root, &bundle, rootfs, &["/bin/sh", "-c", script], edit);
    let id = unique_name("extra");
    oci::create(root, &bundle, &id, &dir.join("console.log"));
    id
}

fn ok(out: &std::process::Output, what: &str) -> String {
    assert!(out.status.success(), "{what}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "{what} never happened");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn pause_resume_events_and_update() {
    let dir = TempDir::new("oci-extras");
    let root = dir.path().join("root");
    let rootfs = Rootfs::new();
    let id =
        create(&root, dir.path(), &rootfs, "i=0; while :; do i=$((i+1)); echo $i > /tmp/count; sleep 0.1; done", |s| {
            s["linux"]["resources"] = serde_json::json!({"memory": {"limit": 268435456}});
        });
    ok(&moat(&root, &["start", &id]), "start");
    wait_for("running", || status(&root, &id) == "running");

    ok(&moat(&root, &["pause", &id]), "pause");
    assert_eq!(status(&root, &id), "paused");
    let procs: Vec<i64> =
        serde_json::from_str(&ok(&moat(&root, &["ps", "--format", "json", &id]), "ps")).expect("pids");
    assert!(!procs.is_empty());
    for pid in &procs {
        let stat = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let state = stat.lines().find_map(|l| l.strip_prefix("State:")).unwrap_or_default().trim().to_owned();
        assert!(state.starts_with('D') || state.starts_with('T'), "process {pid} is not frozen: {state}");
    }
    ok(&moat(&root, &["resume", &id]), "resume");
    assert_eq!(status(&root, &id), "running");

    let event: Value = serde_json::from_str(&ok(&moat(&root, &["events", "--stats", &id]), "events")).expect("json");
    assert_eq!(event["type"], "stats", "{event}");
    assert_eq!(event["id"], id.as_str());
    assert!(event["data"]["memory"]["usage"]["usage"].as_u64().unwrap_or(0) > 0, "{event}");
    assert_eq!(event["data"]["memory"]["usage"]["limit"].as_u64(), Some(268435456), "{event}");

    let resources = dir.path().join("resources.json");
    fs::write(&resources, r#"{"memory": {"limit": 134217728}}"#).expect("write");
    ok(&moat(&root, &["update", "--resources", resources.to_str().expect("utf-8"), &id]), "update");
    let event: Value = serde_json::from_str(&ok(&moat(&root, &["events", "--stats", &id]), "events")).expect("json");
    assert_eq!(event["data"]["memory"]["usage"]["limit"].as_u64(), Some(134217728), "{event}");

    ok(&moat(&root, &["delete", "--force", &id]), "delete");
}

#[test]
fn hooks_run_with_the_state_on_stdin() {
    let dir = TempDir::new("oci-hooks");
    let root = dir.path().join("root");
    let rootfs = Rootfs::new();
    let out = dir.path().join("hooks");
    fs::create_dir(&out).expect("mkdir");
    let hook = |name: &str| serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {}/{name}.json", out.display())]});
    let id = create(&root, dir.path(), &rootfs, "exit 0", |s| {
        s["hooks"] = serde_json::json!({
            "prestart": [hook("prestart")],
            "createRuntime": [hook("createRuntime")],
            "poststart": [hook("poststart")],
            "poststop": [hook("poststop")],
        });
    });
    for h in ["prestart", "createRuntime"] {
        let state: Value =
            serde_json::from_str(&fs::read_to_string(out.join(format!("{h}.json"))).expect(h)).expect("json");
        assert_eq!(
            (state["id"].as_str(), state["status"].as_str()),
            (Some(id.as_str()), Some("created")),
            "{h}: {state}"
        );
    }
    assert!(!out.join("poststart.json").exists(), "poststart ran before start");
    ok(&moat(&root, &["start", &id]), "start");
    let state: Value =
        serde_json::from_str(&fs::read_to_string(out.join("poststart.json")).expect("poststart")).expect("json");
    assert_eq!(state["id"], id.as_str());
    wait_for("stopped", || status(&root, &id) == "stopped");
    ok(&moat(&root, &["delete", &id]), "delete");
    let state: Value =
        serde_json::from_str(&fs::read_to_string(out.join("poststop.json")).expect("poststop")).expect("json");
    assert_eq!(state["status"], "stopped");

    // A failing prestart hook fails create and leaves nothing.
    let id = create_failing(&root, dir.path(), &rootfs);
    assert!(!root.join(&id).exists(), "a failed create left its state");
}

fn create_failing(root: &Path, dir: &Path, rootfs: &Rootfs) -> String {
    let bundle = dir.join("bundle-fail");
    busybox_bundle(root, &bundle, rootfs, &["/bin/true"], |s| {
        s["hooks"] = serde_json::json!({"prestart": [{"path": "/bin/false"}]});
    });
    let id = unique_name("hookfail");
    let out = moat(root, &["create", "--bundle", bundle.to_str().expect("utf-8"), &id]);
    assert!(!out.status.success(), "create with a failing hook must fail");
    assert!(String::from_utf8_lossy(&out.stderr).contains("hook"), "{}", String::from_utf8_lossy(&out.stderr));
    id
}

/// A read-only root, as `docker run --read-only` gives: writes fail with
/// EROFS (in /tmp too, which is the image's), yet a bind mount can go where
/// the image has no directory.
#[test]
fn a_read_only_root_takes_mounts_it_has_no_directory_for() {
    let dir = TempDir::new("oci-ro");
    let root = dir.path().join("root");
    let rootfs = Rootfs::new();
    let host = dir.path().join("host-data");
    fs::create_dir(&host).expect("mkdir");
    fs::write(host.join("f"), "from the host\n").expect("write");
    let bundle = dir.path().join("bundle");
    let script = "cat /new/place/f; echo x > /new/place/g && echo wrote-volume; \
                  echo x > /tmp/t 2>/dev/null || echo tmp-refused; mkdir /d 2>/dev/null || echo root-refused";
    busybox_bundle(&root, &bundle, &rootfs, &["/bin/sh", "-c", script], |s| {
        s["root"]["readonly"] = true.into();
        s["mounts"].as_array_mut().expect("mounts").push(serde_json::json!({
            "destination": "/new/place", "type": "bind", "source": host.to_str().expect("utf-8"), "options": ["rbind", "rw"]
        }));
    });
    let id = unique_name("ro");
    let out = moat(&root, &["run", "--bundle", bundle.to_str().expect("utf-8"), &id]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout,
        "from the host\nwrote-volume\ntmp-refused\nroot-refused\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fs::read_to_string(host.join("g")).expect("g on the host"), "x\n");
    assert!(!rootfs.host_path("new").exists() && !rootfs.host_path("d").exists(), "the read-only root changed");
}

/// An engine that kills the `moat exec` it waits on (an exec probe timing
/// out) kills the exec'd process too; a second start is refused.
#[test]
fn an_exec_dies_with_its_moat_exec_and_start_works_once() {
    let dir = TempDir::new("oci-exec-kill");
    let root = dir.path().join("root");
    let rootfs = Rootfs::new();
    let id = create(&root, dir.path(), &rootfs, "while :; do sleep 1; done", |_| {});
    ok(&moat(&root, &["start", &id]), "start");
    assert!(!moat(&root, &["start", &id]).status.success(), "a second start must fail");
    wait_for("running", || status(&root, &id) == "running");

    let mut exec = std::process::Command::new(common::moat_binary())
        .arg("--root")
        .arg(&root)
        .args(["exec", &id, "/bin/sh", "-c", "echo exec-marker >/dev/null; sleep 300"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn moat exec");
    let table = || String::from_utf8_lossy(&moat(&root, &["ps", &id]).stdout).into_owned();
    wait_for("the exec'd process", || table().contains("sleep 300"));
    exec.kill().expect("kill moat exec");
    let _ = exec.wait();
    wait_for("the exec'd process to die with its moat exec", || !table().contains("sleep 300"));
    ok(&moat(&root, &["delete", "--force", &id]), "delete");
}
