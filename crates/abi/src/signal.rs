//! Signals of the x86-64 ABI: numbers, `sigaction` and its flags, `siginfo_t`
//! and `si_code` values, `stack_t`, `sigevent`, and the `rt_sigframe` layout.

use core::mem::size_of;

use zerocopy::{AsBytes, FromBytes, FromZeroes};

pub const SIGHUP: i32 = 1;
pub const SIGINT: i32 = 2;
pub const SIGQUIT: i32 = 3;
pub const SIGILL: i32 = 4;
pub const SIGTRAP: i32 = 5;
pub const SIGABRT: i32 = 6;
pub const SIGBUS: i32 = 7;
pub const SIGFPE: i32 = 8;
pub const SIGKILL: i32 = 9;
pub const SIGSEGV: i32 = 11;
pub const SIGPIPE: i32 = 13;
pub const SIGALRM: i32 = 14;
pub const SIGTERM: i32 = 15;
pub const SIGCHLD: i32 = 17;
pub const SIGCONT: i32 = 18;
pub const SIGSTOP: i32 = 19;
pub const SIGTSTP: i32 = 20;
pub const SIGTTIN: i32 = 21;
pub const SIGTTOU: i32 = 22;
pub const SIGURG: i32 = 23;
pub const SIGXCPU: i32 = 24;
pub const SIGXFSZ: i32 = 25;
pub const SIGWINCH: i32 = 28;
pub const SIGSYS: i32 = 31;
pub const NSIG: i32 = 64;

pub const SIG_DFL: u64 = 0;
pub const SIG_IGN: u64 = 1;

pub const SA_NOCLDSTOP: u64 = 1;
pub const SA_NOCLDWAIT: u64 = 2;
pub const SA_SIGINFO: u64 = 4;
pub const SA_RESTORER: u64 = 0x0400_0000;
pub const SA_ONSTACK: u64 = 0x0800_0000;
pub const SA_RESTART: u64 = 0x1000_0000;
pub const SA_NODEFER: u64 = 0x4000_0000;
pub const SA_RESETHAND: u64 = 0x8000_0000;

/// The size of the kernel's `sigset_t`: one bit per signal.
pub const SIGSET_SIZE: usize = 8;

/// `rt_sigprocmask`'s `how`.
pub const SIG_BLOCK: u32 = 0;
pub const SIG_UNBLOCK: u32 = 1;
pub const SIG_SETMASK: u32 = 2;

pub const SI_USER: i32 = 0;
pub const SI_KERNEL: i32 = 0x80;
pub const SI_QUEUE: i32 = -1;
pub const SI_TIMER: i32 = -2;
pub const SI_TKILL: i32 = -6;
pub const SEGV_MAPERR: i32 = 1;
pub const SEGV_ACCERR: i32 = 2;
pub const BUS_ADRERR: i32 = 2;
pub const CLD_EXITED: i32 = 1;
pub const CLD_KILLED: i32 = 2;
pub const CLD_DUMPED: i32 = 3;
pub const CLD_STOPPED: i32 = 5;
pub const CLD_CONTINUED: i32 = 6;

/// `stack_t` flags: the task runs on the stack / the stack is off.
pub const SS_ONSTACK: i32 = 1;
pub const SS_DISABLE: i32 = 2;
/// The smallest alternate stack `sigaltstack` takes.
pub const MINSIGSTKSZ: u64 = 2048;

/// `sigevent.sigev_notify`: how a timer tells the process it expired.
pub const SIGEV_SIGNAL: i32 = 0;
pub const SIGEV_NONE: i32 = 1;
pub const SIGEV_THREAD: i32 = 2;
pub const SIGEV_THREAD_ID: i32 = 4;

/// The first magic number of the fpstate software-reserved bytes: an
/// XSAVE image (not a bare FXSAVE one) follows.
pub const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;
/// The magic number right after an XSAVE image in a signal frame.
pub const FP_XSTATE_MAGIC2: u32 = 0x4650_5845;

/// The kernel's `struct sigaction` (rt_sigaction), not libc's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromZeroes, FromBytes, AsBytes)]
#[repr(C)]
pub struct SigAction {
    /// SIG_DFL, SIG_IGN or the handler's address.
    pub handler: u64,
    /// `SA_*`.
    pub flags: u64,
    pub restorer: u64,
    /// Signals blocked while the handler runs.
    pub mask: u64,
}
const _: () = assert!(size_of::<SigAction>() == 32);

/// C `stack_t` (sigaltstack, and `uc_stack` of a signal frame).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromZeroes, FromBytes, AsBytes)]
#[repr(C)]
pub struct SignalStack {
    pub sp: u64,
    /// `SS_*`.
    pub flags: i32,
    pub pad: u32,
    pub size: u64,
}
const _: () = assert!(size_of::<SignalStack>() == 24);

/// C `siginfo_t`: three ints, then the `_sifields` union, whose member
/// depends on the signal and `si_code` (see [`SigFields`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromZeroes, FromBytes, AsBytes)]
#[repr(C)]
pub struct SignalInfo {
    pub signo: i32,
    pub errno: i32,
    pub code: i32,
    pub pad: i32,
    fields: [u64; 14],
}
const _: () = assert!(size_of::<SignalInfo>() == 128);

