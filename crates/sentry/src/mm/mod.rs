//! Address spaces: VMAs over memory-file ranges, brk, mmap/munmap/mprotect,
//! fork copies, and copy-in/copy-out of app memory through the Sentry's view.
//!
//! Invariants: VMAs never overlap and lie below the layout's `top` (the
//! platform's own pages are above it, outside the app's address space); each VMA maps
//! `[start, end)` to `backing.off + offset ..` of the memory file; the stub's
//! host mappings are kept equal to the VMAs by applying the `MapOp`s every
//! change returns, under the same lock, so that they change in the VMAs'
//! order; memory-file pages a change drops are kept (`retired`) until its
//! `MapOp`s are applied ([`MemoryManager::finish_change`]), so that no host
//! mapping ever reaches pages given to someone else.

pub mod alloc;
pub mod fill;
pub mod frozen;
pub mod io;

use std::collections::BTreeMap;
use std::sync::Arc;

use abi::AsBytes;
use host::memfile::PAGE;

pub use alloc::{Backing, RangeAllocator};
pub use fill::{copy_data, Fill, PageSource, PIECE};
pub use frozen::{FrozenFiles, FrozenKey, FROZEN_MAX};
pub use io::{AppIo, IoDst, IoSrc, Part};

use crate::SysResult;

pub const PROT_READ: u32 = 1;
pub const PROT_WRITE: u32 = 2;
pub const PROT_EXEC: u32 = 4;

/// Size reserved for the main thread's stack.
pub const STACK_SIZE: u64 = 8 << 20;
const MMAP_BOTTOM: u64 = 0x1_0000;
/// The lowest address any mapping may have (Linux's default mmap_min_addr).
const MMAP_BOTTOM_ANY: u64 = PAGE;
const HEAP_RESERVE: u64 = 1 << 30;

/// A change the stub's host address space must make to match the VMAs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapOp {
    /// Map `len` bytes at `addr` from memory-file offset `off` with `prot`.
    Map { addr: u64, len: u64, prot: u32, off: u64 },
    /// Remove whatever is mapped in `[addr, addr+len)`.
    Unmap { addr: u64, len: u64 },
}

/// What a VMA shows in /proc/<pid>/maps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VmaName {
    Anon,
    Heap,
    Stack,
    /// The vDSO's time page: read-only, shared by the sandbox, never writable.
    Vvar,
    /// moat's vDSO (loader/vdso.rs).
    Vdso,
    File {
        path: String,
        dev: u64,
        ino: u64,
        offset: u64,
    },
}

/// One contiguous mapping.
#[derive(Debug, Clone)]
pub struct Vma {
    pub start: u64,
    pub end: u64,
    pub prot: u32,
    pub shared: bool,
    pub backing: Arc<Backing>,
    /// Offset of `start` inside `backing`.
    pub offset: u64,
    pub name: VmaName,
}

impl Vma {
    fn memoff(&self, addr: u64) -> u64 {
        self.backing.off + self.offset + (addr - self.start)
    }

    /// Whether the VMA lies within its backing, as every change keeps it:
    /// checked again wherever its pages are reached, so that a slip in the
    /// bookkeeping shows nothing of anyone else's memory.
    fn fits(&self) -> bool {
        self.offset.checked_add(self.end - self.start).is_some_and(|e| e <= self.backing.len)
    }

    /// PROT_NONE ranges are mapped too, so a touch faults with SEGV_ACCERR as on Linux.
    fn map_op(&self) -> MapOp {
        if !self.fits() {
            return MapOp::Unmap { addr: self.start, len: self.end - self.start };
        }
        MapOp::Map { addr: self.start, len: self.end - self.start, prot: self.prot, off: self.memoff(self.start) }
    }

