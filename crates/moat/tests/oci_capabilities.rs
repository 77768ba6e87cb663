//! The OCI process spec's capabilities and noNewPrivileges, and
//! `linux.sysctl`, made real inside the Sentry, checked from inside busybox
//! containers run with `moat run`: Docker's 14 capabilities show in
//! /proc/self/status and allow what they should and nothing more, root with
//! none cannot touch what is not its own, no_new_privs sticks and stops a
//! set-user-ID program, exec'd processes get init's sets, and sysctls show
//! under /proc/sys. runc runs the capability scripts too, and must print
//! the same.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use common::native::probe_with;
use common::oci::{self, busybox_bundle, moat_at};
use common::{unique_name, Rootfs, TempDir};
use serde_json::{json, Value};

/// What Docker gives a container's process by default.
const DOCKER_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// DOCKER_CAPABILITIES as /proc/PID/status shows them.
const DOCKER_MASK: &str = "00000000a80425fb";

/// `process.capabilities` with `list` in the bounding, effective and
/// permitted sets, as Docker writes it.
fn capabilities(list: &[&str]) -> Value {
    json!({ "bounding": list, "effective": list, "permitted": list, "inheritable": [], "ambient": [] })
}

struct Run {
    status: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn describe(&self) -> String {
        format!("status {}\nstdout:\n{}stderr:\n{}", self.status, self.stdout, self.stderr)
    }
}

fn finished(out: std::process::Output) -> Run {
    Run {
        status: out.status.code().unwrap_or(128),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The host's runc, which the capability scripts are compared with.
fn runc() -> &'static str {
    ["/usr/sbin/runc", "/usr/bin/runc"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("these tests compare with runc: install Debian's runc (apt-get install runc)")
}

/// Which runtime runs a container.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Runtime {
    Moat,
    Runc,
}

/// Runs `sh -c SCRIPT` to its end in a fresh busybox container (`setup`
/// may add files to its rootfs; `edit` changes its spec) under `runtime`.
/// The root is read-only (`moat spec`'s default) and /tmp a tmpfs, as
/// Docker's `--read-only --tmpfs /tmp` make them.
fn run_in(runtime: Runtime, script: &str, setup: impl FnOnce(&Rootfs), edit: impl FnOnce(&mut Value)) -> Run {
    let dir = TempDir::new("oci-caps");
    let root = dir.path().join("root");
    let bundle = dir.path().join("bundle");
    let rootfs = Rootfs::new();
    setup(&rootfs);
    busybox_bundle(&root, &bundle, &rootfs, &["/bin/sh", "-c", script], |s| {
        let tmp = json!({ "destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"] });
        s["mounts"].as_array_mut().expect("mounts").push(tmp);
        edit(s);
    });
    let id = unique_name("caps");
    let bundle = bundle.to_str().expect("utf-8");
    match runtime {
        Runtime::Moat => finished(moat_at(&root, &["run", "--bundle", bundle, &id])),
        Runtime::Runc => finished(
            Command::new("timeout")
                .args(["60", runc(), "--root"])
                .arg(&root)
                .args(["run", "--bundle", bundle, &id])
                .stdin(Stdio::null())
                .output()
                .expect("spawn runc"),
        ),
    }
}

/// `run_in` under moat and under runc, which must print the same; moat's run.
fn run_like_runc(script: &str, setup: impl Fn(&Rootfs), edit: impl Fn(&mut Value)) -> Run {
    let moat = run_in(Runtime::Moat, script, &setup, &edit);
    let runc = run_in(Runtime::Runc, script, &setup, &edit);
    assert_eq!(moat.stdout, runc.stdout, "moat and runc differ\nmoat {}\nrunc {}", moat.describe(), runc.describe());
    assert_eq!(moat.status, runc.status, "moat {}\nrunc {}", moat.describe(), runc.describe());
    moat
}

fn field<'a>(out: &'a Run, name: &str) -> &'a str {
    let prefix = format!("{name}:");
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {name} line: {}", out.describe()))
}

