//! tmpfs: an in-memory filesystem, used at /tmp and as the overlay's upper
//! layer. File data lives in the Sentry's heap for now (TODO(#4): memory file pages).

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use abi::Errno;

use super::pipe::Pipe;
use crate::vfs::{new_fs_id, DirEntry, FileOps, FileType, Inode, InodeRef, NewNode, OpenFile, SetAttr, Stat, Timespec};
use crate::SysResult;

static NEXT_INO: AtomicU64 = AtomicU64::new(2);

#[derive(Debug)]
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u64,
    atime: Timespec,
    mtime: Timespec,
    ctime: Timespec,
}

#[derive(Debug)]
enum Kind {
    File(Mutex<Vec<u8>>),
    Dir(Mutex<BTreeMap<Vec<u8>, Arc<TmpfsInode>>>),
    Symlink(Vec<u8>),
    Fifo(Arc<Pipe>),
}

/// A tmpfs inode.
#[derive(Debug)]
pub struct TmpfsInode {
    ino: u64,
    fs: u64,
    meta: Mutex<Meta>,
    kind: Kind,
    me: Weak<TmpfsInode>,
}

impl TmpfsInode {
    /// A new, empty tmpfs; returns its root directory.
    pub fn new_fs(mode: u32) -> Arc<TmpfsInode> {
        Self::make(
            new_fs_id(),
            FileType::Directory.mode_bits() | (mode & 0o7777),
            Kind::Dir(Mutex::new(BTreeMap::new())),
        )
    }

    fn make(fs: u64, mode: u32, kind: Kind) -> Arc<TmpfsInode> {
        let now = Timespec::now();
        let nlink = if matches!(kind, Kind::Dir(_)) { 2 } else { 1 };
        Arc::new_cyclic(|me| TmpfsInode {
            ino: NEXT_INO.fetch_add(1, Ordering::Relaxed),
            fs,
            meta: Mutex::new(Meta { mode, uid: 0, gid: 0, nlink, atime: now, mtime: now, ctime: now }),
            kind,
            me: me.clone(),
        })
    }

    fn dir(&self) -> SysResult<&Mutex<BTreeMap<Vec<u8>, Arc<TmpfsInode>>>> {
        match &self.kind {
            Kind::Dir(d) => Ok(d),
            _ => Err(Errno::ENOTDIR),
        }
    }

    fn touch(&self) {
        let now = Timespec::now();
        let mut m = self.meta.lock().unwrap();
        m.mtime = now;
        m.ctime = now;
    }

    /// Sets ownership and times when copying a node up from a lower layer.
    pub fn copy_meta_from(&self, st: &Stat) {
        let mut m = self.meta.lock().unwrap();
        m.mode = (m.mode & !0o7777) | (st.mode & 0o7777);
        m.uid = st.uid;
        m.gid = st.gid;
        m.atime = st.atime;
        m.mtime = st.mtime;
        m.ctime = st.ctime;
    }

    /// Replaces a regular file's content (overlay copy-up).
    pub fn set_data(&self, data: Vec<u8>) -> SysResult<()> {
        match &self.kind {
            Kind::File(d) => {
                *d.lock().unwrap() = data;
                Ok(())
            }
            _ => Err(Errno::EINVAL),
        }
    }

    /// Downcasts a generic inode to a tmpfs inode.
    pub fn from_ref(i: &InodeRef) -> Option<Arc<TmpfsInode>> {
        i.as_any().downcast_ref::<TmpfsInode>().and_then(|t| t.me.upgrade())
    }
}