    /// The host mappings that show this VMA: as one, or, for a file mapping
    /// that fills on first use, its pieces not in yet `PROT_NONE` (the app's
    /// first touch faults to the Sentry, which fills them).
    fn map_ops(&self, ops: &mut Vec<MapOp>) {
        let Some(fill) = self.backing.fill.as_ref().filter(|_| self.prot != 0 && self.fits()) else {
            ops.push(self.map_op());
            return;
        };
        let mut addr = self.start;
        while addr < self.end {
            let boff = self.offset + (addr - self.start);
            let index = boff / PIECE;
            let filled = fill.is_filled(index);
            let mut end = (self.start + ((index + 1) * PIECE - self.offset)).min(self.end);
            while end < self.end && fill.is_filled((self.offset + (end - self.start)) / PIECE) == filled {
                end = (end + PIECE - (self.offset + (end - self.start)) % PIECE).min(self.end);
            }
            let prot = if filled { self.prot } else { 0 };
            ops.push(MapOp::Map { addr, len: end - addr, prot, off: self.memoff(addr) });
            addr = end;
        }
    }

    fn split_at(&self, at: u64) -> (Vma, Vma) {
        let mut lo = self.clone();
        let mut hi = self.clone();
        lo.end = at;
        hi.start = at;
        hi.offset = self.offset + (at - self.start);
        if let VmaName::File { offset, .. } = &mut hi.name {
            *offset += at - self.start;
        }
        (lo, hi)
    }
}

/// Where an app address space ends, as the platform has it: the platform
/// keeps its own pages (the stub's) at and above `top`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// The first address app mappings may not use.
    pub top: u64,
}

impl Layout {
    /// Top of the initial stack (a guard gap below the platform's pages).
    pub fn stack_top(&self) -> u64 {
        self.top - 16 * PAGE
    }

    /// Where mmap's search for free space starts, below the stack's reserve.
    fn mmap_top(&self) -> u64 {
        self.stack_top() - STACK_SIZE - (1 << 30)
    }
}

/// An app address space.
#[derive(Debug)]
pub struct MemoryManager {
    layout: Layout,
    vmas: BTreeMap<u64, Vma>,
    alloc: Arc<RangeAllocator>,
    brk_start: u64,
    brk: u64,
    heap: Option<Arc<Backing>>,
    /// Memory-file ranges the last change dropped, and heap pages it gave
    /// back: freed by `finish_change`, once no host mapping reaches them.
    retired: Vec<Arc<Backing>>,
    retired_heap: Vec<(u64, u64)>,
    /// Where argv/envp live, for /proc/<pid>/cmdline and environ.
    pub arg_range: (u64, u64),
    pub env_range: (u64, u64),
    pub auxv: Vec<(u64, u64)>,
}

pub fn page_up(x: u64) -> Option<u64> {
    x.checked_add(PAGE - 1).map(|v| v & !(PAGE - 1))
}

pub fn page_down(x: u64) -> u64 {
    x & !(PAGE - 1)
}

impl MemoryManager {
    pub fn new(alloc: Arc<RangeAllocator>, layout: Layout) -> MemoryManager {
        MemoryManager {
            layout,
            vmas: BTreeMap::new(),
            alloc,
            brk_start: 0,
            brk: 0,
            heap: None,
            retired: Vec::new(),
            retired_heap: Vec::new(),
            arg_range: (0, 0),
            env_range: (0, 0),
            auxv: Vec::new(),
        }
    }

    /// Frees what the last change dropped. Call once its `MapOp`s are
    /// applied; if they could not be, do not, and end the process (whose
    /// memory goes with the whole manager, after its stub).
    pub fn finish_change(&mut self) {
        self.retired.clear();
        if let Some(heap) = &self.heap {
            for (off, len) in self.retired_heap.drain(..) {
                let _ = heap.zero(off, len);
            }
        }
        self.retired_heap.clear();
    }

    /// Makes this the address space of a new program image (execve): every
    /// mapping of the old one goes (its pages once the returned changes are
    /// applied), the new one's come.
    pub fn replace_with(&mut self, new: MemoryManager) -> Vec<MapOp> {
        let old = std::mem::replace(self, new);
        self.retired.extend(old.vmas.into_values().map(|v| v.backing));
        self.retired.extend(old.heap);
        self.retired.extend(old.retired);
        let mut ops = vec![MapOp::Unmap { addr: MMAP_BOTTOM_ANY, len: self.layout.top - MMAP_BOTTOM_ANY }];
        ops.extend(self.all_map_ops());
        ops
    }