impl SignalInfo {
    /// A siginfo with the union member `fields`, the rest zero.
    pub fn new<F: SigFields>(signo: i32, errno: i32, code: i32, fields: F) -> SignalInfo {
        let mut info = SignalInfo { signo, errno, code, pad: 0, fields: [0; 14] };
        info.fields.as_bytes_mut()[..size_of::<F>()].copy_from_slice(fields.as_bytes());
        info
    }

    /// The union read as member `F`.
    pub fn fields<F: SigFields>(&self) -> F {
        F::read_from_prefix(self.fields.as_bytes()).expect("every SigFields member fits the union")
    }
}

/// A member of siginfo's `_sifields` union: at most its 112 bytes.
pub trait SigFields: AsBytes + FromBytes {}

/// `_kill`: a signal sent by kill/tgkill.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromZeroes, FromBytes, AsBytes)]
#[repr(C)]
pub struct SigKill {
    pub pid: i32,
    pub uid: u32,
}

/// `_timer`: a POSIX timer's expiry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromZeroes, FromBytes, AsBytes)]
#[repr(C)]
pub struct SigTimer {
    /// The timer id.
    pub tid: i32,
    pub overrun: i32,
    /// `sigev_value`.
    pub value: u64,
}

/// `_rt`: a signal sent by sigqueue (SI_QUEUE).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromZeroes, FromBytes, AsBytes)]
#[repr(C)]
pub struct SigRt {
    pub pid: i32,
    pub uid: u32,
    /// `si_value`.
    pub value: u64,
}

/// `_sigchld`: a child's change of state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromZeroes, FromBytes, AsBytes)]
#[repr(C)]
pub struct SigChld {
    pub pid: i32,
    pub uid: u32,
    /// Exit code or signal number, as `si_code` says.
    pub status: i32,
    pub pad: i32,
    pub utime: i64,
    pub stime: i64,
}

/// `_sigfault`: a fault (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromZeroes, FromBytes, AsBytes)]
#[repr(C)]
pub struct SigFault {
    pub addr: u64,
}

impl SigFields for SigKill {}
impl SigFields for SigTimer {}
impl SigFields for SigRt {}
impl SigFields for SigChld {}
impl SigFields for SigFault {}
const _: () = assert!(size_of::<SigKill>() == 8 && size_of::<SigTimer>() == 16 && size_of::<SigRt>() == 16);
const _: () = assert!(size_of::<SigChld>() == 32 && size_of::<SigFault>() == 8);

/// C `struct signalfd_siginfo`: what a read of a signalfd returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromZeroes, FromBytes, AsBytes)]
#[repr(C)]
pub struct SignalfdSigInfo {
    pub signo: u32,
    pub errno: i32,
    pub code: i32,
    pub pid: u32,
    pub uid: u32,
    pub fd: i32,
    pub tid: u32,
    pub band: u32,
    pub overrun: u32,
    pub trapno: u32,
    pub status: i32,
    pub int: i32,
    pub ptr: u64,
    pub utime: u64,
    pub stime: u64,
    pub addr: u64,
    pub addr_lsb: u16,
    pub pad2: u16,
    pub syscall: i32,
    pub call_addr: u64,
    pub arch: u32,
    pub pad: [u8; 28],
}
const _: () = assert!(size_of::<SignalfdSigInfo>() == 128);

/// C `struct sigevent` (timer_create): how a timer notifies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromZeroes, FromBytes, AsBytes)]
#[repr(C)]
pub struct SigEvent {
    /// `sigev_value`, passed in the signal's siginfo.
    pub value: u64,
    pub signo: i32,
    /// `SIGEV_*`.
    pub notify: i32,
    /// The thread to signal, with SIGEV_THREAD_ID.
    pub tid: i32,
    pub pad: [i32; 11],
}
const _: () = assert!(size_of::<SigEvent>() == 64);

/// C `struct sigcontext` (x86-64): the registers a handler's `ucontext`
/// holds and `rt_sigreturn` restores.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromZeroes, FromBytes, AsBytes)]
#[repr(C)]
pub struct SigContext {
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rbp: u64,
    pub rbx: u64,
    pub rdx: u64,
    pub rax: u64,
    pub rcx: u64,
    pub rsp: u64,
    pub rip: u64,
    pub eflags: u64,
    pub cs: u16,
    pub gs: u16,
    pub fs: u16,
    pub ss: u16,
    pub err: u64,
    pub trapno: u64,
    pub oldmask: u64,
    pub cr2: u64,
    /// The address of the frame's FXSAVE (and XSAVE) image; 0 for none.
    pub fpstate: u64,
    pub reserved: [u64; 8],
}
const _: () = assert!(size_of::<SigContext>() == 256);

/// The kernel's `struct ucontext` (x86-64): what a handler's third argument
/// points at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromZeroes, FromBytes, AsBytes)]
#[repr(C)]
pub struct UContext {
    pub flags: u64,
    pub link: u64,
    pub stack: SignalStack,
    pub mcontext: SigContext,
    pub sigmask: u64,
}
const _: () = assert!(size_of::<UContext>() == 304);

/// The kernel's `struct rt_sigframe` (x86-64), at the stack pointer a
/// handler starts with; the fpstate follows it, 64-byte aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromZeroes, FromBytes, AsBytes)]
#[repr(C)]
pub struct RtSigFrame {
    /// Where the handler returns to: `sa_restorer`, which calls rt_sigreturn.
    pub pretcode: u64,
    pub uc: UContext,
    pub info: SignalInfo,
}
const _: () = assert!(size_of::<RtSigFrame>() == 440);