impl Inode for TmpfsInode {
    fn stat(&self) -> SysResult<Stat> {
        let m = self.meta.lock().unwrap();
        let size = match &self.kind {
            Kind::File(d) => d.lock().unwrap().len() as u64,
            Kind::Dir(_) => 4096,
            Kind::Symlink(t) => t.len() as u64,
            Kind::Fifo(_) => 0,
        };
        Ok(Stat {
            dev: self.fs,
            ino: self.ino,
            mode: m.mode,
            nlink: m.nlink,
            uid: m.uid,
            gid: m.gid,
            rdev: 0,
            size,
            blksize: 4096,
            blocks: size.div_ceil(4096) * 8,
            atime: m.atime,
            mtime: m.mtime,
            ctime: m.ctime,
        })
    }

    fn lookup(&self, name: &[u8]) -> SysResult<InodeRef> {
        let d = self.dir()?.lock().unwrap();
        d.get(name).map(|i| i.clone() as InodeRef).ok_or(Errno::ENOENT)
    }

    fn readdir(&self) -> SysResult<Vec<DirEntry>> {
        let d = self.dir()?.lock().unwrap();
        Ok(d.iter()
            .map(|(n, i)| DirEntry {
                ino: i.ino,
                ftype: FileType::from_mode(i.meta.lock().unwrap().mode),
                name: n.clone(),
            })
            .collect())
    }

    fn readlink(&self) -> SysResult<Vec<u8>> {
        match &self.kind {
            Kind::Symlink(t) => Ok(t.clone()),
            _ => Err(Errno::EINVAL),
        }
    }

    fn open(self: Arc<Self>, flags: u32) -> SysResult<Arc<dyn FileOps>> {
        match &self.kind {
            Kind::Fifo(p) => p.open_fifo(flags),
            Kind::Symlink(_) => Err(Errno::ELOOP),
            _ => {
                if flags & 0o1000 != 0 {
                    if let Kind::File(d) = &self.kind {
                        if flags & 3 != 0 {
                            d.lock().unwrap().clear();
                            self.touch();
                        }
                    }
                }
                Ok(Arc::new(TmpfsFile { inode: self }))
            }
        }
    }

    fn create(&self, name: &[u8], node: NewNode) -> SysResult<InodeRef> {
        let mut d = self.dir()?.lock().unwrap();
        if d.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        let i = match node {
            NewNode::File { mode } => {
                Self::make(self.fs, 0o100000 | (mode & 0o7777), Kind::File(Mutex::new(Vec::new())))
            }
            NewNode::Dir { mode } => {
                self.meta.lock().unwrap().nlink += 1;
                Self::make(self.fs, 0o040000 | (mode & 0o7777), Kind::Dir(Mutex::new(BTreeMap::new())))
            }
            NewNode::Symlink { target } => Self::make(self.fs, 0o120777, Kind::Symlink(target)),
            NewNode::Fifo { mode } => Self::make(self.fs, 0o010000 | (mode & 0o7777), Kind::Fifo(Pipe::new())),
        };
        d.insert(name.to_vec(), i.clone());
        drop(d);
        self.touch();
        Ok(i)
    }

    fn unlink(&self, name: &[u8], dir: bool) -> SysResult<()> {
        let mut d = self.dir()?.lock().unwrap();
        let i = d.get(name).ok_or(Errno::ENOENT)?.clone();
        match (&i.kind, dir) {
            (Kind::Dir(c), true) => {
                if !c.lock().unwrap().is_empty() {
                    return Err(Errno::ENOTEMPTY);
                }
                self.meta.lock().unwrap().nlink -= 1;
            }
            (Kind::Dir(_), false) => return Err(Errno::EISDIR),
            (_, true) => return Err(Errno::ENOTDIR),
            _ => {}
        }
        d.remove(name);
        drop(d);
        i.meta.lock().unwrap().nlink -= 1;
        self.touch();
        Ok(())
    }

