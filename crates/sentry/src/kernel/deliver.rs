//! Signals on their way to the app: sending to a process or thread, and
//! delivering them (default actions, handler frames, rt_sigreturn).

use std::mem::size_of;
use std::sync::Arc;

use abi::signal::UContext;
use abi::x86::{FxSave, MXCSR_FEATURE_MASK};
use abi::{Errno, FromBytes};

use super::exit::job_control;
use super::signal::{self, DefaultAction, SigAction, SigInfo};
use super::task::{signaled, Task, ThreadGroup};
use super::CurrentTask;
use crate::{Restart, SysResult};

/// Whether the sandbox's init drops `sig` sent to it from inside the
/// sandbox (every sender in it is): as Linux's SIGNAL_UNKILLABLE, pid 1 of a
/// PID namespace takes no signal from inside whose action is the default,
/// SIGKILL included, unless one of `receivers` blocks it (then it stays
/// pending, for a handler installed later). Checked at sending, so `kill`,
/// `raise` (tgkill), sigqueue and a terminal's ^C all see the same rule.
pub fn init_drops(tg: &ThreadGroup, sig: i32, receivers: &[Arc<Task>]) -> bool {
    if tg.pid != 1 || !(1..=signal::NSIG).contains(&sig) {
        return false;
    }
    let default = tg.sig.lock().unwrap().actions[(sig - 1) as usize].handler == signal::SIG_DFL;
    default && !receivers.iter().any(|t| t.sig.lock().unwrap().mask & signal::bit(sig) != 0)
}

/// Sends a signal to a process: queued process-wide, one thread woken.
pub fn send_to_group(tg: &Arc<ThreadGroup>, info: SigInfo) {
    let sig = info.signo;
    if sig == signal::SIGKILL {
        tg.begin_exit(signaled(sig, false));
        job_control(tg, None);
        return;
    }
    if sig == signal::SIGCONT {
        // Continuing happens at sending time, whatever the signal's disposition.
        tg.sig.lock().unwrap().pending.remove_stops();
        for t in tg.threads() {
            t.sig.lock().unwrap().pending.remove_stops();
        }
        job_control(tg, None);
    } else if signal::default_action(sig) == DefaultAction::Stop {
        tg.sig.lock().unwrap().pending.remove(signal::SIGCONT);
    }
    let threads = tg.threads();
    // Masks are read before the process's signal lock is taken: the lock order is
    // Task::sig before ThreadGroup::sig.
    let masks: Vec<u64> = threads.iter().map(|t| t.sig.lock().unwrap().mask).collect();
    let blocked_everywhere = !masks.is_empty() && masks.iter().all(|m| m & signal::bit(sig) != 0);
    {
        let mut gs = tg.sig.lock().unwrap();
        let act = gs.actions[(sig - 1) as usize];
        if is_ignored(&act, sig) && !blocked_everywhere {
            return;
        }
        gs.pending.push(info);
    }
    let target =
        threads.iter().zip(&masks).find(|(_, m)| *m & signal::bit(sig) == 0).map(|(t, _)| t).or(threads.first());
    if let Some(t) = target {
        t.interrupt();
    }
}

/// Sends a signal to one thread.
pub fn send_to_task(t: &Arc<Task>, info: SigInfo) {
    let sig = info.signo;
    if sig == signal::SIGKILL {
        t.tg.begin_exit(signaled(sig, false));
        return;
    }
    {
        let act = t.tg.sig.lock().unwrap().actions[(sig - 1) as usize];
        let mut ts = t.sig.lock().unwrap();
        if is_ignored(&act, sig) && ts.mask & signal::bit(sig) == 0 {
            return;
        }
        ts.pending.push(info);
    }
    t.interrupt();
}

/// Whether a signal would be discarded at once: SIG_IGN, or a default action of ignoring.
/// Stop signals are not: they stop the process (SIGSTOP even when "ignored").
fn is_ignored(act: &SigAction, sig: i32) -> bool {
    sig != signal::SIGSTOP
        && (act.handler == signal::SIG_IGN
            || (act.handler == signal::SIG_DFL
                && matches!(signal::default_action(sig), DefaultAction::Ignore | DefaultAction::Continue)))
}

impl CurrentTask {
    /// Delivers pending signals: default actions, or handler frames on the app stack.
    pub(super) fn deliver_signals(&mut self) {
        loop {
            let info = {
                let mut ts = self.task.sig.lock().unwrap();
                let mask = ts.mask;
                match ts.pending.take(mask) {
                    Some(i) => Some(i),
                    None => self.tg().sig.lock().unwrap().pending.take(mask),
                }
            };
            let Some(info) = info else { break };
            let sig = info.signo;
            let act = self.tg().sig.lock().unwrap().actions[(sig - 1) as usize];
            if act.handler == signal::SIG_IGN {
                continue;
            }
            if act.handler == signal::SIG_DFL {
                match signal::default_action(sig) {
                    DefaultAction::Ignore | DefaultAction::Continue => continue,
                    DefaultAction::Stop => {
                        job_control(self.tg(), Some(sig));
                        continue;
                    }
                    DefaultAction::Terminate => {
                        self.tg().begin_exit(signaled(sig, false));
                        return;
                    }
                    DefaultAction::CoreDump => {
                        // moat writes no core files, so the status never claims one.
                        self.tg().begin_exit(signaled(sig, false));
                        return;
                    }
                }
            }
            if let Some(code) = self.restart.take() {
                match code {
                    Restart::Sys if act.flags & signal::SA_RESTART != 0 => self.restart_syscall(),
                    Restart::NoIntr => self.restart_syscall(),
                    Restart::Sys | Restart::NoHand => self.regs.rax = (-Errno::EINTR.0) as i64 as u64,
                }
            }
            if let Err(e) = self.setup_frame(&info, &act) {
                tracing::debug!(sig, "cannot build signal frame: {e:?}");
                self.tg().begin_exit(signaled(signal::SIGSEGV, false));
                return;
            }
        }
        // No handler ran: every restart code restarts the syscall transparently, and a
        // temporary mask (sigsuspend, ppoll, pselect) is put back.
        if self.restart.take().is_some() {
            self.restart_syscall();
        }
        let mut ts = self.task.sig.lock().unwrap();
        if let Some(m) = ts.saved_mask.take() {
            ts.mask = m;
        }
    }

