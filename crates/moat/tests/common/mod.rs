//! Shared helpers for moat's integration tests: a minimal busybox rootfs in a
//! temporary directory, and running a command under `moat do` or natively in a
//! chroot (the oracle), each with a time limit.
// Each test crate that includes this module uses a different subset of it.
#![allow(dead_code)]

pub mod image;
pub mod native;
pub mod oci;

use std::fs;
use std::io::Read;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Debian's busybox-static puts its binary here.
pub const BUSYBOX: &str = "/bin/busybox";

/// A run that takes longer than this is killed and its test fails: a hang is
/// a bug, but the limit is far above any honest run, so no test depends on
/// how fast anything is.
pub const TIME_LIMIT: Duration = Duration::from_secs(60);

/// The environment given to every program under test, natively and under
/// moat, so that the two runs see the same variables.
const TEST_ENV: &[(&str, &str)] = &[("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), ("HOME", "/root"), ("LC_ALL", "C")];

/// Host variables passed on to moat itself, for debugging a failing test.
/// The platform the suite runs on (`MOAT_PLATFORM=systrap bash tests/run`) is among them.
const FORWARDED_ENV: &[&str] = &["RUST_LOG", "RUST_BACKTRACE", "MOAT_PLATFORM"];

/// What a finished program left behind.
#[derive(Debug)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
    /// The exit code, or 128 + N if the program was killed by signal N
    /// (what a shell would report).
    pub status: i32,
}

impl Output {
    /// Everything there is to know about the run, for a failure message.
    pub fn describe(&self) -> String {
        format!(
            "exit status: {}\n--- stdout ---\n{}--- stderr ---\n{}--- end ---",
            self.status,
            with_final_newline(&self.stdout),
            with_final_newline(&self.stderr)
        )
    }
}

fn with_final_newline(s: &str) -> String {
    if s.is_empty() || s.ends_with('\n') {
        s.to_owned()
    } else {
        format!("{s}\n(no newline at end)\n")
    }
}

fn shell_status(status: ExitStatus) -> i32 {
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => 128 + signal,
        (None, None) => panic!("exit status {status:?} has neither a code nor a signal"),
    }
}

/// The host's static busybox. Fails the calling test, with what to install,
/// if it is missing or is not statically linked (a dynamic one cannot run in
/// a rootfs that has no libc).
pub fn busybox() -> &'static Path {
    let path = Path::new(BUSYBOX);
    let install = "these tests need a statically linked busybox at /bin/busybox: \
                   install Debian's busybox-static (`apt-get install busybox-static`)";
    let image = fs::read(path).unwrap_or_else(|e| panic!("cannot read {BUSYBOX} ({e}); {install}"));
    assert!(
        fs::metadata(path).map(|m| m.mode() & 0o111 != 0).unwrap_or(false),
        "{BUSYBOX} is not executable; {install}"
    );
    match elf_has_interpreter(&image) {
        Some(false) => path,
        Some(true) => panic!("{BUSYBOX} is dynamically linked; {install}"),
        None => panic!("{BUSYBOX} is not a 64-bit ELF executable; {install}"),
    }
}

/// Whether a 64-bit little-endian ELF image has a PT_INTERP program header;
/// None if the image is not one.
fn elf_has_interpreter(image: &[u8]) -> Option<bool> {
    const PT_INTERP: u32 = 3;
    let u16_at = |at: usize| Some(u16::from_le_bytes(image.get(at..at + 2)?.try_into().ok()?));
    let u32_at = |at: usize| Some(u32::from_le_bytes(image.get(at..at + 4)?.try_into().ok()?));
    let u64_at = |at: usize| Some(u64::from_le_bytes(image.get(at..at + 8)?.try_into().ok()?));
    if image.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let phoff = usize::try_from(u64_at(0x20)?).ok()?;
    let phentsize = usize::from(u16_at(0x36)?);
    let phnum = usize::from(u16_at(0x38)?);
    let mut has_interp = false;
    for i in 0..phnum {
        has_interp |= u32_at(phoff + i * phentsize)? == PT_INTERP;
    }
    Some(has_interp)
}

