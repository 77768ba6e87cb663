//! Escape attempts from inside the sandbox: each must fail to reach the host and
//! leave it untouched. The rootfs is a busybox tree the test builds; the host
//! files the attacks aim at are a marker file outside it and the host's root.

mod common;

use std::os::unix::fs::symlink;

use common::{run_moat_script, Rootfs, TempDir};

/// A marker outside the rootfs that no sandbox must be able to read or change.
fn host_marker() -> (TempDir, String) {
    let dir = TempDir::new("escape-marker");
    let path = dir.path().join("secret");
    std::fs::write(&path, "host-secret\n").expect("write marker");
    let p = path.to_str().expect("utf-8").to_string();
    (dir, p)
}

fn assert_no_secret(out: &common::Output) {
    assert!(!out.stdout.contains("host-secret"), "a host file leaked into the sandbox:\n{}", out.describe());
    assert!(!out.stderr.contains("panicked"), "the Sentry panicked:\n{}", out.describe());
}

#[test]
fn symlinks_in_the_rootfs_resolve_inside_it() {
    let (_d, marker) = host_marker();
    let r = Rootfs::new();
    symlink(&marker, r.host_path("etc/evil-abs")).expect("symlink");
    symlink("/", r.host_path("etc/evil-root")).expect("symlink");
    symlink("/etc/shadow", r.host_path("etc/evil-shadow")).expect("symlink");
    let out = run_moat_script(
        &r,
        &format!(
            "cat /etc/evil-abs 2>&1; ls /etc/evil-root/ | sort | tr '\\n' ' '; echo; \
             cat /etc/evil-shadow; echo x > /etc/evil-abs; cat {marker} 2>&1; echo done"
        ),
    );
    assert_no_secret(&out);
    assert!(out.stdout.contains("done"), "{}", out.describe());
    // "/" through the symlink is the sandbox's root: the rootfs's own top-level names.
    assert!(out.stdout.contains("bin") && out.stdout.contains("etc"), "{}", out.describe());
    // The shadow file read is the rootfs's own.
    assert_eq!(std::fs::read_to_string(&marker).expect("marker"), "host-secret\n", "the host marker changed");
}

#[test]
fn dotdot_chains_and_proc_self_root_stay_inside() {
    let (_d, marker) = host_marker();
    let r = Rootfs::new();
    let depth = "../".repeat(40);
    let out = run_moat_script(
        &r,
        &format!(
            "cd /etc && cat {depth}{m} 2>&1; cat /proc/self/root/..{m} 2>&1; \
             ls /proc/self/root/../../.. | sort | tr '\\n' ' '; echo; cd {depth} && pwd; echo done",
            m = marker
        ),
    );
    assert_no_secret(&out);
    assert!(out.stdout.contains("done"), "{}", out.describe());
    assert!(out.stdout.lines().any(|l| l == "/"), "cd ../.. did not stop at the root:\n{}", out.describe());
}

#[test]
fn fifos_and_device_nodes_in_the_rootfs_are_not_opened_on_the_host() {
    let r = Rootfs::new();
    let fifo = r.host_path("etc/fifo");
    let st = std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(st.success());
    // A device node for the host's /dev/mem (1,1) and /dev/null-like (1,3).
    for (name, minor) in [("mem", "1"), ("nul", "3")] {
        let st = std::process::Command::new("mknod")
            .arg(r.host_path(&format!("etc/{name}")))
            .args(["c", "1", minor])
            .status()
            .expect("mknod");
        assert!(st.success());
    }
    let out = run_moat_script(
        &r,
        "ls -l /etc/fifo /etc/mem /etc/nul | cut -c1 | tr -d '\\n'; echo; \
         head -c 16 /etc/mem > /dev/null 2>&1; echo mem=$?; echo hi > /etc/nul 2>&1; echo nul=$?; \
         timeout 2 cat /etc/fifo; echo done",
    );
    assert!(!out.stderr.contains("panicked"), "{}", out.describe());
    // The nodes are visible as metadata...
    assert!(out.stdout.starts_with("pcc"), "{}", out.describe());
    // ...but reading the host's memory device fails.
    assert!(out.stdout.contains("mem=1"), "{}", out.describe());
    assert!(out.stdout.contains("done"), "{}", out.describe());
}

#[test]
fn file_handles_are_refused() {
    // busybox has no name_to_handle_at; use the host's python3 against the host root.
    let out = common::run_moat(&[
        "do",
        "--",
        "/usr/bin/python3",
        "-c",
        "import ctypes, os\n\
         libc = ctypes.CDLL(None, use_errno=True)\n\
         buf = ctypes.create_string_buffer(136); mnt = ctypes.c_int()\n\
         r = libc.name_to_handle_at(-100, b'/etc/hostname', buf, ctypes.byref(mnt), 0)\n\
         print('name_to_handle_at', r, os.strerror(ctypes.get_errno()))\n\
         r = libc.open_by_handle_at(-100, buf, 0)\n\
         print('open_by_handle_at', r, os.strerror(ctypes.get_errno()))",
    ]);
    assert!(out.stdout.contains("name_to_handle_at -1 Operation not supported"), "{}", out.describe());
    assert!(out.stdout.contains("open_by_handle_at -1 Operation not permitted"), "{}", out.describe());
}
