//! `moat gofer`: the file-server process. moat starts it with one end of a
//! socketpair; it serves the root directory over 9P on it until the Sentry goes.

use std::os::fd::RawFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct GoferArgs {
    /// The inherited socket fd to serve on.
    #[arg(long)]
    fd: RawFd,
    /// The directory to serve as the root.
    #[arg(long)]
    root: PathBuf,
    /// Refuse every change to the host tree.
    #[arg(long)]
    read_only: bool,
}

pub fn run(a: GoferArgs) -> i32 {
    let fd = match host::sys::take_inherited_fd(a.fd) {
        Ok(fd) => fd,
        Err(e) => {
            eprintln!("moat gofer: fd {} is not usable: {e}", a.fd);
            return 2;
        }
    };
    match gofer::serve(UnixStream::from(fd), &a.root, a.read_only) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("moat gofer: {e}");
            1
        }
    }
}
