//! Signal syscalls: actions, masks, sending, waiting for a signal.

use std::sync::Arc;

use abi::signal::{SigRt, SignalInfo, SignalStack, MINSIGSTKSZ, SIGSET_SIZE, SIG_BLOCK, SIG_SETMASK, SIG_UNBLOCK};
use abi::time::Timespec;
use abi::{AsBytes, Errno};

use crate::auth::capability::CAP_KILL;
use crate::kernel::deliver::{init_drops, send_to_group, send_to_task};
use crate::kernel::signal::{self, AltStack, SigAction, SigInfo};
use crate::kernel::{CurrentTask, ThreadGroup};
use crate::SysResult;

/// Whether the caller may signal `target` (Linux's check_kill_permission):
/// its own process, one whose real or saved uid is the caller's real or
/// effective uid, one of its session with SIGCONT, or any with CAP_KILL.
fn may_signal(t: &CurrentTask, target: &Arc<ThreadGroup>, sig: i32) -> bool {
    if Arc::ptr_eq(target, t.tg()) {
        return true;
    }
    let me = t.creds();
    let (uid, suid) = {
        let them = target.creds.lock().unwrap();
        (them.uid, them.suid)
    };
    if [me.uid, me.euid].iter().any(|&id| id == uid || id == suid) || me.has(CAP_KILL) {
        return true;
    }
    let session = |g: &ThreadGroup| g.state.lock().unwrap().sid;
    sig == signal::SIGCONT && session(target) == session(t.tg())
}

fn valid(sig: i32) -> SysResult<()> {
    if (1..=signal::NSIG).contains(&sig) {
        Ok(())
    } else {
        Err(errno!(EINVAL))
    }
}

pub fn sys_rt_sigaction(t: &mut CurrentTask, sig: i32, act: u64, old: u64, size: usize) -> SysResult<u64> {
    valid(sig)?;
    if size != SIGSET_SIZE {
        return Err(errno!(EINVAL));
    }
    let new = if act != 0 { Some(t.read_obj::<SigAction>(act)?) } else { None };
    if new.is_some() && (sig == signal::SIGKILL || sig == signal::SIGSTOP) {
        return Err(errno!(EINVAL));
    }
    let prev = {
        let mut gs = t.tg().sig.lock().unwrap();
        let prev = gs.actions[(sig - 1) as usize];
        if let Some(mut n) = new {
            n.mask &= !signal::UNBLOCKABLE;
            gs.actions[(sig - 1) as usize] = n;
            // Setting a signal to ignored discards it if pending.
            if n.handler == signal::SIG_IGN {
                gs.pending.remove(sig);
            }
        }
        prev
    };
    if old != 0 {
        t.write_obj(old, &prev)?;
    }
    Ok(0)
}

pub fn sys_rt_sigprocmask(t: &mut CurrentTask, how: u32, set: u64, old: u64, size: usize) -> SysResult<u64> {
    if size != SIGSET_SIZE {
        return Err(errno!(EINVAL));
    }
    let new = if set != 0 { Some(t.read_u64(set)?) } else { None };
    let prev = {
        let mut ts = t.task.sig.lock().unwrap();
        let prev = ts.mask;
        if let Some(s) = new {
            ts.mask = match how {
                SIG_BLOCK => prev | s,
                SIG_UNBLOCK => prev & !s,
                SIG_SETMASK => s,
                _ => return Err(errno!(EINVAL)),
            } & !signal::UNBLOCKABLE;
        }
        prev
    };
    if old != 0 {
        t.write_obj(old, &prev)?;
    }
    Ok(0)
}

pub fn sys_rt_sigpending(t: &mut CurrentTask, set: u64, size: usize) -> SysResult<u64> {
    if size > SIGSET_SIZE {
        return Err(errno!(EINVAL));
    }
    let p = {
        let ts = t.task.sig.lock().unwrap();
        let gs = t.tg().sig.lock().unwrap();
        (ts.pending.set() | gs.pending.set()) & ts.mask
    };
    t.write_mem(set, &p.as_bytes()[..size])?;
    Ok(0)
}

pub fn sys_rt_sigsuspend(t: &mut CurrentTask, set: u64, size: usize) -> SysResult<u64> {
    if size != SIGSET_SIZE {
        return Err(errno!(EINVAL));
    }
    let mask = t.read_u64(set)?;
    {
        let mut ts = t.task.sig.lock().unwrap();
        ts.saved_mask = Some(ts.mask);
        ts.mask = mask & !signal::UNBLOCKABLE;
    }
    let _ = t.block_on(&[], None, || Err::<(), _>(errno!(EAGAIN)));
    Err(crate::Error::restart(crate::Restart::NoHand))
}

pub fn sys_pause(t: &mut CurrentTask) -> SysResult<u64> {
    let _ = t.block_on(&[], None, || Err::<(), _>(errno!(EAGAIN)));
    Err(crate::Error::restart(crate::Restart::NoHand))
}

pub fn sys_sigaltstack(t: &mut CurrentTask, ss: u64, old: u64) -> SysResult<u64> {
    let cur = t.task.sig.lock().unwrap().altstack;
    let on = cur.size != 0 && t.regs.rsp > cur.sp && t.regs.rsp <= cur.sp + cur.size;
    if old != 0 {
        let flags = if cur.size == 0 {
            signal::SS_DISABLE
        } else if on {
            signal::SS_ONSTACK
        } else {
            0
        };
        t.write_obj(old, &cur.to_stack_t(flags))?;
    }
    if ss != 0 {
        if on {
            return Err(errno!(EPERM));
        }
        let SignalStack { sp, flags, size, .. } = t.read_obj(ss)?;
        let new = if flags & signal::SS_DISABLE != 0 {
            AltStack { sp: 0, flags: signal::SS_DISABLE, size: 0 }
        } else {
            if flags & !signal::SS_ONSTACK != 0 {
                return Err(errno!(EINVAL));
            }
            if size < MINSIGSTKSZ {
                return Err(errno!(ENOMEM));
            }
            AltStack { sp, flags: 0, size }
        };
        t.task.sig.lock().unwrap().altstack = new;
    }
    Ok(0)
}

