//! Pipes and FIFOs: a bounded byte queue with reader and writer counts;
//! readers see EOF when the last writer goes, writers EPIPE with no reader.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::mm::io::{append_from, drain_into};
use crate::mm::{IoDst, IoSrc};
use crate::vfs::{FileOps, OpenFile, PollMask, Stat};
use crate::waiter::WaitQueue;
use crate::SysResult;

/// A new pipe's capacity, as Linux's (16 pages).
const CAPACITY: usize = 65536;
const PIPE_BUF: usize = 4096;
const PAGE: usize = 4096;
/// `/proc/sys/fs/pipe-max-size`: the most F_SETPIPE_SZ gives a process
/// without CAP_SYS_RESOURCE.
pub const PIPE_MAX_SIZE: usize = 1 << 20;
/// The most pipe capacity past the default that the whole sandbox may hold,
/// privileged or not (Linux bounds it per user with pipe-user-pages-*): the
/// Sentry's memory must not grow with what an app asks for.
const GROWN_LIMIT: usize = 64 << 20;
static NEXT_INO: AtomicU64 = AtomicU64::new(0x1000_0000);
/// Capacity past the default, summed over the sandbox's pipes.
static GROWN: AtomicUsize = AtomicUsize::new(0);

#[derive(Debug)]
struct State {
    data: VecDeque<u8>,
    readers: usize,
    writers: usize,
    capacity: usize,
}

impl Default for State {
    fn default() -> State {
        State { data: VecDeque::new(), readers: 0, writers: 0, capacity: CAPACITY }
    }
}

/// The shared buffer behind both ends.
#[derive(Debug)]
pub struct Pipe {
    state: Mutex<State>,
    wq: WaitQueue,
    pub ino: u64,
}

