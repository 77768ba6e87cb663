//! I/O sequences: where a file's read puts its bytes ([`IoDst`]) and where a
//! write takes them from ([`IoSrc`]) — app memory, or a Sentry buffer.
//!
//! Bytes cross once. A file that makes them in the Sentry (a pipe, /proc, a
//! socket) copies them straight into the memory file; a file whose bytes are
//! in a host file or in the memory file itself has the kernel move them
//! (splice, copy_file_range), and the Sentry's heap never holds them.
//!
//! Invariants: an [`AppIo`] resolves app addresses to memory-file ranges once,
//! with the access checked, and holds their backings, so that an app that
//! unmaps the buffer meanwhile gets its bytes in pages no one else can have
//! been given; a transfer that reaches a byte without that access stops
//! there: what came before it counts, as on Linux, and EFAULT only if
//! nothing did. Sizes are the app's: nothing here allocates more than
//! [`BOUNCE`] bytes, nor resolves more than [`MAX_RANGES`] ranges at once.

use std::collections::VecDeque;
use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use abi::Errno;
use host::memfile::CopyError;
use host::MemoryFile;

use super::Backing;
use crate::SysResult;

/// The most bytes of a transfer the Sentry holds where they must pass through it.
pub const BOUNCE: usize = 1 << 20;
/// The most memory-file ranges one [`AppIo`] resolves: the rest of the
/// buffers waits for the next (a buffer of a page per mapping costs the
/// Sentry this many ranges, not one per page of a 2 GiB transfer).
pub const MAX_RANGES: usize = 1024;

/// Where a read puts its bytes. Offsets (`at`) count from the start of the
/// destination; each call returns how many bytes it moved: all that were
/// asked for, fewer at a fault (EFAULT if none) or at the source's end.
pub trait IoDst {
    /// How many bytes the reader asks for.
    fn space(&self) -> usize;

    /// Copies `data` in at `at`.
    fn copy_out(&mut self, at: usize, data: &[u8]) -> SysResult<usize>;

    /// Reads `len` bytes at `off` of a host file in at `at`.
    fn read_file(&mut self, at: usize, file: &File, off: u64, len: usize) -> SysResult<usize> {
        let mut buf = vec![0u8; len.min(BOUNCE)];
        bounce(len, BOUNCE, |done, n| {
            let got = file.read_at(&mut buf[..n], off + done as u64).map_err(crate::Error::from)?;
            self.copy_out(at + done, &buf[..got])
        })
    }

    /// Copies `len` bytes at `off` of a memory-file range (tmpfs data) in at `at`.
    fn copy_from(&mut self, at: usize, from: &Backing, off: u64, len: usize) -> SysResult<usize> {
        let mut buf = vec![0u8; len.min(BOUNCE)];
        bounce(len, BOUNCE, |done, n| {
            from.read(off + done as u64, &mut buf[..n])?;
            self.copy_out(at + done, &buf[..n])
        })
    }
}

/// Where a write takes its bytes from; as [`IoDst`], the other way.
pub trait IoSrc {
    /// How many bytes the writer offers.
    fn size(&self) -> usize;

    /// Copies bytes from `at` into `buf` (as many as fit).
    fn copy_in(&self, at: usize, buf: &mut [u8]) -> SysResult<usize>;

    /// Writes `len` bytes from `at` to a host file at `off`.
    fn write_file(&self, at: usize, file: &File, off: u64, len: usize) -> SysResult<usize> {
        let mut buf = vec![0u8; len.min(BOUNCE)];
        bounce(len, BOUNCE, |done, n| {
            let got = self.copy_in(at + done, &mut buf[..n])?;
            file.write_at(&buf[..got], off + done as u64).map_err(crate::Error::from)
        })
    }

    /// Copies `len` bytes from `at` to a memory-file range (tmpfs data) at
    /// `off`; ENOMEM or ENOSPC if its pages cannot be had.
    fn copy_to(&self, at: usize, to: &Backing, off: u64, len: usize) -> SysResult<usize> {
        let mut buf = vec![0u8; len.min(BOUNCE)];
        bounce(len, BOUNCE, |done, n| {
            let got = self.copy_in(at + done, &mut buf[..n])?;
            to.write(off + done as u64, &buf[..got])?;
            Ok(got)
        })
    }

