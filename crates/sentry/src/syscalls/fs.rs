//! File syscalls: opening, reading and writing, directories, metadata,
//! descriptors, pipes, ioctl and poll.

use std::sync::Arc;
use std::time::{Duration, Instant};

use abi::Errno;

use crate::auth::capability::CAP_SYS_CHROOT;
use crate::fs::pipe::Pipe;
use crate::kernel::deliver::send_to_task;
use crate::kernel::signal::{SigInfo, SIGPIPE};
use crate::kernel::CurrentTask;
use crate::mm::{IoDst, IoSrc, Part, PROT_READ, PROT_WRITE};
use crate::vfs::attr::Change;
use crate::vfs::inotify::IN_DONT_FOLLOW;
use crate::vfs::open::{O_ACCMODE, O_APPEND, O_CLOEXEC, O_CREAT, O_NOFOLLOW, O_NONBLOCK, O_PATH, O_TMPFILE};
use crate::vfs::permission;
use crate::vfs::{
    Caller, Dentry, FileType, Follow, Inode, IoctlArg, NewNode, OpenFile, PollMask, SetAttr, Stat, Timespec,
};
use crate::waiter::WaitQueue;
use crate::SysResult;

use super::user_io::UserBuf;

/// For bind(2), which makes a socket's name as the vfs makes other files'.
pub(super) use crate::vfs::attr::own_new_file;

pub const AT_FDCWD: i32 = -100;
pub const AT_SYMLINK_NOFOLLOW: u32 = 0x100;
pub const AT_REMOVEDIR: u32 = 0x200;
const AT_SYMLINK_FOLLOW: u32 = 0x400;
const AT_EMPTY_PATH: u32 = 0x1000;

/// Who is asking, as the vfs checks it: the process's credentials, root and
/// umask, and the sandbox's inotify instances to tell.
fn caller(t: &CurrentTask) -> Caller<'_> {
    let fs = t.tg().fs.lock().unwrap().clone();
    Caller { creds: t.creds(), root: fs.root, umask: fs.umask, events: &t.k.inotify }
}

