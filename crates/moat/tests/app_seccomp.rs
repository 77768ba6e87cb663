//! The OCI spec's `linux.seccomp` enforced on the app by the Sentry: busybox
//! bundles run with `moat run` under an errno rule, Docker's default profile,
//! kill, trap and log rules, each checked against the same script without it.

mod common;

use std::fs;
use std::process::{Command, Stdio};

use common::{moat_binary, unique_name, Rootfs, TempDir};
use serde_json::{json, Value};

/// Podman's copy of Docker's default profile, in Docker's source format.
const CONTAINERS_PROFILE: &str = "/usr/share/containers/seccomp.json";

/// A busybox bundle made by `moat spec`, running `sh -c SCRIPT`.
struct Bundle {
    dir: TempDir,
    _rootfs: Rootfs,
}

impl Bundle {
    fn new(script: &str, seccomp: Option<Value>) -> Bundle {
        let dir = TempDir::new("seccomp-bundle");
        let rootfs = Rootfs::new();
        let out =
            Command::new(moat_binary()).args(["spec", "--bundle"]).arg(dir.path()).output().expect("spawn moat spec");
        assert!(out.status.success(), "moat spec: {}", String::from_utf8_lossy(&out.stderr));
        let path = dir.path().join("config.json");
        let mut spec: Value = serde_json::from_slice(&fs::read(&path).expect("read config.json")).expect("json");
        spec["process"]["terminal"] = Value::Bool(false);
        spec["root"]["path"] = Value::String(rootfs.path().to_str().expect("utf-8").to_owned());
        // The scripts write to /tmp, which belongs to the root (runc's default is read-only).
        spec["root"]["readonly"] = Value::Bool(false);
        spec["process"]["args"] = json!(["/bin/sh", "-c", script]);
        if let Some(seccomp) = seccomp {
            spec["linux"]["seccomp"] = seccomp;
        }
        fs::write(&path, serde_json::to_vec_pretty(&spec).expect("json")).expect("write config.json");
        Bundle { dir, _rootfs: rootfs }
    }

    /// The capabilities `moat spec` gives the process, which decide parts of
    /// Docker's profile.
    fn capabilities(&self) -> Vec<String> {
        let spec: Value =
            serde_json::from_slice(&fs::read(self.dir.path().join("config.json")).expect("read")).expect("json");
        let caps = spec["process"]["capabilities"]["bounding"].as_array().cloned().unwrap_or_default();
        caps.iter().filter_map(|c| c.as_str().map(str::to_owned)).collect()
    }

    /// Gives the process `caps` too (bounding, effective and permitted).
    fn add_capabilities(&self, caps: &[&str]) {
        let path = self.dir.path().join("config.json");
        let mut spec: Value = serde_json::from_slice(&fs::read(&path).expect("read")).expect("json");
        for set in ["bounding", "effective", "permitted"] {
            let list = spec["process"]["capabilities"][set].as_array_mut().expect("a capability list");
            list.extend(caps.iter().map(|c| json!(c)));
        }
        fs::write(&path, serde_json::to_vec_pretty(&spec).expect("json")).expect("write");
    }

    fn set_seccomp(&self, seccomp: Value) {
        let path = self.dir.path().join("config.json");
        let mut spec: Value = serde_json::from_slice(&fs::read(&path).expect("read")).expect("json");
        spec["linux"]["seccomp"] = seccomp;
        fs::write(&path, serde_json::to_vec_pretty(&spec).expect("json")).expect("write");
    }
}

struct Out {
    status: i32,
    stdout: String,
    stderr: String,
    /// The runtime's `--log` file: where the Sentry's diagnostics go.
    log: String,
}

impl Out {
    fn describe(&self) -> String {
        format!("status {}\nstdout: {}\nstderr: {}\nlog: {}", self.status, self.stdout, self.stderr, self.log)
    }
}

/// `moat --root R --log L run --bundle B ID`, to the end.
fn run(bundle: &Bundle) -> Out {
    let root = TempDir::new("seccomp-root");
    let log = bundle.dir.path().join("moat.log");
    let out = Command::new("timeout")
        .arg("60")
        .arg(moat_binary())
        .arg("--root")
        .arg(root.path())
        .arg("--log")
        .arg(&log)
        .args(["run", "--bundle"])
        .arg(bundle.dir.path())
        .arg(unique_name("seccomp"))
        .stdin(Stdio::null())
        .output()
        .expect("spawn moat run");
    Out {
        status: out.status.code().unwrap_or(128),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        log: fs::read_to_string(&log).unwrap_or_default(),
    }
}