    fn rename(&self, old: &[u8], new_dir: &InodeRef, new: &[u8]) -> SysResult<()> {
        let target = TmpfsInode::from_ref(new_dir).ok_or(Errno::EXDEV)?;
        if target.fs != self.fs {
            return Err(Errno::EXDEV);
        }
        let node = self.dir()?.lock().unwrap().get(old).cloned().ok_or(Errno::ENOENT)?;
        // Moving a directory into itself or a descendant is EINVAL; approximated by identity.
        if Arc::ptr_eq(&node, &target) {
            return Err(Errno::EINVAL);
        }
        if let Some(existing) = target.dir()?.lock().unwrap().get(new).cloned() {
            if Arc::ptr_eq(&existing, &node) {
                return Ok(());
            }
            match (&existing.kind, &node.kind) {
                (Kind::Dir(c), Kind::Dir(_)) if !c.lock().unwrap().is_empty() => return Err(Errno::ENOTEMPTY),
                (Kind::Dir(_), Kind::Dir(_)) => {}
                (Kind::Dir(_), _) => return Err(Errno::EISDIR),
                (_, Kind::Dir(_)) => return Err(Errno::ENOTDIR),
                _ => {}
            }
        }
        self.dir()?.lock().unwrap().remove(old);
        target.dir()?.lock().unwrap().insert(new.to_vec(), node);
        self.touch();
        target.touch();
        Ok(())
    }

    fn link(&self, name: &[u8], target: &InodeRef) -> SysResult<()> {
        let t = TmpfsInode::from_ref(target).ok_or(Errno::EXDEV)?;
        if matches!(t.kind, Kind::Dir(_)) {
            return Err(Errno::EPERM);
        }
        let mut d = self.dir()?.lock().unwrap();
        if d.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        t.meta.lock().unwrap().nlink += 1;
        d.insert(name.to_vec(), t);
        Ok(())
    }

    fn setattr(&self, a: &SetAttr) -> SysResult<()> {
        if let Some(size) = a.size {
            match &self.kind {
                Kind::File(d) => d.lock().unwrap().resize(size as usize, 0),
                Kind::Dir(_) => return Err(Errno::EISDIR),
                _ => return Err(Errno::EINVAL),
            }
        }
        let mut m = self.meta.lock().unwrap();
        if let Some(mode) = a.mode {
            m.mode = (m.mode & !0o7777) | (mode & 0o7777);
        }
        if let Some(u) = a.uid {
            m.uid = u;
        }
        if let Some(g) = a.gid {
            m.gid = g;
        }
        if let Some(t) = a.atime {
            m.atime = t;
        }
        if let Some(t) = a.mtime {
            m.mtime = t;
        }
        m.ctime = Timespec::now();
        Ok(())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn fs_id(&self) -> u64 {
        self.fs
    }
}

#[derive(Debug)]
struct TmpfsFile {
    inode: Arc<TmpfsInode>,
}

impl FileOps for TmpfsFile {
    fn read(&self, _f: &OpenFile, buf: &mut [u8], off: u64) -> SysResult<usize> {
        match &self.inode.kind {
            Kind::File(d) => {
                let d = d.lock().unwrap();
                let off = off.min(d.len() as u64) as usize;
                let n = buf.len().min(d.len() - off);
                buf[..n].copy_from_slice(&d[off..off + n]);
                Ok(n)
            }
            Kind::Dir(_) => Err(Errno::EISDIR),
            _ => Err(Errno::EINVAL),
        }
    }

    fn write(&self, f: &OpenFile, data: &[u8], off: u64) -> SysResult<usize> {
        match &self.inode.kind {
            Kind::File(d) => {
                let mut d = d.lock().unwrap();
                let off = if f.flags() & 0o2000 != 0 { d.len() } else { off as usize };
                let end = off.checked_add(data.len()).ok_or(Errno::EFBIG)?;
                if end > (1 << 34) {
                    return Err(Errno::EFBIG);
                }
                if d.len() < end {
                    d.resize(end, 0);
                }
                d[off..end].copy_from_slice(data);
                drop(d);
                self.inode.touch();
                Ok(data.len())
            }
            Kind::Dir(_) => Err(Errno::EISDIR),
            _ => Err(Errno::EINVAL),
        }
    }
}
