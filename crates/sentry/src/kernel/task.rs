//! Tasks (app threads) and thread groups (processes): the run loop that
//! switches into app code and handles what comes back, signal delivery,
//! fork, exit, and waiting for children.

use std::mem::size_of;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use abi::process::{
    RLIMIT_CORE, RLIMIT_MEMLOCK, RLIMIT_MSGQUEUE, RLIMIT_NICE, RLIMIT_NOFILE, RLIMIT_NPROC, RLIMIT_RTPRIO,
    RLIMIT_SIGPENDING, RLIMIT_STACK, RLIM_INFINITY, RLIM_NLIMITS,
};
use abi::signal::UContext;
use abi::x86::{FxSave, MXCSR_FEATURE_MASK};
use abi::{AsBytes, Errno, FromBytes};

use super::signal::{self, AltStack, DefaultAction, PendingSignals, SigAction, SigInfo};
use super::Kernel;
use crate::auth::Creds;
use crate::mm::{MapOp, MemoryManager};
use crate::platform::{Context, Event, Kicker, Regs};
use crate::vfs::{Dentry, FdTable};
use crate::waiter::{WaitQueue, Waiter};
use crate::SysResult;

/// Root, working directory and umask.
#[derive(Debug, Clone)]
pub struct FsContext {
    pub root: Arc<Dentry>,
    pub cwd: Arc<Dentry>,
    pub umask: u32,
}

/// Process-tree and lifecycle state of a thread group.
#[derive(Debug, Default)]
pub struct ProcState {
    pub parent: Option<Weak<ThreadGroup>>,
    pub children: Vec<Arc<ThreadGroup>>,
    pub threads: Vec<Arc<Task>>,
    /// Set when the group is exiting: the wait status it will report.
    pub exiting: Option<i32>,
    /// The wait status, once every thread has exited.
    pub zombie: Option<i32>,
    pub pgid: i32,
    pub sid: i32,
    /// A vfork parent sleeps until this is set (exec or exit).
    pub vfork_released: bool,
    /// User and system CPU time of reaped children (ns).
    pub children_cpu_ns: u64,
    /// Job control: stopped by a stop signal, until SIGCONT.
    pub stopped: bool,
    /// A stop not yet reported to a WUNTRACED wait: the stopping signal.
    pub stop_report: Option<i32>,
    /// A continue not yet reported to a WCONTINUED wait.
    pub cont_report: bool,
}

/// Process-wide signal state.
#[derive(Debug)]
pub struct SigState {
    pub actions: [SigAction; 64],
    pub pending: PendingSignals,
}

/// A process.
#[derive(Debug)]
pub struct ThreadGroup {
    pub pid: i32,
    pub state: Mutex<ProcState>,
    /// Woken when a child changes state (exits).
    pub child_wait: WaitQueue,
    /// Woken when a vforked child execs or exits.
    pub vfork_wait: WaitQueue,
    /// Woken when one of this group's threads exits (execve waits for its siblings).
    pub thread_exit_wait: WaitQueue,
    /// Woken when the group is stopped or continued.
    pub stop_wait: WaitQueue,
    pub sig: Mutex<SigState>,
    /// The address space; shared (the same Arc) with a vfork/CLONE_VM child until it execs.
    mm: Mutex<Arc<Mutex<MemoryManager>>>,
    pub fds: Mutex<FdTable>,
    pub fs: Mutex<FsContext>,
    pub creds: Mutex<Creds>,
    pub comm: Mutex<Vec<u8>>,
    pub exe: Mutex<Vec<u8>>,
    pub start: Instant,
    pub real_timer: Arc<super::itimer::RealTimer>,
    pub posix_timers: super::posix_timer::Timers,
    /// Resource limits as (soft, hard), indexed by RLIMIT_*.
    pub rlimits: Mutex<[(u64, u64); RLIMITS]>,
}

/// The syscalls that check a limit name it from here.
pub use abi::process::{RLIMIT_AS, RLIMIT_FSIZE};
/// How many resource limits a process has.
pub const RLIMITS: usize = RLIM_NLIMITS as usize;

