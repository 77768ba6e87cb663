//! File locks: POSIX record locks (fcntl F_GETLK/F_SETLK/F_SETLKW), byte ranges
//! owned by processes; and, in a second table, flock locks owned by open files.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::waiter::WaitQueue;
use crate::SysResult;

pub const F_RDLCK: i16 = 0;
pub const F_WRLCK: i16 = 1;
pub const F_UNLCK: i16 = 2;

/// One held lock: `[start, end)` (end u64::MAX for "to EOF and beyond").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordLock {
    /// A pid for POSIX locks; an open-file-description id for flock locks.
    pub owner: i64,
    pub start: u64,
    pub end: u64,
    pub kind: i16,
}

/// A file's identity for locking: (st_dev, st_ino).
pub type FileKey = (u64, u64);

/// Every record lock in the sandbox.
#[derive(Debug, Default)]
pub struct LockTable {
    locks: Mutex<HashMap<FileKey, Vec<RecordLock>>>,
    /// Woken whenever a lock is released, for F_SETLKW sleepers.
    pub released: WaitQueue,
}

fn overlaps(a: &RecordLock, start: u64, end: u64) -> bool {
    a.start < end && start < a.end
}

impl LockTable {
    /// The first lock of another owner that conflicts with `want`, if any (F_GETLK).
    pub fn conflict(&self, key: FileKey, want: &RecordLock) -> Option<RecordLock> {
        let locks = self.locks.lock().unwrap();
        locks.get(&key)?.iter().copied().find(|l| {
            l.owner != want.owner && overlaps(l, want.start, want.end) && (l.kind == F_WRLCK || want.kind == F_WRLCK)
        })
    }

    /// Sets (or with F_UNLCK clears) `want` for its owner; EAGAIN on conflict.
    pub fn set(&self, key: FileKey, want: RecordLock) -> SysResult<()> {
        let mut locks = self.locks.lock().unwrap();
        let list = locks.entry(key).or_default();
        if want.kind != F_UNLCK
            && list.iter().any(|l| {
                l.owner != want.owner
                    && overlaps(l, want.start, want.end)
                    && (l.kind == F_WRLCK || want.kind == F_WRLCK)
            })
        {
            return Err(errno!(EAGAIN));
        }
        // Carve the range out of the owner's existing locks, then add the new one.
        let mut next = Vec::with_capacity(list.len() + 2);
        for l in list.drain(..) {
            if l.owner != want.owner || !overlaps(&l, want.start, want.end) {
                next.push(l);
                continue;
            }
            if l.start < want.start {
                next.push(RecordLock { end: want.start, ..l });
            }
            if l.end > want.end {
                next.push(RecordLock { start: want.end, ..l });
            }
        }
        if want.kind != F_UNLCK {
            next.push(want);
        }
        *list = next;
        if list.is_empty() {
            locks.remove(&key);
        }
        drop(locks);
        self.released.notify_all();
        Ok(())
    }

    /// Drops every lock `owner` holds on `key` (a close) or, with None, on any file (exit).
    pub fn release(&self, owner: i64, key: Option<FileKey>) {
        let mut locks = self.locks.lock().unwrap();
        let mut changed = false;
        for (k, list) in locks.iter_mut() {
            if key.is_some_and(|x| x != *k) {
                continue;
            }
            let before = list.len();
            list.retain(|l| l.owner != owner);
            changed |= list.len() != before;
        }
        locks.retain(|_, l| !l.is_empty());
        drop(locks);
        if changed {
            self.released.notify_all();
        }
    }
}

/// The owner id of flock locks held through `f` (its open file description).
pub fn ofd_owner(f: &std::sync::Arc<crate::vfs::OpenFile>) -> i64 {
    // Negative, so it can never equal a pid.
    -(std::sync::Arc::as_ptr(f) as usize as i64 & i64::MAX) - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflicts_and_splits() {
        let t = LockTable::default();
        let k = (1, 2);
        t.set(k, RecordLock { owner: 1, start: 0, end: 100, kind: F_WRLCK }).unwrap();
        assert_eq!(t.set(k, RecordLock { owner: 2, start: 50, end: 60, kind: F_RDLCK }), Err(errno!(EAGAIN)));
        t.set(k, RecordLock { owner: 1, start: 40, end: 70, kind: F_UNLCK }).unwrap();
        t.set(k, RecordLock { owner: 2, start: 50, end: 60, kind: F_RDLCK }).unwrap();
        assert!(t.conflict(k, &RecordLock { owner: 2, start: 0, end: 10, kind: F_RDLCK }).is_some());
        t.release(1, None);
        assert!(t.conflict(k, &RecordLock { owner: 3, start: 0, end: 10, kind: F_WRLCK }).is_none());
    }
}
