//! `moat install` registers moat in Docker's daemon.json and keeps
//! everything else there; a broken daemon.json is refused, not overwritten.

mod common;

use std::fs;

use common::{moat_binary, run_moat, TempDir};
use serde_json::Value;

#[test]
fn install_adds_the_runtime_and_keeps_the_rest() {
    let dir = TempDir::new("install");
    let config = dir.path().join("docker/daemon.json");
    fs::create_dir_all(config.parent().expect("parent")).expect("mkdir");
    fs::write(&config, r#"{"storage-driver":"overlay2","runtimes":{"runsc":{"path":"/usr/bin/runsc"}}}"#)
        .expect("write");
    let path = config.to_str().expect("utf-8");
    let out = run_moat(&["install", "--config", path, "--runtime-name", "sandboxed", "--runtime-arg", "--debug"]);
    assert_eq!(out.status, 0, "{}", out.describe());
    assert!(out.stdout.contains("RuntimeClass") && out.stdout.contains("BinaryName"), "{}", out.describe());
    let json: Value = serde_json::from_str(&fs::read_to_string(&config).expect("read")).expect("json");
    assert_eq!(json["storage-driver"], "overlay2");
    assert_eq!(json["runtimes"]["runsc"]["path"], "/usr/bin/runsc");
    assert_eq!(json["runtimes"]["sandboxed"]["path"], moat_binary());
    assert_eq!(json["runtimes"]["sandboxed"]["runtimeArgs"], serde_json::json!(["--debug"]));

    // A missing file is created.
    let fresh = dir.path().join("new/daemon.json");
    let out = run_moat(&["install", "--config", fresh.to_str().expect("utf-8")]);
    assert_eq!(out.status, 0, "{}", out.describe());
    let json: Value = serde_json::from_str(&fs::read_to_string(&fresh).expect("read")).expect("json");
    assert_eq!(json["runtimes"]["moat"]["path"], moat_binary());

    // Broken JSON is left as it is.
    fs::write(&config, "{ broken").expect("write");
    let out = run_moat(&["install", "--config", path]);
    assert_ne!(out.status, 0, "{}", out.describe());
    assert!(out.stderr.contains("not valid JSON"), "{}", out.describe());
    assert_eq!(fs::read_to_string(&config).expect("read"), "{ broken");
}