/// Linux's defaults for a new init process.
pub fn default_rlimits() -> [(u64, u64); RLIMITS] {
    let mut r = [(RLIM_INFINITY, RLIM_INFINITY); RLIMITS];
    let mut set = |which: u32, soft: u64, hard: u64| r[which as usize] = (soft, hard);
    set(RLIMIT_STACK, crate::mm::STACK_SIZE, RLIM_INFINITY);
    set(RLIMIT_CORE, 0, RLIM_INFINITY);
    set(RLIMIT_NPROC, 63_488, 63_488);
    set(RLIMIT_NOFILE, crate::vfs::fdtable::NOFILE as u64, crate::vfs::fdtable::NR_OPEN as u64);
    set(RLIMIT_MEMLOCK, 8 << 20, 8 << 20);
    set(RLIMIT_NICE, 0, 0);
    set(RLIMIT_RTPRIO, 0, 0);
    set(RLIMIT_SIGPENDING, 63_488, 63_488);
    set(RLIMIT_MSGQUEUE, 819_200, 819_200);
    r
}

/// Per-thread signal state.
#[derive(Debug, Default)]
pub struct TaskSig {
    pub mask: u64,
    pub pending: PendingSignals,
    pub altstack: AltStack,
    /// Mask to restore after a signal interrupts rt_sigsuspend/ppoll/pselect.
    pub saved_mask: Option<u64>,
}

/// An app thread.
#[derive(Debug)]
pub struct Task {
    /// The thread id; it changes once, when a non-leader thread execs and takes the
    /// leader's id (as Linux's de_thread).
    tid: std::sync::atomic::AtomicI32,
    pub tg: Arc<ThreadGroup>,
    pub sig: Mutex<TaskSig>,
    pub waiter: Arc<Waiter>,
    kicker: Mutex<Option<Arc<dyn Kicker>>>,
    pub clear_child_tid: Mutex<u64>,
    pub cpu_ns: AtomicU64,
    /// Set by exit(2) (this thread only) or by a sibling's execve: the thread's exit code.
    pub thread_exit: Mutex<Option<i32>>,
    /// set_robust_list: the head of the thread's list of held robust futexes.
    pub robust_list: Mutex<u64>,
}

/// Wait status helpers.
pub fn exited(code: i32) -> i32 {
    (code & 0xff) << 8
}

pub fn signaled(sig: i32, core: bool) -> i32 {
    sig | if core { 0x80 } else { 0 }
}

impl ThreadGroup {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        pid: i32,
        parent: Option<Weak<ThreadGroup>>,
        mm: MemoryManager,
        fds: FdTable,
        fs: FsContext,
        creds: Creds,
        actions: [SigAction; 64],
        pgid: i32,
        sid: i32,
        comm: Vec<u8>,
        exe: Vec<u8>,
    ) -> Arc<ThreadGroup> {
        Arc::new(ThreadGroup {
            pid,
            state: Mutex::new(ProcState { parent, pgid, sid, ..Default::default() }),
            child_wait: WaitQueue::default(),
            vfork_wait: WaitQueue::default(),
            thread_exit_wait: WaitQueue::default(),
            stop_wait: WaitQueue::default(),
            sig: Mutex::new(SigState { actions, pending: PendingSignals::default() }),
            mm: Mutex::new(Arc::new(Mutex::new(mm))),
            fds: Mutex::new(fds),
            fs: Mutex::new(fs),
            creds: Mutex::new(creds),
            comm: Mutex::new(comm),
            exe: Mutex::new(exe),
            start: Instant::now(),
            real_timer: Default::default(),
            posix_timers: Default::default(),
            rlimits: Mutex::new(default_rlimits()),
        })
    }

    /// The process's address space.
    pub fn mm(&self) -> Arc<Mutex<MemoryManager>> {
        self.mm.lock().unwrap().clone()
    }

    /// Gives the process an address space of its own (exec, exit), or shares one (vfork).
    pub fn set_mm(&self, mm: Arc<Mutex<MemoryManager>>) {
        *self.mm.lock().unwrap() = mm;
    }

    /// Whether another process shares this address space (a vfork child and its parent).
    pub fn mm_shared(&self) -> bool {
        Arc::strong_count(&self.mm.lock().unwrap()) > 1
    }

    pub fn parent(&self) -> Option<Arc<ThreadGroup>> {
        self.state.lock().unwrap().parent.as_ref().and_then(|p| p.upgrade())
    }

    pub fn ppid(&self) -> i32 {
        self.parent().map(|p| p.pid).unwrap_or(0)
    }

    pub fn threads(&self) -> Vec<Arc<Task>> {
        self.state.lock().unwrap().threads.clone()
    }

    /// Starts a group exit with wait status `status` (the first one wins).
    pub fn begin_exit(&self, status: i32) {
        let threads = {
            let mut st = self.state.lock().unwrap();
            if st.exiting.is_none() {
                st.exiting = Some(status);
            }
            st.threads.clone()
        };
        for t in threads {
            t.interrupt();
        }
    }

    /// (soft, hard) of one resource limit (an `RLIMIT_*`).
    pub fn rlimit(&self, which: u32) -> (u64, u64) {
        self.rlimits.lock().unwrap()[which as usize]
    }

    pub fn exiting(&self) -> bool {
        self.state.lock().unwrap().exiting.is_some()
    }
}

