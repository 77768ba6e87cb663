//! procfs: the sandbox's processes and a Linux-like view of the system, made
//! from kernel state when read; nothing is copied from the host's /proc.
//!
//! A process's files look the process up again by pid when opened and check it is
//! the same thread group, so a stale dentry of a reaped process gives ESRCH (or
//! ENOENT on lookup), never another process's data or a panic. Locks: the pid table
//! is held only to copy out Arcs; a group's locks are taken one at a time.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use abi::AsBytes;
use host::memfile::PAGE;

use crate::auth::capability::{CAP_DAC_OVERRIDE, CAP_LAST_CAP, CAP_SYS_RESOURCE};
use crate::auth::current;
use crate::fs::dev::{major, minor};
use crate::fs::simple::{path_ino, SimpleDir, SimpleFile, SimpleSymlink};
use crate::kernel::signal::{SIG_DFL, SIG_IGN};
use crate::kernel::{Kernel, Task, ThreadGroup};
use crate::mm::{VmaName, PROT_EXEC, PROT_READ, PROT_WRITE};
use crate::net::addr::Family;
use crate::net::{IfaceInfo, InetSocket, Proto, Stack};
use crate::taskfs::sysctl::Sysctls;
use crate::vfs::{new_fs_id, FileOps, FileType, Follow, Inode, InodeRef, OpenFile, Stat, Timespec};
use crate::SysResult;

/// Clock ticks per second in /proc times (Linux's USER_HZ).
const USER_HZ: u64 = 100;
/// RLIMIT_SIGPENDING as reported in `SigQ`: moat does not limit queued signals.
const SIGPENDING_LIMIT: u64 = 63_353;
/// Cap on how much of an app's argv/envp area one read of cmdline/environ copies.
const MAX_ARG_AREA: u64 = 2 << 20;
/// Column at which /proc/<pid>/maps pads before a mapping's name (Linux: 25 + 6 * 8 - 1).
const MAPS_NAME_COLUMN: usize = 72;
const O_CLOEXEC: u32 = 0o2000000;

type Entries = Vec<(Vec<u8>, InodeRef)>;

/// Appends formatted text to a byte buffer (procfs text mixes in raw bytes: names, paths).
macro_rules! put {
    ($out:expr, $($arg:tt)*) => {
        $out.extend_from_slice(format!($($arg)*).as_bytes())
    };
}

/// Builds /proc for the kernel `k` (held weakly: the kernel's mount table
/// holds procfs), with the spec's `sysctls` under /proc/sys.
pub fn new_procfs(k: Weak<Kernel>, sysctls: &Sysctls) -> InodeRef {
    let mut id = [0u8; 16];
    let _ = host::sys::getrandom(&mut id);
    let fs = Arc::new(Procfs {
        k,
        fs_id: new_fs_id(),
        // From sched_getaffinity: the Sentry opens no host file for this.
        ncpus: host::sys::cpu_count(),
        boot_id: uuid_text(id),
    });
    fs.root(sysctls)
}

/// Makes one file of /proc/sys.
type SysFileFn = fn(&Procfs, &Kernel) -> SysResult<Vec<u8>>;

/// The files of /proc/sys whatever the spec sets, by dotted name: the few
/// tunables programs read at startup (glibc's malloc and jemalloc read
/// overcommit_memory; Go's net package reads somaxconn). A spec's sysctl of
/// the same name shows its value instead, except the UTS names, which show
/// the live ones (the sysctl set them at boot).
const SYS_FILES: &[(&str, SysFileFn)] = &[
    ("kernel.hostname", |_, k| Ok(line(&k.hostname.lock().unwrap()))),
    ("kernel.domainname", |_, k| Ok(line(&k.domainname_shown()))),
    ("kernel.ostype", |_, _| Ok(b"Linux\n".to_vec())),
    ("kernel.osrelease", |_, _| Ok(line(crate::RELEASE.as_bytes()))),
    ("kernel.version", |_, _| Ok(line(crate::VERSION.as_bytes()))),
    ("kernel.pid_max", |_, _| Ok(b"4194304\n".to_vec())),
    ("kernel.cap_last_cap", |_, _| Ok(format!("{CAP_LAST_CAP}\n").into_bytes())),
    ("kernel.ngroups_max", |_, _| Ok(b"65536\n".to_vec())),
    ("kernel.random.boot_id", |fs, _| Ok(line(fs.boot_id.as_bytes()))),
    ("kernel.random.uuid", |_, _| {
        let mut id = [0u8; 16];
        host::sys::getrandom(&mut id).map_err(|_| errno!(EIO))?;
        Ok(line(uuid_text(id).as_bytes()))
    }),
    ("vm.overcommit_memory", |_, _| Ok(b"0\n".to_vec())),
    ("fs.pipe-max-size", |_, _| Ok(format!("{}\n", crate::fs::pipe::PIPE_MAX_SIZE).into_bytes())),
    ("net.core.somaxconn", |_, _| Ok(b"4096\n".to_vec())),
];

/// Sysctls whose files show kernel state, not the value the spec gave.
const LIVE_SYSCTLS: &[&str] = &["kernel.hostname", "kernel.domainname"];

/// The dotted names of the files /proc/sys has whatever the spec sets.
pub fn sys_file_names() -> Vec<&'static str> {
    SYS_FILES.iter().map(|(name, _)| *name).collect()
}

fn line(text: &[u8]) -> Vec<u8> {
    let mut out = text.to_vec();
    out.push(b'\n');
    out
}

/// A directory of /proc/sys being built.
#[derive(Default)]
struct SysTree {
    files: BTreeMap<String, InodeRef>,
    dirs: BTreeMap<String, SysTree>,
}

impl SysTree {
    /// Adds (or replaces) the file at dotted `name`. The names were checked
    /// (`Sysctls::parse`): none is a directory of another.
    fn insert(&mut self, name: &str, inode: InodeRef) {
        match name.split_once('.') {
            Some((dir, rest)) => self.dirs.entry(dir.to_owned()).or_default().insert(rest, inode),
            None => {
                self.files.insert(name.to_owned(), inode);
            }
        }
    }
}

/// The procfs path of the sysctl file at dotted `name`.
fn sys_path(name: &str) -> String {
    format!("/sys/{}", name.replace('.', "/"))
}

fn entry(name: &str, inode: InodeRef) -> (Vec<u8>, InodeRef) {
    (name.as_bytes().to_vec(), inode)
}

/// The filesystem-wide state every procfs node shares.
#[derive(Debug)]
struct Procfs {
    k: Weak<Kernel>,
    fs_id: u64,
    ncpus: usize,
    boot_id: String,
}

impl Procfs {
    fn kernel(&self) -> SysResult<Arc<Kernel>> {
        self.k.upgrade().ok_or(errno!(ESRCH))
    }

    /// A file made from kernel-wide state.
    fn kernel_file(self: &Arc<Self>, path: &str, make: fn(&Procfs, &Kernel) -> SysResult<Vec<u8>>) -> InodeRef {
        let fs = self.clone();
        SimpleFile::new(self.fs_id, path_ino(path.as_bytes()), 0o444, move || make(&fs, &*fs.kernel()?))
    }

    /// A file with fixed content.
    fn constant(&self, path: &str, text: &str) -> InodeRef {
        let text = text.as_bytes().to_vec();
        SimpleFile::new(self.fs_id, path_ino(path.as_bytes()), 0o444, move || Ok(text.clone()))
    }

    fn fixed_dir(&self, path: &str, entries: Entries) -> InodeRef {
        SimpleDir::fixed(self.fs_id, path_ino(path.as_bytes()), 0o555, entries)
    }

    fn root(self: &Arc<Self>, sysctls: &Sysctls) -> InodeRef {
        let statics = self.system_entries(sysctls);
        let fs = self.clone();
        SimpleDir::new(self.fs_id, path_ino(b"/"), 0o555, move || {
            let k = fs.kernel()?;
            let groups: Vec<(i32, Weak<ThreadGroup>)> =
                k.pids.lock().unwrap().groups.iter().map(|(&pid, tg)| (pid, Arc::downgrade(tg))).collect();
            let mut v = statics.clone();
            v.extend(groups.into_iter().map(|(pid, tg)| entry(&pid.to_string(), fs.subject_dir(pid, tg, None))));
            Ok(v)
        })
    }

    /// `/proc/<pid>` (tid None) or `/proc/<pid>/task/<tid>`.
    fn subject_dir(self: &Arc<Self>, pid: i32, tg: Weak<ThreadGroup>, tid: Option<i32>) -> InodeRef {
        let base = match tid {
            None => format!("/{pid}"),
            Some(tid) => format!("/{pid}/task/{tid}"),
        };
        let ino = path_ino(base.as_bytes());
        let s = Arc::new(Subject { fs: self.clone(), pid, tg, tid, base });
        SimpleDir::new(self.fs_id, ino, 0o555, move || {
            s.view().map_err(|_| errno!(ENOENT))?;
            Ok(s.entries())
        })
    }

