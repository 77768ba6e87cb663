//! The sandbox process of one container (`moat boot`): it starts the
//! container's Gofers, listens on the control socket, and on `start` boots
//! the Sentry with the container's process as init. It exits with init's
//! status (a code, or 128 + the signal that killed it), which is what the
//! pid in `--pid-file` reports to containerd and Docker.
//!
//! `create` starts it as pid 1 of a new PID namespace; it is the pid engines
//! are given, so before it reports ready it is in every namespace of the
//! container: engines' hooks (Docker's network setup) act on
//! `/proc/PID/ns/*` and must find the container's, never the host's.
//!
//! Order: PID namespace (made by `create`) → cgroup → spec → mount, IPC,
//! UTS and network namespaces → Gofers → control socket → "ready" to
//! `moat create` → wait for `start` → Sentry.

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};

use oci_spec::runtime::{Capability, LinuxCapabilities, LinuxNamespaceType, Mount, Spec};
use sentry::{
    BootConfig, CapSets, FileAccess, HostStdio, MountConfig, MountKind, ProcessConfig, RootConfig, Sandbox, Sysctls,
};

use crate::bundle::Bundle;
use crate::cgroups::Cgroup;
use crate::control::{CapabilityMasks, ExecProcess, Incoming, Phase, Process, Reply, Request};
use crate::gofers::Gofers;
use crate::state::StateDir;

/// What `moat boot` is given by `moat create`.
#[derive(Debug)]
pub struct BootArgs {
    pub root: PathBuf,
    pub id: String,
    pub bundle: PathBuf,
    /// Where to write one line: empty for "created", else the error.
    pub ready: OwnedFd,
    /// The runtime's log file (`--log`): the Sentry's diagnostics go there,
    /// not into the container's stderr.
    pub log: Option<PathBuf>,
    /// Whether the log file takes JSON lines (`--log-format json`), as
    /// containerd's shim parses it.
    pub log_json: bool,
}

/// The default cgroup of a container whose spec names none.
pub fn default_cgroup_path(id: &str) -> String {
    format!("/moat/{id}")
}

/// The shell-style exit status of a wait status.
pub fn exit_code(status: i32) -> i32 {
    if status & 0x7f == 0 {
        (status >> 8) & 0xff
    } else {
        128 + (status & 0x7f)
    }
}

/// Runs the sandbox process; returns its exit status. It must be pid 1 of
/// a PID namespace of its own, as `create` starts it: every process of the
/// container is then in that namespace, and dies with it.
pub fn run(args: BootArgs) -> i32 {
    let mut ready = std::fs::File::from(args.ready);
    if std::process::id() != 1 {
        let _ = writeln!(ready, "moat boot runs only as started by `moat create`, as pid 1 of a PID namespace");
        return 1;
    }
    if let Some(path) = &args.log {
        match std::fs::OpenOptions::new().create(true).append(true).open(path) {
            Ok(file) => sentry::log_to(file, log_format(args.log_json)),
            Err(e) => {
                let _ = writeln!(ready, "cannot open the log file {}: {e}", path.display());
                return 1;
            }
        }
    }
    // First into the container's cgroup, so that this process, its Gofers
    // and every stub are in it.
    if let Err(e) = join_cgroup(&args.id, &args.bundle) {
        let _ = writeln!(ready, "{e}");
        return 1;
    }
    let prepared = prepare(&args.root, &args.id, &args.bundle);
    let (mut sandbox, listener) = match prepared {
        Ok(p) => p,
        Err(e) => {
            let _ = writeln!(ready, "{e}");
            return 1;
        }
    };
    if writeln!(ready).is_err() {
        // `moat create` is gone: nobody will ever start this container.
        return 1;
    }
    drop(ready);
    sandbox.serve(listener)
}

/// How the Sentry's diagnostics are written to the log file: plain, or as
/// runc's JSON lines ({"level","msg","time"}) that containerd's shim reads.
fn log_format(json: bool) -> sentry::LogFormat {
    if json {
        Box::new(|msg: &str| {
            let time = crate::state::format_rfc3339(std::time::SystemTime::now());
            serde_json::json!({"level": "warning", "msg": msg, "time": time}).to_string()
        })
    } else {
        Box::new(|msg: &str| msg.to_owned())
    }
}

