//! Open file descriptions: the operations a file supports, its flags and
//! offset, shared by every fd that refers to it.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use super::{Dentry, DirEntry, InodeRef, Stat};
use crate::mm::{IoDst, IoSrc};
use crate::waiter::WaitQueue;
use crate::SysResult;

bitflags::bitflags! {
    /// poll(2) readiness bits.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct PollMask: u16 {
        const IN = 0x1;
        const PRI = 0x2;
        const OUT = 0x4;
        const ERR = 0x8;
        const HUP = 0x10;
        const NVAL = 0x20;
    }
}

/// I/O on an open file. Blocking objects return EAGAIN when not ready and expose the
/// wait queue to sleep on; the syscall layer does the sleeping.
pub trait FileOps: Send + Sync + std::fmt::Debug + AsAnyOps {
    /// Reads at `off` into `dst` (app memory, or a Sentry buffer), up to
    /// `dst.space()` bytes: a regular file gives all of them unless it ends
    /// first or `dst` faults (then what came before the fault; EFAULT if
    /// nothing did). Bytes go straight to `dst`, with no buffer between.
    fn read(&self, _file: &OpenFile, _dst: &mut dyn IoDst, _off: u64) -> SysResult<usize> {
        Err(errno!(EINVAL))
    }
    /// Writes `src` at `off`, as `read` the other way: how many bytes the
    /// file took.
    fn write(&self, _file: &OpenFile, _src: &dyn IoSrc, _off: u64) -> SysResult<usize> {
        Err(errno!(EINVAL))
    }
    /// The next range at or after `off` that may hold data, as (start, end);
    /// None past the last. Bytes between ranges read as zero: copying a
    /// sparse file skips them. A file that cannot tell calls it all data.
    fn data_extent(&self, _file: &OpenFile, off: u64) -> SysResult<Option<(u64, u64)>> {
        Ok(Some((off, u64::MAX)))
    }
    /// Whether the file has a position (regular files, directories): pread/lseek work.
    fn seekable(&self) -> bool {
        true
    }
    fn ioctl(&self, _file: &OpenFile, _req: u64, _arg: &mut IoctlArg) -> SysResult<u64> {
        Err(errno!(ENOTTY))
    }
    fn poll(&self) -> PollMask {
        PollMask::IN | PollMask::OUT
    }
    fn wait_queue(&self) -> Option<&WaitQueue> {
        None
    }
    /// Stat of a file with no inode (pipes, host fds).
    fn stat(&self) -> SysResult<Stat> {
        Err(errno!(EINVAL))
    }
    /// Called when the last reference to the description goes away.
    fn release(&self, _file: &OpenFile) {}
    /// Whether this is a terminal (isatty), for TCGETS answered by the Sentry.
    fn is_tty(&self) -> bool {
        false
    }
}

/// Downcasting for file kinds with syscalls of their own (epoll_ctl on an epoll fd).
pub trait AsAnyOps {
    fn as_any_ops(&self) -> &dyn std::any::Any;
    fn into_any_arc(self: Arc<Self>) -> Arc<dyn std::any::Any + Send + Sync>;
}

impl<T: std::any::Any + Send + Sync> AsAnyOps for T {
    fn as_any_ops(&self) -> &dyn std::any::Any {
        self
    }
    fn into_any_arc(self: Arc<Self>) -> Arc<dyn std::any::Any + Send + Sync> {
        self
    }
}

/// An ioctl argument buffer the syscall layer copies in and out of app memory.
#[derive(Debug)]
pub struct IoctlArg {
    pub raw: u64,
    pub buf: Vec<u8>,
    pub write_back: bool,
}

/// An open file description.
#[derive(Debug)]
pub struct OpenFile {
    pub ops: Arc<dyn FileOps>,
    pub dentry: Option<Arc<Dentry>>,
    pub flags: AtomicU32,
    pub pos: Mutex<u64>,
    /// Directory listing taken at the first getdents, consumed by position.
    pub dir_snapshot: Mutex<Option<Vec<DirEntry>>>,
}

impl OpenFile {
    pub fn new(ops: Arc<dyn FileOps>, dentry: Option<Arc<Dentry>>, flags: u32) -> Arc<OpenFile> {
        Arc::new(OpenFile {
            ops,
            dentry,
            flags: AtomicU32::new(flags),
            pos: Mutex::new(0),
            dir_snapshot: Mutex::new(None),
        })
    }

    pub fn flags(&self) -> u32 {
        self.flags.load(Ordering::Relaxed)
    }

    pub fn inode(&self) -> Option<&InodeRef> {
        self.dentry.as_ref().map(|d| &d.inode)
    }

    pub fn stat(&self) -> SysResult<Stat> {
        match self.inode() {
            Some(i) => i.stat(),
            None => self.ops.stat(),
        }
    }

    pub fn readable(&self) -> bool {
        let acc = self.flags() & 3;
        acc == 0 || acc == 2
    }

    pub fn writable(&self) -> bool {
        let acc = self.flags() & 3;
        acc == 1 || acc == 2
    }

    pub fn nonblocking(&self) -> bool {
        self.flags() & 0o4000 != 0
    }
}

impl Drop for OpenFile {
    fn drop(&mut self) {
        let ops = self.ops.clone();
        ops.release(self);
    }
}

/// An open file as a source of pages: a private mapping's, or an overlay
/// copy-up's.
#[derive(Debug)]
pub struct FileSource(pub Arc<OpenFile>);

impl crate::mm::PageSource for FileSource {
    fn read(&self, off: u64, mut buf: &mut [u8]) -> SysResult<usize> {
        self.0.ops.read(&self.0, &mut buf, off)
    }

    fn data_extent(&self, off: u64) -> SysResult<Option<(u64, u64)>> {
        self.0.ops.data_extent(&self.0, off)
    }
}
