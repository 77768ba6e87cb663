//! The overlay: a read-only lower tree (the Gofer's) under a tmpfs upper tree.
//! Writes copy files up; deletions of lower names leave whiteouts.
//!
//! Invariants: a node's `upper` once set never changes; a name is visible if
//! it is in the upper dir, or in the lower dir and neither whited out nor
//! hidden by an opaque directory. Whiteouts and opaque flags belong to upper
//! directories (kept in `OverlayFs::marks`), never to the cached nodes, so
//! nodes are only a cache and may be dropped at any time. Renaming a
//! directory with lower content first copies its whole tree up, then marks
//! it opaque at its new place.

use std::any::Any;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};

use abi::Errno;

use super::tmpfs::TmpfsInode;
use crate::mm::{IoDst, RangeAllocator};
use crate::vfs::cache::{default_capacity, Children, Lookup, Recent};
use crate::vfs::{
    new_fs_id, DirEntry, FileOps, FileSource, FileType, Inode, InodeRef, NewNode, OpenFile, SetAttr, Stat,
};
use crate::SysResult;

/// What one upper directory hides of the lower one.
#[derive(Debug, Default)]
struct Marks {
    whiteouts: HashSet<Vec<u8>>,
    opaque: bool,
}

#[derive(Debug)]
struct OverlayFs {
    id: u64,
    /// By upper directory inode number.
    marks: Mutex<HashMap<u64, Marks>>,
    /// Copied-up lower files with more than one name, by lower inode
    /// number: another name of the same file links to the same copy.
    linked_copies: Mutex<HashMap<u64, Weak<TmpfsInode>>>,
    recent: Recent<OverlayInode>,
    /// The upper root, whose space is the overlay's (statfs).
    upper_root: Arc<TmpfsInode>,
}

impl OverlayFs {
    fn hides(&self, upper: Option<&Arc<TmpfsInode>>, name: &[u8]) -> bool {
        let Some(upper) = upper else { return false };
        self.marks.lock().unwrap().get(&upper.ino()).is_some_and(|m| m.opaque || m.whiteouts.contains(name))
    }

    fn opaque(&self, upper: Option<&Arc<TmpfsInode>>) -> bool {
        let Some(upper) = upper else { return false };
        self.marks.lock().unwrap().get(&upper.ino()).is_some_and(|m| m.opaque)
    }

    fn whiteouts(&self, upper: Option<&Arc<TmpfsInode>>) -> HashSet<Vec<u8>> {
        let Some(upper) = upper else { return HashSet::new() };
        self.marks.lock().unwrap().get(&upper.ino()).map(|m| m.whiteouts.clone()).unwrap_or_default()
    }

    fn white_out(&self, upper: &TmpfsInode, name: &[u8]) {
        self.marks.lock().unwrap().entry(upper.ino()).or_default().whiteouts.insert(name.to_vec());
    }

    fn make_opaque(&self, upper: &TmpfsInode) {
        self.marks.lock().unwrap().entry(upper.ino()).or_default().opaque = true;
    }

    fn forget(&self, upper: &TmpfsInode) {
        self.marks.lock().unwrap().remove(&upper.ino());
    }

    /// The upper copy of a multiply-linked lower file, if one of its names
    /// was copied up already.
    fn linked_copy(&self, lower: &Stat) -> Option<Arc<TmpfsInode>> {
        if lower.file_type() != FileType::Regular || lower.nlink < 2 {
            return None;
        }
        self.linked_copies.lock().unwrap().get(&lower.ino).and_then(Weak::upgrade)
    }

    fn any_linked_copies(&self) -> bool {
        !self.linked_copies.lock().unwrap().is_empty()
    }
}