impl Task {
    pub fn new(tid: i32, tg: Arc<ThreadGroup>, mask: u64) -> Arc<Task> {
        Arc::new(Task {
            tid: std::sync::atomic::AtomicI32::new(tid),
            tg,
            sig: Mutex::new(TaskSig { mask, ..Default::default() }),
            waiter: Waiter::new(),
            kicker: Mutex::new(None),
            clear_child_tid: Mutex::new(0),
            cpu_ns: AtomicU64::new(0),
            thread_exit: Mutex::new(None),
            robust_list: Mutex::new(0),
        })
    }

    /// The handle that interrupts this task's running context (swapped when a vfork
    /// child execs into a stub of its own).
    pub fn kicker_slot(&self) -> std::sync::MutexGuard<'_, Option<Arc<dyn Kicker>>> {
        self.kicker.lock().unwrap()
    }

    pub fn tid(&self) -> i32 {
        self.tid.load(Ordering::Relaxed)
    }

    /// execve from a non-leader thread: this thread becomes the leader, with its id.
    pub fn become_leader(&self, pid: i32) {
        self.tid.store(pid, Ordering::Relaxed);
    }

    /// Wakes the task from a Sentry sleep and out of app code.
    pub fn interrupt(&self) {
        self.waiter.notify();
        if let Some(k) = self.kicker.lock().unwrap().as_ref() {
            k.kick();
        }
    }

    /// Takes a pending signal in `set` for this thread (its own queue first, then the
    /// process's), blocked or not: sigtimedwait and signalfd.
    pub fn dequeue_in(&self, set: u64) -> Option<SigInfo> {
        let mut ts = self.sig.lock().unwrap();
        match ts.pending.take_in(set) {
            Some(i) => Some(i),
            None => self.tg.sig.lock().unwrap().pending.take_in(set),
        }
    }

    /// The signals in `set` pending for this thread or its process.
    pub fn pending_in(&self, set: u64) -> u64 {
        let ts = self.sig.lock().unwrap();
        (ts.pending.set() | self.tg.sig.lock().unwrap().pending.set()) & set
    }

    /// Whether this thread must leave its run loop (group exit or its own exit).
    pub fn must_exit(&self) -> bool {
        self.tg.exiting() || self.thread_exit.lock().unwrap().is_some()
    }

    /// Whether a signal the task would act on (or an exit) is pending.
    pub fn interrupted(&self) -> bool {
        if self.must_exit() {
            return true;
        }
        let ts = self.sig.lock().unwrap();
        let gs = self.tg.sig.lock().unwrap();
        let pending = (ts.pending.set() | gs.pending.set()) & !(ts.mask & !signal::UNBLOCKABLE);
        pending != 0
    }
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

/// The state a Sentry host thread holds while it runs one app thread.
#[derive(Debug)]
pub struct CurrentTask {
    pub k: Arc<Kernel>,
    pub task: Arc<Task>,
    pub ctx: Box<dyn Context>,
    pub regs: Regs,
    /// A restart code from the last syscall, resolved at signal delivery.
    pub restart: Option<Errno>,
}

impl CurrentTask {
    pub fn tg(&self) -> &Arc<ThreadGroup> {
        &self.task.tg
    }

    pub fn pid(&self) -> i32 {
        self.task.tg.pid
    }

    /// A copy of the process's credentials, for one syscall's checks.
    pub fn creds(&self) -> Creds {
        self.tg().creds.lock().unwrap().clone()
    }

    /// Whether the process holds `cap` in its effective set.
    pub fn capable(&self, cap: u32) -> bool {
        self.tg().creds.lock().unwrap().has(cap)
    }

