//! The Gofer: serves one host directory over 9P2000.L, walking one component
//! at a time beneath the root and never following a host symlink.
//!
//! This is a security boundary. Every fid holds an `O_PATH` fd reached by
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
//! RESOLVE_NO_XDEV)` from the root, one name at a time; names that are empty,
//! `.`, `..`, or contain `/` or NUL are refused. Only regular files and
//! directories are ever opened for I/O, regular files by re-opening their
//! name in their parent (never through `/proc/self/fd`). Other file types are
//! served as metadata only.
//!
//! The served tree never gains a set-user-ID or set-group-ID file from the
//! client unless [`Config::allow_setid`] says so, and one connection's fids
//! are bounded by [`FidLimits`].
//!
//! `moat gofer` first locks itself into [`jail`]: a mount namespace holding
//! only the served tree, the file capabilities, and the [`seccomp`] allow-list.
#![forbid(unsafe_code)]

mod fids;
mod gofer;
mod hostfs;
pub mod jail;
pub mod seccomp;

use std::io;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags, CWD};

pub use crate::fids::{FidLimits, DEFAULT_MAX_BYTES};
use crate::gofer::Gofer;

/// How a Gofer serves its tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Every request that would change the host answers EROFS.
    pub read_only: bool,
    /// Serve just this name in the root directory (a bind mount of a file).
    pub only: Option<Vec<u8>>,
    /// Let the client make set-user-ID and set-group-ID files. Otherwise
    /// S_ISUID is cleared from every mode it creates or sets, and S_ISGID
    /// from every one but a directory's (where it only makes new entries
    /// inherit the directory's group); and the jailed Gofer holds no
    /// CAP_FSETID, so the kernel clears both bits when it writes to or
    /// truncates a set-ID file, as for any unprivileged writer.
    pub allow_setid: bool,
    /// Bounds on what one connection's fids hold.
    pub limits: FidLimits,
}

impl Config {
    /// Serving read-write, the whole tree, set-ID bits stripped, with
    /// `limits`.
    pub fn new(limits: FidLimits) -> Config {
        Config { read_only: false, only: None, allow_setid: false, limits }
    }
}

/// Why the Gofer stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum GoferError {
    /// The root directory could not be opened.
    #[error("cannot open gofer root {path:?}: {source}; check that it exists and is a directory")]
    OpenRoot {
        /// The root as given.
        path: PathBuf,
        /// What `open(O_PATH | O_DIRECTORY)` reported.
        source: io::Error,
    },
    /// The 9P session failed (transport error or an unanswerable frame).
    #[error("gofer 9P session failed: {0}")]
    Session(#[from] p9::Error),
}

/// Serves `root` (a host directory) over 9P2000.L on `stream`, as `config`
/// says, until the peer closes.
pub fn serve(stream: UnixStream, root: &Path, config: &Config) -> Result<(), GoferError> {
    let open_root = || -> io::Result<Gofer> {
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        // openat2 like every other host open, so the jail's allow-list needs no openat.
        let fd = rustix::fs::openat2(CWD, root, flags, Mode::empty(), ResolveFlags::empty())?;
        Gofer::new(fd, config).map_err(|e| io::Error::from_raw_os_error(e.0))
    };
    let gofer = open_root().map_err(|source| GoferError::OpenRoot { path: root.to_owned(), source })?;
    p9::serve(stream, gofer)?;
    Ok(())
}
