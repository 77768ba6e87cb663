//! moat as an OCI runtime, driven the way containerd drives runc: spec,
//! create, state, start, exec, ps, kill, delete, list and run, on a busybox
//! bundle, with the JSON shapes checked against runc's own (runc runs the
//! same bundle in the same test). Bad bundles get one clear error and
//! leave nothing behind.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::oci::Runtime;
use common::{moat_binary, unique_name, Rootfs, TempDir};
use serde_json::Value;

/// A bundle: a busybox rootfs and a config.json made by `<runtime> spec`.
struct Bundle {
    dir: TempDir,
    rootfs: Rootfs,
}

impl Bundle {
    fn new(runtime: &Runtime, args: &[&str]) -> Bundle {
        let dir = TempDir::new("oci-bundle");
        let rootfs = Rootfs::new();
        let out = runtime.run(&["spec", "--bundle", dir.path().to_str().expect("utf-8")]);
        assert!(out.ok(), "{} spec failed: {}", runtime.name, out.describe());
        let path = dir.path().join("config.json");
        let mut spec: Value =
            serde_json::from_str(&fs::read_to_string(&path).expect("read config.json")).expect("json");
        spec["process"]["terminal"] = Value::Bool(false);
        // runc wants the root as an absolute path that is no symlink.
        spec["root"]["path"] = Value::String(rootfs.path().to_str().expect("utf-8").to_owned());
        spec["process"]["args"] = args.iter().map(|a| Value::String((*a).to_owned())).collect();
        fs::write(&path, serde_json::to_vec_pretty(&spec).expect("json")).expect("write config.json");
        Bundle { dir, rootfs }
    }

    fn path(&self) -> &str {
        self.dir.path().to_str().expect("utf-8")
    }

    fn edit(&self, f: impl FnOnce(&mut Value)) {
        let path = self.dir.path().join("config.json");
        let mut spec: Value = serde_json::from_str(&fs::read_to_string(&path).expect("read")).expect("json");
        f(&mut spec);
        fs::write(&path, serde_json::to_vec_pretty(&spec).expect("json")).expect("write");
    }
}

/// `value` (a state or list entry) with what must differ between two runs
/// replaced by what it must be: the id, bundle and pid the run had, a
/// creation time in RFC 3339; so that runc's and moat's compare as wholes.
fn semantic(rt: &Runtime, value: &Value, id: &str, bundle: &Bundle, pid: i32) -> Value {
    let mut value = value.clone();
    let Some(object) = value.as_object_mut() else { return value };
    let mut check = |key: &str, ok: &dyn Fn(&Value) -> bool, what: &str| {
        if let Some(v) = object.get_mut(key) {
            assert!(ok(v), "{}: {key} is {v}, not {what}", rt.name);
            *v = Value::String(format!("<{what}>"));
        }
    };
    check("id", &|v| v == id, "the id given");
    check("bundle", &|v| v == bundle.path(), "the bundle given");
    check("rootfs", &|v| v.as_str() == bundle.rootfs.path().to_str(), "the bundle's root");
    check("pid", &|v| v.as_i64() == Some(i64::from(pid)), "the pid in --pid-file");
    check(
        "created",
        &|v| v.as_str().is_some_and(|t| t.len() >= 20 && t.as_bytes()[10] == b'T' && t.ends_with('Z')),
        "an RFC 3339 time in UTC",
    );
    value
}

