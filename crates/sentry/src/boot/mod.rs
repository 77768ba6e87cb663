//! Boot: builds the memory file, platform, filesystems and the init task,
//! runs until init exits, and reports its wait status.

pub mod seccomp;

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use abi::Errno;
use host::MemoryFile;

use crate::auth::{CapSets, Creds};
use crate::fs::gofer::{GoferInode, Sharing};
use crate::fs::{dev, host::HostFile, overlay::OverlayInode, tmpfs::TmpfsInode};
use crate::kernel::current::CurrentTask;
use crate::kernel::signal::SigAction;
use crate::kernel::task::{self, FsContext, Task, ThreadGroup};
use crate::kernel::{Kernel, PidTable};
use crate::mm::{MemoryManager, RangeAllocator};
use crate::platform::PlatformKind;
use crate::taskfs::proc;
use crate::taskfs::pty::{Console, PtyRegistry};
use crate::taskfs::sysctl::{SysctlError, Sysctls};
use crate::vfs::{Dentry, FdTable, FileOps, FileType, Follow, Inode, InodeRef, NewNode, OpenFile, Vfs};
use crate::SysResult;

/// Size of the sparse memory file. It is address space, not memory: ranges
/// are handed out for every mapping (1 GiB of heap room per process, a 40 GiB
/// sparse file mapping) but cost nothing until touched, and what is touched
/// is the sandbox's memory, limited by its cgroup. 4 TiB holds thousands of
/// processes' reservations; the Sentry maps it once, without reserving swap.
const MEMORY_FILE_SIZE: u64 = 4 << 40;

/// moat's own stdin, stdout and stderr, handed to init.
#[derive(Debug)]
pub struct HostStdio {
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

/// How the root filesystem reaches the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileAccess {
    /// The Gofer serves the root read-only; the sandbox writes to an
    /// in-memory overlay, and nobody else changes the tree.
    Exclusive,
    /// Writes go through the Gofer to the host (an OCI container's root, as
    /// under runc), and nobody else changes the tree: attributes and names
    /// are cached for good.
    ExclusiveWriteThrough,
    /// Writes go through the Gofer to the host, and the host may change the
    /// tree too: cached attributes are revalidated.
    Shared,
}

/// The root filesystem.
#[derive(Debug)]
pub struct RootConfig {
    /// The connected socket to the Gofer serving the root.
    pub gofer: UnixStream,
    pub access: FileAccess,
    /// Most bytes of file data the exclusive root's overlay may hold (ENOSPC
    /// past it); only [`FileAccess::Exclusive`] has an overlay.
    pub overlay_limit: Option<u64>,
    /// Refuse every change to the root (EROFS), as a read-only OCI root.
    pub read_only: bool,
}

/// A filesystem mounted beside the root.
#[derive(Debug)]
pub struct MountConfig {
    /// Absolute path in the sandbox, without `.` or `..` components; the
    /// directory is made if the root has none there.
    pub target: Vec<u8>,
    pub kind: MountKind,
}

#[derive(Debug)]
pub enum MountKind {
    /// A host directory served by a Gofer of its own (a bind mount): writes
    /// reach the host unless it is read-only.
    Bind { gofer: UnixStream, read_only: bool },
    /// One host file, `name` in the directory a Gofer serves (a bind mount
    /// of a file, as Docker makes for /etc/hosts).
    BindFile { gofer: UnixStream, name: Vec<u8>, read_only: bool },
    /// A fresh tmpfs holding at most `limit` bytes.
    Tmpfs { mode: u32, limit: Option<u64> },
}

