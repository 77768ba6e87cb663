//! stat, fstat, newfstatat, statx, statfs and fstatfs.

use abi::Errno;

use super::path::{file, lookup, AT_EMPTY_PATH, AT_FDCWD, AT_SYMLINK_NOFOLLOW};
use crate::kernel::CurrentTask;
use crate::vfs::Stat;
use crate::SysResult;

pub(super) fn stat_bytes(s: &Stat) -> Vec<u8> {
    let mut b = Vec::with_capacity(144);
    for v in [s.dev, s.ino, s.nlink] {
        b.extend(v.to_ne_bytes());
    }
    b.extend(s.mode.to_ne_bytes());
    b.extend(s.uid.to_ne_bytes());
    b.extend(s.gid.to_ne_bytes());
    b.extend(0u32.to_ne_bytes());
    for v in [s.rdev, s.size, s.blksize, s.blocks] {
        b.extend(v.to_ne_bytes());
    }
    for ts in [s.atime, s.mtime, s.ctime] {
        b.extend(ts.sec.to_ne_bytes());
        b.extend(ts.nsec.to_ne_bytes());
    }
    b.extend([0u8; 24]);
    b
}

pub fn sys_fstat(t: &mut CurrentTask, fd: i32, buf: u64) -> SysResult<u64> {
    let s = file(t, fd)?.stat()?;
    t.write_mem(buf, &stat_bytes(&s))?;
    Ok(0)
}

pub fn sys_newfstatat(t: &mut CurrentTask, dirfd: i32, path: u64, buf: u64, flags: u32) -> SysResult<u64> {
    let s = stat_at(t, dirfd, path, flags)?;
    t.write_mem(buf, &stat_bytes(&s))?;
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
    let mut b = vec![0u8; 256];
    let put = |b: &mut Vec<u8>, at: usize, v: &[u8]| b[at..at + v.len()].copy_from_slice(v);
    put(&mut b, 0, &0x7ffu32.to_ne_bytes());
    put(&mut b, 4, &(s.blksize as u32).to_ne_bytes());
    put(&mut b, 16, &(s.nlink as u32).to_ne_bytes());
    put(&mut b, 20, &s.uid.to_ne_bytes());
    put(&mut b, 24, &s.gid.to_ne_bytes());
    put(&mut b, 28, &(s.mode as u16).to_ne_bytes());
    put(&mut b, 32, &s.ino.to_ne_bytes());
    put(&mut b, 40, &s.size.to_ne_bytes());
    put(&mut b, 48, &s.blocks.to_ne_bytes());
    for (at, ts) in [(64, s.atime), (96, s.ctime), (112, s.mtime)] {
        put(&mut b, at, &ts.sec.to_ne_bytes());
        put(&mut b, at + 8, &(ts.nsec as u32).to_ne_bytes());
    }
    let (rmaj, rmin) = major_minor(s.rdev);
    let (dmaj, dmin) = major_minor(s.dev);
    put(&mut b, 128, &rmaj.to_ne_bytes());
    put(&mut b, 132, &rmin.to_ne_bytes());
    put(&mut b, 136, &dmaj.to_ne_bytes());
    put(&mut b, 140, &dmin.to_ne_bytes());
    t.write_mem(buf, &b)?;
    Ok(0)
}

pub(super) fn statfs_bytes(magic: u64) -> Vec<u8> {
    let mut b = Vec::new();
    for v in [magic, 4096, 1 << 20, 1 << 19, 1 << 19, 1 << 20, 1 << 19, 0, 255, 4096, 0] {
        b.extend((v as i64).to_ne_bytes());
    }
    b.resize(120, 0);
    b
}

pub fn sys_statfs(t: &mut CurrentTask, path: u64, buf: u64) -> SysResult<u64> {
    lookup(t, AT_FDCWD, path, 0)?;
    t.write_mem(buf, &statfs_bytes(0x0102_1994))?;
    Ok(0)
}

pub fn sys_fstatfs(t: &mut CurrentTask, fd: i32, buf: u64) -> SysResult<u64> {
    file(t, fd)?;
    t.write_mem(buf, &statfs_bytes(0x0102_1994))?;
    Ok(0)
}
