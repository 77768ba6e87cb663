//! Memory syscalls: brk, mmap (anonymous and private file mappings), munmap,
//! mprotect, madvise.

use abi::Errno;

use crate::kernel::CurrentTask;
use crate::mm::{page_up, VmaName};
use crate::vfs::{FileType, OpenFile};
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
        return Err(Errno::EINVAL);
    }
    let len = page_up(len).ok_or(Errno::ENOMEM)?;
    let kind = flags & 3;
    if kind != MAP_SHARED && kind != MAP_PRIVATE {
        return Err(Errno::EINVAL);
    }
    let limit = t.tg().rlimit(crate::kernel::task::RLIMIT_AS).0;
    if limit != u64::MAX && t.tg().mm().lock().unwrap().total_size().saturating_add(len) > limit {
        return Err(Errno::ENOMEM);
    }
    let fixed = flags & MAP_FIXED != 0;
    let noreplace = flags & MAP_FIXED_NOREPLACE != 0;
    let shared = kind == MAP_SHARED;
    if flags & MAP_ANONYMOUS != 0 {
        return t.change_mm(|mm| mm.map(addr, len, prot, shared, fixed, noreplace, None, VmaName::Anon));
    }
    let f = t.tg().fds.lock().unwrap().get(fd)?;
    if !f.readable() {
        return Err(Errno::EACCES);
    }
    let d = f.dentry.clone().ok_or(Errno::ENODEV)?;
    let st = d.inode.stat()?;
    if st.file_type() != FileType::Regular {
        return Err(Errno::ENODEV);
    }
    if shared && (prot & 2 != 0 || f.writable()) {
        // The mapping and the file share pages in the memory file (tmpfs files, and files
        // copied up into the overlay). A read-only shared mapping of a file that cannot
        // share (the Gofer's lower layer) gets a private copy below: nobody writes it.
        let end = off.checked_add(len).ok_or(Errno::EOVERFLOW)?;
        match d.inode.shared_pages(&t.k.alloc, end) {
            Ok(backing) => {
                if prot & 2 != 0 && !f.writable() {
                    return Err(Errno::EACCES);
                }
                let name = VmaName::File {
                    path: String::from_utf8_lossy(&d.path()).into_owned(),
                    dev: st.dev,
                    ino: st.ino,
                    offset: off,
                };
                return t.change_mm(|mm| mm.map(addr, len, prot, true, fixed, noreplace, Some((backing, off)), name));
            }
            Err(e) if prot & 2 != 0 => return Err(e),
            Err(_) => {}
        }
    }
    // Private (or read-only shared) mapping: copy the file's bytes into fresh pages.
    let backing = t.tg().mm().lock().unwrap().alloc_backing(len)?;
    copy_file_data(t, &f, off, len.min(st.size.saturating_sub(off)), backing.off)?;
    let name =
        VmaName::File { path: String::from_utf8_lossy(&d.path()).into_owned(), dev: st.dev, ino: st.ino, offset: off };
    t.change_mm(|mm| mm.map(addr, len, prot, false, fixed, noreplace, Some((backing, 0)), name))
}

/// How much of a file a private mapping copies at a time: the Sentry's
/// memory for it is this, whatever the mapping's length.
const COPY_CHUNK: usize = 1 << 20;

/// Copies `len` bytes of `f` from `off` into the memory file at `dst`,
/// skipping the file's holes and any chunk of zeros (fresh memory-file pages
/// read as zero already, and stay unallocated): a sparse file of any size
/// costs only its data.
fn copy_file_data(t: &CurrentTask, f: &OpenFile, off: u64, len: u64, dst: u64) -> SysResult<()> {
    let end = off.checked_add(len).ok_or(Errno::EOVERFLOW)?;
    let mut buf = vec![0u8; COPY_CHUNK.min(len as usize)];
    let mut pos = off;
    while pos < end {
        let Some((start, stop)) = f.ops.data_extent(f, pos)? else { break };
        let (start, stop) = (start.max(pos), stop.min(end));
        let mut at = start;
        while at < stop {
            let want = COPY_CHUNK.min((stop - at) as usize);
            let n = f.ops.read(f, &mut buf[..want], at)?;
            if n == 0 {
                return Ok(());
            }
            if buf[..n].iter().any(|&b| b != 0) {
                t.k.mem.write(dst + (at - off), &buf[..n]).map_err(|_| Errno::ENOMEM)?;
            }
            at += n as u64;
        }
        pos = stop.max(pos + 1);
    }
    Ok(())
}

pub fn sys_munmap(t: &mut CurrentTask, addr: u64, len: u64) -> SysResult<u64> {
    t.change_mm(|mm| Ok((0, mm.unmap(addr, len)?)))
}

pub fn sys_mprotect(t: &mut CurrentTask, addr: u64, len: u64, prot: u32) -> SysResult<u64> {
    if prot & !(7 | 0x0100_0000 | 0x0200_0000) != 0 {
        return Err(Errno::EINVAL);
    }
    t.change_mm(|mm| Ok((0, mm.protect(addr, len, prot & 7)?)))
}

pub fn sys_madvise(t: &mut CurrentTask, addr: u64, len: u64, advice: u32) -> SysResult<u64> {
    if !addr.is_multiple_of(4096) {
        return Err(Errno::EINVAL);
    }
    if advice == MADV_DONTNEED {
        // Private pages read back as zero afterwards; their memory goes back
        // to the host at once.
        let len = page_up(len).ok_or(Errno::EINVAL)?;
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
        return Err(Errno::EINVAL);
    }
    let fixed = (flags & MREMAP_FIXED != 0).then_some(new_addr);
    t.change_mm(|mm| mm.remap(old, old_len, new_len, flags & MREMAP_MAYMOVE != 0, fixed))
}

pub fn sys_msync(t: &mut CurrentTask, addr: u64, len: u64, flags: u32) -> SysResult<u64> {
    if !addr.is_multiple_of(4096) || flags & !7 != 0 || flags & 5 == 5 {
        return Err(Errno::EINVAL);
    }
    // Private and anonymous mappings have nothing to write back.
    if !t.tg().mm().lock().unwrap().is_mapped(addr, page_up(len).ok_or(Errno::ENOMEM)?) {
        return Err(Errno::ENOMEM);
    }
    Ok(0)
}

pub fn sys_mincore(t: &mut CurrentTask, addr: u64, len: u64, vec: u64) -> SysResult<u64> {
    if !addr.is_multiple_of(4096) {
        return Err(Errno::EINVAL);
    }
    let len = page_up(len).ok_or(Errno::ENOMEM)?;
    if !t.tg().mm().lock().unwrap().is_mapped(addr, len) {
        return Err(Errno::ENOMEM);
    }
    // Every mapped page is reported resident: the memory file backs them all.
    let pages = (len / 4096) as usize;
    if pages > (1 << 24) {
        return Err(Errno::ENOMEM);
    }
    t.write_mem(vec, &vec![1u8; pages])?;
    Ok(0)
}
