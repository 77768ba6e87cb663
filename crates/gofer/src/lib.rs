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
//! `moat gofer` first locks itself into [`jail`]: a mount namespace holding
//! only the served tree, the file capabilities, and the [`seccomp`] allow-list.
#![forbid(unsafe_code)]

mod gofer;
mod hostfs;
pub mod jail;
pub mod seccomp;

use std::io;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags, CWD};

use crate::gofer::Gofer;

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

/// Serves `root` (a host directory) read-write over 9P2000.L on `stream` until the peer closes.
///
/// With `read_only`, every request that would change the host answers EROFS.
/// With `only`, just that name in `root` is served (a bind mount of a file).
pub fn serve(stream: UnixStream, root: &Path, read_only: bool, only: Option<&[u8]>) -> Result<(), GoferError> {
    let open_root = || -> io::Result<Gofer> {
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        // openat2 like every other host open, so the jail's allow-list needs no openat.
        let fd = rustix::fs::openat2(CWD, root, flags, Mode::empty(), ResolveFlags::empty())?;
        let gofer = Gofer::new(fd, read_only).map_err(|e| io::Error::from_raw_os_error(e.0))?;
        match only {
            Some(name) => gofer.serve_only(name).map_err(|e| io::Error::from_raw_os_error(e.0)),
            None => Ok(gofer),
        }
    };
    let gofer = open_root().map_err(|source| GoferError::OpenRoot { path: root.to_owned(), source })?;
    p9::serve(stream, gofer)?;
    Ok(())
}
