//! Starting the Gofers of one sandbox: a `moat gofer` process per served
//! directory, each on its own socketpair, each ended when the sandbox is.

use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::subcommands::GoferCommand;

/// Why a Gofer could not be started.
#[derive(Debug, thiserror::Error)]
pub enum GoferError {
    /// The directory to serve is not a directory.
    #[error("{}: not a directory", .root.display())]
    NotADirectory {
        /// The directory asked for.
        root: PathBuf,
    },
    /// Making its socket or starting the `moat gofer` process failed.
    #[error("cannot start the gofer for {}: {source}", .root.display())]
    Spawn {
        /// The directory it was to serve.
        root: PathBuf,
        /// What socketpair, fcntl or spawn returned.
        source: std::io::Error,
    },
    /// A Gofer ended, or did not enter a mount namespace of its own in time.
    #[error("gofer {pid} did not jail itself: {why}")]
    NotJailed {
        /// The Gofer's pid.
        pid: u32,
        /// What happened instead.
        why: String,
    },
}

/// The Gofers of one sandbox, killed and reaped when dropped.
#[derive(Debug, Default)]
pub struct Gofers(Vec<Child>);

/// How a Gofer serves its directory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Serving {
    /// Refuse every change to the host (EROFS).
    pub read_only: bool,
    /// Let the sandbox make set-user-ID and set-group-ID files on the host
    /// (`moat gofer --allow-setid`); by default those bits are stripped.
    pub allow_setid: bool,
}

impl Gofers {
    /// Starts a Gofer serving the directory `root` (read-only if asked, with
    /// set-ID bits stripped) and returns the Sentry's end of its socket.
    pub fn start(&mut self, root: &Path, read_only: bool) -> Result<UnixStream, GoferError> {
        self.start_serving(root, Serving { read_only, allow_setid: false }, None)
    }

    /// Starts a Gofer serving the directory `root` as `serving` says.
    pub fn start_dir(&mut self, root: &Path, serving: Serving) -> Result<UnixStream, GoferError> {
        self.start_serving(root, serving, None)
    }

    /// Starts a Gofer serving only the file `name` in the directory `root`.
    pub fn start_one_file(
        &mut self,
        root: &Path,
        name: &std::ffi::OsStr,
        serving: Serving,
    ) -> Result<UnixStream, GoferError> {
        self.start_serving(root, serving, Some(name))
    }

    fn start_serving(
        &mut self,
        root: &Path,
        serving: Serving,
        only: Option<&std::ffi::OsStr>,
    ) -> Result<UnixStream, GoferError> {
        if !root.is_dir() {
            return Err(GoferError::NotADirectory { root: root.to_owned() });
        }
        let spawn = || -> std::io::Result<(Child, UnixStream)> {
            let (ours, theirs) = UnixStream::pair()?;
            host::sys::set_cloexec(theirs.as_fd(), false)?;
            let gofer = GoferCommand {
                fd: theirs.as_raw_fd(),
                root: root.to_owned(),
                read_only: serving.read_only,
                only: only.map(ToOwned::to_owned),
                allow_setid: serving.allow_setid,
                selftest_forbidden_syscall: false,
            };
            let mut command = Command::new(std::env::current_exe()?);
            let child =
                command.args(gofer.command_line()).env_clear().stdin(Stdio::null()).stdout(Stdio::null()).spawn()?;
            Ok((child, ours))
        };
        let (child, socket) = spawn().map_err(|source| GoferError::Spawn { root: root.to_owned(), source })?;
        self.0.push(child);
        Ok(socket)
    }
}

impl Gofers {
    /// Waits until every Gofer is in a mount namespace of its own (its
    /// jail), so that changes to the caller's mounts (the sandbox's
    /// `enter_root`) no longer reach the paths it is still to open.
    pub fn wait_until_jailed(&mut self) -> Result<(), GoferError> {
        let ours = std::fs::read_link("/proc/self/ns/mnt").ok();
        let deadline = std::time::Instant::now() + JAIL_LIMIT;
        for gofer in &mut self.0 {
            let pid = gofer.id();
            loop {
                if let Ok(Some(status)) = gofer.try_wait() {
                    return Err(GoferError::NotJailed { pid, why: format!("it ended ({status})") });
                }
                let theirs = std::fs::read_link(format!("/proc/{pid}/ns/mnt")).ok();
                if theirs.is_some() && theirs != ours {
                    break;
                }
                if std::time::Instant::now() > deadline {
                    return Err(GoferError::NotJailed { pid, why: format!("not within {JAIL_LIMIT:?}") });
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
        Ok(())
    }
}

/// Far above the milliseconds a Gofer takes to jail itself.
const JAIL_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

impl Drop for Gofers {
    fn drop(&mut self) {
        for gofer in &mut self.0 {
            let _ = gofer.kill();
            let _ = gofer.wait();
        }
    }
}