pub fn sys_kill(t: &mut CurrentTask, pid: i32, sig: i32) -> SysResult<u64> {
    if sig != 0 {
        valid(sig)?;
    }
    let me = t.pid();
    let targets: Vec<_> = {
        let pids = t.k.pids.lock().unwrap();
        let live = pids.groups.values().filter(|g| g.state.lock().unwrap().zombie.is_none());
        match pid {
            p if p > 0 => pids.groups.get(&p).cloned().into_iter().collect(),
            0 => {
                let pg = t.tg().state.lock().unwrap().pgid;
                live.filter(|g| g.state.lock().unwrap().pgid == pg).cloned().collect()
            }
            -1 => live.filter(|g| g.pid != 1 && g.pid != me).cloned().collect(),
            p => live.filter(|g| g.state.lock().unwrap().pgid == -p).cloned().collect(),
        }
    };
    if targets.is_empty() {
        return Err(errno!(ESRCH));
    }
    let mut sent = false;
    for g in targets {
        if !may_signal(t, &g, sig) {
            continue;
        }
        sent = true;
        if sig == 0 {
            continue;
        }
        if init_drops(&g, sig, &g.threads()) {
            continue;
        }
        send_to_group(&g, SigInfo::user(sig, me));
    }
    // kill(-1) counts a process it may not signal as found, as Linux does;
    // otherwise one target at least must have been allowed.
    if sent || pid == -1 {
        Ok(0)
    } else {
        Err(errno!(EPERM))
    }
}

pub fn sys_tgkill(t: &mut CurrentTask, tgid: i32, tid: i32, sig: i32) -> SysResult<u64> {
    if tid <= 0 || (tgid != -1 && tgid <= 0) {
        return Err(errno!(EINVAL));
    }
    if sig != 0 {
        valid(sig)?;
    }
    let task = t.k.task(tid).ok_or(errno!(ESRCH))?;
    if tgid != -1 && task.tg.pid != tgid {
        return Err(errno!(ESRCH));
    }
    if !may_signal(t, &task.tg, sig) {
        return Err(errno!(EPERM));
    }
    if sig != 0 && !init_drops(&task.tg, sig, std::slice::from_ref(&task)) {
        send_to_task(&task, SigInfo { signo: sig, code: signal::SI_TKILL, pid: t.pid(), ..Default::default() });
    }
    Ok(0)
}

pub fn sys_rt_sigtimedwait(t: &mut CurrentTask, set: u64, info: u64, timeout: u64, size: usize) -> SysResult<u64> {
    if size != SIGSET_SIZE {
        return Err(errno!(EINVAL));
    }
    let set = t.read_u64(set)? & !signal::UNBLOCKABLE;
    let deadline = if timeout == 0 {
        None
    } else {
        let d = t.read_obj::<Timespec>(timeout)?.duration().ok_or(errno!(EINVAL))?;
        std::time::Instant::now().checked_add(d)
    };
    let task = t.task.clone();
    let got = match t.block_on(&[], deadline, || task.dequeue_in(set).ok_or(errno!(EAGAIN))) {
        Ok(i) => i,
        Err(e) if e == Errno::ETIMEDOUT => return Err(errno!(EAGAIN)),
        Err(e) if e.as_restart() == Some(crate::Restart::Sys) => return Err(errno!(EINTR)),
        Err(e) => return Err(e),
    };
    if info != 0 {
        t.write_obj(info, &got.to_siginfo())?;
    }
    Ok(got.signo as u64)
}

fn queued_info(t: &CurrentTask, sig: i32, uinfo: u64, target_is_self: bool) -> SysResult<SigInfo> {
    let info: SignalInfo = t.read_obj(uinfo)?;
    let code = info.code;
    // Only the kernel may claim SI_USER or kernel codes for another process.
    if (code >= 0 || code == signal::SI_TKILL) && !target_is_self {
        return Err(errno!(EPERM));
    }
    let SigRt { pid, uid, value } = info.fields();
    Ok(SigInfo { signo: sig, code, pid, uid, value, ..Default::default() })
}

pub fn sys_rt_sigqueueinfo(t: &mut CurrentTask, pid: i32, sig: i32, uinfo: u64) -> SysResult<u64> {
    valid(sig)?;
    let g = t.k.group(pid).ok_or(errno!(ESRCH))?;
    let info = queued_info(t, sig, uinfo, pid == t.pid())?;
    if !may_signal(t, &g, sig) {
        return Err(errno!(EPERM));
    }
    if !init_drops(&g, sig, &g.threads()) {
        send_to_group(&g, info);
    }
    Ok(0)
}

pub fn sys_rt_tgsigqueueinfo(t: &mut CurrentTask, tgid: i32, tid: i32, sig: i32, uinfo: u64) -> SysResult<u64> {
    valid(sig)?;
    let task = t.k.task(tid).ok_or(errno!(ESRCH))?;
    if task.tg.pid != tgid {
        return Err(errno!(ESRCH));
    }
    let info = queued_info(t, sig, uinfo, tgid == t.pid())?;
    if !may_signal(t, &task.tg, sig) {
        return Err(errno!(EPERM));
    }
    if !init_drops(&task.tg, sig, std::slice::from_ref(&task)) {
        send_to_task(&task, info);
    }
    Ok(0)
}
