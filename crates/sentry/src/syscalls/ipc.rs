//! System V message queues and semaphores: the calls' arguments copied and
//! checked in Linux's order, over the kernel's `sysv` registry.

use std::time::Instant;

use abi::time::Timespec;

use super::args::UserAddr;
use crate::kernel::sysv::{self, SemBuf, MSGMAX, SEMOPM};
use crate::kernel::CurrentTask;
use crate::SysResult;

/// `sizeof(struct msqid64_ds)` and `sizeof(struct semid64_ds)` on x86-64.
const MSQID_DS: usize = 120;
const SEMID_DS: usize = 104;

pub fn sys_msgget(t: &mut CurrentTask, key: i32, flags: i32) -> SysResult<u64> {
    t.k.clone().sysv.msgget(t, key, flags)
}

/// msgsnd(2): the type is read first (EFAULT), then the size and type are
/// checked, then the text is copied in: at most MSGMAX bytes ever are.
pub fn sys_msgsnd(t: &mut CurrentTask, id: i32, msgp: UserAddr, size: usize, flags: i32) -> SysResult<u64> {
    let mtype = t.read_u64(msgp.0)? as i64;
    if size > MSGMAX || id < 0 {
        return Err(errno!(EINVAL));
    }
    if mtype < 1 {
        return Err(errno!(EINVAL));
    }
    let text = t.read_vec(msgp.0.checked_add(8).ok_or(errno!(EFAULT))?, size)?;
    t.k.clone().sysv.msgsnd(t, id, mtype, text, flags)
}

pub fn sys_msgrcv(
    t: &mut CurrentTask,
    id: i32,
    msgp: UserAddr,
    size: usize,
    msgtyp: i64,
    flags: i32,
) -> SysResult<u64> {
    t.k.clone().sysv.msgrcv(t, id, msgp.0, size, msgtyp, flags)
}

pub fn sys_msgctl(t: &mut CurrentTask, id: i32, cmd: i32, buf: UserAddr) -> SysResult<u64> {
    let t = &*t;
    t.k.sysv.msgctl(t, id, cmd, |n| t.read_vec(buf.0, n.min(MSQID_DS)), |b| t.write_mem(buf.0, b))
}

pub fn sys_semget(t: &mut CurrentTask, key: i32, nsems: i32, flags: i32) -> SysResult<u64> {
    t.k.clone().sysv.semget(t, key, nsems, flags)
}

/// semtimedop(2) (semop(2) with no timeout): the timeout read, the count
/// bounded (EINVAL, E2BIG) before the operations are copied in.
pub fn sys_semtimedop(t: &mut CurrentTask, id: i32, sops: UserAddr, nsops: usize, timeout: UserAddr) -> SysResult<u64> {
    let timeout = match timeout.0 {
        0 => None,
        addr => Some(t.read_obj::<Timespec>(addr)?),
    };
    let nsops = nsops as u32 as usize;
    if nsops < 1 || id < 0 {
        return Err(errno!(EINVAL));
    }
    if nsops > SEMOPM {
        return Err(errno!(E2BIG));
    }
    let raw = t.read_vec(sops.0, nsops * 6)?;
    let ops: Vec<SemBuf> = raw
        .chunks_exact(6)
        .map(|c| SemBuf {
            num: u16::from_ne_bytes([c[0], c[1]]),
            op: i16::from_ne_bytes([c[2], c[3]]),
            flg: i16::from_ne_bytes([c[4], c[5]]),
        })
        .collect();
    let deadline = match timeout {
        None => None,
        Some(ts) => Some(Instant::now().checked_add(ts.duration().ok_or(errno!(EINVAL))?)),
    };
    // A deadline too far to represent is no deadline.
    t.k.clone().sysv.semop(t, id, &ops, deadline.flatten())
}

/// semctl(2): `arg` is the union semun, passed by value.
pub fn sys_semctl(t: &mut CurrentTask, id: i32, num: i32, cmd: i32, arg: u64) -> SysResult<u64> {
    if id < 0 {
        return Err(errno!(EINVAL));
    }
    let k = t.k.clone();
    let s = &k.sysv;
    match cmd {
        sysv::IPC_INFO | sysv::SEM_INFO => {
            let (ret, info) = s.sem_info(cmd);
            t.write_mem(arg, &info)?;
            Ok(ret)
        }
        sysv::IPC_STAT | sysv::SEM_STAT | sysv::SEM_STAT_ANY => {
            let (ret, ds) = s.sem_stat(t, id, cmd)?;
            t.write_mem(arg, &ds)?;
            Ok(ret)
        }
        sysv::GETALL => {
            let vals: Vec<u8> = s.sem_getall(t, id)?.iter().flat_map(|v| v.to_ne_bytes()).collect();
            t.write_mem(arg, &vals)?;
            Ok(0)
        }
        sysv::SETALL => {
            let n = s.sem_count(t, id, 0o222)?;
            let raw = t.read_vec(arg, n * 2)?;
            let vals: Vec<u16> = raw.chunks_exact(2).map(|c| u16::from_ne_bytes([c[0], c[1]])).collect();
            s.sem_setall(t, id, &vals)
        }
        sysv::IPC_SET => {
            let ds = t.read_vec(arg, SEMID_DS)?;
            s.sem_set(t, id, &ds)
        }
        _ => s.semctl(t, id, num, cmd, arg),
    }
}
