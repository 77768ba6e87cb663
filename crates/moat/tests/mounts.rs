//! Mounts and root file access, run under `moat do`: `--volume` bind mounts
//! (read-write and read-only, each through a Gofer of its own), `--tmpfs`,
//! `--file-access exclusive|shared`, the overlay's size limit, and the
//! lookup cache that spares cached files any Gofer round trip.

mod common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use common::{run_moat, Output, Rootfs, TempDir};

fn moat_do(rootfs: &Rootfs, options: &[&str], script: &str) -> Output {
    let root = rootfs.path().to_str().expect("rootfs path is not UTF-8");
    let mut args = vec!["do", "--rootfs", root];
    args.extend_from_slice(options);
    args.extend_from_slice(&["--", "/bin/sh", "-c", script]);
    run_moat(&args)
}

fn volume(host: &Path, target: &str, suffix: &str) -> String {
    format!("{}:{target}{suffix}", host.display())
}

fn assert_ok(out: &Output) {
    assert!(out.status == 0 && !out.stderr.contains("panicked"), "{}", out.describe());
}

/// Every file under `dir`, with its contents, sorted.
fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).expect("read_dir") {
            let path = entry.expect("entry").path();
            let meta = fs::symlink_metadata(&path).expect("lstat");
            let name = path.strip_prefix(dir).expect("prefix").display().to_string();
            if meta.is_dir() {
                out.push((format!("{name}/"), Vec::new()));
                stack.push(path);
            } else if meta.file_type().is_symlink() {
                out.push((name, fs::read_link(&path).expect("readlink").display().to_string().into_bytes()));
            } else {
                out.push((name, fs::read(&path).expect("read")));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_read_write_volume_shares_changes_with_the_host() {
    let rootfs = Rootfs::new();
    let host = TempDir::new("volume-rw");
    fs::write(host.path().join("notes"), "from the host\n").expect("write");
    fs::create_dir(host.path().join("old")).expect("mkdir");
    fs::write(host.path().join("old/f"), "f\n").expect("write");
    let v = volume(host.path(), "/data", "");
    let out = moat_do(
        &rootfs,
        &["--volume", &v],
        "cat /data/notes; echo appended >> /data/notes; echo new > /data/new; mkdir -p /data/d/e; \
         mv /data/new /data/d/e/moved; mv /data/old /data/renamed; ln -s moved /data/d/e/link; \
         chmod 600 /data/notes; rm /data/renamed/f; ls /data; ls /data/d/e; stat -c '%a %s' /data/notes; \
         grep -c ' /data ' /proc/mounts",
    );
    assert_ok(&out);
    assert_eq!(out.stdout, "from the host\nd\nnotes\nrenamed\nlink\nmoved\n600 23\n1\n", "{}", out.describe());
    let listing: Vec<(String, Vec<u8>)> = tree(host.path());
    let expect: Vec<(String, Vec<u8>)> = vec![
        ("d/".into(), vec![]),
        ("d/e/".into(), vec![]),
        ("d/e/link".into(), b"moved".to_vec()),
        ("d/e/moved".into(), b"new\n".to_vec()),
        ("notes".into(), b"from the host\nappended\n".to_vec()),
        ("renamed/".into(), vec![]),
    ];
    assert_eq!(listing, expect, "the host directory must hold what the sandbox wrote");
    // The mount point was made in the overlay, not in the host's rootfs.
    assert!(!rootfs.host_path("data").exists(), "the mount point leaked into the host rootfs");
}

#[test]
fn a_read_only_volume_refuses_every_change() {
    let rootfs = Rootfs::new();
    let host = TempDir::new("volume-ro");
    fs::write(host.path().join("keep"), "keep\n").expect("write");
    fs::create_dir(host.path().join("dir")).expect("mkdir");
    let before = tree(host.path());
    let v = volume(host.path(), "/ro", ":ro");
    let out = moat_do(
        &rootfs,
        &["--volume", &v],
        "cat /ro/keep; for op in 'echo x > /ro/keep' 'echo x >> /ro/keep' 'echo x > /ro/new' 'mkdir /ro/d' \
         'rm /ro/keep' 'rmdir /ro/dir' 'mv /ro/keep /ro/k2' 'chmod 777 /ro/keep' 'ln -s a /ro/l' \
         'touch /ro/keep' 'truncate -s 0 /ro/keep'; do \
           if sh -c \"$op\" 2>/dev/null; then echo \"allowed: $op\"; fi; done; \
         touch /ro/keep 2>&1 | grep -c 'Read-only file system'; grep ' /ro ' /proc/mounts | cut -d' ' -f4",
    );
    assert_ok(&out);
    assert_eq!(out.stdout, "keep\n1\nro\n", "{}", out.describe());
    assert_eq!(tree(host.path()), before, "a read-only volume changed on the host");
}

#[test]
fn links_and_renames_do_not_cross_a_bind_mount() {
    let rootfs = Rootfs::new();
    let host = TempDir::new("volume-xdev");
    let outside = TempDir::new("volume-outside");
    fs::write(outside.path().join("secret"), "host-secret\n").expect("write");
    // A symlink placed in the volume by the host resolves inside the sandbox.
    symlink(outside.path().join("secret"), host.path().join("to-secret")).expect("symlink");
    let v = volume(host.path(), "/data", "");
    let out = moat_do(
        &rootfs,
        &["--volume", &v],
        "ln /etc/issue /data/hard 2>&1 | grep -c 'cross-device'; \
         ln /data/../etc/issue /data/hard2 2>&1 | grep -c 'cross-device'; \
         cat /data/to-secret 2>&1 | grep -c 'No such file'; cat /data/../../../etc/issue; \
         echo moved > /tmp/t; mv /tmp/t /data/t; cat /data/t; echo done",
    );
    assert_ok(&out);
    assert_eq!(out.stdout, "1\n1\n1\nmoat first light\nmoved\ndone\n", "{}", out.describe());
    assert!(!out.stdout.contains("host-secret"), "{}", out.describe());
    let names: Vec<String> = tree(host.path()).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["t", "to-secret"], "only the moved file may appear on the host");
    assert_eq!(fs::read_to_string(outside.path().join("secret")).expect("read"), "host-secret\n");
}

#[test]
fn the_exclusive_root_never_writes_to_the_host() {
    let rootfs = Rootfs::new();
    let before = tree(rootfs.path());
    let out = moat_do(
        &rootfs,
        &[],
        "echo x > /etc/issue; echo y > /new; mkdir /newdir; rm -r /bin/busybox-link 2>/dev/null; \
         rm /etc/passwd; cat /etc/issue /new; ls /etc | grep -c passwd",
    );
    assert_eq!(out.stdout, "x\ny\n0\n", "{}", out.describe());
    assert_eq!(tree(rootfs.path()), before, "the exclusive root changed the host");
}

#[test]
fn the_overlay_and_tmpfs_mounts_are_bounded() {
    let rootfs = Rootfs::new();
    let out = moat_do(
        &rootfs,
        &["--overlay-size", "1M", "--tmpfs", "/scratch:256K"],
        "dd if=/dev/zero of=/big bs=64k count=32 2>&1 | grep -c 'No space left'; \
         rm /big; dd if=/dev/zero of=/ok bs=64k count=8 2>/dev/null && echo fits-again; \
         dd if=/dev/zero of=/scratch/big bs=64k count=8 2>&1 | grep -c 'No space left'; \
         grep -c ' /scratch tmpfs' /proc/mounts",
    );
    assert_ok(&out);
    assert_eq!(out.stdout, "1\nfits-again\n1\n1\n", "{}", out.describe());
}

#[test]
fn a_shared_root_writes_through_and_sees_host_changes() {
    let rootfs = Rootfs::new();
    fs::create_dir(rootfs.host_path("shared")).expect("mkdir");
    rootfs.write_file("shared/state", b"old\n", 0o644);
    let ready = rootfs.host_path("shared/ready");
    let state = rootfs.host_path("shared/state");
    let changer = thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(50);
        while !ready.exists() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        fs::write(&state, "new from the host\n").expect("write");
    });
    let out = moat_do(
        &rootfs,
        &["--file-access", "shared"],
        "cat /shared/state; stat -c %s /shared/state; echo from-sandbox > /shared/written; touch /shared/ready; \
         while [ \"$(cat /shared/state)\" = old ]; do :; done; cat /shared/state; stat -c %s /shared/state",
    );
    changer.join().expect("the host thread failed");
    assert_ok(&out);
    assert_eq!(out.stdout, "old\n4\nnew from the host\n18\n", "{}", out.describe());
    assert_eq!(fs::read_to_string(rootfs.host_path("shared/written")).expect("read"), "from-sandbox\n");
}

