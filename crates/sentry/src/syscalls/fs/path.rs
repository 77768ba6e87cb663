//! What the app names: dirfds, paths and descriptors resolved for the
//! caller, and the caller as the vfs sees it.

use std::sync::Arc;

use crate::kernel::CurrentTask;
use crate::vfs::{Caller, Dentry, FileType, Follow, OpenFile};
use crate::SysResult;

pub const AT_FDCWD: i32 = -100;

pub const AT_SYMLINK_NOFOLLOW: u32 = 0x100;

pub const AT_REMOVEDIR: u32 = 0x200;

pub(super) const AT_SYMLINK_FOLLOW: u32 = 0x400;

pub(super) const AT_EMPTY_PATH: u32 = 0x1000;

/// Who is asking, as the vfs checks it: the process's credentials, root and
/// umask, and the sandbox's inotify instances to tell.
pub(super) fn caller(t: &CurrentTask) -> Caller<'_> {
    let fs = t.tg().fs.lock().unwrap().clone();
    Caller { creds: t.creds(), root: fs.root, umask: fs.umask, events: &t.k.inotify }
}

/// The directory a relative `path` starts from: `dirfd`'s, or the working
/// directory for AT_FDCWD (an absolute path ignores `dirfd`).
pub(super) fn start_dir(t: &CurrentTask, dirfd: i32, path: &[u8]) -> SysResult<Arc<Dentry>> {
    let fs = t.tg().fs.lock().unwrap().clone();
    if path.first() == Some(&b'/') || dirfd == AT_FDCWD {
        return Ok(fs.cwd);
    }
    let f = t.tg().fds.lock().unwrap().get(dirfd)?;
    let d = f.dentry.clone().ok_or(errno!(ENOTDIR))?;
    if d.inode.stat()?.file_type() != FileType::Directory {
        return Err(errno!(ENOTDIR));
    }
    Ok(d)
}

/// Resolves `dirfd`+`path` (from app memory) to a dentry.
pub(super) fn lookup(t: &CurrentTask, dirfd: i32, path_ptr: u64, flags: u32) -> SysResult<Arc<Dentry>> {
    lookup_as(t, &caller(t), dirfd, path_ptr, flags)
}

/// `lookup` for `who`: AT_EMPTY_PATH names `dirfd` itself, AT_SYMLINK_NOFOLLOW
/// leaves a final symlink unfollowed.
pub(super) fn lookup_as(
    t: &CurrentTask,
    who: &Caller,
    dirfd: i32,
    path_ptr: u64,
    flags: u32,
) -> SysResult<Arc<Dentry>> {
    let path = t.read_cstr(path_ptr)?;
    if path.is_empty() {
        if flags & AT_EMPTY_PATH != 0 {
            if dirfd == AT_FDCWD {
                return Ok(t.tg().fs.lock().unwrap().cwd.clone());
            }
            let f = t.tg().fds.lock().unwrap().get(dirfd)?;
            return f.dentry.clone().ok_or(errno!(EBADF));
        }
        return Err(errno!(ENOENT));
    }
    let start = start_dir(t, dirfd, &path)?;
    let follow = if flags & AT_SYMLINK_NOFOLLOW != 0 { Follow::No } else { Follow::Yes };
    t.k.vfs.lookup_at(who, &start, &path, follow)
}

/// Resolves `dirfd`+`path` (from app memory) to its parent directory and last name.
pub(super) fn parent_of(t: &CurrentTask, who: &Caller, dirfd: i32, path_ptr: u64) -> SysResult<(Arc<Dentry>, Vec<u8>)> {
    let path = t.read_cstr(path_ptr)?;
    if path.is_empty() {
        return Err(errno!(ENOENT));
    }
    let start = start_dir(t, dirfd, &path)?;
    t.k.vfs.lookup_parent_at(who, &start, &path)
}

/// Reports an inotify event for the entry `d` (in its parent directory and on itself).
pub(super) fn notify_dentry(t: &CurrentTask, d: &Dentry, mask: u32) {
    t.k.inotify.dentry(d, mask);
}

/// The open file `fd` names for I/O and most calls on it: an O_PATH fd is
/// EBADF, as Linux's fdget refuses it.
pub(crate) fn file(t: &CurrentTask, fd: i32) -> SysResult<Arc<OpenFile>> {
    let f = t.tg().fds.lock().unwrap().get(fd)?;
    if f.flags() & crate::vfs::open::O_PATH != 0 {
        return Err(errno!(EBADF));
    }
    Ok(f)
}

/// The open file `fd` names, O_PATH too: for the calls Linux lets an
/// O_PATH fd make (fstat, fstatfs, fchdir, an *at call's dirfd).
pub(crate) fn file_raw(t: &CurrentTask, fd: i32) -> SysResult<Arc<OpenFile>> {
    t.tg().fds.lock().unwrap().get(fd)
}
