//! signalfd: reading dequeues the reader's pending signals in the fd's mask as
//! `signalfd_siginfo` records; poll reports readability for the polling thread.

use std::sync::{Mutex, Weak};

use crate::auth::current;
use crate::kernel::Kernel;
use crate::mm::IoDst;
use crate::vfs::{FileOps, OpenFile, PollMask, Stat};
use crate::SysResult;

#[derive(Debug)]
pub struct SignalFd {
    pub mask: Mutex<u64>,
    k: Weak<Kernel>,
}

impl SignalFd {
    pub fn new(k: Weak<Kernel>, mask: u64) -> SignalFd {
        SignalFd { mask: Mutex::new(mask), k }
    }

    fn me(&self) -> Option<std::sync::Arc<crate::kernel::Task>> {
        self.k.upgrade()?.task(current().1)
    }
}

impl FileOps for SignalFd {
    fn read(&self, _f: &OpenFile, dst: &mut dyn IoDst, _off: u64) -> SysResult<usize> {
        if dst.space() < 128 {
            return Err(errno!(EINVAL));
        }
        let me = self.me().ok_or(errno!(EINVAL))?;
        let mask = *self.mask.lock().unwrap();
        let mut n = 0;
        while n + 128 <= dst.space() {
            let Some(info) = me.dequeue_in(mask) else { break };
            match dst.copy_out(n, &info.to_signalfd_bytes()) {
                Ok(128) => n += 128,
                // A signal dequeued for a record the buffer cannot hold is lost, as on Linux.
                _ if n > 0 => break,
                _ => return Err(errno!(EFAULT)),
            }
        }
        if n == 0 {
            // The reader sleeps on its own waiter, which every signal sent to it wakes.
            return Err(errno!(EAGAIN));
        }
        Ok(n)
    }

    fn seekable(&self) -> bool {
        false
    }

    fn poll(&self) -> PollMask {
        match self.me() {
            Some(me) if me.pending_in(*self.mask.lock().unwrap()) != 0 => PollMask::IN,
            _ => PollMask::empty(),
        }
    }

    fn stat(&self) -> SysResult<Stat> {
        Ok(Stat { dev: 0xe, ino: 3, mode: 0o600, nlink: 1, blksize: 4096, ..Default::default() })
    }
}