fn join_cgroup(id: &str, bundle_dir: &Path) -> Result<(), String> {
    let bundle = Bundle::load(bundle_dir).map_err(|e| e.to_string())?;
    let linux = bundle.spec.linux().as_ref();
    let path = linux
        .and_then(|l| l.cgroups_path().clone())
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| default_cgroup_path(id));
    let resources = linux.and_then(|l| l.resources().clone()).map(|r| host_resources(&r));
    let cgroup = Cgroup::create(&path, resources.as_ref()).map_err(|e| e.to_string())?;
    // cgroup.procs reads a pid in the writer's PID namespace: this is 1.
    cgroup.add(std::process::id() as i32).map_err(|e| e.to_string())
}

/// Host tasks a container has beyond two per app task: the sandbox
/// processes, the Sentry's own threads, the Gofers and the source stub.
const HOST_TASKS_OVERHEAD: i64 = 64;

/// The spec's pids limit, which the Sentry enforces on the app's tasks.
fn app_task_limit(spec: &Spec) -> Option<usize> {
    let limit = spec.linux().as_ref()?.resources().as_ref()?.pids().as_ref()?.limit();
    usize::try_from(limit).ok().filter(|&l| l > 0)
}

/// The limits as the host's cgroup applies them. Each app task is a Sentry
/// thread and (for a process) a stub on the host, so the app's pids limit
/// is the Sentry's to enforce, and the host's is set above it, to contain
/// the sandbox without ever being what the app runs into.
pub fn host_resources(r: &oci_spec::runtime::LinuxResources) -> oci_spec::runtime::LinuxResources {
    let mut host = r.clone();
    if let Some(pids) = r.pids() {
        if pids.limit() > 0 {
            let mut scaled = *pids;
            scaled.set_limit(pids.limit().saturating_mul(2).saturating_add(HOST_TASKS_OVERHEAD));
            host.set_pids(Some(scaled));
        }
    }
    host
}

/// A container between `create` and the end of its init.
struct Prepared {
    config: Option<BootConfig>,
    _gofers: Gofers,
}

fn prepare(root: &Path, id: &str, bundle_dir: &Path) -> Result<(Prepared, UnixListener), String> {
    let state_dir = StateDir::open(root, id).map_err(|e| e.to_string())?;
    let bundle = Bundle::load(bundle_dir).map_err(|e| e.to_string())?;
    enter_namespaces(&bundle.spec)?;
    let mut gofers = Gofers::default();
    let config = boot_config(&bundle, &mut gofers)?;
    let socket = state_dir.control_socket();
    let _ = std::fs::remove_file(&socket);
    let listener = crate::control::ShortPath::new(&socket)
        .and_then(|short| UnixListener::bind(short.path()))
        .map_err(|e| format!("cannot listen on {}: {e}", socket.display()))?;
    Ok((Prepared { config: Some(config), _gofers: gofers }, listener))
}

/// New mount, IPC and UTS namespaces for the sandbox process (the Sentry
/// gives the app its own view of each), and the network namespace the spec
/// names, if any.
fn enter_namespaces(spec: &Spec) -> Result<(), String> {
    use nix::sched::CloneFlags;
    enter_private_namespaces()?;
    let namespaces = spec.linux().as_ref().and_then(|l| l.namespaces().clone()).unwrap_or_default();
    for ns in namespaces {
        if ns.typ() != LinuxNamespaceType::Network {
            continue;
        }
        match ns.path() {
            Some(path) => {
                let file = std::fs::File::open(path)
                    .map_err(|e| format!("cannot open network namespace {}: {e}", path.display()))?;
                nix::sched::setns(file.as_fd(), CloneFlags::CLONE_NEWNET)
                    .map_err(|e| format!("cannot join network namespace {}: {e}", path.display()))?;
            }
            None => nix::sched::unshare(CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("cannot make a network namespace: {e}"))?,
        }
    }
    Ok(())
}

/// New mount (with every mount private), IPC and UTS namespaces for the
/// calling process, which must be single-threaded.
pub fn enter_private_namespaces() -> Result<(), String> {
    use nix::sched::CloneFlags;
    nix::sched::unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWIPC | CloneFlags::CLONE_NEWUTS)
        .map_err(|e| format!("cannot make the sandbox's namespaces: {e}"))?;
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| format!("cannot make the sandbox's mounts private: {e}"))
}

