//! The Sentry: moat's application kernel. It implements the Linux syscall ABI
//! in user space for app code running in stub processes.
//!
//! # Layers
//!
//! The modules form layers, read bottom-up. A module uses only the crate
//! root and the modules listed before it; `tests/layers.rs` reads every
//! `crate::` path in the source and fails on one that reaches up or sideways
//! (unit-test modules, `#[cfg(test)]`, may use any layer as a fixture).
//!
//! 1. `error` — what an operation fails with: an errno for the app (with
//!    where it was made), or a restart the app never sees.
//! 2. `auth` — credentials and capabilities: who is asking.
//! 3. `waiter` — wait queues: how anything sleeps and is woken.
//! 4. `mm` — address spaces and the memory file that backs app memory.
//! 5. `platform` — how app code runs and traps (ptrace today): switching into
//!    a stub, the events it returns, the host mappings it follows.
//! 6. `vfs` — file semantics: dentries, mounts, path walks, permissions,
//!    open files and descriptor tables, locks, inotify.
//! 7. `fs` — filesystems and file objects that need no tasks: tmpfs, the
//!    Gofer-backed root and its overlay, /dev, pipes, sockets, eventfd, epoll.
//! 8. `net` — the sandbox's network stack (smoltcp on loopback) and its
//!    internet sockets, as file objects.
//! 9. `kernel` — tasks, thread groups, signals, futexes, timers, the PID
//!    table, and the run loop that switches into app code. It reaches the
//!    syscall layer only through the table `boot` installs
//!    (`kernel::SyscallTable`), as gVisor's kernel does.
//! 10. `taskfs` — files whose contents are tasks: /proc, ptys, signalfd.
//! 11. `loader` — ELF loading for execve, and moat's vDSO.
//! 12. `syscalls` — the syscall table: typed arguments, one function per call.
//! 13. `boot` — the composition root: builds the kernel, mounts, the Sentry's
//!     own seccomp filter, and starts init.
//!
//! Why this order: what app code can ask for (syscalls) is built from
//! kernel objects, which are built from files and memory, which are built
//! from identity and sleeping; nothing below knows what is above it, so a
//! second platform or a network stack slots in at its layer without
//! touching the ones beneath.
#![forbid(unsafe_code)]

/// `errno!(EINVAL)`: the error EINVAL, made here (its origin shows in
/// `MOAT_LOG=debug` output); `errno!(EINVAL, "why")` adds a word on why.
#[macro_export]
macro_rules! errno {
    ($e:ident) => {
        $crate::Error::new(abi::Errno::$e)
    };
    ($e:ident, $why:literal) => {
        $crate::Error::new(abi::Errno::$e).context($why)
    };
}

/// Returns early with the given errno (see [`errno!`]).
#[macro_export]
macro_rules! bail {
    ($e:ident) => {
        return Err($crate::errno!($e))
    };
}

pub mod auth;
pub mod boot;
pub mod error;
pub mod fs;
pub mod kernel;
pub mod loader;
pub mod mm;
pub mod net;
pub mod platform;
pub mod syscalls;
pub mod taskfs;
pub mod vfs;
pub mod waiter;

pub use abi::Errno;
pub use auth::CapSets;
pub use boot::{
    boot, BootConfig, BootError, FileAccess, HostStdio, MountConfig, MountKind, ProcessConfig, ProcessInfo, RootConfig,
    Sandbox,
};
pub use error::{Error, Restart};
pub use kernel::{log_to, LogFormat};
pub use platform::PlatformKind;
pub use taskfs::sysctl::{SysctlError, Sysctls};

/// The result of a kernel operation: a value, or an [`Error`] (an errno
/// for the app, or a restart).
pub type SysResult<T> = Result<T, Error>;

/// The kernel release string moat reports in `uname` and /proc (not the host's).
pub const RELEASE: &str = "5.15.0-moat";
/// The kernel version string moat reports.
pub const VERSION: &str = "#1 SMP moat application kernel";