/// What to run and with what.
#[derive(Debug)]
pub struct BootConfig {
    pub root: RootConfig,
    pub mounts: Vec<MountConfig>,
    /// The first process (pid 1).
    pub init: ProcessConfig,
    pub hostname: Vec<u8>,
    /// The NIS domain name (`uname -d`); empty for Linux's "(none)".
    pub domainname: Vec<u8>,
    /// Kernel parameters (`linux.sysctl`) as (dotted key, value), shown under
    /// /proc/sys; kernel.hostname and kernel.domainname set the UTS names.
    pub sysctls: Vec<(String, String)>,
    pub strace: bool,
    /// Print counters (Gofer round trips, the network's traffic and egress
    /// refusals) on stderr when the sandbox ends.
    pub stats: bool,
    /// A tmpfs of at most this many bytes at /tmp (as `moat do` wants; an
    /// OCI container's /tmp is its image's).
    pub tmp_limit: Option<u64>,
    /// Most tasks (threads) the sandbox may have; fork/clone past it: EAGAIN.
    pub max_tasks: Option<usize>,
    /// For the filter's tests: once it is installed, make a host call
    /// outside the allow-list (socket(2)), which must kill the Sentry.
    pub selftest_forbidden_syscall: bool,
    /// The seccomp policy for the app's syscalls, enforced by the Sentry.
    pub app_seccomp: Option<crate::kernel::app_seccomp::AppSeccomp>,
    /// How app code runs and traps.
    pub platform: PlatformKind,
    /// The sandbox's memory limit in bytes (its cgroup's), which /proc/meminfo
    /// and sysinfo report as the total; None: the host's RAM.
    pub memory_limit: Option<u64>,
    /// The network namespace's links, handed over for the Sentry's stack
    /// (the `sandbox` network mode); None: loopback only.
    pub network: Option<crate::net::NetConfig>,
}

