//! Host system interface: raw host syscalls, ptrace, seccomp, the memory file
//! and the stub processes. This is the only crate in moat allowed `unsafe`;
//! everything it exports is safe and bounds-checked.

pub mod memfile;
pub mod packet;
pub mod ptrace;
pub mod seccomp;
pub mod stub;
pub mod sys;
pub mod systrap;

pub use memfile::MemoryFile;
pub use ptrace::{user_mode, zeroed_regs, Mode, Regs, StopReason, ThreadSeed, Tracee};
pub use stub::{Flavor, StubFactory, StubProcess, APP_TOP, STUB_BASE};
