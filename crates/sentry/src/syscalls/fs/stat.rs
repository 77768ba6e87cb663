//! stat, fstat, newfstatat, statx, statfs and fstatfs.

use abi::file::{Statfs, Statx, StatxTimestamp};
use abi::Errno;

use super::path::{file_raw, lookup, AT_EMPTY_PATH, AT_FDCWD, AT_SYMLINK_NOFOLLOW};
use crate::kernel::CurrentTask;
use crate::vfs::Stat;
use crate::vfs::{Dentry, OpenFile};
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
    let s = file_raw(t, fd)?.stat()?;
    t.write_obj(buf, &to_abi(&s))?;
    Ok(0)
}

pub fn sys_newfstatat(t: &mut CurrentTask, dirfd: i32, path: u64, buf: u64, flags: u32) -> SysResult<u64> {
    const AT_NO_AUTOMOUNT: u32 = 0x800;
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH) != 0 {
        return Err(errno!(EINVAL));
    }
    let s = stat_at(t, dirfd, path, flags)?;
    t.write_obj(buf, &to_abi(&s))?;
    Ok(0)
}

pub(super) fn stat_at(t: &CurrentTask, dirfd: i32, path: u64, flags: u32) -> SysResult<Stat> {
    let p = t.read_cstr(path)?;
    if p.is_empty() && flags & AT_EMPTY_PATH != 0 && dirfd != AT_FDCWD {
        return file_raw(t, dirfd)?.stat();
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

/// statfs(2) of the filesystem `dentry` is on: its size as the filesystem
/// says, its magic number by its mount's type unless the filesystem knows
/// better, and ST_RDONLY for a read-only mount.
fn statfs_of(t: &CurrentTask, dentry: &Dentry) -> SysResult<Statfs> {
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    const ST_RDONLY: i64 = 1;
    const ST_VALID: i64 = 0x20;
    let space = dentry.inode.statfs()?;
    let (magic, read_only) = t.k.vfs.mounts.kind_of(&dentry.path()).unwrap_or((None, false));
    Ok(Statfs {
        fs_type: space.magic.or(magic).unwrap_or(TMPFS_MAGIC),
        bsize: space.bsize as i64,
        blocks: space.blocks,
        bfree: space.bfree,
        bavail: space.bavail,
        files: space.files,
        ffree: space.ffree,
        namelen: space.namelen as i64,
        frsize: space.bsize as i64,
        flags: ST_VALID | if read_only { ST_RDONLY } else { 0 },
        ..Default::default()
    })
}

/// fstatfs(2) of a file with no name: the pseudo-filesystem Linux keeps it on.
fn statfs_of_nameless(f: &OpenFile) -> Statfs {
    const PIPEFS_MAGIC: i64 = 0x5049_5045;
    const SOCKFS_MAGIC: i64 = 0x534f_434b;
    const ANON_INODE_FS_MAGIC: i64 = 0x0904_1934;
    let fs_type = match f.ops.stat().map(|s| s.mode & 0o170000) {
        Ok(0o010000) => PIPEFS_MAGIC,
        Ok(0o140000) => SOCKFS_MAGIC,
        _ => ANON_INODE_FS_MAGIC,
    };
    Statfs { fs_type, bsize: 4096, frsize: 4096, namelen: 255, flags: 0x20, ..Default::default() }
}

pub fn sys_statfs(t: &mut CurrentTask, path: u64, buf: u64) -> SysResult<u64> {
    let dentry = lookup(t, AT_FDCWD, path, 0)?;
    let st = statfs_of(t, &dentry)?;
    t.write_obj(buf, &st)?;
    Ok(0)
}

pub fn sys_fstatfs(t: &mut CurrentTask, fd: i32, buf: u64) -> SysResult<u64> {
    let f = file_raw(t, fd)?;
    let st = match f.dentry.as_ref() {
        Some(dentry) => statfs_of(t, dentry)?,
        None => statfs_of_nameless(&f),
    };
    t.write_obj(buf, &st)?;
    Ok(0)
}
