//! open, openat, openat2, creat, memfd_create, close and close_range.

use std::sync::Arc;

use super::path::{caller, notify_dentry, start_dir};
use crate::kernel::CurrentTask;
use crate::vfs::open::{O_ACCMODE, O_CLOEXEC, O_CREAT, O_EXCL, O_NOFOLLOW, O_PATH, O_TMPFILE};
use crate::vfs::{Caller, Dentry, FileType, Follow, Inode, NewNode, OpenFile};
use crate::SysResult;
use abi::file::OpenHow;
use abi::FromBytes;

pub fn sys_openat(t: &mut CurrentTask, dirfd: i32, path_ptr: u64, flags: u32, mode: u32) -> SysResult<u64> {
    if flags & O_TMPFILE == O_TMPFILE {
        return open_tmpfile(t, dirfd, path_ptr, flags, mode);
    }
    let path = t.read_cstr(path_ptr)?;
    if path.is_empty() {
        return Err(errno!(ENOENT));
    }
    let start = start_dir(t, dirfd, &path)?;
    let who = caller(t);
    if let Some(f) = open_fd_link(t, &who, &start, &path, flags)? {
        return install(t, f, flags & O_CLOEXEC != 0);
    }
    let f = t.k.vfs.open_at(&who, &start, &path, flags, mode)?;
    install(t, f, flags & O_CLOEXEC != 0)
}

/// O_TMPFILE: an unnamed regular file in the directory `path` names.
pub(super) fn open_tmpfile(t: &mut CurrentTask, dirfd: i32, path_ptr: u64, flags: u32, mode: u32) -> SysResult<u64> {
    // Checked before the path is read, as Linux's build_open_flags does.
    if flags & O_ACCMODE == 0 {
        return Err(errno!(EINVAL));
    }
    let path = t.read_cstr(path_ptr)?;
    let start = start_dir(t, dirfd, &path)?;
    let f = t.k.vfs.open_tmpfile(&caller(t), &start, &path, flags, mode)?;
    install(t, f, flags & O_CLOEXEC != 0)
}

/// /proc/<pid>/fd/N (and /dev/fd/N, /dev/stdin...) naming a pipe, socket or other file
/// without a path opens that very file, as Linux's magic links do, also with
/// O_CREAT (a shell's `> /dev/stderr`) unless O_EXCL. Here, not in the vfs:
/// the link is a /proc file, and /proc sits above the vfs. Ordinary
/// symlinks on the way (/dev/stdin → /proc/self/fd/0) are followed, as
/// many as a path walk may.
pub(super) fn open_fd_link(
    t: &CurrentTask,
    who: &Caller,
    start: &Arc<Dentry>,
    path: &[u8],
    flags: u32,
) -> SysResult<Option<Arc<OpenFile>>> {
    const MAX_LINKS: usize = 40;
    if flags & (O_NOFOLLOW | O_PATH) != 0 || flags & (O_CREAT | O_EXCL) == O_CREAT | O_EXCL {
        return Ok(None);
    }
    let Ok(mut d) = t.k.vfs.lookup_at(who, start, path, Follow::No) else { return Ok(None) };
    for _ in 0..MAX_LINKS {
        if d.inode.as_any().downcast_ref::<crate::taskfs::proc::FdLink>().is_some() {
            break;
        }
        let Ok(st) = d.inode.stat() else { return Ok(None) };
        if st.file_type() != FileType::Symlink {
            return Ok(None);
        }
        let (Ok(target), Some(parent)) = (d.inode.readlink(), d.parent()) else { return Ok(None) };
        let Ok(next) = t.k.vfs.lookup_at(who, &parent, &target, Follow::No) else { return Ok(None) };
        d = next;
    }
    let Some(link) = d.inode.as_any().downcast_ref::<crate::taskfs::proc::FdLink>() else { return Ok(None) };
    let f = link.open_file()?;
    if f.dentry.is_some() {
        return Ok(None);
    }
    let want_write = flags & O_ACCMODE != 0;
    let want_read = flags & O_ACCMODE != 1;
    if (want_write && !f.writable()) || (want_read && !f.readable()) {
        return Err(errno!(EACCES));
    }
    Ok(Some(f))
}

