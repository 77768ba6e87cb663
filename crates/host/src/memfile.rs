//! The memory file: one memfd holding every page of app memory, mapped into
//! stubs as MAP_SHARED windows, and into the Sentry once for atomic words.
//!
//! The Sentry copies app memory with pread/pwrite/copy_file_range on the
//! memfd, never through its mapping: a page the Sentry writes is then charged
//! by a system call that can fail (ENOMEM at the sandbox's memory limit)
//! instead of a page fault that retries forever, a page it reads in a hole
//! costs nothing, and the Sentry's own resident memory stays its own (app
//! pages never enter its page tables).
//!
//! Bytes between a host file and the memory file move in the kernel
//! ([`MemoryFile::read_fd`], [`MemoryFile::write_fd`]): by copy_file_range
//! where the kernel does it (not across filesystems, so not from a host
//! file into the memfd), else by splice through one of a few pipes made
//! with the file (one copy, the file's pages lent to the pipe), else
//! through a bounded buffer.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Mutex, MutexGuard};

/// Size of a page on x86-64.
pub const PAGE: u64 = 4096;

/// How many pipes the memory file keeps for splicing: one per Sentry thread
/// moving file data at the same moment, on a machine of a few cores; more
/// threads wait their turn for one (a splice of a piece takes microseconds).
const SPLICE_PIPES: usize = 4;
/// The size asked of a splice pipe: a piece of a transfer per pair of
/// splices (Linux's default pipe-max-size; the default 64 KiB if refused).
const SPLICE_PIPE_SIZE: i32 = 1 << 20;
/// The most bytes of a transfer the Sentry holds where the kernel can move
/// them neither way.
const BOUNCE: usize = 256 << 10;

/// The memory file and the Sentry's mapping of all of it.
#[derive(Debug)]
pub struct MemoryFile {
    fd: OwnedFd,
    base: usize,
    size: u64,
    pipes: Vec<Mutex<SplicePipe>>,
}

/// A pipe that bytes pass through between a host file and the memory file.
/// Empty whenever its lock is free; one that could not be emptied is
/// `broken` and never used again (it would hand stale bytes on).
#[derive(Debug)]
struct SplicePipe {
    read: OwnedFd,
    write: OwnedFd,
    size: usize,
    broken: bool,
}

impl SplicePipe {
    fn new() -> io::Result<SplicePipe> {
        let mut fds = [0; 2];
        // SAFETY: fds is a writable array of two ints.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 returned two new fds that nothing else owns.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // SAFETY: fcntl on our own pipe; a refusal (a lower pipe-max-size) keeps the default.
        unsafe { libc::fcntl(write.as_raw_fd(), libc::F_SETPIPE_SZ, SPLICE_PIPE_SIZE) };
        // SAFETY: as above.
        let size = unsafe { libc::fcntl(write.as_raw_fd(), libc::F_GETPIPE_SZ) };
        if size <= 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(SplicePipe { read, write, size: size as usize, broken: false })
    }

    /// Reads and drops whatever the pipe holds, after a transfer that
    /// stopped halfway; a pipe that cannot be emptied is marked broken.
    fn empty(&mut self) {
        let mut scrap = [0u8; 4096];
        loop {
            // SAFETY: scrap is a valid writable buffer; the fd is ours (non-blocking).
            let r = unsafe { libc::read(self.read.as_raw_fd(), scrap.as_mut_ptr().cast(), scrap.len()) };
            if r > 0 {
                continue;
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) if r < 0 => continue,
                Some(libc::EAGAIN) if r < 0 => return,
                _ => {
                    self.broken = true;
                    return;
                }
            }
        }
    }
}

/// Which end of a transfer between a host file and the memory file failed:
/// the app's memory (ENOMEM, ENOSPC at the sandbox's memory limit) or the
/// host file (EIO, ENOSPC of its filesystem, EBADF for a read-only fd).
#[derive(Debug)]
pub enum CopyError {
    File(io::Error),
    Memory(io::Error),
}

