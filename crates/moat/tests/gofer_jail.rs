//! The Gofer's jail, checked from outside through /proc: a `moat gofer`
//! must serve 9P from a mount namespace holding only its root, with an empty
//! network namespace, the five file capabilities, no_new_privs and a seccomp
//! filter that kills it on any system call outside its allow-list.
//!
//! Needs root, like the other moat tests.

mod common;

use std::collections::HashMap;
use std::fs::{self, File};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

use common::{host_descendants, moat_binary, moat_command, Output, Rootfs, Running, TempDir};
use p9::{getattr, setattr, Client, SetAttr};

/// CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER; not
/// CAP_FSETID, held only with `--allow-setid` (see tests/volume_setid.rs).
const FILE_CAPABILITIES: u64 = 0xf;
const SIGSYS: i32 = 31;
const EROFS: i32 = 30;

const O_RDONLY: u32 = 0;
const O_RDWR: u32 = 2;
const O_CREAT: u32 = 0o100;
const O_EXCL: u32 = 0o200;

/// Held while a child is spawned: the Gofer's end of the socketpair is
/// inheritable for that moment, and must reach only that child.
static SPAWN: Mutex<()> = Mutex::new(());

/// A `moat gofer` started as `moat do` starts it, plus one inherited fd
/// (an open host file) that the jail must close.
struct Gofer {
    running: Running,
    client: UnixStream,
    /// The name of the host file whose fd the Gofer inherited.
    leaked: String,
    _leaked_dir: TempDir,
}

/// Who the Gofer is started as.
#[derive(Clone, Copy, PartialEq)]
enum User {
    Root,
    /// An unprivileged user (nobody), who gets the jail in a user namespace.
    Nobody,
}

const NOBODY: u32 = 65534;

impl Gofer {
    fn spawn(root: &Path, read_only: bool, extra: &[&str]) -> Gofer {
        Gofer::spawn_as(User::Root, root, read_only, extra)
    }

    fn spawn_as(user: User, root: &Path, read_only: bool, extra: &[&str]) -> Gofer {
        let leaked_dir = TempDir::new("gofer-leak");
        let leaked = leaked_dir.path().join("host-secret");
        fs::write(&leaked, b"host secret\n").expect("cannot write the host file");
        let (client, server) = UnixStream::pair().expect("socketpair");
        let guard = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
        let leaked_file = File::open(&leaked).expect("cannot open the host file");
        host::sys::set_cloexec(server.as_fd(), false).expect("cannot clear FD_CLOEXEC");
        host::sys::set_cloexec(leaked_file.as_fd(), false).expect("cannot clear FD_CLOEXEC");
        let mut command = moat_command(&["gofer", "--fd", &server.as_raw_fd().to_string(), "--root"]);
        command.arg(root);
        if read_only {
            command.arg("--read-only");
        }
        command.args(extra);
        if user == User::Nobody {
            command.uid(NOBODY).gid(NOBODY);
        }
        let running = Running::spawn(command, "moat gofer", false);
        drop((server, leaked_file));
        drop(guard);
        Gofer { running, client, leaked: leaked.display().to_string(), _leaked_dir: leaked_dir }
    }

    fn pid(&self) -> u32 {
        self.running.pid()
    }

    /// A 9P session with the Gofer; a reply proves it is jailed and serving.
    fn connect(&self) -> Client {
        let stream = self.client.try_clone().expect("cannot clone the 9P socket");
        Client::new(stream, 8192).expect("the jailed gofer did not answer Tversion")
    }

    /// Closes our end of the socket and waits for the Gofer to leave.
    fn finish(self) -> Output {
        drop(self.client);
        self.running.finish()
    }
}

/// The fields of /proc/PID/status.
fn status(pid: u32) -> HashMap<String, String> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).expect("cannot read the gofer's status");
    text.lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(key, value)| (key.to_owned(), value.trim().to_owned()))
        .collect()
}

