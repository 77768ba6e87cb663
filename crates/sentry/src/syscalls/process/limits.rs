//! Resource limits and usage: prlimit64, getrusage, times.

use abi::process::*;

use super::wait::rusage_of;
use crate::auth::capability::CAP_SYS_RESOURCE;
use crate::kernel::current::CurrentTask;
use crate::SysResult;

pub fn sys_prlimit64(t: &mut CurrentTask, pid: i32, res: u32, new: u64, old: u64) -> SysResult<u64> {
    let tg = if pid == 0 || pid == t.pid() { t.tg().clone() } else { t.k.group(pid).ok_or(errno!(ESRCH))? };
    if res >= RLIM_NLIMITS {
        return Err(errno!(EINVAL));
    }
    let which = res as usize;
    let new = if new != 0 {
        let Rlimit { cur, max } = t.read_obj(new)?;
        if cur > max {
            return Err(errno!(EINVAL));
        }
        if res == RLIMIT_NOFILE && max > crate::vfs::fdtable::NR_OPEN as u64 {
            return Err(errno!(EPERM));
        }
        Some((cur, max))
    } else {
        None
    };
    let prev = {
        let mut r = tg.rlimits.lock().unwrap();
        let prev = r[which];
        if let Some((cur, max)) = new {
            // Raising a hard limit needs CAP_SYS_RESOURCE.
            if max > prev.1 && !t.capable(CAP_SYS_RESOURCE) {
                return Err(errno!(EPERM));
            }
            r[which] = (cur, max);
        }
        prev
    };
    if let (Some((cur, _)), RLIMIT_NOFILE) = (new, res) {
        tg.fds.lock().unwrap().limit = cur.min(crate::vfs::fdtable::NR_OPEN as u64) as u32;
    }
    if old != 0 {
        t.write_obj(old, &Rlimit { cur: prev.0, max: prev.1 })?;
    }
    Ok(0)
}

pub fn sys_getrusage(t: &mut CurrentTask, who: i32, buf: u64) -> SysResult<u64> {
    let cpu = match who {
        RUSAGE_SELF => t.tg().threads_cpu(),
        RUSAGE_CHILDREN => t.tg().state.lock().unwrap().children_cpu_ns,
        RUSAGE_THREAD => t.task.cpu_ns.load(std::sync::atomic::Ordering::Relaxed),
        _ => return Err(errno!(EINVAL)),
    };
    t.write_obj(buf, &rusage_of(cpu))?;
    Ok(0)
}

pub fn sys_times(t: &mut CurrentTask, buf: u64) -> SysResult<u64> {
    let me = t.tg().threads_cpu() / 10_000_000;
    let ch = t.tg().state.lock().unwrap().children_cpu_ns / 10_000_000;
    if buf != 0 {
        t.write_obj(buf, &Tms { utime: me as i64, stime: 0, cutime: ch as i64, cstime: 0 })?;
    }
    Ok((t.k.uptime() * 100.0) as u64)
}
