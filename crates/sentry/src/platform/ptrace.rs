//! The ptrace platform: each app process is a stub cloned from the source
//! stub; `PTRACE_SYSEMU` traps its syscalls; mappings are injected syscalls.

use std::io;
use std::sync::Arc;

use host::memfile::PAGE;
use host::{MemoryFile, Regs, StopReason, StubFactory, Tracee};

use host::allow;
use host::seccomp::{Rule, When};

use super::{Context, ContextSeed, Event, Kicker, Platform};
use crate::mm::{Layout, MapOp};

/// Memory-file offsets reserved for the stub's code and data pages.
pub const STUB_CODE_OFF: u64 = 0;
pub const STUB_DATA_OFF: u64 = PAGE;
/// The first memory-file offset free for app memory.
pub const FIRST_FREE_OFF: u64 = 2 * PAGE;

/// The host values the ptrace platform's seccomp rules compare with, from
/// the kernel's uapi headers.
pub mod host_abi {
    pub const PTRACE_CONT: u64 = 7;
    pub const PTRACE_GETREGS: u64 = 12;
    pub const PTRACE_SETREGS: u64 = 13;
    pub const PTRACE_SETFPREGS: u64 = 15;
    pub const PTRACE_SYSEMU: u64 = 31;
    pub const PTRACE_SETOPTIONS: u64 = 0x4200;
    pub const PTRACE_GETSIGINFO: u64 = 0x4202;
    pub const PTRACE_GETREGSET: u64 = 0x4204;
    pub const PTRACE_SETREGSET: u64 = 0x4205;
    pub const PTRACE_SEIZE: u64 = 0x4206;
    pub const PTRACE_INTERRUPT: u64 = 0x4207;
    pub const PTRACE_GET_SYSCALL_INFO: u64 = 0x420e;
    pub const SIGABRT: u64 = abi::signal::SIGABRT as u64;
    pub const SIGKILL: u64 = abi::signal::SIGKILL as u64;
    pub const SIGSTOP: u64 = abi::signal::SIGSTOP as u64;
}

use host_abi::*;

/// The host calls the ptrace platform makes, for the Sentry's seccomp filter.
pub static SECCOMP_RULES: &[Rule] = &[
    allow!(PTRACE if When::OneOf { arg: 0, values: &[
        PTRACE_SEIZE, PTRACE_INTERRUPT, PTRACE_SETOPTIONS, PTRACE_CONT, PTRACE_SYSEMU, PTRACE_GETSIGINFO,
        PTRACE_GETREGS, PTRACE_SETREGS, PTRACE_SETFPREGS, PTRACE_GETREGSET, PTRACE_SETREGSET,
        PTRACE_GET_SYSCALL_INFO,
    ] },
        "the platform drives stubs (host::ptrace's requests only); the pid cannot be limited to stubs, so \
         a compromised Sentry may seize any process it could trace: one of its own uid, dumpable, and, \
         in a container, in its PID namespace (the Gofer is not dumpable)"),
    allow!(WAIT4, "the platform waits for stub stops and exits"),
    allow!(TGKILL if When::Any(&[
        When::All(&[When::OnePid { arg: 0 }, When::OneOf { arg: 2, values: &[SIGSTOP] }]),
        When::OwnSignal { arg: 0, signal_arg: 2, signal: SIGABRT },
    ]),
        "SIGSTOP interrupts a stub thread (any positive pid: stubs are not known in advance); SIGABRT is \
         abort() in the Sentry itself"),
    allow!(KILL if When::All(&[When::OnePid { arg: 0 }, When::OneOf { arg: 1, values: &[SIGKILL] }]),
        "SIGKILL ends a stub process with its address space; never a group or every process (pid <= 0), \
         and without capabilities only processes of the Sentry's uid (in a container: of its PID namespace)"),
];

#[derive(Debug)]
pub struct PtracePlatform {
    mem: Arc<MemoryFile>,
    factory: StubFactory,
}

impl PtracePlatform {
    pub fn new(mem: Arc<MemoryFile>) -> io::Result<PtracePlatform> {
        let factory = StubFactory::new(&mem, STUB_CODE_OFF, STUB_DATA_OFF)?;
        Ok(PtracePlatform { mem, factory })
    }
}

impl Platform for PtracePlatform {
    fn layout(&self) -> Layout {
        // The stub's pages sit at the top of the address space.
        Layout { top: host::APP_TOP }
    }

    fn first_free_offset(&self) -> u64 {
        FIRST_FREE_OFF
    }

    fn seccomp_rules(&self) -> &'static [Rule] {
        SECCOMP_RULES
    }

    fn new_context(&self) -> io::Result<Box<dyn Context>> {
        let tracee = self.factory.new_stub(&self.mem)?;
        let memfd = self.mem_fd_in_stub();
        Ok(Box::new(PtraceContext {
            kicker: Arc::new(StubKicker { pid: tracee.pid(), tid: tracee.tid() }),
            tracee,
            memfd,
        }))
    }
}