/// Whether the kernel refused a way of moving bytes for these two files (so
/// that the next way should be tried), rather than failed at it.
fn refused(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EXDEV | libc::EINVAL | libc::EOPNOTSUPP | libc::ENOSYS | libc::ESPIPE))
}

/// The ways bytes move between a host file and the memory file, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    CopyFileRange,
    Splice,
    Bounce,
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
        // Without pipes (none to be had), transfers go through a buffer.
        let pipes = (0..SPLICE_PIPES).map_while(|_| SplicePipe::new().ok()).map(Mutex::new).collect();
        Ok(MemoryFile { fd, base: p as usize, size, pipes })
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

    /// Copies `len` bytes from `src` to `dst` within the file, holes and
    /// all (a hole makes zeros at `dst`): the kernel moves the bytes, the
    /// Sentry maps none of them. EINVAL if the ranges overlap.
    pub fn copy_range(&self, src: u64, dst: u64, len: u64) -> io::Result<()> {
        self.check(src, len as usize)?;
        self.check(dst, len as usize)?;
        let fd = self.fd.as_raw_fd();
        all_of(len as usize, libc::EFAULT, |done| {
            let (mut from, mut to) = ((src + done as u64) as libc::loff_t, (dst + done as u64) as libc::loff_t);
            // SAFETY: both offsets point at loff_t locals the kernel updates; the fd is ours.
            unsafe { libc::copy_file_range(fd, &mut from, fd, &mut to, len as usize - done, 0) }
        })
    }

    /// Moves up to `len` bytes at `fd_off` of the host file `fd` to
    /// `mem_off` of this file, without the bytes passing through the
    /// Sentry's memory where the kernel allows; returns how many moved
    /// (fewer at the file's end, or where a failure came after some did).
    pub fn read_fd(&self, fd: BorrowedFd<'_>, fd_off: u64, mem_off: u64, len: usize) -> Result<usize, CopyError> {
        self.check(mem_off, len).map_err(CopyError::Memory)?;
        self.transfer(Direction::ToMemory, fd.as_raw_fd(), fd_off, mem_off, len)
    }

    /// Moves up to `len` bytes at `mem_off` of this file to `fd_off` of the
    /// host file `fd`, as [`MemoryFile::read_fd`] the other way; returns
    /// how many the file took.
    pub fn write_fd(&self, fd: BorrowedFd<'_>, fd_off: u64, mem_off: u64, len: usize) -> Result<usize, CopyError> {
        self.check(mem_off, len).map_err(CopyError::Memory)?;
        self.transfer(Direction::FromMemory, fd.as_raw_fd(), fd_off, mem_off, len)
    }

    /// Moves bytes a step at a time the best way the kernel allows for
    /// this file: a way refused once is not tried again in this transfer.
    fn transfer(&self, dir: Direction, fd: RawFd, fd_off: u64, mem_off: u64, len: usize) -> Result<usize, CopyError> {
        let mut way = Way::CopyFileRange;
        let mut done = 0;
        while done < len {
            let at = Span { fd, fd_off: fd_off.saturating_add(done as u64), mem_off: mem_off + done as u64 };
            let step = match way {
                Way::CopyFileRange => self.copy_file_range_step(dir, at, len - done),
                Way::Splice => self.splice_step(dir, at, len - done),
                Way::Bounce => self.bounce_step(dir, at, len - done),
            };
            match step {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(Step::Refused) => {
                    way = match way {
                        Way::CopyFileRange => Way::Splice,
                        Way::Splice | Way::Bounce => Way::Bounce,
                    }
                }
                Err(Step::Failed(_)) if done > 0 => break,
                Err(Step::Failed(e)) => return Err(e),
            }
        }
        Ok(done)
    }

    fn copy_file_range_step(&self, dir: Direction, at: Span, len: usize) -> Result<usize, Step> {
        let (mut file_off, mut mem_off) = (at.fd_off as libc::loff_t, at.mem_off as libc::loff_t);
        let mem = self.fd.as_raw_fd();
        loop {
            let r = match dir {
                // SAFETY: both offsets point at loff_t locals the kernel updates; the fds are open.
                Direction::ToMemory => unsafe {
                    libc::copy_file_range(at.fd, &mut file_off, mem, &mut mem_off, len, 0)
                },
                // SAFETY: as above.
                Direction::FromMemory => unsafe {
                    libc::copy_file_range(mem, &mut mem_off, at.fd, &mut file_off, len, 0)
                },
            };
            if r >= 0 {
                return Ok(r as usize);
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                _ if refused(&e) => return Err(Step::Refused),
                // Only the memory file's end can be out of pages when it is written.
                Some(libc::ENOMEM | libc::ENOSPC) if dir == Direction::ToMemory => {
                    return Err(Step::Failed(CopyError::Memory(e)))
                }
                _ => return Err(Step::Failed(CopyError::File(e))),
            }
        }
    }

    /// One pipe's worth: into a splice pipe from where the bytes are, then
    /// out of it to where they go. The pipe is empty again afterwards,
    /// whatever happened.
    fn splice_step(&self, dir: Direction, at: Span, len: usize) -> Result<usize, Step> {
        let Some(mut pipe) = self.pipe() else { return Err(Step::Refused) };
        let (mut file_off, mut mem_off) = (at.fd_off as libc::loff_t, at.mem_off as libc::loff_t);
        let (from, from_off, to, to_off) = match dir {
            Direction::ToMemory => (at.fd, &mut file_off, self.fd.as_raw_fd(), &mut mem_off),
            Direction::FromMemory => (self.fd.as_raw_fd(), &mut mem_off, at.fd, &mut file_off),
        };
        let (from_side, to_side): (Side, Side) = match dir {
            Direction::ToMemory => (CopyError::File, CopyError::Memory),
            Direction::FromMemory => (CopyError::Memory, CopyError::File),
        };
        let want = len.min(pipe.size);
        let n = loop {
            // SAFETY: the offset points at a loff_t local the kernel updates; the fds are open.
            let r = unsafe {
                libc::splice(from, from_off, pipe.write.as_raw_fd(), std::ptr::null_mut(), want, libc::SPLICE_F_MOVE)
            };
            if r >= 0 {
                break r as usize;
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                _ if refused(&e) => return Err(Step::Refused),
                _ => return Err(Step::Failed(from_side(e))),
            }
        };
        let mut moved = 0;
        while moved < n {
            // SAFETY: as above.
            let r = unsafe {
                libc::splice(pipe.read.as_raw_fd(), std::ptr::null_mut(), to, to_off, n - moved, libc::SPLICE_F_MOVE)
            };
            if r > 0 {
                moved += r as usize;
                continue;
            }
            let e = if r == 0 { io::Error::from_raw_os_error(libc::EIO) } else { io::Error::last_os_error() };
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            pipe.empty();
            return match moved {
                0 if refused(&e) => Err(Step::Refused),
                0 => Err(Step::Failed(to_side(e))),
                _ => Ok(moved),
            };
        }
        Ok(n)
    }

    /// Through a buffer of at most `BOUNCE` bytes, for files the kernel
    /// splices to nothing.
    fn bounce_step(&self, dir: Direction, at: Span, len: usize) -> Result<usize, Step> {
        let mut buf = vec![0u8; len.min(BOUNCE)];
        let off = at.fd_off as libc::off_t;
        match dir {
            Direction::ToMemory => {
                let n = retry(|| {
                    // SAFETY: buf is a valid writable buffer for the call.
                    unsafe { libc::pread(at.fd, buf.as_mut_ptr().cast(), buf.len(), off) }
                })
                .map_err(|e| Step::Failed(CopyError::File(e)))?;
                self.write(at.mem_off, &buf[..n]).map_err(|e| Step::Failed(CopyError::Memory(e)))?;
                Ok(n)
            }
            Direction::FromMemory => {
                self.read(at.mem_off, &mut buf).map_err(|e| Step::Failed(CopyError::Memory(e)))?;
                retry(|| {
                    // SAFETY: buf is a valid readable buffer for the call.
                    unsafe { libc::pwrite(at.fd, buf.as_ptr().cast(), buf.len(), off) }
                })
                .map_err(|e| Step::Failed(CopyError::File(e)))
            }
        }
    }

    /// One of the splice pipes: a free one, or else (all busy) one to wait
    /// for; None if there are none to be had (then bytes go through a buffer).
    fn pipe(&self) -> Option<MutexGuard<'_, SplicePipe>> {
        fn usable(g: MutexGuard<'_, SplicePipe>) -> Option<MutexGuard<'_, SplicePipe>> {
            (!g.broken).then_some(g)
        }
        if let Some(g) = self.pipes.iter().find_map(|p| p.try_lock().ok().and_then(usable)) {
            return Some(g);
        }
        static TURN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let i = TURN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = self.pipes.get(i.checked_rem(self.pipes.len())?)?;
        p.lock().ok().and_then(usable)
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

/// Which way a transfer between a host file and the memory file goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    ToMemory,
    FromMemory,
}