    fn system_entries(self: &Arc<Self>, sysctls: &Sysctls) -> Entries {
        let fs_id = self.fs_id;
        let self_link = SimpleSymlink::new(fs_id, path_ino(b"/self"), || match current() {
            (0, _) => Err(errno!(ENOENT)),
            (pid, _) => Ok(pid.to_string().into_bytes()),
        });
        let thread_self_link = SimpleSymlink::new(fs_id, path_ino(b"/thread-self"), || match current() {
            (0, _) => Err(errno!(ENOENT)),
            (pid, tid) => Ok(format!("{pid}/task/{tid}").into_bytes()),
        });
        vec![
            entry("self", self_link),
            entry("thread-self", thread_self_link),
            entry("cpuinfo", self.kernel_file("/cpuinfo", |fs, _| Ok(cpuinfo_text(fs.ncpus).into_bytes()))),
            entry(
                "meminfo",
                self.kernel_file("/meminfo", |_, k| {
                    Ok(meminfo_text(k.memory_total, k.mem.resident_bytes()).into_bytes())
                }),
            ),
            entry("uptime", self.kernel_file("/uptime", uptime_file)),
            entry(
                "version",
                self.constant("/version", &format!("Linux version {} (moat) {}\n", crate::RELEASE, crate::VERSION)),
            ),
            entry("mounts", self.kernel_file("/mounts", |_, k| Ok(mounts_text(k)))),
            entry("filesystems", self.kernel_file("/filesystems", filesystems_file)),
            entry("loadavg", self.kernel_file("/loadavg", loadavg_file)),
            entry("stat", self.kernel_file("/stat", system_stat_file)),
            entry("sys", self.sys_dir(sysctls)),
            entry("net", self.net_dir()),
        ]
    }

    /// /proc/net: the sandbox's network stack as Linux's files show it.
    fn net_dir(self: &Arc<Self>) -> InodeRef {
        let files: [(&str, SysFileFn); 9] = [
            ("dev", |_, k| Ok(net_dev_text(&net_of(k)?.interfaces()))),
            ("if_inet6", |_, k| Ok(if_inet6_text(&net_of(k)?.interfaces()))),
            ("route", |_, _| Ok(route_text())),
            ("tcp", |_, k| Ok(inet_sockets_text(k, Proto::Tcp, Family::V4))),
            ("tcp6", |_, k| Ok(inet_sockets_text(k, Proto::Tcp, Family::V6))),
            ("udp", |_, k| Ok(inet_sockets_text(k, Proto::Udp, Family::V4))),
            ("udp6", |_, k| Ok(inet_sockets_text(k, Proto::Udp, Family::V6))),
            ("icmp", |_, k| Ok(inet_sockets_text(k, Proto::Ping, Family::V4))),
            ("icmp6", |_, k| Ok(inet_sockets_text(k, Proto::Ping, Family::V6))),
        ];
        let entries = files
            .into_iter()
            .map(|(name, make)| entry(name, self.kernel_file(&format!("/net/{name}"), make)))
            .collect();
        self.fixed_dir("/net", entries)
    }

    /// /proc/sys: its own files (`SYS_FILES`) and the spec's sysctls.
    fn sys_dir(self: &Arc<Self>, sysctls: &Sysctls) -> InodeRef {
        let mut tree = SysTree::default();
        for (name, make) in SYS_FILES {
            tree.insert(name, self.kernel_file(&sys_path(name), *make));
        }
        for (name, value) in sysctls.iter().filter(|(name, _)| !LIVE_SYSCTLS.contains(name)) {
            tree.insert(name, self.constant(&sys_path(name), &format!("{value}\n")));
        }
        self.sys_tree_dir("/sys", tree)
    }

    fn sys_tree_dir(&self, path: &str, tree: SysTree) -> InodeRef {
        let mut entries: Entries = tree
            .dirs
            .into_iter()
            .map(|(name, sub)| entry(&name, self.sys_tree_dir(&format!("{path}/{name}"), sub)))
            .collect();
        entries.extend(tree.files.into_iter().map(|(name, inode)| entry(&name, inode)));
        self.fixed_dir(path, entries)
    }
}

/// A process (`tid` None) or one of its threads, as a procfs directory sees it.
#[derive(Debug)]
struct Subject {
    fs: Arc<Procfs>,
    pid: i32,
    tg: Weak<ThreadGroup>,
    tid: Option<i32>,
    /// "/<pid>" or "/<pid>/task/<tid>", the root of this subject's inode-number paths.
    base: String,
}

/// What a read of one of a subject's files works from, looked up afresh at open.
struct View {
    k: Arc<Kernel>,
    tg: Arc<ThreadGroup>,
    /// The pid, or the tid for a thread's directory.
    id: i32,
    thread: bool,
    /// The thread whose per-thread state (mask, pending) is shown: the thread itself, or
    /// the main thread for a process (None once every thread has exited).
    task: Option<Arc<Task>>,
    threads: Vec<Arc<Task>>,
    ncpus: usize,
}

impl Subject {
    fn view(&self) -> SysResult<View> {
        let k = self.fs.kernel()?;
        let tg = self.tg.upgrade().ok_or(errno!(ESRCH))?;
        // The pid alone is not enough: it may have been reaped and reused.
        if !k.group(self.pid).is_some_and(|g| Arc::ptr_eq(&g, &tg)) {
            return Err(errno!(ESRCH));
        }
        let threads = tg.threads();
        let task = match self.tid {
            None => threads.iter().find(|t| t.tid() == self.pid).or(threads.first()).cloned(),
            Some(tid) => {
                let t = threads.iter().find(|t| t.tid() == tid).cloned();
                // A zombie has no threads left but still shows its main thread.
                if t.is_none() && !(tid == self.pid && threads.is_empty()) {
                    return Err(errno!(ESRCH));
                }
                t
            }
        };
        Ok(View {
            k,
            tg,
            id: self.tid.unwrap_or(self.pid),
            thread: self.tid.is_some(),
            task,
            threads,
            ncpus: self.fs.ncpus,
        })
    }

    fn ino(&self, name: &str) -> u64 {
        path_ino(format!("{}/{}", self.base, name).as_bytes())
    }

    fn file(self: &Arc<Self>, name: &str, perm: u32, make: fn(&View) -> SysResult<Vec<u8>>) -> (Vec<u8>, InodeRef) {
        let s = self.clone();
        entry(name, SimpleFile::new(self.fs.fs_id, self.ino(name), perm, move || make(&s.view()?)))
    }

    /// `oom_score_adj`: -1000..=1000, which the process's owner may raise
    /// and only CAP_SYS_RESOURCE may take below 0 (Linux's floor for a
    /// process no privileged one has lowered).
    fn oom_score_adj(self: &Arc<Self>) -> (Vec<u8>, InodeRef) {
        let (reader, writer) = (self.clone(), self.clone());
        let content = move || Ok(format!("{}\n", reader.view()?.tg.oom_score_adj.load(Ordering::Relaxed)).into_bytes());
        let store = move |bytes: &[u8]| {
            let v = writer.view()?;
            let text = std::str::from_utf8(bytes).map_err(|_| errno!(EINVAL))?;
            let adj: i32 = text.trim().parse().map_err(|_| errno!(EINVAL))?;
            if !(-1000..=1000).contains(&adj) {
                return Err(errno!(EINVAL));
            }
            let me = v.k.group(current().0).ok_or(errno!(ESRCH))?;
            let mine = me.creds.lock().unwrap().clone();
            let owner = v.tg.creds.lock().unwrap().euid;
            if mine.euid != owner && !mine.has(CAP_DAC_OVERRIDE) {
                return Err(errno!(EACCES));
            }
            if adj < 0 && adj < v.tg.oom_score_adj.load(Ordering::Relaxed) && !mine.has(CAP_SYS_RESOURCE) {
                return Err(errno!(EACCES));
            }
            v.tg.oom_score_adj.store(adj, Ordering::Relaxed);
            Ok(())
        };
        let name = "oom_score_adj";
        entry(name, SimpleFile::writable(self.fs.fs_id, self.ino(name), 0o644, content, store))
    }

    fn link(self: &Arc<Self>, name: &str, target: fn(&View) -> SysResult<Vec<u8>>) -> (Vec<u8>, InodeRef) {
        let s = self.clone();
        entry(name, SimpleSymlink::new(self.fs.fs_id, self.ino(name), move || target(&s.view()?)))
    }

    fn entries(self: &Arc<Self>) -> Entries {
        let mut v = vec![
            self.file("stat", 0o444, stat_file),
            self.file("status", 0o444, status_file),
            self.file("statm", 0o444, statm_file),
            self.file("cmdline", 0o444, cmdline_file),
            self.file("environ", 0o400, environ_file),
            self.file("comm", 0o444, |v| {
                let mut comm = v.tg.comm.lock().unwrap().clone();
                comm.push(b'\n');
                Ok(comm)
            }),
            self.file("maps", 0o444, maps_file),
            self.file("auxv", 0o400, auxv_file),
            self.file("smaps_rollup", 0o444, smaps_rollup_file),
            self.file("limits", 0o444, limits_file),
            self.oom_score_adj(),
            self.file("oom_score", 0o444, |v| {
                // Linux's scale, from the adjustment alone: the sandbox's
                // memory is the host's to weigh.
                let adj = v.tg.oom_score_adj.load(Ordering::Relaxed);
                Ok(format!("{}\n", (adj + 1000) * 2 / 3).into_bytes())
            }),
            self.file("mounts", 0o444, |v| Ok(mounts_text(&v.k))),
            self.file("mountinfo", 0o444, |v| Ok(mountinfo_text(&v.k))),
            self.file("cgroup", 0o444, |_| Ok(b"0::/\n".to_vec())),
            self.link("exe", |v| {
                let exe = v.tg.exe.lock().unwrap().clone();
                if exe.is_empty() {
                    return Err(errno!(ENOENT));
                }
                Ok(exe)
            }),
            self.link("cwd", |v| Ok(v.tg.fs.lock().unwrap().cwd.path())),
            self.link("root", |v| Ok(v.tg.fs.lock().unwrap().root.path())),
            entry("fd", self.fd_dir()),
            entry("fdinfo", self.fdinfo_dir()),
        ];
        if self.tid.is_none() {
            v.push(entry("task", self.task_dir()));
        }
        v
    }

