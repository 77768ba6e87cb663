//! Tasks (app threads) and thread groups (processes): what the kernel
//! keeps of each, their resource limits, and the wait-status encoding.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use abi::process::{
    RLIMIT_CORE, RLIMIT_MEMLOCK, RLIMIT_MSGQUEUE, RLIMIT_NICE, RLIMIT_NOFILE, RLIMIT_NPROC, RLIMIT_RTPRIO,
    RLIMIT_SIGPENDING, RLIMIT_STACK, RLIM_INFINITY, RLIM_NLIMITS,
};

use super::signal::{self, AltStack, PendingSignals, SigAction, SigInfo};
use crate::auth::Creds;
use crate::mm::MemoryManager;
use crate::platform::Kicker;
use crate::vfs::{Dentry, FdTable};
use crate::waiter::{WaitQueue, Waiter};

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
    /// `/proc/PID/oom_score_adj` (-1000..=1000), inherited by children. The
    /// app's to set as on Linux; the host's OOM killer still picks stubs
    /// first whatever it says.
    pub oom_score_adj: std::sync::atomic::AtomicI32,
    /// The nice value (-20..=19), inherited by children. Recorded and
    /// reported; the host schedules the stubs, so it changes no share.
    pub nice: std::sync::atomic::AtomicI32,
    /// The I/O priority (ioprio_set's value: class << 13 | data), inherited;
    /// recorded and reported, as the host does the I/O.
    pub ioprio: std::sync::atomic::AtomicU32,
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
    pub(super) kicker: Mutex<Option<Arc<dyn Kicker>>>,
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
            oom_score_adj: std::sync::atomic::AtomicI32::new(0),
            nice: std::sync::atomic::AtomicI32::new(0),
            ioprio: std::sync::atomic::AtomicU32::new(0),
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

impl ThreadGroup {
    /// CPU time of this process's threads and reaped children (ns), for times/getrusage.
    pub fn threads_cpu(&self) -> u64 {
        let st = self.state.lock().unwrap();
        st.threads.iter().map(|t| t.cpu_ns.load(Ordering::Relaxed)).sum::<u64>() + st.children_cpu_ns
    }
}
