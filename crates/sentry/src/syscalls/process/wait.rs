//! exit, exit_group, wait4 and waitid.

use abi::process::*;
use abi::signal::{SignalInfo, CLD_CONTINUED, CLD_STOPPED};
use abi::FromZeroes;

use crate::kernel::current::CurrentTask;
use crate::kernel::exit::{find_zombie, WaitFor, WaitTarget};
use crate::kernel::signal;
use crate::kernel::task;
use crate::SysResult;

/// exit(2): ends the calling thread only; the last thread out ends the process.
pub fn sys_exit(t: &mut CurrentTask, code: i32) -> SysResult<u64> {
    *t.task.thread_exit.lock().unwrap() = Some(code);
    Ok(0)
}

/// exit_group(2): ends every thread of the process.
pub fn sys_exit_group(t: &mut CurrentTask, code: i32) -> SysResult<u64> {
    t.tg().begin_exit(task::exited(code));
    Ok(0)
}

fn target(pid: i32, t: &CurrentTask) -> WaitTarget {
    match pid {
        -1 => WaitTarget::Any,
        0 => WaitTarget::Pgid(t.tg().state.lock().unwrap().pgid),
        p if p > 0 => WaitTarget::Pid(p),
        // -INT_MIN is no process group: nothing can match (ESRCH, as Linux).
        p => WaitTarget::Pgid(p.checked_neg().unwrap_or(0)),
    }
}

pub fn sys_wait4(t: &mut CurrentTask, pid: i32, status: u64, options: u32, rusage: u64) -> SysResult<u64> {
    if options & !(WNOHANG | WUNTRACED | WCONTINUED | WNOTHREAD | WALL | WCLONE) != 0 {
        return Err(errno!(EINVAL));
    }
    if pid == i32::MIN {
        // -INT_MIN names no process group.
        return Err(errno!(ESRCH));
    }
    let tg = t.tg().clone();
    let tgt = target(pid, t);
    let k = t.k.clone();
    let what =
        WaitFor { exited: true, stopped: options & WUNTRACED != 0, continued: options & WCONTINUED != 0, keep: false };
    let r = if options & WNOHANG != 0 {
        find_zombie(&k, &tg, tgt, what)?
    } else {
        Some(t.block_on(&[&tg.child_wait], None, || find_zombie(&k, &tg, tgt, what)?.ok_or(errno!(EAGAIN)))?)
    };
    let Some((cpid, st, cpu)) = r else { return Ok(0) };
    if status != 0 {
        t.write_obj(status, &st)?;
    }
    if rusage != 0 {
        t.write_obj(rusage, &rusage_of(cpu))?;
    }
    Ok(cpid as u64)
}

pub fn sys_waitid(t: &mut CurrentTask, idtype: u32, id: i32, infop: u64, options: u32) -> SysResult<u64> {
    let tgt = match idtype {
        P_ALL => WaitTarget::Any,
        P_PID => WaitTarget::Pid(id),
        P_PGID => WaitTarget::Pgid(if id == 0 { t.tg().state.lock().unwrap().pgid } else { id }),
        _ => return Err(errno!(EINVAL)),
    };
    if options & (WSTOPPED | WEXITED | WCONTINUED) == 0 {
        return Err(errno!(EINVAL));
    }
    let tg = t.tg().clone();
    let k = t.k.clone();
    let what = WaitFor {
        exited: options & WEXITED != 0,
        stopped: options & WSTOPPED != 0,
        continued: options & WCONTINUED != 0,
        keep: options & WNOWAIT != 0,
    };
    let r = if options & WNOHANG != 0 {
        find_zombie(&k, &tg, tgt, what)?
    } else {
        Some(t.block_on(&[&tg.child_wait], None, || find_zombie(&k, &tg, tgt, what)?.ok_or(errno!(EAGAIN)))?)
    };
    let mut info = SignalInfo::new_zeroed();
    if let Some((cpid, st, _)) = r {
        let (code, val) = if st == 0xffff {
            (CLD_CONTINUED, signal::SIGCONT)
        } else if st & 0xff == 0x7f {
            (CLD_STOPPED, (st >> 8) & 0xff)
        } else if st & 0x7f == 0 {
            (signal::CLD_EXITED, (st >> 8) & 0xff)
        } else if st & 0x80 != 0 {
            (signal::CLD_DUMPED, st & 0x7f)
        } else {
            (signal::CLD_KILLED, st & 0x7f)
        };
        info =
            signal::SigInfo { signo: signal::SIGCHLD, code, pid: cpid, status: val, ..Default::default() }.to_siginfo();
    }
    if infop != 0 {
        t.write_obj(infop, &info)?;
    }
    Ok(0)
}

/// A `struct rusage` of `cpu_ns` user time, the only usage moat counts.
pub(super) fn rusage_of(cpu_ns: u64) -> Rusage {
    Rusage { utime: abi::time::Timeval::from_micros((cpu_ns / 1000) as i64), ..Default::default() }
}
