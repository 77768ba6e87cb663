//! The overlay: a read-only lower tree (the Gofer's) under a tmpfs upper tree.
//! Writes copy files up; deletions of lower names leave whiteouts.
//!
//! Invariants: a node's `upper` once set never changes; a name is visible if it
//! is in the upper dir, or in the lower dir and neither whited out nor hidden
//! by an opaque directory. Directories with lower content are not renamed
//! (EXDEV, as Linux overlayfs without redirect_dir), so callers copy instead.

use std::any::Any;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};

use abi::Errno;

use super::gofer::GoferInode;
use super::tmpfs::TmpfsInode;
use crate::vfs::{new_fs_id, DirEntry, FileOps, FileType, Inode, InodeRef, NewNode, SetAttr, Stat};
use crate::SysResult;

#[derive(Debug)]
pub struct OverlayInode {
    fs: u64,
    lower: Option<InodeRef>,
    upper: Mutex<Option<Arc<TmpfsInode>>>,
    parent: Option<Arc<OverlayInode>>,
    name: Vec<u8>,
    children: Mutex<HashMap<Vec<u8>, Arc<OverlayInode>>>,
    whiteouts: Mutex<HashSet<Vec<u8>>>,
    opaque: Mutex<bool>,
    me: Weak<OverlayInode>,
}

impl OverlayInode {
    /// An overlay root over `lower` with a fresh tmpfs upper.
    pub fn new_root(lower: InodeRef) -> Arc<OverlayInode> {
        let upper = TmpfsInode::new_fs(0o755);
        if let Ok(st) = lower.stat() {
            upper.copy_meta_from(&st);
        }
        Self::node(new_fs_id(), Some(lower), Some(upper), None, Vec::new())
    }

    fn node(
        fs: u64,
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
            children: Mutex::new(HashMap::new()),
            whiteouts: Mutex::new(HashSet::new()),
            opaque: Mutex::new(false),
            me: me.clone(),
        })
    }

    fn upper(&self) -> Option<Arc<TmpfsInode>> {
        self.upper.lock().unwrap().clone()
    }

    fn this(&self) -> Arc<OverlayInode> {
        self.me.upgrade().expect("overlay inode used after drop")
    }

    fn from_ref(i: &InodeRef) -> Option<Arc<OverlayInode>> {
        i.as_any().downcast_ref::<OverlayInode>().map(|o| o.this())
    }

    fn current(&self) -> SysResult<InodeRef> {
        if let Some(u) = self.upper() {
            return Ok(u);
        }
        self.lower.clone().ok_or(Errno::ENOENT)
    }

    /// Makes sure this node exists in the upper tree, copying it (not its children) up.
    fn copy_up(&self) -> SysResult<Arc<TmpfsInode>> {
        if let Some(u) = self.upper() {
            return Ok(u);
        }
        let parent = self.parent.as_ref().ok_or(Errno::EIO)?;
        let pu = parent.copy_up()?;
        let lower = self.lower.as_ref().ok_or(Errno::ENOENT)?;
        let st = lower.stat()?;
        let node = match st.file_type() {
            FileType::Directory => NewNode::Dir { mode: st.mode },
            FileType::Regular => NewNode::File { mode: st.mode },
            FileType::Symlink => NewNode::Symlink { target: lower.readlink()? },
            FileType::Fifo => NewNode::Fifo { mode: st.mode },
            _ => return Err(Errno::EPERM),
        };
        let created = pu.create(&self.name, node)?;
        let up = TmpfsInode::from_ref(&created).ok_or(Errno::EIO)?;
        if st.file_type() == FileType::Regular {
            let data = match GoferInode::from_ref(lower) {
                Some(g) => g.read_all()?,
                None => Vec::new(),
            };
            up.set_data(data)?;
        }
        up.copy_meta_from(&st);
        *self.upper.lock().unwrap() = Some(up.clone());
        Ok(up)
    }

    fn child(&self, name: &[u8]) -> SysResult<Arc<OverlayInode>> {
        if let Some(c) = self.children.lock().unwrap().get(name) {
            return Ok(c.clone());
        }
        let upper = match self.upper() {
            Some(u) => match u.lookup(name) {
                Ok(i) => Some(TmpfsInode::from_ref(&i).ok_or(Errno::EIO)?),
                Err(Errno::ENOENT) => None,
                Err(e) => return Err(e),
            },
            None => None,
        };
        let hidden = *self.opaque.lock().unwrap() || self.whiteouts.lock().unwrap().contains(name);
        let lower = match (&self.lower, hidden) {
            (Some(l), false) => match l.lookup(name) {
                Ok(i) => Some(i),
                Err(Errno::ENOENT) => None,
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
            return Err(Errno::ENOENT);
        }
        let c = Self::node(self.fs, lower, upper, Some(self.this()), name.to_vec());
        self.children.lock().unwrap().insert(name.to_vec(), c.clone());
        Ok(c)
    }

    fn merged(&self) -> SysResult<BTreeMap<Vec<u8>, DirEntry>> {
        let mut out = BTreeMap::new();
        let hidden_all = *self.opaque.lock().unwrap();
        if let (Some(l), false) = (&self.lower, hidden_all) {
            let wo = self.whiteouts.lock().unwrap().clone();
            for e in l.readdir()? {
                if !wo.contains(&e.name) {
                    out.insert(e.name.clone(), e);
                }
            }
        }
        if let Some(u) = self.upper() {
            for e in u.readdir()? {
                out.insert(e.name.clone(), e);
            }
        }
        Ok(out)
    }
}