/// Drives one runtime through the lifecycle; returns (state, list entry,
/// ps JSON), each as `semantic` makes it, for the comparison.
fn lifecycle(rt: &Runtime) -> (Value, Value, Value) {
    let id = unique_name("life");
    let bundle = Bundle::new(
        rt,
        &["/bin/sh", "-c", "trap 'echo got-term; exit 7' TERM; echo started; while :; do sleep 1; done"],
    );
    let log = bundle.dir.path().join("out.log");
    let pid_file = bundle.dir.path().join("pid");
    let stdout = fs::File::create(&log).expect("log file");
    let created = rt
        .command(&["create", "--bundle", bundle.path(), "--pid-file", pid_file.to_str().expect("utf-8"), &id])
        .stdin(Stdio::null())
        .stdout(stdout.try_clone().expect("dup"))
        .stderr(stdout)
        .status()
        .expect("spawn create");
    assert!(created.success(), "{} create failed: {}", rt.name, fs::read_to_string(&log).unwrap_or_default());
    let pid: i32 = fs::read_to_string(&pid_file).expect("pid file").trim().parse().expect("pid");
    let state = rt.state(&id);
    assert_eq!(state["status"], "created", "{}: {state}", rt.name);
    assert_eq!(state["pid"].as_i64(), Some(i64::from(pid)), "{}: {state}", rt.name);
    assert_eq!(state["id"], id.as_str());

    let out = rt.run(&["start", &id]);
    assert!(out.ok(), "{} start: {}", rt.name, out.describe());
    rt.wait_status(&id, "running");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !fs::read_to_string(&log).unwrap_or_default().contains("started") {
        assert!(Instant::now() < deadline, "{}: the container never printed", rt.name);
        thread::sleep(Duration::from_millis(20));
    }

    let out = rt.run(&["exec", &id, "/bin/sh", "-c", "echo exec-ok; exit 5"]);
    assert_eq!((out.status, out.stdout.as_str()), (5, "exec-ok\n"), "{} exec: {}", rt.name, out.describe());

    let ps = rt.run(&["ps", "--format", "json", &id]);
    assert!(ps.ok(), "{} ps: {}", rt.name, ps.describe());
    let ps = ps.json();
    assert!(ps.as_array().is_some_and(|a| !a.is_empty()), "{} ps: {ps}", rt.name);

    let list = rt.run(&["list", "--format", "json"]);
    assert!(list.ok(), "{} list: {}", rt.name, list.describe());
    let entry = list.json().as_array().and_then(|a| a.iter().find(|e| e["id"] == id.as_str()).cloned());
    let entry = entry.unwrap_or_else(|| panic!("{} list has no {id}: {}", rt.name, list.stdout));
    assert_eq!(entry["status"], "running");

    let out = rt.run(&["kill", &id, "TERM"]);
    assert!(out.ok(), "{} kill: {}", rt.name, out.describe());
    rt.wait_status(&id, "stopped");
    assert!(fs::read_to_string(&log).unwrap_or_default().contains("got-term"), "{}: the trap did not run", rt.name);
    let out = rt.run(&["delete", &id]);
    assert!(out.ok(), "{} delete: {}", rt.name, out.describe());
    let out = rt.run(&["state", &id]);
    assert!(!out.ok(), "{}: state after delete must fail", rt.name);
    (semantic(rt, &state, &id, &bundle, pid), semantic(rt, &entry, &id, &bundle, pid), ps)
}

#[test]
fn the_lifecycle_matches_runc() {
    let moat = Runtime::moat();
    let runc = Runtime::runc();
    let (moat_state, moat_entry, moat_ps) = lifecycle(&moat);
    let (runc_state, runc_entry, runc_ps) = lifecycle(&runc);
    assert_eq!(moat_state, runc_state, "state while created\nmoat {moat_state:#}\nrunc {runc_state:#}");
    assert_eq!(moat_entry, runc_entry, "list entry while running\nmoat {moat_entry:#}\nrunc {runc_entry:#}");
    let ints = |v: &Value| v.as_array().is_some_and(|a| a.iter().all(Value::is_i64));
    assert!(ints(&moat_ps) && ints(&runc_ps), "ps --format json is a list of pids\nmoat {moat_ps}\nrunc {runc_ps}");
    // No container left behind.
    assert_eq!(moat.run(&["list", "--format", "json"]).json().as_array().map_or(0, Vec::len), 0);
}