/// Runs this moat command again as the first process of a new PID
/// namespace (with `flag` added after `subcommand` in its arguments), waits for it and returns
/// its exit status: the sandbox and everything it starts then see no host
/// process, and die with it. The caller keeps its stdio and gives it on;
/// `started` runs once the new process does (to close what only it needs).
pub fn rerun_in_pid_namespace(subcommand: &str, flag: &str, started: impl FnOnce()) -> Result<i32, String> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWPID)
        .map_err(|e| format!("cannot make the sandbox's PID namespace: {e}"))?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the moat binary: {e}"))?;
    // The flag goes right after the subcommand, before any `--` and command.
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let at = args.iter().position(|a| a == subcommand).map_or(args.len(), |i| i + 1);
    args.insert(at, flag.into());
    let mut child = std::process::Command::new(exe)
        .args(args)
        .spawn()
        .map_err(|e| format!("cannot start the sandbox process: {e}"))?;
    started();
    let status = child.wait().map_err(|e| format!("waiting for the sandbox process: {e}"))?;
    use std::os::unix::process::ExitStatusExt;
    Ok(status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}

/// Spawns `command` as pid 1 of a new PID namespace and returns it (its
/// host pid is `Child::id`). A thread of its own makes the namespace, as a
/// thread's PID namespace for children is its own: the caller's later
/// children (engine hooks) stay in the host's. That thread ends at once, so
/// the child must not rely on PR_SET_PDEATHSIG (which follows the thread).
pub fn spawn_in_new_pid_namespace(command: &mut std::process::Command) -> Result<std::process::Child, String> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWPID)
                    .map_err(|e| format!("cannot make the sandbox's PID namespace: {e}"))?;
                command.spawn().map_err(|e| format!("cannot start the sandbox process: {e}"))
            })
            .join()
            .unwrap_or_else(|_| Err("the thread starting the sandbox process panicked".into()))
    })
}

/// Mount types the Sentry provides itself, whatever the spec asks of them.
const SENTRY_FILESYSTEMS: &[&str] = &["proc", "sysfs", "devpts", "mqueue", "cgroup", "cgroup2"];

fn boot_config(bundle: &Bundle, gofers: &mut Gofers) -> Result<BootConfig, String> {
    let spec = &bundle.spec;
    let process = spec.process().as_ref().ok_or("the spec has no process")?;
    let seccomp = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
    let config_error = |e| format!("{}: {e}", bundle.dir.join("config.json").display());
    let app_seccomp = seccomp.map(crate::seccomp_profile::from_spec).transpose().map_err(config_error)?;
    let read_only_root = spec.root().as_ref().and_then(|r| r.readonly()).unwrap_or(false);
    let root_socket = gofers.start(&bundle.rootfs, true).map_err(|e| format!("root: {e}"))?;
    let mut mounts = Vec::new();
    for m in spec.mounts().clone().unwrap_or_default() {
        if let Some(mount) = mount_config(&m, gofers)? {
            mounts.push(mount);
        }
    }
    let user = process.user();
    let stdio = |fd: std::os::fd::BorrowedFd<'_>| fd.try_clone_to_owned();
    let (stdin, stdout, stderr) =
        match (stdio(std::io::stdin().as_fd()), stdio(std::io::stdout().as_fd()), stdio(std::io::stderr().as_fd())) {
            (Ok(a), Ok(b), Ok(c)) => (a, b, c),
            _ => return Err("the sandbox process needs stdin, stdout and stderr".into()),
        };
    let env = process.env().clone().unwrap_or_default();
    let sysctls = sysctls(spec).map_err(config_error)?;
    Ok(BootConfig {
        root: RootConfig {
            gofer: root_socket,
            access: FileAccess::Exclusive,
            overlay_limit: Some(OVERLAY_LIMIT),
            read_only: read_only_root,
        },
        mounts,
        init: ProcessConfig {
            argv: process.args().clone().unwrap_or_default().into_iter().map(String::into_bytes).collect(),
            envp: env.into_iter().map(String::into_bytes).collect(),
            cwd: process.cwd().as_os_str().as_bytes().to_vec(),
            stdio: HostStdio { stdin, stdout, stderr },
            uid: user.uid(),
            gid: user.gid(),
            groups: user.additional_gids().clone().unwrap_or_default(),
            rlimits: rlimits(process)?,
            capabilities: process.capabilities().as_ref().map(|c| capability_masks(c).into()),
            no_new_privileges: process.no_new_privileges().unwrap_or(false),
        },
        hostname: spec.hostname().clone().unwrap_or_else(|| "moat".into()).into_bytes(),
        domainname: spec.domainname().clone().unwrap_or_default().into_bytes(),
        sysctls,
        strace: false,
        stats: false,
        max_tasks: app_task_limit(spec),
        tmp_limit: None,
        selftest_forbidden_syscall: false,
        app_seccomp,
        platform: sentry::PlatformKind::default(),
    })
}