    /// Copies app memory into `buf`.
    pub fn read_mem(&self, addr: u64, buf: &mut [u8]) -> SysResult<()> {
        self.tg().mm().lock().unwrap().read(addr, buf)
    }

    pub fn read_vec(&self, addr: u64, len: usize) -> SysResult<Vec<u8>> {
        let mut v = vec![0u8; len];
        self.read_mem(addr, &mut v)?;
        Ok(v)
    }

    pub fn write_mem(&self, addr: u64, data: &[u8]) -> SysResult<()> {
        self.tg().mm().lock().unwrap().write(addr, data)
    }

    pub fn read_u64(&self, addr: u64) -> SysResult<u64> {
        self.tg().mm().lock().unwrap().read_u64(addr)
    }

    pub fn read_u32(&self, addr: u64) -> SysResult<u32> {
        self.read_obj(addr)
    }

    /// Copies one ABI struct (or integer) out of app memory: exactly
    /// `size_of::<T>()` bytes at `addr`.
    pub fn read_obj<T: FromBytes + AsBytes>(&self, addr: u64) -> SysResult<T> {
        let mut obj = T::new_zeroed();
        self.read_mem(addr, obj.as_bytes_mut())?;
        Ok(obj)
    }

    /// Copies one ABI struct, integer or slice of them into app memory at `addr`.
    pub fn write_obj<T: AsBytes + ?Sized>(&self, addr: u64, obj: &T) -> SysResult<()> {
        self.write_mem(addr, obj.as_bytes())
    }

    pub fn read_cstr(&self, addr: u64) -> SysResult<Vec<u8>> {
        if addr == 0 {
            return Err(Errno::EFAULT);
        }
        self.tg().mm().lock().unwrap().read_cstr(addr, crate::vfs::PATH_MAX)
    }

    /// Changes the address space with `change` (which returns its result and
    /// the host mapping changes it needs) and has the stub follow before the
    /// lock is let go: every thread's changes reach the host in the order
    /// they were made to the VMAs, and pages a change dropped are freed only
    /// once the stub no longer maps them. If the stub cannot follow, the
    /// process is killed (its pages are freed after its stub is gone).
    pub fn change_mm<T>(
        &mut self,
        change: impl FnOnce(&mut MemoryManager) -> SysResult<(T, Vec<MapOp>)>,
    ) -> SysResult<T> {
        let mm_arc = self.tg().mm();
        let mut mm = mm_arc.lock().unwrap();
        let (value, ops) = change(&mut mm)?;
        if let Err(e) = self.ctx.apply(&ops) {
            drop(mm);
            tracing::error!(pid = self.pid(), "stub mapping failed: {e}");
            self.tg().begin_exit(signaled(signal::SIGKILL, false));
            return Err(Errno::ENOMEM);
        }
        mm.finish_change();
        Ok(value)
    }

    /// Sleeps until `ready` stops returning EAGAIN, a signal arrives (ERESTARTSYS) or the
    /// deadline passes (ETIMEDOUT). `queues` are where the wake-up will come from.
    pub fn block_on<T>(
        &self,
        queues: &[&WaitQueue],
        deadline: Option<Instant>,
        mut ready: impl FnMut() -> SysResult<T>,
    ) -> SysResult<T> {
        let w = &self.task.waiter;
        let result = loop {
            for q in queues {
                q.add(w);
            }
            w.reset();
            match ready() {
                Err(Errno::EAGAIN) => {}
                r => break r,
            }
            if self.task.interrupted() {
                break Err(Errno::ERESTARTSYS);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break Err(Errno::ETIMEDOUT);
            }
            w.wait(deadline);
        };
        for q in queues {
            q.remove(w);
        }
        result
    }

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
            let t0 = host::sys::thread_cpu_ns();
            let ev = self.ctx.switch(&mut self.regs);
            self.task.cpu_ns.fetch_add(host::sys::thread_cpu_ns().saturating_sub(t0), Ordering::Relaxed);
            match ev {
                Event::Syscall => (self.k.syscalls.handle)(&mut self),
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
            let off = match self
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
        if let Ok(off) = off {
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
            Err(Errno::EFAULT) => {
                let addr = self.regs.rip;
                self.force_signal(SigInfo {
                    signo: signal::SIGSEGV,
                    code: signal::SEGV_MAPERR,
                    addr,
                    ..Default::default()
                });
                return;
            }
            Err(e) => self.regs.rax = (-(e.0 as i64)) as u64,
        }
        if !returned {
            let Ok(ret) = self.read_u64(self.regs.rsp) else {
                let addr = self.regs.rsp;
                self.force_signal(SigInfo {
                    signo: signal::SIGSEGV,
                    code: signal::SEGV_MAPERR,
                    addr,
                    ..Default::default()
                });
                return;
            };
            self.regs.rip = ret;
            self.regs.rsp = self.regs.rsp.wrapping_add(8);
        }
    }