/// The Gofer round trips a run made, from `moat do --stats`.
fn round_trips(out: &Output) -> u64 {
    let line = out
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("moat: stats: "))
        .unwrap_or_else(|| panic!("no stats line\n{}", out.describe()));
    let field = line.split_whitespace().find_map(|f| f.strip_prefix("gofer_round_trips=")).expect("no round trips");
    field.parse().expect("round trips is not a number")
}

/// After the first, a `stat` and an open+read+close of a cached file make
/// no Gofer round trip: ten iterations and two hundred cost the same.
#[test]
fn cached_stat_and_open_cost_no_round_trip() {
    let rootfs = Rootfs::new();
    let script = |n: u32| {
        format!(
            "i=0; while [ $i -lt {n} ]; do [ -e /etc/issue ] || exit 1; read l < /etc/issue; \
             [ -e /etc/missing ] && exit 2; i=$((i+1)); done; echo $l"
        )
    };
    let few = moat_do(&rootfs, &["--stats"], &script(10));
    let many = moat_do(&rootfs, &["--stats"], &script(200));
    assert_ok(&few);
    assert_ok(&many);
    assert_eq!(few.stdout, "moat first light\n");
    assert_eq!(round_trips(&few), round_trips(&many), "cached lookups made round trips\n{}", many.describe());
    // In a shared root the same loop revalidates with the Gofer.
    let shared = moat_do(&rootfs, &["--stats", "--file-access", "shared"], &script(200));
    assert_ok(&shared);
    assert!(round_trips(&shared) > round_trips(&many) + 200, "{}", shared.describe());
}

