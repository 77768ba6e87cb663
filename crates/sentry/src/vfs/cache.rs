//! The bounded lookup cache shared by the Gofer-backed and overlay
//! filesystems: per-directory name maps that never own their children,
//! and one queue per filesystem that keeps the most recently looked-up
//! inodes alive.
//!
//! Invariants: a directory's map holds `Weak` references (and negative
//! entries), so it owns nothing; what stays in memory is what the app holds
//! (dentries, open files, cwd) plus at most `capacity` recently looked-up
//! inodes per filesystem. Dropping a cached entry only costs a new lookup.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};

/// Inodes a filesystem keeps alive for later lookups, beyond those in use:
/// at most 8192, and a quarter of the open-files limit, since each cached
/// Gofer inode holds an fd in the Gofer (and, once opened, one in the Sentry).
pub fn default_capacity() -> usize {
    let by_fds = usize::try_from(host::sys::open_files_limit() / 4).unwrap_or(usize::MAX);
    by_fds.clamp(64, 8192)
}

/// Negative entries one directory remembers before it forgets them all.
const MAX_NEGATIVE: usize = 1024;

/// The most recently looked-up inodes of one filesystem, oldest first.
#[derive(Debug)]
pub struct Recent<T> {
    queue: Mutex<VecDeque<Arc<T>>>,
    capacity: usize,
}

impl<T> Recent<T> {
    pub fn new(capacity: usize) -> Recent<T> {
        Recent { queue: Mutex::new(VecDeque::new()), capacity }
    }

    /// Keeps `node` alive for a while; the oldest is let go past the capacity.
    pub fn keep(&self, node: &Arc<T>) {
        let evicted = {
            let mut queue = self.queue.lock().unwrap();
            queue.push_back(node.clone());
            if queue.len() > self.capacity {
                queue.pop_front()
            } else {
                None
            }
        };
        // Dropped outside the lock: an inode's drop may clunk a fid.
        drop(evicted);
    }
}

#[derive(Debug)]
enum Entry<T> {
    Present(Weak<T>),
    Absent,
}

/// What a directory knows of a name.
#[derive(Debug)]
pub enum Lookup<T> {
    /// The name is there, and this is its inode.
    Hit(Arc<T>),
    /// The name was looked up and is not there.
    Absent,
    /// Nothing is known; ask the filesystem.
    Unknown,
}

/// One directory's cached names.
#[derive(Debug)]
pub struct Children<T> {
    map: Mutex<ChildMap<T>>,
}

#[derive(Debug)]
struct ChildMap<T> {
    entries: HashMap<Vec<u8>, Entry<T>>,
    negative: usize,
    /// Size at which dead weak entries are next swept out.
    sweep_at: usize,
}

impl<T> Default for Children<T> {
    fn default() -> Self {
        Children { map: Mutex::new(ChildMap { entries: HashMap::new(), negative: 0, sweep_at: 64 }) }
    }
}

impl<T> Children<T> {
    pub fn get(&self, name: &[u8]) -> Lookup<T> {
        match self.map.lock().unwrap().entries.get(name) {
            Some(Entry::Present(weak)) => weak.upgrade().map_or(Lookup::Unknown, Lookup::Hit),
            Some(Entry::Absent) => Lookup::Absent,
            None => Lookup::Unknown,
        }
    }

    pub fn insert(&self, name: &[u8], node: &Arc<T>) {
        let mut map = self.map.lock().unwrap();
        if let Some(Entry::Absent) = map.entries.insert(name.to_vec(), Entry::Present(Arc::downgrade(node))) {
            map.negative -= 1;
        }
        if map.entries.len() >= map.sweep_at {
            map.entries.retain(|_, e| !matches!(e, Entry::Present(w) if w.strong_count() == 0));
            map.sweep_at = (map.entries.len() * 2).max(64);
        }
    }

    pub fn insert_absent(&self, name: &[u8]) {
        let mut map = self.map.lock().unwrap();
        if map.negative >= MAX_NEGATIVE {
            map.entries.retain(|_, e| matches!(e, Entry::Present(_)));
            map.negative = 0;
        }
        if !matches!(map.entries.insert(name.to_vec(), Entry::Absent), Some(Entry::Absent)) {
            map.negative += 1;
        }
    }

    pub fn forget(&self, name: &[u8]) {
        let mut map = self.map.lock().unwrap();
        if let Some(Entry::Absent) = map.entries.remove(name) {
            map.negative -= 1;
        }
    }

    pub fn clear(&self) {
        let mut map = self.map.lock().unwrap();
        map.entries.clear();
        map.negative = 0;
    }

    /// Live cached children.
    #[cfg(test)]
    pub fn live(&self) -> usize {
        let map = self.map.lock().unwrap();
        map.entries.values().filter(|e| matches!(e, Entry::Present(w) if w.strong_count() > 0)).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_do_not_own_their_inodes() {
        let children = Children::default();
        let node = Arc::new(7);
        children.insert(b"a", &node);
        assert!(matches!(children.get(b"a"), Lookup::Hit(n) if *n == 7));
        drop(node);
        assert!(matches!(children.get(b"a"), Lookup::Unknown));
    }

    #[test]
    fn recent_keeps_at_most_its_capacity() {
        let recent = Recent::new(2);
        let nodes: Vec<Arc<u32>> = (0..5).map(Arc::new).collect();
        for n in &nodes {
            recent.keep(n);
        }
        let alive: Vec<usize> = nodes.iter().map(Arc::strong_count).collect();
        assert_eq!(alive, [1, 1, 1, 2, 2]);
    }

    #[test]
    fn negative_entries_are_bounded() {
        let children: Children<u32> = Children::default();
        for i in 0..(3 * MAX_NEGATIVE) {
            children.insert_absent(format!("n{i}").as_bytes());
        }
        assert!(children.map.lock().unwrap().entries.len() <= MAX_NEGATIVE);
        let kept = Arc::new(1);
        children.insert(b"kept", &kept);
        children.insert_absent(b"gone");
        children.forget(b"gone");
        assert!(matches!(children.get(b"kept"), Lookup::Hit(_)));
        assert!(matches!(children.get(b"gone"), Lookup::Unknown));
    }

    #[test]
    fn dead_entries_are_swept() {
        let children = Children::default();
        for i in 0..10_000 {
            let node = Arc::new(i);
            children.insert(format!("f{i}").as_bytes(), &node);
        }
        assert!(children.map.lock().unwrap().entries.len() < 200);
        assert_eq!(children.live(), 0);
    }
}
