//! Driving moat as an OCI runtime from tests: a runtime root, busybox
//! bundles made with `moat spec`, and `create` with its stdio on a file
//! (a pipe would stay open, held by the container, after create returns).

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use super::{moat_binary, Rootfs};

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
/// `console` (a file); panics with what it printed if create fails.
pub fn create(root: &Path, bundle: &Path, id: &str, console: &Path) {
    let file = fs::File::create(console).expect("console file");
    let created = Command::new("timeout")
        .arg("60")
        .arg(moat_binary())
        .arg("--root")
        .arg(root)
        .args(["create", "--bundle", bundle.to_str().expect("utf-8"), id])
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("dup"))
        .stderr(file)
        .status()
        .expect("spawn create");
    assert!(created.success(), "create: {}", fs::read_to_string(console).unwrap_or_default());
}

/// The container's status, from `moat state`.
pub fn status(root: &Path, id: &str) -> String {
    let out = moat_at(root, &["state", id]);
    assert!(out.status.success(), "state: {}", String::from_utf8_lossy(&out.stderr));
    let state: Value = serde_json::from_slice(&out.stdout).expect("state json");
    state["status"].as_str().unwrap_or_default().to_owned()
}
