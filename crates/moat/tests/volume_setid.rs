//! Set-ID files in served trees: app code running as root in the sandbox
//! must not plant a set-user-ID or set-group-ID program on the host unless
//! the mount says `suid` (`moat do -v HOST:SANDBOX:suid`, an OCI bind
//! mount with "suid", `moat gofer --allow-setid`), and files the sandbox
//! makes never become another host user's than the one running moat.

mod common;

use std::collections::HashMap;
use std::fs;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;

use common::oci::{busybox_bundle, moat_at};
use common::{moat_command, run_moat, unique_name, Output, Rootfs, Running, TempDir};
use p9::Client;

const NOBODY: u32 = 65534;
/// What root in the sandbox runs to plant a set-user-ID copy of busybox
/// (a shell and `id` in one) and a set-group-ID one, then shows the modes.
const PLANT: &str = "cp /bin/busybox /vol/suid && chmod 4755 /vol/suid && \
                     cp /bin/busybox /vol/sgid && chmod 2755 /vol/sgid && \
                     mkdir /vol/dir && chmod 2775 /vol/dir && stat -c '%a %n' /vol/suid /vol/sgid /vol/dir";

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).unwrap_or_else(|e| panic!("cannot stat {}: {e}", path.display())).mode() & 0o7777
}

/// The host's view of what [`PLANT`] made in `dir`.
fn planted(dir: &Path) -> Vec<(&'static str, u32)> {
    ["suid", "sgid", "dir"].into_iter().map(|name| (name, mode_of(&dir.join(name)))).collect()
}

/// `moat do --rootfs ROOTFS -v VOLUME -- /bin/sh -c SCRIPT`.
fn moat_do_with_volume(rootfs: &Rootfs, volume: &str, script: &str) -> Output {
    let root = rootfs.path().to_str().expect("rootfs path is not UTF-8");
    run_moat(&["do", "--rootfs", root, "-v", volume, "--", "/bin/sh", "-c", script])
}

#[test]
fn root_in_the_sandbox_cannot_plant_a_set_id_program_in_a_volume() {
    let rootfs = Rootfs::new();
    let host = TempDir::new("volume-nosuid");
    let out = moat_do_with_volume(&rootfs, &format!("{}:/vol", host.path().display()), PLANT);
    assert_eq!(out.status, 0, "{}", out.describe());
    // The sandbox sees what the host has: the bits never got there.
    assert_eq!(out.stdout, "755 /vol/suid\n755 /vol/sgid\n2775 /vol/dir\n", "{}", out.describe());
    assert_eq!(planted(host.path()), [("suid", 0o755), ("sgid", 0o755), ("dir", 0o2775)]);
}

#[test]
fn a_suid_volume_keeps_set_id_bits() {
    let rootfs = Rootfs::new();
    let host = TempDir::new("volume-suid");
    let out = moat_do_with_volume(&rootfs, &format!("{}:/vol:rw,suid", host.path().display()), PLANT);
    assert_eq!(out.status, 0, "{}", out.describe());
    assert_eq!(planted(host.path()), [("suid", 0o4755), ("sgid", 0o2755), ("dir", 0o2775)]);
    // `suid` combines with `ro`, which still refuses every change.
    let ro = moat_do_with_volume(
        &rootfs,
        &format!("{}:/vol:ro,suid", host.path().display()),
        "stat -c %a /vol/suid; chmod 755 /vol/suid || echo refused",
    );
    assert_eq!(ro.stdout, "4755\nrefused\n", "{}", ro.describe());
    assert_eq!(mode_of(&host.path().join("suid")), 0o4755);
}

#[test]
fn contradictory_or_unknown_volume_options_are_refused() {
    let rootfs = Rootfs::new();
    let host = TempDir::new("volume-options");
    for (options, named) in [("ro,rw", "\"rw\""), ("suid,nosuid", "\"nosuid\""), ("ro,exec", "\"exec\""), ("", "\"\"")]
    {
        let out = moat_do_with_volume(&rootfs, &format!("{}:/vol:{options}", host.path().display()), "true");
        assert_eq!(out.status, 125, "moat do refuses a bad --volume: {}", out.describe());
        assert!(out.stderr.contains(named), "the error must name {named}: {}", out.describe());
    }
}