/// A fresh directory under the host's temporary directory, removed (without
/// ever leaving its file system) when dropped.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "moat-test-{label}-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir(&path).unwrap_or_else(|e| panic!("cannot create temporary directory {}: {e}", path.display()));
        set_mode(&path, 0o755);
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        match fs::symlink_metadata(&self.path) {
            Ok(meta) => remove_tree_on_device(&self.path, meta.dev()),
            Err(e) => eprintln!("warning: temporary directory {} vanished: {e}", self.path.display()),
        }
    }
}

/// Removes `path` and everything below it that lives on `device`. Anything
/// mounted below it (a native run's proc, tmpfs or /dev binds, should one
/// ever outlive its mount namespace) is left alone rather than emptied.
fn remove_tree_on_device(path: &Path, device: u64) {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) => return eprintln!("warning: cannot stat {} for removal: {e}", path.display()),
    };
    if meta.dev() != device {
        return eprintln!("warning: not removing {}: another file system is mounted there", path.display());
    }
    let result = if meta.is_dir() {
        if let Ok(entries) = fs::read_dir(path) {
            for entry in entries.flatten() {
                remove_tree_on_device(&entry.path(), device);
            }
        }
        fs::remove_dir(path)
    } else {
        fs::remove_file(path)
    };
    if let Err(e) = result {
        eprintln!("warning: cannot remove {}: {e}", path.display());
    }
}

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("cannot chmod {:o} {}: {e}", mode, path.display()));
}

/// A minimal busybox root file system in a fresh temporary directory, owned
/// by one test. Neither run writes into it: natively /tmp and /dev are
/// tmpfs mounts in a private mount namespace, and under moat every write
/// lands in moat's in-memory overlay.
#[derive(Debug)]
pub struct Rootfs {
    dir: TempDir,
}

/// Files of the rootfs's /etc: (path, contents, mode).
const ETC_FILES: &[(&str, &str, u32)] = &[
    ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n", 0o644),
    ("etc/group", "root:x:0:\nnogroup:x:65534:\n", 0o644),
    ("etc/shadow", "root:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n", 0o600),
    ("etc/hostname", "moat-test\n", 0o644),
    ("etc/hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n", 0o644),
    ("etc/shells", "/bin/sh\n/bin/ash\n", 0o644),
    ("etc/issue", "moat first light\n", 0o644),
    ("etc/profile", "export PATH=/usr/sbin:/usr/bin:/sbin:/bin\n", 0o644),
    ("etc/network/interfaces", "auto lo\niface lo inet loopback\n", 0o644),
    ("etc/init.d/rcS", "#!/bin/sh\necho rcS\n", 0o755),
];

