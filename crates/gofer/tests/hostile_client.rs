//! The Gofer as the second barrier: driven by a hostile 9P client, as a
//! compromised Sentry would drive it, and raced by a host process that
//! swaps names under it, as a second Gofer serving the same directory can.

mod common;

use std::fs::{self, File};
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use common::*;
use gofer::{Config, FidLimits, DEFAULT_MAX_BYTES};
use p9::{getattr, setattr, Fid, SetAttr};

const S_IFIFO: u32 = 0o010000;

fn mode_of(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

fn chmod(mode: u32) -> SetAttr {
    SetAttr { valid: setattr::MODE, mode, ..SetAttr::default() }
}

/// A Gofer serving one file of a directory (a bind mount of a file) must
/// not unlink it there: that directory is hidden from the client, and in
/// the sandbox the file is a mount point, which Linux refuses to remove
/// with EBUSY.
#[test]
fn the_one_served_file_cannot_be_removed() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("hosts"), b"127.0.0.1 localhost\n").unwrap();
    let s = Session::start_serving(dir.path(), false, Some("hosts"));
    let hosts = s.walk(&["hosts"]).unwrap();
    assert_eq!(s.client.remove(hosts).unwrap_err().errno(), EBUSY);
    assert_eq!(fs::read(dir.path().join("hosts")).unwrap(), b"127.0.0.1 localhost\n");
    // Tremove releases the fid even when refused, and the file is still served.
    let again = s.walk(&["hosts"]).unwrap();
    s.client.lopen(again, O_RDONLY).unwrap();
    assert_eq!(s.read_all(again), b"127.0.0.1 localhost\n");
    s.finish();
}

/// Tsetattr changes the file the fid was walked to, never what its name
/// names by then: a host thread keeps exchanging the name with a symlink to
/// a file outside the tree while the client changes every attribute.
#[test]
fn setattr_never_follows_a_name_swapped_for_a_symlink() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret");
    fs::write(&secret, b"outside the tree\n").unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
    let before = fs::metadata(&secret).unwrap();
    fs::write(dir.path().join("victim"), b"inside\n").unwrap();
    symlink(&secret, dir.path().join("decoy")).unwrap();

    let s = Session::start(dir.path(), false);
    let victim = s.walk(&["victim"]).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (stop, served) = (stop.clone(), File::open(dir.path()).unwrap());
        thread::spawn(move || {
            let mut swaps = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let exchange = rustix::fs::RenameFlags::EXCHANGE;
                rustix::fs::renameat_with(&served, "victim", &served, "decoy", exchange).unwrap();
                swaps += 1;
            }
            swaps
        })
    };
    const ROUNDS: usize = 5000;
    let mut chmod_failures = Vec::new();
    for i in 0..ROUNDS {
        let mode = if i % 2 == 0 { 0o777 } else { 0o640 };
        if let Err(e) = s.client.setattr(victim, &chmod(mode)) {
            chmod_failures.push(e.errno());
        }
        // Owner, times and size: each refused or done to the walked file.
        let rest = SetAttr {
            valid: setattr::UID
                | setattr::GID
                | setattr::ATIME
                | setattr::ATIME_SET
                | setattr::MTIME
                | setattr::MTIME_SET
                | setattr::SIZE,
            uid: 65534,
            gid: 65534,
            atime_sec: 1,
            mtime_sec: 1,
            size: 0,
            ..SetAttr::default()
        };
        let _ = s.client.setattr(victim, &rest);
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = swapper.join().unwrap();

    let after = fs::metadata(&secret).unwrap();
    assert_eq!(after.mode() & 0o7777, 0o600, "a chmod reached the file outside the tree ({swaps} swaps)");
    assert_eq!((after.uid(), after.gid()), (before.uid(), before.gid()), "a chown reached it");
    assert_eq!((after.mtime(), after.atime(), after.len()), (before.mtime(), before.atime(), before.len()));
    assert!(swaps > 0);
    assert_eq!(chmod_failures, Vec::<i32>::new(), "a chmod of the walked file failed");
    assert_eq!(s.client.getattr(victim, getattr::MODE).unwrap().mode & 0o7777, 0o640);
    s.finish();
}

/// No more fids than the Gofer may open files: past that, ENFILE.
#[test]
fn fids_past_the_open_files_limit_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("f"), b"f").unwrap();
    let limits = FidLimits::for_open_files(116);
    assert_eq!(limits.max_fids, 100);
    let s = Session::start_with(dir.path(), Config::new(limits));
    // The attached root is the first fid.
    let clones: Vec<Fid> = (1..100).map(|_| s.walk(&[]).unwrap()).collect();
    assert_eq!(s.walk(&[]).unwrap_err().errno(), ENFILE);
    assert_eq!(s.walk(&["f"]).unwrap_err().errno(), ENFILE);
    s.client.clunk(clones[0]).unwrap();
    let f = s.walk(&["f"]).unwrap();
    s.client.lopen(f, O_RDONLY).unwrap();
    assert_eq!(s.read_all(f), b"f");
    s.finish();
}

