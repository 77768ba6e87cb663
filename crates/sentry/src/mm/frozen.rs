//! One copy of an unchanging file's bytes for the whole sandbox: every
//! read-only private mapping of it (a program's text, a library's) maps
//! the same memory-file pages, so an exec reads a library that another
//! process already maps from nowhere, and a fork copies none of it.
//!
//! Invariants: a frozen backing holds the file's bytes from offset 0 and
//! nothing writes it once they are in. Only VMAs without `PROT_WRITE` map
//! it: `mprotect` to writable first gives the VMA a copy of its own
//! (`MemoryManager::protect`), `MADV_DONTNEED` leaves it (its pages already
//! read as the file's, which is what Linux gives back), and the Sentry's
//! forced writes refuse it. A key names the bytes by file, size,
//! modification and change time, and only filesystems that copy a file elsewhere
//! before any write give keys (`Inode::frozen`), so a key never names two
//! contents.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};

use super::{copy_data, Backing, PageSource, RangeAllocator};
use crate::SysResult;

/// Names bytes of a file that cannot change while they are named so: the
/// filesystem, the file, its size and its modification and change times
/// (the last, which no one sets at will, tells apart two files a host
/// filesystem gives one inode number, an overlayfs without `xino` say);
/// see `vfs::Inode::frozen`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FrozenKey {
    pub fs: u64,
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime: (i64, i64),
    pub ctime: (i64, i64),
}

/// The largest file kept this way: a bigger one is read in per mapping,
/// a piece at a time as it is used.
pub const FROZEN_MAX: u64 = 256 << 20;

/// Room past a file's last page, where a mapping longer than the file
/// reads zeros (the dynamic loader maps a library's whole span, its bss
/// included, before it maps the segments): holes, which cost nothing.
pub const TAIL: u64 = 16 << 20;

/// Slots past this many are swept of files no one maps any more.
const SWEEP_AT: usize = 256;

type Slot = Arc<Mutex<Weak<Backing>>>;

/// The most recently mapped files are kept after their last mapping goes
/// (a shell loop execs the same program again and again), up to this many
/// and this many bytes.
const RECENT_FILES: usize = 16;
const RECENT_BYTES: u64 = 32 << 20;

/// The sandbox's frozen files, each held while something maps it, and the
/// most recent few a while longer.
#[derive(Debug, Default)]
pub struct FrozenFiles {
    slots: Mutex<HashMap<FrozenKey, Slot>>,
    recent: Mutex<VecDeque<Arc<Backing>>>,
}

impl FrozenFiles {
    /// The pages of the file `key` names, read from what `source` opens
    /// (which must read exactly those bytes) if no mapping holds them now. An error
    /// (the file turned out shorter, memory ran out) caches nothing.
    pub fn get(
        &self,
        alloc: &Arc<RangeAllocator>,
        key: FrozenKey,
        source: impl FnOnce() -> SysResult<Box<dyn PageSource>>,
    ) -> SysResult<Arc<Backing>> {
        if key.size == 0 || key.size > FROZEN_MAX {
            return Err(errno!(EFBIG));
        }
        let slot = {
            let mut slots = self.slots.lock().unwrap();
            if slots.len() >= SWEEP_AT {
                // A slot being filled is locked, and kept.
                slots.retain(|_, s| s.try_lock().map_or(true, |w| w.strong_count() > 0));
            }
            slots.entry(key).or_default().clone()
        };
        let mut held = slot.lock().unwrap();
        if let Some(b) = held.upgrade() {
            self.keep(&b);
            return Ok(b);
        }
        let mut b = alloc.alloc(key.size + TAIL)?;
        if copy_data(&*source()?, 0, key.size, |at, data| b.write(at, data))? < key.size {
            return Err(errno!(EIO));
        }
        // From here on nothing writes it (`Backing::write` refuses).
        Arc::get_mut(&mut b).expect("a backing no one else holds").frozen = true;
        *held = Arc::downgrade(&b);
        self.keep(&b);
        Ok(b)
    }