#[test]
fn dockers_capabilities_are_what_the_container_holds() {
    let script = "grep Cap /proc/self/status
        hostname renamed; echo hostname=$?
        chroot / true; echo chroot=$?
        touch /tmp/f && chmod 000 /tmp/f && cat /tmp/f; echo cat=$?
        chown 1:1 /tmp/f; echo chown=$?";
    let out = run_like_runc(script, |_| {}, |s| s["process"]["capabilities"] = capabilities(DOCKER_CAPABILITIES));
    for set in ["CapPrm", "CapEff", "CapBnd"] {
        assert_eq!(field(&out, set), DOCKER_MASK, "{set}: {}", out.describe());
    }
    for set in ["CapInh", "CapAmb"] {
        assert_eq!(field(&out, set), "0000000000000000", "{set}: {}", out.describe());
    }
    // No CAP_SYS_ADMIN: the UTS names stay; CAP_SYS_CHROOT, CAP_DAC_OVERRIDE
    // and CAP_CHOWN are there.
    assert!(out.stdout.contains("hostname=1\n"), "{}", out.describe());
    assert!(out.stderr.contains("Operation not permitted"), "sethostname gets EPERM: {}", out.describe());
    for ok in ["chroot=0", "cat=0", "chown=0"] {
        assert!(out.stdout.contains(ok), "{ok}: {}", out.describe());
    }
}

#[test]
fn root_without_capabilities_cannot_touch_what_is_not_its_own() {
    let script = "grep CapEff /proc/self/status
        touch /tmp/f; echo touch=$?
        chown 1:1 /tmp/f; echo chown=$?
        chmod 000 /tmp/f; echo chmod=$?
        cat /tmp/f; echo cat=$?
        cat /root/secret; echo secret=$?
        kill -0 1; echo kill-self=$?";
    let secret = |rootfs: &Rootfs| {
        let path = rootfs.host_path("root/secret");
        fs::write(&path, "secret\n").expect("write the secret");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
        std::os::unix::fs::chown(&path, Some(1000), Some(1000)).expect("chown");
    };
    let out = run_like_runc(script, secret, |s| s["process"]["capabilities"] = capabilities(&[]));
    assert_eq!(field(&out, "CapEff"), "0000000000000000", "{}", out.describe());
    // Its own file root may create and chmod; giving it away needs
    // CAP_CHOWN, reading it at mode 000 (or another's) CAP_DAC_OVERRIDE.
    for line in ["touch=0", "chown=1", "chmod=0", "cat=1", "secret=1", "kill-self=0"] {
        assert!(out.stdout.contains(&format!("{line}\n")), "{line}: {}", out.describe());
    }
    assert!(out.stderr.contains("Operation not permitted"), "chown gets EPERM: {}", out.describe());
    assert!(out.stderr.contains("Permission denied"), "cat gets EACCES: {}", out.describe());
}

#[test]
fn no_new_privileges_sticks_and_stops_set_user_id_programs() {
    // A set-user-ID-root copy of the probe, run by uid 1000.
    let probe = probe_with("setuid_ids", &["-static"]);
    let setup = |rootfs: &Rootfs| {
        let path = rootfs.host_path("opt/setuid_ids");
        fs::copy(&probe, &path).expect("copy the probe into the rootfs");
        std::os::unix::fs::chown(&path, Some(0), Some(0)).expect("chown");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o4755)).expect("chmod");
    };
    let script = "grep NoNewPrivs /proc/self/status; sh -c 'grep NoNewPrivs /proc/self/status'; /opt/setuid_ids";
    let spec = |no_new_privileges: bool| {
        move |s: &mut Value| {
            s["process"]["capabilities"] = capabilities(DOCKER_CAPABILITIES);
            s["process"]["user"] = json!({ "uid": 1000, "gid": 1000 });
            s["process"]["noNewPrivileges"] = no_new_privileges.into();
        }
    };
    let out = run_like_runc(script, setup, spec(true));
    assert_eq!(
        out.stdout,
        "NoNewPrivs:\t1\nNoNewPrivs:\t1\nuids=1000,1000,1000 secure=0 capeff=0000000000000000\n",
        "{}",
        out.describe()
    );
    let out = run_like_runc(script, setup, spec(false));
    assert_eq!(
        out.stdout,
        format!("NoNewPrivs:\t0\nNoNewPrivs:\t0\nuids=1000,0,0 secure=1 capeff={DOCKER_MASK}\n"),
        "the set-user-ID bit makes root, with the bounding set: {}",
        out.describe()
    );
}

