//! Bundles (every rejected config gives its own message), the default spec
//! and features document, and container state under a runtime root.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

use runtime::bundle::{default_spec, features, Bundle, BundleError};
use runtime::state::{format_rfc3339, list_entries, process_alive, State, StateDir, StateError, Status};
use serde_json::{json, Value};
use tempfile::TempDir;

// ---- bundles ----

/// A config that loads: the default spec, without a terminal.
fn good_config() -> Value {
    let mut config = serde_json::to_value(default_spec()).unwrap();
    config["process"]["terminal"] = json!(false);
    config
}

/// A bundle directory with `config` as its config.json and an empty rootfs.
fn bundle_with(config: &Value) -> TempDir {
    let dir = TempDir::new().unwrap();
    fs::create_dir(dir.path().join("rootfs")).unwrap();
    fs::write(dir.path().join("config.json"), serde_json::to_vec_pretty(config).unwrap()).unwrap();
    dir
}

/// The message `Bundle::load` gives for `dir`, checked to be one line.
fn load_error(dir: &Path) -> String {
    let message = Bundle::load(dir).map(|_| ()).unwrap_err().to_string();
    assert!(!message.contains('\n'), "message is not one line: {message}");
    message
}

fn config_error(edit: impl FnOnce(&mut Value)) -> String {
    let mut config = good_config();
    edit(&mut config);
    let dir = bundle_with(&config);
    load_error(dir.path())
}

fn assert_mentions(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(message.contains(part), "{message:?} does not mention {part:?}");
    }
}

#[test]
fn good_bundle_loads_with_canonical_paths() {
    let dir = bundle_with(&good_config());
    // A path with a `..` in it, to see it canonicalized.
    let roundabout = dir.path().join("rootfs/..");
    let bundle = Bundle::load(&roundabout).unwrap();
    let canonical = fs::canonicalize(dir.path()).unwrap();
    assert_eq!(bundle.dir, canonical);
    assert_eq!(bundle.rootfs, canonical.join("rootfs"));
    assert_eq!(bundle.spec.process().as_ref().unwrap().args().as_ref().unwrap(), &["sh".to_owned()]);
}

#[test]
fn absolute_root_path_is_used_as_is() {
    let elsewhere = TempDir::new().unwrap();
    let dir = bundle_with(&json!(null));
    let mut config = good_config();
    config["root"]["path"] = json!(elsewhere.path());
    fs::write(dir.path().join("config.json"), serde_json::to_vec(&config).unwrap()).unwrap();
    let bundle = Bundle::load(dir.path()).unwrap();
    assert_eq!(bundle.rootfs, fs::canonicalize(elsewhere.path()).unwrap());
}

#[test]
fn missing_bundle_dir_is_reported() {
    let dir = TempDir::new().unwrap();
    let missing = dir.path().join("nope");
    let message = load_error(&missing);
    assert_mentions(&message, &["bundle directory", "nope", "--bundle"]);
    assert!(matches!(Bundle::load(&missing), Err(BundleError::DirMissing { .. })));
}

#[test]
fn bundle_that_is_a_file_is_reported() {
    let dir = TempDir::new().unwrap();
    let file = dir.path().join("file");
    fs::write(&file, "").unwrap();
    assert_mentions(&load_error(&file), &["is not a directory", "--bundle"]);
}

#[test]
fn missing_config_is_reported() {
    let dir = TempDir::new().unwrap();
    assert_mentions(&load_error(dir.path()), &["no config.json", "moat spec"]);
}

#[test]
fn invalid_json_names_line_and_column() {
    let dir = bundle_with(&json!(null));
    fs::write(dir.path().join("config.json"), "{\n  \"ociVersion\": \"1.0.2\",\n  oops\n}\n").unwrap();
    let message = load_error(dir.path());
    assert_mentions(&message, &["config.json", "not a valid OCI config", "line 3, column 3"]);
    assert!(!message.contains("at line 3 column"), "location given twice: {message}");
}

