//! inotify (basic): watches on inodes, keyed by (st_dev, st_ino). The vfs
//! reports the changes it makes to names and attributes; the syscall layer
//! reports writes and closes after writing.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, Weak};

use abi::io::{InotifyEvent, IN_ALL_EVENTS, IN_IGNORED, IN_Q_OVERFLOW};
pub use abi::io::{
    IN_ACCESS, IN_ATTRIB, IN_CLOSE_NOWRITE, IN_CLOSE_WRITE, IN_CREATE, IN_DELETE, IN_DELETE_SELF, IN_DONT_FOLLOW,
    IN_ISDIR, IN_MODIFY, IN_MOVED_FROM, IN_MOVED_TO, IN_ONLYDIR, IN_OPEN,
};
use abi::AsBytes;

use crate::auth::Creds;
use crate::mm::IoDst;
use crate::vfs::permission::{self, MAY_READ};
use crate::vfs::{Dentry, FileOps, FileType, InodeRef, OpenFile, PollMask, Stat};
use crate::waiter::WaitQueue;
use crate::SysResult;

const MAX_QUEUED: usize = 16384;

/// A file's identity for watching.
pub type Key = (u64, u64);

/// (st_dev, st_ino) of an inode; None if it cannot be stat'ed (then no one
/// hears of it).
pub fn key_of(i: &InodeRef) -> Option<Key> {
    i.stat().ok().map(|s| (s.dev, s.ino))
}

#[derive(Debug)]
struct Watch {
    wd: i32,
    key: Key,
    mask: u32,
}

#[derive(Debug, Default)]
struct State {
    watches: Vec<Watch>,
    next_wd: i32,
    events: VecDeque<Vec<u8>>,
}

/// One inotify instance (an inotify fd).
#[derive(Debug, Default)]
pub struct Inotify {
    state: Mutex<State>,
    wq: WaitQueue,
}

impl Inotify {
    /// Watches the file `d` names for `who`, who must be allowed to read it
    /// (inotify_add_watch); IN_ONLYDIR in `mask` asks for a directory.
    pub fn watch(&self, who: &Creds, d: &Dentry, mask: u32) -> SysResult<i32> {
        let st = d.inode.stat()?;
        if mask & IN_ONLYDIR != 0 && st.file_type() != FileType::Directory {
            return Err(errno!(ENOTDIR));
        }
        if d.inode.enforces_mode_bits() {
            permission::check(who, &st, MAY_READ)?;
        }
        self.add_watch((st.dev, st.ino), mask)
    }

    fn add_watch(&self, key: Key, mask: u32) -> SysResult<i32> {
        if mask & IN_ALL_EVENTS == 0 {
            return Err(errno!(EINVAL));
        }
        let mut s = self.state.lock().unwrap();
        if let Some(w) = s.watches.iter_mut().find(|w| w.key == key) {
            w.mask = mask;
            return Ok(w.wd);
        }
        s.next_wd += 1;
        let wd = s.next_wd;
        s.watches.push(Watch { wd, key, mask });
        Ok(wd)
    }

    /// inotify_rm_watch: the watch goes, and IN_IGNORED says so.
    pub fn rm_watch(&self, wd: i32) -> SysResult<()> {
        let mut s = self.state.lock().unwrap();
        let before = s.watches.len();
        s.watches.retain(|w| w.wd != wd);
        if s.watches.len() == before {
            return Err(errno!(EINVAL));
        }
        Self::push(&mut s, wd, IN_IGNORED, 0, b"");
        drop(s);
        self.wq.notify_all();
        Ok(())
    }

    /// The watched file `key` is gone: IN_DELETE_SELF if asked for, then
    /// IN_IGNORED, and the watch goes.
    fn gone(&self, key: Key) {
        let mut s = self.state.lock().unwrap();
        let watches: Vec<(i32, u32)> = s.watches.iter().filter(|w| w.key == key).map(|w| (w.wd, w.mask)).collect();
        if watches.is_empty() {
            return;
        }
        for (wd, mask) in watches {
            if mask & IN_DELETE_SELF != 0 {
                Self::push(&mut s, wd, IN_DELETE_SELF, 0, b"");
            }
            Self::push(&mut s, wd, IN_IGNORED, 0, b"");
        }
        s.watches.retain(|w| w.key != key);
        drop(s);
        self.wq.notify_all();
    }

    fn event(&self, key: Key, mask: u32, cookie: u32, name: &[u8]) {
        let mut s = self.state.lock().unwrap();
        let Some(wd) = s.watches.iter().find(|w| w.key == key && w.mask & mask & IN_ALL_EVENTS != 0).map(|w| w.wd)
        else {
            return;
        };
        Self::push(&mut s, wd, mask, cookie, name);
        drop(s);
        self.wq.notify_all();
    }

