//! Where a container's writes to its root go: into the bundle's rootfs on
//! the host, as under runc (which runs the same script on a copy of the
//! same rootfs), or with `--overlay` into memory, leaving the host's alone;
//! and symlinks the app plants there never lead the runtime out of it.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use common::oci::Runtime;
use common::{unique_name, Rootfs, TempDir};
use serde_json::Value;

/// A container that is deleted (with --force) when the test ends, however it ends.
struct Container<'a> {
    rt: &'a Runtime,
    id: String,
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        let _ = self.rt.run(&["delete", "--force", &self.id]);
    }
}

/// Docker's default capabilities: with them root in the container may
/// chown and mknod, as in a `docker run` (a `spec`'s own set is smaller).
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

/// A bundle at `dir` over `rootfs` whose process runs `args` as root with
/// Docker's capabilities, without a terminal; its root read-only if asked.
/// Returns the bundle's path and the spec's mount destinations.
fn bundle(rt: &Runtime, dir: &TempDir, rootfs: &Rootfs, args: &[&str], read_only: bool) -> (String, Vec<String>) {
    let path = dir.path().to_str().expect("utf-8").to_owned();
    let out = rt.run(&["spec", "--bundle", &path]);
    assert_eq!(out.status, 0, "{} spec: {}", rt.name, out.describe());
    let config = dir.path().join("config.json");
    let mut spec: Value = serde_json::from_str(&fs::read_to_string(&config).expect("read")).expect("json");
    spec["root"] = serde_json::json!({"path": rootfs.path().to_str().expect("utf-8"), "readonly": read_only});
    spec["process"]["terminal"] = false.into();
    spec["process"]["args"] = args.iter().map(|a| Value::String((*a).to_owned())).collect();
    for set in ["bounding", "effective", "permitted"] {
        spec["process"]["capabilities"][set] = DOCKER_CAPABILITIES.into();
    }
    fs::write(&config, serde_json::to_vec_pretty(&spec).expect("json")).expect("write config.json");
    let mounts = spec["mounts"].as_array().expect("mounts").iter();
    let destinations = mounts.filter_map(|m| m["destination"].as_str()).map(|d| d.trim_start_matches('/').to_owned());
    (path, destinations.collect())
}

/// One file of a tree as compared: its type and what a runtime changes
/// (times aside, which differ run to run).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    Dir { mode: u32, uid: u32, gid: u32 },
    File { mode: u32, uid: u32, gid: u32, nlink: u64, contents: Vec<u8> },
    Symlink { target: String, uid: u32, gid: u32 },
    Fifo { mode: u32, uid: u32, gid: u32 },
    Other { mode: u32, rdev: u64 },
}

/// Every file under `root` by its path relative to it, symlinks not followed.
fn snapshot(root: &Path) -> BTreeMap<String, Entry> {
    let mut out = BTreeMap::new();
    let mut pending = vec![root.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
            let path = entry.expect("dir entry").path();
            let meta = fs::symlink_metadata(&path).expect("lstat");
            let (mode, uid, gid) = (meta.mode() & 0o7777, meta.uid(), meta.gid());
            let kind = meta.file_type();
            let entry = if kind.is_dir() {
                pending.push(path.clone());
                Entry::Dir { mode, uid, gid }
            } else if kind.is_file() {
                Entry::File { mode, uid, gid, nlink: meta.nlink(), contents: fs::read(&path).expect("read") }
            } else if kind.is_symlink() {
                let target = fs::read_link(&path).expect("readlink").to_string_lossy().into_owned();
                Entry::Symlink { target, uid, gid }
            } else if kind.is_fifo() {
                Entry::Fifo { mode, uid, gid }
            } else {
                Entry::Other { mode: meta.mode(), rdev: meta.rdev() }
            };
            let relative = path.strip_prefix(root).expect("under the root").to_string_lossy().into_owned();
            out.insert(relative, entry);
        }
    }
    out
}

/// What changed from `before` to `after`: each path's new entry, or None
/// where it was removed. Mount points (`ignored` and what is under them)
/// are left out: runc makes its own in the rootfs, moat's Sentry has them.
fn changes(
    before: &BTreeMap<String, Entry>,
    after: &BTreeMap<String, Entry>,
    ignored: &[String],
) -> BTreeMap<String, Option<Entry>> {
    let is_ignored = |path: &str| ignored.iter().any(|m| path == m || path.starts_with(&format!("{m}/")));
    let mut out = BTreeMap::new();
    for (path, entry) in after {
        if before.get(path) != Some(entry) {
            out.insert(path.clone(), Some(entry.clone()));
        }
    }
    for path in before.keys().filter(|p| !after.contains_key(*p)) {
        out.insert(path.clone(), None);
    }
    out.retain(|path, _| !is_ignored(path));
    out
}