#[test]
fn bad_mount_options_get_one_clear_error() {
    let rootfs = Rootfs::new();
    let missing = TempDir::new("volume-missing");
    let gone = missing.path().join("not-there");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["--volume".into(), "relative:/data".into()], "absolute"),
        (vec!["--volume".into(), format!("{}:data", missing.path().display())], "absolute"),
        (vec!["--volume".into(), format!("{}:/a/../b", missing.path().display())], ".."),
        (vec!["--volume".into(), format!("{}:/data:rx", missing.path().display())], "HOST:SANDBOX"),
        (vec!["--volume".into(), format!("{}:/data", gone.display())], "not a directory"),
        (vec!["--overlay-size".into(), "lots".into()], "not a size"),
    ];
    for (options, says) in cases {
        let options: Vec<&str> = options.iter().map(String::as_str).collect();
        let out = moat_do(&rootfs, &options, "echo ran");
        assert!(out.status != 0 && !out.stdout.contains("ran"), "{options:?} must be refused\n{}", out.describe());
        assert!(out.stderr.contains(says), "{options:?}: the error must say {says:?}\n{}", out.describe());
        assert!(!out.stderr.contains("panicked"), "{}", out.describe());
    }
    // A mount target that is a symlink in the rootfs is refused, not followed.
    symlink("/etc", rootfs.host_path("link-to-etc")).expect("symlink");
    let v = volume(missing.path(), "/link-to-etc", "");
    let out = moat_do(&rootfs, &["--volume", &v], "echo ran");
    assert!(out.status == 125 && out.stderr.contains("cannot mount /link-to-etc"), "{}", out.describe());
}