#[derive(Debug)]
pub struct OverlayInode {
    fs: Arc<OverlayFs>,
    lower: Option<InodeRef>,
    upper: Mutex<Option<Arc<TmpfsInode>>>,
    parent: Option<Arc<OverlayInode>>,
    name: Vec<u8>,
    children: Children<OverlayInode>,
    /// Files opened on the lower file, moved to the upper copy when it is made.
    readers: Mutex<Vec<Weak<LowerFile>>>,
    me: Weak<OverlayInode>,
}

impl OverlayInode {
    /// An overlay root over `lower` with a fresh tmpfs upper holding at most
    /// `limit` bytes of file data (ENOSPC past it).
    pub fn new_root(lower: InodeRef, limit: Option<u64>, alloc: &Arc<RangeAllocator>) -> Arc<OverlayInode> {
        let upper = TmpfsInode::new_fs_limited(0o755, limit, alloc);
        if let Ok(st) = lower.stat() {
            upper.copy_meta_from(&st);
        }
        let fs = Arc::new(OverlayFs {
            id: new_fs_id(),
            marks: Mutex::new(HashMap::new()),
            linked_copies: Mutex::new(HashMap::new()),
            recent: Recent::new(default_capacity()),
            upper_root: upper.clone(),
        });
        Self::node(fs, Some(lower), Some(upper), None, Vec::new())
    }

    fn node(
        fs: Arc<OverlayFs>,
        lower: Option<InodeRef>,
        upper: Option<Arc<TmpfsInode>>,
        parent: Option<Arc<OverlayInode>>,
        name: Vec<u8>,
    ) -> Arc<OverlayInode> {
        Arc::new_cyclic(|me| OverlayInode {
            fs,
            lower,
            upper: Mutex::new(upper),
            parent,
            name,
            children: Children::default(),
            readers: Mutex::new(Vec::new()),
            me: me.clone(),
        })
    }

    fn upper(&self) -> Option<Arc<TmpfsInode>> {
        self.upper.lock().unwrap().clone()
    }

    fn this(&self) -> SysResult<Arc<OverlayInode>> {
        self.me.upgrade().ok_or(errno!(EIO))
    }

    fn from_ref(i: &InodeRef) -> Option<Arc<OverlayInode>> {
        i.as_any().downcast_ref::<OverlayInode>().and_then(|o| o.me.upgrade())
    }

    fn current(&self) -> SysResult<InodeRef> {
        if let Some(u) = self.upper() {
            return Ok(u);
        }
        let lower = self.lower.clone().ok_or(errno!(ENOENT))?;
        if self.fs.any_linked_copies() && self.fs.linked_copy(&lower.stat()?).is_some() {
            // Another name of this file was written: this one is the same file.
            return Ok(self.copy_up()?);
        }
        Ok(lower)
    }

    /// Makes sure this node exists in the upper tree, copying it (not its children) up.
    fn copy_up(&self) -> SysResult<Arc<TmpfsInode>> {
        self.copy_up_keeping(true)
    }

    /// Copies the node up; without `data`, a regular file comes up empty
    /// (it is about to be truncated: copying it would be wasted).
    fn copy_up_keeping(&self, data: bool) -> SysResult<Arc<TmpfsInode>> {
        if let Some(u) = self.upper() {
            return Ok(u);
        }
        let parent = self.parent.as_ref().ok_or(errno!(EIO))?;
        let parent_upper = parent.copy_up()?;
        let lower = self.lower.as_ref().ok_or(errno!(ENOENT))?;
        let up = match copy_node_up(&self.fs, &parent_upper, &self.name, lower, data) {
            // Already copied up with its parent's tree (a directory rename).
            Err(e) if e == Errno::EEXIST => {
                let existing = parent_upper.lookup(&self.name)?;
                TmpfsInode::from_ref(&existing).ok_or(errno!(EIO))?
            }
            other => other?,
        };
        *self.upper.lock().unwrap() = Some(up.clone());
        let readers = std::mem::take(&mut *self.readers.lock().unwrap());
        for reader in readers.iter().filter_map(Weak::upgrade) {
            reader.move_up(&up)?;
        }
        Ok(up)
    }