fn capabilities(status: &HashMap<String, String>, set: &str) -> u64 {
    let hex = status.get(set).unwrap_or_else(|| panic!("no {set} in the status"));
    u64::from_str_radix(hex, 16).unwrap_or_else(|e| panic!("{set} {hex:?}: {e}"))
}

fn identity(path: &Path) -> (u64, u64) {
    let meta = fs::metadata(path).unwrap_or_else(|e| panic!("cannot stat {}: {e}", path.display()));
    (meta.dev(), meta.ino())
}

fn mountinfo(pid: u32) -> Vec<String> {
    let text = fs::read_to_string(format!("/proc/{pid}/mountinfo")).expect("cannot read the gofer's mountinfo");
    text.lines().map(str::to_owned).collect()
}

/// Everything the jail promises, seen from outside the Gofer with pid `pid`
/// serving `root`.
fn assert_jailed(pid: u32, root: &Path, read_only: bool) {
    let status = status(pid);
    let context = format!("gofer pid {pid}, status:\n{status:#?}");
    assert_eq!(status.get("Seccomp").map(String::as_str), Some("2"), "seccomp must be in filter mode; {context}");
    assert_eq!(status.get("NoNewPrivs").map(String::as_str), Some("1"), "{context}");
    for set in ["CapEff", "CapPrm", "CapBnd"] {
        assert_eq!(capabilities(&status, set), FILE_CAPABILITIES, "{set} must be the file set only; {context}");
    }
    for set in ["CapInh", "CapAmb"] {
        assert_eq!(capabilities(&status, set), 0, "{set} must be empty; {context}");
    }

    // Its root is the served directory, and the only mount it can see.
    let proc_root = Path::new("/proc").join(pid.to_string()).join("root");
    assert_eq!(identity(&proc_root), identity(root), "/proc/{pid}/root must be {}", root.display());
    let mounts = mountinfo(pid);
    assert_eq!(mounts.len(), 1, "the served root must be the gofer's only mount: {mounts:#?}");
    let fields: Vec<&str> = mounts[0].split(' ').collect();
    assert_eq!(fields[4], "/", "the served root must be mounted at /: {mounts:?}");
    let options: Vec<&str> = fields[5].split(',').collect();
    assert!(options.contains(&"nosuid") && options.contains(&"nodev"), "mount options {options:?}");
    assert_eq!(options.contains(&"ro"), read_only, "read-only serving must mount the root read-only: {options:?}");

    // Fresh namespaces, and no network in its own.
    for ns in ["mnt", "net", "ipc", "uts"] {
        let theirs = fs::read_link(format!("/proc/{pid}/ns/{ns}")).expect("cannot read the gofer's namespace");
        let ours = fs::read_link(format!("/proc/self/ns/{ns}")).expect("cannot read our namespace");
        assert_ne!(theirs, ours, "the gofer must have a {ns} namespace of its own");
    }
    let devices = fs::read_to_string(format!("/proc/{pid}/net/dev")).expect("cannot read the gofer's net/dev");
    let interfaces: Vec<&str> = devices.lines().skip(2).filter_map(|l| l.split(':').next()).map(str::trim).collect();
    assert_eq!(interfaces, ["lo"], "the gofer's network namespace must be empty");
}

/// What the Gofer's fds point at (the socket shows as `socket:[N]`).
fn open_files(pid: u32) -> Vec<String> {
    let dir = fs::read_dir(format!("/proc/{pid}/fd")).expect("cannot list the gofer's fds");
    dir.flatten().filter_map(|e| fs::read_link(e.path()).ok()).map(|t| t.display().to_string()).collect()
}

