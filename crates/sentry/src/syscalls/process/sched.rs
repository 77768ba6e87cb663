//! Scheduling as the app sees it: CPU affinity, getcpu, policies, membarrier.

use abi::process::*;

use crate::kernel::current::CurrentTask;
use crate::SysResult;

pub fn sys_sched_getaffinity(t: &mut CurrentTask, len: usize, mask: u64) -> SysResult<u64> {
    let n = host::sys::cpu_count();
    let bytes = n.div_ceil(64) * 8;
    if len < bytes || !len.is_multiple_of(8) {
        return Err(errno!(EINVAL));
    }
    let mut b = vec![0u8; bytes];
    for i in 0..n {
        b[i / 8] |= 1 << (i % 8);
    }
    t.write_mem(mask, &b)?;
    Ok(bytes as u64)
}

pub fn sys_getcpu(t: &mut CurrentTask, cpu: u64, node: u64) -> SysResult<u64> {
    if cpu != 0 {
        t.write_obj(cpu, &0u32)?;
    }
    if node != 0 {
        t.write_obj(node, &0u32)?;
    }
    Ok(0)
}

pub fn sys_sched_param(t: &mut CurrentTask, n: u64, a: [u64; 6]) -> SysResult<u64> {
    use abi::sysno as nr;
    // Every task runs SCHED_OTHER at priority 0; the host schedules the stubs.
    let pid = a[0] as i32;
    if pid < 0 {
        return Err(errno!(EINVAL));
    }
    if pid != 0 && t.k.task(pid).is_none() {
        return Err(errno!(ESRCH));
    }
    match n {
        nr::SCHED_GETSCHEDULER => Ok(0),
        nr::SCHED_GETPARAM => {
            t.write_obj(a[1], &SchedParam { priority: 0 })?;
            Ok(0)
        }
        nr::SCHED_SETSCHEDULER => match i32::try_from(a[1]) {
            Ok(SCHED_OTHER | SCHED_BATCH | SCHED_IDLE) => Ok(0),
            Ok(SCHED_FIFO | SCHED_RR) => Err(errno!(EPERM)),
            _ => Err(errno!(EINVAL)),
        },
        nr::SCHED_SETPARAM => Ok(0),
        nr::SCHED_SETAFFINITY => Ok(0),
        _ => Err(errno!(EINVAL)),
    }
}

pub fn sys_membarrier(_t: &mut CurrentTask, cmd: i32, flags: u32) -> SysResult<u64> {
    if flags != 0 {
        return Err(errno!(EINVAL));
    }
    match cmd {
        // No membarrier command is offered: a query says so, every command is refused.
        MEMBARRIER_CMD_QUERY => Ok(0),
        _ => Err(errno!(EINVAL)),
    }
}

const PRIO_PROCESS: i32 = 0;
const PRIO_PGRP: i32 = 1;
const PRIO_USER: i32 = 2;

/// The live processes `which`/`who` names (who 0: the caller's own process,
/// process group or user); EINVAL for an unknown `which`.
fn priority_targets(
    t: &CurrentTask,
    which: i32,
    who: i32,
) -> SysResult<Vec<std::sync::Arc<crate::kernel::ThreadGroup>>> {
    let groups: Vec<_> = t.k.pids.lock().unwrap().groups.values().cloned().collect();
    let live = groups.into_iter().filter(|g| g.state.lock().unwrap().zombie.is_none());
    Ok(match which {
        PRIO_PROCESS => {
            let pid = if who == 0 { t.pid() } else { who };
            live.filter(|g| g.pid == pid).collect()
        }
        PRIO_PGRP => {
            let pgrp = if who == 0 { t.tg().state.lock().unwrap().pgid } else { who };
            live.filter(|g| g.state.lock().unwrap().pgid == pgrp).collect()
        }
        PRIO_USER => {
            let uid = if who == 0 { t.tg().creds.lock().unwrap().uid } else { who as u32 };
            live.filter(|g| g.creds.lock().unwrap().uid == uid).collect()
        }
        _ => return Err(errno!(EINVAL)),
    })
}

/// getpriority(2): the highest priority among the targets, as the kernel
/// returns it (20 - nice, so 1..=40; glibc turns it back into a nice).
pub fn sys_getpriority(t: &mut CurrentTask, which: i32, who: i32) -> SysResult<u64> {
    let targets = priority_targets(t, which, who)?;
    let nice = targets.iter().map(|g| g.nice.load(std::sync::atomic::Ordering::Relaxed)).min();
    Ok((20 - nice.ok_or(errno!(ESRCH))?) as u64)
}

/// setpriority(2): each target's nice becomes `prio` (clamped to -20..=19).
/// Another user's process needs CAP_SYS_NICE (EPERM), and so does a nice
/// lower than RLIMIT_NICE allows (EACCES), as on Linux.
pub fn sys_setpriority(t: &mut CurrentTask, which: i32, who: i32, prio: i32) -> SysResult<u64> {
    use crate::auth::capability::CAP_SYS_NICE;
    let targets = priority_targets(t, which, who)?;
    if targets.is_empty() {
        return Err(errno!(ESRCH));
    }
    let nice = prio.clamp(-20, 19);
    let me = t.tg().creds.lock().unwrap().clone();
    let privileged = me.has(CAP_SYS_NICE);
    let rlimit = t.tg().rlimits.lock().unwrap()[abi::process::RLIMIT_NICE as usize].0;
    let floor = 20 - rlimit.min(40) as i32;
    let mut error = None;
    for g in targets {
        let owner = g.creds.lock().unwrap().clone();
        if me.euid != owner.uid && me.euid != owner.euid && !privileged {
            error = Some(errno!(EPERM));
            continue;
        }
        let current = g.nice.load(std::sync::atomic::Ordering::Relaxed);
        if nice < current && nice < floor && !privileged {
            error = Some(errno!(EACCES));
            continue;
        }
        g.nice.store(nice, std::sync::atomic::Ordering::Relaxed);
    }
    error.map_or(Ok(0), Err)
}

