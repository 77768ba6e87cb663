//! `moat do -- CMD ARGS...`: one command in a fresh sandbox. The root is
//! `--rootfs DIR` (or the host's `/`), read-only under an in-memory overlay
//! unless `--file-access shared`; `--volume` adds bind mounts, each served
//! by a Gofer of its own. The command gets a clean environment (never
//! moat's own) and, run as root, a cgroup bounding its memory, tasks and CPU.
//!
//! As root the first `moat do` makes the cgroup and runs itself again as
//! pid 1 of a new PID namespace (`--in-pid-namespace`), which joins the
//! cgroup, makes its own mount, IPC and UTS namespaces and boots the Sentry.
//! `options` parses mounts and sizes, `environment` the variables, `limits`
//! the cgroup's resources, `network` (with `nat`) `--network sandbox`.

mod environment;
mod limits;
mod nat;
mod network;
mod options;
mod terminal;

use std::ffi::OsString;
use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use abi::Errno;
use nix::sys::signal::{SigSet, Signal};
use sentry::net::NetConfig;
use sentry::{BootError, Sandbox};
use sentry::{FileAccess, MountConfig, MountKind, RootConfig};

pub use environment::EnvError;
pub use nat::NatError;
pub use network::{DoEgress, NetworkMode};
pub use options::{parse_size, OptionError, Tmpfs, Volume};

use crate::cgroups::{Cgroup, CgroupError};
use crate::egress::EgressError;
use crate::gofers::{GoferError, Gofers, Serving};
use crate::sandbox::network::NetworkError;
use crate::sandbox::{exit_code, rerun_in_pid_namespace, NamespaceError};
use crate::subcommands::DoInPidNamespace;
use network::Updates;

/// What `moat do` is asked to run, and how.
#[derive(Debug, Clone)]
pub struct DoConfig {
    /// The root filesystem; the host's `/` if none.
    pub rootfs: Option<PathBuf>,
    /// Whether the root's writes stay in an overlay or reach the host.
    pub file_access: FileAccess,
    /// The most file data the exclusive root's overlay may hold.
    pub overlay_size: u64,
    /// Host directories bind-mounted into the sandbox.
    pub volumes: Vec<Volume>,
    /// Fresh tmpfs mounts.
    pub tmpfs: Vec<Tmpfs>,
    /// Log every syscall the app makes to stderr.
    pub strace: bool,
    /// How app code runs and traps to the Sentry.
    pub platform: sentry::PlatformKind,
    /// Print counters on stderr when the sandbox ends.
    pub stats: bool,
    /// `--env` values, `VAR=VALUE` or `VAR`.
    pub env: Vec<OsString>,
    /// `--env-file` files.
    pub env_files: Vec<PathBuf>,
    /// `--memory`, as given.
    pub memory: Option<String>,
    /// `--pids`, as given.
    pub pids: Option<String>,
    /// `--cpus`, as given.
    pub cpus: Option<String>,
    /// `--network`.
    pub network: NetworkMode,
    /// The egress flags (`--allow`, `--egress-policy`, ...), for `--network sandbox`.
    pub egress: DoEgress,
    /// For the Sentry filter's tests: make a host call outside its allow-list.
    pub selftest_forbidden_syscall: bool,
    /// Set when this is the inner `moat do`, pid 1 of the sandbox's namespace.
    pub inner: DoInPidNamespace,
    /// The command and its arguments.
    pub cmd: Vec<OsString>,
}

