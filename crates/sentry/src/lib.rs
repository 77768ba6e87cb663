//! The Sentry: moat's application kernel. It implements the Linux syscall ABI
//! in user space for app code running in stub processes.
#![forbid(unsafe_code)]

pub mod fs;
pub mod kernel;
pub mod loader;
pub mod mm;
pub mod platform;
pub mod seccomp;
pub mod syscalls;
pub mod vfs;

pub use abi::Errno;
pub use kernel::boot::{
    boot, BootConfig, BootError, FileAccess, HostStdio, MountConfig, MountKind, ProcessConfig, ProcessInfo, RootConfig,
    Sandbox,
};
pub use kernel::capability::CapSets;
pub use kernel::sysctl::{SysctlError, Sysctls};
pub use kernel::{log_to, LogFormat};

/// The result of a kernel operation: a value or an errno for the app.
pub type SysResult<T> = Result<T, Errno>;

/// `errno!(EINVAL)` is `Errno::EINVAL`, short enough to read in syscall bodies.
#[macro_export]
macro_rules! errno {
    ($e:ident) => {
        abi::Errno::$e
    };
}

/// Returns early with the given errno.
#[macro_export]
macro_rules! bail {
    ($e:ident) => {
        return Err(abi::Errno::$e)
    };
}

/// The kernel release string moat reports in `uname` and /proc (not the host's).
pub const RELEASE: &str = "5.15.0-moat";
/// The kernel version string moat reports.
pub const VERSION: &str = "#1 SMP moat application kernel";