/// Creates, appends, renames, deletes, chmods, chowns and links files in /
/// and /etc, and prints what it sees of them.
const SCRIPT: &str = r#"set -e
echo hello > /new-file
mkdir -p /data/sub
echo nested > /data/sub/f
chmod 750 /data
echo more >> /etc/issue
mv /etc/hostname /etc/hostname.old
mv /etc/network /etc/net
rm /etc/shells
rmdir /opt
chmod 600 /etc/profile
chown 1000:1000 /etc/group
chown 7:8 /data/sub
ln -s ../issue /etc/net/issue-link
ln -s /nowhere /dangling
ln /etc/issue /etc/issue.hard
cat /etc/issue > /dev/null
echo via-hard >> /etc/issue.hard
cat /etc/issue
mkfifo /etc/fifo
: > /etc/hosts
truncate -s 3 /etc/passwd
touch /etc/empty
stat -c '%n %h %s %a %u:%g' /etc/issue /etc/issue.hard /etc/group /data /etc/fifo
"#;

/// Runs SCRIPT under `rt` (with `flags` before `run`) on a fresh rootfs;
/// returns what it printed and how the rootfs on the host changed.
fn run_script(rt: &Runtime, flags: &[&str]) -> (String, BTreeMap<String, Option<Entry>>) {
    let rootfs = Rootfs::new();
    let dir = TempDir::new("rootfs-writes");
    let (path, mounts) = bundle(rt, &dir, &rootfs, &["/bin/sh", "-c", SCRIPT], false);
    let before = snapshot(rootfs.path());
    let c = Container { rt, id: unique_name("rootfs-writes") };
    let mut args = flags.to_vec();
    args.extend(["run", "--bundle", &path, &c.id]);
    let out = rt.run(&args);
    assert_eq!(out.status, 0, "{} {args:?}: {}", rt.name, out.describe());
    (out.stdout, changes(&before, &snapshot(rootfs.path()), &mounts))
}

/// A container's writes to its root are on the host's rootfs afterwards,
/// exactly as runc leaves them (what `docker diff` and `docker commit`
/// read); with `--overlay` the host's rootfs is as it was.
#[test]
fn root_writes_reach_the_rootfs_as_under_runc_and_overlay_keeps_them_in_memory() {
    let (runc_out, runc_changes) = run_script(&Runtime::runc(), &[]);
    assert!(runc_changes.contains_key("new-file"), "runc's own: {runc_changes:#?}");
    let moat = Runtime::moat();
    let (moat_out, moat_changes) = run_script(&moat, &[]);
    assert_eq!(moat_out, runc_out, "what the script saw: moat, then runc");
    assert_eq!(moat_changes, runc_changes, "the rootfs's changes on the host: moat, then runc");

    let (overlay_out, overlay_changes) = run_script(&moat, &["--overlay"]);
    assert_eq!(overlay_out, runc_out, "what the script saw under --overlay: moat, then runc");
    assert_eq!(overlay_changes, BTreeMap::new(), "--overlay must leave the host's rootfs alone");
}

/// A read-only root refuses writes with EROFS, and the host's stays as it was.
#[test]
fn a_read_only_root_refuses_writes() {
    for rt in &Runtime::both() {
        let rootfs = Rootfs::new();
        let dir = TempDir::new("rootfs-ro");
        let script = "echo x > /new-file; echo x >> /etc/issue; mkdir /d; rm /etc/shells; true";
        let (path, mounts) = bundle(rt, &dir, &rootfs, &["/bin/sh", "-c", script], true);
        let before = snapshot(rootfs.path());
        let c = Container { rt, id: unique_name("rootfs-ro") };
        let out = rt.run(&["run", "--bundle", &path, &c.id]);
        assert_eq!(out.status, 0, "{} run: {}", rt.name, out.describe());
        assert_eq!(out.stderr.matches("Read-only file system").count(), 4, "{}: {}", rt.name, out.describe());
        assert_eq!(changes(&before, &snapshot(rootfs.path()), &mounts), BTreeMap::new(), "{}", rt.name);
    }
}

/// Unlike runc (given CAP_MKNOD and a devices cgroup that allows it, as
/// Docker's does), no device node is made on the host: the app would have
/// one in a host directory, which the host would honour. mknod of a block
/// or character device fails with EPERM, as without CAP_MKNOD.
#[test]
fn device_nodes_are_not_made_on_the_host() {
    let rt = Runtime::moat();
    let rootfs = Rootfs::new();
    let dir = TempDir::new("rootfs-mknod");
    let script = "mknod /null c 1 3; mknod /etc/sda b 8 0; mknod /etc/fifo p";
    let (path, mounts) = bundle(&rt, &dir, &rootfs, &["/bin/sh", "-c", script], false);
    let before = snapshot(rootfs.path());
    let c = Container { rt: &rt, id: unique_name("rootfs-mknod") };
    let out = rt.run(&["run", "--bundle", &path, &c.id]);
    assert_eq!(out.stderr.matches("Operation not permitted").count(), 2, "moat run: {}", out.describe());
    let made = changes(&before, &snapshot(rootfs.path()), &mounts);
    assert_eq!(made.keys().collect::<Vec<_>>(), ["etc/fifo"], "{made:#?}");
}

