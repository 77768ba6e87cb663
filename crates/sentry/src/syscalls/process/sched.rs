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