    fn open_fds(&self) -> SysResult<Vec<i32>> {
        let v = self.view()?;
        let fds = v.tg.fds.lock().unwrap().fds().map(|(n, _)| n).collect();
        Ok(fds)
    }

    fn fd_dir(self: &Arc<Self>) -> InodeRef {
        let s = self.clone();
        SimpleDir::new(self.fs.fs_id, self.ino("fd"), 0o500, move || {
            Ok(s.open_fds()?.into_iter().map(|n| entry(&n.to_string(), FdLink::new(s.clone(), n))).collect())
        })
    }

    fn fdinfo_dir(self: &Arc<Self>) -> InodeRef {
        let s = self.clone();
        SimpleDir::new(self.fs.fs_id, self.ino("fdinfo"), 0o555, move || {
            let fs_id = s.fs.fs_id;
            Ok(s.open_fds()?
                .into_iter()
                .map(|n| {
                    let s2 = s.clone();
                    let file =
                        SimpleFile::new(fs_id, s.ino(&format!("fdinfo/{n}")), 0o444, move || fdinfo_text(&s2, n));
                    entry(&n.to_string(), file)
                })
                .collect())
        })
    }

    fn task_dir(self: &Arc<Self>) -> InodeRef {
        let s = self.clone();
        SimpleDir::new(self.fs.fs_id, self.ino("task"), 0o555, move || {
            let v = s.view()?;
            let tids: Vec<i32> =
                if v.threads.is_empty() { vec![s.pid] } else { v.threads.iter().map(|t| t.tid()).collect() };
            Ok(tids
                .into_iter()
                .map(|tid| entry(&tid.to_string(), s.fs.subject_dir(s.pid, s.tg.clone(), Some(tid))))
                .collect())
        })
    }
}

/// `/proc/<pid>/fd/<n>`: a link to whatever is open at fd `n` of the process now.
#[derive(Debug)]
pub struct FdLink {
    subject: Arc<Subject>,
    fd: i32,
    ino: u64,
    created: Timespec,
}

impl FdLink {
    fn new(subject: Arc<Subject>, fd: i32) -> Arc<FdLink> {
        let ino = subject.ino(&format!("fd/{fd}"));
        Arc::new(FdLink { subject, fd, ino, created: Timespec::now() })
    }

    /// The open file this link stands for. Linux's fd links are "magic": opening one
    /// reaches the file itself even when the link text names nothing openable (pipes,
    /// sockets, deleted files), so the open path should use this, not the readlink text.
    pub fn open_file(&self) -> SysResult<Arc<OpenFile>> {
        let v = self.subject.view().map_err(|_| errno!(ENOENT))?;
        let file = v.tg.fds.lock().unwrap().get(self.fd).map_err(|_| errno!(ENOENT))?;
        Ok(file)
    }
}

impl Inode for FdLink {
    fn stat(&self) -> SysResult<Stat> {
        let f = self.open_file()?;
        // As Linux: the owner's r-x/-wx bits say how the file is open.
        let mut perm = 0;
        if f.readable() {
            perm |= 0o500;
        }
        if f.writable() {
            perm |= 0o300;
        }
        Ok(Stat {
            dev: self.subject.fs.fs_id,
            ino: self.ino,
            mode: FileType::Symlink.mode_bits() | perm,
            nlink: 1,
            size: 64,
            blksize: 1024,
            atime: self.created,
            mtime: self.created,
            ctime: self.created,
            ..Default::default()
        })
    }

    fn readlink(&self) -> SysResult<Vec<u8>> {
        let file = self.open_file()?;
        Ok(fd_target(&file))
    }

