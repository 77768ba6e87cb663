//! Interoperability with a real 9P2000.L server: our `Client` against
//! Debian's `diod`, serving a temporary tree over a Unix domain socket.
//!
//! diod must be installed (`apt-get install diod`); without it this test
//! fails rather than skips, so that CI cannot pass without checking interop.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, MetadataExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use p9::{getattr, Client, Error, Fid, AT_REMOVEDIR, QID_TYPE_DIR, QID_TYPE_SYMLINK};

/// Linux open flags, as 9P2000.L carries them.
const O_RDONLY: u32 = 0;
const O_WRONLY: u32 = 0o1;
const O_CREAT: u32 = 0o100;
const O_EXCL: u32 = 0o200;
const O_DIRECTORY: u32 = 0o200000;
const ENOENT: i32 = 2;
const EOPNOTSUPP: i32 = 95;
const MSIZE: u32 = 64 * 1024;

/// A diod serving a fresh temporary tree; killed, and the tree removed, on drop.
struct Diod {
    child: Child,
    dir: PathBuf,
}

impl Diod {
    fn export(&self) -> PathBuf {
        self.dir.join("export")
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("diod.sock")
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.join("diod.log")).unwrap_or_default()
    }

    /// Starts diod on a new tree and waits until its socket accepts.
    fn start() -> Diod {
        let binary = find_diod().unwrap_or_else(|| {
            panic!(
                "diod, the 9P2000.L server this interop test runs against, is not installed \
                 (looked in $PATH, /usr/sbin and /sbin): install it with `apt-get install -y diod`"
            )
        });
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!("moat-p9-diod-{}-{nanos}", std::process::id()));
        let export = dir.join("export");
        fs::create_dir_all(export.join("sub")).expect("create the export tree");
        fs::write(export.join("hello.txt"), b"hello from the host\n").expect("write hello.txt");
        fs::write(export.join("sub/nested.txt"), b"nested").expect("write sub/nested.txt");
        symlink("hello.txt", export.join("link")).expect("create link");
        let log = fs::File::create(dir.join("diod.log")).expect("create diod.log");

        // -f: stay in the foreground, so the child is diod itself and can be
        // killed; -n: no authentication; -N: take the attaching uid as it
        // is, without a passwd lookup; -c /dev/null: ignore the host's
        // /etc/diod.conf; -l: listen on a Unix socket, the transport our
        // `Client` speaks.
        let socket = dir.join("diod.sock");
        let child = Command::new(&binary)
            .args(["-f", "-n", "-N", "-c", "/dev/null", "-L", "stderr", "-l"])
            .arg(&socket)
            .arg("-e")
            .arg(&export)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let mut diod = Diod { child, dir };

        let deadline = Instant::now() + Duration::from_secs(10);
        while UnixStream::connect(&socket).is_err() {
            if let Ok(Some(status)) = diod.child.try_wait() {
                panic!("diod exited with {status} before listening; its log:\n{}", diod.log());
            }
            assert!(
                Instant::now() < deadline,
                "diod did not listen on {} within 10 s; its log:\n{}",
                socket.display(),
                diod.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
        diod
    }
}

impl Drop for Diod {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn find_diod() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join("diod"))
        .find(|candidate| candidate.is_file())
}

fn names_on_host(dir: &Path) -> BTreeSet<Vec<u8>> {
    fs::read_dir(dir)
        .expect("read_dir on the host")
        .map(|entry| entry.expect("read_dir entry").file_name().as_bytes().to_vec())
        .collect()
}

/// Every name in the opened directory `fid`, "." and ".." left out; read
/// a few entries at a time, so that continuing from a cookie is tested too.
fn names_over_9p(client: &Client, fid: Fid) -> BTreeSet<Vec<u8>> {
    let mut names = BTreeSet::new();
    let mut offset = 0;
    loop {
        let entries = client.readdir(fid, offset, 80).expect("readdir");
        let Some(last) = entries.last() else { break };
        offset = last.offset;
        names.extend(entries.into_iter().map(|e| e.name).filter(|n| n != b"." && n != b".."));
    }
    names
}

/// Removes `name` from directory `dir` with Tunlinkat. diod before 1.1.0
/// (Debian 12 ships 1.0.24) answers Tunlinkat with EOPNOTSUPP and leaves the
/// entry; then do what Linux's v9fs does on that answer: walk and Tremove.
fn unlink(client: &Client, dir: Fid, host_dir: &Path, name: &str, flags: u32) {
    match client.unlinkat(dir, name.as_bytes(), flags) {
        Ok(()) => {}
        Err(Error::Remote(EOPNOTSUPP)) => {
            assert!(host_dir.join(name).symlink_metadata().is_ok(), "a refused unlinkat removed {name}");
            let (fid, _) = client.walk(dir, &[name.as_bytes()]).unwrap_or_else(|e| panic!("walk {name}: {e}"));
            client.remove(fid).unwrap_or_else(|e| panic!("remove {name}: {e}"));
        }
        Err(e) => panic!("unlinkat {name}: {e}"),
    }
}

