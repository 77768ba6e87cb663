//! The namespaces a sandbox process runs in: a PID namespace of its own
//! (made by whoever starts it), and new mount, IPC, UTS and network ones.

use std::ffi::OsString;
use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use nix::errno::Errno;
use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

/// Why the sandbox's namespaces or its process could not be made.
#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    /// The spec's network namespace path cannot be opened.
    #[error("cannot open network namespace {}: {source}", .path.display())]
    OpenNetwork {
        /// The namespace file the spec names.
        path: PathBuf,
        /// What open returned.
        source: std::io::Error,
    },
    /// setns into the spec's network namespace failed.
    #[error("cannot join network namespace {}: {source}", .path.display())]
    JoinNetwork {
        /// The namespace file the spec names.
        path: PathBuf,
        /// What setns returned.
        source: Errno,
    },
    /// unshare of a new network namespace failed.
    #[error("cannot make a network namespace: {0}")]
    NewNetwork(#[source] Errno),
    /// unshare of the mount, IPC and UTS namespaces failed.
    #[error("cannot make the sandbox's namespaces: {0}")]
    Private(#[source] Errno),
    /// Making every mount private failed.
    #[error("cannot make the sandbox's mounts private: {0}")]
    PrivateMounts(#[source] Errno),
    /// Making the container's root the sandbox process's root failed.
    #[error("cannot make {} the sandbox's root ({step}): {source}", .rootfs.display())]
    Root {
        /// The bundle's root directory.
        rootfs: PathBuf,
        /// The step that failed.
        step: &'static str,
        /// What the kernel said.
        source: Errno,
    },
    /// The spec's UTS namespace path cannot be opened.
    #[error("cannot open UTS namespace {}: {source}", .path.display())]
    OpenUts {
        /// The namespace file the spec names.
        path: PathBuf,
        /// What open returned.
        source: std::io::Error,
    },
    /// setns into the spec's UTS namespace failed.
    #[error("cannot join UTS namespace {}: {source}", .path.display())]
    JoinUts {
        /// The namespace file the spec names.
        path: PathBuf,
        /// What setns returned.
        source: Errno,
    },
    /// Setting the hostname of the sandbox's new UTS namespace failed.
    #[error("cannot set hostname {name:?} in the sandbox's UTS namespace (/proc/sys/kernel/hostname): {source}")]
    SetHostname {
        /// The spec's hostname.
        name: String,
        /// What the write returned.
        source: std::io::Error,
    },
    /// unshare of a new PID namespace failed.
    #[error("cannot make the sandbox's PID namespace: {0}")]
    NewPid(#[source] Errno),
    /// /proc/self/exe cannot be read.
    #[error("cannot find the moat binary: {0}")]
    FindMoat(#[source] std::io::Error),
    /// Starting the sandbox process failed.
    #[error("cannot start the sandbox process: {0}")]
    Spawn(#[source] std::io::Error),
    /// Waiting for the sandbox process failed.
    #[error("waiting for the sandbox process: {0}")]
    Wait(#[source] std::io::Error),
    /// The thread that starts the sandbox process panicked.
    #[error("the thread starting the sandbox process panicked")]
    SpawnPanicked,
}

/// New mount, IPC and UTS namespaces for the sandbox process (the Sentry
/// gives the app its own view of each), and the network namespace the spec
/// names, if any.
pub(super) fn enter_namespaces(spec: &Spec) -> Result<(), NamespaceError> {
    enter_private_namespaces()?;
    let namespaces = spec.linux().as_ref().and_then(|l| l.namespaces().clone()).unwrap_or_default();
    let mut joined_uts = false;
    for ns in namespaces {
        if ns.typ() == LinuxNamespaceType::Uts {
            // A pod's containers join the pod's UTS namespace (runc does):
            // its hostname is theirs when their spec names none. The
            // Sentry answers the app's uname itself either way.
            if let Some(path) = ns.path() {
                let file = std::fs::File::open(path)
                    .map_err(|source| NamespaceError::OpenUts { path: path.clone(), source })?;
                nix::sched::setns(file.as_fd(), CloneFlags::CLONE_NEWUTS)
                    .map_err(|source| NamespaceError::JoinUts { path: path.clone(), source })?;
                joined_uts = true;
            }
            continue;
        }
        if ns.typ() != LinuxNamespaceType::Network {
            continue;
        }
        match ns.path() {
            Some(path) => {
                let file = std::fs::File::open(path)
                    .map_err(|source| NamespaceError::OpenNetwork { path: path.clone(), source })?;
                nix::sched::setns(file.as_fd(), CloneFlags::CLONE_NEWNET)
                    .map_err(|source| NamespaceError::JoinNetwork { path: path.clone(), source })?;
            }
            None => nix::sched::unshare(CloneFlags::CLONE_NEWNET).map_err(NamespaceError::NewNetwork)?,
        }
    }
    // The hostname goes into the new UTS namespace too, as runc puts it
    // there: a pod's sandbox is where its containers, joining this
    // namespace with no hostname of their own, read it from. A joined
    // namespace is the pod's and keeps its name.
    if let (false, Some(name)) = (joined_uts, spec.hostname().as_deref().filter(|n| !n.is_empty())) {
        std::fs::write("/proc/sys/kernel/hostname", name)
            .map_err(|source| NamespaceError::SetHostname { name: name.to_owned(), source })?;
    }
    Ok(())
}

/// New mount (with every mount private), IPC and UTS namespaces for the
/// calling process, which must be single-threaded.
pub(crate) fn enter_private_namespaces() -> Result<(), NamespaceError> {
    nix::sched::unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWIPC | CloneFlags::CLONE_NEWUTS)
        .map_err(NamespaceError::Private)?;
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(NamespaceError::PrivateMounts)
}

/// Runs this moat command again as the first process of a new PID
/// namespace (with `extra` added after `subcommand` in its arguments),
/// waits for it and returns its exit status: the sandbox and everything it
/// starts then see no host process, and die with it. The caller keeps its
/// stdio and gives it on.
pub(crate) fn rerun_in_pid_namespace(subcommand: &str, extra: &[OsString]) -> Result<i32, NamespaceError> {
    nix::sched::unshare(CloneFlags::CLONE_NEWPID).map_err(NamespaceError::NewPid)?;
    let exe = std::env::current_exe().map_err(NamespaceError::FindMoat)?;
    let mut child = Command::new(exe)
        .args(crate::subcommands::args_with(subcommand, extra))
        .spawn()
        .map_err(NamespaceError::Spawn)?;
    let status = child.wait().map_err(NamespaceError::Wait)?;
    Ok(status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}

/// Spawns `command` as pid 1 of a new PID namespace and returns it (its
/// host pid is `Child::id`). A thread of its own makes the namespace, as a
/// thread's PID namespace for children is its own: the caller's later
/// children (engine hooks) stay in the host's. That thread ends at once, so
/// the child must not rely on PR_SET_PDEATHSIG (which follows the thread).
pub(crate) fn spawn_in_new_pid_namespace(command: &mut Command) -> Result<Child, NamespaceError> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                nix::sched::unshare(CloneFlags::CLONE_NEWPID).map_err(NamespaceError::NewPid)?;
                command.spawn().map_err(NamespaceError::Spawn)
            })
            .join()
            .unwrap_or(Err(NamespaceError::SpawnPanicked))
    })
}

/// Makes the container's root directory the root of the sandbox process's
/// (private) mount namespace, with a /proc of its PID namespace on it. Once
/// its Gofers run the sandbox needs no host path; and engines that act on
/// `/proc/PID/root` of the pid they were given (`podman cp`, `podman top`)
/// must find the container's files and processes there, not the host's —
/// as under runc. The host's mounts are gone from the namespace after.
pub(crate) fn enter_root(rootfs: &Path) -> Result<(), NamespaceError> {
    enter_root_of(rootfs).map_err(|(step, source)| NamespaceError::Root { rootfs: rootfs.to_path_buf(), step, source })
}

/// A /proc of the sandbox's own PID namespace over the host's, in its
/// private mount namespace: the pids it starts (its Gofers) are then its
/// /proc's, as the host's /proc would show other processes under them.
pub(crate) fn mount_own_proc() -> Result<(), NamespaceError> {
    use nix::mount::{mount, MsFlags};
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(Some("proc"), "/proc", Some("proc"), flags, None::<&str>).map_err(|source| NamespaceError::Root {
        rootfs: "/".into(),
        step: "mounting its own /proc",
        source,
    })
}

fn enter_root_of(rootfs: &Path) -> Result<(), (&'static str, Errno)> {
    use nix::mount::{mount, umount2, MntFlags, MsFlags};
    let fail = |step| move |source| (step, source);
    mount(Some(rootfs), rootfs, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
        .map_err(fail("bind-mounting it onto itself"))?;
    nix::unistd::chdir(rootfs).map_err(fail("chdir"))?;
    nix::unistd::pivot_root(".", ".").map_err(fail("pivot_root"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(fail("unmounting the host's root"))?;
    nix::unistd::chdir("/").map_err(fail("chdir /"))?;
    // The stubs raise their own OOM score through /proc/self. A /proc that
    // is not a plain directory (a symlink an earlier run of the container
    // planted) gets no mount: the stubs then keep the default score.
    if std::fs::symlink_metadata("/proc").is_ok_and(|m| m.is_dir()) {
        let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        mount(Some("proc"), "/proc", Some("proc"), flags, None::<&str>).map_err(fail("mounting /proc"))?;
    }
    Ok(())
}