impl Rootfs {
    /// bin/busybox and one symlink per applet in bin/ (sbin, usr/bin and
    /// usr/sbin lead there too); a small /etc with a subdirectory and
    /// symlinks; empty tmp (1777), proc, dev, root and opt.
    pub fn new() -> Rootfs {
        let busybox = busybox();
        let dir = TempDir::new("rootfs");
        let root = dir.path();
        for sub in ["bin", "etc", "etc/network", "etc/init.d", "tmp", "proc", "dev", "root", "opt", "usr"] {
            fs::create_dir(root.join(sub)).unwrap_or_else(|e| panic!("cannot create {sub} in the rootfs: {e}"));
            set_mode(&root.join(sub), 0o755);
        }
        set_mode(&root.join("tmp"), 0o1777);
        set_mode(&root.join("root"), 0o700);

        let copy = root.join("bin/busybox");
        fs::copy(busybox, &copy).unwrap_or_else(|e| panic!("cannot copy {BUSYBOX} into the rootfs: {e}"));
        set_mode(&copy, 0o755);
        let list = Command::new(busybox)
            .arg("--list")
            .output()
            .unwrap_or_else(|e| panic!("cannot run `{BUSYBOX} --list`: {e}"));
        assert!(list.status.success(), "`{BUSYBOX} --list` failed: {list:?}");
        let applets = String::from_utf8(list.stdout).expect("`busybox --list` printed non-UTF-8");
        for applet in applets.lines().filter(|a| !a.is_empty() && *a != "busybox") {
            symlink("busybox", root.join("bin").join(applet))
                .unwrap_or_else(|e| panic!("cannot link applet {applet} in the rootfs: {e}"));
        }
        assert!(root.join("bin/sh").exists(), "`{BUSYBOX} --list` has no sh applet");
        for (link, target) in [("sbin", "bin"), ("usr/bin", "../bin"), ("usr/sbin", "../bin")] {
            symlink(target, root.join(link)).unwrap_or_else(|e| panic!("cannot link {link} in the rootfs: {e}"));
        }

        let rootfs = Rootfs { dir };
        for (path, contents, mode) in ETC_FILES {
            rootfs.write_file(path, contents.as_bytes(), *mode);
        }
        for (link, target) in [("etc/motd", "issue"), ("etc/mtab", "/proc/self/mounts")] {
            symlink(target, rootfs.host_path(link)).unwrap_or_else(|e| panic!("cannot link {link} in the rootfs: {e}"));
        }
        rootfs
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The host path of `relative` inside the rootfs.
    pub fn host_path(&self, relative: &str) -> PathBuf {
        self.path().join(relative.trim_start_matches('/'))
    }

    /// Writes a file into the rootfs (not under tmp/, which both runs hide
    /// under a tmpfs), with the given mode.
    pub fn write_file(&self, relative: &str, contents: &[u8], mode: u32) {
        let path = self.host_path(relative);
        fs::write(&path, contents).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        set_mode(&path, mode);
    }

    /// Files an exec must refuse, under /opt/hostile: a truncated ELF, an
    /// empty executable, a non-executable file, and a script whose `#!`
    /// interpreter does not exist.
    pub fn add_hostile_files(&self) {
        fs::create_dir(self.host_path("opt/hostile")).expect("cannot create opt/hostile in the rootfs");
        let image = fs::read(BUSYBOX).expect("cannot read busybox");
        self.write_file("opt/hostile/truncated", &image[..200], 0o755);
        self.write_file("opt/hostile/empty", b"", 0o755);
        self.write_file("opt/hostile/not-executable", b"#!/bin/sh\necho should not run\n", 0o644);
        self.write_file("opt/hostile/bad-interpreter", b"#!/nonexistent/interp\necho should not run\n", 0o755);
    }
}

/// The `moat` binary built for these tests.
pub fn moat_binary() -> &'static str {
    env!("CARGO_BIN_EXE_moat")
}

/// `moat ARGS...` with the test environment, ready to spawn.
pub fn moat_command<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Command {
    let mut command = Command::new(moat_binary());
    command.args(args).env_clear().envs(TEST_ENV.iter().copied());
    for name in FORWARDED_ENV {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    command
}

/// Runs `moat ARGS...` to completion.
pub fn run_moat<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    let what = format!(
        "moat {}",
        args.iter().map(|a| a.as_ref().to_string_lossy().into_owned()).collect::<Vec<_>>().join(" ")
    );
    Running::spawn(moat_command(args), &what, false).finish()
}

/// Runs `moat do --rootfs ROOTFS -- /bin/sh -c SCRIPT` to completion.
pub fn run_moat_script(rootfs: &Rootfs, script: &str) -> Output {
    let root = rootfs.path().to_str().expect("rootfs path is not UTF-8");
    run_moat(&["do", "--rootfs", root, "--", "/bin/sh", "-c", script])
}

/// Sets up the native run inside its fresh mount and pid namespaces, where
/// unshare has already mounted proc on $1/proc: a tmpfs on /tmp, a tmpfs
/// on /dev holding binds of the host's device nodes, then the chroot. The
/// namespace is private, so the host's mount table never changes.
const NATIVE_SETUP: &str = r#"
root=$1
fail() { echo "moat-native: setup failed: $*" >&2; exit 125; }
mount -t tmpfs -o mode=1777 tmpfs "$root/tmp" || fail "tmpfs on $root/tmp"
mount -t tmpfs -o mode=755 tmpfs "$root/dev" || fail "tmpfs on $root/dev"
for node in null zero full random urandom tty; do
    : > "$root/dev/$node" || fail "creating $root/dev/$node"
    mount --bind "/dev/$node" "$root/dev/$node" || fail "binding /dev/$node"
