//! Memory syscalls: brk, mmap (anonymous and private file mappings), munmap,
//! mprotect, madvise.

use crate::kernel::CurrentTask;
use std::sync::Arc;

use crate::mm::{page_up, Fill, PageSource, VmaName};
use crate::vfs::{FileSource, FileType};
use crate::SysResult;

const MAP_SHARED: u32 = 0x01;
const MAP_PRIVATE: u32 = 0x02;
const MAP_FIXED: u32 = 0x10;
const MAP_ANONYMOUS: u32 = 0x20;
const MAP_FIXED_NOREPLACE: u32 = 0x100000;
const MADV_DONTNEED: u32 = 4;

pub fn sys_brk(t: &mut CurrentTask, addr: u64) -> SysResult<u64> {
    let limit = t.tg().rlimit(crate::kernel::task::RLIMIT_AS).0;
    t.change_mm(|mm| {
        let current = mm.brk(0).0;
        if limit != u64::MAX && addr > current && mm.total_size().saturating_add(addr - current) > limit {
            return Ok((current, vec![]));
        }
        Ok(mm.brk(addr))
    })
}

pub fn sys_mmap(t: &mut CurrentTask, addr: u64, len: u64, prot: u32, flags: u32, fd: i32, off: u64) -> SysResult<u64> {
    if len == 0 || !off.is_multiple_of(4096) || prot & !7 != 0 {
        return Err(errno!(EINVAL));
    }
    let len = page_up(len).ok_or(errno!(ENOMEM))?;
    let kind = flags & 3;
    if kind != MAP_SHARED && kind != MAP_PRIVATE {
        return Err(errno!(EINVAL));
    }
    let limit = t.tg().rlimit(crate::kernel::task::RLIMIT_AS).0;
    if limit != u64::MAX && t.tg().mm().lock().unwrap().total_size().saturating_add(len) > limit {
        return Err(errno!(ENOMEM));
    }
    let fixed = flags & MAP_FIXED != 0;
    let noreplace = flags & MAP_FIXED_NOREPLACE != 0;
    let shared = kind == MAP_SHARED;
    if flags & MAP_ANONYMOUS != 0 {
        return t.change_mm(|mm| mm.map(addr, len, prot, shared, fixed, noreplace, None, VmaName::Anon));
    }
    // The file range must be addressable, as Linux's pgoff check.
    off.checked_add(len).ok_or(errno!(EOVERFLOW))?;
    let f = crate::syscalls::fs::file(t, fd)?;
    if !f.readable() {
        return Err(errno!(EACCES));
    }
    let d = f.dentry.clone().ok_or(errno!(ENODEV))?;
    let st = d.inode.stat()?;
    if st.file_type() != FileType::Regular {
        return Err(errno!(ENODEV));
    }
    let name =
        VmaName::File { path: String::from_utf8_lossy(&d.path()).into_owned(), dev: st.dev, ino: st.ino, offset: off };
    if shared && (prot & 2 != 0 || f.writable()) {
        // The mapping and the file share pages in the memory file (tmpfs files, and files
        // copied up into the overlay). A read-only shared mapping of a file that cannot
        // share (the Gofer's lower layer) gets a private copy below: nobody writes it.
        let end = off.checked_add(len).ok_or(errno!(EOVERFLOW))?;
        match d.inode.shared_pages(&t.k.alloc, end) {
            Ok(backing) => {
                if prot & 2 != 0 && !f.writable() {
                    return Err(errno!(EACCES));
                }
                return t.change_mm(|mm| mm.map(addr, len, prot, true, fixed, noreplace, Some((backing, off)), name));
            }
            Err(e) if prot & 2 != 0 => return Err(e),
            Err(_) => {}
        }
    }
    // A read-only private mapping of a file the sandbox cannot change
    // shares the one copy of its bytes.
    if prot & 2 == 0 {
        if let Some(backing) = crate::loader::frozen_pages(&t.k, &d.inode, off, len, FILL_AT_MAP) {
            return t.change_mm(|mm| mm.map(addr, len, prot, false, fixed, noreplace, Some((backing, off)), name));
        }
    }
    // Private (or read-only shared) mapping: fresh pages that take the
    // file's bytes as they are first used. A small mapping (a library, say)
    // takes them now, sparing its first touches a fault each.
    let shown = len.min(st.size.saturating_sub(off));
    let source: Arc<dyn PageSource> = Arc::new(FileSource(f.clone()));
    let backing = t.k.alloc.alloc_with(len, |rounded| Some(Fill::new(source, off, shown, rounded)))?;
    if len <= FILL_AT_MAP {
        backing.fill_range(0, len)?;
    }
    t.change_mm(|mm| mm.map(addr, len, prot, false, fixed, noreplace, Some((backing, 0)), name))
}

/// Private file mappings up to this size are read in whole at mmap time;
/// larger ones a piece at a time as they are used, so that a mapping costs
/// what is used of it, not its length.
const FILL_AT_MAP: u64 = 8 << 20;

