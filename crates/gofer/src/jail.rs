//! The Gofer's jail: the steps that turn a freshly started `moat gofer`
//! into a process that can reach the rootfs it serves and nothing else.
//!
//! [`enter`] runs every step, in one fixed order, before the first 9P
//! request is read. When it returns, the process has only its stdio (stdin
//! and stdout on `/dev/null`) and the 9P socket open, an empty environment,
//! a private mount namespace whose only mount is the rootfs at `/` (read-only
//! when serving read-only), an empty network namespace, the file
//! capabilities, `no_new_privs`, and a seccomp filter that kills it on any
//! system call outside [`crate::seccomp::ALLOW_LIST`]. Started without
//! privileges, it does the same inside a user namespace of its own.

use std::fs::{self, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use caps::{CapSet, Capability, CapsHashSet};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::CloneFlags;

use crate::{seccomp, Config};

/// The capabilities file serving needs, and all the Gofer keeps: acting on
/// files whatever their owner and mode (the Sentry checks the app's own
/// permissions), and setting owners as the app asks.
pub const FILE_CAPABILITIES: [Capability; 4] =
    [Capability::CAP_CHOWN, Capability::CAP_DAC_OVERRIDE, Capability::CAP_DAC_READ_SEARCH, Capability::CAP_FOWNER];

/// Kept besides [`FILE_CAPABILITIES`] only by a Gofer allowed to make
/// set-ID files ([`Config::allow_setid`]): a writer without it loses a
/// file's set-ID bits to the kernel on every write and truncate, and cannot
/// set S_ISGID for a group it is not in.
pub const SETID_CAPABILITY: Capability = Capability::CAP_FSETID;

/// One step of the jail failed; the Gofer must not serve.
#[derive(Debug, thiserror::Error)]
#[error("cannot jail the gofer: {step} failed: {source}{}", hint(.source))]
pub struct JailError {
    /// What was being done.
    pub step: &'static str,
    /// What the host reported.
    pub source: io::Error,
}

/// Most steps need privileges; say so when that is what went wrong.
fn hint(e: &io::Error) -> &'static str {
    if e.raw_os_error() == Some(libc::EPERM) {
        "; the gofer needs root, or unprivileged user namespaces (sysctl user.max_user_namespaces > 0), to build its jail"
    } else {
        ""
    }
}