done
exec chroot "$root" /bin/sh -c "$2"
"#;

/// Host tools the native run needs, and the Debian package of each.
const NATIVE_TOOLS: &[(&str, &str)] =
    &[("unshare", "util-linux"), ("mount", "mount"), ("chroot", "coreutils"), ("sh", "dash")];

fn find_in_path(tool: &str) -> Option<PathBuf> {
    let path = TEST_ENV.iter().find(|(k, _)| *k == "PATH").map(|(_, v)| *v).unwrap_or_default();
    path.split(':').map(|dir| Path::new(dir).join(tool)).find(|p| p.is_file())
}

/// Runs `/bin/sh -c SCRIPT` natively: in new mount and pid namespaces
/// (so the script's shell is pid 1, as under moat), chrooted into the rootfs,
/// with proc on /proc, tmpfs on /tmp and the host's device nodes in /dev.
/// Needs root.
pub fn run_native_script(rootfs: &Rootfs, script: &str) -> Output {
    for (tool, package) in NATIVE_TOOLS {
        assert!(find_in_path(tool).is_some(), "the native (oracle) run needs `{tool}` on the host: install {package}");
    }
    let mut command = Command::new("unshare");
    command
        .env_clear()
        .envs(TEST_ENV.iter().copied())
        .args(["--mount", "--pid", "--fork"])
        .arg(format!("--mount-proc={}", rootfs.host_path("proc").display()))
        .args(["--", "sh", "-c", NATIVE_SETUP, "moat-native"])
        .arg(rootfs.path())
        .arg(script);
    let output = Running::spawn(command, &format!("native /bin/sh -c {script:?}"), false).finish();
    assert!(
        !output.stderr.contains("moat-native: setup failed") && !output.stderr.contains("unshare: "),
        "the native (oracle) run could not be set up (the tests must run as root)\n{}",
        output.describe()
    );
    output
}

/// A spawned program whose stdout and stderr are being collected.
#[derive(Debug)]
pub struct Running {
    what: String,
    child: Child,
    status: Option<ExitStatus>,
    stdin: Option<ChildStdin>,
    stdout: Receiver<Vec<u8>>,
    stderr: Receiver<Vec<u8>>,
    deadline: Instant,
}

fn collect(mut pipe: impl Read + Send + 'static) -> Receiver<Vec<u8>> {
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        let mut buffer = Vec::new();
        let _ = pipe.read_to_end(&mut buffer);
        let _ = sender.send(buffer);
    });
    receiver
}