#[test]
fn gofer_serves_its_rootfs_from_inside_the_jail() {
    let rootfs = Rootfs::new();
    let gofer = Gofer::spawn(rootfs.path(), true, &[]);
    let client = gofer.connect();
    let (root, _) = client.attach("").expect("attach");
    let (issue, _) = client.walk(root, &[b"etc", b"issue"]).expect("walk to etc/issue");
    client.lopen(issue, O_RDONLY).expect("open etc/issue");
    let mut buf = [0u8; 64];
    let n = client.read(issue, 0, &mut buf).expect("read etc/issue");
    assert_eq!(&buf[..n], b"moat first light\n");
    let (tmp, _) = client.walk(root, &[b"tmp"]).expect("walk to tmp");
    let refused = client.mkdir(tmp, b"new", 0o755, 0).expect_err("a read-only gofer must refuse mkdir");
    assert_eq!(refused.errno(), EROFS);

    let pid = gofer.pid();
    assert_jailed(pid, rootfs.path(), true);
    // Paths resolve inside the rootfs: the host file next to it is not there.
    let inside = Path::new("/proc").join(pid.to_string()).join("root");
    assert_eq!(fs::read(inside.join("etc/issue")).expect("etc/issue through /proc/PID/root"), b"moat first light\n");
    assert!(!inside.join(gofer.leaked.trim_start_matches('/')).exists(), "a host file is visible in the jail");
    // Only the inherited socket and what the Gofer opened itself are open.
    let files = open_files(pid);
    assert!(!files.iter().any(|f| f.contains("host-secret")), "an inherited host fd survived the jail: {files:?}");
    assert_eq!(files.iter().filter(|f| f.starts_with("socket:")).count(), 1, "open files: {files:?}");

    drop(client);
    let output = gofer.finish();
    assert!(output.status == 0 && output.stderr.is_empty(), "a jailed gofer must exit cleanly\n{}", output.describe());
}