/// ioprio's `which` as setpriority's (IOPRIO_WHO_PROCESS, _PGRP, _USER).
fn ioprio_targets(t: &CurrentTask, which: i32, who: i32) -> SysResult<Vec<std::sync::Arc<crate::kernel::ThreadGroup>>> {
    match which {
        1..=3 => priority_targets(t, which - 1, who),
        _ => Err(errno!(EINVAL)),
    }
}

/// ioprio_get(2): the I/O priority of the first process named.
pub fn sys_ioprio_get(t: &mut CurrentTask, which: i32, who: i32) -> SysResult<u64> {
    let targets = ioprio_targets(t, which, who)?;
    let g = targets.first().ok_or(errno!(ESRCH))?;
    Ok(u64::from(g.ioprio.load(std::sync::atomic::Ordering::Relaxed)))
}

/// ioprio_set(2): classes NONE, RT (CAP_SYS_ADMIN or CAP_SYS_NICE), BE and
/// IDLE; the value is kept as given. It changes no I/O: the host does it.
pub fn sys_ioprio_set(t: &mut CurrentTask, which: i32, who: i32, ioprio: i32) -> SysResult<u64> {
    use crate::auth::capability::{CAP_SYS_ADMIN, CAP_SYS_NICE};
    const IOPRIO_CLASS_RT: i32 = 1;
    let class = (ioprio >> 13) & 0x7;
    if ioprio < 0 || class > 3 {
        return Err(errno!(EINVAL));
    }
    let me = t.tg().creds.lock().unwrap().clone();
    if class == IOPRIO_CLASS_RT && !me.has(CAP_SYS_ADMIN) && !me.has(CAP_SYS_NICE) {
        return Err(errno!(EPERM));
    }
    let targets = ioprio_targets(t, which, who)?;
    if targets.is_empty() {
        return Err(errno!(ESRCH));
    }
    for g in targets {
        let owner = g.creds.lock().unwrap().clone();
        if me.euid != owner.uid && me.euid != owner.euid && !me.has(CAP_SYS_NICE) {
            return Err(errno!(EPERM));
        }
        g.ioprio.store(ioprio as u32, std::sync::atomic::Ordering::Relaxed);
    }
    Ok(0)
}

/// kcmp(2): whether two processes share a kernel object. Objects the Sentry
/// keeps per process (fd table, fs, signal handlers, I/O and SysV undo
/// contexts) are shared exactly when the processes are one; an address space
/// is shared by CLONE_VM/vfork; open files compare as descriptions. Unequal
/// objects are ordered by their obfuscated address, as Linux orders them,
/// so that the order tells nothing of the Sentry's memory layout.
pub fn sys_kcmp(t: &mut CurrentTask, pid1: i32, pid2: i32, kind: i32, idx1: u64, idx2: u64) -> SysResult<u64> {
    const KCMP_FILE: i32 = 0;
    const KCMP_VM: i32 = 1;
    const KCMP_EPOLL_TFD: i32 = 7;
    let find = |pid: i32| t.k.group(pid).filter(|g| g.state.lock().unwrap().zombie.is_none()).ok_or(errno!(ESRCH));
    let (a, b) = (find(pid1)?, find(pid2)?);
    let (p, q) = match kind {
        KCMP_FILE => {
            let fd = |g: &crate::kernel::ThreadGroup, idx: u64| {
                let idx = i32::try_from(idx).map_err(|_| errno!(EBADF))?;
                g.fds.lock().unwrap().get(idx)
            };
            (std::sync::Arc::as_ptr(&fd(&a, idx1)?) as usize, std::sync::Arc::as_ptr(&fd(&b, idx2)?) as usize)
        }
        KCMP_VM => (std::sync::Arc::as_ptr(&a.mm()) as usize, std::sync::Arc::as_ptr(&b.mm()) as usize),
        2..=6 => (std::sync::Arc::as_ptr(&a) as usize, std::sync::Arc::as_ptr(&b) as usize),
        KCMP_EPOLL_TFD => return Err(errno!(EOPNOTSUPP)),
        _ => return Err(errno!(EINVAL)),
    };
    static COOKIES: std::sync::OnceLock<(usize, usize)> = std::sync::OnceLock::new();
    let (xor, mul) = *COOKIES.get_or_init(|| {
        let mut bytes = [0u8; 16];
        let _ = host::sys::getrandom(&mut bytes);
        let word = |b: &[u8]| usize::from_ne_bytes(b.try_into().unwrap_or_default());
        (word(&bytes[..8]), word(&bytes[8..]) | 1)
    });
    let obfuscate = |v: usize| (v ^ xor).wrapping_mul(mul);
    Ok(match obfuscate(p).cmp(&obfuscate(q)) {
        std::cmp::Ordering::Equal => 0,
        std::cmp::Ordering::Less => 1,
        std::cmp::Ordering::Greater => 2,
    })
}

/// sched_rr_get_interval(2): every task is SCHED_OTHER, whose interval
/// Linux reports as 0 here; EINVAL for a negative pid, ESRCH for a missing
/// one.
pub fn sys_sched_rr_get_interval(t: &mut CurrentTask, pid: i32, interval: u64) -> SysResult<u64> {
    if pid < 0 {
        return Err(errno!(EINVAL));
    }
    if pid != 0 && t.k.task(pid).is_none() {
        return Err(errno!(ESRCH));
    }
    t.write_obj(interval, &abi::time::Timespec::default())?;
    Ok(0)
}
