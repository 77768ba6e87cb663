//! statfs(2) and fstatfs(2) tell what each filesystem is, as Linux does: the
//! magic number of procfs, sysfs, tmpfs, devpts and the pseudo-filesystems
//! of pipes and sockets, and a sized tmpfs's size and use — natively and
//! under `moat do`, compared.

mod common;

use std::process::Command;

use common::native::{differential, moat, probe, run};

#[test]
fn magic_numbers_are_linuxs() {
    differential(&["stat", "-f", "-c", "%n %t", "/proc", "/sys", "/dev/shm", "/dev/pts"]);
    let bin = probe("statfs_kinds");
    differential(&[bin.to_str().expect("utf-8 path")]);
}

/// A tmpfs of 1 MiB holding 40 KiB: its blocks, free blocks, block size
/// and name length, as Linux's tmpfs reports them.
#[test]
fn a_sized_tmpfs_reports_its_size_and_use() {
    let fill = "dd if=/dev/zero of=\"$0/f\" bs=4096 count=10 2>/dev/null && stat -f -c '%t %b %f %a %S %l' \"$0\"";
    let dir = common::native::scratch("statfs-tmpfs");
    let dir = dir.to_str().expect("utf-8 path");
    let native = run(Command::new("unshare").args([
        "-m",
        "sh",
        "-c",
        &format!("mount -t tmpfs -o size=1m none \"$0\" && {fill}"),
        dir,
    ]));
    let sandboxed = run(Command::new(moat()).args(["do", "--tmpfs", "/mnt:1M", "--", "sh", "-c", fill, "/mnt"]));
    assert!(native.status.success(), "native run failed: {native:?}");
    assert_eq!(
        String::from_utf8_lossy(&native.stdout),
        String::from_utf8_lossy(&sandboxed.stdout),
        "moat stderr: {}",
        String::from_utf8_lossy(&sandboxed.stderr)
    );
    let _ = std::fs::remove_dir(dir);
}

/// A root the Gofer serves as it is (`--file-access shared`) reports the
/// host filesystem's statfs, magic number included, as the Gofer reads it.
#[test]
fn a_gofer_root_reports_the_host_filesystem() {
    let native = run(Command::new("stat").args(["-f", "-c", "%t %S %l", "/"]));
    let sandboxed =
        run(Command::new(moat()).args(["do", "--file-access", "shared", "--", "stat", "-f", "-c", "%t %S %l", "/"]));
    assert!(native.status.success(), "native run failed: {native:?}");
    assert_eq!(String::from_utf8_lossy(&native.stdout), String::from_utf8_lossy(&sandboxed.stdout));
}