/// Why the sandbox could not start, or how it ended.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// The platform or memory could not be set up.
    #[error("cannot start the sandbox: {0}")]
    Host(#[from] std::io::Error),
    /// The Gofer did not answer the 9P handshake.
    #[error("cannot talk to the gofer: {0}")]
    Gofer(#[from] p9::Error),
    /// The root filesystem could not be attached.
    #[error("cannot attach the root filesystem: {0}")]
    Root(Errno),
    /// The Sentry could not give up its capabilities.
    #[error("cannot drop the sentry's capabilities: {0}")]
    Capabilities(std::io::Error),
    /// The Sentry's own seccomp filter could not be installed.
    #[error("cannot install the sentry's seccomp filter: {0}")]
    Seccomp(std::io::Error),
    /// A mount could not be set up.
    #[error("cannot mount {target}: {errno}")]
    Mount { target: String, errno: Errno },
    /// The first program could not be executed.
    #[error("cannot execute {path}: {errno}")]
    Exec { path: String, errno: Errno },
    /// A sysctl the Sentry cannot take.
    #[error("{0}")]
    Sysctl(#[from] SysctlError),
    /// The network namespace's configuration cannot be taken over.
    #[error("{0}")]
    Network(#[from] crate::net::NetConfigError),
}

fn start(cfg: BootConfig) -> Result<Sandbox, BootError> {
    let sysctls = Sysctls::parse(&cfg.sysctls)?;
    let hostname = sysctls.get("kernel.hostname").map_or(cfg.hostname.clone(), |h| h.as_bytes().to_vec());
    let domainname = sysctls.get("kernel.domainname").map_or(cfg.domainname.clone(), |d| d.as_bytes().to_vec());
    // The Sentry needs no capability: it traces only its own stubs, which
    // are forked below and so have none either (a tracer must hold every
    // capability its tracee does). Whoever called us set up what needed them.
    host::sys::drop_thread_capabilities().map_err(BootError::Capabilities)?;
    let mem = Arc::new(MemoryFile::new(MEMORY_FILE_SIZE)?);
    let platform = crate::platform::new_platform(cfg.platform, mem.clone())?;
    let alloc = RangeAllocator::new(mem.clone(), platform.first_free_offset());

    let mut clients = Vec::new();
    let root_client = Arc::new(p9::Client::new(cfg.root.gofer, MSIZE)?);
    clients.push(root_client.clone());
    let root: InodeRef = match cfg.root.access {
        _ if cfg.root.read_only => {
            GoferInode::attach(root_client, Sharing::Exclusive, true).map_err(|e| BootError::Root(e.errno()))?
        }
        FileAccess::Exclusive => {
            let lower =
                GoferInode::attach(root_client, Sharing::Exclusive, true).map_err(|e| BootError::Root(e.errno()))?;
            OverlayInode::new_root(lower, cfg.root.overlay_limit, &alloc)
        }
        FileAccess::ExclusiveWriteThrough => {
            GoferInode::attach(root_client, Sharing::Exclusive, false).map_err(|e| BootError::Root(e.errno()))?
        }
        FileAccess::Shared => {
            GoferInode::attach(root_client, Sharing::Shared, false).map_err(|e| BootError::Root(e.errno()))?
        }
    };
    let root_fstype = match cfg.root.access {
        _ if cfg.root.read_only => "9p",
        FileAccess::Exclusive => "overlay",
        FileAccess::ExclusiveWriteThrough | FileAccess::Shared => "9p",
    };
    let vfs = Arc::new(Vfs::new(root.clone()));

    // A terminal on init's stdin and stdout becomes the sandbox's console;
    // a terminal on stdin alone is still what /dev/tty opens.
    let init_console = console_fds(&cfg.init.stdio);
    let tty_file = match init_console {
        Some(_) => None,
        None => cfg.init.stdio.stdin.try_clone().ok().map(HostFile::new).filter(|f| f.is_tty()),
    };
    let mut tty_file: Option<Arc<dyn FileOps>> = tty_file.map(|f| f as Arc<dyn FileOps>);
    let mut consoles = None;
    // Read before the Sentry's seccomp filter is on (sysinfo is not on its list).
    let host_ram = host::sys::total_ram().unwrap_or(u64::MAX);
    let memory_total = cfg.memory_limit.map_or(host_ram, |limit| limit.min(host_ram));
    let clock = crate::kernel::clock::Clock::new(&alloc)
        .map_err(|e| BootError::Host(std::io::Error::from_raw_os_error(e.errno().0)))?;
    let k = Arc::new_cyclic(|weak: &Weak<Kernel>| {
        vfs.mounts.mount(b"/", root.clone(), root_fstype, "rootfs");
        vfs.mounts.mount(b"/proc", proc::new_procfs(weak.clone(), &sysctls), "proc", "proc");
        let ptys = PtyRegistry::new(weak.clone());
        let console = init_console.map(|(input, output)| ptys.console(input, output));
        if let Some(Ok(c)) = &console {
            tty_file = Some(c.tty());
        }
        vfs.mounts.mount(b"/dev", dev::new_devfs(tty_file, Some((ptys.ptmx(), ptys.pts()))), "devtmpfs", "dev");
        consoles = Some((ptys, console));
        if let Some(limit) = cfg.tmp_limit {
            vfs.mounts.mount(b"/tmp", TmpfsInode::new_fs_limited(0o1777, Some(limit), &alloc), "tmpfs", "tmpfs");
        }
        vfs.mounts.mount(b"/dev/shm", TmpfsInode::new_fs_limited(0o1777, Some(SHM_LIMIT), &alloc), "tmpfs", "shm");
        vfs.mounts.mount(b"/sys", crate::fs::sys::new_sysfs(host::sys::cpu_count()), "sysfs", "sysfs");
        Kernel {
            platform,
            mem: mem.clone(),
            alloc: alloc.clone(),
            frozen: Default::default(),
            vfs: vfs.clone(),
            pids: Mutex::new(PidTable::default()),
            boot_time: Instant::now(),
            strace: cfg.strace,
            hostname: Mutex::new(hostname),
            domainname: Mutex::new(domainname),
            unimplemented: Mutex::new(BTreeMap::new()),
            exits: Mutex::new(BTreeMap::new()),
            exits_cv: std::sync::Condvar::new(),
            max_tasks: cfg.max_tasks,
            futexes: Default::default(),
            sysv: Default::default(),
            locks: Default::default(),
            flocks: Default::default(),
            inotify: Default::default(),
            app_seccomp: cfg.app_seccomp,
            syscalls: crate::syscalls::TABLE,
            memory_total,
            clock: clock.clone(),
            syscalls_served: Default::default(),
        }
    });

    let (ptys, init_console) = consoles.expect("the kernel is built");
    let init_console = init_console.transpose()?;

    let mut mounts = cfg.mounts;
    // Parents first, so that a mount inside another is made in it.
    mounts.sort_by(|a, b| a.target.cmp(&b.target));
    for m in mounts {
        let failed = |e: crate::Error| BootError::Mount {
            target: String::from_utf8_lossy(&m.target).into_owned(),
            errno: e.errno(),
        };
        let (inode, fstype, source, read_only): (InodeRef, _, _, _) = match m.kind {
            MountKind::Bind { gofer, read_only } => {
                let client = Arc::new(p9::Client::new(gofer, MSIZE)?);
                clients.push(client.clone());
                (GoferInode::attach(client, Sharing::Shared, read_only).map_err(failed)?, "9p", "bind", read_only)
            }
            MountKind::BindFile { gofer, name, read_only } => {
                let client = Arc::new(p9::Client::new(gofer, MSIZE)?);
                clients.push(client.clone());
                let dir = GoferInode::attach(client, Sharing::Shared, read_only).map_err(failed)?;
                let file = dir.lookup(&name).map_err(failed)?;
                if file.stat().map_err(failed)?.file_type() != FileType::Regular {
                    return Err(failed(errno!(EINVAL)));
                }
                make_mountpoint(&vfs, parent_of(&m.target), &alloc).map_err(failed)?;
                make_file_mountpoint(&vfs, &m.target).map_err(failed)?;
                vfs.mounts.mount_with(&m.target, file, "9p", "bind", read_only);
                continue;
            }
            MountKind::Tmpfs { mode, limit } => {
                (TmpfsInode::new_fs_limited(mode, limit, &k.alloc), "tmpfs", "tmpfs", false)
            }
        };
        make_mountpoint(&vfs, &m.target, &alloc).map_err(failed)?;
        vfs.mounts.mount_with(&m.target, inode, fstype, source, read_only);
    }

    // Last, once everything that needs more is set up (the source stub is
    // forked, the Gofers attached, the mounts made): from here on a host
    // call outside the list kills the Sentry.
    host::sys::tame_malloc(MALLOC_ARENAS)?;
    // A panic is a Sentry bug, and its state can no longer be trusted: say
    // where, then end the sandbox. (Rust's own report may capture a
    // backtrace, whose file and getcwd calls the filter would kill the
    // Sentry for, without a word.)
    std::panic::set_hook(Box::new(|info| {
        crate::kernel::log_line(format_args!("moat: the sentry panicked (a bug; the sandbox ends): {info}"));
        std::process::abort();
    }));
    // The sandbox's network: loopback, and the links whose packet sockets
    // the runtime opened (the Sentry opens no host socket). Made before the
    // filter so that its threads start under no rule of their own; reading
    // and writing frames on those fds is read(2) and write(2), already allowed.
    let net = crate::net::Stack::with_network(cfg.network.unwrap_or_default())?;
    crate::net::install(Arc::as_ptr(&k) as usize, &net);
    let filter = host::seccomp::compile_allow_list_with(&seccomp::allow_list(&*k.platform), seccomp::mismatch());
    host::seccomp::install_on_all_threads(&filter).map_err(BootError::Seccomp)?;
    k.clock.start();
    if cfg.selftest_forbidden_syscall {
        // std's UDP bind starts with socket(2).
        let survived = std::net::UdpSocket::bind(("127.0.0.1", 0));
        let wrong =
            format!("a forbidden host call (socket) returned {survived:?}; the sentry's seccomp filter is not working");
        return Err(BootError::Host(std::io::Error::other(wrong)));
    }

    let sandbox = Sandbox { k, clients, stats: cfg.stats, ptys, net };
    let init = sandbox.spawn(cfg.init, true, init_console)?;
    debug_assert_eq!(init, 1);
    Ok(sandbox)
}

impl BootError {
    /// The shell's exit status for a program that could not be executed:
    /// 127 if it does not exist, 126 if it cannot run; None for other errors.
    pub fn exec_status(&self) -> Option<i32> {
        match self {
            BootError::Exec { errno, .. } if *errno == Errno::ENOENT => Some(127),
            BootError::Exec { .. } => Some(126),
            _ => None,
        }
    }
}

/// A process to start in the sandbox: init, or one started from outside
/// (`moat exec`).
#[derive(Debug)]
pub struct ProcessConfig {
    pub argv: Vec<Vec<u8>>,
    pub envp: Vec<Vec<u8>>,
    /// Absolute path of the working directory (`/` if it does not resolve).
    pub cwd: Vec<u8>,
    pub stdio: HostStdio,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    /// Resource limits to set: (RLIMIT_* number, soft, hard); the rest keep
    /// the Sentry's defaults.
    pub rlimits: Vec<(u32, u64, u64)>,
    /// The capability sets the process holds before it executes its
    /// program (which then changes them as execve does). None: every
    /// capability for root, none (with a full bounding set) for anyone else.
    pub capabilities: Option<CapSets>,
    /// Start with no_new_privs set (OCI `process.noNewPrivileges`).
    pub no_new_privileges: bool,
}

/// What `ps` shows of one sandbox process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    pub pid: i32,
    pub ppid: i32,
    /// The command name (`comm`).
    pub name: String,
    /// The arguments, as /proc/PID/cmdline has them.
    pub args: Vec<String>,
    /// The host process that runs it (a stub), if one runs it now.
    pub host_pid: Option<i32>,
}

/// A running sandbox: its kernel, seen from outside.
#[derive(Debug)]
pub struct Sandbox {
    k: Arc<Kernel>,
    clients: Vec<Arc<p9::Client>>,
    stats: bool,
    /// Where a process started with a terminal gets its console.
    ptys: Arc<PtyRegistry>,
    /// The network stack; the sandbox's sockets find it by the kernel's id.
    net: Arc<crate::net::Stack>,
}

/// Boots the sandbox and runs it until init exits; returns init's wait status.
pub fn boot(cfg: BootConfig) -> Result<i32, BootError> {
    let sandbox = Sandbox::start(cfg)?;
    let status = sandbox.wait(1);
    sandbox.finish();
    Ok(status)
}

impl Sandbox {
    /// Boots the sandbox and starts init; returns once init runs its program.
    pub fn start(cfg: BootConfig) -> Result<Sandbox, BootError> {
        start(cfg)
    }

    /// Starts `process` as a new process with no parent in the sandbox
    /// (as `runc exec` does); returns its pid once it runs its program.
    pub fn exec(&self, process: ProcessConfig) -> Result<i32, BootError> {
        let console = console_fds(&process.stdio).map(|(input, output)| self.ptys.console(input, output));
        self.spawn(process, false, console.transpose()?)
    }

    /// What the sandbox's network moved and refused (`net::Stack::stats`).
    pub fn net_stats(&self) -> crate::net::NetStats {
        self.net.stats()
    }

    /// Replaces the egress policy of the sandbox's network (see
    /// `net::Stack::set_egress_policy`).
    pub fn set_egress_policy(&self, policy: crate::net::policy::Policy) {
        self.net.set_egress_policy(policy);
    }

    /// Waits until process `pid` (init, or one started by [`Sandbox::exec`])
    /// exits and returns its wait status; reaps it unless it is init.
    pub fn wait(&self, pid: i32) -> i32 {
        let mut exits = self.k.exits.lock().unwrap();
        loop {
            if let Some(&status) = exits.get(&pid) {
                if pid != 1 {
                    exits.remove(&pid);
                    drop(exits);
                    self.k.pids.lock().unwrap().groups.remove(&pid);
                }
                return status;
            }
            exits = self.k.exits_cv.wait(exits).unwrap();
        }
    }

    /// Whether process `pid` has exited (without reaping it).
    pub fn exited(&self, pid: i32) -> Option<i32> {
        self.k.exits.lock().unwrap().get(&pid).copied()
    }

    /// Sends `sig` from outside the sandbox to process `pid`. As for any
    /// sender outside a PID namespace, init gets only SIGKILL, SIGSTOP and
    /// the signals it handles.
    pub fn signal(&self, pid: i32, sig: i32) -> Result<(), Errno> {
        if !(1..=64).contains(&sig) {
            return Err(Errno::EINVAL);
        }
        let group = self.k.group(pid).ok_or(Errno::ESRCH)?;
        if group.state.lock().unwrap().zombie.is_some() {
            return Err(Errno::ESRCH);
        }
        if pid == 1 && sig != crate::kernel::signal::SIGKILL && sig != crate::kernel::signal::SIGSTOP {
            let handler = group.sig.lock().unwrap().actions[(sig - 1) as usize].handler;
            if handler == crate::kernel::signal::SIG_DFL {
                return Ok(());
            }
        }
        crate::kernel::deliver::send_to_group(
            &group,
            crate::kernel::signal::SigInfo { signo: sig, code: SI_USER, ..Default::default() },
        );
        Ok(())
    }

    /// Sends `sig` from outside to every live process of the sandbox.
    pub fn signal_all(&self, sig: i32) -> Result<(), Errno> {
        let pids: Vec<i32> = self.k.pids.lock().unwrap().groups.keys().copied().collect();
        for pid in pids {
            match self.signal(pid, sig) {
                Ok(()) | Err(Errno::ESRCH) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The sandbox's live processes, by pid.
    pub fn processes(&self) -> Vec<ProcessInfo> {
        let groups: Vec<Arc<ThreadGroup>> = self.k.pids.lock().unwrap().groups.values().cloned().collect();
        let mut out = Vec::new();
        for g in groups {
            if g.state.lock().unwrap().zombie.is_some() {
                continue;
            }
            let name = g.comm.lock().unwrap().clone();
            let args = {
                let mm_arc = g.mm();
                let mm = mm_arc.lock().unwrap();
                let (start, end) = mm.arg_range;
                let mut buf = vec![0u8; end.saturating_sub(start).min(4096) as usize];
                if mm.read(start, &mut buf).is_err() {
                    buf.clear();
                }
                buf
            };
            let args = args
                .split(|&b| b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            let host_pid = g.threads().iter().find_map(|t| t.kicker_slot().as_ref().map(|k| k.host_pid()));
            out.push(ProcessInfo {
                pid: g.pid,
                ppid: g.ppid(),
                name: String::from_utf8_lossy(&name).into_owned(),
                args,
                host_pid,
            });
        }
        out
    }

    /// Prints the counters asked for; call once the sandbox is done.
    pub fn finish(&self) {
        if self.stats {
            let round_trips: u64 = self.clients.iter().map(|c| c.round_trips()).sum();
            let rss = host::sys::max_rss_kib();
            let n = self.net.stats();
            let t = n.total();
            crate::kernel::log_line(format_args!(
                "moat: stats: syscalls={} gofer_round_trips={round_trips} sentry_max_rss_kib={rss} \
                 net_rx_packets={} net_rx_bytes={} net_tx_packets={} net_tx_bytes={} net_rx_dropped={} \
                 tcp_connects={} tcp_accepts={} egress_refusals={}",
                self.k.syscalls_served.load(std::sync::atomic::Ordering::Relaxed),
                t.rx_packets,
                t.rx_bytes,
                t.tx_packets,
                t.tx_bytes,
                t.rx_dropped,
                n.tcp_connects,
                n.tcp_accepts,
                n.refusals
            ));
        }
        if self.k.strace {
            let counts = self.k.unimplemented.lock().unwrap();
            if !counts.is_empty() {
                let list: Vec<String> = counts
                    .iter()
                    .map(|(nr, n)| match abi::sysno::name(*nr) {
                        _ if *nr == crate::kernel::NOT_A_SYSCALL => {
                            format!("numbers past {} x{n}", crate::kernel::MAX_SYSCALL_NR)
                        }
                        Some(name) => format!("{name}({nr}) x{n}"),
                        None => format!("{nr} x{n}"),
                    })
                    .collect();
                crate::kernel::log_line(format_args!("moat: unimplemented syscalls called: {}", list.join(", ")));
            }
        }
    }

    /// Starts `p`; with a `console`, its stdio that is the host terminal is
    /// the console's slave instead, and the console is its controlling terminal.
    fn spawn(&self, p: ProcessConfig, init: bool, console: Option<Console>) -> Result<i32, BootError> {
        let k = &self.k;
        // An exec'd process counts against the sandbox's task limit like a fork.
        k.check_task_limit().map_err(|e| BootError::Exec {
            path: String::from_utf8_lossy(p.argv.first().map_or(&b""[..], |a| a)).into_owned(),
            errno: e.errno(),
        })?;
        let vfs = &k.vfs;
        let cwd = vfs.walk(&vfs.root, &vfs.root, &p.cwd, Follow::Yes).unwrap_or_else(|_| vfs.root.clone());
        // One open file description for every fd on the terminal, as a
        // terminal's stdio is after runc's dup2s; its path is /dev/pts/N.
        let tty = console.as_ref().and_then(|c| {
            let dentry = vfs.walk(&vfs.root, &vfs.root, &c.path(), Follow::No).ok();
            c.take_slave().map(|slave| OpenFile::new(slave, dentry, O_RDWR))
        });
        let mut fds = FdTable::default();
        for (i, host_fd) in [p.stdio.stdin, p.stdio.stdout, p.stdio.stderr].into_iter().enumerate() {
            let file = match &tty {
                // The console reads stdin's terminal and writes stdout's; stderr
                // joins them if it is a terminal too.
                Some(tty) if i < 2 || host_fd.is_terminal() => tty.clone(),
                _ => OpenFile::new(HostFile::new(host_fd), None, if i == 0 { O_RDONLY } else { O_WRONLY }),
            };
            fds.set(i as i32, file, false)
                .map_err(|e| BootError::Exec { path: "stdio".to_owned(), errno: e.errno() })?;
        }
        let fs = FsContext { root: vfs.root.clone(), cwd, umask: 0o022 };
        let default_caps = if p.uid == 0 { CapSets::full() } else { CapSets::unprivileged() };
        let creds = Creds {
            uid: p.uid,
            euid: p.uid,
            suid: p.uid,
            gid: p.gid,
            egid: p.gid,
            sgid: p.gid,
            groups: p.groups.clone(),
            caps: p.capabilities.map_or(default_caps, CapSets::normalized),
            keep_caps: false,
            no_new_privs: p.no_new_privileges,
        };
        let leader = {
            let mut pids = k.pids.lock().unwrap();
            let pid = pids.alloc();
            if init && pid != 1 {
                return Err(BootError::Host(std::io::Error::other("init must be the first process")));
            }
            let tg = ThreadGroup::new(
                pid,
                None,
                MemoryManager::new(k.alloc.clone(), k.platform.layout()),
                fds,
                fs,
                creds,
                [SigAction::default(); 64],
                pid,
                pid,
                Vec::new(),
                Vec::new(),
            );
            {
                let mut limits = tg.rlimits.lock().unwrap();
                for &(which, soft, hard) in &p.rlimits {
                    let Some(limit) = limits.get_mut(which as usize) else {
                        return Err(BootError::Host(std::io::Error::other(format!("no resource limit {which}"))));
                    };
                    *limit = (soft.min(hard), hard);
                }
            }
            if let Some(c) = &console {
                c.set_controlling(pid);
            }
            let t = Task::new(pid, tg.clone(), 0);
            tg.state.lock().unwrap().threads.push(t.clone());
            pids.groups.insert(pid, tg);
            pids.tasks.insert(pid, t.clone());
            t
        };
        let pid = leader.tid();

        let (tx, rx) = std::sync::mpsc::channel::<Result<(), (Vec<u8>, crate::Error)>>();
        let k2 = k.clone();
        let (argv, envp) = (p.argv, p.envp);
        let spawned = std::thread::Builder::new().name(format!("task-{pid}")).spawn(move || {
            let started = k2.platform.new_context().and_then(|ctx| Ok((ctx.initial_regs()?, ctx)));
            let (regs, ctx) = match started {
                Ok(r) => r,
                Err(e) => {
                    let _ = tx.send(Err((b"stub".to_vec(), crate::Error::from(e))));
                    leader.tg.begin_exit(task::signaled(9, false));
                    return crate::kernel::exit::exit_thread(&k2, &leader);
                }
            };
            let mut cur = CurrentTask { k: k2.clone(), task: leader.clone(), ctx, regs, restart: None };
            crate::auth::set_current(pid, pid);
            let result = exec_command(&mut cur, &argv, &envp);
            match result {
                Ok(()) => {
                    let _ = tx.send(Ok(()));
                    cur.run();
                }
                Err(e) => {
                    let _ = tx.send(Err((argv.first().cloned().unwrap_or_default(), e)));
                    cur.tg().begin_exit(task::exited(127));
                    drop(cur);
                    crate::kernel::exit::exit_thread(&k2, &leader);
                }
            }
        });
        spawned?;
        match rx.recv() {
            Ok(Ok(())) => Ok(pid),
            Ok(Err((path, errno))) => {
                if !init {
                    self.wait(pid);
                }
                Err(BootError::Exec { path: String::from_utf8_lossy(&path).into_owned(), errno: errno.errno() })
            }
            Err(_) => Err(BootError::Host(std::io::Error::other("the process's thread ended before it started"))),
        }
    }
}

/// A process's host terminal for a console, as (what it reads, what it
/// writes): when its stdin and stdout are both terminals. Only then does the
/// console take them over; otherwise the host fds are the app's as they are.
fn console_fds(stdio: &HostStdio) -> Option<(OwnedFd, OwnedFd)> {
    if !(stdio.stdin.is_terminal() && stdio.stdout.is_terminal()) {
        return None;
    }
    Some((stdio.stdin.try_clone().ok()?, stdio.stdout.try_clone().ok()?))
}

const O_RDONLY: u32 = 0;
const O_WRONLY: u32 = 1;
const O_RDWR: u32 = 2;

/// `si_code` of a signal sent by kill(2), here by the runtime from outside.
const SI_USER: i32 = 0;

/// malloc arenas the Sentry's threads share (see `host::sys::tame_malloc`).
const MALLOC_ARENAS: i32 = 8;

/// The size of the Sentry's own /dev/shm (Docker's default shm size); a
/// mount the configuration names there replaces it.
const SHM_LIMIT: u64 = 64 << 20;

/// The largest 9P message asked of a Gofer.
const MSIZE: u32 = 1 << 20;

/// Makes every missing directory of the absolute path `target`, as runc
/// does for a mount point. A symlink on the way is refused: mount targets
/// are the paths they say.
fn make_mountpoint(vfs: &Vfs, target: &[u8], alloc: &Arc<RangeAllocator>) -> SysResult<()> {
    let mut dir: Arc<Dentry> = vfs.root.clone();
    let mut path = Vec::new();
    for name in target.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
        if name == b"." || name == b".." {
            return Err(errno!(EINVAL));
        }
        path.push(b'/');
        path.extend_from_slice(name);
        let next = match vfs.step(&vfs.root, &dir, name) {
            Ok(next) => next,
            Err(e) if e == Errno::ENOENT => {
                match dir.inode.create(name, NewNode::Dir { mode: 0o755 }) {
                    Ok(_) => {}
                    // A read-only root gets an empty directory of the
                    // Sentry's own there, as the mount point (and the path to it).
                    Err(e) if e == Errno::EROFS => vfs.mounts.mount(
                        &path,
                        TmpfsInode::new_fs_limited(0o755, Some(0), alloc),
                        "tmpfs",
                        "mountpoint",
                    ),
                    Err(e) => return Err(e),
                }
                vfs.step(&vfs.root, &dir, name)?
            }
            Err(e) => return Err(e),
        };
        match next.inode.stat()?.file_type() {
            FileType::Directory => dir = next,
            FileType::Symlink => return Err(errno!(ELOOP)),
            _ => return Err(errno!(ENOTDIR)),
        }
    }
    Ok(())
}

fn parent_of(path: &[u8]) -> &[u8] {
    match path.iter().rposition(|&b| b == b'/') {
        Some(0) | None => b"/",
        Some(i) => &path[..i],
    }
}

/// Makes sure a regular file is at `target` (its directory exists), to
/// mount a file over.
fn make_file_mountpoint(vfs: &Vfs, target: &[u8]) -> SysResult<()> {
    let dir = vfs.walk(&vfs.root, &vfs.root, parent_of(target), Follow::No)?;
    let name = &target[parent_of(target).len()..];
    let name = name.strip_prefix(b"/").unwrap_or(name);
    match vfs.step(&vfs.root, &dir, name) {
        Ok(existing) => match existing.inode.stat()?.file_type() {
            FileType::Regular => Ok(()),
            FileType::Symlink => Err(errno!(ELOOP)),
            _ => Err(errno!(EISDIR)),
        },
        Err(e) if e == Errno::ENOENT => match dir.inode.create(name, NewNode::File { mode: 0o644 }) {
            // On a read-only root the mount is found by its path alone.
            Ok(_) => Ok(()),
            Err(e) if e == Errno::EROFS => Ok(()),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    }
}

/// Executes argv[0] as glibc's execvp does: a name with a '/' is the path;
/// else each $PATH directory is tried in turn (an empty entry is the
/// current directory), going on past one where the file is missing, the
/// directory is not one or cannot be searched, or the file cannot be
/// executed. Any other failure (not an executable format, too many links)
/// ends the search. If every candidate failed, the error is EACCES when one
/// of them was there but could not be executed, else the last one's.
fn exec_command(cur: &mut CurrentTask, argv: &[Vec<u8>], envp: &[Vec<u8>]) -> SysResult<()> {
    if let Some(path) = argv.first().filter(|cmd| cmd.contains(&b'/')) {
        return crate::syscalls::exec_initial(cur, path, argv.to_vec(), envp.to_vec());
    }
    let mut found_unexecutable = false;
    let mut last = errno!(ENOENT);
    for path in &path_candidates(argv, envp) {
        match crate::syscalls::exec_initial(cur, path, argv.to_vec(), envp.to_vec()) {
            Err(e)
                if [Errno::EACCES, Errno::ENOENT, Errno::ENOTDIR, Errno::ESTALE, Errno::ENODEV, Errno::ETIMEDOUT]
                    .contains(&e.errno()) =>
            {
                found_unexecutable |= e == Errno::EACCES;
                last = e;
            }
            done => return done,
        }
    }
    Err(if found_unexecutable { errno!(EACCES) } else { last })
}

/// The paths $PATH gives for argv[0], a name with no '/', in order (none
/// for an empty name, which names no file).
fn path_candidates(argv: &[Vec<u8>], envp: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let Some(cmd) = argv.first().filter(|cmd| !cmd.is_empty()) else { return vec![] };
    let path = envp
        .iter()
        .find_map(|e| e.strip_prefix(b"PATH="))
        .map(|p| p.to_vec())
        .unwrap_or_else(|| b"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_vec());
    path.split(|&b| b == b':')
        .map(|d| {
            let mut p = d.to_vec();
            if !p.is_empty() {
                p.push(b'/');
            }
            p.extend_from_slice(cmd);
            p
        })
        .collect()
}