impl Inode for OverlayInode {
    fn stat(&self) -> SysResult<Stat> {
        let mut st = self.current()?.stat()?;
        if st.file_type() == FileType::Directory && self.upper().is_some() && self.lower.is_some() {
            // Keep the lower identity so that inode numbers stay stable across copy-up.
            if let Some(l) = &self.lower {
                let ls = l.stat()?;
                st.ino = ls.ino;
                st.nlink = ls.nlink.max(st.nlink);
            }
        }
        st.dev = self.fs;
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
        if writing && self.current()?.stat()?.file_type() == FileType::Regular {
            let up: InodeRef = self.copy_up()?;
            return up.open(flags);
        }
        self.current()?.open(flags)
    }

    fn create(&self, name: &[u8], node: NewNode) -> SysResult<InodeRef> {
        match self.child(name) {
            Ok(_) => return Err(Errno::EEXIST),
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(e),
        }
        let up = self.copy_up()?;
        let is_dir = matches!(node, NewNode::Dir { .. });
        let created = up.create(name, node)?;
        let was_whiteout = self.whiteouts.lock().unwrap().remove(name);
        self.children.lock().unwrap().remove(name);
        let c = self.child(name)?;
        if is_dir && was_whiteout {
            *c.opaque.lock().unwrap() = true;
        }
        let _ = created;
        Ok(c)
    }

    fn unlink(&self, name: &[u8], dir: bool) -> SysResult<()> {
        let c = self.child(name)?;
        let ft = c.stat()?.file_type();
        match (ft == FileType::Directory, dir) {
            (true, false) => return Err(Errno::EISDIR),
            (false, true) => return Err(Errno::ENOTDIR),
            (true, true) if !c.merged()?.is_empty() => return Err(Errno::ENOTEMPTY),
            _ => {}
        }
        let up = self.copy_up()?;
        if c.upper().is_some() {
            up.unlink(name, dir)?;
        }
        if c.lower.is_some() {
            self.whiteouts.lock().unwrap().insert(name.to_vec());
        }
        self.children.lock().unwrap().remove(name);
        Ok(())
    }

    fn rename(&self, old: &[u8], new_dir: &InodeRef, new: &[u8]) -> SysResult<()> {
        let nd = OverlayInode::from_ref(new_dir).ok_or(Errno::EXDEV)?;
        if nd.fs != self.fs {
            return Err(Errno::EXDEV);
        }
        let c = self.child(old)?;
        if c.lower.is_some() && c.stat()?.file_type() == FileType::Directory {
            return Err(Errno::EXDEV);
        }
        if let Ok(existing) = nd.child(new) {
            let et = existing.stat()?.file_type();
            let ct = c.stat()?.file_type();
            if et == FileType::Directory && ct != FileType::Directory {
                return Err(Errno::EISDIR);
            }
            if et != FileType::Directory && ct == FileType::Directory {
                return Err(Errno::ENOTDIR);
            }
            if et == FileType::Directory && !existing.merged()?.is_empty() {
                return Err(Errno::ENOTEMPTY);
            }
            if existing.lower.is_some() {
                nd.whiteouts.lock().unwrap().insert(new.to_vec());
            }
        }
        c.copy_up()?;
        let src_up = self.copy_up()?;
        let dst_up: InodeRef = nd.copy_up()?;
        src_up.rename(old, &dst_up, new)?;
        if c.lower.is_some() {
            self.whiteouts.lock().unwrap().insert(old.to_vec());
        }
        self.children.lock().unwrap().remove(old);
        nd.children.lock().unwrap().remove(new);
        // The moved node now lives only in the upper layer under its new name; a whiteout
        // at the new name would hide it from the lower merge, which it no longer needs.
        Ok(())
    }

    fn link(&self, name: &[u8], target: &InodeRef) -> SysResult<()> {
        let t = OverlayInode::from_ref(target).ok_or(Errno::EXDEV)?;
        let tu: InodeRef = t.copy_up()?;
        let up = self.copy_up()?;
        up.link(name, &tu)?;
        self.whiteouts.lock().unwrap().remove(name);
        self.children.lock().unwrap().remove(name);
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

    fn fs_id(&self) -> u64 {
        self.fs
    }
}
