//! Allocation of memory-file ranges: first fit over a free list, with
//! coalescing. Ranges are sparse until touched, so reserving is cheap.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use host::memfile::PAGE;
use host::MemoryFile;

use super::fill::Fill;
use crate::SysResult;

/// Hands out page-aligned, disjoint ranges of the memory file.
#[derive(Debug)]
pub struct RangeAllocator {
    free: Mutex<BTreeMap<u64, u64>>, // start -> len
    pub(crate) file: Arc<MemoryFile>,
}

impl RangeAllocator {
    /// Manages `[start, file.size())` of `file`.
    pub fn new(file: Arc<MemoryFile>, start: u64) -> Arc<RangeAllocator> {
        let mut free = BTreeMap::new();
        free.insert(start, file.size() - start);
        Arc::new(RangeAllocator { free: Mutex::new(free), file })
    }

    /// Allocates `len` bytes (rounded to pages), zero-filled.
    pub fn alloc(self: &Arc<Self>, len: u64) -> SysResult<Arc<Backing>> {
        self.alloc_with(len, |_| None)
    }

    /// Allocates `len` bytes (rounded to pages) whose pages come from a
    /// file as they are first used (see [`Fill`]); `fill` gets the rounded
    /// length.
    pub fn alloc_with(self: &Arc<Self>, len: u64, fill: impl FnOnce(u64) -> Option<Fill>) -> SysResult<Arc<Backing>> {
        let len = len.max(PAGE).div_ceil(PAGE) * PAGE;
        let mut free = self.free.lock().unwrap();
        let (&start, &flen) = free.iter().find(|(_, &l)| l >= len).ok_or(abi::Errno::ENOMEM)?;
        free.remove(&start);
        if flen > len {
            free.insert(start + len, flen - len);
        }
        drop(free);
        Ok(Arc::new(Backing { off: start, len, fill: fill(len), frozen: false, alloc: self.clone() }))
    }

    fn release(&self, off: u64, len: u64) {
        let _ = self.file.zero(off, len);
        let mut free = self.free.lock().unwrap();
        let (mut start, mut len) = (off, len);
        if let Some((&ps, &pl)) = free.range(..start).next_back() {
            if ps + pl == start {
                free.remove(&ps);
                start = ps;
                len += pl;
            }
        }
        if let Some(&nl) = free.get(&(start + len)) {
            free.remove(&(start + len));
            len += nl;
        }
        free.insert(start, len);
    }
}

/// A range of the memory file backing one or more mappings; returned to the
/// allocator (and its pages to the host) when the last user drops it.
#[derive(Debug)]
pub struct Backing {
    /// Offset in the memory file.
    pub off: u64,
    /// Length in bytes.
    pub len: u64,
    /// Where its pages come from until first used, for a private file
    /// mapping; None: they start as zeros.
    pub fill: Option<Fill>,
    /// The bytes of an unchanging file, shared by every read-only private
    /// mapping of it in the sandbox (`mm::frozen`): nothing writes them
    /// after they are read in, fork shares them, and a mapping that becomes
    /// writable takes a copy of its own first.
    pub frozen: bool,
    alloc: Arc<RangeAllocator>,
}

impl Backing {
    fn check(&self, off: u64, len: u64) -> SysResult<u64> {
        match off.checked_add(len) {
            Some(end) if end <= self.len => Ok(self.off + off),
            _ => Err(errno!(EFAULT)),
        }
    }

    /// As `check`, for a write: a frozen file's bytes are never written.
    fn check_writable(&self, off: u64, len: u64) -> SysResult<u64> {
        if self.frozen {
            return Err(errno!(EFAULT));
        }
        self.check(off, len)
    }

    /// The memory-file offset of `len` bytes at `off` within this range
    /// (EFAULT past its end), for the kernel to copy to or from.
    pub fn range(&self, off: u64, len: u64) -> SysResult<u64> {
        self.check(off, len)
    }

    /// Brings in every piece of `[off, off + len)` (offsets in this range)
    /// its file has not filled yet.
    pub fn fill_range(&self, off: u64, len: u64) -> SysResult<()> {
        let Some(fill) = &self.fill else { return Ok(()) };
        let end = off.checked_add(len).filter(|&e| e <= self.len).ok_or(abi::Errno::EFAULT)?;
        fill.fill(off, end - off, |at, data| self.write(at, data))
    }

    /// Reads bytes at `off` within this range.
    pub fn read(&self, off: u64, buf: &mut [u8]) -> SysResult<()> {
        let at = self.check(off, buf.len() as u64)?;
        self.alloc.file.read(at, buf).map_err(|_| errno!(EFAULT))
    }

    /// Writes bytes at `off` within this range: ENOMEM (or ENOSPC) when the
    /// pages cannot be had, at the sandbox's memory limit.
    pub fn write(&self, off: u64, data: &[u8]) -> SysResult<()> {
        let at = self.check_writable(off, data.len() as u64)?;
        self.alloc.file.write(at, data).map_err(|e| match e.raw_os_error() {
            Some(errno) if errno == abi::Errno::ENOSPC.0 => errno!(ENOSPC),
            _ => errno!(ENOMEM),
        })
    }

    /// Zeroes `len` bytes at `off` (returning whole pages to the host).
    pub fn zero(&self, off: u64, len: u64) -> SysResult<()> {
        let at = self.check_writable(off, len)?;
        // Partial pages at the edges are cleared by writing zeros; whole pages are punched.
        let first = (at + 4095) & !4095;
        let last = (at + len) & !4095;
        if first < last {
            self.alloc.file.write(at, &vec![0u8; (first - at) as usize]).map_err(|_| errno!(EFAULT))?;
            self.alloc.file.zero(first, last - first).map_err(|_| errno!(EFAULT))?;
            self.alloc.file.write(last, &vec![0u8; (at + len - last) as usize]).map_err(|_| errno!(EFAULT))
        } else {
            self.alloc.file.write(at, &vec![0u8; len as usize]).map_err(|_| errno!(EFAULT))
        }
    }
}

impl Drop for Backing {
    fn drop(&mut self) {
        self.alloc.release(self.off, self.len);
    }
}