/// Each cached file holds an fd in the Gofer (and, once opened, one in the
/// Sentry): under a low open-files limit the caches shrink to fit, and the
/// sandbox still reaches every file.
#[test]
fn a_low_open_files_limit_still_reaches_every_file() {
    let rootfs = Rootfs::new();
    fs::create_dir(rootfs.host_path("many")).expect("mkdir");
    for i in 0..1500 {
        fs::write(rootfs.host_path(&format!("many/f{i}")), format!("{i}\n")).expect("write");
    }
    let root = rootfs.path().to_str().expect("rootfs path is not UTF-8");
    let mut command = std::process::Command::new("prlimit");
    command.args(["--nofile=512:512", common::moat_binary(), "do", "--rootfs", root, "--", "/bin/sh", "-c"]);
    command.arg("n=0; for f in /many/*; do read l < $f || n=$((n+1)); done; echo failed $n");
    let out = common::Running::spawn(command, "moat do under prlimit --nofile=512", false).finish();
    assert_eq!(out.stdout, "failed 0\n", "{}", out.describe());
}

/// Pages reserved for shared mappings count against a tmpfs's size: they
/// cannot grow a sandbox's memory past its limits (review: 512 MiB went
/// through shared maps of small files on a 1 MiB tmpfs).
#[test]
fn shared_mappings_count_against_the_tmpfs_limit() {
    let script = r#"
import mmap
mapped = 0
for i in range(64):
    f = open('/scratch/f%d' % i, 'w+b')
    try:
        f.truncate(4096)
        m = mmap.mmap(f.fileno(), 4096)
        m[0:1] = b'x'
        mapped += 1
    except OSError as e:
        print('refused', e.errno)
        break
print('mapped', mapped)
"#;
    let out = run_moat(&["do", "--tmpfs", "/scratch:1M", "--", "python3", "-c", script]);
    assert_eq!(out.status, 0, "{}", out.describe());
    // 128 KiB reserved per small shared file: 8 fill 1 MiB, the ninth mmap
    // cannot reserve its pages (ENOMEM; its truncate is a hole and costs
    // nothing, as on Linux, where the touch would get SIGBUS instead).
    assert_eq!(out.stdout, "refused 12\nmapped 8\n", "{}", out.describe());
}

/// Listing a 10,000-entry directory again and again frees large blocks in a
/// Sentry thread's malloc arena; glibc then shrinks that heap, which (the
/// first time) opens /proc/sys/vm/overcommit_memory, and the Sentry's
/// seccomp filter killed it for that (found by bench/fileops.sh).
#[test]
fn listing_a_large_directory_repeatedly_survives_the_sentry_filter() {
    let dir = common::native::scratch("large-dir");
    let many = dir.join("many");
    fs::create_dir_all(&many).expect("mkdir");
    for i in 1..=10_000 {
        fs::write(many.join(format!("f{i:05}")), b"").expect("create");
    }
    let fileops = dir.join("fileops");
    let built = std::process::Command::new("gcc")
        .args(["-O2", "-static", "-o"])
        .arg(&fileops)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../../bench/fileops.c"))
        .status()
        .expect("run gcc");
    assert!(built.success(), "cannot build bench/fileops.c");
    let out =
        run_moat(&["do", "--", fileops.to_str().expect("utf-8"), "readdir", many.to_str().expect("utf-8"), "40", "1"]);
    assert_eq!(out.status, 0, "{}", out.describe());
    let _ = fs::remove_dir_all(&dir);
}
