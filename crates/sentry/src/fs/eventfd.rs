//! eventfd: a 64-bit counter readable and writable as a file, for wake-ups
//! between threads and from event loops.

use std::sync::{Arc, Mutex};

pub use abi::io::EFD_SEMAPHORE;
use abi::AsBytes;

use crate::mm::{IoDst, IoSrc};
use crate::vfs::{FileOps, OpenFile, PollMask, Stat};
use crate::waiter::WaitQueue;
use crate::SysResult;

#[derive(Debug)]
pub struct EventFd {
    count: Mutex<u64>,
    semaphore: bool,
    wq: WaitQueue,
}

impl EventFd {
    pub fn new(initial: u32, flags: u32) -> Arc<EventFd> {
        Arc::new(EventFd {
            count: Mutex::new(initial as u64),
            semaphore: flags & EFD_SEMAPHORE != 0,
            wq: WaitQueue::default(),
        })
    }
}

/// The count moved whole, or EFAULT: eight bytes are one value.
fn full(n: usize) -> SysResult<usize> {
    if n == 8 {
        Ok(8)
    } else {
        Err(errno!(EFAULT))
    }
}

impl FileOps for EventFd {
    fn read(&self, _f: &OpenFile, dst: &mut dyn IoDst, _off: u64) -> SysResult<usize> {
        if dst.space() < 8 {
            return Err(errno!(EINVAL));
        }
        let mut c = self.count.lock().unwrap();
        if *c == 0 {
            return Err(errno!(EAGAIN));
        }
        let v = if self.semaphore { 1 } else { *c };
        *c -= v;
        drop(c);
        self.wq.notify_all();
        full(dst.copy_out(0, v.as_bytes())?)
    }

    fn write(&self, _f: &OpenFile, src: &dyn IoSrc, _off: u64) -> SysResult<usize> {
        if src.size() < 8 {
            return Err(errno!(EINVAL));
        }
        let mut v = 0u64;
        full(src.copy_in(0, v.as_bytes_mut())?)?;
        if v == u64::MAX {
            return Err(errno!(EINVAL));
        }
        let mut c = self.count.lock().unwrap();
        if u64::MAX - 1 - *c < v {
            return Err(errno!(EAGAIN));
        }
        *c += v;
        drop(c);
        self.wq.notify_all();
        Ok(8)
    }

    fn seekable(&self) -> bool {
        false
    }

    fn poll(&self) -> PollMask {
        let c = *self.count.lock().unwrap();
        let mut m = PollMask::empty();
        if c > 0 {
            m |= PollMask::IN;
        }
        if c < u64::MAX - 1 {
            m |= PollMask::OUT;
        }
        m
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.wq)
    }

    fn stat(&self) -> SysResult<Stat> {
        Ok(Stat { dev: 0xe, ino: 1, mode: 0o600, nlink: 1, blksize: 4096, ..Default::default() })
    }
}