/// Unlike runc, set-user-ID and set-group-ID bits never reach the host's
/// rootfs (as for a bind mount without "suid"): the app writes into a host
/// directory, and a set-ID root file there would outlive the sandbox.
#[test]
fn set_id_bits_do_not_reach_the_host() {
    let rt = Runtime::moat();
    let rootfs = Rootfs::new();
    let dir = TempDir::new("rootfs-setid");
    let script = "cp /bin/busybox /setid && chmod 6755 /setid && mkdir /d && chmod 2775 /d";
    let (path, _) = bundle(&rt, &dir, &rootfs, &["/bin/sh", "-c", script], false);
    let c = Container { rt: &rt, id: unique_name("rootfs-setid") };
    let out = rt.run(&["run", "--bundle", &path, &c.id]);
    assert_eq!(out.status, 0, "moat run: {}", out.describe());
    let mode = |p: &str| fs::symlink_metadata(rootfs.host_path(p)).expect("lstat").mode() & 0o7777;
    assert_eq!(mode("setid"), 0o755, "a set-ID file on the host");
    // S_ISGID stays on directories: it only makes new files inherit the group.
    assert_eq!(mode("d"), 0o2775);
}

/// The app's symlinks in its rootfs are not followed by the runtime when
/// it reads the container's /etc/passwd for a later exec's HOME: neither
/// /etc/passwd leading to a host file nor /etc leading to the host's /.
/// Writes through them stay in the rootfs too; runc does the same.
#[test]
fn planted_symlinks_do_not_lead_exec_out_of_the_rootfs() {
    let secret_dir = TempDir::new("rootfs-secret");
    let secret = secret_dir.path().join("passwd");
    fs::write(&secret, "root:x:0:0:root:/LEAKED-HOST-FILE:/bin/sh\n").expect("write the host file");
    let secret = secret.to_str().expect("utf-8").to_owned();
    let host_home_of_uid_1 = fs::read_to_string("/etc/passwd")
        .expect("read the host's /etc/passwd")
        .lines()
        .find_map(|l| l.split(':').nth(2).filter(|uid| *uid == "1").and(l.split(':').nth(5)).map(str::to_owned));
    for rt in &Runtime::both() {
        let rootfs = Rootfs::new();
        let dir = TempDir::new("rootfs-plant");
        let (path, _) = bundle(rt, &dir, &rootfs, &["/bin/sleep", "600"], false);
        let c = Container { rt, id: unique_name("rootfs-plant") };
        let out = rt.run_to_file(&["create", "--bundle", &path, &c.id], &dir.path().join("create.log"));
        assert_eq!(out.status, 0, "{} create: {}", rt.name, out.describe());
        let out = rt.run(&["start", &c.id]);
        assert_eq!(out.status, 0, "{} start: {}", rt.name, out.describe());
        let exec = |user: &str, script: &str| {
            let out = rt.run(&["exec", "--user", user, &c.id, "/bin/sh", "-c", script]);
            assert_eq!(out.status, 0, "{} exec {script:?}: {}", rt.name, out.describe());
            out.stdout.trim().to_owned()
        };
        assert_eq!(exec("0:0", "echo $HOME"), "/root", "{}: before any symlink", rt.name);

        // Written while the container runs: on the host at once.
        exec("0:0", "echo live > /live");
        assert_eq!(fs::read_to_string(rootfs.host_path("live")).ok().as_deref(), Some("live\n"), "{}", rt.name);

        for target in [secret.clone(), format!("../../../../../../../../..{secret}")] {
            exec(
                "0:0",
                &format!("rm -f /etc/passwd && ln -s {target} /etc/passwd && (echo pwned > /etc/passwd; true)"),
            );
            assert_eq!(exec("0:0", "echo $HOME"), "/", "{}: /etc/passwd -> {target}", rt.name);
        }
        assert_eq!(
            fs::read_to_string(&secret).expect("read the host file"),
            "root:x:0:0:root:/LEAKED-HOST-FILE:/bin/sh\n",
            "{}: a write through the planted symlink reached the host",
            rt.name
        );

        // /etc -> /: followed on the host it would be the host's /etc/passwd.
        exec("0:0", "mv /etc /etc.real && ln -s / /etc");
        if let Some(home) = &host_home_of_uid_1 {
            assert_ne!(exec("1:1", "echo $HOME"), *home, "{}: the host's /etc/passwd was read", rt.name);
        }
        assert_eq!(exec("1:1", "echo $HOME"), "/", "{}: /etc -> /", rt.name);
        assert_eq!(exec("0:0", "echo $HOME"), "/", "{}: /etc -> /", rt.name);
        let out = rt.run(&["kill", &c.id, "KILL"]);
        assert_eq!(out.status, 0, "{} kill: {}", rt.name, out.describe());
        rt.wait_status(&c.id, "stopped");
    }
}