    fn setup_frame(&mut self, info: &SigInfo, act: &SigAction) -> SysResult<()> {
        let (old_mask, alt) = {
            let mut ts = self.task.sig.lock().unwrap();
            (ts.saved_mask.take().unwrap_or(ts.mask), ts.altstack)
        };
        let on_alt = act.flags & signal::SA_ONSTACK != 0
            && alt.flags & signal::SS_DISABLE == 0
            && alt.size != 0
            && !(self.regs.rsp > alt.sp && self.regs.rsp <= alt.sp.wrapping_add(alt.size));
        let top = if on_alt { alt.sp.wrapping_add(alt.size) } else { self.regs.rsp.wrapping_sub(128) };
        let fp = self.ctx.fpstate().map_err(|_| errno!(EFAULT))?;
        let mut alt_report = alt;
        if on_alt {
            alt_report.flags = 0;
        }
        let frame = signal::build_frame(top, &self.regs, &fp, old_mask, info, act, &alt_report);
        self.write_mem(frame.sp, &frame.bytes)?;
        let (info_addr, uc_addr) = signal::frame_args(frame.sp);
        self.regs.rsp = frame.sp;
        self.regs.rip = act.handler;
        self.regs.rdi = info.signo as u64;
        self.regs.rsi = info_addr;
        self.regs.rdx = uc_addr;
        self.regs.rax = 0;
        // The handler runs in 64-bit mode whatever the app was running (its
        // own 32-bit code, say), without TF and DF, as on Linux.
        self.regs.eflags &= !(abi::x86::EFLAGS_TF | abi::x86::EFLAGS_DF);
        crate::platform::sixty_four(&mut self.regs);
        let mut ts = self.task.sig.lock().unwrap();
        ts.mask |= act.mask;
        if act.flags & signal::SA_NODEFER == 0 {
            ts.mask |= signal::bit(info.signo);
        }
        ts.mask &= !signal::UNBLOCKABLE;
        drop(ts);
        if act.flags & signal::SA_RESETHAND != 0 {
            self.tg().sig.lock().unwrap().actions[(info.signo - 1) as usize] = SigAction::default();
        }
        Ok(())
    }

    /// rt_sigreturn: restores the state saved by `setup_frame`. A frame that
    /// cannot be restored (unreadable, an fpstate the CPU would refuse) is a
    /// SIGSEGV, as Linux's `badframe`, never an error return.
    pub fn sigreturn(&mut self) -> SysResult<u64> {
        if self.restore_frame().is_err() {
            self.force_signal(SigInfo { signo: signal::SIGSEGV, code: signal::SI_KERNEL, ..Default::default() });
        }
        Ok(self.regs.rax)
    }

    fn restore_frame(&mut self) -> SysResult<()> {
        let uc_addr = self.regs.rsp;
        let uc: UContext = self.read_obj(uc_addr)?;
        let mut regs = self.regs;
        let (mask, fpstate) = signal::parse_sigreturn(&uc, &mut regs);
        self.task.sig.lock().unwrap().mask = mask & !signal::UNBLOCKABLE;
        // Linux would take cs and ss from the frame: a way into 32-bit mode.
        // moat runs 64-bit code only, so a frame always returns to 64-bit mode.
        crate::platform::sixty_four(&mut regs);
        self.regs = regs;
        if fpstate != 0 {
            let fx: FxSave = self.read_obj(fpstate)?;
            let size = signal::fpstate_size(&fx);
            let mut fp = self.read_vec(fpstate, size)?;
            if size > size_of::<FxSave>() {
                let magic2 = self.read_u32(fpstate + size as u64)?;
                if magic2 != signal::FP_XSTATE_MAGIC2 {
                    fp.truncate(size_of::<FxSave>());
                }
            }
            // MXCSR's reserved bits would make the CPU refuse the state, as
            // Linux's restore refuses the frame.
            let mxcsr = FxSave::read_from_prefix(&fp).expect("an fpstate is at least the FXSAVE image").mxcsr;
            if mxcsr & !MXCSR_FEATURE_MASK != 0 {
                return Err(errno!(EINVAL));
            }
            self.ctx.set_fpstate(&fp).map_err(|_| errno!(EINVAL))?;
        }
        Ok(())
    }
}
