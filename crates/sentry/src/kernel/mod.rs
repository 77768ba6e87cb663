//! The kernel proper: the process table and PID namespace, tasks and thread
//! groups, signals, waiting, and boot.
//!
//! Lock order (outer first): `Kernel::pids` → `ThreadGroup::state` →
//! `Task::sig` → `ThreadGroup::sig`; `mm`, `fds`, `fs` and `creds` are leaf
//! locks.
//! Two groups' `state` locks nest parent before child.
//! `Kernel::sysv`'s locks are taken before `mm` (msgrcv copies a message
//! out while its queue is locked) and never with another kernel lock held.

pub mod app_seccomp;
pub mod clock;
pub mod current;
pub mod deliver;
pub mod exit;
pub mod futex;
pub mod itimer;
pub mod posix_timer;
pub mod run;
pub mod signal;
pub mod sysv;
pub mod task;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use host::MemoryFile;

use crate::mm::RangeAllocator;
use crate::platform::Platform;
use crate::vfs::Vfs;

pub use current::CurrentTask;
pub use task::{Task, ThreadGroup};

/// Where diagnostic lines go instead of moat's stderr, once set: in a
/// container, stderr is the app's, and the runtime's log file is the place.
static LOG_FILE: std::sync::OnceLock<LogSink> = std::sync::OnceLock::new();

/// Turns one diagnostic line into what the log file holds (say, a JSON line).
pub type LogFormat = Box<dyn Fn(&str) -> String + Send + Sync>;

struct LogSink {
    file: Mutex<std::fs::File>,
    format: LogFormat,
}

/// Sends the Sentry's diagnostic lines to `file` from now on (once per
/// process), each made into a line by `format`.
pub fn log_to(file: std::fs::File, format: LogFormat) {
    let _ = LOG_FILE.set(LogSink { file: Mutex::new(file), format });
}

/// Writes one diagnostic line to moat's stderr (or the log file set with
/// [`log_to`]). Never panics: a closed stderr must not take the Sentry down
/// (eprintln! would).
pub fn log_line(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    match LOG_FILE.get() {
        Some(sink) => {
            let line = (sink.format)(&args.to_string());
            let mut file = sink.file.lock().unwrap_or_else(|e| e.into_inner());
            let _ = writeln!(file, "{line}");
        }
        None => {
            let _ = writeln!(std::io::stderr().lock(), "{args}");
        }
    }
}

/// Past every number Linux x86-64 has given a system call (about 460 now).
pub const MAX_SYSCALL_NR: u64 = 512;
/// Where [`Kernel::note_unimplemented`] counts numbers past `MAX_SYSCALL_NR`.
pub const NOT_A_SYSCALL: u64 = u64::MAX;

/// The sandbox-wide kernel state.
#[derive(Debug)]
pub struct Kernel {
    pub platform: Box<dyn Platform>,
    pub mem: Arc<MemoryFile>,
    pub alloc: Arc<RangeAllocator>,
    /// One copy of each unchanging file that read-only mappings share.
    pub frozen: crate::mm::FrozenFiles,
    pub vfs: Arc<Vfs>,
    pub pids: Mutex<PidTable>,
    pub boot_time: Instant,
    pub strace: bool,
    pub hostname: Mutex<Vec<u8>>,
    /// The NIS domain name; empty shows as "(none)".
    pub domainname: Mutex<Vec<u8>>,
    /// Unimplemented syscalls seen, by number, with their count.
    pub unimplemented: Mutex<BTreeMap<u64, u64>>,
    /// Wait statuses of exited processes that have no parent in the
    /// sandbox (init, and processes started from outside), until collected.
    pub exits: Mutex<BTreeMap<i32, i32>>,
    pub exits_cv: std::sync::Condvar,
    pub futexes: futex::Futexes,
    /// System V message queues and semaphores (the sandbox is one IPC namespace).
    pub sysv: sysv::Sysv,
    pub locks: crate::vfs::lock::LockTable,
    /// flock(2) locks, apart from POSIX ones as on Linux.
    pub flocks: crate::vfs::lock::LockTable,
    pub inotify: crate::vfs::inotify::Notifier,
    /// The app's seccomp policy (the OCI spec's `linux.seccomp`), if any.
    pub app_seccomp: Option<app_seccomp::AppSeccomp>,
    /// Most tasks (threads) the sandbox may have, as a pids cgroup counts
    /// them: fork and clone past it fail with EAGAIN.
    pub max_tasks: Option<usize>,
    /// The syscall layer, installed by `boot`.
    pub syscalls: SyscallTable,
    /// The memory the sandbox may use, as /proc/meminfo and sysinfo report
    /// it: its limit, or the host's RAM.
    pub memory_total: u64,
    /// The sandbox's clocks and the vDSO's time page.
    pub clock: Arc<clock::Clock>,
    /// System calls served (`--stats`).
    pub syscalls_served: std::sync::atomic::AtomicU64,
}