impl Pipe {
    pub fn new() -> Arc<Pipe> {
        Arc::new(Pipe {
            state: Mutex::new(State::default()),
            wq: WaitQueue::default(),
            ino: NEXT_INO.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// The two ends of a new pipe: (read end, write end).
    pub fn pair() -> (Arc<dyn FileOps>, Arc<dyn FileOps>) {
        let p = Pipe::new();
        (p.end(false), p.end(true))
    }

    fn end(self: &Arc<Self>, write: bool) -> Arc<dyn FileOps> {
        {
            let mut s = self.state.lock().unwrap();
            if write {
                s.writers += 1;
            } else {
                s.readers += 1;
            }
        }
        self.wq.notify_all();
        Arc::new(PipeEnd { pipe: self.clone(), write })
    }

    /// F_GETPIPE_SZ: the capacity in bytes.
    pub fn size(&self) -> usize {
        self.state.lock().unwrap().capacity
    }

    /// F_SETPIPE_SZ: the capacity becomes `want` rounded up to a power of
    /// two pages (at least one); EPERM past pipe-max-size unless
    /// `privileged`, or past what the sandbox may hold in pipes; EBUSY if it
    /// holds more data than that. Returns the new capacity.
    pub fn set_size(&self, want: u64, privileged: bool) -> SysResult<usize> {
        if want > 1 << 31 {
            return Err(errno!(EINVAL));
        }
        let size = (want as usize).max(PAGE).next_power_of_two();
        if size > PIPE_MAX_SIZE && !privileged {
            return Err(errno!(EPERM));
        }
        let mut s = self.state.lock().unwrap();
        if s.data.len() > size {
            return Err(errno!(EBUSY));
        }
        let (old, new) = (s.capacity.saturating_sub(CAPACITY), size.saturating_sub(CAPACITY));
        if new > old {
            let grow = new - old;
            let fits = GROWN
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |g| (g + grow <= GROWN_LIMIT).then_some(g + grow));
            if fits.is_err() {
                return Err(errno!(EPERM));
            }
        } else {
            GROWN.fetch_sub(old - new, Ordering::Relaxed);
        }
        s.capacity = size;
        drop(s);
        self.wq.notify_all();
        Ok(size)
    }

    /// The pipe behind a pipe end or FIFO, for the F_*PIPE_SZ calls.
    pub fn of(ops: &dyn FileOps) -> Option<&Arc<Pipe>> {
        let any = ops.as_any_ops();
        any.downcast_ref::<PipeEnd>()
            .map(|e| &e.pipe)
            .or_else(|| any.downcast_ref::<PipeRdwr>().and_then(|p| Pipe::of(p.r.as_ref())))
    }

    /// Opens a named FIFO by access mode (O_RDWR counts as both ends).
    pub fn open_fifo(self: &Arc<Self>, flags: u32) -> SysResult<Arc<dyn FileOps>> {
        const O_NONBLOCK: u32 = 0o4000;
        // A writer that may not wait for a reader finds none: ENXIO.
        if flags & 3 == 1 && flags & O_NONBLOCK != 0 && self.state.lock().unwrap().readers == 0 {
            return Err(errno!(ENXIO));
        }
        match flags & 3 {
            0 => Ok(self.end(false)),
            1 => Ok(self.end(true)),
            _ => {
                let r = self.end(false);
                let w = self.end(true);
                Ok(Arc::new(PipeRdwr { r, w }))
            }
        }
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        let grown = self.state.get_mut().map_or(0, |s| s.capacity.saturating_sub(CAPACITY));
        GROWN.fetch_sub(grown, Ordering::Relaxed);
    }
}

#[derive(Debug)]
struct PipeEnd {
    pipe: Arc<Pipe>,
    write: bool,
}

impl FileOps for PipeEnd {
    fn read(&self, _f: &OpenFile, dst: &mut dyn IoDst, _off: u64) -> SysResult<usize> {
        if self.write {
            return Err(errno!(EBADF));
        }
        let mut s = self.pipe.state.lock().unwrap();
        if s.data.is_empty() {
            if s.writers == 0 || dst.space() == 0 {
                return Ok(0);
            }
            return Err(errno!(EAGAIN));
        }
        let n = drain_into(dst, &mut s.data, usize::MAX)?;
        drop(s);
        self.pipe.wq.notify_all();
        Ok(n)
    }

    fn write(&self, _f: &OpenFile, src: &dyn IoSrc, _off: u64) -> SysResult<usize> {
        if !self.write {
            return Err(errno!(EBADF));
        }
        let mut s = self.pipe.state.lock().unwrap();
        if s.readers == 0 {
            return Err(errno!(EPIPE));
        }
        let room = s.capacity.saturating_sub(s.data.len());
        if room == 0 || (src.size() <= PIPE_BUF && room < src.size()) {
            return Err(errno!(EAGAIN));
        }
        let n = append_from(src, &mut s.data, room)?;
        drop(s);
        self.pipe.wq.notify_all();
        Ok(n)
    }

    fn seekable(&self) -> bool {
        false
    }

    fn poll(&self) -> PollMask {
        let s = self.pipe.state.lock().unwrap();
        let mut m = PollMask::empty();
        if self.write {
            if s.readers == 0 {
                m |= PollMask::ERR;
            } else if s.capacity.saturating_sub(s.data.len()) >= PIPE_BUF {
                m |= PollMask::OUT;
            }
        } else {
            if !s.data.is_empty() {
                m |= PollMask::IN;
            }
            if s.writers == 0 {
                m |= PollMask::HUP;
            }
        }
        m
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.pipe.wq)
    }

    fn stat(&self) -> SysResult<Stat> {
        Ok(Stat { dev: 0xc, ino: self.pipe.ino, mode: 0o010600, nlink: 1, blksize: 4096, ..Default::default() })
    }

    fn release(&self, _f: &OpenFile) {
        let mut s = self.pipe.state.lock().unwrap();
        if self.write {
            s.writers -= 1;
        } else {
            s.readers -= 1;
        }
        drop(s);
        self.pipe.wq.notify_all();
    }
}

/// A FIFO opened O_RDWR: both ends in one description.
#[derive(Debug)]
struct PipeRdwr {
    r: Arc<dyn FileOps>,
    w: Arc<dyn FileOps>,
}

impl FileOps for PipeRdwr {
    fn read(&self, f: &OpenFile, dst: &mut dyn IoDst, off: u64) -> SysResult<usize> {
        self.r.read(f, dst, off)
    }
    fn write(&self, f: &OpenFile, src: &dyn IoSrc, off: u64) -> SysResult<usize> {
        self.w.write(f, src, off)
    }
    fn seekable(&self) -> bool {
        false
    }
    fn poll(&self) -> PollMask {
        (self.r.poll() & PollMask::IN) | (self.w.poll() & PollMask::OUT)
    }
    fn wait_queue(&self) -> Option<&WaitQueue> {
        self.r.wait_queue()
    }
    fn release(&self, f: &OpenFile) {
        self.r.release(f);
        self.w.release(f);
    }
}
