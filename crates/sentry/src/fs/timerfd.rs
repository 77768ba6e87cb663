//! timerfd: a timer whose expirations are counted and read as a u64; a host
//! thread sleeps until each deadline while the timer is armed.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use abi::AsBytes;

use crate::mm::IoDst;
use crate::vfs::{FileOps, OpenFile, PollMask, Stat};
use crate::waiter::WaitQueue;
use crate::SysResult;

#[derive(Debug, Default)]
struct State {
    deadline: Option<Instant>,
    interval: Duration,
    expirations: u64,
    generation: u64,
}

#[derive(Debug)]
pub struct TimerFd {
    /// The clock it was created on: an absolute setting is a time of it.
    pub clock: i32,
    state: Mutex<State>,
    cv: Condvar,
    wq: WaitQueue,
}

impl TimerFd {
    pub fn new(clock: i32) -> Arc<TimerFd> {
        Arc::new(TimerFd { clock, state: Mutex::default(), cv: Condvar::new(), wq: WaitQueue::default() })
    }

    /// (time left, interval).
    pub fn get(&self) -> (Duration, Duration) {
        let s = self.state.lock().unwrap();
        (s.deadline.map(|d| d.saturating_duration_since(Instant::now())).unwrap_or_default(), s.interval)
    }

    /// Arms (value non-zero) or disarms the timer; returns the previous setting.
    pub fn set(self: &Arc<Self>, value: Option<Instant>, interval: Duration) -> (Duration, Duration) {
        let old = self.get();
        let mut s = self.state.lock().unwrap();
        s.generation += 1;
        s.deadline = value;
        s.interval = interval;
        s.expirations = 0;
        let generation = s.generation;
        drop(s);
        self.cv.notify_all();
        if value.is_some() {
            // The thread holds only a weak reference: closing the fd ends it at the next wake.
            let weak = Arc::downgrade(self);
            let _ = std::thread::Builder::new().name("timerfd".into()).spawn(move || run(weak, generation));
        }
        old
    }
}

fn run(weak: std::sync::Weak<TimerFd>, generation: u64) {
    loop {
        let Some(me) = weak.upgrade() else { return };
        let mut s = me.state.lock().unwrap();
        if s.generation != generation {
            return;
        }
        let Some(deadline) = s.deadline else { return };
        let now = Instant::now();
        if now < deadline {
            // Wake at least every second so a dropped timer's thread goes away.
            let wait = (deadline - now).min(Duration::from_secs(1));
            drop(me.cv.wait_timeout(s, wait).unwrap());
            continue;
        }
        s.expirations += 1;
        s.deadline = if s.interval.is_zero() { None } else { deadline.checked_add(s.interval) };
        drop(s);
        me.wq.notify_all();
    }
}

impl FileOps for TimerFd {
    fn read(&self, _f: &OpenFile, dst: &mut dyn IoDst, _off: u64) -> SysResult<usize> {
        if dst.space() < 8 {
            return Err(errno!(EINVAL));
        }
        let mut s = self.state.lock().unwrap();
        if s.expirations == 0 {
            return Err(errno!(EAGAIN));
        }
        let count = std::mem::take(&mut s.expirations);
        drop(s);
        match dst.copy_out(0, count.as_bytes())? {
            8 => Ok(8),
            _ => Err(errno!(EFAULT)),
        }
    }

    fn seekable(&self) -> bool {
        false
    }

    fn poll(&self) -> PollMask {
        if self.state.lock().unwrap().expirations > 0 {
            PollMask::IN
        } else {
            PollMask::empty()
        }
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.wq)
    }

    fn stat(&self) -> SysResult<Stat> {
        Ok(Stat { dev: 0xe, ino: 4, mode: 0o600, nlink: 1, blksize: 4096, ..Default::default() })
    }
}