/// Tags a step's error with the step's name.
trait Step<T> {
    fn step(self, step: &'static str) -> Result<T, JailError>;
}

impl<T, E: Into<io::Error>> Step<T> for Result<T, E> {
    fn step(self, step: &'static str) -> Result<T, JailError> {
        self.map_err(|e| JailError { step, source: e.into() })
    }
}

/// Jails the calling process (which must be single-threaded) to serve `root`
/// on `socket` as `config` says. Afterwards `root` is `/`.
///
/// The order is the point of this function; each step says why it stands
/// where it does. The filter is compiled first, so that a bad allow-list
/// fails before anything has changed.
pub fn enter(root: &Path, config: &Config, socket: BorrowedFd<'_>) -> Result<(), JailError> {
    let read_only = config.read_only;
    let filter = seccomp::filter(std::process::id()).map_err(io::Error::other).step("compiling the seccomp filter")?;
    // Resolved on the host, where the path was given; `/` is a special case below.
    let root = fs::canonicalize(root).step("resolving the root directory")?;
    let root_identity = fs::metadata(&root).map(|m| (m.dev(), m.ino())).step("looking up the root directory")?;

    // 1. First, so that nothing inherited by mistake (a host file, a socket)
    //    is still open in any later step, least of all in the served loop.
    //    It needs /proc and /dev/null, which vanish at step 5.
    close_inherited_fds(socket.as_raw_fd()).step("closing inherited file descriptors")?;
    // 2. Nothing in the Gofer reads the environment; a scrubbed one cannot
    //    steer a library we link, nor leak the host's secrets.
    scrub_environment();
    // 3. Namespaces before mounts, so that no mount below touches the host.
    //    The network namespace is new and empty: the Gofer's only channel is
    //    the socket it already holds. IPC and UTS come free. Started by a
    //    user without CAP_SYS_ADMIN, the Gofer first makes a user namespace
    //    of its own, where it holds the capabilities the next steps need
    //    but reaches no file beyond that user's.
    let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
    let privileged = caps::has_cap(None, CapSet::Effective, Capability::CAP_SYS_ADMIN).unwrap_or(false);
    let mut namespaces =
        CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWIPC | CloneFlags::CLONE_NEWUTS;
    if !privileged {
        namespaces |= CloneFlags::CLONE_NEWUSER;
    }
    nix::sched::unshare(namespaces).step("unsharing the mount, network, IPC and UTS namespaces")?;
    if !privileged {
        map_own_ids(uid, gid).step("mapping the user's own ids into its user namespace")?;
    }
    // 4. Before anything is served: only a process with CAP_SYS_PTRACE may
    //    now attach to the Gofer or read its memory, not a same-uid one (a
    //    compromised Sentry) that has dropped its capabilities. After the id
    //    maps, which a user can no longer write once /proc/self is root's.
    nix::sys::prctl::set_dumpable(false).step("making the process non-dumpable (PR_SET_DUMPABLE)")?;
    // 5. Swap the root while CAP_SYS_ADMIN is still held.
    pivot_to(&root, privileged).step("pivoting the root into the served directory")?;
    let new_root = fs::metadata("/").map(|m| (m.dev(), m.ino())).step("checking the new root")?;
    if new_root != root_identity {
        let wrong = io::Error::other(format!("`/` is not {} after pivot_root", root.display()));
        return Err(wrong).step("checking the new root");
    }
    // 6. A second barrier behind the Gofer's own EROFS checks: with the
    //    mount read-only, not even a compromised Gofer can write. Never a
    //    set-id program or device node either. Still needs CAP_SYS_ADMIN.
    remount_root(read_only).step("remounting the root nosuid, nodev (and read-only)")?;
    // 7. After every step that needs more, the capabilities go down to the
    //    file set (with CAP_FSETID only if set-ID files are allowed); the
    //    bounding set first, as dropping from it needs CAP_SETPCAP, which
    //    the next line gives up.
    drop_capabilities(config.allow_setid).step("dropping capabilities")?;
    // 8. No exec could regain privileges (the filter forbids execve too);
    //    it is also what lets a process without CAP_SYS_ADMIN install a filter.
    nix::sys::prctl::set_no_new_privs().step("setting no_new_privs")?;
    // 9. Last, since it forbids every call the steps above make (mount,
    //    unshare, capset, prctl, ...). From here on any system call outside
    //    the allow-list kills the Gofer.
    seccompiler::apply_filter_all_threads(&filter).map_err(io::Error::other).step("installing the seccomp filter")?;
    Ok(())
}

/// Points stdin and stdout at `/dev/null` and closes every fd above stderr
/// but `keep`. Stderr stays, for the one line a failing Gofer prints.
fn close_inherited_fds(keep: RawFd) -> io::Result<()> {
    if keep <= libc::STDERR_FILENO {
        return Err(io::Error::other(format!("the 9P socket (fd {keep}) must not be stdin, stdout or stderr")));
    }
    let null = OpenOptions::new().read(true).write(true).open("/dev/null")?;
    nix::unistd::dup2(null.as_raw_fd(), libc::STDIN_FILENO)?;
    nix::unistd::dup2(null.as_raw_fd(), libc::STDOUT_FILENO)?;
    drop(null);
    // Collected first: the listing's own fd is among them and is closed
    // when the listing is dropped (closing it again is then EBADF).
    let open: Vec<RawFd> =
        fs::read_dir("/proc/self/fd")?.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok()).collect();
    for fd in open.into_iter().filter(|&fd| fd > libc::STDERR_FILENO && fd != keep) {
        match nix::unistd::close(fd) {
            Ok(()) | Err(nix::errno::Errno::EBADF) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn scrub_environment() {
    for (name, _) in std::env::vars_os() {
        std::env::remove_var(name);
    }
}

/// Maps the user's own uid and gid, and no other, into the fresh user
/// namespace: files keep showing their true owners (others' as nobody).
fn map_own_ids(uid: nix::unistd::Uid, gid: nix::unistd::Gid) -> io::Result<()> {
    // An unprivileged process must give up setgroups before mapping a gid.
    fs::write("/proc/self/setgroups", "deny")?;
    fs::write("/proc/self/uid_map", format!("{uid} {uid} 1"))?;
    fs::write("/proc/self/gid_map", format!("{gid} {gid} 1"))?;
    Ok(())
}

/// Makes `root` the root of the (already private) mount namespace and
/// detaches the old root. With `privileged`, `root` is then the
/// namespace's only mount.
fn pivot_to(root: &Path, privileged: bool) -> io::Result<()> {
    // Nothing below may propagate to the host's mounts, nor theirs to ours.
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)?;
    // pivot_root needs the new root to be a mount point: bind it onto
    // itself. Not recursively: the Gofer never crosses a mount
    // (RESOLVE_NO_XDEV), so submounts (the host's /proc, /sys and /dev when
    // serving `/`) would only be ways out. In a user namespace the kernel
    // refuses to uncover what submounts hide, so there they come along,
    // reachable with no more than the user's own rights.
    let recursive = if privileged { MsFlags::empty() } else { MsFlags::MS_REC };
    mount(Some(root), root, None::<&str>, MsFlags::MS_BIND | recursive, None::<&str>)?;
    // A path walk steps onto a mount stacked on a directory when it walks
    // onto the directory by name; `/` has no name, so the bind on top of
    // the host's root is reached as `/..`.
    if root == Path::new("/") {
        nix::unistd::chdir("/..")?;
    } else {
        nix::unistd::chdir(root)?;
    }
    // pivot_root(".", ".") stacks the old root on top of the new one at the
    // same place; detaching it leaves only the new root.
    nix::unistd::pivot_root(".", ".")?;
    umount2(".", MntFlags::MNT_DETACH)?;
    nix::unistd::chdir("/")?;
    Ok(())
}

/// Remounts the root bind with nosuid and nodev, and read-only if asked,
/// keeping every restriction the host's mount already has: a user namespace
/// may not loosen them, and the Gofer has no reason to.
fn remount_root(read_only: bool) -> io::Result<()> {
    use nix::sys::statvfs::FsFlags;
    let current = nix::sys::statvfs::statvfs("/")?.flags();
    let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    for (has, keep) in [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if current.contains(has) {
            flags |= keep;
        }
    }
    if read_only {
        flags |= MsFlags::MS_RDONLY;
    }
    mount(None::<&str>, "/", None::<&str>, flags, None::<&str>)?;
    Ok(())
}

fn drop_capabilities(allow_setid: bool) -> io::Result<()> {
    let mut keep: CapsHashSet = FILE_CAPABILITIES.into_iter().collect();
    if allow_setid {
        keep.insert(SETID_CAPABILITY);
    }
    let caps_error = |e: caps::errors::CapsError| io::Error::other(e.to_string());
    for cap in caps::runtime::thread_all_supported().difference(&keep) {
        caps::drop(None, CapSet::Bounding, *cap).map_err(caps_error)?;
    }
    // Effective before permitted: the kernel refuses an effective set
    // larger than the permitted one.
    caps::set(None, CapSet::Effective, &keep).map_err(caps_error)?;
    caps::set(None, CapSet::Permitted, &keep).map_err(caps_error)?;
    caps::clear(None, CapSet::Inheritable).map_err(caps_error)?;
    caps::clear(None, CapSet::Ambient).map_err(caps_error)?;
    Ok(())
}
