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
//! UTS and network namespaces → Gofers → control socket → the container's
//! root as its own → "ready" to `moat create` → wait for `start` → Sentry.
//!
//! Here: that sequence and its errors. `namespaces` makes the namespaces,
//! `network` hands the network namespace's links to the Sentry at `start`,
//! `config` and `mounts` turn the spec into the Sentry's boot configuration
//! (`capabilities` its capability sets), `serve` answers the control socket.

mod capabilities;
mod config;
mod mounts;
mod namespaces;
pub(crate) mod network;
mod resolvers;
mod serve;

use std::io::Write;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use sentry::BootConfig;

pub(crate) use capabilities::capability_masks;
pub(crate) use config::host_resources;
pub use mounts::MountError;
pub use namespaces::NamespaceError;
pub(crate) use namespaces::{enter_private_namespaces, rerun_in_pid_namespace, spawn_in_new_pid_namespace};

use crate::bundle::{Bundle, BundleError};
use crate::cgroups::{Cgroup, CgroupError};
use crate::gofers::{GoferError, Gofers};
use crate::seccomp_profile::SeccompProfileError;
use crate::state::{StateDir, StateError};
use crate::subcommands::{BootCommand, LogFormat, RuntimeFlags};

/// Why a sandbox process could not get ready; `moat create` reports it.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The `--ready-fd` given to `moat boot` is not an open fd.
    #[error("boot: --ready-fd {fd}: {source}")]
    ReadyFd {
        /// The fd given.
        fd: std::os::fd::RawFd,
        /// What checking it returned.
        source: std::io::Error,
    },
    /// `moat boot` was run by hand, not by `moat create`.
    #[error("moat boot runs only as started by `moat create`, as pid 1 of a PID namespace")]
    NotPidOne,
    /// The runtime's `--log` file cannot be opened.
    #[error("cannot open the log file {}: {source}", .path.display())]
    LogFile {
        /// The log file.
        path: PathBuf,
        /// What open returned.
        source: std::io::Error,
    },
    /// The bundle no longer loads.
    #[error("{0}")]
    Bundle(#[from] BundleError),
    /// The container's cgroup cannot be made or joined.
    #[error("{0}")]
    Cgroup(#[from] CgroupError),
    /// The container's state directory is gone.
    #[error("{0}")]
    State(#[from] StateError),
    /// A namespace cannot be made or joined.
    #[error("{0}")]
    Namespace(#[from] NamespaceError),
    /// The control socket cannot be listened on.
    #[error("cannot listen on {}: {source}", .socket.display())]
    Listen {
        /// The socket's path.
        socket: PathBuf,
        /// What bind returned.
        source: std::io::Error,
    },
    /// The spec has no `process` to run.
    #[error("the spec has no process")]
    NoProcess,
    /// `linux.seccomp` asks for what moat cannot enforce.
    #[error("{}: {source}", .config.display())]
    Seccomp {
        /// The bundle's config.json.
        config: PathBuf,
        /// The part at fault.
        source: SeccompProfileError,
    },
    /// `linux.sysctl` names a key the Sentry does not take.
    #[error("{}: linux.sysctl: {source}", .config.display())]
    Sysctl {
        /// The bundle's config.json.
        config: PathBuf,
        /// The key at fault.
        source: sentry::SysctlError,
    },
    /// The Gofer for the root filesystem did not start.
    #[error("root: {0}")]
    RootGofer(#[source] GoferError),
    /// A Gofer did not get ready.
    #[error("{0}")]
    Gofer(#[source] GoferError),
    /// A spec mount cannot be mounted.
    #[error("{0}")]
    Mount(#[from] MountError),
    /// The container's egress policy or the audit log is refused.
    #[error("{0}")]
    Egress(#[from] crate::egress::EgressError),
    /// The sandbox process was started without stdin, stdout or stderr.
    #[error("the sandbox process needs stdin, stdout and stderr")]
    NoStdio,
    /// A `process.rlimits` entry whose soft limit is above its hard one.
    #[error("rlimit {kind:?}: soft limit {soft} above hard limit {hard}")]
    Rlimit {
        /// The resource.
        kind: oci_spec::runtime::PosixRlimitType,
        /// The soft limit given.
        soft: u64,
        /// The hard limit given.
        hard: u64,
    },
}

/// The default cgroup of a container whose spec names none.
pub(crate) fn default_cgroup_path(id: &str) -> String {
    format!("/moat/{id}")
}

/// The shell-style exit status of a wait status.
pub(crate) fn exit_code(status: i32) -> i32 {
    if status & 0x7f == 0 {
        (status >> 8) & 0xff
    } else {
        128 + (status & 0x7f)
    }
}

/// Runs the sandbox process `boot` describes; returns its exit status. It
/// must be pid 1 of a PID namespace of its own, as `create` starts it: every
/// process of the container is then in that namespace, and dies with it.
///
/// `create` is told on the ready pipe that the sandbox is ready, or why
/// not (this then returns 1); only a ready pipe that is not an open fd is
/// an error here. The Sentry's diagnostics go to the `--log` file, as JSON
/// lines with `--log-format json` (containerd's shim parses them), never
/// into the container's stderr.
pub fn run(flags: &RuntimeFlags, boot: &BootCommand) -> Result<i32, SandboxError> {
    let ready = host::sys::take_inherited_fd(boot.ready_fd)
        .map_err(|source| SandboxError::ReadyFd { fd: boot.ready_fd, source })?;
    let mut ready = std::fs::File::from(ready);
    let prepared = prepare(flags, &boot.id, &boot.bundle);
    let (mut sandbox, listener) = match prepared {
        Ok(p) => p,
        Err(e) => {
            let _ = writeln!(ready, "{e}");
            return Ok(1);
        }
    };
    if writeln!(ready).is_err() {
        // `moat create` is gone: nobody will ever start this container.
        return Ok(1);
    }
    drop(ready);
    Ok(sandbox.serve(listener))
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

/// The cgroup of container `id`: the spec's `linux.cgroupsPath`, or
/// moat's default.
pub(crate) fn cgroup_path(bundle: &Bundle, id: &str) -> String {
    bundle
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().clone())
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| default_cgroup_path(id))
}

fn join_cgroup(id: &str, bundle_dir: &Path) -> Result<(), SandboxError> {
    let bundle = Bundle::load(bundle_dir)?;
    let linux = bundle.spec.linux().as_ref();
    let resources = linux.and_then(|l| l.resources().clone()).map(|r| host_resources(&r));
    let cgroup = Cgroup::create(&cgroup_path(&bundle, id), resources.as_ref())?;
    // cgroup.procs reads a pid in the writer's PID namespace: this is 1.
    Ok(cgroup.add(std::process::id() as i32)?)
}

/// A container between `create` and the end of its init.
struct Prepared {
    config: Option<BootConfig>,
    /// A Kubernetes pod's sandbox container: it leaves the network alone.
    pod_sandbox: bool,
    /// The container's egress policy, audit log and resolvers, for its stack.
    egress: Option<sentry::net::EgressConfig>,
    /// Its resolv.conf, read again at `start`: the engine's hooks may have
    /// rewritten it since `create` (Docker names its embedded DNS, 127.0.0.11,
    /// only then), and the host path is out of reach by then.
    resolv_conf: Option<std::fs::File>,
    _gofers: Gofers,
}

fn prepare(flags: &RuntimeFlags, id: &str, bundle_dir: &Path) -> Result<(Prepared, UnixListener), SandboxError> {
    if std::process::id() != 1 {
        return Err(SandboxError::NotPidOne);
    }
    if let Some(path) = flags.log.as_deref() {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| SandboxError::LogFile { path: path.to_owned(), source })?;
        sentry::log_to(file, log_format(flags.log_format == LogFormat::Json));
    }
    // First into the container's cgroup, so that this process, its Gofers
    // and every stub are in it.
    join_cgroup(id, bundle_dir)?;
    let state_dir = StateDir::open(&flags.root, id)?;
    let bundle = Bundle::load(bundle_dir)?;
    // Host paths (the policy file, the audit log, the engine's resolv.conf)
    // are read now, before the container's root becomes this process's.
    let (egress, resolv_conf) = crate::egress::container_egress(flags, &bundle, id)?;
    namespaces::enter_namespaces(&bundle.spec)?;
    namespaces::mount_own_proc()?;
    let mut gofers = Gofers::default();
    let mut config = config::boot_config(&bundle, &mut gofers, flags.overlay)?;
    config.platform = flags.platform.unwrap_or_default();
    let socket = state_dir.control_socket();
    let _ = std::fs::remove_file(&socket);
    let listener = crate::control::ShortPath::new(&socket)
        .and_then(|short| UnixListener::bind(short.path()))
        .map_err(|source| SandboxError::Listen { socket: socket.clone(), source })?;
    gofers.wait_until_jailed().map_err(SandboxError::Gofer)?;
    namespaces::enter_root(&bundle.rootfs)?;
    let pod_sandbox = network::is_pod_sandbox(&bundle.spec);
    let prepared = Prepared { config: Some(config), pod_sandbox, egress: Some(egress), resolv_conf, _gofers: gofers };
    Ok((prepared, listener))
}
