//! Descriptors: dup, fcntl (with record locks), flock, pipe and ioctl.

use std::sync::Arc;

use super::open::release_locks;
use super::path::file;
use crate::auth::capability::CAP_SYS_RESOURCE;
use crate::fs::pipe::Pipe;
use crate::kernel::CurrentTask;
use crate::vfs::open::{O_APPEND, O_CLOEXEC, O_NONBLOCK};
use crate::vfs::{IoctlArg, OpenFile};
use crate::SysResult;
use abi::file::Flock;

pub(super) fn sys_record_lock(t: &mut CurrentTask, f: &Arc<OpenFile>, cmd: u32, arg: u64) -> SysResult<u64> {
    use crate::vfs::lock::{RecordLock, F_RDLCK, F_UNLCK, F_WRLCK};
    const F_GETLK: u32 = 5;
    const F_SETLKW: u32 = 7;
    let given: Flock = t.read_obj(arg)?;
    let (kind, whence, start, len) = (given.kind, given.whence, given.start, given.len);
    if ![F_RDLCK, F_WRLCK, F_UNLCK].contains(&kind) {
        return Err(errno!(EINVAL));
    }
    if cmd != F_GETLK && kind != F_UNLCK && ((kind == F_RDLCK && !f.readable()) || (kind == F_WRLCK && !f.writable())) {
        return Err(errno!(EBADF));
    }
    let st = f.stat()?;
    let base = match whence {
        0 => 0,
        1 => *f.pos.lock().unwrap() as i64,
        2 => st.size as i64,
        _ => return Err(errno!(EINVAL)),
    };
    let mut s = base.checked_add(start).ok_or(errno!(EOVERFLOW))?;
    let mut e = if len == 0 { i64::MAX } else { s.checked_add(len).ok_or(errno!(EOVERFLOW))? };
    if len < 0 {
        (s, e) = (e, s);
    }
    if s < 0 {
        return Err(errno!(EINVAL));
    }
    let end = if len == 0 { u64::MAX } else { e as u64 };
    let want = RecordLock { owner: t.pid() as i64, start: s as u64, end, kind };
    let key = (st.dev, st.ino);
    if cmd == F_GETLK {
        let out = match t.k.locks.conflict(key, &want) {
            None => Flock { kind: F_UNLCK, ..given },
            Some(l) => Flock {
                kind: l.kind,
                whence: 0,
                start: l.start as i64,
                len: if l.end == u64::MAX { 0 } else { (l.end - l.start) as i64 },
                pid: l.owner as i32,
                ..given
            },
        };
        t.write_obj(arg, &out)?;
        return Ok(0);
    }
    if cmd == F_SETLKW {
        let k = t.k.clone();
        return t.block_on(&[&k.locks.released], None, || k.locks.set(key, want)).map(|_| 0);
    }
    t.k.locks.set(key, want).map(|_| 0)
}

pub fn sys_dup(t: &mut CurrentTask, fd: i32) -> SysResult<u64> {
    let mut fds = t.tg().fds.lock().unwrap();
    let f = fds.get(fd)?;
    Ok(fds.add(f, false, 0)? as u64)
}

pub fn sys_dup2(t: &mut CurrentTask, old: i32, new: i32) -> SysResult<u64> {
    if old == new {
        t.tg().fds.lock().unwrap().get(old)?;
        return Ok(new as u64);
    }
    sys_dup3(t, old, new, 0)
}

pub fn sys_dup3(t: &mut CurrentTask, old: i32, new: i32, flags: u32) -> SysResult<u64> {
    if old == new || flags & !O_CLOEXEC != 0 {
        return Err(errno!(EINVAL));
    }
    let replaced = {
        let mut fds = t.tg().fds.lock().unwrap();
        let f = fds.get(old)?;
        fds.set(new, f, flags & O_CLOEXEC != 0)?
    };
    if let Some(r) = &replaced {
        release_locks(t, r);
    }
    drop(replaced);
    Ok(new as u64)
}

