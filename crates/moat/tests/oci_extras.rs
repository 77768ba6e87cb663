//! The runtime commands beyond the lifecycle: pause/resume through the
//! cgroup freezer, events --stats, update of the limits, and the OCI hooks
//! (prestart, createRuntime, poststart, poststop) with the state on stdin.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{moat_binary, unique_name, Rootfs, TempDir};
use serde_json::Value;

fn moat(root: &Path, args: &[&str]) -> std::process::Output {
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

fn ok(out: &std::process::Output, what: &str) -> String {
    assert!(out.status.success(), "{what}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A bundle running `script`, with `edit` applied to its spec; created with
/// its stdio on a file (a pipe would stay open after create returns).
fn create(root: &Path, dir: &Path, rootfs: &Rootfs, script: &str, edit: impl FnOnce(&mut Value)) -> String {
    let bundle = dir.join("bundle");
    fs::create_dir_all(&bundle).expect("mkdir");
    let b = bundle.to_str().expect("utf-8");
    ok(&moat(root, &["spec", "--bundle", b]), "spec");
    let config = bundle.join("config.json");
    let mut spec: Value = serde_json::from_str(&fs::read_to_string(&config).expect("read")).expect("json");
    spec["root"]["path"] = rootfs.path().to_str().expect("utf-8").into();
    spec["process"]["terminal"] = false.into();
    spec["process"]["args"] = serde_json::json!(["/bin/sh", "-c", script]);
    edit(&mut spec);
    fs::write(&config, serde_json::to_vec(&spec).expect("json")).expect("write");
    let id = unique_name("extra");
    let console = fs::File::create(dir.join("console.log")).expect("console");
    let created = Command::new("timeout")
        .arg("60")
        .arg(moat_binary())
        .arg("--root")
        .arg(root)
        .args(["create", "--bundle", b, &id])
        .stdin(Stdio::null())
        .stdout(console.try_clone().expect("dup"))
        .stderr(console)
        .status()
        .expect("spawn create");
    assert!(created.success(), "create: {}", fs::read_to_string(dir.join("console.log")).unwrap_or_default());
    id
}

fn status(root: &Path, id: &str) -> String {
    let state: Value = serde_json::from_str(&ok(&moat(root, &["state", id]), "state")).expect("state json");
    state["status"].as_str().unwrap_or_default().to_owned()
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
    fs::create_dir_all(&bundle).expect("mkdir");
    let b = bundle.to_str().expect("utf-8");
    ok(&moat(root, &["spec", "--bundle", b]), "spec");
    let config = bundle.join("config.json");
    let mut spec: Value = serde_json::from_str(&fs::read_to_string(&config).expect("read")).expect("json");
    spec["root"]["path"] = rootfs.path().to_str().expect("utf-8").into();
    spec["process"]["terminal"] = false.into();
    spec["hooks"] = serde_json::json!({"prestart": [{"path": "/bin/false"}]});
    fs::write(&config, serde_json::to_vec(&spec).expect("json")).expect("write");
    let id = unique_name("hookfail");
    let out = moat(root, &["create", "--bundle", b, &id]);
    assert!(!out.status.success(), "create with a failing hook must fail");
    assert!(String::from_utf8_lossy(&out.stderr).contains("hook"), "{}", String::from_utf8_lossy(&out.stderr));
    id
}