impl Running {
    /// Spawns `command` in a process group of its own (so that a hung run
    /// can be killed with everything it started). Its stdin is a pipe kept
    /// for the caller if `with_stdin`, else /dev/null.
    pub fn spawn(mut command: Command, what: &str, with_stdin: bool) -> Running {
        command
            .stdin(if with_stdin { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = command.spawn().unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let stdout = collect(child.stdout.take().expect("stdout is piped"));
        let stderr = collect(child.stderr.take().expect("stderr is piped"));
        Running {
            what: what.to_owned(),
            stdin: child.stdin.take(),
            child,
            status: None,
            stdout,
            stderr,
            deadline: Instant::now() + TIME_LIMIT,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The write end of the program's stdin, if it was spawned with one.
    pub fn take_stdin(&mut self) -> Option<ChildStdin> {
        self.stdin.take()
    }

    /// Whether the program has exited (and been reaped).
    pub fn has_exited(&mut self) -> bool {
        if self.status.is_none() {
            self.status = self.child.try_wait().unwrap_or_else(|e| panic!("cannot wait for {}: {e}", self.what));
        }
        self.status.is_some()
    }

    /// Whether the time limit for this run has passed.
    pub fn past_deadline(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// Waits for the program to exit and for its output to close; kills its
    /// whole process group and fails the test if that takes longer than
    /// TIME_LIMIT.
    pub fn finish(mut self) -> Output {
        drop(self.stdin.take());
        while !self.has_exited() {
            if self.past_deadline() {
                self.timed_out("did not exit");
            }
            thread::sleep(Duration::from_millis(10));
        }
        let left = self.deadline.saturating_duration_since(Instant::now());
        let stdout = self.stdout.recv_timeout(left);
        let left = self.deadline.saturating_duration_since(Instant::now());
        let stderr = self.stderr.recv_timeout(left);
        let (Ok(stdout), Ok(stderr)) = (stdout, stderr) else {
            let status = self.status.map(shell_status).unwrap_or_default();
            self.timed_out(&format!(
                "exited (status {status}), but its stdout or stderr stayed open, held by a process it started"
            ));
        };
        Output {
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            status: shell_status(self.status.expect("the program has exited")),
        }
    }

    fn kill_group(&mut self) {
        // The group may be gone already; then there is nothing to do.
        let _ = Command::new(BUSYBOX)
            .args(["kill", "-KILL", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        if self.status.is_none() {
            let _ = self.child.kill();
            self.status = self.child.wait().ok();
        }
    }

    fn timed_out(&mut self, problem: &str) -> ! {
        self.kill_group();
        let grace = Duration::from_secs(5);
        let stdout = self.stdout.recv_timeout(grace).unwrap_or_default();
        let stderr = self.stderr.recv_timeout(grace).unwrap_or_default();
        panic!(
            "{}: {problem} (time limit {:?}); killed its process group\n--- stdout ---\n{}--- stderr ---\n{}--- end ---",
            self.what,
            TIME_LIMIT,
            with_final_newline(&String::from_utf8_lossy(&stdout)),
            with_final_newline(&String::from_utf8_lossy(&stderr)),
        );
    }
}

impl Drop for Running {
    /// A test that fails halfway must not leave its programs running.
    fn drop(&mut self) {
        if self.status.is_none() {
            self.kill_group();
        }
    }
}

/// The host's processes whose parent is `parent`: (pid, cmdline with NULs
/// shown as spaces).
pub fn host_children(parent: u32) -> Vec<(u32, String)> {
    let mut children = Vec::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return children;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        // A process may exit while we look; skip it then.
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // The command name in parentheses may hold spaces; the fields after
        // the last ')' are: state, ppid, ...
        let Some((_, after_name)) = stat.rsplit_once(')') else {
            continue;
        };
        let ppid = after_name.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(parent) {
            let cmdline = fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ").trim_end().to_owned();
            children.push((pid, cmdline));
        }
    }
    children
}

/// Every host process below `pid` (children, theirs, ...), with its command line.
pub fn host_descendants(pid: u32) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        for (child, cmdline) in host_children(p) {
            todo.push(child);
            out.push((child, cmdline));
        }
    }
    out
}

/// A name no other run (of this or any concurrent test process) will pick.
pub fn unique_name(label: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{label}-{}-{}-{nanos}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// A cgroup parent a test gives an engine for its containers (not the
/// host's `docker` or `libpod_parent`), removed from every hierarchy, with
/// what the runtimes left below it, when dropped.
#[derive(Debug)]
pub struct CgroupParent(String);

impl CgroupParent {
    /// `/NAME-PID`, unique to this test process.
    pub fn new(name: &str) -> CgroupParent {
        CgroupParent(format!("/{name}-{}", std::process::id()))
    }

    /// The path engines take (`--cgroup-parent`), with its leading `/`.
    pub fn path(&self) -> &str {
        &self.0
    }

    /// The directories below the parent, in every hierarchy.
    pub fn children(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        for hierarchy in fs::read_dir("/sys/fs/cgroup").into_iter().flatten().flatten() {
            let parent = hierarchy.path().join(self.0.trim_start_matches('/'));
            for entry in fs::read_dir(&parent).into_iter().flatten().flatten() {
                if entry.path().is_dir() {
                    found.push(entry.path());
                }
            }
        }
        found
    }
}

impl Drop for CgroupParent {
    fn drop(&mut self) {
        for child in self.children() {
            let _ = fs::remove_dir(child);
        }
        for hierarchy in fs::read_dir("/sys/fs/cgroup").into_iter().flatten().flatten() {
            let _ = fs::remove_dir(hierarchy.path().join(self.0.trim_start_matches('/')));
        }
    }
}
