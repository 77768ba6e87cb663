//! The Linux x86-64 ABI as the app sees it: syscall numbers, errno values,
//! flag constants and `#[repr(C)]` structures shared by the Sentry and Gofer.
#![forbid(unsafe_code)]

pub mod errno;
pub mod flags;
pub mod signal;
pub mod sysno;
pub mod x86;

pub use errno::Errno;
