//! The run loop: switches into app code and handles what comes back
//! (syscalls, faults, vsyscalls, 32-bit calls), and a thread's last steps.

use std::sync::atomic::Ordering;

use abi::{AsBytes, Errno};

use super::exit::exit_thread;
use super::signal::{self, SigInfo};
use super::task::signaled;
use super::CurrentTask;
use crate::platform::Event;

impl CurrentTask {
    /// Runs the app thread until it exits. Consumes the host thread's attention.
    pub fn run(mut self) {
        crate::auth::set_current(self.pid(), self.task.tid());
        *self.task.kicker.lock().unwrap() = Some(self.ctx.kicker());
        loop {
            if self.task.must_exit() {
                break;
            }
            self.deliver_signals();
            self.wait_while_stopped();
            if self.task.must_exit() {
                break;
            }
            // The app's CPU time is the time it spends out of the Sentry,
            // from one trap to the next: its stub thread ran (or waited to
            // run) then. A monotonic read through the vDSO, not the host's
            // thread CPU clock, which is a system call and measured the
            // Sentry thread instead.
            let t0 = std::time::Instant::now();
            let ev = self.ctx.switch(&mut self.regs);
            self.task.cpu_ns.fetch_add(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
            match ev {
                Event::Syscall => {
                    self.k.syscalls_served.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    (self.k.syscalls.handle)(&mut self)
                }
                Event::CompatSyscall => self.compat_syscall(),
                Event::Vsyscall { nr, returned } => self.vsyscall(nr, returned),
                Event::Fault { signo, code, addr } => {
                    if !(signo == signal::SIGSEGV && code == signal::SEGV_ACCERR && self.fill_fault(addr)) {
                        let info = SigInfo { signo, code, addr, ..Default::default() };
                        self.force_signal(info);
                    }
                }
                Event::Interrupted => {}
                Event::Gone => self.tg().begin_exit(signaled(signal::SIGKILL, false)),
            }
        }
        *self.task.kicker.lock().unwrap() = None;
        self.release_robust_futexes();
        self.clear_child_tid();
        let CurrentTask { k, task, ctx, .. } = self;
        drop(ctx);
        exit_thread(&k, &task);
    }

    /// A dying thread's robust futexes: each word it still owns gets FUTEX_OWNER_DIED and
    /// one waiter is woken, so another thread's pthread_mutex_lock returns EOWNERDEAD.
    fn release_robust_futexes(&self) {
        use abi::futex::{RobustListHead, FUTEX_OWNER_DIED, FUTEX_TID_MASK, FUTEX_WAITERS, ROBUST_LIST_LIMIT};
        let head = std::mem::take(&mut *self.task.robust_list.lock().unwrap());
        if head == 0 || self.tg().threads().len() <= 1 {
            return;
        }
        let tid = self.task.tid() as u32;
        let Ok(RobustListHead { list: first, futex_offset: offset, list_op_pending: pending }) = self.read_obj(head)
        else {
            return;
        };
        let mut entries = Vec::new();
        let mut e = first;
        while e != head && e != 0 && entries.len() < ROBUST_LIST_LIMIT {
            entries.push(e);
            match self.read_u64(e) {
                Ok(next) => e = next,
                Err(_) => break,
            }
        }
        if pending != 0 {
            entries.push(pending);
        }
        for entry in entries {
            // Bit 0 of an entry marks a PI futex; the word is at entry + offset either way.
            let addr = (entry & !1).wrapping_add(offset as u64);
            // The word's pages are held until its update is done.
            let (off, _pages) = match self
                .tg()
                .mm()
                .lock()
                .unwrap()
                .translate_u32(addr, crate::mm::PROT_READ | crate::mm::PROT_WRITE)
            {
                Ok(o) => o,
                Err(_) => continue,
            };
            while let Ok(word) = self.k.mem.load_u32(off) {
                if word & FUTEX_TID_MASK != tid {
                    break;
                }
                let new = (word & FUTEX_WAITERS) | FUTEX_OWNER_DIED;
                if self.k.mem.cas_u32(off, word, new).is_ok_and(|v| v == word) {
                    if word & FUTEX_WAITERS != 0 {
                        self.k.futexes.wake_offset(off);
                    }
                    break;
                }
            }
        }
    }

    /// CLONE_CHILD_CLEARTID / set_tid_address: a thread leaving a shared address space
    /// zeroes its tid word and wakes one futex waiter there (pthread_join).
    fn clear_child_tid(&self) {
        let addr = std::mem::take(&mut *self.task.clear_child_tid.lock().unwrap());
        if addr == 0 || self.tg().threads().len() <= 1 {
            return;
        }
        let off = {
            let mm_arc = self.tg().mm();
            let mm = mm_arc.lock().unwrap();
            if mm.write(addr, 0u32.as_bytes()).is_err() {
                return;
            }
            mm.translate_u32(addr, crate::mm::PROT_READ)
        };
        if let Ok((off, _pages)) = off {
            self.k.futexes.wake_offset(off);
        }
    }

    /// Job control: a stopped process's threads sleep here until SIGCONT or SIGKILL.
    fn wait_while_stopped(&self) {
        let tg = self.tg().clone();
        loop {
            tg.stop_wait.add(&self.task.waiter);
            if !tg.state.lock().unwrap().stopped || self.task.must_exit() {
                break;
            }
            self.task.waiter.wait(None);
        }
        tg.stop_wait.remove(&self.task.waiter);
    }

    /// A synchronous signal caused by the app's own instruction: it cannot be blocked or
    /// ignored; if it is, the process dies of it (as Linux does).
    pub fn force_signal(&mut self, info: SigInfo) {
        let sig = info.signo;
        let blocked_or_ignored = {
            let act = self.tg().sig.lock().unwrap().actions[(sig - 1) as usize];
            let mask = self.task.sig.lock().unwrap().mask;
            act.handler == signal::SIG_IGN || mask & signal::bit(sig) != 0
        };
        if blocked_or_ignored {
            self.tg().begin_exit(signaled(sig, false));
            return;
        }
        self.task.sig.lock().unwrap().pending.push(info);
    }

    /// A fault on a piece of a file mapping not in yet: fills it and has the
    /// stub map it; the app runs on as if it had been there. False if the
    /// fault is the app's own. A file that cannot be read is SIGBUS, as Linux
    /// gives for a mapped page it cannot read in.
    fn fill_fault(&mut self, addr: u64) -> bool {
        match self.change_mm(|mm| Ok(mm.fault_in(addr)?.map_or((false, vec![]), |ops| (true, ops)))) {
            Ok(filled) => filled,
            Err(_) => {
                self.force_signal(SigInfo {
                    signo: signal::SIGBUS,
                    code: signal::BUS_ADRERR,
                    addr,
                    ..Default::default()
                });
                true
            }
        }
    }

    /// `int $0x80`, `sysenter` or a 32-bit `syscall`: moat offers the 64-bit
    /// ABI only, so the app gets what Linux built without IA-32 emulation
    /// gives: a general-protection SIGSEGV (SI_KERNEL, no address) at the
    /// instruction. Nothing of it runs, on the host or in the Sentry.
    fn compat_syscall(&mut self) {
        tracing::debug!(pid = self.pid(), rip = self.regs.rip, cs = self.regs.cs, "32-bit system call refused");
        self.regs.rip = self.regs.rip.wrapping_sub(2);
        self.force_signal(SigInfo { signo: signal::SIGSEGV, code: signal::SI_KERNEL, ..Default::default() });
    }

    /// A call of the vsyscall page, served as Linux's `vsyscall=xonly`
    /// emulation serves it: the call (gettimeofday, time, getcpu) with the
    /// arguments in the registers, its result in rax, then a return to the
    /// caller. A bad pointer is a SIGSEGV, as there.
    fn vsyscall(&mut self, nr: u64, returned: bool) {
        self.regs.orig_rax = nr;
        match (self.k.syscalls.vsyscall)(self, nr) {
            Ok(v) => self.regs.rax = v,
            Err(e) if e == Errno::EFAULT => {
                self.segv_maperr(self.regs.rip);
                return;
            }
            Err(e) => self.regs.rax = (-(e.errno().0 as i64)) as u64,
        }
        if !returned {
            let Ok(ret) = self.read_u64(self.regs.rsp) else {
                self.segv_maperr(self.regs.rsp);
                return;
            };
            self.regs.rip = ret;
            self.regs.rsp = self.regs.rsp.wrapping_add(8);
        }
    }

    /// SIGSEGV for a bad address `addr` the vsyscall emulation met, as Linux's.
    fn segv_maperr(&mut self, addr: u64) {
        self.force_signal(SigInfo { signo: signal::SIGSEGV, code: signal::SEGV_MAPERR, addr, ..Default::default() });
    }

    pub(super) fn restart_syscall(&mut self) {
        self.regs.rip = self.regs.rip.wrapping_sub(2);
        self.regs.rax = self.regs.orig_rax;
    }
}
