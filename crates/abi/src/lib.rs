//! The Linux x86-64 ABI as the app sees it: syscall numbers, errno values,
//! flag constants and `#[repr(C)]` structures shared by the Sentry and Gofer.
//!
//! Every structure the app reads or writes is a `#[repr(C)]` struct with
//! zerocopy's byte views (`FromBytes`, `AsBytes`) and a compile-time check of
//! its x86-64 size, so that no caller assembles one from bytes by hand.
#![forbid(unsafe_code)]

pub mod errno;
pub mod file;
pub mod flags;
pub mod futex;
pub mod io;
pub mod net;
pub mod process;
pub mod signal;
pub mod sysno;
pub mod time;
pub mod tty;
pub mod x86;

pub use errno::Errno;
/// The byte views of ABI structs, re-exported so that users of `abi` need
/// no zerocopy dependency of their own.
pub use zerocopy::{AsBytes, FromBytes, FromZeroes};