#[test]
fn sysctls_show_under_proc_sys_and_set_the_uts_names() {
    let script = "cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/net/ipv4/ping_group_range
        cat /proc/sys/kernel/domainname /proc/sys/kernel/ostype /proc/sys/net/core/somaxconn
        hostname; uname -n
        echo 1 > /proc/sys/net/ipv4/ip_unprivileged_port_start; echo write=$?";
    let out = run_in(
        Runtime::Moat,
        script,
        |_| {},
        |s| {
            s["linux"]["sysctl"] = json!({
                "net.ipv4.ip_unprivileged_port_start": "0",
                "net.ipv4.ping_group_range": "0 2147483647",
                "kernel.domainname": "example.org",
                "kernel.hostname": "from-sysctl",
            });
        },
    );
    assert_eq!(out.status, 0, "{}", out.describe());
    assert_eq!(
        out.stdout,
        "0\n0 2147483647\nexample.org\nLinux\n4096\nfrom-sysctl\nfrom-sysctl\nwrite=1\n",
        "the sysctls beside /proc/sys's own files, read-only: {}",
        out.describe()
    );
}

#[test]
fn bad_sysctl_keys_fail_create_with_one_clear_error() {
    for key in ["net/ipv4/ip_forward", "net..ipv4", ".net.ipv4", "kernel.random"] {
        let dir = TempDir::new("oci-sysctl");
        let root = dir.path().join("root");
        let bundle = dir.path().join("bundle");
        let rootfs = Rootfs::new();
        busybox_bundle(&root, &bundle, &rootfs, &["/bin/true"], |s| s["linux"]["sysctl"] = json!({ key: "1" }));
        let id = unique_name("sysctl");
        let out = finished(moat_at(&root, &["create", "--bundle", bundle.to_str().expect("utf-8"), &id]));
        assert_ne!(out.status, 0, "{key}: create must fail: {}", out.describe());
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{key}: one error line: {}", out.describe());
        assert!(lines[0].contains("sysctl") && lines[0].contains(key), "{key}: the error names it: {}", out.describe());
        assert!(fs::read_dir(&root).map(|d| d.count() == 0).unwrap_or(true), "{key}: create left state behind");
    }
}

#[test]
fn exec_gets_inits_capabilities_unless_its_process_says() {
    let dir = TempDir::new("oci-caps-exec");
    let root = dir.path().join("root");
    let bundle = dir.path().join("bundle");
    let rootfs = Rootfs::new();
    busybox_bundle(&root, &bundle, &rootfs, &["/bin/sh", "-c", "while :; do sleep 1; done"], |s| {
        s["process"]["capabilities"] = capabilities(DOCKER_CAPABILITIES);
        s["process"]["noNewPrivileges"] = true.into();
    });
    let id = unique_name("caps-exec");
    oci::create(&root, &bundle, &id, &dir.path().join("console.log"));
    let started = moat_at(&root, &["start", &id]);
    assert!(started.status.success(), "start: {}", String::from_utf8_lossy(&started.stderr));

    let out = finished(moat_at(&root, &["exec", &id, "grep", "-E", "CapEff|NoNewPrivs", "/proc/self/status"]));
    assert_eq!(out.stdout, format!("CapEff:\t{DOCKER_MASK}\nNoNewPrivs:\t1\n"), "init's sets: {}", out.describe());

    let process = dir.path().join("process.json");
    let json = json!({
        "args": ["grep", "-E", "CapEff|NoNewPrivs", "/proc/self/status"],
        "cwd": "/",
        "env": ["PATH=/bin"],
        "user": { "uid": 0, "gid": 0 },
        "capabilities": capabilities(&["CAP_KILL"]),
        "noNewPrivileges": false,
    });
    fs::write(&process, json.to_string()).expect("write process.json");
    let out = finished(moat_at(&root, &["exec", "--process", process.to_str().expect("utf-8"), &id]));
    assert_eq!(out.stdout, "CapEff:\t0000000000000020\nNoNewPrivs:\t0\n", "the process's own sets: {}", out.describe());

    let deleted = moat_at(&root, &["delete", "--force", &id]);
    assert!(deleted.status.success(), "delete: {}", String::from_utf8_lossy(&deleted.stderr));
}
