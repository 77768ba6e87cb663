//! App buffers for I/O: one buffer or an iovec array, walked in pieces so
//! that no transfer costs the Sentry more memory than one chunk.
//!
//! Sizes are the app's: every list is capped as Linux caps it (UIO_MAXIOV
//! vectors, MAX_RW_COUNT bytes in all) before anything is allocated.

use abi::io::IoVec;
use abi::{AsBytes, Errno};

use crate::kernel::CurrentTask;
use crate::mm::AppIo;
use crate::SysResult;

/// The most bytes one read, write or send moves (Linux's MAX_RW_COUNT).
pub const MAX_RW_COUNT: usize = 0x7fff_f000;
/// The most vectors an iovec array may have.
pub const UIO_MAXIOV: usize = 1024;
/// Where user addresses end for Linux's access_ok (TASK_SIZE_MAX): a buffer
/// reaching past it is EFAULT before anything moves, whatever its length.
const USER_END: u64 = 0x7fff_ffff_f000;

fn access_ok(addr: u64, len: u64) -> bool {
    addr.checked_add(len).is_some_and(|end| end <= USER_END)
}

/// An app buffer list (one buffer, or the pieces an iovec array names),
/// capped at MAX_RW_COUNT bytes in all.
#[derive(Debug)]
pub struct UserBuf {
    segs: Vec<(u64, usize)>,
    pub len: usize,
}

impl UserBuf {
    /// One buffer of `len` bytes at `addr` (EFAULT if it reaches past the
    /// user address space).
    pub fn flat(addr: u64, len: usize) -> SysResult<UserBuf> {
        if !access_ok(addr, len as u64) {
            return Err(errno!(EFAULT));
        }
        let len = len.min(MAX_RW_COUNT);
        Ok(UserBuf { segs: vec![(addr, len)], len })
    }

    /// The `count` iovecs at `ptr`; more than UIO_MAXIOV is `too_many`
    /// (EINVAL for readv/writev, EMSGSIZE for sendmsg), a negative length
    /// EINVAL, a buffer reaching past the user address space EFAULT (in that
    /// order, as Linux checks). What passes MAX_RW_COUNT in all is left out.
    pub fn iovec(t: &CurrentTask, ptr: u64, count: usize, too_many: Errno) -> SysResult<UserBuf> {
        if count > UIO_MAXIOV {
            return Err(too_many.into());
        }
        let mut iovs = vec![IoVec::default(); count];
        if count > 0 {
            t.read_mem(ptr, iovs.as_bytes_mut())?;
        }
        let vectors: Vec<(u64, u64)> = iovs.iter().map(|v| (v.base, v.len)).collect();
        if vectors.iter().any(|&(_, seg)| (seg as i64) < 0) {
            return Err(errno!(EINVAL));
        }
        if vectors.iter().any(|&(base, seg)| !access_ok(base, seg)) {
            return Err(errno!(EFAULT));
        }
        let mut segs = Vec::with_capacity(count);
        let mut len = 0usize;
        for (base, seg) in vectors {
            let take = (seg as usize).min(MAX_RW_COUNT - len);
            if take > 0 {
                segs.push((base, take));
                len += take;
            }
        }
        Ok(UserBuf { segs, len })
    }

    /// Bytes `off..` of the buffer list as the memory-file ranges behind
    /// them (see `mm::AppIo`): `PROT_WRITE` to read into, `PROT_READ` to
    /// write from.
    pub fn io(&self, t: &CurrentTask, off: usize, want: u32) -> AppIo {
        let mut pieces = Vec::with_capacity(self.segs.len());
        let _ = self.walk(off, self.len.saturating_sub(off), |addr, len| {
            pieces.push((addr, len));
            Ok(())
        });
        t.tg().mm().lock().unwrap().io(&pieces, want)
    }

    /// Copies `n` bytes starting at byte `off` of the buffer list out of the app.
    pub fn copy_in(&self, t: &CurrentTask, off: usize, n: usize) -> SysResult<Vec<u8>> {
        let mut out = Vec::with_capacity(n);
        self.walk(off, n, |addr, len| {
            let start = out.len();
            out.resize(start + len, 0);
            t.read_mem(addr, &mut out[start..])
        })?;
        Ok(out)
    }

    /// Copies `data` into the buffer list at byte `off`.
    pub fn copy_out(&self, t: &CurrentTask, off: usize, data: &[u8]) -> SysResult<()> {
        let mut done = 0;
        self.walk(off, data.len(), |addr, len| {
            t.write_mem(addr, &data[done..done + len])?;
            done += len;
            Ok(())
        })
    }

    /// Calls `f(address, length)` for the pieces of bytes `off..off + n`.
    fn walk(&self, off: usize, n: usize, mut f: impl FnMut(u64, usize) -> SysResult<()>) -> SysResult<()> {
        let (mut skip, mut left) = (off, n);
        for &(base, len) in &self.segs {
            if left == 0 {
                break;
            }
            if skip >= len {
                skip -= len;
                continue;
            }
            let take = (len - skip).min(left);
            f(base.wrapping_add(skip as u64), take)?;
            left -= take;
            skip = 0;
        }
        Ok(())
    }
}