/// Names the failed end of a transfer: `CopyError::File` or `CopyError::Memory`.
type Side = fn(io::Error) -> CopyError;

/// Where a step of a transfer starts: the host file and offsets in both.
#[derive(Debug, Clone, Copy)]
struct Span {
    fd: RawFd,
    fd_off: u64,
    mem_off: u64,
}

/// Why a step of a transfer moved nothing.
#[derive(Debug)]
enum Step {
    /// The kernel does not move bytes this way between these files.
    Refused,
    Failed(CopyError),
}

/// Runs one read or write, retrying on EINTR.
fn retry(mut call: impl FnMut() -> isize) -> io::Result<usize> {
    loop {
        let r = call();
        if r >= 0 {
            return Ok(r as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
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
    /// Loads the u32 at `off` through the Sentry's mapping (atomically): for
    /// words of pages that exist (a stub's context page), where a pread
    /// would cost a system call each time a hand-off is polled.
    pub fn load_u32_mapped(&self, off: u64) -> io::Result<u32> {
        Ok(self.atomic_u32(off)?.load(std::sync::atomic::Ordering::SeqCst))
    }

    /// Atomically swaps the u32 at `off` for `v`; returns the old value.
    pub fn swap_u32(&self, off: u64, v: u32) -> io::Result<u32> {
        Ok(self.atomic_u32(off)?.swap(v, std::sync::atomic::Ordering::SeqCst))
    }

    /// Copies 8-byte words at `off` (8-aligned) into `buf` through the
    /// mapping, each word read atomically: bytes another process may be
    /// writing at the same time (a stub's signal frame) are read without a
    /// system call and without a data race.
    pub fn read_words(&self, off: u64, buf: &mut [u64]) -> io::Result<()> {
        let p = self.words(off, buf.len())?;
        for (i, w) in buf.iter_mut().enumerate() {
            // SAFETY: `words` checked that the whole range lies in our live mapping and is
            // 8-aligned; AtomicU64 tolerates concurrent access from other processes.
            *w = unsafe { &*p.add(i) }.load(std::sync::atomic::Ordering::Relaxed);
        }
        std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
        Ok(())
    }

    /// Writes 8-byte words at `off` (8-aligned) through the mapping, each atomically.
    pub fn write_words(&self, off: u64, data: &[u64]) -> io::Result<()> {
        let p = self.words(off, data.len())?;
        std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
        for (i, w) in data.iter().enumerate() {
            // SAFETY: as in read_words.
            unsafe { &*p.add(i) }.store(*w, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(())
    }

    fn words(&self, off: u64, n: usize) -> io::Result<*const std::sync::atomic::AtomicU64> {
        if !off.is_multiple_of(8) {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let len = n.checked_mul(8).ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
        Ok(self.check(off, len)? as *const std::sync::atomic::AtomicU64)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::FileExt;

    /// A host file on a real filesystem (not tmpfs, so that copy_file_range
    /// into the memfd is refused as for the Gofer's files), removed when dropped.
    struct HostFile(std::path::PathBuf, std::fs::File);

    impl HostFile {
        fn new(label: &str, data: &[u8]) -> HostFile {
            let path = std::env::temp_dir().join(format!("moat-memfile-{label}-{}", std::process::id()));
            let mut file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
                .expect("a scratch file");
            file.write_all(data).expect("scratch data");
            HostFile(path, file)
        }
    }

    impl Drop for HostFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 4096) as u8).collect()
    }

    /// Reads a file into the memory file and writes it back out, with the
    /// splice pipes and (without them) through the buffer: the bytes arrive
    /// whole, at the offsets asked, and a read past the end is short.
    fn round_trip(label: &str, with_pipes: bool) {
        let data = pattern(3 * 1024 * 1024 + 123);
        let src = HostFile::new(&format!("{label}-src"), &data);
        let dst = HostFile::new(&format!("{label}-dst"), &[]);
        let mut mem = MemoryFile::new(16 << 20).unwrap();
        if !with_pipes {
            mem.pipes.clear();
        }
        let (from, at) = (100usize, 4096 + 7);
        let n = mem.read_fd(src.1.as_fd(), from as u64, at, 8 << 20).unwrap();
        assert_eq!(n, data.len() - from, "a read past the end is short");
        let mut back = vec![0u8; n];
        mem.read(at, &mut back).unwrap();
        assert!(back == data[from..], "the bytes in memory are the file's");
        assert_eq!(mem.write_fd(dst.1.as_fd(), 5, at, n).unwrap(), n);
        let mut out = vec![0u8; n];
        dst.1.read_exact_at(&mut out, 5).unwrap();
        assert!(out == data[from..], "the bytes written out are the memory's");
        assert_eq!(mem.read_fd(src.1.as_fd(), data.len() as u64, at, 10).unwrap(), 0, "end of file");
    }

    #[test]
    fn host_file_round_trip_by_splice() {
        round_trip("splice", true);
    }

    #[test]
    fn host_file_round_trip_through_a_buffer() {
        round_trip("bounce", false);
    }

    #[test]
    fn transfers_name_the_side_that_failed() {
        let mem = MemoryFile::new(1 << 20).unwrap();
        let file = HostFile::new("sides", b"0123456789");
        match mem.read_fd(file.1.as_fd(), 0, (1 << 20) - 4, 10) {
            Err(CopyError::Memory(e)) => assert_eq!(e.raw_os_error(), Some(libc::EFAULT)),
            other => panic!("past the memory file's end: {other:?}"),
        }
        let mut fds = [0; 2];
        // SAFETY: fds is a writable array of two ints.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: pipe returned two new fds that nothing else owns.
        let (r, _w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        match mem.read_fd(r.as_fd(), 0, 0, 10) {
            Err(CopyError::File(e)) => assert_eq!(e.raw_os_error(), Some(libc::ESPIPE)),
            other => panic!("a pipe has no offsets: {other:?}"),
        }
        // Every pipe is free and empty again: a transfer after a failure sees only its own bytes.
        assert_eq!(mem.read_fd(file.1.as_fd(), 2, 0, 4).unwrap(), 4);
        let mut got = [0u8; 4];
        mem.read(0, &mut got).unwrap();
        assert_eq!(&got, b"2345");
    }
}