    /// Where this address space ends.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    pub fn vmas(&self) -> impl Iterator<Item = &Vma> {
        self.vmas.values()
    }

    /// Every host mapping the stub needs to mirror this address space.
    pub fn all_map_ops(&self) -> Vec<MapOp> {
        let mut ops = Vec::new();
        for v in self.vmas.values() {
            v.map_ops(&mut ops);
        }
        ops
    }

    /// A fault at `addr` that may be a piece of a file mapping not in yet
    /// (or in, but not yet mapped by the stub): fills it and returns the
    /// host mappings that show it. None if the fault is the app's own (no
    /// such mapping there, `PROT_NONE`, or a piece the stub maps already).
    pub fn fault_in(&mut self, addr: u64) -> SysResult<Option<Vec<MapOp>>> {
        let Some(v) = self.vmas.range(..=addr).next_back().map(|(_, v)| v).filter(|v| v.end > addr) else {
            return Ok(None);
        };
        let Some(fill) = v.backing.fill.as_ref().filter(|_| v.prot != 0 && v.fits()) else { return Ok(None) };
        let index = (v.offset + (addr - v.start)) / PIECE;
        if fill.is_exposed(index) {
            return Ok(None);
        }
        let (from, to) = (index * PIECE, ((index + 1) * PIECE).min(v.backing.len));
        v.backing.fill_range(from, to - from)?;
        // Every VMA of this address space that shows the piece maps it now.
        let backing = v.backing.clone();
        let mut ops = Vec::new();
        for w in self.vmas.values().filter(|w| Arc::ptr_eq(&w.backing, &backing) && w.fits()) {
            let (lo, hi) = (w.offset.max(from), (w.offset + (w.end - w.start)).min(to));
            if lo < hi {
                let at = w.start + (lo - w.offset);
                ops.push(MapOp::Map { addr: at, len: hi - lo, prot: w.prot, off: backing.off + lo });
            }
        }
        fill.expose(index);
        Ok(Some(ops))
    }

    fn overlaps(&self, start: u64, end: u64) -> bool {
        self.vmas.range(..end).next_back().is_some_and(|(_, v)| v.end > start)
    }

    /// Finds a free gap of `len` bytes, top-down from the mmap area.
    fn find_gap(&self, len: u64) -> SysResult<u64> {
        let mut top = self.layout.mmap_top();
        for v in self.vmas.range(..self.layout.mmap_top()).rev().map(|(_, v)| v) {
            if v.end <= top && top - v.end >= len {
                return Ok(top - len);
            }
            top = top.min(v.start);
        }
        if top >= MMAP_BOTTOM + len {
            Ok(top - len)
        } else {
            Err(errno!(ENOMEM))
        }
    }

    /// A free range of `len` bytes where mmap would put one (the loader's vDSO).
    pub fn free_range(&self, len: u64) -> SysResult<u64> {
        self.find_gap(page_up(len).ok_or(errno!(ENOMEM))?)
    }

    /// Removes `[start, end)` from the VMAs, splitting as needed.
    fn carve(&mut self, start: u64, end: u64) {
        let keys: Vec<u64> = self.vmas.range(..end).filter(|(_, v)| v.end > start).map(|(&k, _)| k).collect();
        for k in keys {
            let v = self.vmas.remove(&k).expect("key from range");
            if v.start < start {
                let (lo, _) = v.split_at(start);
                self.vmas.insert(lo.start, lo);
            }
            if v.end > end {
                let (_, hi) = v.split_at(end);
                self.vmas.insert(hi.start, hi);
            }
            self.retired.push(v.backing);
        }
    }

    /// Maps a new region. `addr` is a hint unless `fixed`. With `noreplace`, an overlap fails.
    #[allow(clippy::too_many_arguments)]
    pub fn map(
        &mut self,
        addr: u64,
        len: u64,
        prot: u32,
        shared: bool,
        fixed: bool,
        noreplace: bool,
        backing: Option<(Arc<Backing>, u64)>,
        name: VmaName,
    ) -> SysResult<(u64, Vec<MapOp>)> {
        let len = page_up(len).ok_or(errno!(ENOMEM))?;
        if len == 0 {
            return Err(errno!(EINVAL));
        }
        let start = if fixed || noreplace {
            if !addr.is_multiple_of(PAGE) {
                return Err(errno!(EINVAL));
            }
            let end = addr.checked_add(len).ok_or(errno!(ENOMEM))?;
            if end > self.layout.top || addr < PAGE {
                return Err(errno!(ENOMEM));
            }
            if noreplace && self.overlaps(addr, end) {
                return Err(errno!(EEXIST));
            }
            addr
        } else {
            let hint = page_down(addr);
            match hint.checked_add(len) {
                Some(end) if hint >= MMAP_BOTTOM && end <= self.layout.top && !self.overlaps(hint, end) => hint,
                _ => self.find_gap(len)?,
            }
        };
        let end = start + len;
        let (backing, offset) = match backing {
            Some(b) => b,
            None => (self.alloc.alloc(len)?, 0),
        };
        // A VMA shows its own range of the memory file and nothing past it.
        if offset.checked_add(len).is_none_or(|e| e > backing.len) {
            return Err(errno!(EINVAL));
        }
        let mut ops = Vec::new();
        if self.overlaps(start, end) {
            self.carve(start, end);
            ops.push(MapOp::Unmap { addr: start, len });
        }
        let v = Vma { start, end, prot, shared, backing, offset, name };
        v.map_ops(&mut ops);
        self.vmas.insert(start, v);
        Ok((start, ops))
    }

    /// mremap: resizes the mapping at `old` (within one VMA), in place when the pages after
    /// it are free, else (with `may_move`) at a new address; `fixed` forces `new_addr`.
    pub fn remap(
        &mut self,
        old: u64,
        old_len: u64,
        new_len: u64,
        may_move: bool,
        fixed: Option<u64>,
    ) -> SysResult<(u64, Vec<MapOp>)> {
        if !old.is_multiple_of(PAGE) || new_len == 0 {
            return Err(errno!(EINVAL));
        }
        let old_len = page_up(old_len).ok_or(errno!(EINVAL))?;
        let new_len = page_up(new_len).ok_or(errno!(EINVAL))?;
        let v = self
            .vmas
            .range(..=old)
            .next_back()
            .map(|(_, v)| v.clone())
            .filter(|v| v.end > old)
            .ok_or(errno!(EFAULT))?;
        let old_end = old.checked_add(old_len).ok_or(errno!(EINVAL))?;
        // Nor is the time page moved or resized (the vDSO finds it a page below itself).
        if old_end > v.end || old_len == 0 || v.name == VmaName::Vvar {
            return Err(errno!(EFAULT));
        }
        if fixed.is_none() && new_len <= old_len {
            let ops = if new_len < old_len { self.unmap(old + new_len, old_len - new_len)? } else { vec![] };
            return Ok((old, ops));
        }
        let own_refs = self.vmas.values().filter(|x| Arc::ptr_eq(&x.backing, &v.backing)).count();
        // `v` is a clone, so it holds one more reference.
        if v.shared && Arc::strong_count(&v.backing) > own_refs + 1 {
            // Another process shares these pages; a new backing would break the sharing.
            return Err(errno!(ENOMEM));
        }
        let grow_in_place = fixed.is_none()
            && old_end == v.end
            && old.checked_add(new_len).is_some_and(|e| e <= self.layout.top && !self.overlaps(old_end, e));
        let target = match fixed {
            Some(a) => {
                if !a.is_multiple_of(PAGE) || a.checked_add(new_len).is_none_or(|e| e > self.layout.top) {
                    return Err(errno!(EINVAL));
                }
                // The new place may not overlap the old one, as on Linux.
                if a < old_end && old < a + new_len {
                    return Err(errno!(EINVAL));
                }
                a
            }
            None if grow_in_place => old,
            None if may_move => self.find_gap(new_len)?,
            None => return Err(errno!(ENOMEM)),
        };
        // Copy the pages into a fresh backing of the new size (holes stay
        // holes); a file mapping's pieces come in first.
        v.backing.fill_range(v.offset + (old - v.start), old_len.min(new_len))?;
        let backing = self.alloc.alloc(new_len)?;
        self.alloc.file.copy(v.memoff(old), backing.off, old_len.min(new_len)).map_err(|_| errno!(ENOMEM))?;
        let name = match &v.name {
            VmaName::File { path, dev, ino, offset } => {
                VmaName::File { path: path.clone(), dev: *dev, ino: *ino, offset: offset + (old - v.start) }
            }
            n => n.clone(),
        };
        let mut ops = self.unmap(old, old_len)?;
        let (addr, more) = self.map(target, new_len, v.prot, v.shared, true, false, Some((backing, 0)), name)?;
        ops.extend(more);
        Ok((addr, ops))
    }

    /// Whether every page of `[addr, addr+len)` is mapped (msync, mincore).
    pub fn is_mapped(&self, addr: u64, len: u64) -> bool {
        let Some(end) = addr.checked_add(len) else { return false };
        let mut cur = addr;
        while cur < end {
            match self.vmas.range(..=cur).next_back().map(|(_, v)| v).filter(|v| v.end > cur) {
                Some(v) => cur = v.end,
                None => return false,
            }
        }
        true
    }

    /// Allocates a backing range for a mapping the caller fills before mapping.
    pub fn alloc_backing(&self, len: u64) -> SysResult<Arc<Backing>> {
        self.alloc.alloc(len)
    }

    pub fn unmap(&mut self, addr: u64, len: u64) -> SysResult<Vec<MapOp>> {
        if !addr.is_multiple_of(PAGE) || len == 0 {
            return Err(errno!(EINVAL));
        }
        let end = addr.checked_add(page_up(len).ok_or(errno!(EINVAL))?).ok_or(errno!(EINVAL))?;
        // As Linux past TASK_SIZE: nothing of the app's is there (the stub is).
        if end > self.layout.top {
            return Err(errno!(EINVAL));
        }
        self.carve(addr, end);
        Ok(vec![MapOp::Unmap { addr, len: end - addr }])
    }

    pub fn protect(&mut self, addr: u64, len: u64, prot: u32) -> SysResult<Vec<MapOp>> {
        if !addr.is_multiple_of(PAGE) {
            return Err(errno!(EINVAL));
        }
        let end = addr.checked_add(page_up(len).ok_or(errno!(ENOMEM))?).ok_or(errno!(ENOMEM))?;
        if len == 0 {
            return Ok(vec![]);
        }
        // Every page in the range must be mapped.
        let mut cursor = addr;
        for v in self.vmas.range(..end).filter(|(_, v)| v.end > addr).map(|(_, v)| v) {
            if v.start > cursor {
                return Err(errno!(ENOMEM));
            }
            cursor = v.end;
        }
        if cursor < end {
            return Err(errno!(ENOMEM));
        }
        // The time page may be read and nothing else, as on Linux.
        if prot & !PROT_READ != 0 && self.vmas.range(..end).any(|(_, v)| v.end > addr && v.name == VmaName::Vvar) {
            return Err(errno!(EACCES));
        }
        let keys: Vec<u64> = self.vmas.range(..end).filter(|(_, v)| v.end > addr).map(|(&k, _)| k).collect();
        // A file's shared bytes about to be writable: each such part takes
        // a copy of its own (holes stay holes), all made before anything
        // changes, so that a failure leaves the address space as it was.
        let mut copies = Vec::new();
        if prot & PROT_WRITE != 0 {
            for v in keys.iter().map(|k| &self.vmas[k]).filter(|v| v.backing.frozen) {
                let (lo, hi) = (v.start.max(addr), v.end.min(end));
                let own = self.alloc.alloc(hi - lo)?;
                self.alloc.file.copy(v.memoff(lo), own.off, hi - lo).map_err(|_| errno!(ENOMEM))?;
                copies.push((v.start, own));
            }
        }
        let mut ops = Vec::new();
        for k in keys {
            let mut v = self.vmas.remove(&k).expect("key from range");
            if v.start < addr {
                let (lo, hi) = v.split_at(addr);
                self.vmas.insert(lo.start, lo);
                v = hi;
            }
            if v.end > end {
                let (lo, hi) = v.split_at(end);
                self.vmas.insert(hi.start, hi);
                v = lo;
            }
            if let Some(i) = copies.iter().position(|(start, _)| *start == k) {
                self.retired.push(std::mem::replace(&mut v.backing, copies.swap_remove(i).1));
                v.offset = 0;
            }
            v.prot = prot;
            v.map_ops(&mut ops);
            self.vmas.insert(v.start, v);
        }
        Ok(ops)
    }

    /// Sets up the heap after exec: brk starts at `start` (page-aligned end of the image).
    pub fn init_brk(&mut self, start: u64) -> SysResult<()> {
        self.brk_start = start;
        self.brk = start;
        self.heap = Some(self.alloc.alloc(HEAP_RESERVE)?);
        Ok(())
    }

    pub fn brk(&mut self, new: u64) -> (u64, Vec<MapOp>) {
        let Some(heap) = self.heap.clone() else { return (self.brk, vec![]) };
        if new < self.brk_start || new > self.brk_start + HEAP_RESERVE {
            return (self.brk, vec![]);
        }
        let old_end = page_up(self.brk).unwrap_or(self.brk);
        let new_end = page_up(new).unwrap_or(new);
        let mut ops = Vec::new();
        if new_end > old_end {
            if self.overlaps(old_end, new_end) {
                return (self.brk, vec![]);
            }
            // Extend the heap VMA (or create it) over the reserved backing.
            let existing = self.vmas.range(..old_end).next_back().map(|(_, v)| v.clone());
            match existing {
                // Only the heap's own VMA grows in place, and only within the
                // heap's range: a heap page mremap'd here has a backing of its
                // own that must not be stretched over memory not its own.
                Some(mut v)
                    if v.name == VmaName::Heap
                        && v.end == old_end
                        && Arc::ptr_eq(&v.backing, &heap)
                        && v.offset + (new_end - v.start) <= heap.len =>
                {
                    self.vmas.remove(&v.start);
                    v.end = new_end;
                    // The stub maps the new pages only: mapping the whole heap
                    // again would drop the host's page tables of every page
                    // already in, each of which the app would fault in again.
                    ops.push(match v.map_op() {
                        MapOp::Map { prot, .. } => {
                            MapOp::Map { addr: old_end, len: new_end - old_end, prot, off: v.memoff(old_end) }
                        }
                        unmap => unmap,
                    });
                    self.vmas.insert(v.start, v);
                }
                _ => {
                    let v = Vma {
                        start: old_end,
                        end: new_end,
                        prot: PROT_READ | PROT_WRITE,
                        shared: false,
                        backing: heap.clone(),
                        offset: old_end - page_up(self.brk_start).unwrap_or(self.brk_start),
                        name: VmaName::Heap,
                    };
                    ops.push(v.map_op());
                    self.vmas.insert(v.start, v);
                }
            }
        } else if new_end < old_end {
            self.carve(new_end, old_end);
            ops.push(MapOp::Unmap { addr: new_end, len: old_end - new_end });
            // The pages read as zero if the heap grows back over them.
            let base = page_up(self.brk_start).unwrap_or(self.brk_start);
            self.retired_heap.push((new_end - base, old_end - new_end));
        }
        self.brk = new;
        (new, ops)
    }

    /// A copy for fork: private mappings get their own pages, shared ones are shared.
    pub fn fork(&self) -> SysResult<MemoryManager> {
        let mut vmas = BTreeMap::new();
        let mut copied: Vec<(*const Backing, Arc<Backing>)> = Vec::new();
        let heap = match &self.heap {
            Some(h) => {
                let n = self.alloc.alloc(h.len)?;
                self.alloc.file.copy(h.off, n.off, h.len).map_err(|_| errno!(ENOMEM))?;
                copied.push((Arc::as_ptr(h), n.clone()));
                Some(n)
            }
            None => None,
        };
        for v in self.vmas.values() {
            let mut nv = v.clone();
            if !v.shared && !v.backing.frozen {
                let key = Arc::as_ptr(&v.backing);
                let existing = copied.iter().find(|(k, _)| *k == key).map(|(_, b)| b.clone());
                nv.backing = match existing {
                    Some(b) => b,
                    None => {
                        let n = self.alloc.alloc_with(v.backing.len, |_| v.backing.fill.as_ref().map(Fill::fork))?;
                        self.alloc.file.copy(v.backing.off, n.off, v.backing.len).map_err(|_| errno!(ENOMEM))?;
                        copied.push((key, n.clone()));
                        n
                    }
                };
            }
            vmas.insert(nv.start, nv);
        }
        Ok(MemoryManager {
            layout: self.layout,
            vmas,
            alloc: self.alloc.clone(),
            brk_start: self.brk_start,
            brk: self.brk,
            heap,
            retired: Vec::new(),
            retired_heap: Vec::new(),
            arg_range: self.arg_range,
            env_range: self.env_range,
            auxv: self.auxv.clone(),
        })
    }

    /// Translates `[addr, addr+len)` into memory-file extents, checking `want` protections.
    fn extents(&self, addr: u64, len: usize, want: u32) -> SysResult<Vec<(u64, usize)>> {
        let mut out = Vec::new();
        let mut cur = addr;
        let end = addr.checked_add(len as u64).ok_or(errno!(EFAULT))?;
        while cur < end {
            let v =
                self.vmas.range(..=cur).next_back().map(|(_, v)| v).filter(|v| v.end > cur).ok_or(errno!(EFAULT))?;
            if v.prot & want != want || v.prot == 0 || !v.fits() {
                return Err(errno!(EFAULT));
            }
            let n = (v.end.min(end) - cur) as usize;
            v.backing.fill_range(v.offset + (cur - v.start), n as u64).map_err(|_| errno!(EFAULT))?;
            out.push((v.memoff(cur), n));
            cur += n as u64;
        }
        Ok(out)
    }

    /// App buffers `pieces` (address, length) as memory-file ranges for I/O
    /// wanting `want` access (`PROT_WRITE` to read into them, `PROT_READ`
    /// to write from them): up to the first byte without it, where the
    /// sequence faults, and at most `io::MAX_RANGES` ranges, where it ends
    /// short (the rest is for another call).
    pub fn io(&self, pieces: &[(u64, usize)], want: u32) -> AppIo {
        let mut io = AppIo::new(self.alloc.file.clone(), want & PROT_WRITE != 0);
        let asked = pieces.iter().fold(0usize, |sum, p| sum.saturating_add(p.1));
        for &(addr, len) in pieces {
            let Some(end) = addr.checked_add(len as u64) else {
                io.fault(asked);
                return io;
            };
            let mut cur = addr;
            while cur < end {
                if io.full() {
                    return io;
                }
                let v = self.vmas.range(..=cur).next_back().map(|(_, v)| v).filter(|v| v.end > cur);
                let Some(v) = v.filter(|v| v.prot & want == want && v.prot != 0 && v.fits()) else {
                    io.fault(asked);
                    return io;
                };
                let n = (v.end.min(end) - cur) as usize;
                if v.backing.fill_range(v.offset + (cur - v.start), n as u64).is_err() {
                    io.fault(asked);
                    return io;
                }
                io.push(&v.backing, v.memoff(cur), n);
                cur += n as u64;
            }
        }
        io
    }

    /// The memory-file offset behind the aligned u32 at `addr` (futex keys): the same for
    /// every process sharing the page, distinct for private copies.
    ///
    /// With the word's pages, which the caller holds while it reads or
    /// writes the word after letting go of the address space's lock: an
    /// unmap in between then frees nothing the word could be reused as.
    pub fn translate_u32(&self, addr: u64, want: u32) -> SysResult<(u64, Arc<Backing>)> {
        if !addr.is_multiple_of(4) {
            return Err(errno!(EINVAL));
        }
        let off = self.extents(addr, 4, want)?[0].0;
        let v = self.vmas.range(..=addr).next_back().map(|(_, v)| v).ok_or(errno!(EFAULT))?;
        if want & PROT_WRITE != 0 && v.backing.frozen {
            return Err(errno!(EFAULT));
        }
        Ok((off, v.backing.clone()))
    }

    /// Copies app memory at `addr` into `buf` (EFAULT if any byte is unmapped or unreadable).
    pub fn read(&self, addr: u64, buf: &mut [u8]) -> SysResult<()> {
        let mut done = 0;
        for (off, n) in self.extents(addr, buf.len(), PROT_READ)? {
            self.alloc.file.read(off, &mut buf[done..done + n]).map_err(|_| errno!(EFAULT))?;
            done += n;
        }
        Ok(())
    }

    /// Copies `data` into app memory at `addr` (EFAULT if not writable).
    pub fn write(&self, addr: u64, data: &[u8]) -> SysResult<()> {
        self.write_checked(addr, data, PROT_WRITE)
    }

    /// Writes ignoring protections (the loader filling read-only segments, ptrace-like pokes).
    pub fn write_force(&self, addr: u64, data: &[u8]) -> SysResult<()> {
        self.write_checked(addr, data, 0)
    }

    fn write_checked(&self, addr: u64, data: &[u8], want: u32) -> SysResult<()> {
        let ext = if want == 0 { self.extents_any(addr, data.len())? } else { self.extents(addr, data.len(), want)? };
        let mut done = 0;
        for (off, n) in ext {
            self.alloc.file.write(off, &data[done..done + n]).map_err(|_| errno!(EFAULT))?;
            done += n;
        }
        Ok(())
    }

    fn extents_any(&self, addr: u64, len: usize) -> SysResult<Vec<(u64, usize)>> {
        let mut out = Vec::new();
        let mut cur = addr;
        let end = addr.checked_add(len as u64).ok_or(errno!(EFAULT))?;
        while cur < end {
            let v =
                self.vmas.range(..=cur).next_back().map(|(_, v)| v).filter(|v| v.end > cur).ok_or(errno!(EFAULT))?;
            // Forced writes too leave a frozen file's shared bytes alone.
            if !v.fits() || v.backing.frozen {
                return Err(errno!(EFAULT));
            }
            let n = (v.end.min(end) - cur) as usize;
            v.backing.fill_range(v.offset + (cur - v.start), n as u64).map_err(|_| errno!(EFAULT))?;
            out.push((v.memoff(cur), n));
            cur += n as u64;
        }
        Ok(out)
    }

    /// Reads a NUL-terminated string of at most `max` bytes (ENAMETOOLONG past it).
    pub fn read_cstr(&self, addr: u64, max: usize) -> SysResult<Vec<u8>> {
        let mut out = Vec::new();
        let mut cur = addr;
        loop {
            let chunk = (PAGE - cur % PAGE) as usize;
            let mut buf = vec![0u8; chunk];
            self.read(cur, &mut buf)?;
            if let Some(i) = buf.iter().position(|&b| b == 0) {
                out.extend_from_slice(&buf[..i]);
                if out.len() > max {
                    return Err(errno!(ENAMETOOLONG));
                }
                return Ok(out);
            }
            out.extend_from_slice(&buf);
            if out.len() > max {
                return Err(errno!(ENAMETOOLONG));
            }
            cur += chunk as u64;
        }
    }

    pub fn read_u64(&self, addr: u64) -> SysResult<u64> {
        let mut v = 0u64;
        self.read(addr, v.as_bytes_mut())?;
        Ok(v)
    }

    /// MADV_DONTNEED: the private pages of `[addr, addr+len)` go back to the
    /// host and read as zero from now on (a private file mapping too: moat
    /// keeps no link to the file to fill them from again); shared pages are
    /// the file's or the other sharers', and stay. ENOMEM if part of the
    /// range is unmapped (the mapped parts are still discarded, as on Linux).
    pub fn discard(&self, addr: u64, len: u64) -> SysResult<()> {
        let end = addr.checked_add(len).ok_or(errno!(EINVAL))?;
        let mut cursor = addr;
        let mut gap = false;
        for v in self.vmas.range(..end).map(|(_, v)| v).filter(|v| v.end > addr) {
            gap |= v.start > cursor;
            let (from, to) = (v.start.max(addr), v.end.min(end));
            // A frozen file's pages read as the file's already.
            if !v.shared && !v.backing.frozen {
                v.backing.zero(v.offset + (from - v.start), to - from)?;
            }
            cursor = to;
        }
        if gap || cursor < end {
            return Err(errno!(ENOMEM));
        }
        Ok(())
    }

    /// Total mapped bytes (VmSize).
    pub fn total_size(&self) -> u64 {
        self.vmas.values().map(|v| v.end - v.start).sum()
    }
}
