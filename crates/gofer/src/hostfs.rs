//! Host file system primitives for the Gofer: confined one-name walks and
//! opens, `statx` on `O_PATH` fds, and their translation into 9P types.

use std::os::fd::{AsFd, OwnedFd};

use abi::Errno;
use p9::{getattr, Attr, Qid, QID_TYPE_DIR, QID_TYPE_FILE, QID_TYPE_SYMLINK};
use rustix::fs::{openat2, statx, AtFlags, FileType, Mode, OFlags, ResolveFlags, Statx, StatxFlags};

/// Every host lookup stays beneath its starting directory, on its mount,
/// and never passes through a symlink (magic or not).
const RESOLVE: ResolveFlags = ResolveFlags::BENEATH
    .union(ResolveFlags::NO_SYMLINKS)
    .union(ResolveFlags::NO_MAGICLINKS)
    .union(ResolveFlags::NO_XDEV);

/// A host error as the 9P client will see it.
pub fn errno(e: rustix::io::Errno) -> Errno {
    Errno(e.raw_os_error())
}

/// A host error from `std` or `host` as the 9P client will see it.
pub fn io_errno(e: std::io::Error) -> Errno {
    Errno(e.raw_os_error().unwrap_or(Errno::EIO.0))
}

/// Accepts only a single, ordinary path component. `..` is the client's to
/// resolve; `.` and empty names would alias the directory itself.
pub fn check_name(name: &[u8]) -> Result<(), Errno> {
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0) {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// Opens `name` in `dir` with `flags`, confined beneath `dir`. The caller
/// has checked `name` with [`check_name`].
pub fn open_beneath(dir: impl AsFd, name: &[u8], flags: OFlags, mode: Mode) -> Result<OwnedFd, Errno> {
    openat2(dir, name, flags | OFlags::NOFOLLOW | OFlags::CLOEXEC, mode, RESOLVE).map_err(errno)
}

/// An `O_PATH` fd for `name` in `dir`: a symlink yields the link itself.
pub fn walk_one(dir: impl AsFd, name: &[u8]) -> Result<OwnedFd, Errno> {
    open_beneath(dir, name, OFlags::PATH, Mode::empty())
}

/// Re-opens a directory from its `O_PATH` fd for reading; `.` cannot leave it.
pub fn open_dir(dir: impl AsFd) -> Result<OwnedFd, Errno> {
    open_beneath(dir, b".", OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())
}

const STATX_WANTED: StatxFlags = StatxFlags::BASIC_STATS.union(StatxFlags::BTIME);

/// Attributes of the file an fd (usually `O_PATH`) refers to.
pub fn stat(fd: impl AsFd) -> Result<Statx, Errno> {
    statx(fd, "", AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW, STATX_WANTED).map_err(errno)
}

/// Attributes of `name` in `dir`, not following a final symlink.
pub fn stat_at(dir: impl AsFd, name: &[u8]) -> Result<Statx, Errno> {
    statx(dir, name, AtFlags::SYMLINK_NOFOLLOW, STATX_WANTED).map_err(errno)
}

/// What kind of file a node is, which decides what may be done with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A directory: walkable, openable for readdir.
    Directory,
    /// A regular file: openable for I/O.
    Regular,
    /// A symlink: readlink only.
    Symlink,
    /// FIFO, socket or device node: metadata only.
    Special,
}

impl Kind {
    /// The kind of the file `stx` describes.
    pub fn of(stx: &Statx) -> Kind {
        match FileType::from_raw_mode(stx.stx_mode.into()) {
            FileType::Directory => Kind::Directory,
            FileType::RegularFile => Kind::Regular,
            FileType::Symlink => Kind::Symlink,
            _ => Kind::Special,
        }
    }
}

/// The file's identity on the host: device and inode.
pub fn identity(stx: &Statx) -> (u64, u64) {
    let dev = rustix::fs::makedev(stx.stx_dev_major, stx.stx_dev_minor);
    (dev, stx.stx_ino)
}

/// The file's qid. RESOLVE_NO_XDEV keeps every file on the root's device,
/// so the inode number alone is unique.
pub fn qid(stx: &Statx) -> Qid {
    let ty = match Kind::of(stx) {
        Kind::Directory => QID_TYPE_DIR,
        Kind::Symlink => QID_TYPE_SYMLINK,
        Kind::Regular | Kind::Special => QID_TYPE_FILE,
    };
    Qid { ty, version: 0, path: stx.stx_ino }
}

/// The Rgetattr for `stx`, marking valid what was asked for and is known.
pub fn attr(stx: &Statx, request_mask: u64) -> Attr {
    let mut valid = getattr::BASIC;
    if stx.stx_mask & StatxFlags::BTIME.bits() != 0 {
        valid |= getattr::BTIME;
    }
    Attr {
        valid: valid & request_mask,
        qid: qid(stx),
        mode: u32::from(stx.stx_mode),
        uid: stx.stx_uid,
        gid: stx.stx_gid,
        nlink: u64::from(stx.stx_nlink),
        rdev: rustix::fs::makedev(stx.stx_rdev_major, stx.stx_rdev_minor),
        size: stx.stx_size,
        blksize: u64::from(stx.stx_blksize),
        blocks: stx.stx_blocks,
        atime_sec: stx.stx_atime.tv_sec as u64,
        atime_nsec: u64::from(stx.stx_atime.tv_nsec),
        mtime_sec: stx.stx_mtime.tv_sec as u64,
        mtime_nsec: u64::from(stx.stx_mtime.tv_nsec),
        ctime_sec: stx.stx_ctime.tv_sec as u64,
        ctime_nsec: u64::from(stx.stx_ctime.tv_nsec),
        btime_sec: stx.stx_btime.tv_sec as u64,
        btime_nsec: u64::from(stx.stx_btime.tv_nsec),
        gen: 0,
        data_version: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_single_components() {
        for bad in [&b""[..], b".", b"..", b"a/b", b"/", b"a\0b", b"../x"] {
            assert_eq!(check_name(bad), Err(Errno::EINVAL), "{bad:?}");
        }
        for good in [&b"a"[..], b"...", b".hidden", b"a..b", b"\xff\xfe"] {
            assert_eq!(check_name(good), Ok(()), "{good:?}");
        }
    }
}
