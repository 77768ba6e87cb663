//! Signals: actions, pending sets, default dispositions, and the x86-64
//! `rt_sigframe` built on the app stack and read back by `rt_sigreturn`.

use abi::Errno;

use crate::platform::Regs;
use crate::SysResult;

pub use abi::signal::*;

/// The bit for `sig` in a signal set.
pub fn bit(sig: i32) -> u64 {
    1u64 << (sig - 1)
}

/// Signals that can never be blocked, caught or ignored.
pub const UNBLOCKABLE: u64 = (1 << (SIGKILL - 1)) | (1 << (SIGSTOP - 1));

/// A signal's disposition (the kernel's `struct sigaction` on x86-64).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SigAction {
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}

impl SigAction {
    pub fn from_bytes(b: &[u8; 32]) -> SigAction {
        let f = |i: usize| u64::from_ne_bytes(b[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
        SigAction { handler: f(0), flags: f(1), restorer: f(2), mask: f(3) }
    }

    pub fn to_bytes(self) -> [u8; 32] {
        let mut b = [0u8; 32];
        for (i, v) in [self.handler, self.flags, self.restorer, self.mask].into_iter().enumerate() {
            b[i * 8..i * 8 + 8].copy_from_slice(&v.to_ne_bytes());
        }
        b
    }
}

/// What happens to a signal with SIG_DFL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultAction {
    Terminate,
    CoreDump,
    Ignore,
    Stop,
    Continue,
}

pub fn default_action(sig: i32) -> DefaultAction {
    match sig {
        SIGCHLD | SIGURG | SIGWINCH => DefaultAction::Ignore,
        SIGCONT => DefaultAction::Continue,
        SIGSTOP | SIGTSTP | SIGTTIN | SIGTTOU => DefaultAction::Stop,
        SIGQUIT | SIGILL | SIGTRAP | SIGABRT | SIGBUS | SIGFPE | SIGSEGV | SIGXCPU | SIGXFSZ | SIGSYS => {
            DefaultAction::CoreDump
        }
        _ => DefaultAction::Terminate,
    }
}

/// A queued signal with the siginfo fields moat fills in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SigInfo {
    pub signo: i32,
    pub code: i32,
    pub errno: i32,
    /// Sender pid (kill), or child pid (SIGCHLD).
    pub pid: i32,
    pub uid: u32,
    /// Child exit status (SIGCHLD) or fault address (SIGSEGV...).
    pub status: i32,
    pub addr: u64,
    /// sigqueue's value (si_value), for SI_QUEUE signals.
    pub value: u64,
}

pub const SI_QUEUE: i32 = -1;
pub const SI_TIMER: i32 = -2;

impl SigInfo {
    pub fn user(signo: i32, pid: i32) -> SigInfo {
        SigInfo { signo, code: SI_USER, pid, ..Default::default() }
    }

    pub fn kernel(signo: i32) -> SigInfo {
        SigInfo { signo, code: SI_KERNEL, ..Default::default() }
    }

    /// The 128-byte `signalfd_siginfo` layout.
    pub fn to_signalfd_bytes(self) -> [u8; 128] {
        let mut b = [0u8; 128];
        b[0..4].copy_from_slice(&(self.signo as u32).to_ne_bytes());
        b[4..8].copy_from_slice(&self.errno.to_ne_bytes());
        b[8..12].copy_from_slice(&self.code.to_ne_bytes());
        b[12..16].copy_from_slice(&(self.pid as u32).to_ne_bytes());
        b[16..20].copy_from_slice(&self.uid.to_ne_bytes());
        b[48..52].copy_from_slice(&self.status.to_ne_bytes());
        b[72..80].copy_from_slice(&self.value.to_ne_bytes());
        b[80..88].copy_from_slice(&self.addr.to_ne_bytes());
        b
    }

    /// The 128-byte `siginfo_t` layout.
    pub fn to_bytes(self) -> [u8; 128] {
        let mut b = [0u8; 128];
        b[0..4].copy_from_slice(&self.signo.to_ne_bytes());
        b[4..8].copy_from_slice(&self.errno.to_ne_bytes());
        b[8..12].copy_from_slice(&self.code.to_ne_bytes());
        match self.signo {
            SIGSEGV | SIGBUS | SIGILL | SIGFPE | SIGTRAP if self.code > 0 => {
                b[16..24].copy_from_slice(&self.addr.to_ne_bytes());
            }
            _ => {
                b[16..20].copy_from_slice(&self.pid.to_ne_bytes());
                b[20..24].copy_from_slice(&self.uid.to_ne_bytes());
                if self.signo == SIGCHLD {
                    b[24..28].copy_from_slice(&self.status.to_ne_bytes());
                } else if self.code == SI_QUEUE || self.code == SI_TIMER {
                    // SI_TIMER: si_tid (the timer id, in pid's place) and si_overrun (0)
                    // come before si_value, where sigqueue's pid/uid are.
                    if self.code == SI_TIMER {
                        b[20..24].copy_from_slice(&0u32.to_ne_bytes());
                    }
                    b[24..32].copy_from_slice(&self.value.to_ne_bytes());
                }
            }
        }
        b
    }
}