/// A profile allowing everything but the rules given.
fn allow_all_but(rules: Value) -> Value {
    json!({ "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"], "syscalls": rules })
}

#[test]
fn an_errno_rule_refuses_mkdir_and_nothing_else() {
    let script = "echo start; mkdir /tmp/x; echo mkdir=$?; touch /tmp/y && ls /tmp";
    let profile = allow_all_but(json!([
        { "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1 }
    ]));
    let bundle = Bundle::new(script, Some(profile));
    let out = run(&bundle);
    assert_eq!(out.status, 0, "{}", out.describe());
    assert_eq!(out.stdout, "start\nmkdir=1\ny\n", "{}", out.describe());
    assert!(out.stderr.contains("Operation not permitted"), "mkdir must fail with EPERM: {}", out.describe());

    let free = run(&Bundle::new(script, None));
    assert_eq!(free.stdout, "start\nmkdir=0\nx\ny\n", "without the profile: {}", free.describe());
}

/// Docker's default profile as Docker puts it in an OCI spec: the source
/// format's entries resolved for x86-64 and the process's capabilities.
fn docker_default_profile(capabilities: &[String]) -> Value {
    let text = fs::read_to_string(CONTAINERS_PROFILE).unwrap_or_else(|e| {
        panic!(
            "cannot read Docker's default seccomp profile at {CONTAINERS_PROFILE} ({e}): \
             install Debian's golang-github-containers-common"
        )
    });
    let source: Value = serde_json::from_str(&text).expect("the profile is JSON");
    let list = |v: &Value, key: &str| -> Vec<String> {
        v[key].as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect()).unwrap_or_default()
    };
    let has_cap = |c: &String| capabilities.contains(c);
    let mut syscalls = Vec::new();
    for entry in source["syscalls"].as_array().expect("a syscalls list") {
        let (includes, excludes) = (&entry["includes"], &entry["excludes"]);
        let arches = list(includes, "arches");
        let included = (arches.is_empty() || arches.iter().any(|a| a == "amd64"))
            && list(includes, "caps").iter().all(has_cap)
            && !list(excludes, "arches").iter().any(|a| a == "amd64")
            && !list(excludes, "caps").iter().any(has_cap);
        if !included {
            continue;
        }
        let mut call = json!({ "names": entry["names"], "action": entry["action"] });
        for key in ["errnoRet", "args"] {
            if !entry[key].is_null() {
                call[key] = entry[key].clone();
            }
        }
        syscalls.push(call);
    }
    json!({
        "defaultAction": source["defaultAction"],
        // Podman's copy answers ENOSYS by default; Docker's own, EPERM.
        "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": syscalls,
    })
}

#[test]
fn dockers_default_profile_runs_a_shell_and_refuses_admin_calls() {
    let script = "echo ok; ls /; hostname renamed; echo hostname=$?; chroot / /bin/true; echo chroot=$?";
    let bundle = Bundle::new(script, None);
    // Docker's profile for `moat spec`'s capabilities, which lack
    // CAP_SYS_ADMIN and CAP_SYS_CHROOT; the process gets those, so that the
    // profile alone refuses the calls.
    let profile = docker_default_profile(&bundle.capabilities());
    bundle.add_capabilities(&["CAP_SYS_ADMIN", "CAP_SYS_CHROOT"]);
    let free = run(&bundle);
    assert!(free.stdout.contains("hostname=0"), "without a profile sethostname works: {}", free.describe());

    assert_eq!(profile["defaultAction"], "SCMP_ACT_ERRNO");
    assert!(profile["syscalls"].as_array().map_or(0, Vec::len) > 10, "an allow list: {profile}");
    bundle.set_seccomp(profile);
    let out = run(&bundle);
    assert_eq!(out.status, 0, "{}", out.describe());
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.first(), Some(&"ok"), "{}", out.describe());
    assert!(lines.contains(&"bin") && lines.contains(&"etc"), "ls / works: {}", out.describe());
    // sethostname needs CAP_SYS_ADMIN in Docker's profile; chroot, CAP_SYS_CHROOT.
    assert!(lines.contains(&"hostname=1") && lines.contains(&"chroot=1"), "{}", out.describe());
    let refusals = out.stderr.matches("Operation not permitted").count();
    assert_eq!(refusals, 2, "hostname and chroot get EPERM: {}", out.describe());
}