/// The syscall layer as the run loop sees it. The kernel sits below the
/// syscalls it serves, so it calls them through this table, which `boot`
/// fills in; the kernel never names the `syscalls` module.
#[derive(Debug, Clone, Copy)]
pub struct SyscallTable {
    /// Serves the syscall the task stopped at, leaving the result in rax.
    pub handle: fn(&mut CurrentTask),
    /// Serves a call of a vsyscall entry (the call's number).
    pub vsyscall: fn(&mut CurrentTask, u64) -> crate::SysResult<u64>,
}

/// The sandbox's PID namespace: pid 1 is the first process.
#[derive(Debug, Default)]
pub struct PidTable {
    next: i32,
    pub tasks: BTreeMap<i32, Arc<Task>>,
    pub groups: BTreeMap<i32, Arc<ThreadGroup>>,
}

impl PidTable {
    pub fn alloc(&mut self) -> i32 {
        loop {
            self.next = if self.next >= 4_194_303 { 2 } else { self.next + 1 };
            if !self.tasks.contains_key(&self.next) && !self.groups.contains_key(&self.next) {
                return self.next;
            }
        }
    }
}

impl Kernel {
    /// Counts a call of an unimplemented syscall; true the first time for
    /// its number (the syscall layer logs it then). The app chooses the
    /// number: every one past the highest Linux could have is counted under
    /// [`NOT_A_SYSCALL`], so the table stays small whatever it tries.
    pub fn count_unimplemented(&self, nr: u64) -> bool {
        let key = if nr < MAX_SYSCALL_NR { nr } else { NOT_A_SYSCALL };
        let mut m = self.unimplemented.lock().unwrap();
        let c = m.entry(key).or_insert(0);
        *c = c.saturating_add(1);
        *c == 1
    }

    /// EAGAIN if one more task would pass the sandbox's task limit.
    pub fn check_task_limit(&self) -> crate::SysResult<()> {
        match self.max_tasks {
            Some(max) if self.pids.lock().unwrap().tasks.len() >= max => Err(errno!(EAGAIN)),
            _ => Ok(()),
        }
    }

    pub fn group(&self, pid: i32) -> Option<Arc<ThreadGroup>> {
        self.pids.lock().unwrap().groups.get(&pid).cloned()
    }

    pub fn task(&self, tid: i32) -> Option<Arc<Task>> {
        self.pids.lock().unwrap().tasks.get(&tid).cloned()
    }

    /// The NIS domain name as uname and /proc show it: "(none)" if unset.
    pub fn domainname_shown(&self) -> Vec<u8> {
        let name = self.domainname.lock().unwrap().clone();
        if name.is_empty() {
            b"(none)".to_vec()
        } else {
            name
        }
    }

    /// Seconds since boot, for /proc/uptime and sysinfo.
    pub fn uptime(&self) -> f64 {
        self.boot_time.elapsed().as_secs_f64()
    }
}