    /// Copies this directory and everything visible below it into the upper
    /// tree, so that it no longer needs its lower directory.
    fn copy_up_tree(&self) -> SysResult<Arc<TmpfsInode>> {
        let up = self.copy_up()?;
        if self.lower.is_some() && !self.fs.opaque(Some(&up)) {
            copy_lower_children(&self.fs, &up, self.lower.as_ref().ok_or(errno!(EIO))?)?;
            self.fs.make_opaque(&up);
            // Cached children predate their copies; look them up afresh.
            self.children.clear();
        }
        Ok(up)
    }

    fn child(&self, name: &[u8]) -> SysResult<Arc<OverlayInode>> {
        match self.children.get(name) {
            Lookup::Hit(c) => return Ok(c),
            Lookup::Absent => return Err(errno!(ENOENT)),
            Lookup::Unknown => {}
        }
        let my_upper = self.upper();
        let upper = match &my_upper {
            Some(u) => match u.lookup(name) {
                Ok(i) => Some(TmpfsInode::from_ref(&i).ok_or(errno!(EIO))?),
                Err(e) if e == Errno::ENOENT => None,
                Err(e) => return Err(e),
            },
            None => None,
        };
        let lower = match (&self.lower, self.fs.hides(my_upper.as_ref(), name)) {
            (Some(l), false) => match l.lookup(name) {
                Ok(i) => Some(i),
                Err(e) if e == Errno::ENOENT => None,
                Err(e) => return Err(e),
            },
            _ => None,
        };
        // A non-directory in the upper layer hides whatever the lower layer has.
        let lower = match (&upper, lower) {
            (Some(u), Some(l)) => {
                let both_dirs =
                    u.stat()?.file_type() == FileType::Directory && l.stat()?.file_type() == FileType::Directory;
                both_dirs.then_some(l)
            }
            (_, l) => l,
        };
        if upper.is_none() && lower.is_none() {
            self.children.insert_absent(name);
            return Err(errno!(ENOENT));
        }
        let c = Self::node(self.fs.clone(), lower, upper, Some(self.this()?), name.to_vec());
        self.children.insert(name, &c);
        self.fs.recent.keep(&c);
        Ok(c)
    }