#[test]
fn a_kill_rule_kills_the_caller_with_sigsys() {
    for action in ["SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD"] {
        // sync(2): the shell never calls it, the sync applet does.
        let profile = allow_all_but(json!([{ "names": ["sync"], "action": action }]));
        // A child dies of it and the shell goes on; then the shell itself.
        let bundle = Bundle::new("echo before; sync; echo child=$?; exec sync", Some(profile));
        let out = run(&bundle);
        assert_eq!(out.status, 128 + 31, "{action}: the container dies of SIGSYS: {}", out.describe());
        assert_eq!(out.stdout, "before\nchild=159\n", "{action}: {}", out.describe());
        assert!(out.log.contains("killed at syscall sync (162)"), "{action}: the kill is logged: {}", out.describe());
    }
}

#[test]
fn a_trap_rule_sends_a_catchable_sigsys() {
    let profile = allow_all_but(json!([{ "names": ["chdir"], "action": "SCMP_ACT_TRAP" }]));
    // cd is a shell builtin: the shell's own chdir is trapped.
    let bundle = Bundle::new("trap 'echo caught SIGSYS' SYS; cd /tmp; echo cd=$?; pwd", Some(profile.clone()));
    let out = run(&bundle);
    assert_eq!(out.status, 0, "{}", out.describe());
    assert_eq!(out.stdout, "caught SIGSYS\ncd=2\n/\n", "{}", out.describe());
    assert!(out.stderr.contains("Function not implemented"), "chdir returns ENOSYS: {}", out.describe());

    // Uncaught, it kills.
    let out = run(&Bundle::new("echo before; cd /tmp; echo after", Some(profile)));
    assert_eq!((out.status, out.stdout.as_str()), (128 + 31, "before\n"), "{}", out.describe());
}

#[test]
fn a_log_rule_allows_and_logs_once() {
    let profile = allow_all_but(json!([{ "names": ["mkdir"], "action": "SCMP_ACT_LOG" }]));
    let bundle = Bundle::new("mkdir /tmp/a /tmp/b && ls /tmp", Some(profile));
    let out = run(&bundle);
    assert_eq!((out.status, out.stdout.as_str()), (0, "a\nb\n"), "{}", out.describe());
    assert_eq!(out.log.matches("called mkdir (83), allowed and logged").count(), 1, "{}", out.describe());
}

#[test]
fn a_notify_rule_is_a_create_error() {
    let profile = allow_all_but(json!([{ "names": ["mkdir"], "action": "SCMP_ACT_NOTIFY" }]));
    let out = run(&Bundle::new("echo should not run", Some(profile)));
    assert_ne!(out.status, 0, "{}", out.describe());
    assert!(out.stdout.is_empty(), "{}", out.describe());
    assert!(
        format!("{}{}", out.stderr, out.log).contains("SCMP_ACT_NOTIFY is not supported"),
        "the error names the action: {}",
        out.describe()
    );
}

/// errnoRet values that Linux uses inside the kernel for restarts (512–516)
/// reach the app once, as under runc; the Sentry keeps its own restarts apart
/// from errno values, so a rule cannot make it restart a call forever.
#[test]
fn an_errno_rule_with_a_restart_number_fails_the_call_once() {
    let probe = common::native::probe_with("errno_ret", &["-static"]);
    let profile = allow_all_but(json!([
        { "names": ["sysinfo"], "action": "SCMP_ACT_ERRNO", "errnoRet": 512 },
        { "names": ["times"], "action": "SCMP_ACT_ERRNO", "errnoRet": 514 }
    ]));
    let bundle = Bundle::new("/opt/errno_ret", Some(profile));
    fs::create_dir_all(bundle._rootfs.host_path("opt")).expect("mkdir opt in the rootfs");
    fs::copy(&probe, bundle._rootfs.host_path("opt/errno_ret")).expect("copy the probe into the rootfs");
    let out = run(&bundle);
    assert_eq!(out.status, 0, "{}", out.describe());
    assert_eq!(
        out.stdout,
        "sysinfo: -1 errno 512\ntimes: -1 errno 514\nsysinfo: -1 errno 512\ntimes: -1 errno 514\n",
        "{}",
        out.describe()
    );
}
