//! prctl and arch_prctl: the per-process switches programs flip.

use abi::process::*;
use abi::x86::{ARCH_GET_FS, ARCH_GET_GS, ARCH_SET_FS, ARCH_SET_GS};
use abi::Errno;

use crate::auth::capability::{self, CAP_SETPCAP};
use crate::kernel::current::CurrentTask;
use crate::SysResult;

pub fn sys_arch_prctl(t: &mut CurrentTask, code: u32, addr: u64) -> SysResult<u64> {
    match code {
        ARCH_SET_FS | ARCH_SET_GS => {
            if addr >= t.k.platform.layout().top {
                return Err(errno!(EPERM));
            }
            if code == ARCH_SET_FS {
                t.regs.fs_base = addr;
            } else {
                t.regs.gs_base = addr;
            }
            Ok(0)
        }
        ARCH_GET_FS => {
            t.write_obj(addr, &t.regs.fs_base)?;
            Ok(0)
        }
        ARCH_GET_GS => {
            t.write_obj(addr, &t.regs.gs_base)?;
            Ok(0)
        }
        _ => Err(errno!(EINVAL)),
    }
}

pub fn sys_prctl(t: &mut CurrentTask, op: u32, a: [u64; 6]) -> SysResult<u64> {
    let arg = a[1];
    match op {
        PR_SET_NAME => {
            let mut name = t.tg().mm().lock().unwrap().read_cstr(arg, 4096).or_else(|e| {
                if e == Errno::ENAMETOOLONG {
                    Ok(Vec::new())
                } else {
                    Err(e)
                }
            })?;
            name.truncate(15);
            *t.tg().comm.lock().unwrap() = name;
            Ok(0)
        }
        PR_GET_NAME => {
            let mut name = t.tg().comm.lock().unwrap().clone();
            name.resize(16, 0);
            t.write_mem(arg, &name)?;
            Ok(0)
        }
        PR_GET_DUMPABLE => Ok(1),
        PR_SET_DUMPABLE | PR_SET_PDEATHSIG => Ok(0),
        PR_SET_NO_NEW_PRIVS => {
            if arg != 1 || a[2..5].iter().any(|&x| x != 0) {
                return Err(errno!(EINVAL));
            }
            t.tg().creds.lock().unwrap().no_new_privs = true;
            Ok(0)
        }
        PR_GET_NO_NEW_PRIVS => {
            if a[1..5].iter().any(|&x| x != 0) {
                return Err(errno!(EINVAL));
            }
            Ok(u64::from(t.tg().creds.lock().unwrap().no_new_privs))
        }
        PR_GET_KEEPCAPS => Ok(u64::from(t.tg().creds.lock().unwrap().keep_caps)),
        PR_SET_KEEPCAPS => {
            if arg > 1 {
                return Err(errno!(EINVAL));
            }
            t.tg().creds.lock().unwrap().keep_caps = arg == 1;
            Ok(0)
        }
        PR_GET_SECUREBITS => Ok(if t.tg().creds.lock().unwrap().keep_caps { SECBIT_KEEP_CAPS } else { 0 }),
        PR_SET_SECUREBITS => {
            let mut c = t.tg().creds.lock().unwrap();
            if !c.has(CAP_SETPCAP) {
                return Err(errno!(EPERM));
            }
            // KEEP_CAPS is the one securebit modelled; the others (noroot,
            // no setuid fixup, the locks) are refused rather than ignored.
            if arg & !SECBIT_KEEP_CAPS != 0 {
                return Err(errno!(EINVAL));
            }
            c.keep_caps = arg != 0;
            Ok(0)
        }
        PR_CAPBSET_READ => {
            if !capability::valid(arg) {
                return Err(errno!(EINVAL));
            }
            Ok(u64::from(t.tg().creds.lock().unwrap().caps.bounding & capability::bit(arg as u32) != 0))
        }
        PR_CAPBSET_DROP => {
            let mut c = t.tg().creds.lock().unwrap();
            if !c.has(CAP_SETPCAP) {
                return Err(errno!(EPERM));
            }
            if !capability::valid(arg) {
                return Err(errno!(EINVAL));
            }
            c.caps.bounding &= !capability::bit(arg as u32);
            Ok(0)
        }
        PR_CAP_AMBIENT => prctl_cap_ambient(t, arg, a[2], a[3], a[4]),
        _ => Err(errno!(EINVAL)),
    }
}

/// prctl(PR_CAP_AMBIENT, op, cap, 0, 0).
fn prctl_cap_ambient(t: &CurrentTask, op: u64, cap: u64, arg4: u64, arg5: u64) -> SysResult<u64> {
    if arg4 != 0 || arg5 != 0 {
        return Err(errno!(EINVAL));
    }
    let mut c = t.tg().creds.lock().unwrap();
    if op == PR_CAP_AMBIENT_CLEAR_ALL {
        if cap != 0 {
            return Err(errno!(EINVAL));
        }
        c.caps.ambient = 0;
        return Ok(0);
    }
    if !capability::valid(cap) {
        return Err(errno!(EINVAL));
    }
    let bit = capability::bit(cap as u32);
    match op {
        PR_CAP_AMBIENT_IS_SET => Ok(u64::from(c.caps.ambient & bit != 0)),
        PR_CAP_AMBIENT_RAISE => {
            // Only what the process may hold and pass on.
            if c.caps.permitted & c.caps.inheritable & bit == 0 {
                return Err(errno!(EPERM));
            }
            c.caps.ambient |= bit;
            Ok(0)
        }
        PR_CAP_AMBIENT_LOWER => {
            c.caps.ambient &= !bit;
            Ok(0)
        }
        _ => Err(errno!(EINVAL)),
    }
}