#[test]
fn gofer_serving_the_host_root_sees_no_host_mounts() {
    let gofer = Gofer::spawn(Path::new("/"), true, &[]);
    let client = gofer.connect();
    let (root, _) = client.attach("").expect("attach");
    let (etc, _) = client.walk(root, &[b"etc"]).expect("walk to etc");
    let attr = client.getattr(etc, getattr::BASIC).expect("getattr of /etc");
    assert_eq!(attr.qid.path, fs::metadata("/etc").expect("stat /etc").ino());

    let pid = gofer.pid();
    assert_jailed(pid, Path::new("/"), true);
    // The host's /proc is a mount of its own, so the jail has an empty directory there.
    let proc_inside = Path::new("/proc").join(pid.to_string()).join("root/proc");
    let listed: Vec<_> =
        fs::read_dir(&proc_inside).map(|d| d.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
    assert!(listed.is_empty(), "the host's /proc is visible in the jail: {listed:?}");

    drop(client);
    let output = gofer.finish();
    assert!(output.status == 0, "{}", output.describe());
}

#[test]
fn gofer_is_killed_by_a_system_call_outside_its_list() {
    let rootfs = Rootfs::new();
    let gofer = Gofer::spawn(rootfs.path(), true, &["--selftest-forbidden-syscall"]);
    let output = gofer.finish();
    assert!(
        output.status == 128 + SIGSYS,
        "a jailed gofer calling socket(2) must die by SIGSYS (status {})\n{}",
        128 + SIGSYS,
        output.describe()
    );
}

#[test]
fn jailed_gofer_reports_a_broken_session_and_exits() {
    let rootfs = Rootfs::new();
    let gofer = Gofer::spawn(rootfs.path(), true, &[]);
    // A frame smaller than its own header: the Gofer cannot answer it.
    std::io::Write::write_all(&mut &gofer.client, &[3, 0, 0, 0, 100, 0, 0]).expect("cannot write to the gofer");
    let output = gofer.finish();
    assert!(
        output.status == 1 && output.stderr.contains("moat gofer: gofer 9P session failed"),
        "a jailed gofer must still report its own failure (not be killed doing so)\n{}",
        output.describe()
    );
}

/// Started by a user without privileges, the Gofer builds the same jail
/// inside a user namespace of its own.
#[test]
fn unprivileged_gofer_jails_itself_in_a_user_namespace() {
    let rootfs = Rootfs::new();
    let gofer = Gofer::spawn_as(User::Nobody, rootfs.path(), true, &[]);
    let client = gofer.connect();
    let (root, _) = client.attach("").expect("attach");
    let (issue, _) = client.walk(root, &[b"etc", b"issue"]).expect("walk to etc/issue");
    client.lopen(issue, O_RDONLY).expect("open etc/issue");

    let pid = gofer.pid();
    assert_jailed(pid, rootfs.path(), true);
    let theirs = fs::read_link(format!("/proc/{pid}/ns/user")).expect("cannot read the gofer's user namespace");
    let ours = fs::read_link("/proc/self/ns/user").expect("cannot read our user namespace");
    assert_ne!(theirs, ours, "an unprivileged gofer must jail itself in a user namespace of its own");
    let uid_map = fs::read_to_string(format!("/proc/{pid}/uid_map")).expect("cannot read the gofer's uid_map");
    let mapped: Vec<&str> = uid_map.split_whitespace().collect();
    assert_eq!(mapped, ["65534", "65534", "1"], "only the user's own uid may be mapped");

    drop(client);
    let output = gofer.finish();
    assert!(output.status == 0, "{}", output.describe());
}

/// Every operation a read-write Gofer serves, under the filter: a call
/// missing from the allow-list would kill it half-way.
#[test]
fn jailed_read_write_gofer_serves_every_operation() {
    let dir = TempDir::new("gofer-rw");
    let p = dir.path();
    fs::write(p.join("hello.txt"), b"hello gofer\n").expect("write hello.txt");
    fs::create_dir(p.join("sub")).expect("mkdir sub");
    let gofer = Gofer::spawn(p, false, &[]);
    let client = gofer.connect();
    let (root, _) = client.attach("").expect("attach");
    assert_jailed(gofer.pid(), p, false);

    let (sub, _) = client.walk(root, &[b"sub"]).expect("walk sub");
    client.lcreate(sub, b"new.txt", O_RDWR | O_CREAT | O_EXCL, 0o640, 0).expect("lcreate");
    let payload: Vec<u8> = (0..20_000u32).map(|i| i as u8).collect();
    assert_eq!(client.write(sub, 0, &payload).expect("write"), payload.len());
    client.fsync(sub, false).expect("fsync");
    client.fsync(sub, true).expect("fdatasync");
    let mut back = vec![0u8; payload.len()];
    assert_eq!(client.read(sub, 0, &mut back).expect("read"), payload.len());
    assert_eq!(back, payload);
    assert_eq!(fs::read(p.join("sub/new.txt")).expect("read new.txt on the host"), payload);

    let (file, _) = client.walk(root, &[b"sub", b"new.txt"]).expect("walk new.txt");
    let truncate = SetAttr { valid: setattr::SIZE, size: 10, ..SetAttr::default() };
    client.setattr(file, &truncate).expect("truncate");
    let chmod = SetAttr { valid: setattr::MODE, mode: 0o600, ..SetAttr::default() };
    client.setattr(file, &chmod).expect("chmod");
    let times = SetAttr {
        valid: setattr::ATIME | setattr::ATIME_SET | setattr::MTIME | setattr::MTIME_SET,
        atime_sec: 1_000_000,
        mtime_sec: 2_000_000,
        ..SetAttr::default()
    };
    client.setattr(file, &times).expect("utimensat");
    let chown = SetAttr { valid: setattr::UID | setattr::GID, uid: 65534, gid: 65534, ..SetAttr::default() };
    client.setattr(file, &chown).expect("chown");
    let meta = fs::metadata(p.join("sub/new.txt")).expect("stat new.txt");
    assert_eq!((meta.len(), meta.permissions().mode() & 0o7777), (10, 0o600));
    assert_eq!((meta.mtime(), meta.uid(), meta.gid()), (2_000_000, 65534, 65534));

    client.mkdir(root, b"made", 0o750, 0).expect("mkdir");
    client.symlink(root, b"link", b"../anywhere", 0).expect("symlink");
    let (link, _) = client.walk(root, &[b"link"]).expect("walk link");
    assert_eq!(client.readlink(link).expect("readlink"), b"../anywhere");
    client.mknod(root, b"pipe", 0o010600, 0, 0, 0).expect("mknod");
    assert!(fs::symlink_metadata(p.join("pipe")).expect("stat pipe").file_type().is_fifo());
    let (hello, _) = client.walk(root, &[b"hello.txt"]).expect("walk hello.txt");
    // Donation sends the fd with sendmsg(SCM_RIGHTS), under the filter.
    {
        use std::os::unix::fs::FileExt;
        let (_, donated) = client.donate(hello, O_RDWR).expect("donate hello.txt");
        let donated = File::from(donated);
        let mut buf = [0u8; 64];
        let n = donated.read_at(&mut buf, 0).expect("read the donated fd");
        assert_eq!(&buf[..n], b"hello gofer\n");
        donated.write_at(b"HELLO", 0).expect("write the donated fd");
        assert_eq!(fs::read(p.join("hello.txt")).expect("read hello.txt"), b"HELLO gofer\n");
    }
    client.link(root, hello, b"hello2.txt").expect("link");
    // `sub` became the created file's fid; walk to the directory afresh.
    let (sub_dir, _) = client.walk(root, &[b"sub"]).expect("walk sub");
    client.renameat(root, b"hello.txt", sub_dir, b"moved.txt").expect("renameat");
    assert_eq!(fs::read(p.join("sub/moved.txt")).expect("read moved.txt"), b"HELLO gofer\n");

    let (listing, _) = client.walk(root, &[]).expect("walk root");
    client.lopen(listing, O_RDONLY).expect("open root");
    let mut names: Vec<String> = client
        .readdir(listing, 0, 8192)
        .expect("readdir")
        .iter()
        .map(|e| String::from_utf8_lossy(&e.name).into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["hello2.txt", "link", "made", "pipe", "sub"]);
    client.statfs(root).expect("statfs");

    client.unlinkat(root, b"made", p9::AT_REMOVEDIR).expect("rmdir");
    client.unlinkat(root, b"hello2.txt", 0).expect("unlink");
    let (pipe, _) = client.walk(root, &[b"pipe"]).expect("walk pipe");
    client.remove(pipe).expect("remove");
    for gone in ["made", "hello2.txt", "pipe"] {
        assert!(fs::symlink_metadata(p.join(gone)).is_err(), "{gone} is still on the host");
    }

    drop(client);
    let output = gofer.finish();
    assert!(output.status == 0 && output.stderr.is_empty(), "{}", output.describe());
}

/// The Gofer that `moat do` starts is the jailed one.
#[test]
fn moat_do_starts_a_jailed_gofer() {
    let rootfs = Rootfs::new();
    let root = rootfs.path().to_str().expect("rootfs path is not UTF-8");
    let command = moat_command(&["do", "--rootfs", root, "--", "/bin/sh", "-c", "read line; echo \"got $line\""]);
    let guard = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
    let mut moat = Running::spawn(command, "moat do (jail check)", true);
    drop(guard);
    let moat_pid = moat.pid();
    // The shell waiting on stdin was loaded through the Gofer, so once it
    // runs the Gofer has long been jailed; poll until its filter shows.
    let gofer = loop {
        let children = host_descendants(moat_pid);
        let gofer = children.iter().find(|(_, cmdline)| cmdline.contains(moat_binary()) && cmdline.contains(" gofer "));
        if let Some((pid, _)) = gofer {
            if status(*pid).get("Seccomp").map(String::as_str) == Some("2") {
                break *pid;
            }
        }
        if moat.has_exited() || moat.past_deadline() {
            panic!("no jailed gofer among moat's children {children:?}\n{}", moat.finish().describe());
        }
        thread::sleep(Duration::from_millis(20));
    };
    assert_jailed(gofer, rootfs.path(), true);

    let mut stdin = moat.take_stdin().expect("moat was spawned with a stdin pipe");
    let _ = std::io::Write::write_all(&mut stdin, b"bye\n");
    drop(stdin);
    let output = moat.finish();
    assert!(output.status == 0 && output.stdout == "got bye\n", "{}", output.describe());
}