pub fn sys_fcntl(t: &mut CurrentTask, fd: i32, cmd: u32, arg: u64) -> SysResult<u64> {
    const F_DUPFD: u32 = 0;
    const F_GETFD: u32 = 1;
    const F_SETFD: u32 = 2;
    const F_GETFL: u32 = 3;
    const F_SETFL: u32 = 4;
    const F_DUPFD_CLOEXEC: u32 = 1030;
    const F_SETPIPE_SZ: u32 = 1031;
    const F_GETPIPE_SZ: u32 = 1032;
    let mut fds = t.tg().fds.lock().unwrap();
    let f = fds.get(fd)?;
    match cmd {
        F_DUPFD | F_DUPFD_CLOEXEC => {
            if arg >= fds.limit as u64 {
                return Err(errno!(EINVAL));
            }
            Ok(fds.add(f, cmd == F_DUPFD_CLOEXEC, arg as i32)? as u64)
        }
        F_GETFD => Ok(fds.cloexec(fd)? as u64),
        F_SETFD => {
            fds.set_cloexec(fd, arg & 1 != 0)?;
            Ok(0)
        }
        F_GETFL => Ok(f.flags() as u64),
        F_SETFL => {
            let settable = O_APPEND | O_NONBLOCK | 0o40000 | 0o1000000;
            let new = (f.flags() & !settable) | (arg as u32 & settable);
            f.flags.store(new, std::sync::atomic::Ordering::Relaxed);
            Ok(0)
        }
        5..=7 => {
            drop(fds);
            sys_record_lock(t, &f, cmd, arg)
        }
        F_GETPIPE_SZ => Ok(Pipe::of(f.ops.as_ref()).ok_or(errno!(EBADF))?.size() as u64),
        F_SETPIPE_SZ => {
            drop(fds);
            let pipe = Pipe::of(f.ops.as_ref()).ok_or(errno!(EBADF))?;
            Ok(pipe.set_size(arg, t.capable(CAP_SYS_RESOURCE))? as u64)
        }
        // Open-file-description locks, leases and notifications are not implemented.
        _ => Err(errno!(EINVAL)),
    }
}

pub fn sys_pipe2(t: &mut CurrentTask, fds_ptr: u64, flags: u32) -> SysResult<u64> {
    if flags & !(O_CLOEXEC | O_NONBLOCK | 0o40000) != 0 {
        return Err(errno!(EINVAL));
    }
    let (r, w) = Pipe::pair();
    let nb = flags & O_NONBLOCK;
    let rf = OpenFile::new(r, None, nb);
    let wf = OpenFile::new(w, None, 1 | nb);
    let cloexec = flags & O_CLOEXEC != 0;
    let (a, b) = {
        let mut fds = t.tg().fds.lock().unwrap();
        let a = fds.add(rf, cloexec, 0)?;
        let b = match fds.add(wf, cloexec, 0) {
            Ok(b) => b,
            Err(e) => {
                let _ = fds.remove(a);
                return Err(e);
            }
        };
        (a, b)
    };
    if let Err(e) = t.write_obj(fds_ptr, &[a, b]) {
        let mut fds = t.tg().fds.lock().unwrap();
        let _ = fds.remove(a);
        let _ = fds.remove(b);
        return Err(e);
    }
    Ok(0)
}

