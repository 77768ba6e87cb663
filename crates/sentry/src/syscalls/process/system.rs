//! The system as a process sees it: uname and the UTS names, sysinfo, getrandom.

use abi::process::*;

use crate::auth::capability::CAP_SYS_ADMIN;
use crate::kernel::current::CurrentTask;
use crate::taskfs::sysctl::UTS_NAME_MAX;
use crate::SysResult;

pub fn sys_uname(t: &mut CurrentTask, buf: u64) -> SysResult<u64> {
    /// A utsname field: the name, cut to leave room for its NUL.
    fn field(name: &[u8]) -> [u8; UTS_FIELD_LEN] {
        let mut f = [0u8; UTS_FIELD_LEN];
        let n = name.len().min(UTS_FIELD_LEN - 1);
        f[..n].copy_from_slice(&name[..n]);
        f
    }
    let host = t.k.hostname.lock().unwrap().clone();
    let uts = Utsname {
        sysname: field(b"Linux"),
        nodename: field(&host),
        release: field(crate::RELEASE.as_bytes()),
        version: field(crate::VERSION.as_bytes()),
        machine: field(b"x86_64"),
        domainname: field(&t.k.domainname_shown()),
    };
    t.write_obj(buf, &uts)?;
    Ok(0)
}

/// sethostname(2) and setdomainname(2): the UTS names are the sandbox's, and
/// changing them needs CAP_SYS_ADMIN.
pub fn sys_setuts(t: &mut CurrentTask, which: u64, name: u64, len: usize) -> SysResult<u64> {
    if !t.capable(CAP_SYS_ADMIN) {
        return Err(errno!(EPERM));
    }
    if len > UTS_NAME_MAX {
        return Err(errno!(EINVAL));
    }
    let n = t.read_vec(name, len)?;
    let slot = if which == abi::sysno::SETHOSTNAME { &t.k.hostname } else { &t.k.domainname };
    *slot.lock().unwrap() = n;
    Ok(0)
}

pub fn sys_sysinfo(t: &mut CurrentTask, buf: u64) -> SysResult<u64> {
    let total = t.k.memory_total;
    let used = t.k.mem.resident_bytes();
    let info = Sysinfo {
        uptime: t.k.uptime() as i64,
        totalram: total,
        freeram: total.saturating_sub(used),
        procs: t.k.pids.lock().unwrap().groups.len() as u16,
        mem_unit: 1,
        ..Default::default()
    };
    t.write_obj(buf, &info)?;
    Ok(0)
}

pub fn sys_getrandom(t: &mut CurrentTask, buf: u64, len: usize, flags: u32) -> SysResult<u64> {
    const GRND_NONBLOCK: u32 = 1;
    const GRND_RANDOM: u32 = 2;
    const GRND_INSECURE: u32 = 4;
    if flags & !(GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE) != 0
        || flags & (GRND_RANDOM | GRND_INSECURE) == (GRND_RANDOM | GRND_INSECURE)
    {
        return Err(errno!(EINVAL));
    }
    // Linux gives at most 32 MiB per call; the Sentry holds 64 KiB of it at a time.
    const MAX: usize = 1 << 25;
    let mut piece = [0u8; 64 << 10];
    let (len, mut done) = (len.min(MAX), 0);
    while done < len {
        let n = piece.len().min(len - done);
        host::sys::getrandom(&mut piece[..n]).map_err(|_| errno!(EIO))?;
        match t.write_mem(buf.wrapping_add(done as u64), &piece[..n]) {
            Ok(()) => done += n,
            Err(_) if done > 0 => break,
            Err(e) => return Err(e),
        }
    }
    Ok(done as u64)
}