    fn open(self: Arc<Self>, _flags: u32) -> SysResult<Arc<dyn FileOps>> {
        // Symlinks are resolved (through `open_file` or the link text) before any open.
        Err(errno!(ELOOP))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn fs_id(&self) -> u64 {
        self.subject.fs.fs_id
    }

    fn enforces_mode_bits(&self) -> bool {
        false
    }
}

/// What `readlink /proc/<pid>/fd/<n>` shows for an open file.
fn fd_target(f: &OpenFile) -> Vec<u8> {
    if let Some(d) = &f.dentry {
        return d.path();
    }
    let text = match f.ops.stat() {
        Ok(st) if st.file_type() == FileType::Fifo => format!("pipe:[{}]", st.ino),
        Ok(st) if st.file_type() == FileType::Socket => format!("socket:[{}]", st.ino),
        Ok(st) if st.file_type() == FileType::CharDev && major(st.rdev) == 136 => {
            format!("/dev/pts/{}", minor(st.rdev))
        }
        _ if f.ops.is_tty() => "/dev/tty".to_string(),
        // Linux names the anon inode's kind (eventfd, eventpoll...); FileOps does not say.
        _ => "anon_inode:[unknown]".to_string(),
    };
    text.into_bytes()
}

fn fdinfo_text(s: &Subject, fd: i32) -> SysResult<Vec<u8>> {
    let v = s.view()?;
    let (file, cloexec) = {
        let fds = v.tg.fds.lock().unwrap();
        (fds.get(fd).map_err(|_| errno!(ENOENT))?, fds.cloexec(fd).unwrap_or(false))
    };
    // A read may hold the position across a slow (gofer) call; never wait behind it.
    let pos = file.pos.try_lock().map(|p| *p).unwrap_or(0);
    let flags = file.flags() | if cloexec { O_CLOEXEC } else { 0 };
    let ino = file.stat().map(|st| st.ino).unwrap_or(0);
    Ok(format!("pos:\t{pos}\nflags:\t{flags:07o}\nmnt_id:\t0\nino:\t{ino}\n").into_bytes())
}

/// Process-tree facts copied out under one `state` lock.
struct ProcInfo {
    ppid: i32,
    pgid: i32,
    sid: i32,
    zombie: Option<i32>,
    children_cpu_ns: u64,
}

impl ProcInfo {
    fn of(tg: &ThreadGroup) -> ProcInfo {
        let (parent, pgid, sid, zombie, children_cpu_ns) = {
            let st = tg.state.lock().unwrap();
            (st.parent.clone(), st.pgid, st.sid, st.zombie, st.children_cpu_ns)
        };
        let ppid = parent.and_then(|p| p.upgrade()).map(|p| p.pid).unwrap_or(0);
        ProcInfo { ppid, pgid, sid, zombie, children_cpu_ns }
    }
}

/// Address-space facts copied out under one `mm` lock.
#[derive(Default)]
struct MmInfo {
    vsize: u64,
    exe_bytes: u64,
    data_bytes: u64,
    stack_bytes: u64,
    code: (u64, u64),
    stack_top: u64,
    arg_range: (u64, u64),
    env_range: (u64, u64),
}

impl MmInfo {
    fn of(tg: &ThreadGroup) -> MmInfo {
        let mm_arc = tg.mm();
        let mm = mm_arc.lock().unwrap();
        let mut info =
            MmInfo { vsize: mm.total_size(), arg_range: mm.arg_range, env_range: mm.env_range, ..Default::default() };
        for v in mm.vmas() {
            let len = v.end - v.start;
            match &v.name {
                VmaName::Stack => {
                    info.stack_bytes += len;
                    info.stack_top = v.end;
                }
                VmaName::File { .. } if v.prot & PROT_EXEC != 0 => {
                    info.exe_bytes += len;
                    if info.code == (0, 0) {
                        info.code = (v.start, v.end);
                    }
                }
                _ if v.prot & PROT_WRITE != 0 && !v.shared => info.data_bytes += len,
                _ => {}
            }
        }
        info
    }
}

/// The state letter and word for stat/status.
fn run_state(v: &View, info: &ProcInfo) -> (char, &'static str) {
    // A process's state is its main thread's (whose tid is the pid): another
    // thread of it reading /proc/PID/stat sees the main thread asleep, as
    // LTP's TST_PROCESS_STATE_WAIT waits to see.
    let (_, cur_tid) = current();
    if info.zombie.is_some() {
        ('Z', "zombie")
    } else if v.id != cur_tid && v.task.as_ref().is_none_or(|t| t.waiter.is_sleeping()) {
        // Asleep in the Sentry (a futex, a pipe, a child, a timer).
        ('S', "sleeping")
    } else {
        // Running app code, or a system call that does not sleep.
        ('R', "running")
    }
}

/// Signal sets for stat/status: (thread pending, group pending, blocked, ignored, caught).
fn signal_sets(v: &View) -> (u64, u64, u64, u64, u64) {
    let (shared, ignored, caught) = {
        let gs = v.tg.sig.lock().unwrap();
        let mut ignored = 0;
        let mut caught = 0;
        for (i, act) in gs.actions.iter().enumerate() {
            match act.handler {
                SIG_DFL => {}
                SIG_IGN => ignored |= 1 << i,
                _ => caught |= 1 << i,
            }
        }
        (gs.pending.set(), ignored, caught)
    };
    let (pending, blocked) = match &v.task {
        Some(t) => {
            let ts = t.sig.lock().unwrap();
            (ts.pending.set(), ts.mask)
        }
        None => (0, 0),
    };
    (pending, shared, blocked, ignored, caught)
}

fn cpu_ns(v: &View) -> u64 {
    if v.thread {
        v.task.as_ref().map_or(0, |t| t.cpu_ns.load(Ordering::Relaxed))
    } else {
        v.threads.iter().map(|t| t.cpu_ns.load(Ordering::Relaxed)).sum()
    }
}

fn ticks(ns: u64) -> u64 {
    ns / (1_000_000_000 / USER_HZ)
}

/// The fields of /proc/<pid>/stat that moat knows; the rest are Linux's idle values.
struct StatFields {
    id: i32,
    comm: Vec<u8>,
    state: char,
    ppid: i32,
    pgid: i32,
    sid: i32,
    utime: u64,
    cutime: u64,
    threads: usize,
    start: u64,
    vsize: u64,
    rss_pages: u64,
    code: (u64, u64),
    stack_top: u64,
    /// pending, blocked, ignored, caught.
    signals: [u64; 4],
    arg_range: (u64, u64),
    env_range: (u64, u64),
    exit_code: i32,
    nice: i32,
}

/// Formats the 52 fields of Linux's /proc/<pid>/stat.
fn format_stat(f: &StatFields) -> Vec<u8> {
    let mut out = Vec::new();
    put!(out, "{} (", f.id);
    out.extend_from_slice(&f.comm);
    // flags 0x400000 (PF_RANDOMIZE) as for any user process: ps takes PF_KTHREAD to mean a
    // kernel thread. tty 0, tpgid -1: the sandbox's terminal is no controlling tty here.
    put!(
        out,
        ") {} {} {} {} 0 -1 4194304 0 0 0 0 {} 0 {} 0 {} {} {} 0 {} {} {} {} {} {} {} 0 0",
        f.state,
        f.ppid,
        f.pgid,
        f.sid,
        f.utime,
        f.cutime,
        20 + f.nice,
        f.nice,
        f.threads,
        f.start,
        f.vsize,
        f.rss_pages,
        u64::MAX,
        f.code.0,
        f.code.1,
        f.stack_top
    );
    // Linux shows only the classic 31 signals here; status has the full sets.
    for s in f.signals {
        put!(out, " {}", s & 0x7fff_ffff);
    }
    put!(
        out,
        " 0 0 0 17 0 0 0 0 0 0 0 0 0 {} {} {} {} {}\n",
        f.arg_range.0,
        f.arg_range.1,
        f.env_range.0,
        f.env_range.1,
        f.exit_code
    );
    out
}

fn stat_file(v: &View) -> SysResult<Vec<u8>> {
    let info = ProcInfo::of(&v.tg);
    let mm = MmInfo::of(&v.tg);
    let (pending, _, blocked, ignored, caught) = signal_sets(v);
    let start = v.tg.start.saturating_duration_since(v.k.boot_time);
    Ok(format_stat(&StatFields {
        id: v.id,
        comm: v.tg.comm.lock().unwrap().clone(),
        state: run_state(v, &info).0,
        ppid: info.ppid,
        pgid: info.pgid,
        sid: info.sid,
        utime: ticks(cpu_ns(v)),
        cutime: if v.thread { 0 } else { ticks(info.children_cpu_ns) },
        threads: v.threads.len().max(1),
        start: ticks(start.as_nanos() as u64),
        vsize: mm.vsize,
        // The memory file does not track residency per process: count every mapped page.
        rss_pages: mm.vsize / PAGE,
        code: mm.code,
        stack_top: mm.stack_top,
        signals: [pending, blocked, ignored, caught],
        arg_range: mm.arg_range,
        env_range: mm.env_range,
        exit_code: info.zombie.unwrap_or(0),
        nice: v.tg.nice.load(Ordering::Relaxed),
    }))
}

fn status_file(v: &View) -> SysResult<Vec<u8>> {
    let info = ProcInfo::of(&v.tg);
    let (state, state_name) = run_state(v, &info);
    let comm = v.tg.comm.lock().unwrap().clone();
    let umask = v.tg.fs.lock().unwrap().umask;
    let creds = v.tg.creds.lock().unwrap().clone();
    let fd_size =
        v.tg.fds.lock().unwrap().fds().map(|(n, _)| n).max().map_or(0, |n| (n as u64 + 1).next_power_of_two());
    let (pending, shared, blocked, ignored, caught) = signal_sets(v);
    let caps = creds.caps;

    let mut out = Vec::new();
    out.extend_from_slice(b"Name:\t");
    out.extend_from_slice(&comm);
    put!(out, "\nUmask:\t{umask:04o}\nState:\t{state} ({state_name})\n");
    put!(out, "Tgid:\t{}\nNgid:\t0\nPid:\t{}\nPPid:\t{}\nTracerPid:\t0\n", v.tg.pid, v.id, info.ppid);
    put!(out, "Uid:\t{}\t{}\t{}\t{}\n", creds.uid, creds.euid, creds.suid, creds.euid);
    put!(out, "Gid:\t{}\t{}\t{}\t{}\n", creds.gid, creds.egid, creds.sgid, creds.egid);
    put!(out, "FDSize:\t{}\nGroups:\t", fd_size.max(64));
    for g in &creds.groups {
        put!(out, "{g} ");
    }
    put!(out, "\nNStgid:\t{}\nNSpid:\t{}\nNSpgid:\t{}\nNSsid:\t{}\n", v.tg.pid, v.id, info.pgid, info.sid);
    // Linux leaves out the memory lines once the address space is gone.
    if info.zombie.is_none() {
        let mm = MmInfo::of(&v.tg);
        let kb = |bytes: u64| bytes / 1024;
        for (name, value) in [
            ("VmPeak", mm.vsize),
            ("VmSize", mm.vsize),
            ("VmLck", 0),
            ("VmPin", 0),
            ("VmHWM", mm.vsize),
            ("VmRSS", mm.vsize),
            ("RssAnon", mm.vsize),
            ("RssFile", 0),
            ("RssShmem", 0),
            ("VmData", mm.data_bytes),
            ("VmStk", mm.stack_bytes),
            ("VmExe", mm.exe_bytes),
            ("VmLib", 0),
            ("VmPTE", 0),
            ("VmSwap", 0),
        ] {
            put!(out, "{name}:\t{:>8} kB\n", kb(value));
        }
    }
    put!(out, "CoreDumping:\t0\nTHP_enabled:\t1\nThreads:\t{}\n", v.threads.len().max(1));
    put!(out, "SigQ:\t{}/{SIGPENDING_LIMIT}\n", (pending | shared).count_ones());
    put!(out, "SigPnd:\t{pending:016x}\nShdPnd:\t{shared:016x}\nSigBlk:\t{blocked:016x}\n");
    put!(out, "SigIgn:\t{ignored:016x}\nSigCgt:\t{caught:016x}\n");
    put!(
        out,
        "CapInh:\t{:016x}\nCapPrm:\t{:016x}\nCapEff:\t{:016x}\n",
        caps.inheritable,
        caps.permitted,
        caps.effective
    );
    put!(out, "CapBnd:\t{:016x}\nCapAmb:\t{:016x}\n", caps.bounding, caps.ambient);
    put!(out, "NoNewPrivs:\t{}\nSeccomp:\t0\nSeccomp_filters:\t0\n", u8::from(creds.no_new_privs));
    put!(out, "Cpus_allowed:\t{}\nCpus_allowed_list:\t{}\n", cpu_mask_hex(v.ncpus), cpu_list(v.ncpus));
    put!(out, "Mems_allowed:\t1\nMems_allowed_list:\t0\n");
    put!(out, "voluntary_ctxt_switches:\t0\nnonvoluntary_ctxt_switches:\t0\n");
    Ok(out)
}

/// The totals of smaps. Every mapped page counts as resident (the memory file backs
/// them all) and nothing is swapped, as statm and status also say.
fn smaps_rollup_file(v: &View) -> SysResult<Vec<u8>> {
    let mm = MmInfo::of(&v.tg);
    let kb = mm.vsize / 1024;
    let mut out = String::new();
    out.push_str("00000000-ffffffffffffffff ---p 00000000 00:00 0                          [rollup]\n");
    for (name, val) in [
        ("Rss", kb),
        ("Pss", kb),
        ("Pss_Anon", mm.data_bytes / 1024),
        ("Pss_File", kb.saturating_sub(mm.data_bytes / 1024)),
        ("Pss_Shmem", 0),
        ("Shared_Clean", 0),
        ("Shared_Dirty", 0),
        ("Private_Clean", 0),
        ("Private_Dirty", kb),
        ("Referenced", kb),
        ("Anonymous", mm.data_bytes / 1024),
        ("LazyFree", 0),
        ("AnonHugePages", 0),
        ("ShmemPmdMapped", 0),
        ("FilePmdMapped", 0),
        ("Shared_Hugetlb", 0),
        ("Private_Hugetlb", 0),
        ("Swap", 0),
        ("SwapPss", 0),
        ("Locked", 0),
    ] {
        out.push_str(&format!("{:<16}{:>8} kB\n", format!("{name}:"), val));
    }
    Ok(out.into_bytes())
}

/// The process's resource limits in Linux's table format.
fn limits_file(v: &View) -> SysResult<Vec<u8>> {
    let limits = *v.tg.rlimits.lock().unwrap();
    let rows: [(&str, &str); 16] = [
        ("Max cpu time", "seconds"),
        ("Max file size", "bytes"),
        ("Max data size", "bytes"),
        ("Max stack size", "bytes"),
        ("Max core file size", "bytes"),
        ("Max resident set", "bytes"),
        ("Max processes", "processes"),
        ("Max open files", "files"),
        ("Max locked memory", "bytes"),
        ("Max address space", "bytes"),
        ("Max file locks", "locks"),
        ("Max pending signals", "signals"),
        ("Max msgqueue size", "bytes"),
        ("Max nice priority", ""),
        ("Max realtime priority", ""),
        ("Max realtime timeout", "us"),
    ];
    let show = |x: u64| if x == u64::MAX { "unlimited".to_string() } else { x.to_string() };
    let mut out = format!("{:<25} {:<20} {:<20} {:<10}\n", "Limit", "Soft Limit", "Hard Limit", "Units");
    for (i, (name, unit)) in rows.iter().enumerate() {
        let (soft, hard) = limits[i];
        out.push_str(&format!("{:<25} {:<20} {:<20} {:<10}\n", name, show(soft), show(hard), unit));
    }
    Ok(out.into_bytes())
}

fn statm_file(v: &View) -> SysResult<Vec<u8>> {
    let mm = MmInfo::of(&v.tg);
    let pages = |b: u64| b / PAGE;
    Ok(format!("{} {} 0 {} 0 {} 0\n", pages(mm.vsize), pages(mm.vsize), pages(mm.exe_bytes), pages(mm.data_bytes))
        .into_bytes())
}

/// Reads `[start, end)` of app memory; empty if the range is unset or unreadable
/// (a zombie has no address space left: Linux shows nothing either).
fn read_area(v: &View, (start, end): (u64, u64)) -> Vec<u8> {
    if end <= start {
        return Vec::new();
    }
    let mut buf = vec![0u8; (end - start).min(MAX_ARG_AREA) as usize];
    match v.tg.mm().lock().unwrap().read(start, &mut buf) {
        Ok(()) => buf,
        Err(_) => Vec::new(),
    }
}

fn cmdline_file(v: &View) -> SysResult<Vec<u8>> {
    let (arg_range, env_range) = {
        let mm_arc = v.tg.mm();
        let mm = mm_arc.lock().unwrap();
        (mm.arg_range, mm.env_range)
    };
    let args = read_area(v, arg_range);
    if matches!(args.last(), None | Some(0)) {
        return Ok(args);
    }
    // The final NUL was overwritten: the program rewrote its title in place
    // (setproctitle), possibly over envp. Like Linux, show one string from argv[0].
    let end = if env_range.0 == arg_range.1 && env_range.1 > env_range.0 { env_range.1 } else { arg_range.1 };
    let mut title = read_area(v, (arg_range.0, end.min(arg_range.0 + PAGE)));
    if let Some(nul) = title.iter().position(|&b| b == 0) {
        title.truncate(nul);
    }
    Ok(title)
}

fn environ_file(v: &View) -> SysResult<Vec<u8>> {
    let env_range = v.tg.mm().lock().unwrap().env_range;
    Ok(read_area(v, env_range))
}

fn auxv_file(v: &View) -> SysResult<Vec<u8>> {
    let mut auxv = v.tg.mm().lock().unwrap().auxv.clone();
    if !matches!(auxv.last(), Some((0, _))) {
        auxv.push((0, 0));
    }
    let words: Vec<u64> = auxv.iter().flat_map(|&(key, val)| [key, val]).collect();
    Ok(words.as_bytes().to_vec())
}

fn maps_file(v: &View) -> SysResult<Vec<u8>> {
    let vmas: Vec<_> = v.tg.mm().lock().unwrap().vmas().cloned().collect();
    Ok(vmas.iter().flat_map(|m| maps_line(m.start, m.end, m.prot, m.shared, &m.name)).collect())
}

/// One line of /proc/<pid>/maps, padded as Linux pads it.
fn maps_line(start: u64, end: u64, prot: u32, shared: bool, name: &VmaName) -> Vec<u8> {
    let (offset, dev, ino, label): (u64, u64, u64, &[u8]) = match name {
        VmaName::Anon => (0, 0, 0, b""),
        VmaName::Heap => (0, 0, 0, b"[heap]"),
        VmaName::Stack => (0, 0, 0, b"[stack]"),
        VmaName::Vvar => (0, 0, 0, b"[vvar]"),
        VmaName::Vdso => (0, 0, 0, b"[vdso]"),
        VmaName::File { path, dev, ino, offset } => (*offset, *dev, *ino, path.as_bytes()),
    };
    let bit = |on: bool, c: char| if on { c } else { '-' };
    let mut line = format!(
        "{start:08x}-{end:08x} {}{}{}{} {offset:08x} {:02x}:{:02x} {ino} ",
        bit(prot & PROT_READ != 0, 'r'),
        bit(prot & PROT_WRITE != 0, 'w'),
        bit(prot & PROT_EXEC != 0, 'x'),
        if shared && *name != VmaName::Vvar { 's' } else { 'p' },
        major(dev),
        minor(dev),
    )
    .into_bytes();
    if !label.is_empty() {
        if line.len() < MAPS_NAME_COLUMN {
            line.resize(MAPS_NAME_COLUMN, b' ');
        }
        line.push(b' ');
        line.extend_from_slice(label);
    }
    line.push(b'\n');
    line
}

/// Escapes the characters that would break a mounts line, as Linux does (octal).
fn escape_mount_field(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    for &b in s {
        if matches!(b, b' ' | b'\t' | b'\n' | b'\\') {
            put!(out, "\\{b:03o}");
        } else {
            out.push(b);
        }
    }
    out
}

fn mounts_text(k: &Kernel) -> Vec<u8> {
    let mut out = Vec::new();
    for (path, fstype, source) in k.vfs.mounts.list() {
        out.extend(escape_mount_field(source.as_bytes()));
        out.push(b' ');
        out.extend(escape_mount_field(&path));
        put!(out, " {fstype} {} 0 0\n", k.vfs.mounts.options(&path));
    }
    out
}

fn mountinfo_text(k: &Kernel) -> Vec<u8> {
    const FIRST_ID: usize = 20;
    let mounts = k.vfs.mounts.list();
    let root = k.vfs.root.clone();
    let mut out = Vec::new();
    for (i, (path, fstype, source)) in mounts.iter().enumerate() {
        // The parent is the mount with the longest path above this one; "/" has none in
        // the sandbox, so it points at an id that is not listed, as in a container.
        let parent = mounts
            .iter()
            .enumerate()
            .filter(|(_, (p, _, _))| p != path && is_under(path, p))
            .max_by_key(|(_, (p, _, _))| p.len())
            .map_or(FIRST_ID - 1, |(j, _)| FIRST_ID + j);
        let dev = k.vfs.walk(&root, &root, path, Follow::No).and_then(|d| d.inode.stat()).map_or(0, |st| st.dev);
        put!(out, "{} {parent} {}:{} / ", FIRST_ID + i, major(dev), minor(dev));
        out.extend(escape_mount_field(path));
        let options = k.vfs.mounts.options(path);
        put!(out, " {options},relatime - {fstype} ");
        out.extend(escape_mount_field(source.as_bytes()));
        put!(out, " {options}\n");
    }
    out
}

/// Whether absolute path `path` lies under directory `dir`.
fn is_under(path: &[u8], dir: &[u8]) -> bool {
    dir == b"/" || (path.starts_with(dir) && path.get(dir.len()) == Some(&b'/'))
}

/// The network stack of the sandbox `k` runs.
fn net_of(k: &Kernel) -> SysResult<Arc<Stack>> {
    crate::net::stack_of(k as *const Kernel as usize).ok_or(errno!(ENOENT))
}

/// /proc/net/dev. The loopback device counts no packets: its counters are 0.
fn net_dev_text(ifaces: &[IfaceInfo]) -> Vec<u8> {
    let mut out = b"Inter-|   Receive                                                |  Transmit\n \
face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"
        .to_vec();
    for i in ifaces {
        let c = &i.counters;
        put!(
            out,
            "{:>6}:{:>8} {:>7} {:>4} {:>4} {:>4} {:>5} {:>10} {:>9} ",
            i.name,
            c.rx_bytes,
            c.rx_packets,
            0,
            c.rx_dropped,
            0,
            0,
            0,
            0
        );
        put!(out, "{:>8} {:>7} {:>4} {:>4} {:>4} {:>5} {:>7} {:>10}\n", c.tx_bytes, c.tx_packets, 0, 0, 0, 0, 0, 0);
    }
    out
}

/// /proc/net/if_inet6: address, ifindex, prefix length, scope, flags, name.
fn if_inet6_text(ifaces: &[IfaceInfo]) -> Vec<u8> {
    let mut out = Vec::new();
    for i in ifaces {
        for (a, plen) in &i.addrs {
            let std::net::IpAddr::V6(a) = a else { continue };
            // IPV6_ADDR_LOOPBACK (0x10) or global (0); IFA_F_PERMANENT.
            let scope = if a.is_loopback() { 0x10 } else { 0 };
            let hex: String = a.octets().iter().map(|b| format!("{b:02x}")).collect();
            put!(out, "{hex} {:02x} {plen:02x} {scope:02x} 80 {:>8}\n", i.index, i.name);
        }
    }
    out
}

/// /proc/net/route: the main IPv4 table, which holds nothing while the only
/// interface is loopback (its routes are all in the local table).
fn route_text() -> Vec<u8> {
    format!("{:<127}\n", "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT")
        .into_bytes()
}

/// One internet socket of the sandbox as /proc/net shows it.
struct SockLine {
    local: std::net::SocketAddr,
    remote: std::net::SocketAddr,
    state: u8,
    tx: usize,
    rx: usize,
    uid: u32,
    ino: u64,
}

/// A socket address from getsockname's bytes (sockaddr_in or sockaddr_in6).
fn socket_addr(raw: &[u8]) -> Option<std::net::SocketAddr> {
    let family = u16::from_ne_bytes(raw.get(..2)?.try_into().ok()?);
    let port = u16::from_be_bytes(raw.get(2..4)?.try_into().ok()?);
    let ip: std::net::IpAddr = match i32::from(family) {
        abi::net::AF_INET => <[u8; 4]>::try_from(raw.get(4..8)?).ok()?.into(),
        abi::net::AF_INET6 => <[u8; 16]>::try_from(raw.get(8..24)?).ok()?.into(),
        _ => return None,
    };
    Some(std::net::SocketAddr::new(ip, port))
}

/// The address as a v4 one when it is v4-mapped, to match the stack's view.
fn unmapped(a: std::net::SocketAddr) -> std::net::SocketAddr {
    match a.ip() {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(a, |v4| std::net::SocketAddr::new(v4.into(), a.port())),
        _ => a,
    }
}

/// Every internet socket open in the sandbox, once each.
fn open_inet_sockets(k: &Kernel) -> Vec<Arc<InetSocket>> {
    let groups: Vec<Arc<ThreadGroup>> = k.pids.lock().unwrap().groups.values().cloned().collect();
    let mut seen = BTreeMap::new();
    for tg in groups {
        let files: Vec<Arc<OpenFile>> = tg.fds.lock().unwrap().fds().map(|(_, f)| f.clone()).collect();
        for f in files {
            if let Ok(s) = f.ops.clone().into_any_arc().downcast::<InetSocket>() {
                seen.insert(s.ino, s);
            }
        }
    }
    seen.into_values().collect()
}

/// /proc/net/{tcp,tcp6,udp,udp6,icmp,icmp6}: listeners and bound UDP sockets from the
/// open sockets, connections (closing ones too) from the stack.
fn inet_sockets_text(k: &Kernel, proto: Proto, family: Family) -> Vec<u8> {
    let socks = open_inet_sockets(k);
    let unspec = |f: Family| match f {
        Family::V4 => std::net::SocketAddr::from(([0u8; 4], 0)),
        Family::V6 => std::net::SocketAddr::from(([0u8; 16], 0)),
    };
    let uid = |s: &InetSocket| s.stat().map_or(0, |st| st.uid);
    let mut lines = Vec::new();
    for s in socks.iter().filter(|s| s.proto == proto && s.family == family) {
        let Some(local) = socket_addr(&s.local_address()) else { continue };
        let listening =
            s.getsockopt(abi::net::SOL_SOCKET, abi::net::SO_ACCEPTCONN).is_ok_and(|v| v.first() == Some(&1));
        if local.port() == 0 || (proto == Proto::Tcp && !listening) {
            continue;
        }
        let peer = s.peer_address().ok().and_then(|p| socket_addr(&p));
        let state = match (proto, peer) {
            (Proto::Tcp, _) => 0x0A,
            (Proto::Udp | Proto::Ping, Some(_)) => 0x01,
            (Proto::Udp | Proto::Ping, None) => 0x07,
        };
        lines.push(SockLine {
            local,
            remote: peer.unwrap_or(unspec(family)),
            state,
            tx: 0,
            rx: 0,
            uid: uid(s),
            ino: s.ino,
        });
    }
    if proto == Proto::Tcp {
        let Ok(stack) = net_of(k) else { return inet_text(proto, family, &lines) };
        for c in stack.tcp_connections() {
            let owner = socks.iter().find(|s| {
                s.proto == Proto::Tcp
                    && socket_addr(&s.local_address()).map(unmapped) == Some(c.local)
                    && s.peer_address().ok().and_then(|p| socket_addr(&p)).map(unmapped) == Some(c.remote)
            });
            let fam = owner.map_or(if c.local.is_ipv4() { Family::V4 } else { Family::V6 }, |s| s.family);
            if fam != family {
                continue;
            }
            let shown = |a: std::net::SocketAddr| match (family, a.ip()) {
                (Family::V6, std::net::IpAddr::V4(v4)) => {
                    std::net::SocketAddr::new(v4.to_ipv6_mapped().into(), a.port())
                }
                _ => a,
            };
            lines.push(SockLine {
                local: shown(c.local),
                remote: shown(c.remote),
                state: c.state,
                tx: c.tx_queue,
                rx: c.rx_queue,
                uid: owner.map_or(0, |s| uid(s)),
                ino: owner.map_or(0, |s| s.ino),
            });
        }
    }
    inet_text(proto, family, &lines)
}

/// An address as /proc/net prints it: each 32-bit word of the network-order
/// address read in host order, then the port.
fn proc_addr(a: std::net::SocketAddr) -> String {
    let words: String = match a.ip() {
        std::net::IpAddr::V4(v) => format!("{:08X}", u32::from_ne_bytes(v.octets())),
        std::net::IpAddr::V6(v) => v
            .octets()
            .chunks_exact(4)
            .map(|w| format!("{:08X}", u32::from_ne_bytes([w[0], w[1], w[2], w[3]])))
            .collect(),
    };
    format!("{words}:{:04X}", a.port())
}

fn inet_text(proto: Proto, family: Family, lines: &[SockLine]) -> Vec<u8> {
    let mut out = Vec::new();
    // Linux pads the IPv4 files' lines to a fixed width; the IPv6 ones are not.
    let (width, header) = match (proto, family) {
        (Proto::Tcp, Family::V4) => (149, "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode"),
        (Proto::Udp, Family::V4) => (127, "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops"),
        (Proto::Tcp, Family::V6) => (0, "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode"),
        (Proto::Udp | Proto::Ping, Family::V6) => (0, "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops"),
        (Proto::Ping, Family::V4) => (127, "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops"),
    };
    put!(out, "{header:<width$}\n");
    for (n, l) in lines.iter().enumerate() {
        let common = format!(
            "{}: {} {} {:02X} {:08X}:{:08X} 00:00000000 00000000 {:>5} {:>8} {}",
            if proto == Proto::Tcp { format!("{n:>4}") } else { format!("{n:>5}") },
            proc_addr(l.local),
            proc_addr(l.remote),
            l.state,
            l.tx,
            l.rx,
            l.uid,
            0,
            l.ino
        );
        // refcount, the socket's kernel address (hidden, as with kptr_restrict),
        // then TCP's rto, ato, pingpong, cwnd and ssthresh, or UDP's drops.
        let tail = match (proto, l.state) {
            (Proto::Tcp, 0x0A) => " 1 0000000000000000 100 0 0 10 0".to_string(),
            (Proto::Tcp, _) => " 1 0000000000000000 20 0 0 10 -1".to_string(),
            (Proto::Udp | Proto::Ping, _) => " 2 0000000000000000 0".to_string(),
        };
        put!(out, "{:<width$}\n", common + &tail);
    }
    out
}

fn filesystems_file(_: &Procfs, k: &Kernel) -> SysResult<Vec<u8>> {
    let mut types: BTreeSet<String> = ["proc", "tmpfs"].into_iter().map(String::from).collect();
    types.extend(k.vfs.mounts.list().into_iter().map(|(_, fstype, _)| fstype));
    let mut out = Vec::new();
    for t in types {
        put!(out, "nodev\t{t}\n");
    }
    Ok(out)
}

/// CPU time of every live app thread (ns); the pid table is held only for atomic loads.
fn busy_ns(k: &Kernel) -> u64 {
    k.pids.lock().unwrap().tasks.values().map(|t| t.cpu_ns.load(Ordering::Relaxed)).sum()
}

/// The highest pid in use: moat does not record the last one handed out.
fn last_pid(k: &Kernel) -> i32 {
    let pids = k.pids.lock().unwrap();
    pids.tasks.keys().chain(pids.groups.keys()).max().copied().unwrap_or(0)
}

fn uptime_file(fs: &Procfs, k: &Kernel) -> SysResult<Vec<u8>> {
    let up = k.uptime();
    let idle = (up * fs.ncpus as f64 - busy_ns(k) as f64 / 1e9).max(0.0);
    Ok(format!("{up:.2} {idle:.2}\n").into_bytes())
}

fn loadavg_file(_: &Procfs, k: &Kernel) -> SysResult<Vec<u8>> {
    let threads = k.pids.lock().unwrap().tasks.len();
    let last_pid = last_pid(k);
    // No load average is kept; the reader itself is the one thread known to be running.
    Ok(format!("0.00 0.00 0.00 1/{threads} {last_pid}\n").into_bytes())
}

fn system_stat_file(fs: &Procfs, k: &Kernel) -> SysResult<Vec<u8>> {
    let n = fs.ncpus as u64;
    let up_ticks = (k.uptime() * USER_HZ as f64) as u64;
    let user = ticks(busy_ns(k));
    let idle = (up_ticks * n).saturating_sub(user);
    let last_pid = last_pid(k);
    let now = Timespec::now().sec;
    let btime = now - k.uptime() as i64;
    let mut out = Vec::new();
    put!(out, "cpu  {user} 0 0 {idle} 0 0 0 0 0 0\n");
    for i in 0..n {
        put!(out, "cpu{i} {} 0 0 {} 0 0 0 0 0 0\n", user / n, idle / n);
    }
    // No fork counter is kept; pids are handed out in order, so the last one is close.
    put!(out, "intr 0\nctxt 0\nbtime {btime}\nprocesses {last_pid}\n");
    put!(out, "procs_running 1\nprocs_blocked 0\nsoftirq 0 0 0 0 0 0 0 0 0 0 0\n");
    Ok(out)
}

/// /proc/cpuinfo for `n` identical virtual CPUs.
fn cpuinfo_text(n: usize) -> String {
    let flags = cpu_flags().join(" ");
    let mut out = String::new();
    for i in 0..n {
        out += &format!(
            "processor\t: {i}\nvendor_id\t: moat\ncpu family\t: 6\nmodel\t\t: 0\nmodel name\t: moat virtual CPU\n\
             stepping\t: 0\ncpu MHz\t\t: 2000.000\ncache size\t: 0 KB\nphysical id\t: 0\nsiblings\t: {n}\n\
             core id\t\t: {i}\ncpu cores\t: {n}\napicid\t\t: {i}\ninitial apicid\t: {i}\nfpu\t\t: yes\n\
             fpu_exception\t: yes\ncpuid level\t: 13\nwp\t\t: yes\nflags\t\t: {flags}\nbugs\t\t:\n\
             bogomips\t: 4000.00\nclflush size\t: 64\ncache_alignment\t: 64\n\
             address sizes\t: 46 bits physical, 48 bits virtual\npower management:\n\n"
        );
    }
    out
}

/// CPU feature flags, in /proc/cpuinfo's names. App code runs natively on the host CPU,
/// so the features it really has are reported: programs pick code paths from them.
fn cpu_flags() -> Vec<&'static str> {
    let mut flags = vec![
        "fpu", "vme", "de", "pse", "tsc", "msr", "pae", "mce", "cx8", "apic", "sep", "mtrr", "pge", "mca", "cmov",
        "pat", "pse36", "clflush", "mmx", "fxsr", "sse", "sse2", "syscall", "nx", "lm",
    ];
    #[cfg(target_arch = "x86_64")]
    {
        macro_rules! detect {
            ($($feature:tt => $name:expr),* $(,)?) => {
                $(if std::arch::is_x86_feature_detected!($feature) {
                    flags.push($name);
                })*
            };
        }
        detect!(
            "sse3" => "pni", "pclmulqdq" => "pclmulqdq", "ssse3" => "ssse3", "fma" => "fma",
            "cmpxchg16b" => "cx16", "sse4.1" => "sse4_1", "sse4.2" => "sse4_2", "popcnt" => "popcnt",
            "aes" => "aes", "xsave" => "xsave", "avx" => "avx", "f16c" => "f16c", "rdrand" => "rdrand",
            "lzcnt" => "abm", "bmi1" => "bmi1", "avx2" => "avx2", "bmi2" => "bmi2", "rdseed" => "rdseed",
            "adx" => "adx", "sha" => "sha_ni", "avx512f" => "avx512f",
        );
    }
    flags
}

