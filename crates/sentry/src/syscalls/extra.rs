//! Calls the syscall table showed to be cheap once their neighbours were
//! there: each is a check of its arguments and a call of existing work.

use super::args::{Fd, UserAddr, UserCStr};
use super::fs::{file, set_times, AT_FDCWD};
use crate::kernel::CurrentTask;
use crate::vfs::FileType;
use crate::SysResult;

/// sync_file_range(2): moat's files reach the Gofer or memory as they are
/// written, so only the arguments are checked, in Linux's order.
pub fn sys_sync_file_range(t: &mut CurrentTask, fd: Fd, offset: i64, nbytes: i64, flags: u32) -> SysResult<u64> {
    const VALID: u32 = 0x1 | 0x2 | 0x4; // WAIT_BEFORE | WRITE | WAIT_AFTER
    if flags & !VALID != 0 || offset < 0 || nbytes < 0 || offset.checked_add(nbytes).is_none() {
        return Err(errno!(EINVAL));
    }
    let f = file(t, fd.0)?;
    match f.stat()?.file_type() {
        FileType::Regular | FileType::Directory | FileType::Symlink | FileType::BlockDev => Ok(0),
        _ => Err(errno!(ESPIPE)),
    }
}

/// utime(2): whole seconds from a `struct utimbuf`, or now if NULL.
pub fn sys_utime(t: &mut CurrentTask, path: UserCStr, times: UserAddr) -> SysResult<u64> {
    let times = match times.0 {
        0 => None,
        addr => Some([(t.read_u64(addr)? as i64, 0), (t.read_u64(addr + 8)? as i64, 0)]),
    };
    set_times(t, AT_FDCWD, path.0, 0, times)
}

/// futimesat(2) (and utimes(2) at AT_FDCWD): two `struct timeval`s, or now
/// if NULL. A NULL path names `dirfd` itself, as futimes does.
pub fn sys_futimesat(t: &mut CurrentTask, dirfd: Fd, path: UserCStr, times: UserAddr) -> SysResult<u64> {
    if path.0 == 0 && dirfd.0 == AT_FDCWD {
        return Err(errno!(EFAULT));
    }
    let times = match times.0 {
        0 => None,
        addr => {
            let mut pair = [(0, 0); 2];
            for (i, slot) in pair.iter_mut().enumerate() {
                let sec = t.read_u64(addr + 16 * i as u64)? as i64;
                let usec = t.read_u64(addr + 16 * i as u64 + 8)? as i64;
                if !(0..1_000_000).contains(&usec) {
                    return Err(errno!(EINVAL));
                }
                *slot = (sec, usec * 1000);
            }
            Some(pair)
        }
    };
    set_times(t, dirfd.0, path.0, 0, times)
}

/// personality(2): every process is PER_LINUX; asking (0xffffffff) or
/// setting PER_LINUX answers so, any other persona is EINVAL.
pub fn sys_personality(_t: &mut CurrentTask, persona: u32) -> SysResult<u64> {
    const PER_LINUX: u32 = 0;
    const QUERY: u32 = 0xffff_ffff;
    match persona {
        PER_LINUX | QUERY => Ok(u64::from(PER_LINUX)),
        _ => Err(errno!(EINVAL)),
    }
}

/// sched_get_priority_max/min(2): 1–99 for the real-time policies, 0 for the others.
pub fn sched_priority(policy: i32, max: bool) -> SysResult<u64> {
    const SCHED_OTHER: i32 = 0;
    const SCHED_FIFO: i32 = 1;
    const SCHED_RR: i32 = 2;
    const SCHED_BATCH: i32 = 3;
    const SCHED_IDLE: i32 = 5;
    match policy {
        SCHED_OTHER | SCHED_BATCH | SCHED_IDLE => Ok(0),
        SCHED_FIFO | SCHED_RR => Ok(if max { 99 } else { 1 }),
        _ => Err(errno!(EINVAL)),
    }
}
