//! Exit and waiting: a thread's teardown, zombies and their reaping, and
//! job control (stop and continue).

use std::sync::{Arc, Mutex, Weak};

use super::deliver::send_to_group;
use super::signal::{self, SigInfo};
use super::task::{exited, Task, ThreadGroup};
use super::Kernel;
use crate::mm::MemoryManager;
use crate::SysResult;

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
    k.sysv.exit_process(tg.pid);
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
        return Err(errno!(ECHILD));
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
