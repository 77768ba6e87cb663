//! Process groups and sessions: setpgid, getpgid, setsid, getsid.

use crate::kernel::current::CurrentTask;
use crate::SysResult;

pub fn sys_setpgid(t: &mut CurrentTask, pid: i32, pgid: i32) -> SysResult<u64> {
    if pgid < 0 {
        return Err(errno!(EINVAL));
    }
    let tg = if pid == 0 || pid == t.pid() {
        t.tg().clone()
    } else {
        let g = t.k.group(pid).ok_or(errno!(ESRCH))?;
        if g.ppid() != t.pid() {
            return Err(errno!(ESRCH));
        }
        g
    };
    let pgid = if pgid == 0 { tg.pid } else { pgid };
    let mut st = tg.state.lock().unwrap();
    if st.sid == tg.pid {
        return Err(errno!(EPERM));
    }
    st.pgid = pgid;
    Ok(0)
}

pub fn sys_getpgid(t: &mut CurrentTask, pid: i32) -> SysResult<u64> {
    let tg = if pid == 0 { t.tg().clone() } else { t.k.group(pid).ok_or(errno!(ESRCH))? };
    let pgid = tg.state.lock().unwrap().pgid;
    Ok(pgid as u64)
}

pub fn sys_setsid(t: &mut CurrentTask) -> SysResult<u64> {
    let pid = t.pid();
    let groups: Vec<_> = t.k.pids.lock().unwrap().groups.values().cloned().collect();
    if groups.iter().any(|g| g.pid != pid && g.state.lock().unwrap().pgid == pid) {
        return Err(errno!(EPERM));
    }
    let mut st = t.tg().state.lock().unwrap();
    if st.pgid == pid {
        return Err(errno!(EPERM));
    }
    st.pgid = pid;
    st.sid = pid;
    Ok(pid as u64)
}

pub fn sys_getsid(t: &mut CurrentTask, pid: i32) -> SysResult<u64> {
    let tg = if pid == 0 { t.tg().clone() } else { t.k.group(pid).ok_or(errno!(ESRCH))? };
    let sid = tg.state.lock().unwrap().sid;
    Ok(sid as u64)
}