#[test]
fn client_interoperates_with_diod() {
    let diod = Diod::start();
    let export = diod.export();
    let stream = UnixStream::connect(diod.socket()).expect("connect to diod");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("set a read timeout");
    let client = Client::new(stream, MSIZE).expect("negotiate 9P2000.L with diod");
    assert!(client.msize() <= MSIZE);

    // diod refuses an attach that names no user; attach as ourselves.
    let uid = fs::metadata("/proc/self").expect("stat /proc/self").uid();
    let aname = export.to_str().expect("UTF-8 temp path");
    let (root, root_qid) =
        client.attach_as(aname, uid).unwrap_or_else(|e| panic!("attach {aname}: {e}; diod log:\n{}", diod.log()));
    assert_eq!(root_qid.ty & QID_TYPE_DIR, QID_TYPE_DIR, "the root is a directory");

    // Walk and getattr, checked against the host's stat.
    let (hello, qids) = client.walk(root, &[b"hello.txt"]).expect("walk hello.txt");
    assert_eq!(qids.len(), 1);
    let attr = client.getattr(hello, getattr::BASIC).expect("getattr hello.txt");
    let host = fs::metadata(export.join("hello.txt")).expect("stat hello.txt");
    assert_eq!(attr.size, host.len());
    assert_eq!(attr.mode, host.mode());
    assert_eq!(attr.qid.path, host.ino(), "diod reports the inode number as qid.path");

    // Read.
    client.lopen(hello, O_RDONLY).expect("lopen hello.txt");
    let mut buf = [0u8; 100];
    let n = client.read(hello, 0, &mut buf).expect("read hello.txt");
    assert_eq!(&buf[..n], b"hello from the host\n");
    client.clunk(hello).expect("clunk hello.txt");

    // A walk of several names, and one that fails.
    let (nested, qids) = client.walk(root, &[b"sub", b"nested.txt"]).expect("walk sub/nested.txt");
    assert_eq!(qids.len(), 2);
    assert_eq!(qids[0].ty & QID_TYPE_DIR, QID_TYPE_DIR);
    client.clunk(nested).expect("clunk nested.txt");
    match client.walk(root, &[b"no-such-file"]) {
        Err(Error::Remote(ENOENT)) => {}
        other => panic!("walk to a missing name: expected ENOENT, got {other:?}"),
    }

    // Create and write; the host sees the bytes.
    let (created, _) = client.walk(root, &[]).expect("clone the root fid");
    client.lcreate(created, b"written.txt", O_WRONLY | O_CREAT | O_EXCL, 0o644, 0).expect("lcreate written.txt");
    let payload: Vec<u8> = (0..3 * MSIZE).map(|i| (i % 251) as u8).collect();
    assert_eq!(client.write(created, 0, &payload).expect("write written.txt"), payload.len());
    client.clunk(created).expect("clunk written.txt");
    assert_eq!(fs::read(export.join("written.txt")).expect("read written.txt on the host"), payload);

    // Readdir lists what the host lists.
    let (listing, _) = client.walk(root, &[]).expect("clone the root fid");
    client.lopen(listing, O_RDONLY | O_DIRECTORY).expect("lopen the root directory");
    assert_eq!(names_over_9p(&client, listing), names_on_host(&export));
    client.clunk(listing).expect("clunk the directory fid");

    // Readlink.
    let (link, qids) = client.walk(root, &[b"link"]).expect("walk link");
    assert_eq!(qids[0].ty & QID_TYPE_SYMLINK, QID_TYPE_SYMLINK);
    assert_eq!(client.readlink(link).expect("readlink"), b"hello.txt");
    client.clunk(link).expect("clunk link");

    // Mkdir and unlinkat (or its fallback), seen from the host.
    client.mkdir(root, b"made", 0o755, 0).expect("mkdir made");
    assert!(export.join("made").is_dir(), "mkdir over 9P made no directory on the host");
    unlink(&client, root, &export, "made", AT_REMOVEDIR);
    assert!(!export.join("made").exists(), "unlinkat left the directory on the host");
    unlink(&client, root, &export, "written.txt", 0);
    assert!(!export.join("written.txt").exists(), "unlinkat left the file on the host");
    match client.walk(root, &[b"written.txt"]) {
        Err(Error::Remote(ENOENT)) => {}
        other => panic!("walk to a removed name: expected ENOENT, got {other:?}"),
    }

    client.clunk(root).expect("clunk the root fid");
}

/// moat's Tdonate is no standard message: diod must refuse it (with an
/// error or by hanging up) and our client must report that, not panic. On a
/// connection of its own, since diod may hang up.
#[test]
fn diod_refuses_fd_donation() {
    let diod = Diod::start();
    let export = diod.export();
    let stream = UnixStream::connect(diod.socket()).expect("connect to diod");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("set a read timeout");
    let client = Client::new(stream, MSIZE).expect("negotiate 9P2000.L with diod");
    let uid = fs::metadata("/proc/self").expect("stat /proc/self").uid();
    let aname = export.to_str().expect("UTF-8 temp path");
    let (root, _) = client.attach_as(aname, uid).unwrap_or_else(|e| panic!("attach {aname}: {e}"));
    let (hello, _) = client.walk(root, &[b"hello.txt"]).expect("walk hello.txt");
    let before = client.round_trips();
    match client.donate(hello, O_RDONLY) {
        Ok(_) => panic!("diod donated an fd; it does not know the extension"),
        // diod 1.0.24 hangs up on a message type it does not know; the
        // client then refuses further requests instead of misreading.
        Err(Error::Io(_)) => assert!(matches!(client.getattr(root, getattr::BASIC), Err(Error::Broken))),
        // A diod that answers with an errno instead keeps the session going.
        Err(Error::Remote(_)) => {
            client.getattr(root, getattr::BASIC).expect("getattr after a refused Tdonate");
        }
        Err(e) => panic!("donate against diod: expected an errno or a hang-up, got {e}"),
    }
    assert!(client.round_trips() > before, "the Tdonate was not sent");
}
