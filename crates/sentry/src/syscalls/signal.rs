//! Signal syscalls: actions, masks, sending, waiting for a signal.

use std::sync::Arc;

use abi::Errno;

use crate::auth::capability::CAP_KILL;
use crate::kernel::signal::{self, AltStack, SigAction, SigInfo};
use crate::kernel::task::{send_to_group, send_to_task};
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
        Err(Errno::EINVAL)
    }
}

pub fn sys_rt_sigaction(t: &mut CurrentTask, sig: i32, act: u64, old: u64, size: usize) -> SysResult<u64> {
    valid(sig)?;
    if size != 8 {
        return Err(Errno::EINVAL);
    }
    let new = if act != 0 {
        let b: [u8; 32] = t.read_vec(act, 32)?.try_into().map_err(|_| Errno::EFAULT)?;
        Some(SigAction::from_bytes(&b))
    } else {
        None
    };
    if new.is_some() && (sig == signal::SIGKILL || sig == signal::SIGSTOP) {
        return Err(Errno::EINVAL);
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
        t.write_mem(old, &prev.to_bytes())?;
    }
    Ok(0)
}

pub fn sys_rt_sigprocmask(t: &mut CurrentTask, how: u32, set: u64, old: u64, size: usize) -> SysResult<u64> {
    if size != 8 {
        return Err(Errno::EINVAL);
    }
    let new = if set != 0 { Some(t.read_u64(set)?) } else { None };
    let prev = {
        let mut ts = t.task.sig.lock().unwrap();
        let prev = ts.mask;
        if let Some(s) = new {
            ts.mask = match how {
                0 => prev | s,
                1 => prev & !s,
                2 => s,
                _ => return Err(Errno::EINVAL),
            } & !signal::UNBLOCKABLE;
        }
        prev
    };
    if old != 0 {
        t.write_mem(old, &prev.to_ne_bytes())?;
    }
    Ok(0)
}

pub fn sys_rt_sigpending(t: &mut CurrentTask, set: u64, size: usize) -> SysResult<u64> {
    if size > 8 {
        return Err(Errno::EINVAL);
    }
    let p = {
        let ts = t.task.sig.lock().unwrap();
        let gs = t.tg().sig.lock().unwrap();
        (ts.pending.set() | gs.pending.set()) & ts.mask
    };
    t.write_mem(set, &p.to_ne_bytes()[..size])?;
    Ok(0)
}

pub fn sys_rt_sigsuspend(t: &mut CurrentTask, set: u64, size: usize) -> SysResult<u64> {
    if size != 8 {
        return Err(Errno::EINVAL);
    }
    let mask = t.read_u64(set)?;
    {
        let mut ts = t.task.sig.lock().unwrap();
        ts.saved_mask = Some(ts.mask);
        ts.mask = mask & !signal::UNBLOCKABLE;
    }
    let _ = t.block_on(&[], None, || Err::<(), _>(Errno::EAGAIN));
    Err(Errno::ERESTARTNOHAND)
}

pub fn sys_pause(t: &mut CurrentTask) -> SysResult<u64> {
    let _ = t.block_on(&[], None, || Err::<(), _>(Errno::EAGAIN));
    Err(Errno::ERESTARTNOHAND)
}