/// /proc/meminfo for a sandbox of `total` bytes of which `used` are resident.
fn meminfo_text(total: u64, used: u64) -> String {
    let kb = |b: u64| b / 1024;
    let free = total.saturating_sub(used);
    let mut out = String::new();
    for (name, bytes) in [
        ("MemTotal", total),
        ("MemFree", free),
        ("MemAvailable", free),
        ("Buffers", 0),
        ("Cached", 0),
        ("SwapCached", 0),
        ("Active", used),
        ("Inactive", 0),
        ("SwapTotal", 0),
        ("SwapFree", 0),
        ("Dirty", 0),
        ("Writeback", 0),
        ("AnonPages", used),
        ("Mapped", 0),
        ("Shmem", 0),
        ("Slab", 0),
        ("SReclaimable", 0),
        ("SUnreclaim", 0),
        ("KernelStack", 0),
        ("PageTables", 0),
        ("CommitLimit", total),
        ("Committed_AS", used),
        ("VmallocTotal", 0),
        ("VmallocUsed", 0),
        ("VmallocChunk", 0),
    ] {
        out += &format!("{:<16}{:>8} kB\n", format!("{name}:"), kb(bytes));
    }
    out += "HugePages_Total:       0\nHugePages_Free:        0\nHugePages_Rsvd:        0\nHugePages_Surp:        0\n";
    out += "Hugepagesize:       2048 kB\n";
    out
}