/// The spec's `linux.sysctl`, sorted by key, checked as the Sentry will
/// take them, so that a bad key fails `create` with a clear error.
fn sysctls(spec: &Spec) -> Result<Vec<(String, String)>, String> {
    let mut pairs: Vec<(String, String)> =
        spec.linux().as_ref().and_then(|l| l.sysctl().clone()).unwrap_or_default().into_iter().collect();
    pairs.sort();
    Sysctls::parse(&pairs).map_err(|e| format!("linux.sysctl: {e}"))?;
    Ok(pairs)
}

/// The capability number of an OCI capability name.
fn capability_number(c: Capability) -> u32 {
    use Capability as C;
    match c {
        C::Chown => 0,
        C::DacOverride => 1,
        C::DacReadSearch => 2,
        C::Fowner => 3,
        C::Fsetid => 4,
        C::Kill => 5,
        C::Setgid => 6,
        C::Setuid => 7,
        C::Setpcap => 8,
        C::LinuxImmutable => 9,
        C::NetBindService => 10,
        C::NetBroadcast => 11,
        C::NetAdmin => 12,
        C::NetRaw => 13,
        C::IpcLock => 14,
        C::IpcOwner => 15,
        C::SysModule => 16,
        C::SysRawio => 17,
        C::SysChroot => 18,
        C::SysPtrace => 19,
        C::SysPacct => 20,
        C::SysAdmin => 21,
        C::SysBoot => 22,
        C::SysNice => 23,
        C::SysResource => 24,
        C::SysTime => 25,
        C::SysTtyConfig => 26,
        C::Mknod => 27,
        C::Lease => 28,
        C::AuditWrite => 29,
        C::AuditControl => 30,
        C::Setfcap => 31,
        C::MacOverride => 32,
        C::MacAdmin => 33,
        C::Syslog => 34,
        C::WakeAlarm => 35,
        C::BlockSuspend => 36,
        C::AuditRead => 37,
        C::Perfmon => 38,
        C::Bpf => 39,
        C::CheckpointRestore => 40,
    }
}

/// OCI's `process.capabilities` as masks; a set the spec leaves out is empty.
pub fn capability_masks(c: &LinuxCapabilities) -> CapabilityMasks {
    let mask = |set: &Option<oci_spec::runtime::Capabilities>| {
        set.iter().flatten().fold(0u64, |m, &cap| m | 1 << capability_number(cap))
    };
    CapabilityMasks {
        effective: mask(c.effective()),
        permitted: mask(c.permitted()),
        inheritable: mask(c.inheritable()),
        bounding: mask(c.bounding()),
        ambient: mask(c.ambient()),
    }
}

/// The spec's `process.rlimits` as (RLIMIT_* number, soft, hard).
fn rlimits(process: &oci_spec::runtime::Process) -> Result<Vec<(u32, u64, u64)>, String> {
    use oci_spec::runtime::PosixRlimitType as T;
    let mut out = Vec::new();
    for r in process.rlimits().clone().unwrap_or_default() {
        let which = match r.typ() {
            T::RlimitCpu => 0,
            T::RlimitFsize => 1,
            T::RlimitData => 2,
            T::RlimitStack => 3,
            T::RlimitCore => 4,
            T::RlimitRss => 5,
            T::RlimitNproc => 6,
            T::RlimitNofile => 7,
            T::RlimitMemlock => 8,
            T::RlimitAs => 9,
            T::RlimitLocks => 10,
            T::RlimitSigpending => 11,
            T::RlimitMsgqueue => 12,
            T::RlimitNice => 13,
            T::RlimitRtprio => 14,
            T::RlimitRttime => 15,
        };
        if r.soft() > r.hard() {
            return Err(format!("rlimit {:?}: soft limit {} above hard limit {}", r.typ(), r.soft(), r.hard()));
        }
        out.push((which, r.soft(), r.hard()));
    }
    Ok(out)
}