pub fn sys_munmap(t: &mut CurrentTask, addr: u64, len: u64) -> SysResult<u64> {
    t.change_mm(|mm| Ok((0, mm.unmap(addr, len)?)))
}

pub fn sys_mprotect(t: &mut CurrentTask, addr: u64, len: u64, prot: u32) -> SysResult<u64> {
    if prot & !(7 | 0x0100_0000 | 0x0200_0000) != 0 {
        return Err(errno!(EINVAL));
    }
    t.change_mm(|mm| Ok((0, mm.protect(addr, len, prot & 7)?)))
}

pub fn sys_madvise(t: &mut CurrentTask, addr: u64, len: u64, advice: u32) -> SysResult<u64> {
    if !addr.is_multiple_of(4096) {
        return Err(errno!(EINVAL));
    }
    if advice == MADV_DONTNEED {
        // Private pages read back as zero afterwards; their memory goes back
        // to the host at once.
        let len = page_up(len).ok_or(errno!(EINVAL))?;
        t.tg().mm().lock().unwrap().discard(addr, len)?;
    }
    Ok(0)
}

pub fn sys_mremap(
    t: &mut CurrentTask,
    old: u64,
    old_len: u64,
    new_len: u64,
    flags: u32,
    new_addr: u64,
) -> SysResult<u64> {
    const MREMAP_MAYMOVE: u32 = 1;
    const MREMAP_FIXED: u32 = 2;
    if flags & !(MREMAP_MAYMOVE | MREMAP_FIXED) != 0 || (flags & MREMAP_FIXED != 0 && flags & MREMAP_MAYMOVE == 0) {
        // MREMAP_DONTUNMAP is not supported.
        return Err(errno!(EINVAL));
    }
    let fixed = (flags & MREMAP_FIXED != 0).then_some(new_addr);
    t.change_mm(|mm| mm.remap(old, old_len, new_len, flags & MREMAP_MAYMOVE != 0, fixed))
}

pub fn sys_msync(t: &mut CurrentTask, addr: u64, len: u64, flags: u32) -> SysResult<u64> {
    if !addr.is_multiple_of(4096) || flags & !7 != 0 || flags & 5 == 5 {
        return Err(errno!(EINVAL));
    }
    // Private and anonymous mappings have nothing to write back.
    if !t.tg().mm().lock().unwrap().is_mapped(addr, page_up(len).ok_or(errno!(ENOMEM))?) {
        return Err(errno!(ENOMEM));
    }
    Ok(0)
}

pub fn sys_mincore(t: &mut CurrentTask, addr: u64, len: u64, vec: u64) -> SysResult<u64> {
    if !addr.is_multiple_of(4096) {
        return Err(errno!(EINVAL));
    }
    let len = page_up(len).ok_or(errno!(ENOMEM))?;
    if !t.tg().mm().lock().unwrap().is_mapped(addr, len) {
        return Err(errno!(ENOMEM));
    }
    // Every mapped page is reported resident: the memory file backs them
    // all. Written a page of answers at a time, whatever the length.
    let ones = [1u8; 4096];
    let mut left = len / 4096;
    let mut at = vec;
    while left > 0 {
        let n = left.min(ones.len() as u64);
        t.write_mem(at, &ones[..n as usize])?;
        at = at.wrapping_add(n);
        left -= n;
    }
    Ok(0)
}

/// mlock, munlock: nothing is swapped, so locking changes nothing; but, as
/// on Linux, every page of the range must be mapped (ENOMEM).
pub fn sys_mlock(t: &mut CurrentTask, addr: u64, len: u64) -> SysResult<u64> {
    if len == 0 {
        return Ok(0);
    }
    let start = addr & !4095;
    let end = addr.checked_add(len).and_then(page_up).ok_or(errno!(ENOMEM))?;
    if !t.tg().mm().lock().unwrap().is_mapped(start, end - start) {
        return Err(errno!(ENOMEM));
    }
    Ok(0)
}

/// mlock2: mlock with MLOCK_ONFAULT the only flag.
pub fn sys_mlock2(t: &mut CurrentTask, addr: u64, len: u64, flags: u32) -> SysResult<u64> {
    const MLOCK_ONFAULT: u32 = 1;
    if flags & !MLOCK_ONFAULT != 0 {
        return Err(errno!(EINVAL));
    }
    sys_mlock(t, addr, len)
}

/// mlockall: MCL_CURRENT and/or MCL_FUTURE, MCL_ONFAULT only with one of them.
pub fn sys_mlockall(_t: &mut CurrentTask, flags: u32) -> SysResult<u64> {
    const MCL_CURRENT: u32 = 1;
    const MCL_FUTURE: u32 = 2;
    const MCL_ONFAULT: u32 = 4;
    if flags & !(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0 || flags & (MCL_CURRENT | MCL_FUTURE) == 0 {
        return Err(errno!(EINVAL));
    }
    Ok(0)
}
