//! End-to-end tests of `gofer::serve`: a temporary host tree served over a
//! socketpair and driven with `p9::Client`, including escape attempts.

mod common;

use std::fs::{self, File};
use std::os::fd::AsFd;
use std::os::unix::fs::{symlink, FileExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::Path;

use common::*;
use p9::{getattr, setattr, SetAttr, QID_TYPE_DIR, QID_TYPE_FILE, QID_TYPE_SYMLINK};

/// hello.txt, big.bin, sub/nested.txt, sub/deeper/, and hostile symlinks.
fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    fs::write(p.join("hello.txt"), b"hello gofer\n").unwrap();
    fs::write(p.join("big.bin"), (0..50_000u32).map(|i| (i % 251) as u8).collect::<Vec<_>>()).unwrap();
    fs::create_dir_all(p.join("sub/deeper")).unwrap();
    fs::write(p.join("sub/nested.txt"), b"nested\n").unwrap();
    symlink("/etc/passwd", p.join("passwd_link")).unwrap();
    symlink("hello.txt", p.join("rel_link")).unwrap();
    symlink("sub", p.join("dir_link")).unwrap();
    symlink("..", p.join("up")).unwrap();
    symlink("/", p.join("slash")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        p.join("fifo"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    dir
}

#[test]
fn walk_getattr_read_and_list() {
    let dir = tree();
    let s = Session::start(dir.path(), false);

    let hello = s.walk(&["hello.txt"]).unwrap();
    let attr = s.client.getattr(hello, getattr::ALL).unwrap();
    let meta = fs::symlink_metadata(dir.path().join("hello.txt")).unwrap();
    assert_eq!(attr.size, 12);
    assert_eq!(attr.mode, meta.mode());
    assert_eq!(attr.qid.path, meta.ino());
    assert_eq!(attr.qid.ty, QID_TYPE_FILE);
    assert_eq!((attr.uid, attr.gid, attr.nlink), (meta.uid(), meta.gid(), 1));
    assert_eq!(attr.mtime_sec as i64, meta.mtime());
    assert_eq!(attr.valid & getattr::BASIC, getattr::BASIC);
    s.client.lopen(hello, O_RDONLY).unwrap();
    assert_eq!(s.read_all(hello), b"hello gofer\n");

    // A read larger than msize comes back whole, split by the client.
    let big = s.walk(&["big.bin"]).unwrap();
    s.client.lopen(big, O_RDONLY).unwrap();
    let mut buf = vec![0u8; 60_000];
    assert_eq!(s.client.read(big, 0, &mut buf).unwrap(), 50_000);
    assert_eq!(buf[..50_000], fs::read(dir.path().join("big.bin")).unwrap());

    // Multi-name walks return one qid per name.
    let (nested, qids) = s.client.walk(s.root, &[b"sub", b"nested.txt"]).unwrap();
    assert_eq!(qids.len(), 2);
    assert_eq!(qids[0].ty, QID_TYPE_DIR);
    s.client.lopen(nested, O_RDONLY).unwrap();
    assert_eq!(s.read_all(nested), b"nested\n");
    assert_eq!(s.walk(&["sub", "missing"]).unwrap_err().errno(), ENOENT);
    assert_eq!(s.walk(&["missing"]).unwrap_err().errno(), ENOENT);

    let mut expected =
        vec!["big.bin", "dir_link", "fifo", "hello.txt", "passwd_link", "rel_link", "slash", "sub", "up"];
    expected.sort();
    assert_eq!(s.list(&[], 8000), expected);
    assert_eq!(s.list(&["sub"], 8000), vec!["deeper", "nested.txt"]);

    // Directories: reading data and opening for write are refused.
    let sub = s.walk(&["sub"]).unwrap();
    assert!(s.client.lopen(sub, O_RDWR).is_err());
    s.client.lopen(sub, O_RDONLY).unwrap();
    assert!(s.client.read(sub, 0, &mut buf).is_err());

    let statfs = s.client.statfs(s.root).unwrap();
    assert!(statfs.bsize > 0);
    s.finish();
}

#[test]
fn readdir_offsets_resume_across_calls() {
    let dir = tempfile::tempdir().unwrap();
    let mut expected: Vec<String> = (0..300).map(|i| format!("file-with-a-longish-name-{i:04}")).collect();
    for name in &expected {
        fs::write(dir.path().join(name), b"").unwrap();
    }
    expected.sort();
    let s = Session::start(dir.path(), true);
    // Small counts force many Treaddir calls resuming from returned offsets.
    assert_eq!(s.list(&[], 200), expected);
    assert_eq!(s.list(&[], 7000), expected);
    // A count too small for any entry returns nothing rather than failing.
    let root = s.walk(&[]).unwrap();
    s.client.lopen(root, O_RDONLY).unwrap();
    assert!(s.client.readdir(root, 0, 10).unwrap().is_empty());
    s.finish();
}

#[test]
fn host_symlinks_are_nodes_never_followed() {
    let dir = tree();
    let s = Session::start(dir.path(), false);

    let (link, qids) = s.client.walk(s.root, &[b"passwd_link"]).unwrap();
    assert_eq!(qids[0].ty, QID_TYPE_SYMLINK);
    assert_eq!(s.client.readlink(link).unwrap(), b"/etc/passwd");
    let attr = s.client.getattr(link, getattr::ALL).unwrap();
    assert_eq!(attr.mode & 0o170000, 0o120000, "getattr must describe the link itself");
    let err = s.client.lopen(link, O_RDONLY).unwrap_err();
    assert_eq!(err.errno(), ELOOP);
    assert!(s.client.read(link, 0, &mut [0u8; 64]).is_err());
    assert!(s.client.lopen(link, O_PATH).is_err());

    // A symlink is never walked through, whether to a directory inside the
    // tree, to "..", or to "/".
    for path in [["dir_link", "nested.txt"], ["up", "etc"], ["slash", "etc"], ["rel_link", "x"]] {
        assert!(s.walk(&path).is_err(), "{path:?}");
    }
    // Readlink on anything else is EINVAL.
    let hello = s.walk(&["hello.txt"]).unwrap();
    assert_eq!(s.client.readlink(hello).unwrap_err().errno(), EINVAL);

    // FIFOs are served as metadata only.
    let fifo = s.walk(&["fifo"]).unwrap();
    assert_eq!(s.client.getattr(fifo, getattr::MODE).unwrap().mode & 0o170000, 0o010000);
    assert_eq!(s.client.lopen(fifo, O_RDONLY).unwrap_err().errno(), EPERM);
    s.finish();
}

#[test]
fn a_file_swapped_for_a_symlink_is_not_opened() {
    let dir = tree();
    let s = Session::start(dir.path(), false);
    let victim = s.walk(&["hello.txt"]).unwrap();
    // The host (not the client) swaps the walked file for a symlink out.
    fs::remove_file(dir.path().join("hello.txt")).unwrap();
    symlink("/etc/passwd", dir.path().join("hello.txt")).unwrap();
    assert!(s.client.lopen(victim, O_RDONLY).is_err());
    // Swapped for a different regular file: also refused (stale).
    let other = s.walk(&["sub", "nested.txt"]).unwrap();
    fs::remove_file(dir.path().join("sub/nested.txt")).unwrap();
    fs::write(dir.path().join("sub/nested.txt"), b"impostor").unwrap();
    assert!(s.client.lopen(other, O_RDONLY).is_err());
    s.finish();
}

#[test]
fn names_must_be_single_components() {
    let dir = tree();
    let s = Session::start(dir.path(), false);
    for name in ["..", ".", "", "sub/nested.txt", "a/b", "/etc", "../etc"] {
        let err = s.walk(&[name]).unwrap_err();
        assert_eq!(err.errno(), EINVAL, "{name:?}");
    }
    let err = s.client.walk(s.root, &[b"hel\0lo"]).unwrap_err();
    assert_eq!(err.errno(), EINVAL);
    // The same rule guards every name-taking request.
    assert_eq!(s.client.mkdir(s.root, b"..", 0o755, 0).unwrap_err().errno(), EINVAL);
    assert_eq!(s.client.unlinkat(s.root, b"sub/nested.txt", 0).unwrap_err().errno(), EINVAL);
    assert_eq!(s.client.lcreate(s.root, b"../escape", O_RDWR | O_CREAT, 0o644, 0).unwrap_err().errno(), EINVAL);
    assert!(!dir.path().parent().unwrap().join("escape").exists());
    s.finish();
}

#[test]
fn read_only_refuses_every_change() {
    let dir = tree();
    let s = Session::start(dir.path(), true);
    let file = s.walk(&["hello.txt"]).unwrap();
    for flags in [O_WRONLY, O_RDWR, O_RDONLY | O_TRUNC] {
        let clone = s.walk(&["hello.txt"]).unwrap();
        assert_eq!(s.client.lopen(clone, flags).unwrap_err().errno(), EROFS, "{flags:o}");
    }
    let sub = s.walk(&["sub"]).unwrap();
    assert_eq!(s.client.lcreate(sub, b"new", O_RDWR | O_CREAT, 0o644, 0).unwrap_err().errno(), EROFS);
    assert_eq!(s.client.mkdir(s.root, b"d", 0o755, 0).unwrap_err().errno(), EROFS);
    assert_eq!(s.client.symlink(s.root, b"l", b"x", 0).unwrap_err().errno(), EROFS);
    assert_eq!(s.client.mknod(s.root, b"p", 0o010644, 0, 0, 0).unwrap_err().errno(), EROFS);
    assert_eq!(s.client.link(s.root, file, b"h2").unwrap_err().errno(), EROFS);
    assert_eq!(s.client.unlinkat(s.root, b"hello.txt", 0).unwrap_err().errno(), EROFS);
    assert_eq!(s.client.renameat(s.root, b"hello.txt", s.root, b"moved").unwrap_err().errno(), EROFS);
    let chmod = SetAttr { valid: setattr::MODE, mode: 0o600, ..SetAttr::default() };
    assert_eq!(s.client.setattr(file, &chmod).unwrap_err().errno(), EROFS);
    let gone = s.walk(&["hello.txt"]).unwrap();
    assert_eq!(s.client.remove(gone).unwrap_err().errno(), EROFS);
    // Reading still works, and nothing changed.
    s.client.lopen(file, O_RDONLY).unwrap();
    assert_eq!(s.read_all(file), b"hello gofer\n");
    assert_eq!(fs::read(dir.path().join("hello.txt")).unwrap(), b"hello gofer\n");
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 9);
    s.finish();
}

#[test]
fn read_write_changes_reach_the_host() {
    let dir = tree();
    let p = dir.path();
    let s = Session::start(p, false);

    // Create, write, read back.
    let sub = s.walk(&["sub"]).unwrap();
    let (qid, _) = s.client.lcreate(sub, b"new.txt", O_RDWR | O_CREAT | O_EXCL, 0o640, 0).unwrap();
    assert_eq!(qid.ty, QID_TYPE_FILE);
    let payload: Vec<u8> = (0..20_000u32).map(|i| i as u8).collect();
    assert_eq!(s.client.write(sub, 0, &payload).unwrap(), payload.len());
    assert_eq!(fs::read(p.join("sub/new.txt")).unwrap(), payload);
    assert_eq!(fs::metadata(p.join("sub/new.txt")).unwrap().mode() & 0o777, 0o640);
    s.client.fsync(sub, false).unwrap();
    let again = s.walk(&["sub"]).unwrap();
    let err = s.client.lcreate(again, b"new.txt", O_RDWR | O_CREAT | O_EXCL, 0o640, 0).unwrap_err();
    assert_eq!(err.errno(), 17);
    // lcreate must not follow a symlink planted under the name.
    let root2 = s.walk(&[]).unwrap();
    assert_eq!(s.client.lcreate(root2, b"passwd_link", O_WRONLY | O_CREAT, 0o644, 0).unwrap_err().errno(), ELOOP);

    // Truncate via setattr, then mode and times.
    let file = s.walk(&["sub", "new.txt"]).unwrap();
    let trunc = SetAttr { valid: setattr::SIZE, size: 10, ..SetAttr::default() };
    s.client.setattr(file, &trunc).unwrap();
    assert_eq!(fs::metadata(p.join("sub/new.txt")).unwrap().len(), 10);
    let chmod = SetAttr { valid: setattr::MODE, mode: 0o600, ..SetAttr::default() };
    s.client.setattr(file, &chmod).unwrap();
    assert_eq!(fs::metadata(p.join("sub/new.txt")).unwrap().permissions().mode() & 0o7777, 0o600);
    let times = SetAttr {
        valid: setattr::ATIME | setattr::ATIME_SET | setattr::MTIME | setattr::MTIME_SET,
        atime_sec: 1_000_000,
        mtime_sec: 2_000_000,
        mtime_nsec: 5,
        ..SetAttr::default()
    };
    s.client.setattr(file, &times).unwrap();
    let meta = fs::metadata(p.join("sub/new.txt")).unwrap();
    assert_eq!((meta.atime(), meta.mtime(), meta.mtime_nsec()), (1_000_000, 2_000_000, 5));
    let chown = SetAttr { valid: setattr::UID | setattr::GID, uid: meta.uid(), gid: meta.gid(), ..SetAttr::default() };
    s.client.setattr(file, &chown).unwrap();
    // chmod on a symlink node changes nothing on the target.
    let link = s.walk(&["passwd_link"]).unwrap();
    assert!(s.client.setattr(link, &chmod).is_err());

    // Directories, symlinks, FIFOs, hard links.
    s.client.mkdir(s.root, b"made", 0o750, 0).unwrap();
    assert!(p.join("made").is_dir());
    s.client.symlink(s.root, b"made_link", b"../../anywhere", 0).unwrap();
    assert_eq!(fs::read_link(p.join("made_link")).unwrap(), Path::new("../../anywhere"));
    s.client.mknod(s.root, b"pipe", 0o010600, 0, 0, 0).unwrap();
    assert_eq!(s.client.mknod(s.root, b"null", 0o020666, 1, 3, 0).unwrap_err().errno(), EPERM);
    assert!(!p.join("null").exists());
    let hello = s.walk(&["hello.txt"]).unwrap();
    s.client.link(s.root, hello, b"hello2.txt").unwrap();
    assert_eq!(fs::metadata(p.join("hello.txt")).unwrap().nlink(), 2);

    // Rename: a fid walked before the rename still opens the file after.
    // (`sub` became the created file's fid, so walk to the directory afresh.)
    let sub_dir = s.walk(&["sub"]).unwrap();
    s.client.renameat(s.root, b"hello.txt", sub_dir, b"moved.txt").unwrap();
    assert!(p.join("sub/moved.txt").exists());
    s.client.lopen(hello, O_RDONLY).unwrap();
    assert_eq!(s.read_all(hello), b"hello gofer\n");

    // Unlink and remove.
    s.client.unlinkat(s.root, b"hello2.txt", 0).unwrap();
    s.client.unlinkat(s.root, b"made", p9::AT_REMOVEDIR).unwrap();
    assert!(!p.join("made").exists());
    let pipe = s.walk(&["pipe"]).unwrap();
    s.client.remove(pipe).unwrap();
    assert!(!p.join("pipe").exists());
    assert!(s.client.remove(s.root).is_err(), "the root cannot be removed");
    s.finish();
}

fn is_cloexec(fd: impl AsFd) -> bool {
    rustix::io::fcntl_getfd(fd).unwrap().contains(rustix::io::FdFlags::CLOEXEC)
}

#[test]
fn a_donated_regular_file_reads_the_host_file() {
    let dir = tree();
    let s = Session::start(dir.path(), false);
    let hello = s.walk(&["hello.txt"]).unwrap();
    let (qid, fd) = s.client.donate(hello, O_RDONLY).unwrap();
    assert_eq!(qid.ty, QID_TYPE_FILE);
    assert_eq!(qid.path, fs::metadata(dir.path().join("hello.txt")).unwrap().ino());
    assert!(is_cloexec(&fd), "a donated fd must be close-on-exec");
    let status = rustix::fs::fcntl_getfl(&fd).unwrap();
    assert!(!status.contains(rustix::fs::OFlags::NONBLOCK), "the reopen's O_NONBLOCK must not stay");
    let file = File::from(fd);
    let mut buf = [0u8; 64];
    let n = file.read_at(&mut buf, 0).unwrap();
    assert_eq!(&buf[..n], b"hello gofer\n");
    // The fid itself was not opened: reading it is refused, opening it works.
    assert_eq!(s.client.read(hello, 0, &mut buf).unwrap_err().errno(), EBADF);
    s.client.lopen(hello, O_RDONLY).unwrap();
    assert_eq!(s.read_all(hello), b"hello gofer\n");
    // A donation from an opened fid works too, and each is a new open file.
    let (_, second) = s.client.donate(hello, O_RDONLY).unwrap();
    assert_eq!(File::from(second).read_at(&mut buf, 6).unwrap(), 6);
    // Flags the Gofer does not pass through are dropped: O_PATH still
    // yields a readable fd, O_CREAT creates nothing.
    let big = s.walk(&["big.bin"]).unwrap();
    let (_, fd) = s.client.donate(big, O_RDONLY | O_PATH | O_CREAT).unwrap();
    let mut data = vec![0u8; 60_000];
    assert_eq!(File::from(fd).read_at(&mut data, 0).unwrap(), 50_000);
    assert_eq!(data[..50_000], fs::read(dir.path().join("big.bin")).unwrap());
    s.finish();
}

#[test]
fn a_read_only_gofer_donates_only_for_reading() {
    let dir = tree();
    let s = Session::start(dir.path(), true);
    let hello = s.walk(&["hello.txt"]).unwrap();
    for flags in [O_RDWR, O_WRONLY, O_RDONLY | O_TRUNC] {
        assert_eq!(s.client.donate(hello, flags).unwrap_err().errno(), EROFS, "{flags:o}");
    }
    let (_, fd) = s.client.donate(hello, O_RDONLY).unwrap();
    let file = File::from(fd);
    assert!(file.write_at(b"changed", 0).is_err(), "a read-only donation must not write");
    assert_eq!(fs::read(dir.path().join("hello.txt")).unwrap(), b"hello gofer\n");
    s.finish();
}

#[test]
fn writes_through_a_donated_fd_reach_the_host() {
    let dir = tree();
    let s = Session::start(dir.path(), false);
    let nested = s.walk(&["sub", "nested.txt"]).unwrap();
    let (_, fd) = s.client.donate(nested, O_RDWR).unwrap();
    let file = File::from(fd);
    file.write_at(b"NESTED, and more", 0).unwrap();
    assert_eq!(fs::read(dir.path().join("sub/nested.txt")).unwrap(), b"NESTED, and more");
    // O_TRUNC is passed through on a read-write Gofer.
    let (_, fd) = s.client.donate(nested, O_WRONLY | O_TRUNC).unwrap();
    assert_eq!(fs::metadata(dir.path().join("sub/nested.txt")).unwrap().len(), 0);
    File::from(fd).write_at(b"x", 0).unwrap();
    assert_eq!(fs::read(dir.path().join("sub/nested.txt")).unwrap(), b"x");
    s.finish();
}

#[test]
fn only_regular_files_are_donated_and_symlinks_never_followed() {
    let dir = tree();
    let s = Session::start(dir.path(), false);
    let sub = s.walk(&["sub"]).unwrap();
    assert_eq!(s.client.donate(sub, O_RDONLY).unwrap_err().errno(), EISDIR);
    assert_eq!(s.client.donate(s.root, O_RDONLY).unwrap_err().errno(), EISDIR);
    let fifo = s.walk(&["fifo"]).unwrap();
    assert_eq!(s.client.donate(fifo, O_RDONLY).unwrap_err().errno(), EPERM);
    assert_eq!(s.client.donate(fifo, O_WRONLY).unwrap_err().errno(), EPERM);
    for link in ["passwd_link", "rel_link", "dir_link", "slash"] {
        let fid = s.walk(&[link]).unwrap();
        assert_eq!(s.client.donate(fid, O_RDONLY).unwrap_err().errno(), ELOOP, "{link}");
    }
    // A walked file swapped on the host for a symlink, or a FIFO, is not
    // opened through it (nor does the FIFO block the Gofer).
    let victim = s.walk(&["hello.txt"]).unwrap();
    fs::remove_file(dir.path().join("hello.txt")).unwrap();
    symlink("/etc/passwd", dir.path().join("hello.txt")).unwrap();
    assert!(s.client.donate(victim, O_RDONLY).is_err());
    let victim = s.walk(&["sub", "nested.txt"]).unwrap();
    fs::remove_file(dir.path().join("sub/nested.txt")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        dir.path().join("sub/nested.txt"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    assert!(s.client.donate(victim, O_RDONLY).is_err());
    // The session is still usable after every refusal.
    let big = s.walk(&["big.bin"]).unwrap();
    s.client.donate(big, O_RDONLY).unwrap();
    s.finish();
}

#[test]
fn missing_root_is_a_clear_error() {
    let (_a, b) = UnixStream::pair().unwrap();
    let config = gofer::Config { read_only: true, ..gofer::Config::new(limits()) };
    let err = gofer::serve(b, Path::new("/nonexistent/moat-root"), &config).unwrap_err();
    assert!(matches!(err, gofer::GoferError::OpenRoot { .. }));
    assert!(err.to_string().contains("/nonexistent/moat-root"));
}

/// A Gofer serving one file of a directory (a bind mount of a file, such as
/// Docker's /etc/hosts) reaches that file and nothing else of the directory.
#[test]
fn a_one_file_gofer_reaches_only_its_file() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("hosts"), b"127.0.0.1 localhost\n").unwrap();
    fs::write(dir.path().join("config.json"), b"{\"Privileged\": false}\n").unwrap();
    fs::create_dir(dir.path().join("sub")).unwrap();
    let s = Session::start_serving(dir.path(), false, Some("hosts"));
    let errno = |r: Result<(), p9::Error>| r.map_err(|e| e.errno()).err();

    let hosts = s.walk(&["hosts"]).expect("the served file is reachable");
    s.client.lopen(hosts, O_RDWR).unwrap();
    assert_eq!(s.read_all(hosts), b"127.0.0.1 localhost\n");
    s.client.write(hosts, 0, b"10").unwrap();
    for name in ["config.json", "sub", "missing"] {
        assert_eq!(s.walk(&[name]).map(|_| ()).map_err(|e| e.errno()).err(), Some(ENOENT), "{name} must be hidden");
    }
    let root = s.walk(&[]).unwrap();
    assert_eq!(errno(s.client.lopen(root, O_RDONLY).map(|_| ())), Some(EACCES), "listing the directory");
    assert_eq!(errno(s.client.mkdir(s.root, b"d", 0o755, 0).map(|_| ())), Some(EACCES));
    assert_eq!(errno(s.client.symlink(s.root, b"l", b"/", 0).map(|_| ())), Some(EACCES));
    assert_eq!(errno(s.client.unlinkat(s.root, b"hosts", 0)), Some(EACCES));
    assert_eq!(errno(s.client.renameat(s.root, b"hosts", s.root, b"h2")), Some(EACCES));
    let chmod = p9::SetAttr { valid: p9::setattr::MODE, mode: 0o777, ..p9::SetAttr::default() };
    assert_eq!(errno(s.client.setattr(s.root, &chmod)), Some(EACCES));
    let fresh = s.walk(&[]).unwrap();
    assert_eq!(errno(s.client.lcreate(fresh, b"new", O_RDWR | O_CREAT, 0o644, 0).map(|_| ())), Some(EACCES));
    assert_eq!(fs::read(dir.path().join("hosts")).unwrap(), b"107.0.0.1 localhost\n");
    assert!(!dir.path().join("new").exists() && !dir.path().join("d").exists());
    drop(s.client);
    s.server.join().unwrap().unwrap();
}
