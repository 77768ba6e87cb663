//! Memory syscalls: brk, mmap (anonymous and private file mappings), munmap,
//! mprotect, madvise.

use abi::Errno;

use crate::kernel::CurrentTask;
use crate::mm::{page_up, VmaName};
use crate::vfs::FileType;
use crate::SysResult;

const MAP_SHARED: u32 = 0x01;
const MAP_PRIVATE: u32 = 0x02;
const MAP_FIXED: u32 = 0x10;
const MAP_ANONYMOUS: u32 = 0x20;
const MAP_FIXED_NOREPLACE: u32 = 0x100000;
const MADV_DONTNEED: u32 = 4;

pub fn sys_brk(t: &mut CurrentTask, addr: u64) -> SysResult<u64> {
    let limit = t.tg().rlimit(crate::kernel::task::RLIMIT_AS).0;
    let mm_arc = t.tg().mm();
    let mut mm = mm_arc.lock().unwrap();
    let current = mm.brk(0).0;
    if limit != u64::MAX && addr > current && mm.total_size().saturating_add(addr - current) > limit {
        return Ok(current);
    }
    let (brk, ops) = mm.brk(addr);
    drop(mm);
    t.apply(&ops)?;
    Ok(brk)
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
        let (a, ops) =
            t.tg().mm().lock().unwrap().map(addr, len, prot, shared, fixed, noreplace, None, VmaName::Anon)?;
        t.apply(&ops)?;
        return Ok(a);
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
                let (a, ops) = t.tg().mm().lock().unwrap().map(
                    addr,
                    len,
                    prot,
                    true,
                    fixed,
                    noreplace,
                    Some((backing, off)),
                    name,
                )?;
                t.apply(&ops)?;
                return Ok(a);
            }
            Err(e) if prot & 2 != 0 => return Err(e),
            Err(_) => {}
        }
    }
    // Private (or read-only shared) mapping: copy the file's bytes into fresh pages.
    let backing = t.tg().mm().lock().unwrap().alloc_backing(len)?;
    let mut data = vec![0u8; len.min(st.size.saturating_sub(off)) as usize];
    let mut done = 0;
    while done < data.len() {
        let n = f.ops.read(&f, &mut data[done..], off + done as u64)?;
        if n == 0 {
            break;
        }
        done += n;
    }
    data.truncate(done);
    t.k.mem.write(backing.off, &data).map_err(|_| Errno::ENOMEM)?;
    let name =
        VmaName::File { path: String::from_utf8_lossy(&d.path()).into_owned(), dev: st.dev, ino: st.ino, offset: off };
    let (a, ops) =
        t.tg().mm().lock().unwrap().map(addr, len, prot, false, fixed, noreplace, Some((backing, 0)), name)?;
    t.apply(&ops)?;
    Ok(a)
}

pub fn sys_munmap(t: &mut CurrentTask, addr: u64, len: u64) -> SysResult<u64> {
    let ops = t.tg().mm().lock().unwrap().unmap(addr, len)?;
    t.apply(&ops)?;
    Ok(0)
}

pub fn sys_mprotect(t: &mut CurrentTask, addr: u64, len: u64, prot: u32) -> SysResult<u64> {
    if prot & !(7 | 0x0100_0000 | 0x0200_0000) != 0 {
        return Err(Errno::EINVAL);
    }
    let ops = t.tg().mm().lock().unwrap().protect(addr, len, prot & 7)?;
    t.apply(&ops)?;
    Ok(0)
}

pub fn sys_madvise(t: &mut CurrentTask, addr: u64, len: u64, advice: u32) -> SysResult<u64> {
    if !addr.is_multiple_of(4096) {
        return Err(Errno::EINVAL);
    }
    if advice == MADV_DONTNEED {
        // Private anonymous pages read back as zero afterwards.
        let zeros = vec![0u8; 4096];
        let mm_arc = t.tg().mm();
        let mm = mm_arc.lock().unwrap();
        let mut a = addr;
        let end = addr.saturating_add(page_up(len).unwrap_or(len));
        while a < end {
            if mm.write_force(a, &zeros).is_err() {
                return Err(Errno::ENOMEM);
            }
            a += 4096;
        }
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
    let (addr, ops) = t.tg().mm().lock().unwrap().remap(old, old_len, new_len, flags & MREMAP_MAYMOVE != 0, fixed)?;
    t.apply(&ops)?;
    Ok(addr)
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