    /// The `len` bytes from `at` in a buffer of their own, for a file that
    /// keeps what it is given (a datagram): the caller bounds `len`.
    fn gather(&self, at: usize, len: usize) -> SysResult<Vec<u8>> {
        let mut buf = vec![0u8; len.min(self.size().saturating_sub(at))];
        let n = self.copy_in(at, &mut buf)?;
        buf.truncate(n);
        Ok(buf)
    }
}

/// Reads into `dst` through a buffer of at most [`BOUNCE`] bytes, for a
/// file whose bytes come from a call that fills a buffer (9P, a host tty):
/// `read(done, buf)` fills `buf` with the bytes from `done` of the
/// transfer on; a short one ends it.
pub fn read_through(
    dst: &mut dyn IoDst,
    mut read: impl FnMut(usize, &mut [u8]) -> SysResult<usize>,
) -> SysResult<usize> {
    let len = dst.space();
    let mut buf = vec![0u8; len.min(BOUNCE)];
    bounce(len, BOUNCE, |done, n| {
        let got = read(done, &mut buf[..n])?;
        dst.copy_out(done, &buf[..got])
    })
}

/// Writes `src` through a buffer of at most [`BOUNCE`] bytes:
/// `write(done, bytes)` takes the bytes from `done` of the transfer on and
/// returns how many went; a short one ends it.
pub fn write_through(src: &dyn IoSrc, mut write: impl FnMut(usize, &[u8]) -> SysResult<usize>) -> SysResult<usize> {
    let len = src.size();
    let mut buf = vec![0u8; len.min(BOUNCE)];
    bounce(len, BOUNCE, |done, n| {
        let got = src.copy_in(done, &mut buf[..n])?;
        write(done, &buf[..got])
    })
}

/// Moves up to `n` bytes from the front of `queue` (a pipe's, a
/// terminal's) to `dst`, with no buffer between. A fault moves nothing
/// (EFAULT) and the bytes stay queued, as a Linux pipe keeps a buffer it
/// could not copy whole.
pub fn drain_into(dst: &mut dyn IoDst, queue: &mut VecDeque<u8>, n: usize) -> SysResult<usize> {
    let n = n.min(queue.len()).min(dst.space());
    if n == 0 {
        return Ok(0);
    }
    let (front, back) = queue.as_slices();
    let first = front.len().min(n);
    let mut got = dst.copy_out(0, &front[..first])?;
    if got == first && n > first {
        got += dst.copy_out(first, &back[..n - first]).unwrap_or(0);
    }
    if got < n {
        return Err(errno!(EFAULT));
    }
    queue.drain(..n);
    Ok(n)
}

/// Appends up to `n` bytes of `src` to `queue`, with no buffer between.
/// A fault appends nothing (EFAULT), as a Linux pipe drops a buffer it
/// could not fill.
pub fn append_from(src: &dyn IoSrc, queue: &mut VecDeque<u8>, n: usize) -> SysResult<usize> {
    let (old, want) = (queue.len(), n.min(src.size()));
    queue.resize(old + want, 0);
    // The new bytes may wrap around the queue's ring: two pieces.
    let (front, back) = queue.as_mut_slices();
    let (first, second) = match front.get_mut(old..) {
        Some(first) => (first, back),
        None => (&mut back[old - front.len()..], &mut [][..]),
    };
    let got = match (first.is_empty(), src.copy_in(0, first)) {
        (true, _) => src.copy_in(0, second),
        (false, Ok(n)) if n == first.len() && !second.is_empty() => Ok(n + src.copy_in(n, second).unwrap_or(0)),
        (false, r) => r,
    };
    match got {
        Ok(n) if n == want => Ok(n),
        _ => {
            queue.truncate(old);
            Err(errno!(EFAULT))
        }
    }
}

