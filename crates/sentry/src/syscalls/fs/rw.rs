//! Moving file data: read, write and their vectored and positioned forms,
//! lseek, fsync, fallocate, sendfile and copy_file_range.

use std::sync::Arc;
use std::time::{Duration, Instant};

use abi::Errno;

use super::path::{file, notify_dentry};
use crate::kernel::deliver::send_to_task;
use crate::kernel::signal::{SigInfo, SIGPIPE};
use crate::kernel::CurrentTask;
use crate::mm::{IoDst, IoSrc, Part, PROT_READ, PROT_WRITE};
use crate::syscalls::user_io::UserBuf;
use crate::vfs::open::O_APPEND;
use crate::vfs::{FileType, OpenFile, SetAttr};
use crate::SysResult;

/// Runs a possibly blocking file operation, sleeping on the file's wait queue.
pub(super) fn blocking<T>(t: &CurrentTask, f: &OpenFile, mut op: impl FnMut() -> SysResult<T>) -> SysResult<T> {
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
pub(super) fn read_once(t: &CurrentTask, f: &Arc<OpenFile>, dst: &mut dyn IoDst, off: Option<u64>) -> SysResult<usize> {
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
pub(super) fn write_once(t: &CurrentTask, f: &Arc<OpenFile>, src: &dyn IoSrc, off: Option<u64>) -> SysResult<usize> {
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
pub(super) fn clip_to_fsize(t: &CurrentTask, f: &OpenFile, off: u64, len: usize) -> SysResult<usize> {
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
pub(super) fn read_to_user(t: &CurrentTask, f: &Arc<OpenFile>, buf: &UserBuf, off: Option<u64>) -> SysResult<usize> {
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
    if let (true, Some(d)) = (done > 0, &f.dentry) {
        notify_dentry(t, d, crate::vfs::inotify::IN_ACCESS);
    }
    Ok(done)
}

/// Writes the app's buffers to `f` (at `off`, or the file position),
/// straight from the memory file, stopping at the first short write; an
/// error after some bytes went is the count of those, as on Linux.
pub(super) fn write_from_user(t: &CurrentTask, f: &Arc<OpenFile>, buf: &UserBuf, off: Option<u64>) -> SysResult<usize> {
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

/// preadv, pwritev, preadv2 and pwritev2: readv/writev at an offset (x86-64
/// passes it whole in `pos_l`); the v2 calls take -1 for the file position
/// and RWF_* flags, of which RWF_APPEND writes at the end and the hints
/// (HIPRI, DSYNC, SYNC, NOWAIT, NOAPPEND) change nothing here: every write
/// is as synced as the filesystem below makes it.
pub fn sys_preadv(t: &mut CurrentTask, fd: i32, iov: u64, cnt: usize, pos: i64, _pos_h: i64) -> SysResult<u64> {
    if pos < 0 {
        return Err(errno!(EINVAL));
    }
    rw_vectored(t, fd, iov, cnt, pos, 0, false)
}

pub fn sys_pwritev(t: &mut CurrentTask, fd: i32, iov: u64, cnt: usize, pos: i64, _pos_h: i64) -> SysResult<u64> {
    if pos < 0 {
        return Err(errno!(EINVAL));
    }
    rw_vectored(t, fd, iov, cnt, pos, 0, true)
}

pub fn sys_preadv2(
    t: &mut CurrentTask,
    fd: i32,
    iov: u64,
    cnt: usize,
    pos: i64,
    _pos_h: i64,
    flags: u32,
) -> SysResult<u64> {
    rw_vectored(t, fd, iov, cnt, pos, flags, false)
}

pub fn sys_pwritev2(
    t: &mut CurrentTask,
    fd: i32,
    iov: u64,
    cnt: usize,
    pos: i64,
    _pos_h: i64,
    flags: u32,
) -> SysResult<u64> {
    rw_vectored(t, fd, iov, cnt, pos, flags, true)
}

fn rw_vectored(
    t: &mut CurrentTask,
    fd: i32,
    iov: u64,
    cnt: usize,
    pos: i64,
    flags: u32,
    write: bool,
) -> SysResult<u64> {
    const RWF_SUPPORTED: u32 = 0x3f; // HIPRI DSYNC SYNC NOWAIT APPEND NOAPPEND
    const RWF_APPEND: u32 = 0x10;
    if flags & !RWF_SUPPORTED != 0 {
        return Err(errno!(EOPNOTSUPP));
    }
    let f = file(t, fd)?;
    if pos < -1 {
        return Err(errno!(EINVAL));
    }
    if pos != -1 && !f.ops.seekable() {
        return Err(errno!(ESPIPE));
    }
    let buf = UserBuf::iovec(t, iov, cnt, Errno::EINVAL)?;
    let mut off = (pos != -1).then_some(pos as u64);
    if write && flags & RWF_APPEND != 0 {
        off = Some(f.stat()?.size);
    }
    let n = if write { write_from_user(t, &f, &buf, off)? } else { read_to_user(t, &f, &buf, off)? };
    Ok(n as u64)
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

pub fn sys_fsync(t: &mut CurrentTask, fd: i32) -> SysResult<u64> {
    file(t, fd)?;
    Ok(0)
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
pub(super) fn copy_between(
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
        t.write_obj(offp, &new_off)?;
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
        t.write_obj(a[1], &ni)?;
    }
    if a[3] != 0 {
        t.write_obj(a[3], &no)?;
    }
    Ok(n as u64)
}