    /// Makes `b` the most recent file kept, letting the oldest go past the bounds.
    fn keep(&self, b: &Arc<Backing>) {
        let file_len = |b: &Arc<Backing>| b.len - TAIL;
        if file_len(b) > RECENT_BYTES {
            return;
        }
        let mut recent = self.recent.lock().unwrap();
        recent.retain(|r| !Arc::ptr_eq(r, b));
        recent.push_front(b.clone());
        let mut total = 0;
        let keep = recent.iter().take(RECENT_FILES).take_while(|r| {
            total += file_len(r);
            total <= RECENT_BYTES
        });
        let n = keep.count();
        recent.truncate(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Bytes(Arc<(Vec<u8>, std::sync::atomic::AtomicUsize)>);

    impl PageSource for Bytes {
        fn read(&self, off: u64, buf: &mut [u8]) -> SysResult<usize> {
            let (bytes, reads) = &*self.0;
            reads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let from = (off as usize).min(bytes.len());
            let n = buf.len().min(bytes.len() - from);
            buf[..n].copy_from_slice(&bytes[from..from + n]);
            Ok(n)
        }
        fn data_extent(&self, off: u64) -> SysResult<Option<(u64, u64)>> {
            // All data up to the end of any file: a shorter one ends in a short read.
            Ok((off < self.0 .0.len() as u64).then_some((off, u64::MAX)))
        }
    }

    fn source(bytes: Vec<u8>) -> Arc<(Vec<u8>, std::sync::atomic::AtomicUsize)> {
        Arc::new((bytes, Default::default()))
    }

    fn open(src: &Arc<(Vec<u8>, std::sync::atomic::AtomicUsize)>) -> impl FnOnce() -> SysResult<Box<dyn PageSource>> {
        let src = src.clone();
        move || Ok(Box::new(Bytes(src)) as Box<dyn PageSource>)
    }

    fn reads(src: &Arc<(Vec<u8>, std::sync::atomic::AtomicUsize)>) -> usize {
        src.1.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn key(size: u64) -> FrozenKey {
        FrozenKey { fs: 1, dev: 2, ino: 3, size, mtime: (4, 5), ctime: (6, 7) }
    }

    #[test]
    fn one_copy_while_mapped_and_a_fresh_read_after() {
        let mem = Arc::new(host::MemoryFile::new(1 << 30).unwrap());
        let alloc = RangeAllocator::new(mem, 0);
        let files = FrozenFiles::default();
        let src = source((0..10_000u32).map(|i| i as u8 | 1).collect());
        let a = files.get(&alloc, key(10_000), open(&src)).unwrap();
        assert!(a.frozen);
        let n = reads(&src);
        let b = files.get(&alloc, key(10_000), open(&src)).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(reads(&src), n, "the second mapping read the file again");
        let mut got = vec![0u8; 10_000];
        a.read(0, &mut got).unwrap();
        assert_eq!(got, src.0);
        // Another modification time is other bytes.
        let other = files.get(&alloc, FrozenKey { mtime: (4, 6), ..key(10_000) }, open(&src)).unwrap();
        assert!(!Arc::ptr_eq(&a, &other));
        // The last mapping gone, the file is kept among the recent ones...
        let weak = Arc::downgrade(&a);
        let n = reads(&src);
        drop((a, b));
        let c = files.get(&alloc, key(10_000), open(&src)).unwrap();
        assert_eq!(reads(&src), n);
        assert!(c.frozen);
        drop(c);
        // ...until RECENT_FILES others push it out; then it is read afresh.
        for i in 0..RECENT_FILES as u64 {
            files.get(&alloc, FrozenKey { ino: 100 + i, ..key(10_000) }, open(&src)).unwrap();
        }
        assert_eq!(weak.strong_count(), 0, "an old file is still held");
        let before = reads(&src);
        files.get(&alloc, key(10_000), open(&src)).unwrap();
        assert!(reads(&src) > before);
    }

    #[test]
    fn a_file_shorter_than_its_key_is_not_kept() {
        let mem = Arc::new(host::MemoryFile::new(1 << 30).unwrap());
        let alloc = RangeAllocator::new(mem, 0);
        let files = FrozenFiles::default();
        let src = source(vec![7; 100]);
        let refused = |size, want: abi::Errno| matches!(files.get(&alloc, key(size), open(&src)), Err(e) if e == want);
        assert!(refused(5000, abi::Errno::EIO));
        assert!(refused(0, abi::Errno::EFBIG));
        assert!(refused(FROZEN_MAX + 1, abi::Errno::EFBIG));
        let b = files.get(&alloc, key(100), open(&src)).unwrap();
        // Past the file, as far as a mapping may reach, zeros.
        let mut tail = vec![1u8; 4096];
        b.read(b.len - 4096, &mut tail).unwrap();
        assert!(tail.iter().all(|&x| x == 0));
        assert!(b.len >= super::super::page_up(100).unwrap() + TAIL);
    }
}