/// Runs `step(done, n)` over `len` bytes in pieces of at most `piece`,
/// until a step moves fewer than asked; an error after some bytes moved is
/// the count of those.
fn bounce(len: usize, piece: usize, mut step: impl FnMut(usize, usize) -> SysResult<usize>) -> SysResult<usize> {
    let mut done = 0;
    while done < len {
        let n = piece.min(len - done);
        match step(done, n) {
            Ok(got) => {
                done += got;
                if got < n {
                    break;
                }
            }
            Err(_) if done > 0 => break,
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// A Sentry buffer as a destination: its whole length is asked for.
impl<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized> IoDst for T {
    fn space(&self) -> usize {
        self.as_ref().len()
    }

    fn copy_out(&mut self, at: usize, data: &[u8]) -> SysResult<usize> {
        let buf = self.as_mut().get_mut(at..).unwrap_or_default();
        let n = data.len().min(buf.len());
        buf[..n].copy_from_slice(&data[..n]);
        Ok(n)
    }

    fn read_file(&mut self, at: usize, file: &File, off: u64, len: usize) -> SysResult<usize> {
        let buf = self.as_mut().get_mut(at..).unwrap_or_default();
        let n = len.min(buf.len());
        bounce(n, n.max(1), |done, n| {
            file.read_at(&mut buf[done..done + n], off + done as u64).map_err(crate::Error::from)
        })
    }

    fn copy_from(&mut self, at: usize, from: &Backing, off: u64, len: usize) -> SysResult<usize> {
        let buf = self.as_mut().get_mut(at..).unwrap_or_default();
        let n = len.min(buf.len());
        from.read(off, &mut buf[..n])?;
        Ok(n)
    }
}

/// A Sentry buffer as a source: all of it is offered.
impl<T: AsRef<[u8]> + ?Sized> IoSrc for T {
    fn size(&self) -> usize {
        self.as_ref().len()
    }

    fn copy_in(&self, at: usize, buf: &mut [u8]) -> SysResult<usize> {
        let data = self.as_ref().get(at..).unwrap_or_default();
        let n = data.len().min(buf.len());
        buf[..n].copy_from_slice(&data[..n]);
        Ok(n)
    }

    fn write_file(&self, at: usize, file: &File, off: u64, len: usize) -> SysResult<usize> {
        let data = self.as_ref().get(at..).unwrap_or_default();
        let n = len.min(data.len());
        bounce(n, n.max(1), |done, n| {
            file.write_at(&data[done..done + n], off + done as u64).map_err(crate::Error::from)
        })
    }

    fn copy_to(&self, at: usize, to: &Backing, off: u64, len: usize) -> SysResult<usize> {
        let data = self.as_ref().get(at..).unwrap_or_default();
        let n = len.min(data.len());
        to.write(off, &data[..n])?;
        Ok(n)
    }
}

/// Bytes `start..start + len` of a source, as a source of their own (a
/// write cut at the file size limit, or the rest of a write to a pipe).
#[derive(Debug, Clone, Copy)]
pub struct Part<'a, S: IoSrc + ?Sized> {
    src: &'a S,
    start: usize,
    len: usize,
}

impl<'a, S: IoSrc + ?Sized> Part<'a, S> {
    pub fn new(src: &'a S, start: usize, len: usize) -> Part<'a, S> {
        Part { src, start, len: len.min(src.size().saturating_sub(start)) }
    }
}

impl<S: IoSrc + ?Sized> IoSrc for Part<'_, S> {
    fn size(&self) -> usize {
        self.len
    }

    fn copy_in(&self, at: usize, buf: &mut [u8]) -> SysResult<usize> {
        let n = buf.len().min(self.len.saturating_sub(at));
        self.src.copy_in(self.start + at, &mut buf[..n])
    }

    fn write_file(&self, at: usize, file: &File, off: u64, len: usize) -> SysResult<usize> {
        self.src.write_file(self.start + at, file, off, len.min(self.len.saturating_sub(at)))
    }

    fn copy_to(&self, at: usize, to: &Backing, off: u64, len: usize) -> SysResult<usize> {
        self.src.copy_to(self.start + at, to, off, len.min(self.len.saturating_sub(at)))
    }
}

/// One memory-file range of an [`AppIo`].
#[derive(Debug)]
struct Range {
    /// Where it starts in the sequence.
    start: usize,
    /// Its memory-file offset and length.
    off: u64,
    len: usize,
    /// Keeps the pages from going to anyone else while the I/O runs.
    _backing: Arc<Backing>,
}

/// App buffers as memory-file ranges: a destination for a read (resolved
/// for writing) or a source for a write (for reading). See the module's
/// invariants.
#[derive(Debug)]
pub struct AppIo {
    file: Arc<MemoryFile>,
    ranges: Vec<Range>,
    /// Bytes asked for.
    len: usize,
    /// Bytes before the first one without access (`len` if none).
    resolved: usize,
    /// Resolved for writing: only then is it a destination.
    writable: bool,
}

impl AppIo {
    /// An empty sequence; `push` adds ranges, `fault` ends it. Only one
    /// resolved for writing may be written.
    pub(super) fn new(file: Arc<MemoryFile>, writable: bool) -> AppIo {
        AppIo { file, ranges: Vec::new(), len: 0, resolved: 0, writable }
    }

    /// EFAULT unless resolved for writing: bytes checked only for reading
    /// (a file's shared read-only pages, say) are never written.
    fn check_writable(&self) -> SysResult<()> {
        if self.writable {
            Ok(())
        } else {
            Err(errno!(EFAULT))
        }
    }

    /// Whether it has room for another range.
    pub(super) fn full(&self) -> bool {
        self.ranges.len() >= MAX_RANGES
    }

    pub(super) fn push(&mut self, backing: &Arc<Backing>, off: u64, len: usize) {
        let start = self.resolved;
        self.ranges.push(Range { start, off, len, _backing: backing.clone() });
        self.resolved += len;
        self.len = self.resolved;
    }

    /// Ends the sequence at a byte without access, where `asked` bytes in
    /// all were asked for.
    pub(super) fn fault(&mut self, asked: usize) {
        self.len = asked.max(self.resolved);
    }

    /// Bytes asked for (those past a fault included).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Runs `step(done, memory-file offset, n)` over the ranges behind bytes
    /// `at..at + len`, until a step moves fewer than asked. Stops at a
    /// fault: EFAULT if nothing moved.
    fn walk(
        &self,
        at: usize,
        len: usize,
        mut step: impl FnMut(usize, u64, usize) -> SysResult<usize>,
    ) -> SysResult<usize> {
        let end = at.saturating_add(len).min(self.len);
        let stop = end.min(self.resolved);
        let mut pos = at;
        let mut i = self.ranges.partition_point(|r| r.start + r.len <= pos);
        while pos < stop {
            let r = &self.ranges[i];
            let within = pos - r.start;
            let n = (r.len - within).min(stop - pos);
            match step(pos - at, r.off + within as u64, n) {
                Ok(got) => {
                    pos += got;
                    if got < n {
                        return Ok(pos - at);
                    }
                }
                Err(_) if pos > at => return Ok(pos - at),
                Err(e) => return Err(e),
            }
            i += 1;
        }
        if pos == at && at < end {
            return Err(errno!(EFAULT));
        }
        Ok(pos - at)
    }

    /// Copies between the memory file's own ranges (tmpfs data and app
    /// memory): by copy_file_range, or, where the two overlap (a buffer in
    /// a shared mapping of the very bytes it moves), through a buffer.
    fn copy_within(&self, src: u64, dst: u64, n: usize) -> SysResult<()> {
        match self.file.copy_range(src, dst, n as u64) {
            Err(e) if e.raw_os_error() == Some(Errno::EINVAL.0) => {
                let mut buf = vec![0u8; n.min(BOUNCE)];
                bounce(n, BOUNCE, |done, k| {
                    self.file.read(src + done as u64, &mut buf[..k]).map_err(crate::Error::from)?;
                    self.file.write(dst + done as u64, &buf[..k]).map_err(crate::Error::from)?;
                    Ok(k)
                })
                .and_then(|moved| if moved == n { Ok(()) } else { Err(errno!(EFAULT)) })
            }
            r => r.map_err(crate::Error::from),
        }
    }
}

/// Out of pages for app memory is EFAULT, as the copy that faulted would be.
#[track_caller]
fn app_fault(_: impl std::fmt::Debug) -> crate::Error {
    errno!(EFAULT)
}

impl IoDst for AppIo {
    fn space(&self) -> usize {
        self.len
    }

    fn copy_out(&mut self, at: usize, data: &[u8]) -> SysResult<usize> {
        self.check_writable()?;
        self.walk(at, data.len(), |done, off, n| {
            self.file.write(off, &data[done..done + n]).map_err(app_fault)?;
            Ok(n)
        })
    }

    fn read_file(&mut self, at: usize, file: &File, off: u64, len: usize) -> SysResult<usize> {
        self.check_writable()?;
        self.walk(at, len, |done, mem, n| match self.file.read_fd(file.as_fd(), off + done as u64, mem, n) {
            Ok(got) => Ok(got),
            Err(CopyError::File(e)) => Err(crate::Error::from(e)),
            Err(CopyError::Memory(e)) => Err(app_fault(e)),
        })
    }

    fn copy_from(&mut self, at: usize, from: &Backing, off: u64, len: usize) -> SysResult<usize> {
        self.check_writable()?;
        let src = from.range(off, len as u64)?;
        self.walk(at, len, |done, mem, n| {
            self.copy_within(src + done as u64, mem, n).map_err(app_fault)?;
            Ok(n)
        })
    }
}

impl IoSrc for AppIo {
    fn size(&self) -> usize {
        self.len
    }

    fn copy_in(&self, at: usize, buf: &mut [u8]) -> SysResult<usize> {
        self.walk(at, buf.len(), |done, off, n| {
            self.file.read(off, &mut buf[done..done + n]).map_err(app_fault)?;
            Ok(n)
        })
    }

    fn write_file(&self, at: usize, file: &File, off: u64, len: usize) -> SysResult<usize> {
        self.walk(at, len, |done, mem, n| match self.file.write_fd(file.as_fd(), off + done as u64, mem, n) {
            Ok(got) => Ok(got),
            Err(CopyError::File(e)) => Err(crate::Error::from(e)),
            Err(CopyError::Memory(e)) => Err(app_fault(e)),
        })
    }

    fn copy_to(&self, at: usize, to: &Backing, off: u64, len: usize) -> SysResult<usize> {
        if to.frozen {
            return Err(errno!(EFAULT));
        }
        let dst = to.range(off, len as u64)?;
        self.walk(at, len, |done, mem, n| {
            // The destination is file data, whose pages running out is ENOMEM
            // (ENOSPC), as Backing::write reports it.
            self.copy_within(mem, dst + done as u64, n)
                .map_err(|e| if e == Errno::ENOSPC { e } else { errno!(ENOMEM) })?;
            Ok(n)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::{MemoryManager, RangeAllocator, VmaName, PROT_READ, PROT_WRITE};
    use host::memfile::PAGE;

    const A: u64 = 0x10_0000;
    const P: usize = PAGE as usize;

    fn space() -> MemoryManager {
        let file = Arc::new(MemoryFile::new(64 << 20).unwrap());
        MemoryManager::new(RangeAllocator::new(file, 0), crate::mm::Layout { top: 1 << 46 })
    }

    fn map(mm: &mut MemoryManager, addr: u64, pages: u64, prot: u32) {
        mm.map(addr, pages * PAGE, prot, false, true, false, None, VmaName::Anon).unwrap();
    }

    #[test]
    fn a_transfer_stops_at_the_first_byte_without_access() {
        let mut mm = space();
        map(&mut mm, A, 2, PROT_READ | PROT_WRITE);
        map(&mut mm, A + 2 * PAGE, 1, PROT_READ);
        // Read into three pages from byte 100: the third is not writable.
        let mut dst = mm.io(&[(A + 100, 3 * P)], PROT_WRITE);
        assert_eq!(dst.len(), 3 * P, "the bytes past the fault are still asked for");
        assert_eq!(dst.copy_out(0, &[7u8; 3 * P]), Ok(2 * P - 100), "up to the fault");
        assert_eq!(dst.copy_out(2 * P - 100, &[7u8; 1]), Err(errno!(EFAULT)), "nothing past it");
        assert_eq!(dst.copy_out(3 * P, &[]), Ok(0));
        let mut back = vec![0u8; 2 * P - 100];
        mm.read(A + 100, &mut back).unwrap();
        assert!(back.iter().all(|&b| b == 7));
        // Writing from them needs only read access: all three pages serve,
        // up to the unmapped byte after them.
        let src = mm.io(&[(A + 100, 3 * P)], PROT_READ);
        assert_eq!(src.copy_in(0, &mut vec![0u8; 3 * P]), Ok(3 * P - 100));
        // An iovec list faults at its first unmapped piece, whatever follows.
        let src = mm.io(&[(A, 10), (A + 3 * PAGE, 10), (A, 10)], PROT_READ);
        assert_eq!(src.size(), 30);
        assert_eq!(src.copy_in(0, &mut [0u8; 30]), Ok(10));
        assert_eq!(src.copy_in(10, &mut [0u8; 20]), Err(errno!(EFAULT)));
        // A pipe's queue moves all or nothing, as Linux's pipe buffers do.
        let mut queue = VecDeque::from(b"ab".to_vec());
        let src = mm.io(&[(A + 3 * PAGE - 2, 4)], PROT_READ);
        assert_eq!(append_from(&src, &mut queue, 4), Err(errno!(EFAULT)));
        let mut dst = mm.io(&[(A + 2 * PAGE - 1, 2)], PROT_WRITE);
        assert_eq!(drain_into(&mut dst, &mut queue, 2), Err(errno!(EFAULT)));
        assert_eq!(queue, b"ab");
    }

    #[test]
    fn resolving_holds_at_most_max_ranges() {
        let mut mm = space();
        // A page per mapping: one range each.
        let pages = MAX_RANGES as u64 + 10;
        for i in 0..pages {
            map(&mut mm, A + i * PAGE, 1, PROT_READ | PROT_WRITE);
        }
        let io = mm.io(&[(A, pages as usize * P)], PROT_WRITE);
        assert_eq!(io.len(), MAX_RANGES * P, "the rest is for the next call, not a fault");
        let rest = mm.io(&[(A + MAX_RANGES as u64 * PAGE, 10 * P)], PROT_WRITE);
        assert_eq!(rest.len(), 10 * P);
    }

    #[test]
    fn pages_unmapped_during_a_transfer_go_to_no_one_else() {
        let mut mm = space();
        map(&mut mm, A, 1, PROT_READ | PROT_WRITE);
        let mut dst = mm.io(&[(A, P)], PROT_WRITE);
        mm.unmap(A, PAGE).unwrap();
        mm.finish_change();
        // New mappings cannot be given the pages the transfer still holds.
        for i in 0..4 {
            map(&mut mm, A + i * PAGE, 1, PROT_READ | PROT_WRITE);
        }
        assert_eq!(dst.copy_out(0, &[9u8; P]), Ok(P));
        let mut back = vec![0u8; 4 * P];
        mm.read(A, &mut back).unwrap();
        assert!(back.iter().all(|&b| b == 0), "the late bytes reached a new mapping");
    }

    #[test]
    fn file_data_in_the_memory_file_moves_to_and_from_app_memory() {
        let mut mm = space();
        map(&mut mm, A, 2, PROT_READ | PROT_WRITE);
        let data = mm.alloc_backing(4 * PAGE).unwrap();
        data.write(5000, b"tmpfs bytes").unwrap();
        mm.write(A + 10, b"garbage!!!!").unwrap();
        let mut dst = mm.io(&[(A + 10, 11)], PROT_WRITE);
        assert_eq!(dst.copy_from(0, &data, 5000, 11), Ok(11));
        // A hole in the file reads as zeros, over whatever the app had there.
        assert_eq!(dst.copy_from(5, &data, 0, 6), Ok(6));
        let mut back = [0u8; 11];
        mm.read(A + 10, &mut back).unwrap();
        assert_eq!(&back, b"tmpfs\0\0\0\0\0\0");
        let src = mm.io(&[(A + 10, 5)], PROT_READ);
        assert_eq!(src.copy_to(0, &data, 3 * PAGE, 5), Ok(5));
        let mut file = [0u8; 5];
        data.read(3 * PAGE, &mut file).unwrap();
        assert_eq!(&file, b"tmpfs");
        // Past the file data's range: refused, nothing moved.
        assert_eq!(src.copy_to(0, &data, 4 * PAGE - 2, 5), Err(errno!(EFAULT)));
    }

    #[test]
    fn queues_move_whole_across_their_ring() {
        // A queue whose bytes wrap around its buffer.
        let mut queue: VecDeque<u8> = VecDeque::with_capacity(8);
        queue.extend(b"xxxxxx");
        queue.drain(..5);
        queue.extend(b"abcde");
        let mut out = [0u8; 4];
        assert_eq!(drain_into(&mut out, &mut queue, usize::MAX), Ok(4));
        assert_eq!(&out, b"xabc");
        assert_eq!(append_from(b"0123456789", &mut queue, 7), Ok(7));
        let mut rest = vec![0u8; 20];
        assert_eq!(drain_into(&mut rest, &mut queue, 5), Ok(5));
        assert_eq!(&rest[..5], b"de012");
        assert_eq!(queue, b"3456");
    }
}