pub fn sys_ioctl(t: &mut CurrentTask, fd: i32, req: u64, arg: u64) -> SysResult<u64> {
    const TCGETS: u64 = 0x5401;
    const TCSETS: u64 = 0x5402;
    const TCSETSW: u64 = 0x5403;
    const TCSETSF: u64 = 0x5404;
    const TIOCGPGRP: u64 = 0x540f;
    const TIOCSPGRP: u64 = 0x5410;
    const TIOCGWINSZ: u64 = 0x5413;
    const TIOCSWINSZ: u64 = 0x5414;
    const FIONREAD: u64 = 0x541b;
    const FIONBIO: u64 = 0x5421;
    const FIONCLEX: u64 = 0x5450;
    const FIOCLEX: u64 = 0x5451;
    let f = file(t, fd)?;
    // Any socket answers the interface ioctls, as on Linux.
    if crate::syscalls::ifreq::is_ifreq(req) && f.ops.stat().is_ok_and(|s| s.mode & 0o170000 == 0o140000) {
        let inet4 = f
            .ops
            .as_any_ops()
            .downcast_ref::<crate::net::InetSocket>()
            .is_some_and(|s| s.family == crate::net::addr::Family::V4);
        return crate::syscalls::ifreq::ioctl(t, req, arg, inet4);
    }
    match req {
        FIOCLEX | FIONCLEX => {
            t.tg().fds.lock().unwrap().set_cloexec(fd, req == FIOCLEX)?;
            return Ok(0);
        }
        FIONBIO => {
            let on = t.read_u32(arg)? != 0;
            let fl = f.flags();
            f.flags.store(if on { fl | O_NONBLOCK } else { fl & !O_NONBLOCK }, std::sync::atomic::Ordering::Relaxed);
            return Ok(0);
        }
        _ => {}
    }
    let (size, copy_in, copy_out) = match req {
        TCGETS => (36, false, true),
        TCSETS | TCSETSW | TCSETSF => (36, true, false),
        TIOCGWINSZ => (8, false, true),
        TIOCSWINSZ => (8, true, false),
        TIOCGPGRP => (4, false, true),
        TIOCSPGRP => (4, true, false),
        FIONREAD => (4, false, true),
        0x8004_5430 => (4, false, true), // TIOCGPTN
        0x4004_5431 => (4, true, false), // TIOCSPTLCK
        0x5429 => (4, false, true),      // TIOCGSID
        _ => (0, false, false),
    };
    let buf = if copy_in { t.read_vec(arg, size)? } else { vec![0u8; size] };
    let mut a = IoctlArg { raw: arg, buf, write_back: copy_out };
    let r = f.ops.ioctl(&f, req, &mut a)?;
    if a.write_back && !a.buf.is_empty() {
        t.write_mem(arg, &a.buf)?;
    }
    Ok(r)
}

pub fn sys_flock(t: &mut CurrentTask, fd: i32, op: u32) -> SysResult<u64> {
    use crate::vfs::lock::{ofd_owner, RecordLock, F_RDLCK, F_UNLCK, F_WRLCK};
    const LOCK_SH: u32 = 1;
    const LOCK_EX: u32 = 2;
    const LOCK_NB: u32 = 4;
    const LOCK_UN: u32 = 8;
    let f = file(t, fd)?;
    let kind = match op & !LOCK_NB {
        LOCK_SH => F_RDLCK,
        LOCK_EX => F_WRLCK,
        LOCK_UN => F_UNLCK,
        _ => return Err(errno!(EINVAL)),
    };
    let st = f.stat()?;
    let key = (st.dev, st.ino);
    let want = RecordLock { owner: ofd_owner(&f), start: 0, end: u64::MAX, kind };
    if op & LOCK_NB != 0 || kind == F_UNLCK {
        return t.k.flocks.set(key, want).map(|_| 0);
    }
    let k = t.k.clone();
    t.block_on(&[&k.flocks.released], None, || k.flocks.set(key, want)).map(|_| 0)
}

/// posix_fadvise (fadvise64): advice changes nothing here (the Sentry keeps
/// no page cache to drop or read ahead), but it is checked as Linux checks
/// it: EBADF, ESPIPE for a pipe, EINVAL for a negative length, a socket or
/// an unknown advice.
pub fn sys_fadvise64(t: &mut CurrentTask, fd: i32, _offset: i64, len: i64, advice: i32) -> SysResult<u64> {
    const POSIX_FADV_NOREUSE: i32 = 5;
    let f = file(t, fd)?;
    match f.ops.stat().map(|s| s.mode & 0o170000) {
        Ok(0o010000) => return Err(errno!(ESPIPE)),
        Ok(0o140000) => return Err(errno!(EINVAL)),
        _ => {}
    }
    if len < 0 || !(0..=POSIX_FADV_NOREUSE).contains(&advice) {
        return Err(errno!(EINVAL));
    }
    Ok(0)
}
