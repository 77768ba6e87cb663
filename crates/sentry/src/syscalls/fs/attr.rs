//! Attributes: access, chmod, chown, truncate, utimensat, umask and the
//! xattr calls.

use super::path::{caller, file, lookup, lookup_as, AT_EMPTY_PATH, AT_FDCWD, AT_SYMLINK_NOFOLLOW};
use crate::kernel::CurrentTask;
use crate::vfs::attr::Change;
use crate::vfs::permission;
use crate::vfs::{SetAttr, Timespec};
use crate::SysResult;

pub fn sys_faccessat(t: &mut CurrentTask, dirfd: i32, path: u64, mode: u32, flags: u32) -> SysResult<u64> {
    const AT_EACCESS: u32 = 0x200;
    if mode & !7 != 0 || flags & !(AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(errno!(EINVAL));
    }
    let mut who = caller(t);
    if flags & AT_EACCESS == 0 {
        who.creds = permission::with_real_ids(&who.creds);
    }
    let d = lookup_as(t, &who, dirfd, path, flags)?;
    if mode != 0 {
        permission::may(&who.creds, &*d.inode, mode)?;
    }
    Ok(0)
}

pub(super) fn setattr_at(
    t: &CurrentTask,
    dirfd: i32,
    path: u64,
    flags: u32,
    change: Change,
    a: SetAttr,
) -> SysResult<u64> {
    let who = caller(t);
    let d = lookup_as(t, &who, dirfd, path, flags)?;
    t.k.vfs.set_attr(&who, &d, change, a)?;
    Ok(0)
}

pub(super) fn setattr_fd(t: &CurrentTask, fd: i32, change: Change, a: SetAttr) -> SysResult<u64> {
    let f = file(t, fd)?;
    t.k.vfs.set_attr_open(&caller(t), &f, change, a)?;
    Ok(0)
}

pub fn sys_fchmodat(t: &mut CurrentTask, dirfd: i32, path: u64, mode: u32) -> SysResult<u64> {
    setattr_at(t, dirfd, path, 0, Change::Mode, SetAttr { mode: Some(mode & 0o7777), ..Default::default() })
}

pub fn sys_fchmod(t: &mut CurrentTask, fd: i32, mode: u32) -> SysResult<u64> {
    setattr_fd(t, fd, Change::Mode, SetAttr { mode: Some(mode & 0o7777), ..Default::default() })
}

pub(super) fn owner(uid: u32, gid: u32) -> SetAttr {
    SetAttr { uid: (uid != u32::MAX).then_some(uid), gid: (gid != u32::MAX).then_some(gid), ..Default::default() }
}

pub fn sys_fchownat(t: &mut CurrentTask, dirfd: i32, path: u64, uid: u32, gid: u32, flags: u32) -> SysResult<u64> {
    setattr_at(t, dirfd, path, flags, Change::Owner, owner(uid, gid))
}

pub fn sys_fchown(t: &mut CurrentTask, fd: i32, uid: u32, gid: u32) -> SysResult<u64> {
    setattr_fd(t, fd, Change::Owner, owner(uid, gid))
}

pub fn sys_truncate(t: &mut CurrentTask, path: u64, len: i64) -> SysResult<u64> {
    if len < 0 {
        return Err(errno!(EINVAL));
    }
    let who = caller(t);
    let d = lookup_as(t, &who, AT_FDCWD, path, 0)?;
    t.k.vfs.truncate(&who, &d, len as u64)?;
    Ok(0)
}

pub fn sys_ftruncate(t: &mut CurrentTask, fd: i32, len: i64) -> SysResult<u64> {
    if len < 0 {
        return Err(errno!(EINVAL));
    }
    let f = file(t, fd)?;
    if !f.writable() {
        return Err(errno!(EINVAL));
    }
    setattr_fd(t, fd, Change::Size, SetAttr { size: Some(len as u64), ..Default::default() })
}

pub fn sys_utimensat(t: &mut CurrentTask, dirfd: i32, path: u64, times: u64, flags: u32) -> SysResult<u64> {
    let times = if times == 0 {
        None
    } else {
        let [at, mt]: [abi::time::Timespec; 2] = t.read_obj(times)?;
        Some([(at.sec, at.nsec), (mt.sec, mt.nsec)])
    };
    set_times(t, dirfd, path, flags, times)
}

/// utimensat's work, with the (seconds, nanoseconds) pairs for atime and
/// mtime already read (None: both now). `path` 0 means `dirfd` itself.
pub(crate) fn set_times(
    t: &mut CurrentTask,
    dirfd: i32,
    path: u64,
    flags: u32,
    times: Option<[(i64, i64); 2]>,
) -> SysResult<u64> {
    const UTIME_NOW: i64 = (1 << 30) - 1;
    const UTIME_OMIT: i64 = (1 << 30) - 2;
    let now = Timespec::now();
    let mut change = Change::TouchTimes;
    let (at, mt) = match times {
        None => (Some(now), Some(now)),
        Some(pairs) => {
            if pairs.iter().any(|&(_, nsec)| nsec != UTIME_NOW) {
                change = Change::SetTimes;
            }
            let ts = |(sec, nsec): (i64, i64)| match nsec {
                UTIME_NOW => Ok(Some(now)),
                UTIME_OMIT => Ok(None),
                n if !(0..1_000_000_000).contains(&n) => Err(errno!(EINVAL)),
                n => Ok(Some(Timespec { sec, nsec: n })),
            };
            (ts(pairs[0])?, ts(pairs[1])?)
        }
    };
    let a = SetAttr { atime: at, mtime: mt, ..Default::default() };
    if path == 0 {
        return setattr_fd(t, dirfd, change, a);
    }
    setattr_at(t, dirfd, path, flags, change, a)
}

pub fn sys_umask(t: &mut CurrentTask, mask: u32) -> SysResult<u64> {
    let mut fs = t.tg().fs.lock().unwrap();
    let old = fs.umask;
    fs.umask = mask & 0o777;
    Ok(old as u64)
}

/// getxattr family: no filesystem in the sandbox stores extended attributes yet. Reads
/// report "no such attribute" for existing files, writes "not supported".
pub fn sys_xattr(t: &mut CurrentTask, n: u64, a: [u64; 6]) -> SysResult<u64> {
    use abi::sysno as nr;
    // Check the file exists, so ENOENT/EBADF come first as on Linux.
    match n {
        nr::FGETXATTR | nr::FSETXATTR | nr::FLISTXATTR | nr::FREMOVEXATTR => {
            file(t, a[0] as i32)?;
        }
        nr::LGETXATTR | nr::LSETXATTR | nr::LLISTXATTR | nr::LREMOVEXATTR => {
            lookup(t, AT_FDCWD, a[0], AT_SYMLINK_NOFOLLOW)?;
        }
        _ => {
            lookup(t, AT_FDCWD, a[0], 0)?;
        }
    }
    match n {
        nr::LISTXATTR | nr::LLISTXATTR | nr::FLISTXATTR => Ok(0),
        nr::GETXATTR | nr::LGETXATTR | nr::FGETXATTR | nr::REMOVEXATTR | nr::LREMOVEXATTR | nr::FREMOVEXATTR => {
            Err(errno!(ENODATA))
        }
        _ => Err(errno!(EOPNOTSUPP)),
    }
}
