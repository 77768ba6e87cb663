//! Signals: actions, pending sets, default dispositions, and the x86-64
//! `rt_sigframe` built on the app stack and read back by `rt_sigreturn`.

use std::mem::size_of;

use abi::x86::{FxSave, EFLAGS_USER};
use abi::{AsBytes, FromBytes, FromZeroes};

use crate::platform::Regs;

pub use abi::signal::*;

/// The bit for `sig` in a signal set.
pub fn bit(sig: i32) -> u64 {
    1u64 << (sig - 1)
}

/// Signals that can never be blocked, caught or ignored.
pub const UNBLOCKABLE: u64 = (1 << (SIGKILL - 1)) | (1 << (SIGSTOP - 1));

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

impl SigInfo {
    pub fn user(signo: i32, pid: i32) -> SigInfo {
        SigInfo { signo, code: SI_USER, pid, ..Default::default() }
    }

    pub fn kernel(signo: i32) -> SigInfo {
        SigInfo { signo, code: SI_KERNEL, ..Default::default() }
    }

    /// As a signalfd read returns it: `struct signalfd_siginfo`.
    pub fn to_signalfd_bytes(self) -> [u8; 128] {
        let info = SignalfdSigInfo {
            signo: self.signo as u32,
            errno: self.errno,
            code: self.code,
            pid: self.pid as u32,
            uid: self.uid,
            status: self.status,
            // si_value, as both union members Linux copies: the pointer and its low int.
            ptr: self.value,
            int: self.value as i32,
            addr: self.addr,
            ..SignalfdSigInfo::new_zeroed()
        };
        let mut b = [0u8; 128];
        b.copy_from_slice(info.as_bytes());
        b
    }