    fn restart_syscall(&mut self) {
        self.regs.rip = self.regs.rip.wrapping_sub(2);
        self.regs.rax = self.regs.orig_rax;
    }

    /// Delivers pending signals: default actions, or handler frames on the app stack.
    fn deliver_signals(&mut self) {
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
                    Errno::ERESTARTSYS if act.flags & signal::SA_RESTART != 0 => self.restart_syscall(),
                    Errno::ERESTARTNOINTR => self.restart_syscall(),
                    _ => self.regs.rax = (-Errno::EINTR.0) as i64 as u64,
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
        let fp = self.ctx.fpstate().map_err(|_| Errno::EFAULT)?;
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
                return Err(Errno::EINVAL);
            }
            self.ctx.set_fpstate(&fp).map_err(|_| Errno::EINVAL)?;
        }
        Ok(())
    }
}

/// Tears down one app thread; the last one out turns the process into a zombie and
/// tells the parent.
pub fn exit_thread(k: &Arc<Kernel>, task: &Arc<Task>) {
    let tg = task.tg.clone();
    let last = {
        let mut pids = k.pids.lock().unwrap();
        pids.tasks.remove(&task.tid());
        let mut st = tg.state.lock().unwrap();
        st.threads.retain(|t| !Arc::ptr_eq(t, task));
        st.threads.is_empty()
    };
    tg.thread_exit_wait.notify_all();
    if !last {
        return;
    }
    let own = task.thread_exit.lock().unwrap().unwrap_or(0);
    let status = {
        let mut st = tg.state.lock().unwrap();
        *st.exiting.get_or_insert(exited(own))
    };
    let files = tg.fds.lock().unwrap().clear();
    for f in &files {
        if Arc::strong_count(f) == 1 {
            k.flocks.release(crate::vfs::lock::ofd_owner(f), None);
        }
    }
    drop(files);
    k.locks.release(tg.pid as i64, None);
    tg.posix_timers.clear();
    tg.real_timer.set(Weak::new(), std::time::Duration::ZERO, std::time::Duration::ZERO);
    tg.set_mm(Arc::new(Mutex::new(MemoryManager::new(k.alloc.clone(), k.platform.layout()))));

    // Orphans go to init.
    let orphans = std::mem::take(&mut tg.state.lock().unwrap().children);
    let init = k.group(1).filter(|i| !Arc::ptr_eq(i, &tg));
    if let Some(init) = &init {
        for c in &orphans {
            c.state.lock().unwrap().parent = Some(Arc::downgrade(init));
        }
        init.state.lock().unwrap().children.extend(orphans);
        init.child_wait.notify_all();
    }

    let parent = {
        let mut st = tg.state.lock().unwrap();
        st.zombie = Some(status);
        st.vfork_released = true;
        st.parent.as_ref().and_then(|p| p.upgrade())
    };
    if let Some(parent) = parent {
        parent.vfork_wait.notify_all();
        let act = parent.sig.lock().unwrap().actions[(signal::SIGCHLD - 1) as usize];
        let autoreap = act.handler == signal::SIG_IGN || act.flags & signal::SA_NOCLDWAIT != 0;
        if autoreap {
            let mut pids = k.pids.lock().unwrap();
            pids.groups.remove(&tg.pid);
            parent.state.lock().unwrap().children.retain(|c| !Arc::ptr_eq(c, &tg));
        } else {
            let (code, st) = if status & 0x7f == 0 {
                (signal::CLD_EXITED, (status >> 8) & 0xff)
            } else if status & 0x80 != 0 {
                (signal::CLD_DUMPED, status & 0x7f)
            } else {
                (signal::CLD_KILLED, status & 0x7f)
            };
            send_to_group(
                &parent,
                SigInfo { signo: signal::SIGCHLD, code, pid: tg.pid, status: st, ..Default::default() },
            );
        }
        parent.child_wait.notify_all();
    }
    if tg.parent().is_none() {
        k.exits.lock().unwrap().insert(tg.pid, status);
        k.exits_cv.notify_all();
    }
}

