//! User and group ids, supplementary groups and capabilities.

use abi::process::*;
use abi::{AsBytes, Errno};

use crate::auth::capability::{self, CAP_SETGID, CAP_SETUID};
use crate::kernel::current::CurrentTask;
use crate::SysResult;

/// Reads a capget/capset header: (words per set, pid). An unknown version is
/// answered with the one the kernel prefers, written back, and EINVAL.
fn cap_header(t: &CurrentTask, header: u64) -> SysResult<(usize, i32)> {
    let CapUserHeader { version, pid } = t.read_obj(header)?;
    match version {
        LINUX_CAPABILITY_VERSION_1 => Ok((1, pid)),
        LINUX_CAPABILITY_VERSION_2 | LINUX_CAPABILITY_VERSION_3 => Ok((2, pid)),
        _ => {
            t.write_obj(header, &LINUX_CAPABILITY_VERSION_3)?;
            Err(errno!(EINVAL))
        }
    }
}

pub fn sys_capget(t: &mut CurrentTask, header: u64, data: u64) -> SysResult<u64> {
    let (words, pid) = match cap_header(t, header) {
        // A probe for the version: no data pointer, no error.
        Err(e) if e == Errno::EINVAL && (data == 0) => return Ok(0),
        r => r?,
    };
    if data == 0 {
        return Ok(0);
    }
    if pid < 0 {
        return Err(errno!(EINVAL));
    }
    let caps = if pid == 0 || pid == t.pid() {
        t.tg().creds.lock().unwrap().caps
    } else {
        let g = t.k.group(pid).ok_or(errno!(ESRCH))?;
        let caps = g.creds.lock().unwrap().caps;
        caps
    };
    let word = |set: u64, w: usize| (set >> (32 * w)) as u32;
    let out: Vec<CapUserData> = (0..words)
        .map(|w| CapUserData {
            effective: word(caps.effective, w),
            permitted: word(caps.permitted, w),
            inheritable: word(caps.inheritable, w),
        })
        .collect();
    t.write_obj(data, out.as_slice())?;
    Ok(0)
}

pub fn sys_capset(t: &mut CurrentTask, header: u64, data: u64) -> SysResult<u64> {
    let (words, pid) = cap_header(t, header)?;
    // Only one's own capabilities can be set.
    if pid != 0 && pid != t.pid() {
        return Err(errno!(EPERM));
    }
    let mut data_words = vec![CapUserData::default(); words];
    t.read_mem(data, data_words.as_bytes_mut())?;
    let (mut effective, mut permitted, mut inheritable) = (0, 0, 0);
    for (w, d) in data_words.iter().enumerate() {
        effective |= u64::from(d.effective) << (32 * w);
        permitted |= u64::from(d.permitted) << (32 * w);
        inheritable |= u64::from(d.inheritable) << (32 * w);
    }
    let mut c = t.tg().creds.lock().unwrap();
    c.caps = capability::capset(&c.caps, effective, permitted, inheritable).ok_or(errno!(EPERM))?;
    Ok(0)
}

pub fn sys_getid(t: &mut CurrentTask, n: u64) -> SysResult<u64> {
    let c = t.tg().creds.lock().unwrap();
    Ok(match n {
        abi::sysno::GETUID => c.uid,
        abi::sysno::GETEUID => c.euid,
        abi::sysno::GETGID => c.gid,
        _ => c.egid,
    } as u64)
}

/// setuid, setgid, setreuid, setregid, setresuid, setresgid: CAP_SETUID
/// (CAP_SETGID for groups) may set any id, others only shuffle their own.
/// Changing user ids changes capabilities as on Linux (`fix_setuid`).
pub fn sys_setid(t: &mut CurrentTask, n: u64, a: [u64; 6]) -> SysResult<u64> {
    use abi::sysno as nr;
    const UNCHANGED: u32 = u32::MAX;
    let v = |i: usize| a[i] as u32;
    let mut c = t.tg().creds.lock().unwrap();
    let old = c.clone();
    let user = matches!(n, nr::SETUID | nr::SETREUID | nr::SETRESUID);
    let privileged = c.has(if user { CAP_SETUID } else { CAP_SETGID });
    // (real, effective, saved) of the kind being set.
    let (r, e, s) = if user { (old.uid, old.euid, old.suid) } else { (old.gid, old.egid, old.sgid) };
    let one_of = |id: u32, allowed: &[u32]| id == UNCHANGED || privileged || allowed.contains(&id);
    let (nr_, ne, ns) = match n {
        nr::SETUID | nr::SETGID => {
            let id = v(0);
            if id == UNCHANGED {
                return Err(errno!(EINVAL));
            }
            if privileged {
                (id, id, id)
            } else if id == r || id == s {
                (r, id, s)
            } else {
                return Err(errno!(EPERM));
            }
        }
        nr::SETREUID | nr::SETREGID => {
            let (nr_, ne) = (v(0), v(1));
            if !one_of(nr_, &[r, e]) || !one_of(ne, &[r, e, s]) {
                return Err(errno!(EPERM));
            }
            let new_r = if nr_ == UNCHANGED { r } else { nr_ };
            let new_e = if ne == UNCHANGED { e } else { ne };
            // The saved id follows the effective one when the real id is set,
            // or the effective one is set to anything but the old real id.
            let new_s = if nr_ != UNCHANGED || (ne != UNCHANGED && ne != r) { new_e } else { s };
            (new_r, new_e, new_s)
        }
        _ => {
            let (nr_, ne, ns) = (v(0), v(1), v(2));
            if ![nr_, ne, ns].iter().all(|&id| one_of(id, &[r, e, s])) {
                return Err(errno!(EPERM));
            }
            let pick = |new: u32, cur: u32| if new == UNCHANGED { cur } else { new };
            (pick(nr_, r), pick(ne, e), pick(ns, s))
        }
    };
    if user {
        (c.uid, c.euid, c.suid) = (nr_, ne, ns);
        capability::fix_setuid(&old, &mut c);
    } else {
        (c.gid, c.egid, c.sgid) = (nr_, ne, ns);
    }
    Ok(0)
}

pub fn sys_getresid(t: &mut CurrentTask, n: u64, a: [u64; 6]) -> SysResult<u64> {
    let c = t.tg().creds.lock().unwrap().clone();
    let ids = if n == abi::sysno::GETRESUID { [c.uid, c.euid, c.suid] } else { [c.gid, c.egid, c.sgid] };
    for (i, id) in ids.iter().enumerate() {
        t.write_obj(a[i], id)?;
    }
    Ok(0)
}

pub fn sys_getgroups(t: &mut CurrentTask, size: i32, list: u64) -> SysResult<u64> {
    let g = t.tg().creds.lock().unwrap().groups.clone();
    if size < 0 {
        return Err(errno!(EINVAL));
    }
    if size == 0 {
        return Ok(g.len() as u64);
    }
    if (size as usize) < g.len() {
        return Err(errno!(EINVAL));
    }
    t.write_obj(list, g.as_slice())?;
    Ok(g.len() as u64)
}

pub fn sys_setgroups(t: &mut CurrentTask, size: usize, list: u64) -> SysResult<u64> {
    if size > 65536 {
        return Err(errno!(EINVAL));
    }
    if !t.capable(CAP_SETGID) {
        return Err(errno!(EPERM));
    }
    let mut g = vec![0u32; size];
    t.read_mem(list, g.as_bytes_mut())?;
    t.tg().creds.lock().unwrap().groups = g;
    Ok(0)
}