#[test]
fn run_reports_the_exit_status() {
    let rt = Runtime::moat();
    for (script, status) in [("echo out; exit 0", 0), ("exit 3", 3), ("exit 200", 200)] {
        let bundle = Bundle::new(&rt, &["/bin/sh", "-c", script]);
        let id = unique_name("run");
        let out = rt.run(&["run", "--bundle", bundle.path(), &id]);
        assert_eq!(out.status, status, "moat run `{script}`: {}", out.describe());
        assert!(!rt.run(&["state", &id]).ok(), "run must delete the container");
    }
    let bundle = Bundle::new(&rt, &["/bin/sh", "-c", "echo hello from moat run"]);
    let out = rt.run(&["run", "--bundle", bundle.path(), &unique_name("run")]);
    assert_eq!((out.status, out.stdout.as_str()), (0, "hello from moat run\n"), "{}", out.describe());
}

/// What a failed create must not leave: a state directory or a cgroup.
fn assert_nothing_left(rt: &Runtime, id: &str) {
    let left: Vec<PathBuf> =
        fs::read_dir(rt.root.path()).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "state left behind: {left:?}");
    for hierarchy in ["/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"] {
        let cgroup = Path::new(hierarchy).join("moat").join(id);
        assert!(!cgroup.exists(), "cgroup left behind: {}", cgroup.display());
    }
}

#[test]
fn bad_bundles_get_one_clear_error_and_leave_nothing() {
    let rt = Runtime::moat();
    type Edit = Box<dyn Fn(&Bundle)>;
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "missing config.json",
            Box::new(|b| fs::remove_file(b.dir.path().join("config.json")).expect("rm")),
            "config.json",
        ),
        (
            "invalid JSON",
            Box::new(|b| fs::write(b.dir.path().join("config.json"), "{ not json").expect("write")),
            "line 1",
        ),
        ("unknown ociVersion major", Box::new(|b| b.edit(|s| s["ociVersion"] = "2.0.0".into())), "2.0.0"),
        ("missing rootfs", Box::new(|b| b.edit(|s| s["root"]["path"] = "rootfs-not-there".into())), "rootfs-not-there"),
        (
            "unsupported namespace",
            Box::new(|b| {
                b.edit(|s| {
                    let ns = s["linux"]["namespaces"].as_array_mut().expect("namespaces");
                    ns.push(serde_json::json!({"type": "user"}));
                })
            }),
            "user",
        ),
    ];
    for (what, edit, says) in cases {
        let bundle = Bundle::new(&rt, &["/bin/true"]);
        edit(&bundle);
        let id = unique_name("bad");
        let out = rt.run(&["create", "--bundle", bundle.path(), &id]);
        assert!(!out.ok(), "{what}: create must fail: {}", out.describe());
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{what}: one error line: {}", out.describe());
        assert!(lines[0].contains(says), "{what}: the error must name {says:?}: {}", out.describe());
        assert_nothing_left(&rt, &id);
    }
}

/// Docker's state paths (`/var/run/docker/runtime-moat/moby/<64 hex>`) make
/// the control socket's path longer than a Unix socket address allows.
#[test]
fn long_state_paths_work() {
    let base = TempDir::new("oci-long");
    let root = base.path().join("r".repeat(100 - base.path().as_os_str().len().min(99)));
    let rt = Runtime { name: "moat", binary: moat_binary().to_owned(), root: TempDir::new("oci-long-unused") };
    let bundle = Bundle::new(&rt, &["/bin/sh", "-c", "echo long-paths-ok"]);
    let id = "f".repeat(64);
    let out = Command::new("timeout")
        .arg("60")
        .arg(moat_binary())
        .arg("--root")
        .arg(&root)
        .args(["run", "--bundle", bundle.path(), &id])
        .stdin(Stdio::null())
        .output()
        .expect("spawn");
    assert!(root.join(&id).as_os_str().len() > 108, "the path must be too long for a socket address");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "long-paths-ok\n", "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success());
}