/// Signals waiting for delivery: standard signals coalesce, each queued once.
#[derive(Debug, Clone, Default)]
pub struct PendingSignals {
    queue: Vec<SigInfo>,
}

impl PendingSignals {
    pub fn set(&self) -> u64 {
        self.queue.iter().fold(0, |acc, s| acc | bit(s.signo))
    }

    pub fn push(&mut self, info: SigInfo) {
        if info.signo < 32 && self.set() & bit(info.signo) != 0 {
            return;
        }
        self.queue.push(info);
    }

    /// Takes the lowest-numbered pending signal not in `blocked`.
    pub fn take(&mut self, blocked: u64) -> Option<SigInfo> {
        let deliverable = self.set() & !(blocked & !UNBLOCKABLE);
        if deliverable == 0 {
            return None;
        }
        let sig = deliverable.trailing_zeros() as i32 + 1;
        let i = self.queue.iter().position(|s| s.signo == sig)?;
        Some(self.queue.remove(i))
    }

    /// Takes the lowest-numbered pending signal that is in `set` (sigtimedwait, signalfd),
    /// whether or not it is blocked.
    pub fn take_in(&mut self, set: u64) -> Option<SigInfo> {
        self.take(!set)
    }

    /// Drops pending stop signals (a SIGCONT arrived).
    pub fn remove_stops(&mut self) {
        self.queue.retain(|s| default_action(s.signo) != DefaultAction::Stop);
    }

    pub fn remove(&mut self, sig: i32) {
        self.queue.retain(|s| s.signo != sig);
    }
}

/// An alternate signal stack (sigaltstack).
#[derive(Debug, Clone, Copy, Default)]
pub struct AltStack {
    pub sp: u64,
    pub flags: i32,
    pub size: u64,
}

pub const SS_ONSTACK: i32 = 1;
pub const SS_DISABLE: i32 = 2;

// rt_sigframe layout (x86-64): pretcode(8) | ucontext | siginfo(128) | fpstate(512, 64-aligned).
const UC_FLAGS: u64 = 0;
const UC_STACK: u64 = 16;
const UC_MCONTEXT: u64 = 40;
const UC_SIGMASK: u64 = UC_MCONTEXT + 256;
const UC_SIZE: u64 = UC_SIGMASK + 8;
const FRAME_UC: u64 = 8;
const FRAME_INFO: u64 = FRAME_UC + UC_SIZE;
const FRAME_SIZE: u64 = FRAME_INFO + 128;

/// The sigcontext register order.
fn mcontext(regs: &Regs, fpstate: u64, mask: u64, info: &SigInfo) -> [u64; 32] {
    let mut m = [0u64; 32];
    m[0] = regs.r8;
    m[1] = regs.r9;
    m[2] = regs.r10;
    m[3] = regs.r11;
    m[4] = regs.r12;
    m[5] = regs.r13;
    m[6] = regs.r14;
    m[7] = regs.r15;
    m[8] = regs.rdi;
    m[9] = regs.rsi;
    m[10] = regs.rbp;
    m[11] = regs.rbx;
    m[12] = regs.rdx;
    m[13] = regs.rax;
    m[14] = regs.rcx;
    m[15] = regs.rsp;
    m[16] = regs.rip;
    m[17] = regs.eflags;
    // cs, gs, fs, ss packed as four u16.
    m[18] = (regs.cs & 0xffff) | ((regs.gs & 0xffff) << 16) | ((regs.fs & 0xffff) << 32) | ((regs.ss & 0xffff) << 48);
    m[19] = 0; // err
    m[20] = if matches!(info.signo, SIGSEGV | SIGBUS) { 14 } else { 0 }; // trapno
    m[21] = mask; // oldmask
    m[22] = if matches!(info.signo, SIGSEGV | SIGBUS) { info.addr } else { 0 }; // cr2
    m[23] = fpstate;
    m
}

/// A built signal frame: bytes to write at `sp`, and the fpstate position in it.
#[derive(Debug)]
pub struct Frame {
    pub sp: u64,
    pub bytes: Vec<u8>,
}