impl PtracePlatform {
    fn mem_fd_in_stub(&self) -> u64 {
        // The stub keeps the memory file at the number it had in the Sentry.
        std::os::fd::AsRawFd::as_raw_fd(&self.mem.fd()) as u64
    }
}

#[derive(Debug)]
struct StubKicker {
    pid: i32,
    tid: i32,
}

impl Kicker for StubKicker {
    fn kick(&self) {
        let _ = host::sys::tgkill(self.pid, self.tid, libc_sigstop());
    }

    fn host_pid(&self) -> i32 {
        self.pid
    }
}

fn libc_sigstop() -> i32 {
    19
}

#[derive(Debug)]
struct PtraceContext {
    tracee: Tracee,
    memfd: u64,
    kicker: Arc<StubKicker>,
}

const MAP_SHARED_FIXED: u64 = 0x11;

impl PtraceContext {
    fn wrap(tracee: Tracee, memfd: u64) -> Box<dyn Context> {
        Box::new(PtraceContext { kicker: Arc::new(StubKicker { pid: tracee.pid(), tid: tracee.tid() }), tracee, memfd })
    }
}

#[derive(Debug)]
struct PtraceSeed {
    seed: host::ThreadSeed,
    memfd: u64,
}

impl ContextSeed for PtraceSeed {
    fn attach(self: Box<Self>) -> io::Result<Box<dyn Context>> {
        Ok(PtraceContext::wrap(self.seed.attach()?, self.memfd))
    }
}

impl Context for PtraceContext {
    fn switch(&mut self, regs: &mut Regs) -> Event {
        match self.tracee.run(regs) {
            Ok(StopReason::Syscall) => Event::Syscall,
            Ok(StopReason::CompatSyscall) => Event::CompatSyscall,
            Ok(StopReason::Vsyscall { nr }) => Event::Vsyscall { nr, returned: true },
            // A host without vsyscall emulation (vsyscall=none) has no page
            // there: the call faults at the entry itself.
            Ok(StopReason::Signal { signo: 11, addr, .. })
                if addr == regs.rip && abi::x86::vsyscall_at(addr).is_some() =>
            {
                Event::Vsyscall { nr: abi::x86::vsyscall_at(addr).unwrap_or_default(), returned: false }
            }
            Ok(StopReason::Signal { signo, code, addr }) => match signo {
                4 | 5 | 7 | 8 | 11 => Event::Fault { signo, code, addr },
                _ => Event::Interrupted,
            },
            Ok(StopReason::Gone(_)) | Err(_) => Event::Gone,
        }
    }

    fn apply(&mut self, ops: &[MapOp]) -> io::Result<()> {
        for op in ops {
            // The stub's own pages lie above the app's address space: no
            // change ever reaches them, whatever the kernel above asks.
            let (addr, len) = match *op {
                MapOp::Map { addr, len, .. } | MapOp::Unmap { addr, len } => (addr, len),
            };
            if addr.checked_add(len).is_none_or(|end| end > host::APP_TOP) {
                return Err(io::Error::other(format!("a mapping change at {addr:#x}+{len:#x} reaches the stub")));
            }
            let (nr, args) = match *op {
                MapOp::Map { addr, len, prot, off } => {
                    (abi::sysno::MMAP, [addr, len, prot as u64, MAP_SHARED_FIXED, self.memfd, off])
                }
                MapOp::Unmap { addr, len } => (abi::sysno::MUNMAP, [addr, len, 0, 0, 0, 0]),
            };
            let r = self.tracee.inject(nr as i64, args)?;
            if r < 0 && r > -4096 {
                return Err(io::Error::from_raw_os_error(-r as i32));
            }
        }
        Ok(())
    }

    fn fpstate(&self) -> io::Result<Vec<u8>> {
        self.tracee.get_xstate()
    }

    fn set_fpstate(&mut self, state: &[u8]) -> io::Result<()> {
        match <&[u8; 512]>::try_from(state) {
            Ok(fx) => self.tracee.set_fpregs(fx),
            Err(_) => self.tracee.set_xstate(state),
        }
    }

    fn initial_regs(&self) -> io::Result<Regs> {
        let mut r = self.tracee.get_regs()?;
        r.rax = 0;
        r.rbx = 0;
        r.rcx = 0;
        r.rdx = 0;
        r.rsi = 0;
        r.rdi = 0;
        r.rbp = 0;
        r.r8 = 0;
        r.r9 = 0;
        r.r10 = 0;
        r.r11 = 0;
        r.r12 = 0;
        r.r13 = 0;
        r.r14 = 0;
        r.r15 = 0;
        r.fs_base = 0;
        r.gs_base = 0;
        r.eflags = 0x202;
        Ok(r)
    }

    fn kicker(&self) -> Arc<dyn Kicker> {
        self.kicker.clone()
    }

    fn new_thread(&mut self) -> io::Result<Box<dyn ContextSeed>> {
        Ok(Box::new(PtraceSeed { seed: self.tracee.spawn_thread()?, memfd: self.memfd }))
    }
}
