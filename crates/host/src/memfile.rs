//! The memory file: one memfd holding every page of app memory, mapped into
//! stubs as MAP_SHARED windows, and into the Sentry once for atomic words.
//!
//! The Sentry copies app memory with pread/pwrite/copy_file_range on the
//! memfd, never through its mapping: a page the Sentry writes is then charged
//! by a system call that can fail (ENOMEM at the sandbox's memory limit)
//! instead of a page fault that retries forever, a page it reads in a hole
//! costs nothing, and the Sentry's own resident memory stays its own (app
//! pages never enter its page tables).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// Size of a page on x86-64.
pub const PAGE: u64 = 4096;

/// The memory file and the Sentry's mapping of all of it.
#[derive(Debug)]
pub struct MemoryFile {
    fd: OwnedFd,
    base: usize,
    size: u64,
}

// SAFETY: the mapping is shared memory accessed only through bounds-checked byte copies;
// no references into it are ever handed out, so sharing between threads is sound.
unsafe impl Send for MemoryFile {}
// SAFETY: as above.
unsafe impl Sync for MemoryFile {}

impl MemoryFile {
    /// Creates a sparse memory file of `size` bytes (rounded to pages) and maps it.
    pub fn new(size: u64) -> io::Result<MemoryFile> {
        let size = size.div_ceil(PAGE) * PAGE;
        // SAFETY: the name is a valid NUL-terminated string.
        let raw = unsafe { libc::memfd_create(c"moat-memory".as_ptr(), libc::MFD_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: memfd_create returned a new fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: fd is a valid memfd.
        if unsafe { libc::ftruncate(fd.as_raw_fd(), size as libc::off_t) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh shared mapping of the whole file at an address the kernel picks.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_NORESERVE,
                fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(MemoryFile { fd, base: p as usize, size })
    }

    /// The file's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The memfd, for mapping windows into stubs.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    fn check(&self, off: u64, len: usize) -> io::Result<usize> {
        match off.checked_add(len as u64) {
            Some(end) if end <= self.size => Ok(self.base + off as usize),
            _ => Err(io::Error::from_raw_os_error(libc::EFAULT)),
        }
    }

    /// Copies `buf.len()` bytes at `off` out of the file (holes read as zero
    /// and stay holes).
    pub fn read(&self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        self.check(off, buf.len())?;
        let fd = self.fd.as_raw_fd();
        all_of(buf.len(), libc::EFAULT, |done| {
            let rest = &mut buf[done..];
            // SAFETY: rest is a valid writable slice for the call; off+done is inside the
            // file (checked above).
            unsafe { libc::pread(fd, rest.as_mut_ptr().cast(), rest.len(), (off + done as u64) as libc::off_t) }
        })
    }

    /// Copies `data` into the file at `off`. Fails (ENOMEM, ENOSPC) if the
    /// pages cannot be had: at the sandbox's memory limit, say.
    pub fn write(&self, off: u64, data: &[u8]) -> io::Result<()> {
        self.check(off, data.len())?;
        let fd = self.fd.as_raw_fd();
        all_of(data.len(), libc::ENOSPC, |done| {
            let rest = &data[done..];
            // SAFETY: rest is a valid readable slice for the call; off+done is inside the
            // file (checked above).
            unsafe { libc::pwrite(fd, rest.as_ptr().cast(), rest.len(), (off + done as u64) as libc::off_t) }
        })
    }

    /// Fills `len` bytes at `off` with zeros without allocating (holes read as zero).
    pub fn zero(&self, off: u64, len: u64) -> io::Result<()> {
        self.check(off, len as usize)?;
        if len == 0 {
            return Ok(());
        }
        // SAFETY: fallocate on our own memfd within its size.
        let r = unsafe {
            libc::fallocate(
                self.fd.as_raw_fd(),
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                off as libc::off_t,
                len as libc::off_t,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Copies `len` bytes from `src` to `dst` (non-overlapping ranges), skipping holes so that
    /// sparse ranges stay sparse.
    pub fn copy(&self, src: u64, dst: u64, len: u64) -> io::Result<()> {
        self.check(src, len as usize)?;
        self.check(dst, len as usize)?;
        let end = src + len;
        let mut pos = src;
        while pos < end {
            let data = match self.seek(pos, libc::SEEK_DATA)? {
                Some(d) if d < end => d,
                _ => break,
            };
            let hole = self.seek(data, libc::SEEK_HOLE)?.unwrap_or(end).min(end);
            self.copy_range(data, dst + (data - src), hole - data)?;
            pos = hole;
        }
        Ok(())
    }

    /// copy_file_range within the file: the kernel moves the bytes, the
    /// Sentry maps none of them.
    fn copy_range(&self, src: u64, dst: u64, len: u64) -> io::Result<()> {
        let fd = self.fd.as_raw_fd();
        all_of(len as usize, libc::EFAULT, |done| {
            let (mut from, mut to) = ((src + done as u64) as libc::loff_t, (dst + done as u64) as libc::loff_t);
            // SAFETY: both offsets point at loff_t locals the kernel updates; the fd is ours.
            unsafe { libc::copy_file_range(fd, &mut from, fd, &mut to, len as usize - done, 0) }
        })
    }

    fn seek(&self, off: u64, whence: i32) -> io::Result<Option<u64>> {
        // SAFETY: lseek on our own fd.
        let r = unsafe { libc::lseek(self.fd.as_raw_fd(), off as libc::off_t, whence) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ENXIO) {
                return Ok(None);
            }
            return Err(e);
        }
        Ok(Some(r as u64))
    }

    /// Bytes of the file actually backed by memory (for accounting and /proc/meminfo).
    pub fn resident_bytes(&self) -> u64 {
        // SAFETY: stat is plain data, fstat writes it.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: fd is valid, st is writable.
        if unsafe { libc::fstat(self.fd.as_raw_fd(), &mut st) } < 0 {
            return 0;
        }
        st.st_blocks as u64 * 512
    }
}

/// Runs `step(done)` (one positional read, write or copy that returns how
/// many bytes it moved, or -1 with errno) until `total` bytes are moved,
/// retrying on EINTR; a step that moves nothing is `stalled`.
fn all_of(total: usize, stalled: i32, mut step: impl FnMut(usize) -> isize) -> io::Result<()> {
    let mut done = 0;
    while done < total {
        match step(done) {
            r if r > 0 => done += r as usize,
            0 => return Err(io::Error::from_raw_os_error(stalled)),
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
    Ok(())
}

impl Drop for MemoryFile {
    fn drop(&mut self) {
        // SAFETY: base/size describe the mapping made in `new`, no longer used.
        unsafe { libc::munmap(self.base as *mut libc::c_void, self.size as usize) };
    }
}

impl MemoryFile {
    fn atomic_u32(&self, off: u64) -> io::Result<&std::sync::atomic::AtomicU32> {
        if !off.is_multiple_of(4) {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let p = self.check(off, 4)?;
        // SAFETY: p is 4-aligned (base is page-aligned, off is 4-aligned) and lies inside our
        // mapping, which lives as long as &self; AtomicU32 tolerates concurrent access from
        // other processes sharing the page.
        Ok(unsafe { &*(p as *const std::sync::atomic::AtomicU32) })
    }

    /// Loads the u32 at `off` (a word shared with a stub), by pread: a word
    /// in a hole reads as zero without a page being made for it.
    pub fn load_u32(&self, off: u64) -> io::Result<u32> {
        if !off.is_multiple_of(4) {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let mut b = [0u8; 4];
        self.read(off, &mut b)?;
        Ok(u32::from_ne_bytes(b))
    }

    /// Atomically stores the u32 at `off`.
    pub fn store_u32(&self, off: u64, v: u32) -> io::Result<()> {
        self.atomic_u32(off)?.store(v, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    /// Shared (cross-process) FUTEX_WAIT on the word at `off` while it equals `expected`,
    /// for at most `timeout_ms`.
    pub fn futex_wait(&self, off: u64, expected: u32, timeout_ms: u64) -> io::Result<()> {
        let a = self.atomic_u32(off)?;
        let ts =
            libc::timespec { tv_sec: (timeout_ms / 1000) as i64, tv_nsec: ((timeout_ms % 1000) * 1_000_000) as i64 };
        // SAFETY: a points to a live 4-byte word; ts is a valid timespec.
        unsafe {
            libc::syscall(libc::SYS_futex, a as *const _ as usize, libc::FUTEX_WAIT, expected, &ts as *const _, 0, 0)
        };
        Ok(())
    }

    /// Shared FUTEX_WAKE of every waiter on the word at `off`.
    pub fn futex_wake(&self, off: u64) -> io::Result<()> {
        let a = self.atomic_u32(off)?;
        // SAFETY: a points to a live 4-byte word.
        unsafe { libc::syscall(libc::SYS_futex, a as *const _ as usize, libc::FUTEX_WAKE, i32::MAX, 0, 0, 0) };
        Ok(())
    }
}

impl MemoryFile {
    /// Atomic compare-and-swap of the u32 at `off` (futex WAKE_OP on app memory shared with
    /// running app threads); returns the value found.
    pub fn cas_u32(&self, off: u64, old: u32, new: u32) -> io::Result<u32> {
        let a = self.atomic_u32(off)?;
        Ok(
            match a.compare_exchange(old, new, std::sync::atomic::Ordering::SeqCst, std::sync::atomic::Ordering::SeqCst)
            {
                Ok(v) | Err(v) => v,
            },
        )
    }
}