/// Which children a wait call asks about.
#[derive(Debug, Clone, Copy)]
pub enum WaitTarget {
    Any,
    Pid(i32),
    Pgid(i32),
}

/// Which state changes a wait call reports besides exits.
#[derive(Debug, Clone, Copy, Default)]
pub struct WaitFor {
    /// Report exits (everything but waitid without WEXITED).
    pub exited: bool,
    pub stopped: bool,
    pub continued: bool,
    /// Leave the child waitable (WNOWAIT).
    pub keep: bool,
}

/// Finds a child matching `target` with something to report: an exit (the zombie is
/// reaped unless `keep`), or with `what`, a stop or a continue. Returns (pid, wait status,
/// cpu ns). Err(ECHILD) if no child matches at all, Ok(None) if none has news.
pub fn find_zombie(
    k: &Kernel,
    tg: &Arc<ThreadGroup>,
    target: WaitTarget,
    what: WaitFor,
) -> SysResult<Option<(i32, i32, u64)>> {
    let mut pids = k.pids.lock().unwrap();
    let mut st = tg.state.lock().unwrap();
    let mut any = false;
    let mut found = None;
    for (i, c) in st.children.iter().enumerate() {
        let mut cs = c.state.lock().unwrap();
        let matches = match target {
            WaitTarget::Any => true,
            WaitTarget::Pid(p) => c.pid == p,
            WaitTarget::Pgid(g) => cs.pgid == g,
        };
        if !matches {
            continue;
        }
        any = true;
        if let Some(status) = cs.zombie {
            if what.exited {
                found = Some((i, c.pid, status, true));
                break;
            }
            continue;
        }
        if what.stopped {
            if let Some(sig) = cs.stop_report {
                if !what.keep {
                    cs.stop_report = None;
                }
                found = Some((i, c.pid, 0x7f | (sig << 8), false));
                break;
            }
        }
        if what.continued && cs.cont_report {
            if !what.keep {
                cs.cont_report = false;
            }
            found = Some((i, c.pid, 0xffff, false));
            break;
        }
    }
    if !any {
        return Err(Errno::ECHILD);
    }
    let Some((i, pid, status, exited)) = found else { return Ok(None) };
    let cpu = st.children[i].threads_cpu();
    if exited && !what.keep {
        st.children.remove(i);
        st.children_cpu_ns += cpu;
        pids.groups.remove(&pid);
    }
    Ok(Some((pid, status, cpu)))
}

/// Job control: stops or continues a whole process and tells its parent.
pub fn job_control(tg: &Arc<ThreadGroup>, stop: Option<i32>) {
    let changed = {
        let mut st = tg.state.lock().unwrap();
        match stop {
            Some(sig) if !st.stopped && st.zombie.is_none() => {
                st.stopped = true;
                st.stop_report = Some(sig);
                st.cont_report = false;
                true
            }
            None if st.stopped => {
                st.stopped = false;
                st.stop_report = None;
                st.cont_report = true;
                true
            }
            _ => false,
        }
    };
    if !changed {
        return;
    }
    for t in tg.threads() {
        t.waiter.notify();
    }
    tg.stop_wait.notify_all();
    if let Some(parent) = tg.parent() {
        let act = parent.sig.lock().unwrap().actions[(signal::SIGCHLD - 1) as usize];
        if act.flags & signal::SA_NOCLDSTOP == 0 {
            let (code, status) = match stop {
                Some(sig) => (signal::CLD_STOPPED, sig),
                None => (signal::CLD_CONTINUED, signal::SIGCONT),
            };
            send_to_group(&parent, SigInfo { signo: signal::SIGCHLD, code, pid: tg.pid, status, ..Default::default() });
        }
        parent.child_wait.notify_all();
    }
}

impl ThreadGroup {
    /// CPU time of this process's threads and reaped children (ns), for times/getrusage.
    pub fn threads_cpu(&self) -> u64 {
        let st = self.state.lock().unwrap();
        st.threads.iter().map(|t| t.cpu_ns.load(Ordering::Relaxed)).sum::<u64>() + st.children_cpu_ns
    }
}
