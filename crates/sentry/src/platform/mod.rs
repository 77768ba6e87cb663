//! The platform seam: how app code runs. Only this module knows that stubs
//! are ptrace'd host processes; the kernel sees contexts and events.

pub mod ptrace;
pub mod systrap;

use std::io;

pub use host::Regs;

/// `regs` in 64-bit user mode with only the flags a program may set: what
/// every register set the kernel makes itself (a signal frame, its return,
/// a new thread or program) must be before app code runs with it.
pub fn sixty_four(regs: &mut Regs) {
    *regs = host::user_mode(regs, host::Mode::Sixty4);
}

use crate::mm::{Layout, MapOp};

/// Why app code stopped running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The app made a syscall: number in `orig_rax`, arguments in the registers.
    Syscall,
    /// The app made a system call other than with `syscall` from 64-bit code
    /// (`int $0x80`, `sysenter`, or from 32-bit mode): the 32-bit ABI, which
    /// moat does not offer. Nothing was run; `rip` is past the instruction.
    CompatSyscall,
    /// The app called the vsyscall entry for call `nr` (gettimeofday, time,
    /// getcpu): put the result in rax. With `returned`, the registers are
    /// already the caller's; without, return to the caller yourself (pop
    /// the return address).
    Vsyscall { nr: u64, returned: bool },
    /// App code faulted (or trapped): deliver `signo` with `code` and `addr` to the app.
    Fault { signo: i32, code: i32, addr: u64 },
    /// The Sentry interrupted the app (a signal or exit is pending).
    Interrupted,
    /// The host process running the app is gone.
    Gone,
}

/// A way for another Sentry thread to make a running context return `Interrupted`.
pub trait Kicker: Send + Sync + std::fmt::Debug {
    fn kick(&self);
    /// The host process whose address space runs the thread, as the host's
    /// `ps` lists it (`moat ps` gives it to engines for `docker top`).
    fn host_pid(&self) -> i32;
}

/// An app thread's execution context bound to its address space.
pub trait Context: std::fmt::Debug {
    /// Runs app code with `regs` until the next event.
    fn switch(&mut self, regs: &mut Regs) -> Event;
    /// Makes the host address space match the kernel's view.
    fn apply(&mut self, ops: &[MapOp]) -> io::Result<()>;
    /// Reads the app's FPU/SSE/AVX state (XSAVE layout; its first 512 bytes are FXSAVE).
    fn fpstate(&self) -> io::Result<Vec<u8>>;
    /// Restores state read by `fpstate`; a 512-byte FXSAVE image restores x87/SSE only.
    fn set_fpstate(&mut self, state: &[u8]) -> io::Result<()>;
    /// Registers as the stub starts them (segment selectors, flags), for a fresh image.
    fn initial_regs(&self) -> io::Result<Regs>;
    /// A handle to interrupt this context from another thread.
    fn kicker(&self) -> std::sync::Arc<dyn Kicker>;
    /// Prepares a context for a new thread in this address space; the host thread that
    /// will run it attaches the seed.
    fn new_thread(&mut self) -> io::Result<Box<dyn ContextSeed>>;
}

/// A new thread's context, made by its creator and attached by the thread that runs it.
pub trait ContextSeed: Send + std::fmt::Debug {
    fn attach(self: Box<Self>) -> io::Result<Box<dyn Context>>;
}

/// A way to make contexts, and what the rest of the Sentry must leave to it.
pub trait Platform: Send + Sync + std::fmt::Debug {
    /// A new context with an empty address space, owned by the calling host thread.
    fn new_context(&self) -> io::Result<Box<dyn Context>>;
    /// Where app address spaces end (the platform's own pages lie above).
    fn layout(&self) -> Layout;
    /// The first memory-file offset free for app memory (the platform's own
    /// pages come first).
    fn first_free_offset(&self) -> u64;
    /// The host calls this platform makes, for the Sentry's own seccomp
    /// filter (added to the calls every platform needs).
    fn seccomp_rules(&self) -> &'static [host::seccomp::Rule];
}

/// The platforms a sandbox can run on, chosen at boot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PlatformKind {
    /// App processes are ptrace'd stubs; every syscall is a ptrace stop.
    #[default]
    Ptrace,
    /// App threads run untraced; every syscall traps (seccomp) to the
    /// stub's handler, which hands the thread's frame to the Sentry.
    Systrap,
}

impl PlatformKind {
    /// Every platform, by the name `--platform` takes.
    pub const ALL: &'static [(&'static str, PlatformKind)] =
        &[("ptrace", PlatformKind::Ptrace), ("systrap", PlatformKind::Systrap)];
}

impl PlatformKind {
    /// The name `--platform` takes for this platform.
    pub fn name(self) -> &'static str {
        Self::ALL.iter().find(|(_, k)| *k == self).map_or("ptrace", |(n, _)| n)
    }
}

impl std::str::FromStr for PlatformKind {
    type Err = String;

    fn from_str(name: &str) -> Result<PlatformKind, String> {
        match Self::ALL.iter().find(|(n, _)| *n == name) {
            Some((_, kind)) => Ok(*kind),
            None => {
                let names: Vec<&str> = Self::ALL.iter().map(|(n, _)| *n).collect();
                Err(format!("no platform {name:?}; the platforms are: {}", names.join(", ")))
            }
        }
    }
}

/// Makes the platform `kind` over the memory file `mem`.
pub fn new_platform(kind: PlatformKind, mem: std::sync::Arc<host::MemoryFile>) -> io::Result<Box<dyn Platform>> {
    match kind {
        PlatformKind::Ptrace => Ok(Box::new(ptrace::PtracePlatform::new(mem)?)),
        PlatformKind::Systrap => Ok(Box::new(systrap::SystrapPlatform::new(mem)?)),
    }
}