/// The in-memory overlay over a container's root holds at most this much.
const OVERLAY_LIMIT: u64 = 2 << 30;

/// A spec mount as the Sentry mounts it; `None` for the filesystems the
/// Sentry provides itself (/proc, /sys, /dev/pts, ...).
fn mount_config(m: &Mount, gofers: &mut Gofers) -> Result<Option<MountConfig>, String> {
    let target = normalize_target(m.destination().as_os_str().as_bytes())?;
    let options = m.options().clone().unwrap_or_default();
    let fstype = m.typ().clone().unwrap_or_default();
    let is_bind = fstype == "bind" || options.iter().any(|o| o == "bind" || o == "rbind");
    let read_only = options.iter().any(|o| o == "ro");
    let shown = m.destination().display();
    if is_bind {
        // As for runc the last of "suid" and "nosuid" decides; unlike runc,
        // set-ID files are stripped unless the spec asks for "suid".
        let allow_setid = options.iter().rev().find(|o| *o == "suid" || *o == "nosuid").is_some_and(|o| o == "suid");
        let serving = crate::gofers::Serving { read_only, allow_setid };
        let source = m.source().as_ref().ok_or_else(|| format!("bind mount at {shown} has no source"))?;
        let meta = std::fs::metadata(source).map_err(|e| format!("bind mount source {}: {e}", source.display()))?;
        if meta.is_dir() {
            let gofer = gofers.start_dir(source, serving).map_err(|e| format!("bind mount at {shown}: {e}"))?;
            return Ok(Some(MountConfig { target, kind: MountKind::Bind { gofer, read_only } }));
        }
        let dir = source.parent().ok_or_else(|| format!("bind mount source {} has no directory", source.display()))?;
        let file_name =
            source.file_name().ok_or_else(|| format!("bind mount source {} has no name", source.display()))?;
        let name = file_name.as_bytes().to_vec();
        // The Gofer serves that one name, not the directory around it.
        let gofer =
            gofers.start_one_file(dir, file_name, serving).map_err(|e| format!("bind mount at {shown}: {e}"))?;
        return Ok(Some(MountConfig { target, kind: MountKind::BindFile { gofer, name, read_only } }));
    }
    match fstype.as_str() {
        "tmpfs" if target == b"/dev" => Ok(None),
        "tmpfs" => {
            let size = options.iter().find_map(|o| o.strip_prefix("size=")).map(parse_size).transpose()?;
            let mode = options
                .iter()
                .find_map(|o| o.strip_prefix("mode="))
                .map(|m| u32::from_str_radix(m, 8).map_err(|_| format!("tmpfs at {shown}: bad mode {m:?}")))
                .transpose()?
                .unwrap_or(0o1777);
            Ok(Some(MountConfig { target, kind: MountKind::Tmpfs { mode, limit: size.or(Some(TMPFS_LIMIT)) } }))
        }
        t if SENTRY_FILESYSTEMS.contains(&t) => Ok(None),
        t => Err(format!("mount type {t:?} at {shown} is not supported by moat")),
    }
}

/// A mount destination as the Sentry keys mounts: absolute, single
/// slashes, no trailing one, and no `.` or `..` (which would name another place).
fn normalize_target(path: &[u8]) -> Result<Vec<u8>, String> {
    let shown = String::from_utf8_lossy(path);
    let mut out = Vec::new();
    for part in path.split(|&b| b == b'/').filter(|p| !p.is_empty()) {
        if part == b"." || part == b".." {
            return Err(format!("mount destination {shown:?} must not contain . or .."));
        }
        out.push(b'/');
        out.extend_from_slice(part);
    }
    if !path.starts_with(b"/") || out.is_empty() {
        return Err(format!("mount destination {shown:?} must be an absolute path other than /"));
    }
    Ok(out)
}

/// A tmpfs mount with no size option holds at most this much.
const TMPFS_LIMIT: u64 = 512 << 20;