    /// Queues one event (IN_Q_OVERFLOW past the bound; an event identical
    /// to the last unread one is merged into it, as Linux does).
    fn push(s: &mut State, wd: i32, mask: u32, cookie: u32, name: &[u8]) {
        const HEADER: usize = std::mem::size_of::<InotifyEvent>();
        let len = if name.is_empty() { 0 } else { (name.len() + 1).div_ceil(16) * 16 };
        let mut ev = Vec::with_capacity(HEADER + len);
        let overflow = s.events.len() >= MAX_QUEUED;
        let header = if overflow {
            InotifyEvent { wd: -1, mask: IN_Q_OVERFLOW, cookie, len: 0 }
        } else {
            InotifyEvent { wd, mask, cookie, len: len as u32 }
        };
        ev.extend_from_slice(header.as_bytes());
        if !overflow {
            ev.extend_from_slice(name);
            ev.resize(HEADER + len, 0);
        }
        // Linux merges an event identical to the last one still unread.
        if s.events.back() != Some(&ev) && !(overflow && s.events.len() > MAX_QUEUED) {
            s.events.push_back(ev);
        }
    }
}

impl FileOps for Inotify {
    fn read(&self, _f: &OpenFile, dst: &mut dyn IoDst, _off: u64) -> SysResult<usize> {
        let mut s = self.state.lock().unwrap();
        let Some(first) = s.events.front() else { return Err(errno!(EAGAIN)) };
        if first.len() > dst.space() {
            return Err(errno!(EINVAL));
        }
        let mut n = 0;
        while let Some(ev) = s.events.front() {
            if n + ev.len() > dst.space() {
                break;
            }
            // An event the buffer faults on stays queued.
            match dst.copy_out(n, ev) {
                Ok(got) if got == ev.len() => n += got,
                _ if n > 0 => break,
                _ => return Err(errno!(EFAULT)),
            }
            s.events.pop_front();
        }
        Ok(n)
    }

    fn seekable(&self) -> bool {
        false
    }

    fn poll(&self) -> PollMask {
        if self.state.lock().unwrap().events.is_empty() {
            PollMask::empty()
        } else {
            PollMask::IN
        }
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.wq)
    }

    fn stat(&self) -> SysResult<Stat> {
        Ok(Stat { dev: 0xe, ino: 5, mode: 0o600, nlink: 1, blksize: 4096, ..Default::default() })
    }
}

/// Every live inotify instance of the sandbox, for the syscall layer to report to.
#[derive(Debug, Default)]
pub struct Notifier {
    instances: Mutex<Vec<Weak<Inotify>>>,
    cookie: std::sync::atomic::AtomicU32,
    /// Set once an inotify instance exists: until then every report
    /// (each open, read and close) returns at once.
    used: std::sync::atomic::AtomicBool,
}

impl Notifier {
    pub fn register(&self, i: &Arc<Inotify>) {
        self.used.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut v = self.instances.lock().unwrap();
        v.retain(|w| w.strong_count() > 0);
        v.push(Arc::downgrade(i));
    }

    /// Whether any inotify instance was ever made in the sandbox.
    pub fn in_use(&self) -> bool {
        self.used.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn live(&self) -> Vec<Arc<Inotify>> {
        self.instances.lock().unwrap().iter().filter_map(|w| w.upgrade()).collect()
    }

    /// An event on the entry `d`: on its name in its parent directory, and on
    /// the file itself. A file outside the tree (O_TMPFILE, memfd) has no
    /// directory to report to.
    pub fn dentry(&self, d: &Dentry, mask: u32) {
        if !self.used.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let Some(parent) = d.parent() else { return };
        let (Some(pk), fk) = (key_of(&parent.inode), key_of(&d.inode)) else { return };
        let is_dir = d.inode.stat().is_ok_and(|s| s.file_type() == FileType::Directory);
        self.entry(pk, &d.name(), fk, mask, is_dir);
    }

    /// An event on `name` in directory `dir`, and on the file itself when it is watched.
    pub fn entry(&self, dir: Key, name: &[u8], file: Option<Key>, mask: u32, is_dir: bool) {
        let live = self.live();
        if live.is_empty() {
            return;
        }
        let m = if is_dir { mask | IN_ISDIR } else { mask };
        for i in &live {
            i.event(dir, m, 0, name);
            if let Some(f) = file {
                i.event(f, m, 0, b"");
            }
        }
    }

    /// A name of the file `file` went: IN_ATTRIB on it if names are left
    /// (its link count changed), else (the last one) IN_ATTRIB for a file,
    /// then IN_DELETE_SELF and IN_IGNORED to its watches, which go. The
    /// caller reports IN_DELETE in the directory after.
    pub fn unlinked(&self, file: Key, last: bool, is_dir: bool) {
        if !self.used.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        for i in &self.live() {
            if !is_dir {
                i.event(file, IN_ATTRIB, 0, b"");
            }
            if last {
                i.gone(file);
            }
        }
    }

    /// A rename: MOVED_FROM in the old directory and MOVED_TO in the new, with one cookie.
    pub fn rename(&self, from: Key, old: &[u8], to: Key, new: &[u8], is_dir: bool) {
        let live = self.live();
        if live.is_empty() {
            return;
        }
        let cookie = self.cookie.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let d = if is_dir { IN_ISDIR } else { 0 };
        for i in &live {
            i.event(from, IN_MOVED_FROM | d, cookie, old);
            i.event(to, IN_MOVED_TO | d, cookie, new);
        }
    }
}