/// Without root, moat's Gofer runs in a user namespace that maps only the
/// user's own ids: the sandbox's root is that user on the host, files it
/// makes are that user's, a chown to any other id fails (EINVAL: the id
/// does not exist there), and set-ID bits are stripped as for root.
#[test]
fn without_root_files_made_in_a_volume_are_the_users_own() {
    let rootfs = Rootfs::new();
    let host = TempDir::new("volume-unprivileged");
    std::os::unix::fs::chown(host.path(), Some(NOBODY), Some(NOBODY)).expect("chown the volume to nobody");
    let root = rootfs.path().to_str().expect("rootfs path is not UTF-8");
    let volume = format!("{}:/vol", host.path().display());
    let script = format!("id -u; {PLANT}; chown 0:0 /vol/suid 2>/dev/null || echo chown-refused");
    let mut command = moat_command(&["do", "--rootfs", root, "-v", &volume, "--", "/bin/sh", "-c", &script]);
    command.uid(NOBODY).gid(NOBODY);
    let out = Running::spawn(command, "moat do as nobody", false).finish();
    assert_eq!(out.status, 0, "{}", out.describe());
    assert!(out.stdout.starts_with("0\n") && out.stdout.ends_with("chown-refused\n"), "{}", out.describe());
    assert_eq!(planted(host.path()), [("suid", 0o755), ("sgid", 0o755), ("dir", 0o2775)]);
    for name in ["suid", "sgid", "dir"] {
        let meta = fs::metadata(host.path().join(name)).expect("stat");
        assert_eq!((meta.uid(), meta.gid()), (NOBODY, NOBODY), "{name} must be the user's, not root's");
    }
}

/// An OCI bind mount follows runc's options: "suid" allows set-ID files,
/// and without it (or with "nosuid" last) moat strips them.
#[test]
fn an_oci_bind_mount_keeps_set_id_bits_only_with_suid() {
    let dir = TempDir::new("oci-setid");
    let runtime_root = dir.path().join("root");
    let rootfs = Rootfs::new();
    for (options, expected) in [
        (vec!["rbind", "rw"], [("suid", 0o755), ("sgid", 0o755), ("dir", 0o2775)]),
        (vec!["rbind", "suid", "nosuid"], [("suid", 0o755), ("sgid", 0o755), ("dir", 0o2775)]),
        (vec!["rbind", "rw", "suid"], [("suid", 0o4755), ("sgid", 0o2755), ("dir", 0o2775)]),
    ] {
        let host = dir.path().join(format!("host-{}", options.join("-")));
        fs::create_dir(&host).expect("mkdir");
        let bundle = dir.path().join(format!("bundle-{}", options.join("-")));
        busybox_bundle(&runtime_root, &bundle, &rootfs, &["/bin/sh", "-c", PLANT], |s| {
            s["mounts"].as_array_mut().expect("mounts").push(serde_json::json!({
                "destination": "/vol", "type": "bind", "source": host.to_str().expect("utf-8"), "options": options
            }));
        });
        let id = unique_name("setid");
        let out = moat_at(&runtime_root, &["run", "--bundle", bundle.to_str().expect("utf-8"), &id]);
        assert!(out.status.success(), "{options:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(planted(&host), expected, "options {options:?}");
    }
}

/// The fields of /proc/PID/status.
fn proc_status(pid: u32) -> HashMap<String, String> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).expect("cannot read the gofer's status");
    text.lines().filter_map(|l| l.split_once(':')).map(|(k, v)| (k.to_owned(), v.trim().to_owned())).collect()
}

/// What becomes of a root-owned set-user-ID file on the host when a client
/// of a jailed `moat gofer` (with `extra` arguments) writes to it, and the
/// Gofer's effective capabilities.
fn write_through_a_jailed_gofer(extra: &[&str]) -> (u32, u64) {
    let dir = TempDir::new("gofer-setid");
    let tool = dir.path().join("tool");
    fs::write(&tool, b"the host's own tool\n").expect("write");
    fs::set_permissions(&tool, fs::Permissions::from_mode(0o4755)).expect("chmod");
    let (ours, theirs) = UnixStream::pair().expect("socketpair");
    host::sys::set_cloexec(theirs.as_fd(), false).expect("cannot clear FD_CLOEXEC");
    let mut command = moat_command(&["gofer", "--fd", &theirs.as_raw_fd().to_string(), "--root"]);
    command.arg(dir.path()).args(extra);
    let running = Running::spawn(command, "moat gofer", false);
    drop(theirs);
    let client = Client::new(ours.try_clone().expect("dup"), 8192).expect("the gofer did not answer Tversion");
    let (root, _) = client.attach("").expect("attach");
    let (file, _) = client.walk(root, &[b"tool"]).expect("walk");
    client.lopen(file, 2).expect("open for writing");
    client.write(file, 0, b"THE SANDBOX'S").expect("write");
    let caps = proc_status(running.pid()).get("CapEff").map(|hex| u64::from_str_radix(hex, 16).expect("hex"));
    drop((client, ours));
    let out = running.finish();
    assert_eq!(out.status, 0, "{}", out.describe());
    (mode_of(&tool), caps.expect("no CapEff"))
}

/// A compromised Sentry writing through the Gofer (Twrite) must not keep a
/// set-ID file set-ID with its own contents: the jailed Gofer holds no
/// CAP_FSETID, so the kernel clears the bits as for any unprivileged
/// writer, unless set-ID files are allowed.
#[test]
fn a_jailed_gofer_clears_set_id_bits_when_it_writes() {
    assert_eq!(write_through_a_jailed_gofer(&[]), (0o755, 0xf));
    assert_eq!(write_through_a_jailed_gofer(&["--allow-setid"]), (0o4755, 0x1f));
}