/// tmpfs `size=` values: bytes, or with a k, m or g suffix.
fn parse_size(s: &str) -> Result<u64, String> {
    let (digits, shift) = match s.as_bytes().last() {
        Some(b'k' | b'K') => (&s[..s.len() - 1], 10),
        Some(b'm' | b'M') => (&s[..s.len() - 1], 20),
        Some(b'g' | b'G') => (&s[..s.len() - 1], 30),
        _ => (s, 0),
    };
    digits.parse::<u64>().ok().and_then(|n| n.checked_mul(1 << shift)).ok_or_else(|| format!("bad tmpfs size {s:?}"))
}

/// Shared between the control thread and the main thread.
#[derive(Default)]
struct Shared {
    sandbox: Mutex<Option<Arc<Sandbox>>>,
    stopped: Mutex<bool>,
    /// Set by the first `start`; a second is refused.
    started: std::sync::atomic::AtomicBool,
    /// What an exec'd process gets when its request does not say: init's
    /// capabilities and no_new_privs, as the spec gives them (runc's way).
    exec_defaults: ExecDefaults,
}

#[derive(Default, Clone)]
struct ExecDefaults {
    capabilities: Option<CapSets>,
    no_new_privileges: bool,
    /// init's resource limits, which exec'd processes get too.
    rlimits: Vec<(u32, u64, u64)>,
}

impl Prepared {
    /// Serves the control socket until init exits; returns the exit status.
    fn serve(&mut self, listener: UnixListener) -> i32 {
        let exec_defaults = self.config.as_ref().map_or_else(ExecDefaults::default, |c| ExecDefaults {
            capabilities: c.init.capabilities,
            no_new_privileges: c.init.no_new_privileges,
            rlimits: c.init.rlimits.clone(),
        });
        let shared = Arc::new(Shared { exec_defaults, ..Shared::default() });
        // `start` hands over where to say how the start went.
        let (start_tx, start_rx) = mpsc::channel::<mpsc::Sender<Result<(), String>>>();
        let (dropped_tx, dropped_rx) = mpsc::channel::<std::io::Result<()>>();
        {
            let shared = shared.clone();
            std::thread::spawn(move || {
                // Like the Sentry's own threads, this one and those it
                // starts hold no capability; said before the filter goes on.
                let dropped = host::sys::drop_thread_capabilities();
                let failed = dropped.is_err();
                let _ = dropped_tx.send(dropped);
                if failed {
                    return;
                }
                for stream in listener.incoming().flatten() {
                    let shared = shared.clone();
                    let start_tx = start_tx.clone();
                    std::thread::spawn(move || handle(stream, &shared, &start_tx));
                }
            });
        }
        match dropped_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = writeln!(std::io::stderr(), "moat: cannot drop the control thread's capabilities: {e}");
                return 1;
            }
            Err(_) => return 1,
        }
        let Ok(started) = start_rx.recv() else { return 1 };
        let Some(config) = self.config.take() else { return 1 };
        let sandbox = match Sandbox::start(config) {
            Ok(s) => Arc::new(s),
            Err(e) => {
                // The engine shows this (Docker maps "no such file" to 127).
                let _ = started.send(Err(e.to_string()));
                return e.exec_status().unwrap_or(1);
            }
        };
        *shared.sandbox.lock().unwrap() = Some(sandbox.clone());
        // Only now does `start` return: the container then runs (exec works).
        let _ = started.send(Ok(()));
        let status = sandbox.wait(1);
        *shared.stopped.lock().unwrap() = true;
        sandbox.finish();
        exit_code(status)
    }
}

