//! The error type of the 9P client and server: a remote errno, or a local
//! I/O or protocol failure that the caller reports as EIO.

use crate::wire::WireError;

/// Linux EIO, what every non-remote failure looks like to an app.
const EIO: i32 = 5;

/// What went wrong in a 9P exchange.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered Rlerror with this errno.
    #[error("9P server returned errno {0}")]
    Remote(i32),
    /// Reading or writing the transport failed.
    #[error("9P transport I/O failed: {0}")]
    Io(#[from] std::io::Error),
    /// A frame could not be encoded or decoded.
    #[error("malformed 9P frame: {0}")]
    Wire(#[from] WireError),
    /// The peer answered with a reply that does not match the request.
    #[error("9P reply type {got} does not answer request type {expected}")]
    UnexpectedReply {
        /// The reply type the request called for.
        expected: u8,
        /// The reply type received.
        got: u8,
    },
    /// The reply carried a different tag than the request.
    #[error("9P reply tag {got} does not match request tag {expected}")]
    TagMismatch {
        /// The request's tag.
        expected: u16,
        /// The reply's tag.
        got: u16,
    },
    /// The server does not speak 9P2000.L, or offered an unusable msize.
    #[error("9P version negotiation failed: server offered {version:?} with msize {msize}")]
    Version {
        /// The version string the server returned.
        version: String,
        /// The msize the server returned.
        msize: u32,
    },
    /// An earlier transport failure left the connection unusable.
    #[error("9P connection is broken by an earlier failure; reconnect")]
    Broken,
    /// Every fid number is in use.
    #[error("no free 9P fid numbers left")]
    FidsExhausted,
    /// A reply broke a protocol rule (for example, more data than asked for).
    #[error("9P protocol violation: {0}")]
    Protocol(&'static str),
}

impl Error {
    /// The errno to hand the app: the server's for `Remote`, EIO otherwise.
    pub fn errno(&self) -> i32 {
        match self {
            Error::Remote(errno) => *errno,
            _ => EIO,
        }
    }
}
