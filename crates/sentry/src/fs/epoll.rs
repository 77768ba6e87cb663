//! epoll: an interest list of (fd, file, events); waiting polls the files and
//! sleeps on their wait queues. Edge-triggered entries report a file again
//! only after it was seen not ready; one-shot entries disarm after reporting.

use std::sync::{Arc, Mutex, Weak};

pub use abi::io::{EPOLLET, EPOLLONESHOT};
use abi::io::{EPOLLEXCLUSIVE, EPOLL_CTL_ADD, EPOLL_CTL_DEL, EPOLL_CTL_MOD};

use crate::vfs::{FileOps, OpenFile, PollMask, Stat};
use crate::waiter::WaitQueue;
use crate::SysResult;

#[derive(Debug)]
struct Interest {
    fd: i32,
    file: Weak<OpenFile>,
    events: u32,
    data: u64,
    /// For EPOLLET: the readiness last reported, and the file's activity count then.
    reported: u16,
    seen_events: u64,
    disarmed: bool,
}

#[derive(Debug, Default)]
pub struct Epoll {
    list: Mutex<Vec<Interest>>,
}

impl Epoll {
    pub fn new() -> Arc<Epoll> {
        Arc::new(Epoll::default())
    }

    fn key(f: &Arc<OpenFile>) -> *const OpenFile {
        Arc::as_ptr(f)
    }

    /// EPOLL_CTL_ADD / MOD / DEL.
    pub fn ctl(&self, op: u32, fd: i32, file: &Arc<OpenFile>, events: u32, data: u64) -> SysResult<()> {
        let mut l = self.list.lock().unwrap();
        let pos =
            l.iter().position(|i| i.fd == fd && i.file.upgrade().is_some_and(|f| Self::key(&f) == Self::key(file)));
        match (op, pos) {
            (EPOLL_CTL_ADD, Some(_)) => Err(errno!(EEXIST)),
            (EPOLL_CTL_ADD, None) => {
                l.push(Interest {
                    fd,
                    file: Arc::downgrade(file),
                    events,
                    data,
                    reported: 0,
                    seen_events: 0,
                    disarmed: false,
                });
                Ok(())
            }
            (EPOLL_CTL_DEL, Some(p)) => {
                l.remove(p);
                Ok(())
            }
            // EPOLLEXCLUSIVE is for ADD only, and an exclusive interest
            // cannot be modified (Linux: EINVAL).
            (EPOLL_CTL_MOD, Some(p)) if events & EPOLLEXCLUSIVE != 0 || l[p].events & EPOLLEXCLUSIVE != 0 => {
                Err(errno!(EINVAL))
            }
            (EPOLL_CTL_MOD, Some(p)) => {
                let i = &mut l[p];
                i.events = events;
                i.data = data;
                i.reported = 0;
                i.seen_events = 0;
                i.disarmed = false;
                Ok(())
            }
            (2 | 3, None) => Err(errno!(ENOENT)),
            _ => Err(errno!(EINVAL)),
        }
    }

    /// Collects up to `max` ready events as (events, data).
    pub fn ready(&self, max: usize) -> Vec<(u32, u64)> {
        let mut out = Vec::new();
        let mut l = self.list.lock().unwrap();
        l.retain(|i| i.file.strong_count() > 0);
        for i in l.iter_mut() {
            if out.len() >= max {
                break;
            }
            let Some(f) = i.file.upgrade() else { continue };
            if i.disarmed {
                continue;
            }
            let m = f.ops.poll().bits();
            let hit = m & (i.events as u16 | PollMask::ERR.bits() | PollMask::HUP.bits());
            if i.events & EPOLLET != 0 {
                // Report on newly set bits, or on new activity (a write adding to data the
                // reader has not drained), as Linux's wake-up driven edge does.
                let events = f.ops.wait_queue().map(|q| q.events()).unwrap_or(0);
                let new = hit & !i.reported;
                let active = events != i.seen_events;
                i.reported = hit;
                i.seen_events = events;
                if new == 0 && !(active && hit != 0) {
                    continue;
                }
            }
            if hit == 0 {
                continue;
            }
            out.push((hit as u32, i.data));
            if i.events & EPOLLONESHOT != 0 {
                i.disarmed = true;
            }
        }
        out
    }

    /// The files of interest, to sleep on their queues; true if one has no queue.
    pub fn files(&self) -> (Vec<Arc<OpenFile>>, bool) {
        let files: Vec<_> = self.list.lock().unwrap().iter().filter_map(|i| i.file.upgrade()).collect();
        let unqueued = files.iter().any(|f| f.ops.wait_queue().is_none());
        (files, unqueued)
    }
}

impl FileOps for Epoll {
    fn seekable(&self) -> bool {
        false
    }

    fn poll(&self) -> PollMask {
        let l = self.list.lock().unwrap();
        let any = l
            .iter()
            .filter(|i| !i.disarmed)
            .any(|i| i.file.upgrade().is_some_and(|f| f.ops.poll().bits() & i.events as u16 != 0));
        if any {
            PollMask::IN
        } else {
            PollMask::empty()
        }
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        None
    }

    fn stat(&self) -> SysResult<Stat> {
        Ok(Stat { dev: 0xe, ino: 2, mode: 0o600, nlink: 1, blksize: 4096, ..Default::default() })
    }
}