fn handle(stream: UnixStream, shared: &Shared, start: &mpsc::Sender<mpsc::Sender<Result<(), String>>>) {
    let mut incoming = match Incoming::read(stream) {
        Ok(i) => i,
        Err(_) => return,
    };
    let sandbox = shared.sandbox.lock().unwrap().clone();
    let stopped = *shared.stopped.lock().unwrap();
    let request = incoming.request.clone();
    let reply = match (&request, &sandbox) {
        (Request::State, _) if stopped => Reply::State { phase: Phase::Stopped },
        (Request::State, None) => Reply::State { phase: Phase::Created },
        (Request::State, Some(_)) => Reply::State { phase: Phase::Running },
        (Request::Start, None) => {
            let first = !shared.started.swap(true, std::sync::atomic::Ordering::SeqCst);
            let (tx, rx) = mpsc::channel();
            match first.then(|| start.send(tx)) {
                Some(Ok(())) => match rx.recv() {
                    Ok(Ok(())) => Reply::Ok,
                    Ok(Err(message)) => Reply::Error { message },
                    Err(_) => Reply::Error { message: "the sandbox ended while starting".into() },
                },
                _ => Reply::Error { message: "the container is already starting".into() },
            }
        }
        (Request::Start, Some(_)) => Reply::Error { message: "the container has already started".into() },
        (Request::Kill { signal, .. }, None) => {
            // Not started: the container's process is this one.
            if [libc::SIGKILL, libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT].contains(signal) {
                let _ = incoming.answer(&Reply::Ok);
                std::process::exit(128 + signal);
            }
            Reply::Ok
        }
        (Request::Kill { signal, all, pid }, Some(s)) => {
            let sent = if *all { s.signal_all(*signal) } else { s.signal(pid.unwrap_or(1), *signal) };
            match sent {
                Ok(()) => Reply::Ok,
                Err(e) => Reply::Error { message: format!("cannot send signal {signal}: {}", e.name()) },
            }
        }
        (Request::Ps, Some(s)) => Reply::Processes {
            processes: s
                .processes()
                .into_iter()
                .map(|p| Process { pid: p.pid, ppid: p.ppid, name: p.name, args: p.args })
                .collect(),
        },
        (Request::Ps, None) => Reply::Processes { processes: Vec::new() },
        (Request::Exec(_), None) => Reply::Error { message: "the container is not running".into() },
        (Request::Exec(p), Some(s)) => {
            let p = p.clone();
            let fds = std::mem::take(&mut incoming.fds);
            return exec(incoming, s, p, fds, shared.exec_defaults.clone());
        }
    };
    let _ = incoming.answer(&reply);
}

/// The engine waits for an exec'd process through the `moat exec` that asked
/// for it; when that one is killed (an exec probe's timeout, `docker exec`
/// interrupted), the process is killed too, as runc's would be.
fn watch_for_hangup(incoming: &Incoming, sandbox: &Arc<Sandbox>, pid: i32) {
    let Ok(mut stream) = incoming.try_clone_stream() else { return };
    let sandbox = sandbox.clone();
    let watching = std::thread::Builder::new().name(format!("exec-{pid}")).spawn(move || {
        let mut byte = [0u8; 1];
        // Nothing more is ever sent: this returns when the client goes.
        let _ = std::io::Read::read(&mut stream, &mut byte);
        if sandbox.exited(pid).is_none() {
            let _ = sandbox.signal(pid, libc::SIGKILL);
        }
    });
    drop(watching);
}

fn exec(mut incoming: Incoming, sandbox: &Arc<Sandbox>, p: ExecProcess, fds: Vec<OwnedFd>, defaults: ExecDefaults) {
    let Ok([stdin, stdout, stderr]) = <[OwnedFd; 3]>::try_from(fds) else {
        let _ = incoming.answer(&Reply::Error { message: "exec needs stdin, stdout and stderr fds".into() });
        return;
    };
    let config = ProcessConfig {
        argv: p.args.into_iter().map(String::into_bytes).collect(),
        envp: p.env.into_iter().map(String::into_bytes).collect(),
        cwd: p.cwd.into_bytes(),
        stdio: HostStdio { stdin, stdout, stderr },
        uid: p.uid,
        gid: p.gid,
        groups: p.groups,
        rlimits: defaults.rlimits,
        capabilities: p.capabilities.map(CapSets::from).or(defaults.capabilities),
        no_new_privileges: p.no_new_privileges.unwrap_or(defaults.no_new_privileges),
    };
    match sandbox.exec(config) {
        Ok(pid) => {
            if incoming.answer(&Reply::Started { pid }).is_err() {
                let _ = sandbox.signal(pid, libc::SIGKILL);
                return;
            }
            watch_for_hangup(&incoming, sandbox, pid);
            let status = sandbox.wait(pid);
            let _ = incoming.answer(&Reply::Exited { status });
        }
        Err(e) => {
            let _ = incoming.answer(&Reply::Error { message: e.to_string() });
        }
    }
}