pub fn sys_sigaltstack(t: &mut CurrentTask, ss: u64, old: u64) -> SysResult<u64> {
    let cur = t.task.sig.lock().unwrap().altstack;
    let on = cur.size != 0 && t.regs.rsp > cur.sp && t.regs.rsp <= cur.sp + cur.size;
    if old != 0 {
        let mut b = cur.sp.to_ne_bytes().to_vec();
        let flags = if cur.size == 0 {
            signal::SS_DISABLE
        } else if on {
            signal::SS_ONSTACK
        } else {
            0
        };
        b.extend((flags as u64).to_ne_bytes());
        b.extend(cur.size.to_ne_bytes());
        t.write_mem(old, &b)?;
    }
    if ss != 0 {
        if on {
            return Err(Errno::EPERM);
        }
        let b = t.read_vec(ss, 24)?;
        let sp = u64::from_ne_bytes(b[0..8].try_into().expect("8"));
        let flags = i32::from_ne_bytes(b[8..12].try_into().expect("4"));
        let size = u64::from_ne_bytes(b[16..24].try_into().expect("8"));
        let new = if flags & signal::SS_DISABLE != 0 {
            AltStack { sp: 0, flags: signal::SS_DISABLE, size: 0 }
        } else {
            if flags & !signal::SS_ONSTACK != 0 {
                return Err(Errno::EINVAL);
            }
            if size < 2048 {
                return Err(Errno::ENOMEM);
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
        return Err(Errno::ESRCH);
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
        // Like Linux, init ignores signals it has no handler for (SIGKILL included) when
        // they come from inside its own namespace.
        if g.pid == 1 {
            let act = g.sig.lock().unwrap().actions[(sig - 1) as usize];
            let blocked = g.threads().iter().any(|t| t.sig.lock().unwrap().mask & signal::bit(sig) != 0);
            if act.handler == signal::SIG_DFL && !blocked {
                continue;
            }
        }
        send_to_group(&g, SigInfo::user(sig, me));
    }
    // kill(-1) counts a process it may not signal as found, as Linux does;
    // otherwise one target at least must have been allowed.
    if sent || pid == -1 {
        Ok(0)
    } else {
        Err(Errno::EPERM)
    }
}

pub fn sys_tgkill(t: &mut CurrentTask, tgid: i32, tid: i32, sig: i32) -> SysResult<u64> {
    if tid <= 0 || (tgid != -1 && tgid <= 0) {
        return Err(Errno::EINVAL);
    }
    if sig != 0 {
        valid(sig)?;
    }
    let task = t.k.task(tid).ok_or(Errno::ESRCH)?;
    if tgid != -1 && task.tg.pid != tgid {
        return Err(Errno::ESRCH);
    }
    if !may_signal(t, &task.tg, sig) {
        return Err(Errno::EPERM);
    }
    if sig != 0 {
        send_to_task(&task, SigInfo { signo: sig, code: signal::SI_TKILL, pid: t.pid(), ..Default::default() });
    }
    Ok(0)
}

pub fn sys_rt_sigtimedwait(t: &mut CurrentTask, set: u64, info: u64, timeout: u64, size: usize) -> SysResult<u64> {
    if size != 8 {
        return Err(Errno::EINVAL);
    }
    let set = t.read_u64(set)? & !signal::UNBLOCKABLE;
    let deadline = if timeout == 0 {
        None
    } else {
        let b = t.read_vec(timeout, 16)?;
        let sec = i64::from_ne_bytes(b[0..8].try_into().expect("8"));
        let nsec = i64::from_ne_bytes(b[8..16].try_into().expect("8"));
        if sec < 0 || !(0..1_000_000_000).contains(&nsec) {
            return Err(Errno::EINVAL);
        }
        std::time::Instant::now().checked_add(std::time::Duration::new(sec as u64, nsec as u32))
    };
    let task = t.task.clone();
    let got = match t.block_on(&[], deadline, || task.dequeue_in(set).ok_or(Errno::EAGAIN)) {
        Ok(i) => i,
        Err(Errno::ETIMEDOUT) => return Err(Errno::EAGAIN),
        Err(Errno::ERESTARTSYS) => return Err(Errno::EINTR),
        Err(e) => return Err(e),
    };
    if info != 0 {
        t.write_mem(info, &got.to_bytes())?;
    }
    Ok(got.signo as u64)
}

fn queued_info(t: &CurrentTask, sig: i32, uinfo: u64, target_is_self: bool) -> SysResult<SigInfo> {
    let b = t.read_vec(uinfo, 128)?;
    let code = i32::from_ne_bytes(b[8..12].try_into().expect("4"));
    // Only the kernel may claim SI_USER or kernel codes for another process.
    if (code >= 0 || code == signal::SI_TKILL) && !target_is_self {
        return Err(Errno::EPERM);
    }
    Ok(SigInfo {
        signo: sig,
        code,
        pid: i32::from_ne_bytes(b[16..20].try_into().expect("4")),
        uid: u32::from_ne_bytes(b[20..24].try_into().expect("4")),
        value: u64::from_ne_bytes(b[24..32].try_into().expect("8")),
        ..Default::default()
    })
}

pub fn sys_rt_sigqueueinfo(t: &mut CurrentTask, pid: i32, sig: i32, uinfo: u64) -> SysResult<u64> {
    valid(sig)?;
    let g = t.k.group(pid).ok_or(Errno::ESRCH)?;
    let info = queued_info(t, sig, uinfo, pid == t.pid())?;
    if !may_signal(t, &g, sig) {
        return Err(Errno::EPERM);
    }
    send_to_group(&g, info);
    Ok(0)
}

pub fn sys_rt_tgsigqueueinfo(t: &mut CurrentTask, tgid: i32, tid: i32, sig: i32, uinfo: u64) -> SysResult<u64> {
    valid(sig)?;
    let task = t.k.task(tid).ok_or(Errno::ESRCH)?;
    if task.tg.pid != tgid {
        return Err(Errno::ESRCH);
    }
    let info = queued_info(t, sig, uinfo, tgid == t.pid())?;
    if !may_signal(t, &task.tg, sig) {
        return Err(Errno::EPERM);
    }
    send_to_task(&task, info);
    Ok(0)
}