/// The directory a relative `path` starts from: `dirfd`'s, or the working
/// directory for AT_FDCWD (an absolute path ignores `dirfd`).
fn start_dir(t: &CurrentTask, dirfd: i32, path: &[u8]) -> SysResult<Arc<Dentry>> {
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
fn lookup(t: &CurrentTask, dirfd: i32, path_ptr: u64, flags: u32) -> SysResult<Arc<Dentry>> {
    lookup_as(t, &caller(t), dirfd, path_ptr, flags)
}

/// `lookup` for `who`: AT_EMPTY_PATH names `dirfd` itself, AT_SYMLINK_NOFOLLOW
/// leaves a final symlink unfollowed.
fn lookup_as(t: &CurrentTask, who: &Caller, dirfd: i32, path_ptr: u64, flags: u32) -> SysResult<Arc<Dentry>> {
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
fn parent_of(t: &CurrentTask, who: &Caller, dirfd: i32, path_ptr: u64) -> SysResult<(Arc<Dentry>, Vec<u8>)> {
    let path = t.read_cstr(path_ptr)?;
    if path.is_empty() {
        return Err(errno!(ENOENT));
    }
    let start = start_dir(t, dirfd, &path)?;
    t.k.vfs.lookup_parent_at(who, &start, &path)
}

/// Reports an inotify event for the entry `d` (in its parent directory and on itself).
fn notify_dentry(t: &CurrentTask, d: &Dentry, mask: u32) {
    t.k.inotify.dentry(d, mask);
}

pub(super) fn file(t: &CurrentTask, fd: i32) -> SysResult<Arc<OpenFile>> {
    t.tg().fds.lock().unwrap().get(fd)
}

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
fn open_tmpfile(t: &mut CurrentTask, dirfd: i32, path_ptr: u64, flags: u32, mode: u32) -> SysResult<u64> {
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
/// without a path opens that very file, as Linux's magic links do. Here, not
/// in the vfs: the link is a /proc file, and /proc sits above the vfs.
fn open_fd_link(
    t: &CurrentTask,
    who: &Caller,
    start: &Arc<Dentry>,
    path: &[u8],
    flags: u32,
) -> SysResult<Option<Arc<OpenFile>>> {
    if flags & (O_NOFOLLOW | O_PATH | O_CREAT) != 0 {
        return Ok(None);
    }
    let Ok(d) = t.k.vfs.lookup_at(who, start, path, Follow::No) else { return Ok(None) };
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

fn install(t: &CurrentTask, f: Arc<OpenFile>, cloexec: bool) -> SysResult<u64> {
    Ok(t.tg().fds.lock().unwrap().add(f, cloexec, 0)? as u64)
}

pub fn sys_close(t: &mut CurrentTask, fd: i32) -> SysResult<u64> {
    let f = t.tg().fds.lock().unwrap().remove(fd)?;
    release_locks(t, &f);
    if Arc::strong_count(&f) == 1 && f.writable() {
        if let Some(d) = &f.dentry {
            notify_dentry(t, d, crate::vfs::inotify::IN_CLOSE_WRITE);
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
fn release_locks(t: &CurrentTask, f: &Arc<OpenFile>) {
    if let Some(Ok(st)) = f.inode().map(|i| i.stat()) {
        t.k.locks.release(t.pid() as i64, Some((st.dev, st.ino)));
        if Arc::strong_count(f) == 1 {
            t.k.flocks.release(crate::vfs::lock::ofd_owner(f), Some((st.dev, st.ino)));
        }
    }
}

fn sys_record_lock(t: &mut CurrentTask, f: &Arc<OpenFile>, cmd: u32, arg: u64) -> SysResult<u64> {
    use crate::vfs::lock::{RecordLock, F_RDLCK, F_UNLCK, F_WRLCK};
    const F_GETLK: u32 = 5;
    const F_SETLKW: u32 = 7;
    let b = t.read_vec(arg, 32)?;
    let kind = i16::from_ne_bytes([b[0], b[1]]);
    let whence = i16::from_ne_bytes([b[2], b[3]]);
    let start = i64::from_ne_bytes(b[8..16].try_into().expect("8"));
    let len = i64::from_ne_bytes(b[16..24].try_into().expect("8"));
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
        let mut out = b.clone();
        match t.k.locks.conflict(key, &want) {
            None => out[0..2].copy_from_slice(&F_UNLCK.to_ne_bytes()),
            Some(l) => {
                out[0..2].copy_from_slice(&l.kind.to_ne_bytes());
                out[2..4].copy_from_slice(&0i16.to_ne_bytes());
                out[8..16].copy_from_slice(&(l.start as i64).to_ne_bytes());
                let l_len = if l.end == u64::MAX { 0 } else { (l.end - l.start) as i64 };
                out[16..24].copy_from_slice(&l_len.to_ne_bytes());
                out[24..28].copy_from_slice(&(l.owner as i32).to_ne_bytes());
            }
        }
        t.write_mem(arg, &out)?;
        return Ok(0);
    }
    if cmd == F_SETLKW {
        let k = t.k.clone();
        return t.block_on(&[&k.locks.released], None, || k.locks.set(key, want)).map(|_| 0);
    }
    t.k.locks.set(key, want).map(|_| 0)
}

/// Runs a possibly blocking file operation, sleeping on the file's wait queue.
fn blocking<T>(t: &CurrentTask, f: &OpenFile, mut op: impl FnMut() -> SysResult<T>) -> SysResult<T> {
    if f.nonblocking() {
        return op();
    }
    match f.ops.wait_queue() {
        Some(q) => t.block_on(&[q], None, op),
        // No wait queue (host fds, signalfd): retry on the task's own wake-ups, and at
        // least every 10 ms.
        None => loop {
            let step = Instant::now().checked_add(Duration::from_millis(10));
            match t.block_on(&[], step, &mut op) {
                Err(e) if e == Errno::ETIMEDOUT => continue,
                r => return r,
            }
        },
    }
}

/// One read of `f` into `dst` (at `off`, or the file position), sleeping
/// while it has nothing to give.
fn read_once(t: &CurrentTask, f: &Arc<OpenFile>, dst: &mut dyn IoDst, off: Option<u64>) -> SysResult<usize> {
    if !f.readable() {
        return Err(errno!(EBADF));
    }
    if f.ops.seekable() {
        match off {
            Some(o) => blocking(t, f, || f.ops.read(f, dst, o)),
            None => {
                let mut pos = f.pos.lock().unwrap();
                let n = blocking(t, f, || f.ops.read(f, dst, *pos))?;
                *pos += n as u64;
                Ok(n)
            }
        }
    } else {
        if off.is_some() {
            return Err(errno!(ESPIPE));
        }
        blocking(t, f, || f.ops.read(f, dst, 0))
    }
}

/// One write of `src` to `f` (at `off`, or the file position; O_APPEND at
/// its end), cut at RLIMIT_FSIZE; a pipe or socket takes it all, unless
/// non-blocking.
fn write_once(t: &CurrentTask, f: &Arc<OpenFile>, src: &dyn IoSrc, off: Option<u64>) -> SysResult<usize> {
    if !f.writable() {
        return Err(errno!(EBADF));
    }
    let r = if f.ops.seekable() {
        match off {
            Some(o) => {
                let src = Part::new(src, 0, clip_to_fsize(t, f, o, src.size())?);
                blocking(t, f, || f.ops.write(f, &src, o))
            }
            None => {
                let mut pos = f.pos.lock().unwrap();
                if f.flags() & O_APPEND != 0 {
                    *pos = f.stat()?.size;
                }
                let src = Part::new(src, 0, clip_to_fsize(t, f, *pos, src.size())?);
                let n = blocking(t, f, || f.ops.write(f, &src, *pos))?;
                *pos += n as u64;
                Ok(n)
            }
        }
    } else {
        if off.is_some() {
            return Err(errno!(ESPIPE));
        }
        // Pipes: keep writing until everything is in (or an error after partial progress).
        let mut done = 0;
        loop {
            let rest = Part::new(src, done, usize::MAX);
            match blocking(t, f, || f.ops.write(f, &rest, 0)) {
                Ok(n) => {
                    done += n;
                    if n == 0 || done >= src.size() || f.nonblocking() {
                        break Ok(done);
                    }
                }
                Err(_) if done > 0 => break Ok(done),
                Err(e) => break Err(e),
            }
        }
    };
    if r == Err(errno!(EPIPE)) {
        send_to_task(&t.task, SigInfo::kernel(SIGPIPE));
    }
    if let (Ok(n), Some(d)) = (&r, &f.dentry) {
        if *n > 0 {
            notify_dentry(t, d, crate::vfs::inotify::IN_MODIFY);
        }
    }
    r
}

/// RLIMIT_FSIZE: a regular file may not grow past the limit. Writing at or beyond it
/// raises SIGXFSZ and fails with EFBIG; a write crossing it is cut short: how many of
/// `len` bytes at `off` may go.
fn clip_to_fsize(t: &CurrentTask, f: &OpenFile, off: u64, len: usize) -> SysResult<usize> {
    let limit = t.tg().rlimit(crate::kernel::task::RLIMIT_FSIZE).0;
    if limit == u64::MAX
        || len == 0
        || !f.inode().is_some_and(|i| i.stat().is_ok_and(|s| s.file_type() == FileType::Regular))
    {
        return Ok(len);
    }
    if off >= limit {
        send_to_task(&t.task, SigInfo::kernel(crate::kernel::signal::SIGXFSZ));
        return Err(errno!(EFBIG));
    }
    Ok(len.min((limit - off).min(usize::MAX as u64) as usize))
}

/// Reads from `f` into the app's buffers (at `off`, or the file position),
/// straight into the memory file: a seekable file fills them up to its end
/// (a piece of `mm::io::MAX_RANGES` ranges at a time); a pipe, socket or
/// terminal gives what one read gives, as on Linux.
fn read_to_user(t: &CurrentTask, f: &Arc<OpenFile>, buf: &UserBuf, off: Option<u64>) -> SysResult<usize> {
    let mut done = 0;
    loop {
        let mut dst = buf.io(t, done, PROT_WRITE);
        let want = dst.len();
        let n = match read_once(t, f, &mut dst, off.map(|o| o + done as u64)) {
            Ok(n) => n,
            Err(_) if done > 0 => break,
            Err(e) => return Err(e),
        };
        done += n;
        if n < want || done >= buf.len || !f.ops.seekable() {
            break;
        }
    }
    Ok(done)
}

/// Writes the app's buffers to `f` (at `off`, or the file position),
/// straight from the memory file, stopping at the first short write; an
/// error after some bytes went is the count of those, as on Linux.
fn write_from_user(t: &CurrentTask, f: &Arc<OpenFile>, buf: &UserBuf, off: Option<u64>) -> SysResult<usize> {
    let mut done = 0;
    loop {
        let src = buf.io(t, done, PROT_READ);
        let want = src.len();
        let n = match write_once(t, f, &src, off.map(|o| o + done as u64)) {
            Ok(n) => n,
            Err(_) if done > 0 => break,
            Err(e) => return Err(e),
        };
        done += n;
        if n < want || done >= buf.len {
            break;
        }
    }
    Ok(done)
}

pub fn sys_read(t: &mut CurrentTask, fd: i32, buf: u64, len: usize) -> SysResult<u64> {
    let f = file(t, fd)?;
    if f.inode().is_some_and(|i| i.stat().map(|s| s.file_type() == FileType::Directory).unwrap_or(false)) {
        return Err(errno!(EISDIR));
    }
    Ok(read_to_user(t, &f, &UserBuf::flat(buf, len)?, None)? as u64)
}

pub fn sys_write(t: &mut CurrentTask, fd: i32, buf: u64, len: usize) -> SysResult<u64> {
    let f = file(t, fd)?;
    Ok(write_from_user(t, &f, &UserBuf::flat(buf, len)?, None)? as u64)
}

pub fn sys_pread64(t: &mut CurrentTask, fd: i32, buf: u64, len: usize, off: i64) -> SysResult<u64> {
    if off < 0 {
        return Err(errno!(EINVAL));
    }
    let f = file(t, fd)?;
    Ok(read_to_user(t, &f, &UserBuf::flat(buf, len)?, Some(off as u64))? as u64)
}

pub fn sys_pwrite64(t: &mut CurrentTask, fd: i32, buf: u64, len: usize, off: i64) -> SysResult<u64> {
    if off < 0 {
        return Err(errno!(EINVAL));
    }
    let f = file(t, fd)?;
    Ok(write_from_user(t, &f, &UserBuf::flat(buf, len)?, Some(off as u64))? as u64)
}

pub fn sys_readv(t: &mut CurrentTask, fd: i32, iov: u64, cnt: usize) -> SysResult<u64> {
    let f = file(t, fd)?;
    let buf = UserBuf::iovec(t, iov, cnt, Errno::EINVAL)?;
    Ok(read_to_user(t, &f, &buf, None)? as u64)
}

pub fn sys_writev(t: &mut CurrentTask, fd: i32, iov: u64, cnt: usize) -> SysResult<u64> {
    let f = file(t, fd)?;
    let buf = UserBuf::iovec(t, iov, cnt, Errno::EINVAL)?;
    Ok(write_from_user(t, &f, &buf, None)? as u64)
}

pub fn sys_lseek(t: &mut CurrentTask, fd: i32, off: i64, whence: u32) -> SysResult<u64> {
    let f = file(t, fd)?;
    if !f.ops.seekable() {
        return Err(errno!(ESPIPE));
    }
    // In getdents64's order (snapshot, then position): a thread seeking
    // while another reads the directory must not deadlock with it.
    let mut snap = f.dir_snapshot.lock().unwrap();
    let mut pos = f.pos.lock().unwrap();
    let base = match whence {
        0 => 0,
        1 => *pos as i64,
        2 => f.stat()?.size as i64,
        _ => return Err(errno!(EINVAL)),
    };
    let new = base.checked_add(off).ok_or(errno!(EOVERFLOW))?;
    if new < 0 {
        return Err(errno!(EINVAL));
    }
    *pos = new as u64;
    if new == 0 {
        *snap = None;
    }
    Ok(new as u64)
}

fn stat_bytes(s: &Stat) -> Vec<u8> {
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

fn stat_at(t: &CurrentTask, dirfd: i32, path: u64, flags: u32) -> SysResult<Stat> {
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

fn major_minor(dev: u64) -> (u32, u32) {
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

pub fn sys_getdents64(t: &mut CurrentTask, fd: i32, buf: u64, len: usize) -> SysResult<u64> {
    let f = file(t, fd)?;
    let d = f.dentry.clone().ok_or(errno!(ENOTDIR))?;
    let st = d.inode.stat()?;
    if st.file_type() != FileType::Directory {
        return Err(errno!(ENOTDIR));
    }
    let mut snap = f.dir_snapshot.lock().unwrap();
    let mut pos = f.pos.lock().unwrap();
    if snap.is_none() || *pos == 0 {
        let parent_ino = d.parent().and_then(|p| p.inode.stat().ok()).map(|s| s.ino).unwrap_or(st.ino);
        let mut v = vec![
            crate::vfs::DirEntry { ino: st.ino, ftype: FileType::Directory, name: b".".to_vec() },
            crate::vfs::DirEntry { ino: parent_ino, ftype: FileType::Directory, name: b"..".to_vec() },
        ];
        v.extend(d.inode.readdir()?);
        *snap = Some(v);
    }
    let entries = snap.as_ref().expect("snapshot set above");
    let mut out = Vec::new();
    let mut i = *pos as usize;
    while i < entries.len() {
        let e = &entries[i];
        let reclen = (19 + e.name.len() + 1).div_ceil(8) * 8;
        if out.len() + reclen > len {
            break;
        }
        let start = out.len();
        out.extend(e.ino.to_ne_bytes());
        out.extend(((i + 1) as i64).to_ne_bytes());
        out.extend((reclen as u16).to_ne_bytes());
        out.push(e.ftype.dtype());
        out.extend(&e.name);
        out.resize(start + reclen, 0);
        i += 1;
    }
    if out.is_empty() && i < entries.len() {
        return Err(errno!(EINVAL));
    }
    *pos = i as u64;
    t.write_mem(buf, &out)?;
    Ok(out.len() as u64)
}

pub fn sys_readlinkat(t: &mut CurrentTask, dirfd: i32, path: u64, buf: u64, len: usize) -> SysResult<u64> {
    if len == 0 || len > i32::MAX as usize {
        return Err(errno!(EINVAL));
    }
    let d = lookup(t, dirfd, path, AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)?;
    let target = d.inode.readlink()?;
    let n = target.len().min(len);
    t.write_mem(buf, &target[..n])?;
    Ok(n as u64)
}

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

pub fn sys_getcwd(t: &mut CurrentTask, buf: u64, len: usize) -> SysResult<u64> {
    let fs = t.tg().fs.lock().unwrap().clone();
    let mut p = path_from_root(&fs.root, &fs.cwd);
    p.push(0);
    if p.len() > len {
        return Err(errno!(ERANGE));
    }
    t.write_mem(buf, &p)?;
    Ok(p.len() as u64)
}

/// The path of `d` as a process whose root is `root` sees it (after chroot):
/// Linux's "(unreachable)" prefix for a directory outside that root.
fn path_from_root(root: &Arc<Dentry>, d: &Arc<Dentry>) -> Vec<u8> {
    let path = d.path();
    let root_path = root.path();
    if root_path == b"/" {
        return path;
    }
    if path == root_path {
        return b"/".to_vec();
    }
    match path.strip_prefix(root_path.as_slice()) {
        Some(rest) if rest.starts_with(b"/") => rest.to_vec(),
        _ => [b"(unreachable)".as_slice(), &path].concat(),
    }
}

fn set_cwd(t: &CurrentTask, d: Arc<Dentry>) -> SysResult<u64> {
    permission::may_enter(&t.creds(), &*d.inode)?;
    t.tg().fs.lock().unwrap().cwd = d;
    Ok(0)
}

pub fn sys_chdir(t: &mut CurrentTask, path: u64) -> SysResult<u64> {
    let d = lookup(t, AT_FDCWD, path, 0)?;
    set_cwd(t, d)
}

pub fn sys_fchdir(t: &mut CurrentTask, fd: i32) -> SysResult<u64> {
    let d = file(t, fd)?.dentry.clone().ok_or(errno!(ENOTDIR))?;
    set_cwd(t, d)
}

/// chroot(2): later absolute paths (and `..` at the top) stop at `path`. The
/// working directory stays where it is, as on Linux.
pub fn sys_chroot(t: &mut CurrentTask, path: u64) -> SysResult<u64> {
    let d = lookup(t, AT_FDCWD, path, 0)?;
    permission::may_enter(&t.creds(), &*d.inode)?;
    if !t.capable(CAP_SYS_CHROOT) {
        return Err(errno!(EPERM));
    }
    t.tg().fs.lock().unwrap().root = d;
    Ok(0)
}

fn create_at(t: &CurrentTask, dirfd: i32, path: u64, node: NewNode) -> SysResult<u64> {
    let who = caller(t);
    let (dir, name) = parent_of(t, &who, dirfd, path)?;
    t.k.vfs.create(&who, &dir, &name, node)?;
    Ok(0)
}

pub fn sys_mkdirat(t: &mut CurrentTask, dirfd: i32, path: u64, mode: u32) -> SysResult<u64> {
    create_at(t, dirfd, path, NewNode::Dir { mode })
}

pub fn sys_mknodat(t: &mut CurrentTask, dirfd: i32, path: u64, mode: u32, _dev: u64) -> SysResult<u64> {
    let node = NewNode::for_mknod(mode)?;
    create_at(t, dirfd, path, node)
}

pub fn sys_symlinkat(t: &mut CurrentTask, target: u64, dirfd: i32, path: u64) -> SysResult<u64> {
    let target = t.read_cstr(target)?;
    if target.is_empty() {
        return Err(errno!(ENOENT));
    }
    create_at(t, dirfd, path, NewNode::Symlink { target })
}

pub fn sys_unlinkat(t: &mut CurrentTask, dirfd: i32, path: u64, flags: u32) -> SysResult<u64> {
    let who = caller(t);
    let (dir, name) = parent_of(t, &who, dirfd, path)?;
    t.k.vfs.unlink(&who, &dir, &name, flags & AT_REMOVEDIR != 0)?;
    Ok(0)
}

pub fn sys_renameat2(
    t: &mut CurrentTask,
    olddirfd: i32,
    oldpath: u64,
    newdirfd: i32,
    newpath: u64,
    flags: u32,
) -> SysResult<u64> {
    const RENAME_NOREPLACE: u32 = 1;
    if flags & !RENAME_NOREPLACE != 0 {
        return Err(errno!(EINVAL));
    }
    let who = caller(t);
    let (od, on) = parent_of(t, &who, olddirfd, oldpath)?;
    let (nd, nn) = parent_of(t, &who, newdirfd, newpath)?;
    t.k.vfs.rename(&who, &od, &on, &nd, &nn, flags & RENAME_NOREPLACE != 0)?;
    Ok(0)
}

pub fn sys_linkat(
    t: &mut CurrentTask,
    olddirfd: i32,
    oldpath: u64,
    newdirfd: i32,
    newpath: u64,
    flags: u32,
) -> SysResult<u64> {
    let follow = if flags & AT_SYMLINK_FOLLOW != 0 { 0 } else { AT_SYMLINK_NOFOLLOW };
    let who = caller(t);
    let src = lookup_as(t, &who, olddirfd, oldpath, follow | (flags & AT_EMPTY_PATH))?;
    t.k.vfs.link(&who, &src, || parent_of(t, &who, newdirfd, newpath))?;
    Ok(0)
}

fn setattr_at(t: &CurrentTask, dirfd: i32, path: u64, flags: u32, change: Change, a: SetAttr) -> SysResult<u64> {
    let who = caller(t);
    let d = lookup_as(t, &who, dirfd, path, flags)?;
    t.k.vfs.set_attr(&who, &d, change, a)?;
    Ok(0)
}

fn setattr_fd(t: &CurrentTask, fd: i32, change: Change, a: SetAttr) -> SysResult<u64> {
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

fn owner(uid: u32, gid: u32) -> SetAttr {
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
        let b = t.read_vec(times, 32)?;
        let word = |i: usize| i64::from_ne_bytes(b[i..i + 8].try_into().expect("8"));
        Some([(word(0), word(8)), (word(16), word(24))])
    };
    set_times(t, dirfd, path, flags, times)
}

/// utimensat's work, with the (seconds, nanoseconds) pairs for atime and
/// mtime already read (None: both now). `path` 0 means `dirfd` itself.
pub(super) fn set_times(
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
    let mut out = Vec::new();
    out.extend(a.to_ne_bytes());
    out.extend(b.to_ne_bytes());
    if let Err(e) = t.write_mem(fds_ptr, &out) {
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

pub fn sys_fsync(t: &mut CurrentTask, fd: i32) -> SysResult<u64> {
    file(t, fd)?;
    Ok(0)
}

fn statfs_bytes(magic: u64) -> Vec<u8> {
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

/// Waits until one of `fds` (fd, requested events) is ready or `deadline`; returns revents.
fn poll_files(t: &CurrentTask, fds: &[(i32, i16)], deadline: Option<Instant>) -> SysResult<Vec<i16>> {
    let files: Vec<Option<Arc<OpenFile>>> =
        fds.iter().map(|(fd, _)| if *fd >= 0 { t.tg().fds.lock().unwrap().get(*fd).ok() } else { None }).collect();
    let queues: Vec<&WaitQueue> = files.iter().flatten().filter_map(|f| f.ops.wait_queue()).collect();
    let has_unqueued = files.iter().flatten().any(|f| f.ops.wait_queue().is_none());
    let check = || -> Vec<i16> {
        fds.iter()
            .zip(&files)
            .map(|((fd, ev), f)| {
                if *fd < 0 {
                    return 0;
                }
                let m = match f {
                    Some(f) => f.ops.poll(),
                    None => PollMask::NVAL,
                };
                m.bits() as i16 & (*ev | 0x8 | 0x10 | 0x20)
            })
            .collect()
    };
    loop {
        // Host-backed files have no wait queue: look again every 20 ms.
        let step = if has_unqueued { Instant::now().checked_add(Duration::from_millis(20)) } else { None };
        let until = match (deadline, step) {
            (Some(d), Some(s)) => Some(d.min(s)),
            (d, s) => d.or(s),
        };
        let r = t.block_on(&queues, until, || {
            let rev = check();
            if rev.iter().any(|&r| r != 0) {
                Ok(rev)
            } else {
                Err(errno!(EAGAIN))
            }
        });
        match r {
            Err(e) if e == Errno::ETIMEDOUT && (deadline.is_some_and(|d| Instant::now() >= d)) => {
                return Ok(vec![0; fds.len()])
            }
            Err(e) if e == Errno::ETIMEDOUT => continue,
            Err(e) if e.as_restart() == Some(crate::Restart::Sys) => {
                return Err(crate::Error::restart(crate::Restart::NoHand))
            }
            r => return r,
        }
    }
}

fn ms_deadline(timeout_ms: i64) -> Option<Instant> {
    if timeout_ms < 0 {
        return None;
    }
    Instant::now().checked_add(Duration::from_millis(timeout_ms as u64))
}

/// Reads a timespec timeout (NULL: wait forever) into a deadline.
fn ts_deadline(t: &CurrentTask, ts: u64) -> SysResult<Option<Instant>> {
    if ts == 0 {
        return Ok(None);
    }
    let b = t.read_vec(ts, 16)?;
    let sec = i64::from_ne_bytes(b[0..8].try_into().expect("8"));
    let nsec = i64::from_ne_bytes(b[8..16].try_into().expect("8"));
    if sec < 0 || !(0..1_000_000_000).contains(&nsec) {
        return Err(errno!(EINVAL));
    }
    Ok(Instant::now().checked_add(Duration::new(sec as u64, nsec as u32)))
}

/// Installs a temporary signal mask for ppoll/pselect6; delivery restores the old one.
fn swap_sigmask(t: &CurrentTask, set: u64, size: u64) -> SysResult<()> {
    if set == 0 {
        return Ok(());
    }
    if size != 8 {
        return Err(errno!(EINVAL));
    }
    let mask = t.read_u64(set)?;
    let mut ts = t.task.sig.lock().unwrap();
    ts.saved_mask = Some(ts.mask);
    ts.mask = mask & !crate::kernel::signal::UNBLOCKABLE;
    Ok(())
}

fn poll_common(t: &mut CurrentTask, fds_ptr: u64, nfds: usize, deadline: Option<Instant>) -> SysResult<u64> {
    if nfds > t.tg().fds.lock().unwrap().limit as usize {
        return Err(errno!(EINVAL));
    }
    let raw = t.read_vec(fds_ptr, nfds * 8)?;
    let fds: Vec<(i32, i16)> = raw
        .chunks(8)
        .map(|c| {
            (i32::from_ne_bytes(c[0..4].try_into().expect("4")), i16::from_ne_bytes(c[4..6].try_into().expect("2")))
        })
        .collect();
    let rev = poll_files(t, &fds, deadline)?;
    let mut out = raw;
    for (i, c) in out.chunks_mut(8).enumerate() {
        c[6..8].copy_from_slice(&rev[i].to_ne_bytes());
    }
    t.write_mem(fds_ptr, &out)?;
    Ok(rev.iter().filter(|&&r| r != 0).count() as u64)
}

pub fn sys_poll(t: &mut CurrentTask, fds_ptr: u64, nfds: usize, timeout_ms: i64) -> SysResult<u64> {
    poll_common(t, fds_ptr, nfds, ms_deadline(timeout_ms))
}

pub fn sys_ppoll(t: &mut CurrentTask, fds_ptr: u64, nfds: usize, ts: u64, set: u64, size: u64) -> SysResult<u64> {
    let deadline = ts_deadline(t, ts)?;
    swap_sigmask(t, set, size)?;
    let r = poll_common(t, fds_ptr, nfds, deadline);
    finish_masked(t, r)
}

/// After a masked wait: keep the temporary mask for the signal frame on EINTR, else restore.
fn finish_masked(t: &CurrentTask, r: SysResult<u64>) -> SysResult<u64> {
    if r != Err(crate::Error::restart(crate::Restart::NoHand)) {
        let mut ts = t.task.sig.lock().unwrap();
        if let Some(m) = ts.saved_mask.take() {
            ts.mask = m;
        }
    }
    r
}

/// select/pselect6 over fd_set bitmaps.
fn select_common(t: &mut CurrentTask, nfds: i32, sets: [u64; 3], deadline: Option<Instant>) -> SysResult<u64> {
    if !(0..=crate::vfs::fdtable::NR_OPEN as i32).contains(&nfds) {
        return Err(errno!(EINVAL));
    }
    let bytes = (nfds as usize).div_ceil(64) * 8;
    let mut maps = [vec![0u8; bytes], vec![0u8; bytes], vec![0u8; bytes]];
    for (m, &p) in maps.iter_mut().zip(&sets) {
        if p != 0 {
            *m = t.read_vec(p, bytes)?;
        }
    }
    let bit = |m: &Vec<u8>, fd: usize| m[fd / 8] & (1 << (fd % 8)) != 0;
    let mut fds = Vec::new();
    for fd in 0..nfds as usize {
        let mut ev = 0i16;
        if bit(&maps[0], fd) {
            ev |= 0x1;
        }
        if bit(&maps[1], fd) {
            ev |= 0x4;
        }
        if bit(&maps[2], fd) {
            ev |= 0x2;
        }
        if ev != 0 {
            if t.tg().fds.lock().unwrap().get(fd as i32).is_err() {
                return Err(errno!(EBADF));
            }
            fds.push((fd as i32, ev));
        }
    }
    let rev = poll_files(t, &fds, deadline)?;
    let mut out = [vec![0u8; bytes], vec![0u8; bytes], vec![0u8; bytes]];
    let mut n = 0;
    for ((fd, ev), r) in fds.iter().zip(&rev) {
        let fd = *fd as usize;
        for (i, mask) in [(0usize, 0x1 | 0x8 | 0x10), (1, 0x4 | 0x8), (2, 0x2)] {
            let want = [0x1, 0x4, 0x2][i];
            if ev & want != 0 && r & mask != 0 {
                out[i][fd / 8] |= 1 << (fd % 8);
                n += 1;
            }
        }
    }
    for (m, &p) in out.iter().zip(&sets) {
        if p != 0 {
            t.write_mem(p, m)?;
        }
    }
    Ok(n)
}

pub fn sys_select(t: &mut CurrentTask, nfds: i32, r: u64, w: u64, e: u64, tv: u64) -> SysResult<u64> {
    let deadline = if tv == 0 {
        None
    } else {
        let b = t.read_vec(tv, 16)?;
        let sec = i64::from_ne_bytes(b[0..8].try_into().expect("8"));
        let usec = i64::from_ne_bytes(b[8..16].try_into().expect("8"));
        if sec < 0 || !(0..1_000_000).contains(&usec) {
            return Err(errno!(EINVAL));
        }
        Instant::now().checked_add(Duration::new(sec as u64, usec as u32 * 1000))
    };
    select_common(t, nfds, [r, w, e], deadline)
}

pub fn sys_pselect6(t: &mut CurrentTask, nfds: i32, r: u64, w: u64, e: u64, ts: u64, sig: u64) -> SysResult<u64> {
    let deadline = ts_deadline(t, ts)?;
    let (set, size) = if sig != 0 {
        let b = t.read_vec(sig, 16)?;
        (u64::from_ne_bytes(b[0..8].try_into().expect("8")), u64::from_ne_bytes(b[8..16].try_into().expect("8")))
    } else {
        (0, 0)
    };
    swap_sigmask(t, set, size)?;
    let res = select_common(t, nfds, [r, w, e], deadline);
    finish_masked(t, res)
}

pub fn sys_eventfd2(t: &mut CurrentTask, initval: u32, flags: u32) -> SysResult<u64> {
    if flags & !(O_CLOEXEC | O_NONBLOCK | crate::fs::eventfd::EFD_SEMAPHORE) != 0 {
        return Err(errno!(EINVAL));
    }
    let f = OpenFile::new(crate::fs::eventfd::EventFd::new(initval, flags), None, 2 | (flags & O_NONBLOCK));
    install(t, f, flags & O_CLOEXEC != 0)
}

pub fn sys_epoll_create1(t: &mut CurrentTask, flags: u32) -> SysResult<u64> {
    if flags & !O_CLOEXEC != 0 {
        return Err(errno!(EINVAL));
    }
    let f = OpenFile::new(crate::fs::epoll::Epoll::new(), None, 2);
    install(t, f, flags & O_CLOEXEC != 0)
}

fn epoll_of(f: &Arc<OpenFile>) -> SysResult<&crate::fs::epoll::Epoll> {
    let any: &dyn std::any::Any = f.ops.as_any_ops();
    any.downcast_ref::<crate::fs::epoll::Epoll>().ok_or(errno!(EINVAL))
}

pub fn sys_epoll_ctl(t: &mut CurrentTask, epfd: i32, op: u32, fd: i32, ev: u64) -> SysResult<u64> {
    let ep = file(t, epfd)?;
    let target = file(t, fd)?;
    if Arc::ptr_eq(&ep, &target) {
        return Err(errno!(EINVAL));
    }
    if target.ops.seekable() && target.inode().is_some() {
        // Regular files and directories are always ready; Linux refuses them.
        return Err(errno!(EPERM));
    }
    if op == 1 && epoll_of(&target).is_ok() {
        check_epoll_nesting(&ep, &target)?;
    }
    let (events, data) = if op == 2 {
        (0, 0)
    } else {
        let b = t.read_vec(ev, 12)?;
        (u32::from_ne_bytes(b[0..4].try_into().expect("4")), u64::from_ne_bytes(b[4..12].try_into().expect("8")))
    };
    epoll_of(&ep)?.ctl(op, fd, &target, events, data)?;
    Ok(0)
}

/// Adding the epoll `inner` to `outer`: ELOOP if `outer` is among the epolls
/// `inner` watches, however deep, or if the nesting below `inner` is deeper
/// than Linux allows (EP_MAX_NESTS). Without this an epoll watching itself
/// through another would poll itself forever.
fn check_epoll_nesting(outer: &Arc<OpenFile>, inner: &Arc<OpenFile>) -> SysResult<()> {
    const EP_MAX_NESTS: usize = 4;
    fn walk(outer: &Arc<OpenFile>, f: &Arc<OpenFile>, depth: usize) -> SysResult<()> {
        if depth > EP_MAX_NESTS {
            return Err(errno!(ELOOP));
        }
        let Ok(ep) = epoll_of(f) else { return Ok(()) };
        for member in ep.files().0 {
            if Arc::ptr_eq(&member, outer) {
                return Err(errno!(ELOOP));
            }
            walk(outer, &member, depth + 1)?;
        }
        Ok(())
    }
    walk(outer, inner, 1)
}

pub fn sys_epoll_pwait(t: &mut CurrentTask, epfd: i32, evs: u64, max: i32, timeout_ms: i64) -> SysResult<u64> {
    if max <= 0 || max > 65536 {
        return Err(errno!(EINVAL));
    }
    let epf = file(t, epfd)?;
    let ep = epoll_of(&epf)?;
    let deadline =
        if timeout_ms >= 0 { Instant::now().checked_add(Duration::from_millis(timeout_ms as u64)) } else { None };
    let r = loop {
        let (files, unqueued) = ep.files();
        let queues: Vec<&WaitQueue> = files.iter().filter_map(|f| f.ops.wait_queue()).collect();
        // Host-backed files have no wait queue: look again every 20 ms.
        let step = if unqueued { Instant::now().checked_add(Duration::from_millis(20)) } else { None };
        let until = match (deadline, step) {
            (Some(d), Some(s)) => Some(d.min(s)),
            (d, s) => d.or(s),
        };
        match t.block_on(&queues, until, || {
            let r = ep.ready(max as usize);
            if r.is_empty() {
                Err(errno!(EAGAIN))
            } else {
                Ok(r)
            }
        }) {
            Err(e) if e == Errno::ETIMEDOUT && (deadline.is_some_and(|d| Instant::now() >= d)) => break Ok(Vec::new()),
            Err(e) if e == Errno::ETIMEDOUT => continue,
            Err(e) if e.as_restart() == Some(crate::Restart::Sys) => break Err(errno!(EINTR)),
            r => break r,
        }
    }?;
    let mut out = Vec::with_capacity(r.len() * 12);
    for (e, d) in &r {
        out.extend(e.to_ne_bytes());
        out.extend(d.to_ne_bytes());
    }
    t.write_mem(evs, &out)?;
    Ok(r.len() as u64)
}

pub fn sys_signalfd4(t: &mut CurrentTask, fd: i32, mask: u64, size: usize, flags: u32) -> SysResult<u64> {
    if size != 8 || flags & !(O_CLOEXEC | O_NONBLOCK) != 0 {
        return Err(errno!(EINVAL));
    }
    let set = t.read_u64(mask)? & !crate::kernel::signal::UNBLOCKABLE;
    if fd != -1 {
        let f = file(t, fd)?;
        let sfd = f.ops.as_any_ops().downcast_ref::<crate::taskfs::signalfd::SignalFd>().ok_or(errno!(EINVAL))?;
        *sfd.mask.lock().unwrap() = set;
        return Ok(fd as u64);
    }
    let ops = Arc::new(crate::taskfs::signalfd::SignalFd::new(Arc::downgrade(&t.k), set));
    install(t, OpenFile::new(ops, None, flags & O_NONBLOCK), flags & O_CLOEXEC != 0)
}

pub fn sys_timerfd_create(t: &mut CurrentTask, clock: i32, flags: u32) -> SysResult<u64> {
    if !matches!(clock, 0 | 1 | 7 | 8 | 9) || flags & !(O_CLOEXEC | O_NONBLOCK) != 0 {
        return Err(errno!(EINVAL));
    }
    install(t, OpenFile::new(crate::fs::timerfd::TimerFd::new(), None, flags & O_NONBLOCK), flags & O_CLOEXEC != 0)
}

fn timerfd_of(f: &Arc<OpenFile>) -> SysResult<Arc<crate::fs::timerfd::TimerFd>> {
    let ops = f.ops.clone();
    if ops.as_any_ops().downcast_ref::<crate::fs::timerfd::TimerFd>().is_none() {
        return Err(errno!(EINVAL));
    }
    // The concrete type was checked just above, so the downcast cannot fail.
    let raw: Arc<dyn std::any::Any + Send + Sync> = ops.into_any_arc();
    raw.downcast::<crate::fs::timerfd::TimerFd>().map_err(|_| errno!(EINVAL))
}

fn itimerspec(value: Duration, interval: Duration) -> Vec<u8> {
    let mut b = Vec::with_capacity(32);
    for d in [interval, value] {
        b.extend((d.as_secs() as i64).to_ne_bytes());
        b.extend((d.subsec_nanos() as i64).to_ne_bytes());
    }
    b
}

fn read_timespec_at(b: &[u8]) -> SysResult<Duration> {
    let sec = i64::from_ne_bytes(b[0..8].try_into().expect("8"));
    let nsec = i64::from_ne_bytes(b[8..16].try_into().expect("8"));
    if sec < 0 || !(0..1_000_000_000).contains(&nsec) {
        return Err(errno!(EINVAL));
    }
    Ok(Duration::new(sec as u64, nsec as u32))
}

pub fn sys_timerfd_settime(t: &mut CurrentTask, fd: i32, flags: u32, new: u64, old: u64) -> SysResult<u64> {
    const TFD_TIMER_ABSTIME: u32 = 1;
    let tfd = timerfd_of(&file(t, fd)?)?;
    let b = t.read_vec(new, 32)?;
    let interval = read_timespec_at(&b[0..16])?;
    let value = read_timespec_at(&b[16..32])?;
    let deadline = if value.is_zero() {
        None
    } else if flags & TFD_TIMER_ABSTIME != 0 {
        let (s, n) = host::sys::clock_gettime(1).map_err(|_| errno!(EINVAL))?;
        Instant::now().checked_add(value.saturating_sub(Duration::new(s as u64, n as u32)))
    } else {
        Instant::now().checked_add(value)
    };
    let (ov, oi) = tfd.set(deadline, interval);
    if old != 0 {
        t.write_mem(old, &itimerspec(ov, oi))?;
    }
    Ok(0)
}

pub fn sys_timerfd_gettime(t: &mut CurrentTask, fd: i32, cur: u64) -> SysResult<u64> {
    let tfd = timerfd_of(&file(t, fd)?)?;
    let (v, i) = tfd.get();
    t.write_mem(cur, &itimerspec(v, i))?;
    Ok(0)
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

pub fn sys_fallocate(t: &mut CurrentTask, fd: i32, mode: u32, off: i64, len: i64) -> SysResult<u64> {
    if off < 0 || len <= 0 {
        return Err(errno!(EINVAL));
    }
    let f = file(t, fd)?;
    if !f.writable() {
        return Err(errno!(EBADF));
    }
    if mode != 0 {
        // Punching holes and the other modes are not supported by the Sentry's filesystems.
        return Err(errno!(EOPNOTSUPP));
    }
    let end = (off as u64).checked_add(len as u64).ok_or(errno!(EFBIG))?;
    let inode = f.inode().ok_or(errno!(ESPIPE))?.clone();
    if inode.stat()?.file_type() != FileType::Regular {
        return Err(errno!(ENODEV));
    }
    if inode.stat()?.size < end {
        inode.setattr(&SetAttr { size: Some(end), ..Default::default() })?;
    }
    Ok(0)
}

/// Copies between two files through the Sentry (sendfile, copy_file_range).
fn copy_between(
    t: &CurrentTask,
    from: &Arc<OpenFile>,
    from_off: Option<u64>,
    to: &Arc<OpenFile>,
    to_off: Option<u64>,
    count: usize,
) -> SysResult<(usize, u64, u64)> {
    let mut data = vec![0u8; count.min(1 << 20)];
    let got = read_once(t, from, &mut data, from_off)?;
    if got == 0 {
        return Ok((0, from_off.unwrap_or(0), to_off.unwrap_or(0)));
    }
    let n = write_once(t, to, &&data[..got], to_off)?;
    Ok((n, from_off.unwrap_or(0) + got as u64, to_off.unwrap_or(0) + n as u64))
}

pub fn sys_sendfile(t: &mut CurrentTask, out_fd: i32, in_fd: i32, offp: u64, count: usize) -> SysResult<u64> {
    let (inf, outf) = (file(t, in_fd)?, file(t, out_fd)?);
    let off = if offp != 0 { Some(t.read_u64(offp)?) } else { None };
    let (n, new_off, _) = copy_between(t, &inf, off, &outf, None, count)?;
    if offp != 0 {
        t.write_mem(offp, &new_off.to_ne_bytes())?;
    }
    Ok(n as u64)
}

pub fn sys_copy_file_range(t: &mut CurrentTask, a: [u64; 6]) -> SysResult<u64> {
    if a[5] != 0 {
        return Err(errno!(EINVAL));
    }
    let (inf, outf) = (file(t, a[0] as i32)?, file(t, a[2] as i32)?);
    for f in [&inf, &outf] {
        if !f.inode().is_some_and(|i| i.stat().is_ok_and(|s| s.file_type() == FileType::Regular)) {
            return Err(errno!(EINVAL));
        }
    }
    let in_off = if a[1] != 0 { Some(t.read_u64(a[1])?) } else { None };
    let out_off = if a[3] != 0 { Some(t.read_u64(a[3])?) } else { None };
    let (n, ni, no) = copy_between(t, &inf, in_off, &outf, out_off, a[4] as usize)?;
    if a[1] != 0 {
        t.write_mem(a[1], &ni.to_ne_bytes())?;
    }
    if a[3] != 0 {
        t.write_mem(a[3], &no.to_ne_bytes())?;
    }
    Ok(n as u64)
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
    let flags = u64::from_ne_bytes(b[0..8].try_into().expect("8"));
    let mode = u64::from_ne_bytes(b[8..16].try_into().expect("8"));
    let resolve = u64::from_ne_bytes(b[16..24].try_into().expect("8"));
    if flags > u32::MAX as u64 || mode > 0o7777 || (mode != 0 && flags & (O_CREAT | O_TMPFILE) as u64 == 0) {
        return Err(errno!(EINVAL));
    }
    if resolve != 0 {
        // RESOLVE_* restrictions are not implemented; refusing beats ignoring them.
        return Err(errno!(EINVAL));
    }
    sys_openat(t, dirfd, path, flags as u32, mode as u32)
}

pub fn sys_inotify_init1(t: &mut CurrentTask, flags: u32) -> SysResult<u64> {
    if flags & !(O_CLOEXEC | O_NONBLOCK) != 0 {
        return Err(errno!(EINVAL));
    }
    let i = Arc::new(crate::vfs::inotify::Inotify::default());
    t.k.inotify.register(&i);
    install(t, OpenFile::new(i, None, flags & O_NONBLOCK), flags & O_CLOEXEC != 0)
}

fn inotify_of(f: &Arc<OpenFile>) -> SysResult<&crate::vfs::inotify::Inotify> {
    f.ops.as_any_ops().downcast_ref::<crate::vfs::inotify::Inotify>().ok_or(errno!(EINVAL))
}

pub fn sys_inotify_add_watch(t: &mut CurrentTask, fd: i32, path: u64, mask: u32) -> SysResult<u64> {
    let f = file(t, fd)?;
    let ino = inotify_of(&f)?;
    let follow = if mask & IN_DONT_FOLLOW != 0 { AT_SYMLINK_NOFOLLOW } else { 0 };
    let who = caller(t);
    let d = lookup_as(t, &who, AT_FDCWD, path, follow)?;
    Ok(ino.watch(&who.creds, &d, mask)? as u64)
}

pub fn sys_inotify_rm_watch(t: &mut CurrentTask, fd: i32, wd: i32) -> SysResult<u64> {
    let f = file(t, fd)?;
    inotify_of(&f)?.rm_watch(wd)?;
    Ok(0)
}