    /// Whether the lower directory has a visible `name`, even if an upper
    /// file shadows it: removing the upper one must then leave a whiteout.
    fn lower_has(&self, name: &[u8]) -> SysResult<bool> {
        let Some(lower) = &self.lower else { return Ok(false) };
        if self.fs.hides(self.upper().as_ref(), name) {
            return Ok(false);
        }
        match lower.lookup(name) {
            Ok(_) => Ok(true),
            Err(e) if e == Errno::ENOENT => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn merged(&self) -> SysResult<BTreeMap<Vec<u8>, DirEntry>> {
        let mut out = BTreeMap::new();
        let upper = self.upper();
        if let (Some(l), false) = (&self.lower, self.fs.opaque(upper.as_ref())) {
            let whiteouts = self.fs.whiteouts(upper.as_ref());
            for e in l.readdir()? {
                if !whiteouts.contains(&e.name) {
                    out.insert(e.name.clone(), e);
                }
            }
        }
        if let Some(u) = upper {
            for e in u.readdir()? {
                out.insert(e.name.clone(), e);
            }
        }
        Ok(out)
    }
}

/// Creates `name` in `parent_upper` as a copy of `lower` (its data too, for
/// a regular file; not a directory's children).
fn copy_node_up(
    fs: &OverlayFs,
    parent_upper: &Arc<TmpfsInode>,
    name: &[u8],
    lower: &InodeRef,
    with_data: bool,
) -> SysResult<Arc<TmpfsInode>> {
    let st = lower.stat()?;
    if let Some(copy) = fs.linked_copy(&st) {
        parent_upper.link_counted(name, &copy)?;
        return Ok(copy);
    }
    let node = match st.file_type() {
        FileType::Directory => NewNode::Dir { mode: st.mode },
        FileType::Regular => NewNode::File { mode: st.mode },
        FileType::Symlink => NewNode::Symlink { target: lower.readlink()? },
        FileType::Fifo => NewNode::Fifo { mode: st.mode },
        // Device nodes and sockets in the rootfs are metadata only.
        _ => return Err(errno!(EPERM)),
    };
    let space = parent_upper.space();
    let copies_data = with_data && st.file_type() == FileType::Regular;
    if copies_data && space.limit().is_some_and(|l| space.used().saturating_add(st.size) > l) {
        return Err(errno!(ENOSPC));
    }
    // Copying up is no change to the directory: its times stay.
    let parent_times = parent_upper.stat()?;
    let created = parent_upper.create(name, node)?;
    parent_upper.setattr(&SetAttr {
        atime: Some(parent_times.atime),
        mtime: Some(parent_times.mtime),
        ..SetAttr::default()
    })?;
    let up = TmpfsInode::from_ref(&created).ok_or(errno!(EIO))?;
    if copies_data {
        let copied = copy_data(lower, &up, st.size);
        if let Err(e) = copied {
            let _ = parent_upper.unlink(name, false);
            return Err(e);
        }
    }
    up.copy_meta_from(&st);
    if st.file_type() == FileType::Regular && st.nlink > 1 {
        // Its other names, still below, count as links of the copy.
        up.set_nlink(st.nlink);
        fs.linked_copies.lock().unwrap().insert(st.ino, Arc::downgrade(&up));
    }
    Ok(up)
}

/// Copies every lower child of a directory that the upper one neither has
/// nor hides, recursing into directories present in both.
fn copy_lower_children(fs: &OverlayFs, upper: &Arc<TmpfsInode>, lower: &InodeRef) -> SysResult<()> {
    if fs.opaque(Some(upper)) {
        return Ok(());
    }
    let whiteouts = fs.whiteouts(Some(upper));
    for entry in lower.readdir()? {
        if whiteouts.contains(&entry.name) {
            continue;
        }
        let lower_child = lower.lookup(&entry.name)?;
        let upper_child = match upper.lookup(&entry.name) {
            Ok(existing) => {
                let existing = TmpfsInode::from_ref(&existing).ok_or(errno!(EIO))?;
                let both_dirs = existing.stat()?.file_type() == FileType::Directory
                    && lower_child.stat()?.file_type() == FileType::Directory;
                if !both_dirs {
                    continue;
                }
                existing
            }
            Err(e) if e == Errno::ENOENT => copy_node_up(fs, upper, &entry.name, &lower_child, true)?,
            Err(e) => return Err(e),
        };
        if upper_child.stat()?.file_type() == FileType::Directory {
            copy_lower_children(fs, &upper_child, &lower_child)?;
            fs.make_opaque(&upper_child);
        }
    }
    Ok(())
}

/// Copies the `size` bytes of a lower regular file into its upper copy a
/// piece at a time, skipping holes: a copy-up costs the Sentry one piece
/// of memory, whatever the file's size.
fn copy_data(lower: &InodeRef, up: &TmpfsInode, size: u64) -> SysResult<()> {
    let source = FileSource(OpenFile::new(lower.clone().open(0)?, None, 0));
    let end = crate::mm::copy_data(&source, 0, size, |at, data| up.write_at(at, data))?;
    up.set_size(end)
}

impl Inode for OverlayInode {
    fn stat(&self) -> SysResult<Stat> {
        let mut st = self.current()?.stat()?;
        if st.file_type() == FileType::Directory && self.upper().is_some() {
            // Keep the lower identity so that inode numbers stay stable across copy-up.
            if let Some(l) = &self.lower {
                let ls = l.stat()?;
                st.ino = ls.ino;
                st.nlink = ls.nlink.max(st.nlink);
            }
        }
        st.dev = self.fs.id;
        Ok(st)
    }

    fn lookup(&self, name: &[u8]) -> SysResult<InodeRef> {
        Ok(self.child(name)?)
    }

    fn readdir(&self) -> SysResult<Vec<DirEntry>> {
        Ok(self.merged()?.into_values().collect())
    }

    fn readlink(&self) -> SysResult<Vec<u8>> {
        self.current()?.readlink()
    }

    fn open(self: Arc<Self>, flags: u32) -> SysResult<Arc<dyn FileOps>> {
        let writing = flags & 3 != 0 || flags & 0o1000 != 0;
        let regular = self.current()?.stat()?.file_type() == FileType::Regular;
        if writing && regular {
            let truncating = flags & 3 != 0 && flags & 0o1000 != 0;
            let up: InodeRef = self.copy_up_keeping(!truncating)?;
            return up.open(flags);
        }
        let opened = self.current()?.open(flags)?;
        if regular && self.upper().is_none() {
            // Reads must follow the file if a later write copies it up.
            let reader = Arc::new(LowerFile { flags, file: Mutex::new(opened) });
            let mut readers = self.readers.lock().unwrap();
            readers.retain(|r| r.strong_count() > 0);
            readers.push(Arc::downgrade(&reader));
            return Ok(reader);
        }
        Ok(opened)
    }

    fn create(&self, name: &[u8], node: NewNode) -> SysResult<InodeRef> {
        match self.child(name) {
            Ok(_) => return Err(errno!(EEXIST)),
            Err(e) if e == Errno::ENOENT => {}
            Err(e) => return Err(e),
        }
        // A whiteout here stays: it keeps the deleted lower entry (and, for
        // a directory, its old children) hidden under the new one.
        self.copy_up()?.create(name, node)?;
        self.children.forget(name);
        Ok(self.child(name)?)
    }

    fn unlink(&self, name: &[u8], dir: bool) -> SysResult<()> {
        let c = self.child(name)?;
        let ft = c.stat()?.file_type();
        match (ft == FileType::Directory, dir) {
            (true, false) => return Err(errno!(EISDIR)),
            (false, true) => return Err(errno!(ENOTDIR)),
            (true, true) if !c.merged()?.is_empty() => return Err(errno!(ENOTEMPTY)),
            _ => {}
        }
        if ft == FileType::Regular && c.upper().is_none() && c.stat()?.nlink > 1 {
            // The file's other names must see one link fewer.
            c.copy_up()?;
        }
        let up = self.copy_up()?;
        // Asked of the upper directory, not of `c`: a cached node may predate
        // the copy-up of its directory's whole tree.
        match up.lookup(name) {
            Ok(child_upper) => {
                up.unlink(name, dir)?;
                if let Some(child_upper) = TmpfsInode::from_ref(&child_upper) {
                    self.fs.forget(&child_upper);
                }
            }
            Err(e) if e == Errno::ENOENT => {}
            Err(e) => return Err(e),
        }
        if self.lower_has(name)? {
            self.fs.white_out(&up, name);
        }
        self.children.forget(name);
        Ok(())
    }

    fn rename(&self, old: &[u8], new_dir: &InodeRef, new: &[u8]) -> SysResult<()> {
        let nd = OverlayInode::from_ref(new_dir).ok_or(errno!(EXDEV))?;
        if !Arc::ptr_eq(&nd.fs, &self.fs) {
            return Err(errno!(EXDEV));
        }
        let c = self.child(old)?;
        let ct = c.stat()?.file_type();
        let existing = match nd.child(new) {
            Ok(e) => Some(e),
            Err(e) if e == Errno::ENOENT => None,
            Err(e) => return Err(e),
        };
        if let Some(existing) = &existing {
            if Arc::ptr_eq(existing, &c) {
                return Ok(());
            }
            let et = existing.stat()?.file_type();
            if et == FileType::Directory && ct != FileType::Directory {
                return Err(errno!(EISDIR));
            }
            if et != FileType::Directory && ct == FileType::Directory {
                return Err(errno!(ENOTDIR));
            }
            if et == FileType::Directory && !existing.merged()?.is_empty() {
                return Err(errno!(ENOTEMPTY));
            }
        }
        if ct == FileType::Directory {
            c.copy_up_tree()?;
        } else {
            c.copy_up()?;
        }
        let src_up = self.copy_up()?;
        let dst_up = nd.copy_up()?;
        let dst_ref: InodeRef = dst_up.clone();
        src_up.rename(old, &dst_ref, new)?;
        if let Some(replaced_upper) = existing.and_then(|e| e.upper()) {
            self.fs.forget(&replaced_upper);
        }
        if nd.lower_has(new)? {
            self.fs.white_out(&dst_up, new);
        }
        if self.lower_has(old)? {
            self.fs.white_out(&src_up, old);
        }
        self.children.forget(old);
        nd.children.forget(new);
        Ok(())
    }

    fn link(&self, name: &[u8], target: &InodeRef) -> SysResult<()> {
        let t = OverlayInode::from_ref(target).ok_or(errno!(EXDEV))?;
        if !Arc::ptr_eq(&t.fs, &self.fs) {
            return Err(errno!(EXDEV));
        }
        let target_upper: InodeRef = t.copy_up()?;
        let up = self.copy_up()?;
        up.link(name, &target_upper)?;
        self.children.forget(name);
        Ok(())
    }

    fn setattr(&self, attr: &SetAttr) -> SysResult<()> {
        self.copy_up()?.setattr(attr)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn shared_pages(&self, alloc: &Arc<crate::mm::RangeAllocator>, want: u64) -> SysResult<Arc<crate::mm::Backing>> {
        // Shared mappings see later writes, so the file must live in the upper layer.
        self.copy_up()?.shared_pages(alloc, want)
    }

    fn frozen(&self) -> Option<(crate::vfs::FrozenKey, InodeRef)> {
        if self.upper().is_some() {
            return None;
        }
        let lower = self.lower.clone()?;
        let st = lower.stat().ok()?;
        if st.file_type() != FileType::Regular || (self.fs.any_linked_copies() && self.fs.linked_copy(&st).is_some()) {
            return None;
        }
        let key = crate::vfs::FrozenKey {
            fs: self.fs.id,
            dev: st.dev,
            ino: st.ino,
            size: st.size,
            mtime: (st.mtime.sec, st.mtime.nsec),
            ctime: (st.ctime.sec, st.ctime.nsec),
        };
        // Copied up since the first look: its bytes may change now.
        self.upper().is_none().then_some((key, lower))
    }

    /// The upper tmpfs's space, as Linux's overlayfs reports its upper
    /// filesystem's (the mount's type gives the magic number).
    fn statfs(&self) -> SysResult<crate::vfs::FsSpace> {
        self.fs.upper_root.statfs()
    }

    fn fs_id(&self) -> u64 {
        self.fs.id
    }
}

/// A lower regular file opened for reading, which moves to the upper copy
/// when the file is copied up, so that it sees writes made through other
/// descriptors as on a single-layer filesystem.
#[derive(Debug)]
struct LowerFile {
    flags: u32,
    file: Mutex<Arc<dyn FileOps>>,
}

impl LowerFile {
    fn move_up(&self, upper: &Arc<TmpfsInode>) -> SysResult<()> {
        let opened = upper.clone().open(self.flags)?;
        *self.file.lock().unwrap() = opened;
        Ok(())
    }
}

impl FileOps for LowerFile {
    fn read(&self, f: &OpenFile, dst: &mut dyn IoDst, off: u64) -> SysResult<usize> {
        let file = self.file.lock().unwrap().clone();
        file.read(f, dst, off)
    }

    fn data_extent(&self, f: &OpenFile, off: u64) -> SysResult<Option<(u64, u64)>> {
        let file = self.file.lock().unwrap().clone();
        file.data_extent(f, off)
    }
}