    /// As the app's `siginfo_t`: which union member holds pid, status,
    /// value or address depends on the signal and `si_code`, as on Linux.
    pub fn to_siginfo(self) -> SignalInfo {
        let (signo, errno, code) = (self.signo, self.errno, self.code);
        let (pid, uid, value) = (self.pid, self.uid, self.value);
        match signo {
            SIGSEGV | SIGBUS | SIGILL | SIGFPE | SIGTRAP if code > 0 => {
                SignalInfo::new(signo, errno, code, SigFault { addr: self.addr })
            }
            SIGCHLD => {
                SignalInfo::new(signo, errno, code, SigChld { pid, uid, status: self.status, ..Default::default() })
            }
            // A timer's id is kept in `pid`: it is si_tid, in pid's place.
            _ if code == SI_TIMER => SignalInfo::new(signo, errno, code, SigTimer { tid: pid, overrun: 0, value }),
            _ if code == SI_QUEUE => SignalInfo::new(signo, errno, code, SigRt { pid, uid, value }),
            _ => SignalInfo::new(signo, errno, code, SigKill { pid, uid }),
        }
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

impl AltStack {
    /// As the app's `stack_t`, with `flags` as the caller reports them.
    pub fn to_stack_t(self, flags: i32) -> SignalStack {
        SignalStack { sp: self.sp, flags, pad: 0, size: self.size }
    }
}

/// The sigcontext of a frame: the registers, the fault, the old mask and
/// where the fpstate is.
fn mcontext(regs: &Regs, fpstate: u64, mask: u64, info: &SigInfo) -> SigContext {
    const X86_TRAP_PF: u64 = 14;
    let fault = matches!(info.signo, SIGSEGV | SIGBUS);
    SigContext {
        r8: regs.r8,
        r9: regs.r9,
        r10: regs.r10,
        r11: regs.r11,
        r12: regs.r12,
        r13: regs.r13,
        r14: regs.r14,
        r15: regs.r15,
        rdi: regs.rdi,
        rsi: regs.rsi,
        rbp: regs.rbp,
        rbx: regs.rbx,
        rdx: regs.rdx,
        rax: regs.rax,
        rcx: regs.rcx,
        rsp: regs.rsp,
        rip: regs.rip,
        eflags: regs.eflags,
        cs: regs.cs as u16,
        gs: regs.gs as u16,
        fs: regs.fs as u16,
        ss: regs.ss as u16,
        err: 0,
        trapno: if fault { X86_TRAP_PF } else { 0 },
        oldmask: mask,
        cr2: if fault { info.addr } else { 0 },
        fpstate,
        reserved: [0; 8],
    }
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
    let fx_size = size_of::<FxSave>();
    if fp.len() > fx_size {
        let xfeatures = u64::read_from_prefix(&fp[fx_size..]).expect("xsave header");
        let mut fx = FxSave::read_from_prefix(&fp).expect("an XSAVE image starts with the FXSAVE one");
        let n = fp.len() as u32;
        let sw = &mut fx.sw_reserved;
        sw.magic1 = FP_XSTATE_MAGIC1;
        sw.extended_size = n + 4;
        sw.xfeatures = xfeatures;
        sw.xstate_size = n;
        fp[..fx_size].copy_from_slice(fx.as_bytes());
        fp.extend_from_slice(FP_XSTATE_MAGIC2.as_bytes());
    }
    let fp_addr = stack_top.wrapping_sub(fp.len() as u64) & !63;
    let sp = (fp_addr.wrapping_sub(size_of::<RtSigFrame>() as u64) & !15).wrapping_sub(8);
    let frame = RtSigFrame {
        pretcode: act.restorer,
        uc: UContext {
            flags: 0,
            link: 0,
            stack: alt.to_stack_t(alt.flags),
            mcontext: mcontext(regs, fp_addr, old_mask, info),
            sigmask: old_mask,
        },
        info: info.to_siginfo(),
    };
    let mut b = vec![0u8; stack_top.wrapping_sub(sp) as usize];
    b[..size_of::<RtSigFrame>()].copy_from_slice(frame.as_bytes());
    let at = fp_addr.wrapping_sub(sp) as usize;
    b[at..at + fp.len()].copy_from_slice(&fp);
    Frame { sp, bytes: b }
}

/// Where the handler finds siginfo and ucontext for a frame at `sp`.
pub fn frame_args(sp: u64) -> (u64, u64) {
    let at = |offset: usize| sp + offset as u64;
    (at(std::mem::offset_of!(RtSigFrame, info)), at(std::mem::offset_of!(RtSigFrame, uc)))
}

/// Restores registers from the ucontext of the frame whose `pretcode` was
/// popped (so `rsp` pointed at the ucontext); returns its mask and fpstate address.
pub fn parse_sigreturn(uc: &UContext, regs: &mut Regs) -> (u64, u64) {
    let m = &uc.mcontext;
    regs.r8 = m.r8;
    regs.r9 = m.r9;
    regs.r10 = m.r10;
    regs.r11 = m.r11;
    regs.r12 = m.r12;
    regs.r13 = m.r13;
    regs.r14 = m.r14;
    regs.r15 = m.r15;
    regs.rdi = m.rdi;
    regs.rsi = m.rsi;
    regs.rbp = m.rbp;
    regs.rbx = m.rbx;
    regs.rdx = m.rdx;
    regs.rax = m.rax;
    regs.rcx = m.rcx;
    regs.rsp = m.rsp;
    regs.rip = m.rip;
    // Only the user-changeable flags come from the app.
    regs.eflags = (regs.eflags & !EFLAGS_USER) | (m.eflags & EFLAGS_USER);
    (uc.sigmask, m.fpstate)
}

/// How many bytes of fpstate a frame holds, from its software-reserved bytes: the full
/// XSAVE size if the magic numbers are intact, else the 512-byte FXSAVE image.
pub fn fpstate_size(fx: &FxSave) -> usize {
    let sw = &fx.sw_reserved;
    let size = sw.xstate_size as usize;
    if sw.magic1 == FP_XSTATE_MAGIC1 && (576..=16384).contains(&size) {
        size
    } else {
        size_of::<FxSave>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regs() -> Regs {
        Regs {
            r15: 15,
            r14: 14,
            r13: 13,
            r12: 12,
            rbp: 0xb9,
            rbx: 0xb8,
            r11: 11,
            r10: 10,
            r9: 9,
            r8: 8,
            rax: 0xa0,
            rcx: 0xc0,
            rdx: 0xd0,
            rsi: 0x51,
            rdi: 0xd1,
            orig_rax: 0,
            rip: 0x40_1000,
            cs: 0x33,
            eflags: 0x246,
            rsp: 0x7fff_0000,
            ss: 0x2b,
            fs_base: 0,
            gs_base: 0,
            ds: 0,
            es: 0,
            fs: 0,
            gs: 0,
        }
    }

    fn word(b: &[u8], at: usize) -> u64 {
        u64::read_from_prefix(&b[at..]).expect("8 bytes")
    }

    /// The offsets are Linux's rt_sigframe on x86-64, written out: pretcode,
    /// then the ucontext at 8 (uc_stack at +16, uc_mcontext at +40,
    /// uc_sigmask at +296), then the siginfo at 312.
    #[test]
    fn frame_fields_sit_where_linux_puts_them_and_sigreturn_reads_them_back() {
        let act = SigAction { handler: 0x40_2000, flags: SA_RESTORER, restorer: 0x40_3000, mask: 0 };
        let alt = AltStack { sp: 0x6000_0000, flags: 0, size: 0x4000 };
        let info = SigInfo { signo: SIGSEGV, code: SEGV_MAPERR, addr: 0xdead_0000, ..Default::default() };
        let regs = regs();
        let top = 0x7fff_0000 - 128;
        let frame = build_frame(top, &regs, &[0u8; 512], 0x55, &info, &act, &alt);
        let b = &frame.bytes;
        assert_eq!(frame.sp % 16, 8, "as after a call");
        assert_eq!(word(b, 0), 0x40_3000, "pretcode");
        assert_eq!((word(b, 24), word(b, 40)), (0x6000_0000, 0x4000), "uc_stack");
        let mcontext = 48;
        assert_eq!(word(b, mcontext), 8, "r8");
        assert_eq!(word(b, mcontext + 13 * 8), 0xa0, "rax");
        assert_eq!(word(b, mcontext + 16 * 8), 0x40_1000, "rip");
        assert_eq!(word(b, mcontext + 18 * 8), 0x2b_0000_0000_0033, "cs, gs, fs, ss");
        assert_eq!(word(b, mcontext + 20 * 8), 14, "trapno: page fault");
        assert_eq!(word(b, mcontext + 22 * 8), 0xdead_0000, "cr2");
        let fpstate = word(b, mcontext + 23 * 8);
        assert_eq!(fpstate % 64, 0, "fpstate is 64-byte aligned");
        assert!(fpstate > frame.sp + 440 && fpstate + 512 <= top);
        assert_eq!(word(b, 304), 0x55, "uc_sigmask");
        assert_eq!(word(b, 312) as u32 as i32, SIGSEGV, "si_signo");
        assert_eq!(word(b, 328), 0xdead_0000, "si_addr");
        assert_eq!(frame_args(frame.sp), (frame.sp + 312, frame.sp + 8));

        let uc = UContext::read_from_prefix(&b[8..]).expect("a ucontext");
        let mut back = regs;
        (back.rax, back.rip, back.r8) = (0, 0, 0);
        assert_eq!(parse_sigreturn(&uc, &mut back), (0x55, fpstate));
        assert_eq!((back.rax, back.rip, back.r8), (0xa0, 0x40_1000, 8));
    }

    /// Each field lands where `struct signalfd_siginfo` has it (the abi
    /// struct's offsets are checked against libc's).
    #[test]
    fn signalfd_fields_sit_at_their_signalfd_siginfo_offsets() {
        let read = |i: SigInfo| SignalfdSigInfo::read_from(&i.to_signalfd_bytes()[..]).expect("128 bytes");
        let child = SigInfo { signo: SIGCHLD, code: CLD_EXITED, pid: 7, uid: 1000, status: 3, ..Default::default() };
        let s = read(child);
        assert_eq!((s.signo, s.code, s.pid, s.uid, s.status), (17, CLD_EXITED, 7, 1000, 3));
        let queued = SigInfo { signo: 40, code: SI_QUEUE, pid: 7, value: 0x1_0000_0042, ..Default::default() };
        let s = read(queued);
        assert_eq!((s.ptr, s.int), (0x1_0000_0042, 0x42));
        let fault = SigInfo { signo: SIGSEGV, code: SEGV_MAPERR, addr: 0xdead_0000, ..Default::default() };
        assert_eq!(read(fault).addr, 0xdead_0000);
    }
}