/// Why `moat do` could not run the command; `moat do` exits with 125.
#[derive(Debug, thiserror::Error)]
pub enum DoError {
    /// Limits were asked for without the root needed to make a cgroup.
    #[error(
        "--memory, --pids and --cpus need root: moat do enforces them with a cgroup, which only root can make \
         (run as root, or leave them out to run with no cgroup)"
    )]
    LimitsNeedRoot,
    /// The inner `moat do` cannot join the cgroup the outer one made.
    #[error("cannot join the sandbox's cgroup {cgroup}: {source}")]
    JoinCgroup {
        /// The cgroup.
        cgroup: String,
        /// Why.
        source: CgroupError,
    },
    /// A namespace cannot be made, or the inner `moat do` started.
    #[error("{0}")]
    Namespace(#[from] NamespaceError),
    /// The stop signals cannot be blocked.
    #[error("cannot block signals: {0}")]
    BlockSignals(#[source] nix::errno::Errno),
    /// The sandbox's cgroup cannot be made.
    #[error("cannot make the sandbox's cgroup {path} (as root, moat do limits every sandbox with one): {source}")]
    MakeCgroup {
        /// The cgroup.
        path: String,
        /// Why.
        source: CgroupError,
    },
    /// `--pids` out of range.
    #[error("--pids {0:?}: give a number of tasks from 1 to {max}", max = limits::MAX_APP_TASKS)]
    Pids(String),
    /// `--memory` is not a size.
    #[error("--memory: {0}")]
    Memory(#[source] OptionError),
    /// `--memory` below the least that runs anything.
    #[error("--memory {0}: the least is 64M")]
    MemoryTooSmall(String),
    /// `--memory` past what the kernel takes.
    #[error("--memory {0}: too large")]
    MemoryTooLarge(String),
    /// `--cpus` is not a number.
    #[error("--cpus {0:?} is not a number (such as 0.5 or 2)")]
    CpusNotNumber(String),
    /// `--cpus` out of range.
    #[error("--cpus {cpus}: the range is 0.01 to {available}, as there are {available} CPUs available")]
    CpusRange {
        /// The value given.
        cpus: String,
        /// The CPUs there are.
        available: usize,
    },
    /// The host's RAM, which the default memory limit is a share of, is unknown.
    #[error("cannot learn the host's RAM (sysinfo failed) for the default memory limit; give --memory")]
    NoHostRam,
    /// An `--env-file` cannot be read.
    #[error("--env-file {}: cannot read it: {source}", .path.display())]
    EnvFileRead {
        /// The file.
        path: PathBuf,
        /// What the read returned.
        source: std::io::Error,
    },
    /// An `--env-file` past 1 MiB.
    #[error("--env-file {}: larger than 1 MiB", .0.display())]
    EnvFileTooLarge(PathBuf),
    /// A line of an `--env-file` is refused.
    #[error("--env-file {}: {source}", .path.display())]
    EnvFile {
        /// The file.
        path: PathBuf,
        /// The line and why.
        source: EnvError,
    },
    /// An `--env` is refused.
    #[error("--env {arg:?}: {source}")]
    EnvArg {
        /// The value given.
        arg: String,
        /// Why.
        source: EnvError,
    },
    /// The root's Gofer did not start.
    #[error("--rootfs {0}")]
    RootGofer(#[source] GoferError),
    /// A volume's Gofer did not start.
    #[error("--volume {0}")]
    VolumeGofer(#[source] GoferError),
    /// moat do was started without stdin, stdout or stderr.
    #[error("stdin, stdout and stderr must be open")]
    NoStdio,
    /// The Sentry could not boot the sandbox.
    #[error("{0}")]
    Boot(#[from] BootError),
    /// Egress flags without the network they would apply to.
    #[error(
        "--allow, --egress-policy, --egress-default, --dns and --audit-log apply to --network sandbox; with \
         --network none (the default) the sandbox has loopback only and they would do nothing"
    )]
    EgressWithoutNetwork,
    /// `--network sandbox` without root.
    #[error(
        "--network sandbox needs root: moat do makes a network namespace, a veth pair and NAT for the sandbox \
         (run as root, or use --network none)"
    )]
    NetworkNeedsRoot,
    /// The egress policy or the audit log is refused.
    #[error("{0}")]
    Egress(#[from] EgressError),
    /// The sandbox's link could not be made or handed to the Sentry.
    #[error("{0}")]
    Network(#[from] NetworkError),
    /// The outer moat do could not make the sandbox's network; its words.
    #[error("{0}")]
    NetworkSetup(String),
    /// The two moat do processes could not talk about the sandbox's network.
    #[error("cannot set up the sandbox's network between moat do's processes: {0}")]
    NetworkChannel(#[source] std::io::Error),
    /// unshare of the sandbox's network namespace failed.
    #[error("cannot make the sandbox's network namespace: {0}")]
    NewNetwork(#[source] nix::errno::Errno),
}

/// The size of `moat do`'s /tmp (`--tmpfs /tmp:SIZE` replaces it).
const TMP_LIMIT: u64 = 1 << 30;

/// Runs `moat do`; returns the command's exit status.
pub fn run(c: &DoConfig) -> Result<i32, DoError> {
    if let Some(cgroup) = &c.inner.in_pid_namespace {
        return in_pid_namespace(c, cgroup);
    }
    if c.network == NetworkMode::None && c.egress.any() {
        return Err(DoError::EgressWithoutNetwork);
    }
    // The Sentry's console puts the caller's terminal in raw mode; the
    // outermost moat do, the one the caller waits for, puts it back (on
    // return here, or in `in_cgroup` before it dies by a stop signal).
    let terminal = terminal::SavedMode::save();
    // The Sentry runs as pid 1 of a PID namespace of its own, in new
    // mount, IPC and UTS namespaces: a compromised Sentry sees (and can
    // signal or trace) no host process. Without the privilege for that
    // (not root), the sandbox still runs, in the caller's namespaces and
    // with no cgroup.
    if nix::unistd::geteuid().is_root() {
        in_cgroup(c, terminal.as_ref())
    } else {
        unprivileged(c)
    }
}

fn unprivileged(c: &DoConfig) -> Result<i32, DoError> {
    if c.memory.is_some() || c.pids.is_some() || c.cpus.is_some() {
        return Err(DoError::LimitsNeedRoot);
    }
    if c.network == NetworkMode::Sandbox {
        return Err(DoError::NetworkNeedsRoot);
    }
    boot(c, None, None)
}

/// The second `moat do`, pid 1 of the sandbox's PID namespace.
fn in_pid_namespace(c: &DoConfig, cgroup: &str) -> Result<i32, DoError> {
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    // Into the sandbox's cgroup before anything else, so that the Sentry,
    // every Gofer and every stub start in it.
    Cgroup::open(cgroup)
        .and_then(|group| group.add(0))
        .map_err(|source| DoError::JoinCgroup { cgroup: cgroup.to_owned(), source })?;
    crate::sandbox::enter_private_namespaces()?;
    let network = c.inner.network_fd.map(network::join).transpose()?;
    boot(c, Some(limits::memory_limit(c)?), network)
}

/// Runs the sandbox; `memory_limit` is its cgroup's, if it has one, and
/// `network` its link (with `--network sandbox`).
fn boot(c: &DoConfig, memory_limit: Option<u64>, network: Option<(NetConfig, Updates)>) -> Result<i32, DoError> {
    let tty = std::io::stdin().is_terminal() || std::io::stdout().is_terminal();
    let envp = environment::environment(&c.env_files, &c.env, tty, &environment::caller_variable)?;
    let max_tasks = limits::app_tasks(c)?;
    let mut gofers = Gofers::default();
    sandbox(c, &mut gofers, envp, max_tasks, memory_limit, network)
}

/// The host signals that end `moat do` early: a terminal's ^C and ^\, a
/// hangup, `kill`. Each ends the sandbox, and then moat do itself by the
/// same signal, once the sandbox's cgroup is gone.
const STOP_SIGNALS: [Signal; 4] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP, Signal::SIGQUIT];

/// The first `moat do` (as root): makes the sandbox's cgroup, runs the
/// sandbox in a new PID namespace (a second `moat do`, which joins the
/// cgroup first), waits for it and removes the cgroup. It stays outside the
/// cgroup itself, so that the cgroup's OOM killer can never pick the
/// process that cleans up after it.
/// The cgroup under which each `moat do` makes its own.
const DO_CGROUP_PARENT: &str = "/moat";

fn in_cgroup(c: &DoConfig, terminal: Option<&terminal::SavedMode>) -> Result<i32, DoError> {
    let resources = limits::host_resources(c)?;
    // Before anything is made: a bad policy or audit log fails here.
    let mut network = match c.network {
        NetworkMode::Sandbox => Some(network::Network::prepare(c)?),
        NetworkMode::None => None,
    };
    // Blocked before the cgroup exists (and inherited by the thread that
    // waits for them), so that no stop signal ends this process between
    // making the cgroup and removing it. The sandbox process starts with
    // none blocked: Rust's spawn empties the signal mask.
    let stop_signals = SigSet::from_iter(STOP_SIGNALS);
    stop_signals.thread_block().map_err(DoError::BlockSignals)?;
    // The pid names the cgroup for a person looking at it; the random part
    // keeps two `moat do` with the same pid in different PID namespaces
    // (containers sharing the host's cgroups) from sharing one.
    let random = std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), 0u8) as u32;
    let path = format!("{DO_CGROUP_PARENT}/do-{}-{random:08x}", std::process::id());
    let cgroup =
        Cgroup::create(&path, Some(&resources)).map_err(|source| DoError::MakeCgroup { path: path.clone(), source })?;
    let stop = Arc::new(Stop::default());
    let watcher = Arc::clone(&stop);
    let watched = path.clone();
    std::thread::spawn(move || watcher.kill_on_signal(stop_signals, &watched));
    if let Some(n) = &mut network {
        n.start(c.egress.clone());
    }
    let inner = DoInPidNamespace { in_pid_namespace: Some(path), network_fd: network.as_ref().map(|n| n.inner_fd()) };
    let status = rerun_in_pid_namespace(DoInPidNamespace::SUBCOMMAND, &inner.to_args());
    stop.reaped.store(true, Ordering::SeqCst);
    if let Some(n) = network {
        n.finish();
    }
    if cgroup.memory_oom_events() > 0 {
        let limit = c.memory.as_deref().map_or_else(|| "half the host's RAM".to_owned(), |m| format!("--memory {m}"));
        eprintln!("moat: the sandbox reached its memory limit ({limit}); the kernel killed a process of it");
    }
    if let Err(e) = cgroup.remove() {
        eprintln!("moat: cannot remove the sandbox's cgroup: {e}");
    }
    // The parent is left only while another `moat do` uses it.
    Cgroup::remove_if_empty(DO_CGROUP_PARENT);
    if let Some(signal) = stop.signal() {
        // Dying by the signal tells the caller (a shell, a supervisor) what
        // happened, as it would have without moat in between.
        if let Some(t) = terminal {
            t.restore();
        }
        let _ = SigSet::from(signal).thread_unblock();
        let _ = nix::sys::signal::raise(signal);
        return Ok(128 + signal as i32);
    }
    Ok(status?)
}

/// Between the sandbox's process and the thread that ends it on a stop signal.
#[derive(Debug, Default)]
struct Stop {
    /// The stop signal received, 0 for none yet.
    signal: AtomicI32,
    /// Set once the sandbox's process has been reaped.
    reaped: AtomicBool,
}

impl Stop {
    fn signal(&self) -> Option<Signal> {
        Signal::try_from(self.signal.load(Ordering::SeqCst)).ok()
    }

    /// Waits for a stop signal, then kills everything in the cgroup until
    /// the sandbox's process is reaped. Killing its pid 1 kills the whole
    /// PID namespace; the kill is repeated because a signal may come before
    /// that process has joined the cgroup.
    fn kill_on_signal(&self, signals: SigSet, cgroup: &str) {
        let Ok(signal) = signals.wait() else {
            return;
        };
        self.signal.store(signal as i32, Ordering::SeqCst);
        let Ok(cgroup) = Cgroup::open(cgroup) else {
            return;
        };
        while !self.reaped.load(Ordering::SeqCst) {
            cgroup.kill();
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn sandbox(
    c: &DoConfig,
    gofers: &mut Gofers,
    envp: Vec<Vec<u8>>,
    max_tasks: usize,
    memory_limit: Option<u64>,
    network: Option<(NetConfig, Updates)>,
) -> Result<i32, DoError> {
    let (network, updates) = match network {
        Some((config, updates)) => (Some(config), Some(updates.start()?)),
        None => (None, None),
    };
    let root = c.rootfs.clone().unwrap_or_else(|| PathBuf::from("/"));
    let access = c.file_access;
    let sock = gofers.start(&root, access == FileAccess::Exclusive).map_err(DoError::RootGofer)?;
    let mut mounts = Vec::new();
    for v in &c.volumes {
        let serving = Serving { read_only: v.read_only, allow_setid: v.allow_setid };
        let gofer = gofers.start_dir(&v.host, serving).map_err(DoError::VolumeGofer)?;
        mounts.push(MountConfig { target: v.target.clone(), kind: MountKind::Bind { gofer, read_only: v.read_only } });
    }
    for t in &c.tmpfs {
        mounts.push(MountConfig {
            target: t.target.clone(),
            kind: MountKind::Tmpfs { mode: 0o1777, limit: Some(t.size) },
        });
    }
    let dup = |fd: std::os::fd::BorrowedFd<'_>| fd.try_clone_to_owned();
    let stdio = match (dup(std::io::stdin().as_fd()), dup(std::io::stdout().as_fd()), dup(std::io::stderr().as_fd())) {
        (Ok(stdin), Ok(stdout), Ok(stderr)) => sentry::HostStdio { stdin, stdout, stderr },
        _ => return Err(DoError::NoStdio),
    };
    let cfg = sentry::BootConfig {
        root: RootConfig { gofer: sock, access, overlay_limit: Some(c.overlay_size), read_only: false },
        mounts,
        init: sentry::ProcessConfig {
            argv: c.cmd.iter().map(|s| s.as_bytes().to_vec()).collect(),
            envp,
            cwd: working_directory(c.rootfs.as_deref()),
            stdio,
            uid: 0,
            gid: 0,
            groups: Vec::new(),
            rlimits: Vec::new(),
            capabilities: None,
            no_new_privileges: false,
        },
        hostname: b"moat".to_vec(),
        domainname: Vec::new(),
        sysctls: Vec::new(),
        strace: c.strace,
        stats: c.stats,
        max_tasks: Some(max_tasks),
        tmp_limit: Some(TMP_LIMIT),
        selftest_forbidden_syscall: c.selftest_forbidden_syscall,
        platform: c.platform,
        memory_limit,
        app_seccomp: None,
        network,
    };
    match Sandbox::start(cfg) {
        Ok(sandbox) => {
            let sandbox = Arc::new(sandbox);
            if let Some(updates) = updates {
                // The policy thread ends with the process if this fails.
                let _ = updates.send(Arc::clone(&sandbox));
            }
            let status = sandbox.wait(1);
            sandbox.finish();
            Ok(exit_code(status))
        }
        Err(e) => match (&e, e.exec_status()) {
            (BootError::Exec { path, errno }, Some(code)) => {
                eprintln!("moat: cannot execute {path}: {}", describe(*errno));
                Ok(code)
            }
            _ => Err(e.into()),
        },
    }
}

/// Where the command starts, as with runsc's `do`: the caller's current
/// directory when the sandbox has it too, else `/`. Under the host's `/` it
/// is there, unless a mount of the sandbox's own (/tmp, /proc, a volume)
/// hides it, and then the Sentry starts the command in `/`. Under
/// `--rootfs DIR` it is used only if DIR holds a directory at that path
/// with no symlink on the way: DIR is untrusted, and a symlink there would
/// be followed on the host here but inside the sandbox by the Sentry.
fn working_directory(rootfs: Option<&Path>) -> Vec<u8> {
    let Ok(cwd) = std::env::current_dir() else {
        return b"/".to_vec();
    };
    let visible = match rootfs {
        None => true,
        Some(root) => {
            let mut dir = root.to_path_buf();
            cwd.components().filter(|c| matches!(c, Component::Normal(_))).all(|c| {
                dir.push(c);
                std::fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir())
            })
        }
    };
    if visible {
        cwd.as_os_str().as_bytes().to_vec()
    } else {
        b"/".to_vec()
    }
}

fn describe(e: Errno) -> String {
    let what = match e {
        Errno::ENOENT => "no such file or directory (or its #! interpreter is missing)",
        Errno::EACCES => "permission denied (not a regular executable file)",
        Errno::ENOEXEC => "exec format error (not a valid x86-64 ELF or script)",
        Errno::ELIBBAD => "bad ELF interpreter",
        Errno::ELOOP => "too many levels of symbolic links or #! interpreters",
        Errno::E2BIG => "argument list too long",
        _ => "cannot be executed",
    };
    format!("{what} ({})", e.name())
}