pub(super) fn install(t: &CurrentTask, f: Arc<OpenFile>, cloexec: bool) -> SysResult<u64> {
    Ok(t.tg().fds.lock().unwrap().add(f, cloexec, 0)? as u64)
}

pub fn sys_close(t: &mut CurrentTask, fd: i32) -> SysResult<u64> {
    let f = t.tg().fds.lock().unwrap().remove(fd)?;
    release_locks(t, &f);
    if Arc::strong_count(&f) == 1 {
        if let Some(d) = &f.dentry {
            let closed =
                if f.writable() { crate::vfs::inotify::IN_CLOSE_WRITE } else { crate::vfs::inotify::IN_CLOSE_NOWRITE };
            notify_dentry(t, d, closed);
        }
    }
    drop(f);
    Ok(0)
}

pub fn sys_close_range(t: &mut CurrentTask, first: u32, last: u32, flags: u32) -> SysResult<u64> {
    const CLOSE_RANGE_CLOEXEC: u32 = 4;
    if first > last || flags & !CLOSE_RANGE_CLOEXEC != 0 {
        return Err(errno!(EINVAL));
    }
    let fds: Vec<i32> = t
        .tg()
        .fds
        .lock()
        .unwrap()
        .fds()
        .map(|(fd, _)| fd)
        .filter(|&fd| fd as u32 >= first && fd as u32 <= last)
        .collect();
    for fd in fds {
        if flags & CLOSE_RANGE_CLOEXEC != 0 {
            let _ = t.tg().fds.lock().unwrap().set_cloexec(fd, true);
        } else if let Ok(f) = t.tg().fds.lock().unwrap().remove(fd) {
            release_locks(t, &f);
        }
    }
    Ok(0)
}

/// POSIX: closing any fd of a file drops the process's record locks on it.
/// flock locks go with the open file description's last reference.
pub(super) fn release_locks(t: &CurrentTask, f: &Arc<OpenFile>) {
    if let Some(Ok(st)) = f.inode().map(|i| i.stat()) {
        t.k.locks.release(t.pid() as i64, Some((st.dev, st.ino)));
        if Arc::strong_count(f) == 1 {
            t.k.flocks.release(crate::vfs::lock::ofd_owner(f), Some((st.dev, st.ino)));
        }
    }
}

pub fn sys_memfd_create(t: &mut CurrentTask, name: u64, flags: u32) -> SysResult<u64> {
    const MFD_CLOEXEC: u32 = 1;
    const MFD_ALLOW_SEALING: u32 = 2;
    if flags & !(MFD_CLOEXEC | MFD_ALLOW_SEALING) != 0 {
        return Err(errno!(EINVAL));
    }
    let name = t.read_cstr(name)?;
    if name.len() > 249 {
        return Err(errno!(EINVAL));
    }
    // An unlinked tmpfs file: a private tmpfs root holds nothing else.
    let fs = crate::fs::tmpfs::TmpfsInode::new_fs(0o700, &t.k.alloc);
    let inode = fs.create(b"memfd", NewNode::File { mode: 0o777 })?;
    fs.unlink(b"memfd", false)?;
    let mut dname = b"memfd:".to_vec();
    dname.extend_from_slice(&name);
    let d = Dentry::detached(dname, None, inode.clone());
    let ops = inode.open(2)?;
    install(t, OpenFile::new(ops, Some(d), 2), flags & MFD_CLOEXEC != 0)
}

pub fn sys_openat2(t: &mut CurrentTask, dirfd: i32, path: u64, how: u64, size: usize) -> SysResult<u64> {
    if !(24..=4096).contains(&size) {
        return Err(errno!(EINVAL));
    }
    let b = t.read_vec(how, size)?;
    if b[24..].iter().any(|&x| x != 0) {
        return Err(errno!(E2BIG));
    }
    let OpenHow { flags, mode, resolve } = OpenHow::read_from(&b[..24]).ok_or(errno!(EINVAL))?;
    if flags > u32::MAX as u64 || mode > 0o7777 || (mode != 0 && flags & (O_CREAT | O_TMPFILE) as u64 == 0) {
        return Err(errno!(EINVAL));
    }
    if resolve != 0 {
        // RESOLVE_* restrictions are not implemented; refusing beats ignoring them.
        return Err(errno!(EINVAL));
    }
    sys_openat(t, dirfd, path, flags as u32, mode as u32)
}