/// Lays out an rt_sigframe below `stack_top` for a handler.
pub fn build_frame(
    stack_top: u64,
    regs: &Regs,
    xstate: &[u8],
    old_mask: u64,
    info: &SigInfo,
    act: &SigAction,
    alt: &AltStack,
) -> Frame {
    // fpstate first (highest), 64-byte aligned, then the frame below it.
    // Wrapping: a hostile rsp just yields a frame address that fails to copy out (EFAULT).
    // The XSAVE area, with Linux's software-reserved bytes describing it and MAGIC2 after
    // it, so that the app (and our sigreturn) can tell how much state there is.
    let mut fp = xstate.to_vec();
    if fp.len() > 512 {
        let xfeatures = u64::from_ne_bytes(fp[512..520].try_into().expect("xsave header"));
        let n = fp.len() as u32;
        fp[464..468].copy_from_slice(&FP_XSTATE_MAGIC1.to_ne_bytes());
        fp[468..472].copy_from_slice(&(n + 4).to_ne_bytes());
        fp[472..480].copy_from_slice(&xfeatures.to_ne_bytes());
        fp[480..484].copy_from_slice(&n.to_ne_bytes());
        fp.extend_from_slice(&FP_XSTATE_MAGIC2.to_ne_bytes());
    }
    let fp_addr = stack_top.wrapping_sub(fp.len() as u64) & !63;
    let sp = (fp_addr.wrapping_sub(FRAME_SIZE) & !15).wrapping_sub(8);
    let total = stack_top.wrapping_sub(sp) as usize;
    let mut b = vec![0u8; total];
    let put = |b: &mut Vec<u8>, at: u64, v: &[u8]| {
        let i = at.wrapping_sub(sp) as usize;
        b[i..i + v.len()].copy_from_slice(v);
    };
    put(&mut b, sp, &act.restorer.to_ne_bytes());
    let uc = sp + FRAME_UC;
    put(&mut b, uc + UC_FLAGS, &0u64.to_ne_bytes());
    put(&mut b, uc + UC_STACK, &alt.sp.to_ne_bytes());
    put(&mut b, uc + UC_STACK + 8, &(alt.flags as u64).to_ne_bytes());
    put(&mut b, uc + UC_STACK + 16, &alt.size.to_ne_bytes());
    let m = mcontext(regs, fp_addr, old_mask, info);
    let mbytes: Vec<u8> = m.iter().flat_map(|v| v.to_ne_bytes()).collect();
    put(&mut b, uc + UC_MCONTEXT, &mbytes);
    put(&mut b, uc + UC_SIGMASK, &old_mask.to_ne_bytes());
    put(&mut b, sp + FRAME_INFO, &info.to_bytes());
    put(&mut b, fp_addr, &fp);
    Frame { sp, bytes: b }
}

/// Where the handler finds siginfo and ucontext for a frame at `sp`.
pub fn frame_args(sp: u64) -> (u64, u64) {
    (sp + FRAME_INFO, sp + FRAME_UC)
}

/// Restores registers, mask and fpstate address from the ucontext of the frame whose
/// `pretcode` was popped (so `rsp` now points at the ucontext).
pub fn parse_sigreturn(uc_bytes: &[u8], regs: &mut Regs) -> SysResult<(u64, u64)> {
    if uc_bytes.len() < UC_SIZE as usize {
        return Err(Errno::EFAULT);
    }
    let g = |i: usize| {
        let o = UC_MCONTEXT as usize + i * 8;
        u64::from_ne_bytes(uc_bytes[o..o + 8].try_into().expect("8 bytes"))
    };
    regs.r8 = g(0);
    regs.r9 = g(1);
    regs.r10 = g(2);
    regs.r11 = g(3);
    regs.r12 = g(4);
    regs.r13 = g(5);
    regs.r14 = g(6);
    regs.r15 = g(7);
    regs.rdi = g(8);
    regs.rsi = g(9);
    regs.rbp = g(10);
    regs.rbx = g(11);
    regs.rdx = g(12);
    regs.rax = g(13);
    regs.rcx = g(14);
    regs.rsp = g(15);
    regs.rip = g(16);
    // Only the user-changeable flags (CF PF AF ZF SF TF DF OF, AC, RF) come from the app.
    const FIX: u64 = 0x1 | 0x4 | 0x10 | 0x40 | 0x80 | 0x100 | 0x400 | 0x800 | 0x40000 | 0x10000;
    regs.eflags = (regs.eflags & !FIX) | (g(17) & FIX);
    let fpstate = g(23);
    let o = UC_SIGMASK as usize;
    let mask = u64::from_ne_bytes(uc_bytes[o..o + 8].try_into().expect("8 bytes"));
    Ok((mask, fpstate))
}

pub const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;
pub const FP_XSTATE_MAGIC2: u32 = 0x4650_5845;

/// How many bytes of fpstate a frame holds, from its software-reserved bytes: the full
/// XSAVE size if the magic numbers are intact, else the 512-byte FXSAVE image.
pub fn fpstate_size(fx: &[u8; 512]) -> usize {
    let magic = u32::from_ne_bytes(fx[464..468].try_into().expect("4 bytes"));
    let size = u32::from_ne_bytes(fx[480..484].try_into().expect("4 bytes")) as usize;
    if magic == FP_XSTATE_MAGIC1 && (576..=16384).contains(&size) {
        size
    } else {
        512
    }
}

/// Size of the ucontext to read back at sigreturn.
pub const UCONTEXT_SIZE: usize = UC_SIZE as usize;
