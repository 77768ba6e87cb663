//! The error a kernel operation ends with: an errno for the app, or a
//! restart the app never sees, each with where in the Sentry it was made.
//!
//! Restarts (Linux's ERESTART* codes) are a type of their own, not errno
//! values: an errno the app chooses (an OCI seccomp rule's `errnoRet`) can
//! never be taken for one, so it is returned once, never restarted.

use std::fmt;
use std::panic::Location;

use abi::Errno;

/// How a syscall interrupted by a signal goes on: Linux's kernel-internal
/// ERESTART* codes. The app sees EINTR or a restarted call, never these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    /// ERESTARTSYS: restart if the handler has SA_RESTART, else EINTR.
    Sys,
    /// ERESTARTNOINTR: restart after the handler, always.
    NoIntr,
    /// ERESTARTNOHAND: restart if no handler ran, else EINTR.
    NoHand,
}

impl Restart {
    /// Linux's name for the code, for logs.
    pub fn name(self) -> &'static str {
        match self {
            Restart::Sys => "ERESTARTSYS",
            Restart::NoIntr => "ERESTARTNOINTR",
            Restart::NoHand => "ERESTARTNOHAND",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Errno(Errno),
    Restart(Restart),
}

/// Why a kernel operation failed: the errno the app gets (or a restart),
/// where in the Sentry it was decided, and optionally why.
#[derive(Clone, Copy)]
pub struct Error {
    kind: Kind,
    origin: &'static Location<'static>,
    context: Option<&'static str>,
}

impl Error {
    /// `errno`, made here (see the `errno!` macro).
    #[track_caller]
    pub fn new(errno: Errno) -> Error {
        Error { kind: Kind::Errno(errno), origin: Location::caller(), context: None }
    }

    /// A restart, made here.
    #[track_caller]
    pub fn restart(how: Restart) -> Error {
        Error { kind: Kind::Restart(how), origin: Location::caller(), context: None }
    }

    /// The same error, with a word on why (shown with the origin in debug logs).
    pub fn context(self, why: &'static str) -> Error {
        Error { context: Some(why), ..self }
    }

    /// The errno the app would see: a restart's is EINTR.
    pub fn errno(&self) -> Errno {
        match self.kind {
            Kind::Errno(e) => e,
            Kind::Restart(_) => Errno::EINTR,
        }
    }

    /// The restart this is, if it is one.
    pub fn as_restart(&self) -> Option<Restart> {
        match self.kind {
            Kind::Restart(r) => Some(r),
            Kind::Errno(_) => None,
        }
    }

    /// Where in the Sentry the error was made.
    pub fn origin(&self) -> &'static Location<'static> {
        self.origin
    }

    /// What was said about it, if anything.
    pub fn why(&self) -> Option<&'static str> {
        self.context
    }
}

impl From<Errno> for Error {
    #[track_caller]
    fn from(errno: Errno) -> Error {
        Error::new(errno)
    }
}

/// Where only the number matters (an error for a person, a status).
impl From<Error> for Errno {
    fn from(e: Error) -> Errno {
        e.errno()
    }
}

/// A host call's failure becomes its errno (EIO if it has none): the one
/// conversion from `io::Error` in the Sentry.
impl From<std::io::Error> for Error {
    #[track_caller]
    fn from(e: std::io::Error) -> Error {
        Error::new(e.raw_os_error().map_or(Errno::EIO, Errno))
    }
}

/// Errors are equal when the app would tell them apart: by errno or restart,
/// not by where they were made.
impl PartialEq for Error {
    fn eq(&self, other: &Error) -> bool {
        self.kind == other.kind
    }
}

impl Eq for Error {}

impl PartialEq<Errno> for Error {
    fn eq(&self, other: &Errno) -> bool {
        self.kind == Kind::Errno(*other)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            Kind::Errno(e) => write!(f, "{}", e.name())?,
            Kind::Restart(r) => write!(f, "{}", r.name())?,
        }
        write!(f, " at {}:{}", self.origin.file(), self.origin.line())?;
        if let Some(why) = self.context {
            write!(f, " ({why})")?;
        }
        Ok(())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}