#[test]
fn wrong_type_names_line_and_column() {
    let dir = bundle_with(&json!(null));
    let config = "{\n\"ociVersion\": \"1.0.2\",\n\"root\": {\"path\": \"rootfs\"},\n\"process\": {\"cwd\": \"/\", \"args\": \"sh\"}\n}";
    fs::write(dir.path().join("config.json"), config).unwrap();
    assert_mentions(&load_error(dir.path()), &["invalid type", "line 4"]);
}

#[test]
fn missing_oci_version_is_reported() {
    let message = config_error(|c| {
        c.as_object_mut().unwrap().remove("ociVersion");
    });
    assert_mentions(&message, &["no \"ociVersion\"", "1.0.2"]);
}

#[test]
fn oci_version_2_is_unsupported() {
    let message = config_error(|c| c["ociVersion"] = json!("2.0.0"));
    assert_mentions(&message, &["\"2.0.0\"", "not supported", "moat supports OCI runtime spec 1.x"]);
}

#[test]
fn oci_version_that_is_not_semver_is_unsupported() {
    let message = config_error(|c| c["ociVersion"] = json!("latest"));
    assert_mentions(&message, &["\"latest\"", "1.x"]);
}

#[test]
fn oci_version_1_x_is_accepted() {
    for version in ["1.0.0", "1.0.2-dev", "1.1.0", "1.2.1"] {
        let mut config = good_config();
        config["ociVersion"] = json!(version);
        let dir = bundle_with(&config);
        Bundle::load(dir.path()).unwrap_or_else(|e| panic!("{version}: {e}"));
    }
}

#[test]
fn missing_root_is_reported() {
    let message = config_error(|c| {
        c.as_object_mut().unwrap().remove("root");
    });
    assert_mentions(&message, &["no \"root\"", "rootfs"]);
}

#[test]
fn missing_root_path_is_reported() {
    let message = config_error(|c| c["root"] = json!({"readonly": true}));
    assert_mentions(&message, &["root.path is missing"]);
}

#[test]
fn missing_rootfs_is_reported() {
    let message = config_error(|c| c["root"]["path"] = json!("no-such-rootfs"));
    assert_mentions(&message, &["root filesystem", "no-such-rootfs", "fix root.path"]);
}

#[test]
fn rootfs_that_is_a_file_is_reported() {
    let mut config = good_config();
    config["root"]["path"] = json!("config.json");
    let dir = bundle_with(&config);
    assert_mentions(&load_error(dir.path()), &["config.json", "is not a directory", "root.path"]);
}

#[test]
fn missing_process_is_reported() {
    let message = config_error(|c| {
        c.as_object_mut().unwrap().remove("process");
    });
    assert_mentions(&message, &["no \"process\"", "a container needs one"]);
}

#[test]
fn empty_or_missing_args_are_reported() {
    let message = config_error(|c| c["process"]["args"] = json!([]));
    assert_mentions(&message, &["process.args is empty"]);
    let message = config_error(|c| {
        c["process"].as_object_mut().unwrap().remove("args");
    });
    assert_mentions(&message, &["process.args is empty"]);
}

#[test]
fn relative_cwd_is_reported() {
    let message = config_error(|c| c["process"]["cwd"] = json!("work"));
    assert_mentions(&message, &["process.cwd \"work\"", "not an absolute path"]);
}

#[test]
fn supported_namespaces_are_accepted() {
    let mut config = good_config();
    config["linux"]["namespaces"] = json!([
        {"type": "pid"}, {"type": "network"}, {"type": "mount"},
        {"type": "ipc"}, {"type": "uts"}, {"type": "cgroup"},
    ]);
    let dir = bundle_with(&config);
    Bundle::load(dir.path()).unwrap();
}

#[test]
fn user_and_time_namespaces_are_unsupported() {
    for kind in ["user", "time"] {
        let message = config_error(|c| c["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": kind}]));
        assert_mentions(&message, &[&format!("namespace type {kind} is not supported by moat")]);
    }
}

