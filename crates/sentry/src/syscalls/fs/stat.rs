//! stat, fstat, newfstatat, statx, statfs and fstatfs.

use abi::file::{Statfs, Statx, StatxTimestamp};
use abi::Errno;

use super::path::{file, lookup, AT_EMPTY_PATH, AT_FDCWD, AT_SYMLINK_NOFOLLOW};
use crate::kernel::CurrentTask;
use crate::vfs::Stat;
use crate::SysResult;

/// The app's `struct stat` for `s`.
fn to_abi(s: &Stat) -> abi::file::Stat {
    let ts = |t: crate::vfs::Timespec| (t.sec, t.nsec);
    let ((atime, atime_nsec), (mtime, mtime_nsec), (ctime, ctime_nsec)) = (ts(s.atime), ts(s.mtime), ts(s.ctime));
    abi::file::Stat {
        dev: s.dev,
        ino: s.ino,
        nlink: s.nlink,
        mode: s.mode,
        uid: s.uid,
        gid: s.gid,
        rdev: s.rdev,
        size: s.size as i64,
        blksize: s.blksize as i64,
        blocks: s.blocks as i64,
        atime,
        atime_nsec,
        mtime,
        mtime_nsec,
        ctime,
        ctime_nsec,
        ..Default::default()
    }
}

pub fn sys_fstat(t: &mut CurrentTask, fd: i32, buf: u64) -> SysResult<u64> {
    let s = file(t, fd)?.stat()?;
    t.write_obj(buf, &to_abi(&s))?;
    Ok(0)
}

pub fn sys_newfstatat(t: &mut CurrentTask, dirfd: i32, path: u64, buf: u64, flags: u32) -> SysResult<u64> {
    let s = stat_at(t, dirfd, path, flags)?;
    t.write_obj(buf, &to_abi(&s))?;
    Ok(0)
}

pub(super) fn stat_at(t: &CurrentTask, dirfd: i32, path: u64, flags: u32) -> SysResult<Stat> {
    let p = t.read_cstr(path)?;
    if p.is_empty() && flags & AT_EMPTY_PATH != 0 && dirfd != AT_FDCWD {
        return file(t, dirfd)?.stat();
    }
    match lookup(t, dirfd, path, flags) {
        Ok(d) => d.inode.stat(),
        // A magic fd link to a pipe or socket has no path to follow; stat the file itself.
        Err(e) if e == Errno::ENOENT && (flags & AT_SYMLINK_NOFOLLOW == 0) => {
            let d = lookup(t, dirfd, path, flags | AT_SYMLINK_NOFOLLOW).map_err(|_| errno!(ENOENT))?;
            match d.inode.as_any().downcast_ref::<crate::taskfs::proc::FdLink>() {
                Some(link) => link.open_file()?.stat(),
                None => Err(errno!(ENOENT)),
            }
        }
        Err(e) => Err(e),
    }
}

pub(super) fn major_minor(dev: u64) -> (u32, u32) {
    (((dev >> 8) & 0xfff) as u32 | ((dev >> 32) & !0xfff) as u32, ((dev & 0xff) | ((dev >> 12) & !0xff)) as u32)
}

pub fn sys_statx(t: &mut CurrentTask, dirfd: i32, path: u64, flags: u32, _mask: u32, buf: u64) -> SysResult<u64> {
    let s = stat_at(t, dirfd, path, flags)?;
    // Every basic field (STATX_BASIC_STATS) but the birth time, which no
    // filesystem here keeps.
    const STATX_BASIC_STATS: u32 = 0x7ff;
    let ts = |t: crate::vfs::Timespec| StatxTimestamp { sec: t.sec, nsec: t.nsec as u32, reserved: 0 };
    let (rdev_major, rdev_minor) = major_minor(s.rdev);
    let (dev_major, dev_minor) = major_minor(s.dev);
    let x = Statx {
        mask: STATX_BASIC_STATS,
        blksize: s.blksize as u32,
        nlink: s.nlink as u32,
        uid: s.uid,
        gid: s.gid,
        mode: s.mode as u16,
        ino: s.ino,
        size: s.size,
        blocks: s.blocks,
        atime: ts(s.atime),
        ctime: ts(s.ctime),
        mtime: ts(s.mtime),
        rdev_major,
        rdev_minor,
        dev_major,
        dev_minor,
        ..Default::default()
    };
    t.write_obj(buf, &x)?;
    Ok(0)
}

/// What statfs reports for every filesystem: a 4 GiB one, half free, of
/// tmpfs's magic number.
fn statfs() -> Statfs {
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    Statfs {
        fs_type: TMPFS_MAGIC,
        bsize: 4096,
        blocks: 1 << 20,
        bfree: 1 << 19,
        bavail: 1 << 19,
        files: 1 << 20,
        ffree: 1 << 19,
        namelen: 255,
        frsize: 4096,
        ..Default::default()
    }
}

pub fn sys_statfs(t: &mut CurrentTask, path: u64, buf: u64) -> SysResult<u64> {
    lookup(t, AT_FDCWD, path, 0)?;
    t.write_obj(buf, &statfs())?;
    Ok(0)
}

pub fn sys_fstatfs(t: &mut CurrentTask, fd: i32, buf: u64) -> SysResult<u64> {
    file(t, fd)?;
    t.write_obj(buf, &statfs())?;
    Ok(0)
}