/// A cpumask as Linux prints it: hex, in comma-separated 32-bit words.
fn cpu_mask_hex(n: usize) -> String {
    let words = n.div_ceil(32).max(1);
    let mut parts = Vec::new();
    for w in (0..words).rev() {
        let bits = n.saturating_sub(w * 32).min(32);
        let word: u64 = if bits == 32 { 0xffff_ffff } else { (1u64 << bits) - 1 };
        if w == words - 1 {
            parts.push(format!("{word:0width$x}", width = bits.div_ceil(4).max(1)));
        } else {
            parts.push(format!("{word:08x}"));
        }
    }
    parts.join(",")
}

fn cpu_list(n: usize) -> String {
    if n <= 1 {
        "0".to_string()
    } else {
        format!("0-{}", n - 1)
    }
}

/// Formats 16 random bytes as a version-4 UUID.
fn uuid_text(mut b: [u8; 16]) -> String {
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        h[0..4].concat(),
        h[4..6].concat(),
        h[6..8].concat(),
        h[8..10].concat(),
        h[10..16].concat()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_has_52_fields_whatever_the_name() {
        let f = StatFields {
            id: 7,
            comm: b"a b) c".to_vec(),
            state: 'S',
            ppid: 1,
            pgid: 7,
            sid: 1,
            utime: 3,
            cutime: 0,
            threads: 2,
            start: 10,
            vsize: 4096,
            rss_pages: 1,
            code: (0x400000, 0x401000),
            stack_top: 0x7fff0000,
            signals: [(1 << 40) | 2, 0, 0, 0],
            arg_range: (1, 2),
            env_range: (2, 3),
            exit_code: 0,
            nice: 0,
        };
        let text = String::from_utf8(format_stat(&f)).unwrap();
        assert!(text.starts_with("7 (a b) c) S 1 7 1 0 -1 "));
        assert!(text.ends_with(" 1 2 2 3 0\n"));
        // Parsers split after the last ')': that leaves fields 3..=52.
        let rest = &text[text.rfind(')').unwrap() + 1..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        assert_eq!(fields.len(), 50);
        assert_eq!(fields[20 - 3], "2", "num_threads");
        assert_eq!(fields[31 - 3], "2", "pending signals keep only the classic 31");
        assert_eq!(fields[38 - 3], "17", "exit_signal");
    }

    #[test]
    fn maps_lines_pad_names_like_linux() {
        let anon = maps_line(0x1000, 0x3000, PROT_READ | PROT_WRITE, false, &VmaName::Anon);
        assert_eq!(anon, b"00001000-00003000 rw-p 00000000 00:00 0 \n");
        let stack =
            String::from_utf8(maps_line(0x7ffc_0000_0000, 0x7ffc_0002_1000, 3, false, &VmaName::Stack)).unwrap();
        assert_eq!(stack.find("[stack]"), Some(MAPS_NAME_COLUMN + 1));
        let file = VmaName::File {
            path: "/usr/bin/cat".into(),
            dev: crate::fs::dev::makedev(0xfd, 1),
            ino: 42,
            offset: 0x2000,
        };
        let line = String::from_utf8(maps_line(0x55_0000, 0x56_0000, PROT_READ | PROT_EXEC, true, &file)).unwrap();
        assert!(line.starts_with("00550000-00560000 r-xs 00002000 fd:01 42 "));
        assert!(line.ends_with(" /usr/bin/cat\n"));
    }

    #[test]
    fn meminfo_reports_kb() {
        let text = meminfo_text(2 << 30, 512 << 20);
        assert!(
            text.starts_with("MemTotal:        2097152 kB\nMemFree:         1572864 kB\nMemAvailable:    1572864 kB\n")
        );
        assert!(text.contains("\nSwapTotal:             0 kB\n"));
    }

    #[test]
    fn cpuinfo_has_one_block_per_cpu() {
        let text = cpuinfo_text(3);
        assert_eq!(text.matches("processor\t: ").count(), 3);
        assert!(text.contains("processor\t: 2\n"));
        assert!(text.contains("model name\t: moat virtual CPU\n"));
        assert!(text.contains(" sse2 "));
        assert!(text.ends_with("\n\n"));
    }

    #[test]
    fn cpu_masks() {
        assert_eq!(cpu_mask_hex(1), "1");
        assert_eq!(cpu_mask_hex(8), "ff");
        assert_eq!(cpu_mask_hex(12), "fff");
        assert_eq!(cpu_mask_hex(32), "ffffffff");
        assert_eq!(cpu_mask_hex(36), "f,ffffffff");
        assert_eq!(cpu_list(1), "0");
        assert_eq!(cpu_list(4), "0-3");
    }

    #[test]
    fn mount_fields_are_escaped() {
        assert_eq!(escape_mount_field(b"/a b\\c"), b"/a\\040b\\134c");
        assert!(is_under(b"/dev/pts", b"/dev"));
        assert!(is_under(b"/dev", b"/"));
        assert!(!is_under(b"/device", b"/dev"));
    }

    #[test]
    fn uuids_are_version_4() {
        let u = uuid_text([0xff; 16]);
        assert_eq!(u, "ffffffff-ffff-4fff-bfff-ffffffffffff");
    }

    mod live {
        //! procfs over a real kernel: a dummy platform, a small memory file, a tmpfs root.

        use std::collections::BTreeMap;
        use std::sync::Mutex;
        use std::time::Instant;

        use host::MemoryFile;

        use super::super::*;
        use crate::auth::{set_current, Creds};
        use crate::fs::pipe::Pipe;
        use crate::fs::tmpfs::TmpfsInode;
        use crate::kernel::signal::SigAction;
        use crate::kernel::task::FsContext;
        use crate::kernel::PidTable;
        use crate::mm::MemoryManager;
        use crate::mm::RangeAllocator;
        use crate::platform::{Context, Platform};
        use crate::vfs::{FdTable, Vfs};
        use abi::Errno;

        #[derive(Debug)]
        struct NoPlatform;

        impl Platform for NoPlatform {
            fn new_context(&self) -> std::io::Result<Box<dyn Context>> {
                Err(std::io::Error::from_raw_os_error(38))
            }

            fn layout(&self) -> crate::mm::Layout {
                crate::mm::Layout { top: 1 << 46 }
            }

            fn first_free_offset(&self) -> u64 {
                0
            }

            fn seccomp_rules(&self) -> &'static [host::seccomp::Rule] {
                &[]
            }
        }

        fn kernel() -> Arc<Kernel> {
            let mem = Arc::new(MemoryFile::new(64 << 20).unwrap());
            let alloc = RangeAllocator::new(mem.clone(), 0);
            let root: InodeRef = TmpfsInode::new_fs(0o755, &alloc);
            let vfs = Arc::new(Vfs::new(root.clone()));
            let clock = crate::kernel::clock::Clock::new(&alloc).unwrap();
            Arc::new_cyclic(|weak| {
                vfs.mounts.mount(b"/", root, "tmpfs", "rootfs");
                vfs.mounts.mount(b"/proc", new_procfs(weak.clone(), &Sysctls::default()), "proc", "proc");
                Kernel {
                    platform: Box::new(NoPlatform),
                    mem,
                    alloc,
                    frozen: Default::default(),
                    vfs,
                    pids: Mutex::new(PidTable::default()),
                    boot_time: Instant::now(),
                    strace: false,
                    hostname: Mutex::new(b"box".to_vec()),
                    domainname: Mutex::new(Vec::new()),
                    unimplemented: Mutex::new(BTreeMap::new()),
                    exits: Mutex::new(BTreeMap::new()),
                    exits_cv: std::sync::Condvar::new(),
                    max_tasks: None,
                    futexes: Default::default(),
                    sysv: Default::default(),
                    locks: Default::default(),
                    flocks: Default::default(),
                    inotify: Default::default(),
                    app_seccomp: None,
                    syscalls: crate::syscalls::TABLE,
                    memory_total: 2 << 30,
                    clock,
                    syscalls_served: Default::default(),
                }
            })
        }

        fn spawn(k: &Arc<Kernel>, parent: Option<&Arc<ThreadGroup>>, args: &[u8]) -> Arc<ThreadGroup> {
            let mut mm = MemoryManager::new(k.alloc.clone(), k.platform.layout());
            let (addr, _) = mm.map(0, PAGE, PROT_READ | PROT_WRITE, false, false, false, None, VmaName::Stack).unwrap();
            mm.write(addr, args).unwrap();
            mm.arg_range = (addr, addr + args.len() as u64);
            let fs = FsContext { root: k.vfs.root.clone(), cwd: k.vfs.root.clone(), umask: 0o022 };
            let mut pids = k.pids.lock().unwrap();
            let pid = pids.alloc();
            let tg = ThreadGroup::new(
                pid,
                parent.map(Arc::downgrade),
                mm,
                FdTable::default(),
                fs,
                Creds::default(),
                [SigAction::default(); 64],
                pid,
                pid,
                b"prog".to_vec(),
                b"/bin/prog".to_vec(),
            );
            let t = Task::new(pid, tg.clone(), 0);
            tg.state.lock().unwrap().threads.push(t.clone());
            pids.groups.insert(pid, tg.clone());
            pids.tasks.insert(pid, t);
            tg
        }

        fn walk(k: &Kernel, path: &str) -> SysResult<Arc<crate::vfs::Dentry>> {
            k.vfs.walk(&k.vfs.root, &k.vfs.root, path.as_bytes(), Follow::Yes)
        }

        fn read(k: &Kernel, path: &str) -> SysResult<String> {
            let d = walk(k, path)?;
            let f = OpenFile::new(d.inode.clone().open(0)?, Some(d), 0);
            let mut out = Vec::new();
            let mut buf = [0u8; 61];
            loop {
                let n = f.ops.read(&f, &mut buf, out.len() as u64)?;
                if n == 0 {
                    return Ok(String::from_utf8_lossy(&out).into_owned());
                }
                out.extend_from_slice(&buf[..n]);
            }
        }

        fn names(k: &Kernel, path: &str) -> Vec<String> {
            let d = walk(k, path).unwrap();
            d.inode.readdir().unwrap().into_iter().map(|e| String::from_utf8(e.name).unwrap()).collect()
        }

        #[test]
        fn processes_and_self() {
            let k = kernel();
            let init = spawn(&k, None, b"init\0--flag\0");
            let child = spawn(&k, Some(&init), b"child\0");
            set_current(1, 1);

            let root = names(&k, "/proc");
            for n in ["1", "2", "self", "thread-self", "cpuinfo", "meminfo", "mounts", "sys"] {
                assert!(root.contains(&n.to_string()), "{n} missing from {root:?}");
            }
            assert_eq!(walk(&k, "/proc/self").unwrap().path(), b"/proc/1");
            assert_eq!(walk(&k, "/proc/thread-self").unwrap().path(), b"/proc/1/task/1");

            assert!(read(&k, "/proc/self/stat").unwrap().starts_with("1 (prog) R 0 1 1 0 -1 "));
            // Another task is running until it sleeps in the Sentry.
            assert!(read(&k, "/proc/2/stat").unwrap().starts_with("2 (prog) R 1 2 2 0 -1 "));
            let waiter = child.threads()[0].waiter.clone();
            let sleeper = std::thread::spawn({
                let waiter = waiter.clone();
                move || waiter.wait(None)
            });
            while !waiter.is_sleeping() {
                std::thread::yield_now();
            }
            assert!(read(&k, "/proc/2/stat").unwrap().starts_with("2 (prog) S 1 2 2 0 -1 "));
            assert!(read(&k, "/proc/2/task/2/stat").unwrap().starts_with("2 (prog) S 1 "));
            assert_eq!(read(&k, "/proc/1/cmdline").unwrap(), "init\0--flag\0");
            assert_eq!(read(&k, "/proc/1/comm").unwrap(), "prog\n");
            let status = read(&k, "/proc/2/status").unwrap();
            for line in ["Name:\tprog\n", "State:\tS (sleeping)\n", "PPid:\t1\n", "Uid:\t0\t0\t0\t0\n", "Threads:\t1\n"]
            {
                assert!(status.contains(line), "{line:?} not in {status}");
            }
            waiter.notify();
            sleeper.join().unwrap();
            assert!(read(&k, "/proc/1/maps").unwrap().ends_with(" [stack]\n"));
            assert_eq!(
                walk(&k, "/proc/1/exe").err().map(|e| e.errno()),
                Some(Errno::ENOENT),
                "exe names a path the tmpfs lacks"
            );
            assert_eq!(names(&k, "/proc/1/task"), ["1"]);
            assert_eq!(read(&k, "/proc/sys/kernel/hostname").unwrap(), "box\n");
            assert!(read(&k, "/proc/mounts").unwrap().contains("proc /proc proc rw 0 0\n"));
            assert!(read(&k, "/proc/1/mountinfo").unwrap().contains(" / /proc rw,relatime - proc proc rw\n"));
            assert!(read(&k, "/proc/meminfo").unwrap().starts_with("MemTotal:        2097152 kB\n"));
            drop(child);
        }

        #[test]
        fn fd_links() {
            let k = kernel();
            let init = spawn(&k, None, b"init\0");
            let cpuinfo = walk(&k, "/proc/cpuinfo").unwrap();
            let file = OpenFile::new(cpuinfo.inode.clone().open(0).unwrap(), Some(cpuinfo), 0);
            let (reader, _writer) = Pipe::pair();
            let pipe = OpenFile::new(reader, None, 0);
            {
                let mut fds = init.fds.lock().unwrap();
                fds.set(3, file.clone(), true).unwrap();
                fds.set(4, pipe, false).unwrap();
            }
            assert_eq!(names(&k, "/proc/1/fd"), ["3", "4"]);
            let link = walk(&k, "/proc/1/fd").unwrap().inode.lookup(b"3").unwrap();
            assert_eq!(link.readlink().unwrap(), b"/proc/cpuinfo");
            assert_eq!(link.stat().unwrap().mode, 0o120500);
            let fd_link = link.as_any().downcast_ref::<FdLink>().unwrap();
            assert!(Arc::ptr_eq(&fd_link.open_file().unwrap(), &file));
            let pipe_link = walk(&k, "/proc/1/fd").unwrap().inode.lookup(b"4").unwrap();
            assert!(String::from_utf8(pipe_link.readlink().unwrap()).unwrap().starts_with("pipe:["));
            assert!(read(&k, "/proc/1/fdinfo/3").unwrap().starts_with("pos:\t0\nflags:\t2000000\n"));
            init.fds.lock().unwrap().remove(3).unwrap();
            assert_eq!(link.readlink().err().map(|e| e.errno()), Some(Errno::ENOENT));
        }

        #[test]
        fn zombies_and_reaped_processes() {
            let k = kernel();
            let init = spawn(&k, None, b"init\0");
            let child = spawn(&k, Some(&init), b"child\0");
            let stat = walk(&k, "/proc/2/stat").unwrap().inode.clone();
            {
                let mut st = child.state.lock().unwrap();
                st.threads.clear();
                st.zombie = Some(0x0100);
            }
            k.pids.lock().unwrap().tasks.remove(&2);
            assert!(read(&k, "/proc/2/stat").unwrap().starts_with("2 (prog) Z 1 "));
            assert!(read(&k, "/proc/2/stat").unwrap().ends_with(" 256\n"));
            assert!(read(&k, "/proc/2/status").unwrap().contains("State:\tZ (zombie)\n"));
            assert_eq!(names(&k, "/proc/2/task"), ["2"]);
            assert!(read(&k, "/proc/2/task/2/status").is_ok());

            k.pids.lock().unwrap().groups.remove(&2);
            assert_eq!(stat.clone().open(0).err().map(|e| e.errno()), Some(Errno::ESRCH));
            assert_eq!(walk(&k, "/proc/2").err().map(|e| e.errno()), Some(Errno::ENOENT));
            // A new process reusing a pid is not the old one.
            let other = spawn(&k, None, b"x\0");
            k.pids.lock().unwrap().groups.insert(2, other);
            assert_eq!(stat.open(0).err().map(|e| e.errno()), Some(Errno::ESRCH));
        }
    }
}