/// Every fid is charged for its name and fds: past the budget, new fids
/// and new open files on old ones get ENFILE, and a clunk gives room back.
#[test]
fn fids_past_the_memory_budget_are_refused_until_clunked() {
    let dir = tempfile::tempdir().unwrap();
    let long = "n".repeat(200);
    fs::write(dir.path().join(&long), b"long").unwrap();
    let budget = 256 << 10;
    let s = Session::start_with(dir.path(), Config::new(FidLimits { max_fids: usize::MAX, max_bytes: budget }));
    let mut fids = Vec::new();
    let refused = loop {
        match s.walk(&[&long]) {
            Ok(fid) => fids.push(fid),
            Err(e) => break e.errno(),
        }
        assert!(fids.len() <= budget / long.len(), "no budget: {} fids of a {}-byte name", fids.len(), long.len());
    };
    assert_eq!(refused, ENFILE);
    assert!(fids.len() > 10, "only {} fids fit", fids.len());
    // An open file is charged too.
    assert_eq!(s.client.lopen(fids[0], O_RDONLY).unwrap_err().errno(), ENFILE);
    for fid in fids.drain(..5) {
        s.client.clunk(fid).unwrap();
    }
    s.client.lopen(fids[0], O_RDONLY).unwrap();
    assert_eq!(s.read_all(fids[0]), b"long");
    s.walk(&[&long]).unwrap();
    s.finish();
}

/// A client cloning one fid over and over binds nothing that the kernel
/// counts: with the limits of a Gofer allowed Docker's million open files,
/// the byte budget still stops it, long before a million fids.
#[test]
fn a_million_clones_of_one_fid_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = Session::start_with(dir.path(), Config::new(FidLimits::for_open_files(1 << 20)));
    let mut bound = 1;
    let refused = loop {
        match s.walk(&[]) {
            Ok(_) => bound += 1,
            Err(e) => break e.errno(),
        }
        // Each holds at least an fd, whose struct file alone is 256 bytes.
        assert!(bound <= DEFAULT_MAX_BYTES / 256, "{bound} fids bound and counting");
    };
    assert_eq!(refused, ENFILE);
    s.finish();
}

/// What the host sees of a served tree where the client created and
/// chmodded files asking for set-ID bits: (name, mode) pairs.
fn set_id_modes(allow_setid: bool) -> Vec<(&'static str, u32)> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    fs::write(p.join("plain"), b"").unwrap();
    fs::create_dir(p.join("dir")).unwrap();
    let s = Session::start_with(p, Config { allow_setid, ..Config::new(limits()) });
    let at = s.walk(&[]).unwrap();
    s.client.lcreate(at, b"created", O_RDWR | O_CREAT | O_EXCL, 0o4755, 0).unwrap();
    let at = s.walk(&[]).unwrap();
    s.client.lcreate(at, b"created-sgid", O_RDWR | O_CREAT | O_EXCL, 0o2755, 0).unwrap();
    s.client.mknod(s.root, b"fifo", S_IFIFO | 0o6644, 0, 0, 0).unwrap();
    for name in ["plain", "dir"] {
        let fid = s.walk(&[name]).unwrap();
        s.client.setattr(fid, &chmod(0o6755)).unwrap();
    }
    s.finish();
    ["created", "created-sgid", "fifo", "plain", "dir"].into_iter().map(|n| (n, mode_of(&p.join(n)))).collect()
}

/// Files the client creates or chmods never become set-user-ID, nor
/// set-group-ID unless a directory, on the host; unless allowed.
#[test]
fn set_id_bits_reach_the_host_only_when_allowed() {
    // The process's umask applies to creation, as for any host process;
    // read, not set, as the other tests' threads create files meanwhile.
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let umask = status.lines().find_map(|l| l.strip_prefix("Umask:")).expect("no Umask in /proc/self/status");
    let umask = u32::from_str_radix(umask.trim(), 8).unwrap();
    let masked = |mode: u32| mode & !umask;
    assert_eq!(
        set_id_modes(false),
        [
            ("created", masked(0o755)),
            ("created-sgid", masked(0o755)),
            ("fifo", masked(0o644)),
            ("plain", 0o755),
            ("dir", 0o2755),
        ]
    );
    assert_eq!(
        set_id_modes(true),
        [
            ("created", masked(0o4755)),
            ("created-sgid", masked(0o2755)),
            ("fifo", masked(0o6644)),
            ("plain", 0o6755),
            ("dir", 0o6755),
        ]
    );
}