#[test]
fn duplicate_namespace_is_reported() {
    let message =
        config_error(|c| c["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "ipc"}, {"type": "pid"}]));
    assert_mentions(&message, &["namespace type pid is listed more than once"]);
}

#[test]
fn network_namespace_path_must_exist() {
    let message =
        config_error(|c| c["linux"]["namespaces"] = json!([{"type": "network", "path": "/run/netns/no-such"}]));
    assert_mentions(&message, &["network namespace path \"/run/netns/no-such\" does not exist"]);
    let message = config_error(|c| c["linux"]["namespaces"] = json!([{"type": "network", "path": "netns/x"}]));
    assert_mentions(&message, &["network namespace path \"netns/x\" is not absolute"]);

    let mut config = good_config();
    config["linux"]["namespaces"] = json!([{"type": "network", "path": "/proc/self/ns/net"}]);
    let dir = bundle_with(&config);
    Bundle::load(dir.path()).unwrap();
}

#[test]
fn relative_mount_destination_is_reported() {
    let message = config_error(|c| {
        c["mounts"].as_array_mut().unwrap().push(json!({"destination": "data", "type": "tmpfs", "source": "tmpfs"}))
    });
    assert_mentions(&message, &["mount destination \"data\"", "not an absolute path"]);
}

// ---- the default spec and features ----

#[test]
fn default_spec_round_trips_and_loads() {
    let spec = default_spec();
    let text = serde_json::to_string_pretty(&spec).unwrap();
    let parsed: oci_spec::runtime::Spec = serde_json::from_str(&text).unwrap();
    assert_eq!(parsed, spec);

    let dir = TempDir::new().unwrap();
    fs::write(dir.path().join("config.json"), &text).unwrap();
    fs::create_dir(dir.path().join("rootfs")).unwrap();
    let bundle = Bundle::load(dir.path()).unwrap();
    assert_eq!(bundle.spec, spec);
}

fn keys(value: &Value) -> BTreeSet<&str> {
    value.as_object().unwrap().keys().map(String::as_str).collect()
}

fn strings(value: &Value) -> Vec<&str> {
    value.as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect()
}

#[test]
fn features_document_has_runc_shape() {
    let features = features();
    assert_eq!(
        keys(&features),
        BTreeSet::from(["ociVersionMin", "ociVersionMax", "hooks", "mountOptions", "linux", "annotations"])
    );
    assert_eq!(features["ociVersionMin"], "1.0.0");
    assert!(features["ociVersionMax"].as_str().unwrap().starts_with("1."));
    assert_eq!(strings(&features["hooks"]), ["prestart", "createRuntime", "poststart", "poststop"]);
    assert!(strings(&features["mountOptions"]).contains(&"ro"));

    let linux = &features["linux"];
    assert_eq!(keys(linux), BTreeSet::from(["namespaces", "capabilities", "cgroup", "seccomp", "apparmor", "selinux"]));
    let namespaces: BTreeSet<&str> = strings(&linux["namespaces"]).into_iter().collect();
    assert_eq!(namespaces, BTreeSet::from(["cgroup", "ipc", "mount", "network", "pid", "uts"]));
    assert!(strings(&linux["capabilities"]).contains(&"CAP_SYS_ADMIN"));
    assert_eq!(linux["cgroup"]["v1"], true);
    assert_eq!(linux["cgroup"]["v2"], true);
    assert_eq!(linux["seccomp"]["enabled"], true);
    assert!(features["annotations"].is_object());
}

// ---- container state ----

/// The keys, in order, of `runc state` for a container whose config has
/// annotations, as printed by runc 1.1.5 (`runc --root R state ID`) on
/// Debian 12; without annotations runc leaves `annotations` out. `runc list
/// --format json` prints the same keys, with `owner` the user's name.
const RUNC_STATE_KEYS: [&str; 9] =
    ["ociVersion", "id", "pid", "status", "bundle", "rootfs", "created", "annotations", "owner"];

fn sample_state() -> State {
    State {
        oci_version: "1.1.0".to_owned(),
        id: "t1".to_owned(),
        status: Status::Created,
        pid: Some(3977),
        bundle: PathBuf::from("/tmp/rs"),
        rootfs: PathBuf::from("/tmp/rs/rootfs"),
        created: "2026-12-01T07:21:46.844545618Z".to_owned(),
        annotations: [("org.example.k".to_owned(), "v".to_owned())].into(),
        owner: String::new(),
    }
}

/// The keys of a JSON object in the order they appear in its text.
fn keys_in_order(text: &str) -> Vec<String> {
    let value: Value = serde_json::from_str(text).unwrap();
    let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
    keys.sort_by_key(|k| text.find(&format!("\"{k}\":")).unwrap());
    keys
}

#[test]
fn status_serializes_as_oci_strings() {
    let all = [Status::Creating, Status::Created, Status::Running, Status::Paused, Status::Stopped];
    let names = ["creating", "created", "running", "paused", "stopped"];
    for (status, name) in all.into_iter().zip(names) {
        assert_eq!(serde_json::to_value(status).unwrap(), json!(name));
        assert_eq!(status.to_string(), name);
        assert_eq!(serde_json::from_value::<Status>(json!(name)).unwrap(), status);
    }
}

#[test]
fn state_json_has_runc_keys_and_types() {
    let text = serde_json::to_string(&sample_state()).unwrap();
    assert_eq!(keys_in_order(&text), RUNC_STATE_KEYS);
    let value: Value = serde_json::from_str(&text).unwrap();
    for key in ["ociVersion", "id", "status", "bundle", "rootfs", "created", "owner"] {
        assert!(value[key].is_string(), "{key} is not a string in {text}");
    }
    assert!(value["pid"].is_i64());
    assert!(value["annotations"].is_object());
    assert_eq!(value["status"], "created");

    let mut plain = sample_state();
    plain.annotations.clear();
    let text = serde_json::to_string(&plain).unwrap();
    let expected: Vec<&str> = RUNC_STATE_KEYS.into_iter().filter(|k| *k != "annotations").collect();
    assert_eq!(keys_in_order(&text), expected);
}

#[test]
fn stopped_state_has_pid_zero_like_runc() {
    let mut state = sample_state();
    state.pid = None;
    state.status = Status::Stopped;
    let value = serde_json::to_value(&state).unwrap();
    assert_eq!(value["pid"], 0);
    let back: State = serde_json::from_value(value).unwrap();
    assert_eq!(back, state);
}

#[test]
fn runc_state_output_parses() {
    // Printed by `runc state` for a stopped container.
    let text = r#"{"ociVersion":"1.0.2-dev","id":"t2","pid":0,"status":"stopped","bundle":"/tmp/rs",
        "rootfs":"/tmp/rs/rootfs","created":"2026-12-01T07:21:50.721051953Z",
        "annotations":{"org.example.k":"v"},"owner":""}"#;
    let state: State = serde_json::from_str(text).unwrap();
    assert_eq!(state.pid, None);
    assert_eq!(state.status, Status::Stopped);
    assert_eq!(state.annotations["org.example.k"], "v");
}

#[test]
fn new_state_comes_from_the_bundle() {
    let mut config = good_config();
    config["annotations"] = json!({"org.example.k": "v"});
    let dir = bundle_with(&config);
    let bundle = Bundle::load(dir.path()).unwrap();
    let state = State::new("c1", &bundle);
    assert_eq!(state.id, "c1");
    assert_eq!(state.status, Status::Creating);
    assert_eq!(state.pid, None);
    assert_eq!(state.bundle, bundle.dir);
    assert_eq!(state.rootfs, bundle.rootfs);
    assert_eq!(state.annotations["org.example.k"], "v");
    assert_eq!(state.owner, "");
    let created = state.created.as_bytes();
    assert!(state.created.ends_with('Z') && created[4] == b'-' && created[10] == b'T', "{}", state.created);
}

#[test]
fn rfc3339_matches_go_rfc3339nano() {
    assert_eq!(format_rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
    let t = UNIX_EPOCH + Duration::new(1_796_109_706, 844_545_618);
    assert_eq!(format_rfc3339(t), "2026-12-01T07:21:46.844545618Z");
    let t = UNIX_EPOCH + Duration::new(1_709_251_199, 500_000_000);
    assert_eq!(format_rfc3339(t), "2024-02-29T23:59:59.5Z");
    assert_eq!(format_rfc3339(UNIX_EPOCH + Duration::from_secs(951_868_800)), "2000-03-01T00:00:00Z");
    assert_eq!(format_rfc3339(UNIX_EPOCH - Duration::from_secs(1)), "1970-01-01T00:00:00Z");
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn state_dir_lifecycle() {
    let tmp = TempDir::new().unwrap();
    let root = tmp.path().join("run/moat");
    let dir = StateDir::create(&root, "c1").unwrap();
    assert_eq!(mode(&root), 0o711);
    assert_eq!(mode(dir.path()), 0o700);
    assert_eq!(dir.path(), root.join("c1"));
    assert_eq!(dir.control_socket(), root.join("c1/control.sock"));
    assert_eq!(dir.id(), "c1");

    let mut state = sample_state();
    state.id = "c1".to_owned();
    dir.save(&state).unwrap();
    let opened = StateDir::open(&root, "c1").unwrap();
    assert_eq!(opened.load().unwrap(), state);

    state.status = Status::Running;
    opened.save(&state).unwrap();
    assert_eq!(dir.load().unwrap().status, Status::Running);

    assert_eq!(StateDir::list(&root).unwrap(), [state]);
    opened.remove().unwrap();
    assert!(!root.join("c1").exists());
    assert!(StateDir::list(&root).unwrap().is_empty());
}

#[test]
fn duplicate_id_is_refused() {
    let tmp = TempDir::new().unwrap();
    StateDir::create(tmp.path(), "c1").unwrap();
    let err = StateDir::create(tmp.path(), "c1").unwrap_err();
    assert!(matches!(err, StateError::Exists { .. }));
    assert_mentions(&err.to_string(), &["container ID c1 already exists", "moat delete c1"]);
}

#[test]
fn opening_a_missing_id_is_refused() {
    let tmp = TempDir::new().unwrap();
    let err = StateDir::open(tmp.path(), "c1").unwrap_err();
    assert!(matches!(err, StateError::NotExist { .. }));
    assert_mentions(&err.to_string(), &["container ID c1 does not exist", "moat list"]);
    // A file or symlink with the ID's name is not a container either.
    fs::write(tmp.path().join("f"), "").unwrap();
    std::os::unix::fs::symlink("/", tmp.path().join("l")).unwrap();
    assert!(matches!(StateDir::open(tmp.path(), "f"), Err(StateError::NotExist { .. })));
    assert!(matches!(StateDir::open(tmp.path(), "l"), Err(StateError::NotExist { .. })));
}

#[test]
fn bad_ids_are_refused() {
    let tmp = TempDir::new().unwrap();
    let long = "a".repeat(1025);
    for id in ["../x", "a/b", "", ".", "..", "a b", "é", "x\n", long.as_str()] {
        let err = StateDir::create(tmp.path(), id).unwrap_err();
        assert!(matches!(err, StateError::InvalidId { .. }), "{id:?}: {err}");
        let message = err.to_string();
        assert!(!message.contains('\n') && message.starts_with("invalid container ID"), "{message}");
        assert!(matches!(StateDir::open(tmp.path(), id), Err(StateError::InvalidId { .. })));
    }
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
    for id in ["a+b.c-d_E9", "a".repeat(255).as_str()] {
        StateDir::create(tmp.path(), id).unwrap();
    }
    // Valid, but longer than the file system allows a name to be.
    let err = StateDir::create(tmp.path(), &"a".repeat(1024)).unwrap_err();
    assert!(matches!(err, StateError::InvalidId { .. }), "{err}");
    assert_mentions(&err.to_string(), &["too long for a file name"]);
}

#[test]
fn save_is_atomic_and_leaves_no_temp_files() {
    let tmp = TempDir::new().unwrap();
    let dir = StateDir::create(tmp.path(), "c1").unwrap();
    let mut state = sample_state();
    for n in 0..20 {
        state.pid = Some(n + 1);
        dir.save(&state).unwrap();
    }
    let names: Vec<String> =
        fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(names, ["state.json"]);
    assert_eq!(dir.load().unwrap().pid, Some(20));
}

#[test]
fn failed_save_leaves_old_state_and_no_temp_file() {
    let tmp = TempDir::new().unwrap();
    let dir = StateDir::create(tmp.path(), "c1").unwrap();
    dir.save(&sample_state()).unwrap();
    // A directory in the way makes the rename fail.
    fs::remove_file(dir.path().join("state.json")).unwrap();
    fs::create_dir(dir.path().join("state.json")).unwrap();
    fs::write(dir.path().join("state.json/x"), "").unwrap();
    let err = dir.save(&sample_state()).unwrap_err();
    assert_mentions(&err.to_string(), &["cannot save container state", "state.json"]);
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn corrupt_state_is_reported() {
    let tmp = TempDir::new().unwrap();
    let dir = StateDir::create(tmp.path(), "c1").unwrap();
    let err = dir.load().unwrap_err();
    assert_mentions(&err.to_string(), &["cannot read container state", "moat delete --force"]);
    fs::write(dir.path().join("state.json"), "{\"id\":").unwrap();
    let err = dir.load().unwrap_err();
    assert!(matches!(err, StateError::Corrupt { .. }));
    assert_mentions(&err.to_string(), &["is corrupt", "moat delete --force"]);
}

#[test]
fn list_skips_entries_without_state_and_sorts() {
    let tmp = TempDir::new().unwrap();
    assert!(StateDir::list(&tmp.path().join("missing")).unwrap().is_empty());
    for id in ["b", "a", "c"] {
        let dir = StateDir::create(tmp.path(), id).unwrap();
        if id != "c" {
            let mut state = sample_state();
            state.id = id.to_owned();
            dir.save(&state).unwrap();
        }
    }
    fs::write(tmp.path().join("stray-file"), "").unwrap();
    fs::create_dir(tmp.path().join("bad id")).unwrap();
    let ids: Vec<String> = StateDir::list(tmp.path()).unwrap().into_iter().map(|s| s.id).collect();
    assert_eq!(ids, ["a", "b"]);
}

#[test]
fn list_entries_fill_owner_and_notice_dead_sandboxes() {
    let tmp = TempDir::new().unwrap();
    let mut child = Command::new("true").spawn().unwrap();
    let dead_pid = child.id() as i32;
    child.wait().unwrap();

    let alive = StateDir::create(tmp.path(), "alive").unwrap();
    let mut state = sample_state();
    state.id = "alive".to_owned();
    state.status = Status::Running;
    state.pid = Some(std::process::id() as i32);
    alive.save(&state).unwrap();
    let dead = StateDir::create(tmp.path(), "dead").unwrap();
    state.id = "dead".to_owned();
    state.pid = Some(dead_pid);
    dead.save(&state).unwrap();

    let owner = nix::unistd::User::from_uid(nix::unistd::getuid())
        .unwrap()
        .map_or_else(|| format!("#{}", nix::unistd::getuid()), |u| u.name);
    let entries = list_entries(tmp.path()).unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!((entries[0].status, entries[0].pid), (Status::Running, Some(std::process::id() as i32)));
    assert_eq!((entries[1].status, entries[1].pid), (Status::Stopped, None));
    assert!(entries.iter().all(|e| e.owner == owner));
    let text = serde_json::to_string(&entries[1]).unwrap();
    assert_eq!(keys_in_order(&text), RUNC_STATE_KEYS);
    // state.json itself keeps runc's empty owner.
    assert_eq!(dead.load().unwrap().owner, "");
}

#[test]
fn process_alive_sees_live_dead_and_zombie_processes() {
    assert!(process_alive(std::process::id() as i32));
    assert!(process_alive(1), "init exists (EPERM, if any, counts as alive)");
    assert!(!process_alive(0));
    assert!(!process_alive(-1));

    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id() as i32;
    // Not reaped yet: wait until it is a zombie.
    let stat = format!("/proc/{pid}/stat");
    let mut zombie = false;
    for _ in 0..5000 {
        let text = fs::read_to_string(&stat).unwrap();
        if text[text.rfind(')').unwrap() + 1..].trim_start().starts_with('Z') {
            zombie = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(zombie, "child {pid} never became a zombie");
    assert!(!process_alive(pid));
    child.wait().unwrap();
    assert!(!process_alive(pid));
}
