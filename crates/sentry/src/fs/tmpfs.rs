//! tmpfs: an in-memory filesystem, used at /tmp and as the overlay's upper
//! layer. File data lives in the Sentry's heap until a file is mapped shared.
//! Each filesystem may have a size limit on its file data (ENOSPC past it).

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use super::pipe::Pipe;
use crate::mm::{Backing, IoDst, IoSrc, RangeAllocator};
use crate::vfs::{
    new_fs_id, DirEntry, FileOps, FileType, FsSpace, Inode, InodeRef, NewNode, OpenFile, SetAttr, Stat, Timespec,
};
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

/// A regular file's bytes, always in the memory file (never on the Sentry's
/// heap: a file the app writes is the app's memory, charged to it): in
/// pieces of `CHUNK` bytes, each a range of its own made when first written
/// (a hole reads as zeros until then), and once the file is mapped
/// MAP_SHARED, in one range every mapping and read/write shares.
#[derive(Debug)]
enum FileData {
    /// `pages` is how many pages the pieces hold data in: what counts
    /// against the filesystem's size, as Linux counts a tmpfs file's
    /// blocks (a sparse file costs only what was written).
    Chunks {
        chunks: BTreeMap<u64, Chunk>,
        size: u64,
        pages: u64,
    },
    Mem {
        backing: Arc<Backing>,
        size: u64,
    },
}

/// A piece of a file: its memory-file range and which of its pages hold data.
#[derive(Debug)]
struct Chunk {
    backing: Arc<Backing>,
    present: u16,
}

/// The size of a piece of a file that is not mapped shared: 16 pages, one
/// bit each in `Chunk::present`.
const CHUNK: u64 = 64 << 10;

/// The bits of `Chunk::present` for the pages bytes `[from, to)` of a piece touch.
fn page_bits(from: u64, to: u64) -> u16 {
    let (first, last) = (from / PAGE, (to - 1) / PAGE);
    (((1u32 << (last + 1)) - (1u32 << first)) & 0xffff) as u16
}

/// Largest tmpfs file: 1 TiB of address space (a sparse file costs only
/// the pages written).
const MAX_FILE: u64 = 1 << 40;

const PAGE: u64 = 4096;

/// The file data one tmpfs holds, counted in whole pages as Linux does, and
/// its limit; and where in the memory file it lives.
#[derive(Debug)]
pub struct Space {
    used: AtomicU64,
    limit: u64,
    alloc: Arc<RangeAllocator>,
}

impl Space {
    fn new(limit: Option<u64>, alloc: Arc<RangeAllocator>) -> Arc<Space> {
        Arc::new(Space { used: AtomicU64::new(0), limit: limit.unwrap_or(u64::MAX), alloc })
    }

    /// Accounts a file growing or shrinking from `old` to `new` bytes.
    fn resize(&self, old: u64, new: u64) -> SysResult<()> {
        if new <= old {
            self.shrink(old, new);
            return Ok(());
        }
        let more = (new.div_ceil(PAGE) - old.div_ceil(PAGE)) * PAGE;
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(more).filter(|&total| total <= self.limit)
            })
            .map(|_| ())
            .map_err(|_| errno!(ENOSPC))
    }

    fn shrink(&self, old: u64, new: u64) {
        let less = (old.div_ceil(PAGE) - new.div_ceil(PAGE)) * PAGE;
        self.used.fetch_sub(less, Ordering::Relaxed);
    }

    /// Bytes of file data held now.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// The limit, if any.
    pub fn limit(&self) -> Option<u64> {
        (self.limit != u64::MAX).then_some(self.limit)
    }
}

impl FileData {
    fn empty() -> FileData {
        FileData::Chunks { chunks: BTreeMap::new(), size: 0, pages: 0 }
    }

    fn len(&self) -> u64 {
        match self {
            FileData::Chunks { size, .. } | FileData::Mem { size, .. } => *size,
        }
    }

    /// Bytes of memory the file's data takes (tmpfs's block count).
    fn allocated(&self) -> u64 {
        match self {
            FileData::Chunks { pages, .. } => pages * PAGE,
            FileData::Mem { backing, .. } => backing.len,
        }
    }

    /// Reads at `off` into `dst`, straight from the memory file (holes
    /// as zeros): up to the end of the file or a fault in `dst`.
    fn read(&self, off: u64, dst: &mut dyn IoDst) -> SysResult<usize> {
        let len = self.len();
        let off = off.min(len);
        let n = (dst.space() as u64).min(len - off) as usize;
        match self {
            FileData::Chunks { chunks, .. } => {
                let mut zeros = Vec::new();
                let mut done = 0;
                while done < n {
                    let at = off + done as u64;
                    let (index, within) = (at / CHUNK, at % CHUNK);
                    let take = ((CHUNK - within) as usize).min(n - done);
                    let got = match chunks.get(&index) {
                        Some(chunk) => dst.copy_from(done, &chunk.backing, within, take),
                        None => {
                            zeros.resize(take, 0);
                            dst.copy_out(done, &zeros[..take])
                        }
                    };
                    match got {
                        Ok(got) if got < take => return Ok(done + got),
                        Ok(got) => done += got,
                        Err(_) if done > 0 => break,
                        Err(e) => return Err(e),
                    }
                }
                Ok(done)
            }
            FileData::Mem { backing, .. } => dst.copy_from(0, backing, off, n),
        }
    }

    /// Writes `src` at `off`, straight into the memory file: how many
    /// bytes went (fewer at a fault in `src`, or when space ran out after
    /// some did).
    fn write(&mut self, space: &Space, off: u64, src: &dyn IoSrc) -> SysResult<usize> {
        let len = src.size();
        let end = off.checked_add(len as u64).ok_or(errno!(EFBIG))?;
        if end > MAX_FILE {
            return Err(errno!(EFBIG));
        }
        match self {
            FileData::Chunks { chunks, size, pages } => {
                let mut done = 0;
                while done < len {
                    let at = off + done as u64;
                    let (index, within) = (at / CHUNK, at % CHUNK);
                    let take = ((CHUNK - within) as usize).min(len - done);
                    let bits = page_bits(within, within + take as u64);
                    let fresh = bits & !chunks.get(&index).map_or(0, |c| c.present);
                    // Pages written for the first time count against the size first.
                    let step = space.resize(0, u64::from(fresh.count_ones()) * PAGE).and_then(|()| {
                        let chunk = match chunks.get_mut(&index) {
                            Some(chunk) => chunk,
                            None => match space.alloc.alloc(CHUNK) {
                                Ok(backing) => chunks.entry(index).or_insert(Chunk { backing, present: 0 }),
                                Err(e) => {
                                    space.shrink(u64::from(fresh.count_ones()) * PAGE, 0);
                                    return Err(e);
                                }
                            },
                        };
                        let got = src.copy_to(done, &chunk.backing, within, take);
                        // Fresh pages nothing reached are not the file's after all.
                        let reached = match got {
                            Ok(n) if n > 0 => page_bits(within, within + n as u64),
                            _ => 0,
                        };
                        let kept = fresh & reached;
                        space.shrink(u64::from((fresh & !kept).count_ones()) * PAGE, 0);
                        chunk.present |= kept;
                        *pages += u64::from(kept.count_ones());
                        got
                    });
                    match step {
                        Ok(got) => {
                            done += got;
                            *size = (*size).max(off + done as u64);
                            if got < take {
                                break;
                            }
                        }
                        Err(_) if done > 0 => break,
                        Err(e) => return Err(e),
                    }
                }
                Ok(done)
            }
            FileData::Mem { backing, size } => {
                if end > backing.len {
                    // Mappings keep the pages they have; the file outgrew them.
                    return Err(errno!(EFBIG));
                }
                let got = src.copy_to(0, backing, off, len)?;
                *size = (*size).max(off + got as u64);
                Ok(got)
            }
        }
    }

    /// What the file holds of its filesystem's space: the pages its pieces
    /// hold data in, or every memory-file page reserved for its shared
    /// mappings.
    fn charged(&self) -> u64 {
        self.allocated()
    }

    /// Sets the size: growing makes a hole, shrinking frees the pages past
    /// the end (and the space they were charged).
    fn resize(&mut self, space: &Space, new: u64) -> SysResult<()> {
        if new > MAX_FILE {
            return Err(errno!(EFBIG));
        }
        match self {
            FileData::Chunks { chunks, size, pages } => {
                if new < *size {
                    let mut freed = 0u64;
                    chunks.retain(|&index, chunk| {
                        let keep = index * CHUNK < new;
                        if !keep {
                            freed += u64::from(chunk.present.count_ones());
                        }
                        keep
                    });
                    let within = new % CHUNK;
                    if let (Some(last), true) = (chunks.get_mut(&(new / CHUNK)), within != 0) {
                        // Pages wholly past the end go; the rest of the page the end is in reads as zero.
                        let gone = last.present & !page_bits(0, within);
                        freed += u64::from(gone.count_ones());
                        last.present &= !gone;
                        last.backing.zero(within, CHUNK - within)?;
                    }
                    *pages -= freed;
                    space.shrink(freed * PAGE, 0);
                }
                *size = new;
            }
            FileData::Mem { backing, size } => {
                if new > backing.len {
                    // Mappings keep the pages they have; the file outgrew them.
                    return Err(errno!(EFBIG));
                }
                if new < *size {
                    backing.zero(new, *size - new)?;
                }
                *size = new;
            }
        }
        Ok(())
    }
}

#[derive(Debug)]
enum Kind {
    File(Mutex<FileData>),
    Dir(Mutex<BTreeMap<Vec<u8>, Arc<TmpfsInode>>>),
    Symlink(Vec<u8>),
    Fifo(Arc<Pipe>),
}

/// A tmpfs inode.
#[derive(Debug)]
pub struct TmpfsInode {
    ino: u64,
    fs: u64,
    space: Arc<Space>,
    /// Open files of this inode; with no name left either, its data goes.
    opens: AtomicU64,
    meta: Mutex<Meta>,
    kind: Kind,
    me: Weak<TmpfsInode>,
}

impl TmpfsInode {
    /// A new, empty tmpfs whose files live in `alloc`'s memory file;
    /// returns its root directory.
    pub fn new_fs(mode: u32, alloc: &Arc<RangeAllocator>) -> Arc<TmpfsInode> {
        Self::new_fs_limited(mode, None, alloc)
    }

    /// A new, empty tmpfs holding at most `limit` bytes of file data.
    pub fn new_fs_limited(mode: u32, limit: Option<u64>, alloc: &Arc<RangeAllocator>) -> Arc<TmpfsInode> {
        Self::make(
            new_fs_id(),
            &Space::new(limit, alloc.clone()),
            FileType::Directory.mode_bits() | (mode & 0o7777),
            Kind::Dir(Mutex::new(BTreeMap::new())),
        )
    }

    /// The inode number, unique among all tmpfs inodes.
    pub fn ino(&self) -> u64 {
        self.ino
    }

    /// The file data this filesystem holds, and its limit.
    pub fn space(&self) -> &Space {
        &self.space
    }

    fn make(fs: u64, space: &Arc<Space>, mode: u32, kind: Kind) -> Arc<TmpfsInode> {
        let now = Timespec::now();
        let nlink = if matches!(kind, Kind::Dir(_)) { 2 } else { 1 };
        Arc::new_cyclic(|me| TmpfsInode {
            ino: NEXT_INO.fetch_add(1, Ordering::Relaxed),
            fs,
            space: space.clone(),
            opens: AtomicU64::new(0),
            meta: Mutex::new(Meta { mode, uid: 0, gid: 0, nlink, atime: now, mtime: now, ctime: now }),
            kind,
            me: me.clone(),
        })
    }

    fn dir(&self) -> SysResult<&Mutex<BTreeMap<Vec<u8>, Arc<TmpfsInode>>>> {
        match &self.kind {
            Kind::Dir(d) => Ok(d),
            _ => Err(errno!(ENOTDIR)),
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

    /// Sets the link count (overlay copy-up of a file with several names,
    /// the others still in the lower layer).
    pub fn set_nlink(&self, nlink: u64) {
        self.meta.lock().unwrap().nlink = nlink;
    }

    /// Gives `target` one more name here without counting a new link: the
    /// overlay moving up a name that its link count already includes.
    pub fn link_counted(&self, name: &[u8], target: &Arc<TmpfsInode>) -> SysResult<()> {
        let mut d = self.dir()?.lock().unwrap();
        if d.contains_key(name) {
            return Err(errno!(EEXIST));
        }
        d.insert(name.to_vec(), target.clone());
        Ok(())
    }

    /// Writes `data` at `off` of a regular file (overlay copy-up fills a
    /// copy a piece at a time), growing it as needed.
    pub fn write_at(&self, off: u64, data: &[u8]) -> SysResult<()> {
        match &self.kind {
            Kind::File(d) => match d.lock().unwrap().write(&self.space, off, &data)? {
                n if n == data.len() => Ok(()),
                _ => Err(errno!(EIO)),
            },
            _ => Err(errno!(EINVAL)),
        }
    }

    /// Sets a regular file's size (the rest of an overlay copy-up whose
    /// last bytes are a hole).
    pub fn set_size(&self, size: u64) -> SysResult<()> {
        match &self.kind {
            Kind::File(d) => d.lock().unwrap().resize(&self.space, size),
            _ => Err(errno!(EINVAL)),
        }
    }

    /// Moves a regular file's bytes into the memory file (once) and returns the range that
    /// MAP_SHARED mappings of it use. Room is reserved for growth: a file mapped shared
    /// cannot later grow past that room (EFBIG).
    pub fn shared_pages(&self, alloc: &Arc<RangeAllocator>, want: u64) -> SysResult<Arc<Backing>> {
        let Kind::File(d) = &self.kind else { return Err(errno!(ENODEV)) };
        let mut d = d.lock().unwrap();
        if let FileData::Mem { backing, .. } = &*d {
            if backing.len >= want {
                return Ok(backing.clone());
            }
            return Err(errno!(ENOMEM));
        }
        let size = d.len();
        let room = want.max(size).max(64 << 10).checked_mul(2).ok_or(errno!(ENOMEM))?.min(MAX_FILE);
        // The pages reserved for mappings count against the filesystem's
        // size, like the bytes they replace.
        self.space.resize(d.charged(), room).map_err(|_| errno!(ENOMEM))?;
        let backing = match alloc.alloc(room) {
            Ok(b) => b,
            Err(e) => {
                self.space.shrink(room, d.charged());
                return Err(e);
            }
        };
        if let FileData::Chunks { chunks, .. } = &*d {
            for (index, chunk) in chunks {
                let at = index * CHUNK;
                let len = CHUNK.min(size.saturating_sub(at));
                alloc.file.copy(chunk.backing.off, backing.off + at, len).map_err(|_| errno!(ENOMEM))?;
            }
        }
        *d = FileData::Mem { backing: backing.clone(), size };
        Ok(backing)
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
            Kind::File(d) => d.lock().unwrap().len(),
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
            blocks: match &self.kind {
                Kind::File(d) => d.lock().unwrap().allocated() / 512,
                _ => size.div_ceil(4096) * 8,
            },
            atime: m.atime,
            mtime: m.mtime,
            ctime: m.ctime,
        })
    }

    fn lookup(&self, name: &[u8]) -> SysResult<InodeRef> {
        let d = self.dir()?.lock().unwrap();
        d.get(name).map(|i| i.clone() as InodeRef).ok_or(errno!(ENOENT))
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
            _ => Err(errno!(EINVAL)),
        }
    }

    fn open(self: Arc<Self>, flags: u32) -> SysResult<Arc<dyn FileOps>> {
        match &self.kind {
            Kind::Fifo(p) => p.open_fifo(flags),
            Kind::Symlink(_) => Err(errno!(ELOOP)),
            _ => {
                if flags & 0o1000 != 0 {
                    if let Kind::File(d) = &self.kind {
                        if flags & 3 != 0 {
                            d.lock().unwrap().resize(&self.space, 0)?;
                            self.touch();
                        }
                    }
                }
                self.opens.fetch_add(1, Ordering::AcqRel);
                Ok(Arc::new(TmpfsFile { inode: self }))
            }
        }
    }

    fn create(&self, name: &[u8], node: NewNode) -> SysResult<InodeRef> {
        let mut d = self.dir()?.lock().unwrap();
        if d.contains_key(name) {
            return Err(errno!(EEXIST));
        }
        let i = match node {
            NewNode::File { mode } => {
                let data = Kind::File(Mutex::new(FileData::empty()));
                Self::make(self.fs, &self.space, 0o100000 | (mode & 0o7777), data)
            }
            NewNode::Dir { mode } => {
                self.meta.lock().unwrap().nlink += 1;
                Self::make(self.fs, &self.space, 0o040000 | (mode & 0o7777), Kind::Dir(Mutex::new(BTreeMap::new())))
            }
            NewNode::Symlink { target } => Self::make(self.fs, &self.space, 0o120777, Kind::Symlink(target)),
            NewNode::Fifo { mode } => {
                Self::make(self.fs, &self.space, 0o010000 | (mode & 0o7777), Kind::Fifo(Pipe::new()))
            }
        };
        d.insert(name.to_vec(), i.clone());
        drop(d);
        self.touch();
        Ok(i)
    }

    fn unlink(&self, name: &[u8], dir: bool) -> SysResult<()> {
        let mut d = self.dir()?.lock().unwrap();
        let i = d.get(name).ok_or(errno!(ENOENT))?.clone();
        match (&i.kind, dir) {
            (Kind::Dir(c), true) => {
                if !c.lock().unwrap().is_empty() {
                    return Err(errno!(ENOTEMPTY));
                }
                self.meta.lock().unwrap().nlink -= 1;
            }
            (Kind::Dir(_), false) => return Err(errno!(EISDIR)),
            (_, true) => return Err(errno!(ENOTDIR)),
            _ => {}
        }
        d.remove(name);
        drop(d);
        i.meta.lock().unwrap().nlink -= 1;
        i.free_if_unused();
        self.touch();
        Ok(())
    }

    fn rename(&self, old: &[u8], new_dir: &InodeRef, new: &[u8]) -> SysResult<()> {
        let target = TmpfsInode::from_ref(new_dir).ok_or(errno!(EXDEV))?;
        if target.fs != self.fs {
            return Err(errno!(EXDEV));
        }
        let node = self.dir()?.lock().unwrap().get(old).cloned().ok_or(errno!(ENOENT))?;
        // Moving a directory into itself or a descendant is EINVAL; approximated by identity.
        if Arc::ptr_eq(&node, &target) {
            return Err(errno!(EINVAL));
        }
        if let Some(existing) = target.dir()?.lock().unwrap().get(new).cloned() {
            if Arc::ptr_eq(&existing, &node) {
                return Ok(());
            }
            match (&existing.kind, &node.kind) {
                (Kind::Dir(c), Kind::Dir(_)) if !c.lock().unwrap().is_empty() => return Err(errno!(ENOTEMPTY)),
                (Kind::Dir(_), Kind::Dir(_)) => {}
                (Kind::Dir(_), _) => return Err(errno!(EISDIR)),
                (_, Kind::Dir(_)) => return Err(errno!(ENOTDIR)),
                _ => {}
            }
        }
        self.dir()?.lock().unwrap().remove(old);
        let replaced = target.dir()?.lock().unwrap().insert(new.to_vec(), node);
        if let Some(replaced) = replaced {
            if !matches!(replaced.kind, Kind::Dir(_)) {
                let mut m = replaced.meta.lock().unwrap();
                m.nlink = m.nlink.saturating_sub(1);
                drop(m);
                replaced.free_if_unused();
            }
        }
        self.touch();
        target.touch();
        Ok(())
    }

    fn link(&self, name: &[u8], target: &InodeRef) -> SysResult<()> {
        let t = TmpfsInode::from_ref(target).ok_or(errno!(EXDEV))?;
        if matches!(t.kind, Kind::Dir(_)) {
            return Err(errno!(EPERM));
        }
        let mut d = self.dir()?.lock().unwrap();
        if d.contains_key(name) {
            return Err(errno!(EEXIST));
        }
        t.meta.lock().unwrap().nlink += 1;
        d.insert(name.to_vec(), t);
        Ok(())
    }

    fn setattr(&self, a: &SetAttr) -> SysResult<()> {
        if let Some(size) = a.size {
            match &self.kind {
                Kind::File(d) => d.lock().unwrap().resize(&self.space, size)?,
                Kind::Dir(_) => return Err(errno!(EISDIR)),
                _ => return Err(errno!(EINVAL)),
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

    fn shared_pages(&self, alloc: &Arc<RangeAllocator>, want: u64) -> SysResult<Arc<Backing>> {
        TmpfsInode::shared_pages(self, alloc, want)
    }

    /// The filesystem's limit, or half the host's memory as Linux sizes a
    /// tmpfs without one, in pages; inodes are not counted, so as many are
    /// free as pages.
    fn statfs(&self) -> SysResult<FsSpace> {
        let page = PAGE;
        let total = self.space.limit().unwrap_or_else(|| host::sys::total_ram().unwrap_or(8 << 30) / 2);
        let blocks = total / page;
        let free = blocks.saturating_sub(self.space.used().div_ceil(page));
        Ok(FsSpace {
            magic: None,
            bsize: page,
            blocks,
            bfree: free,
            bavail: free,
            files: blocks,
            ffree: free,
            namelen: 255,
        })
    }

    fn fs_id(&self) -> u64 {
        self.fs
    }
}

impl TmpfsInode {
    /// Frees a regular file's data once it has neither a name nor an open
    /// file, as Linux does: whoever still caches the inode keeps no space.
    /// Shared mappings keep their own pages.
    fn free_if_unused(&self) {
        if self.meta.lock().unwrap().nlink > 0 || self.opens.load(Ordering::Acquire) > 0 {
            return;
        }
        if let Kind::File(d) = &self.kind {
            let mut d = d.lock().unwrap();
            self.space.shrink(d.charged(), 0);
            *d = FileData::empty();
        }
    }
}

impl Drop for TmpfsInode {
    fn drop(&mut self) {
        if let Kind::File(d) = &self.kind {
            let charged = d.lock().unwrap_or_else(|e| e.into_inner()).charged();
            self.space.shrink(charged, 0);
        }
    }
}

#[derive(Debug)]
struct TmpfsFile {
    inode: Arc<TmpfsInode>,
}

impl Drop for TmpfsFile {
    fn drop(&mut self) {
        self.inode.opens.fetch_sub(1, Ordering::AcqRel);
        self.inode.free_if_unused();
    }
}

impl FileOps for TmpfsFile {
    fn data_extent(&self, _f: &OpenFile, off: u64) -> SysResult<Option<(u64, u64)>> {
        let Kind::File(d) = &self.inode.kind else { return Err(errno!(EINVAL)) };
        match &*d.lock().unwrap() {
            // The next piece ever written; what lies between pieces is a hole.
            FileData::Chunks { chunks, size, .. } => Ok(chunks
                .range(off / CHUNK..)
                .next()
                .map(|(&index, _)| ((index * CHUNK).max(off), ((index + 1) * CHUNK).min(*size)))
                .filter(|(start, end)| start < end)),
            FileData::Mem { size, .. } => Ok((off < *size).then_some((off, *size))),
        }
    }

    fn read(&self, _f: &OpenFile, dst: &mut dyn IoDst, off: u64) -> SysResult<usize> {
        match &self.inode.kind {
            Kind::File(d) => d.lock().unwrap().read(off, dst),
            Kind::Dir(_) => Err(errno!(EISDIR)),
            _ => Err(errno!(EINVAL)),
        }
    }

    fn write(&self, f: &OpenFile, src: &dyn IoSrc, off: u64) -> SysResult<usize> {
        match &self.inode.kind {
            Kind::File(d) => {
                let mut d = d.lock().unwrap();
                let off = if f.flags() & 0o2000 != 0 { d.len() } else { off };
                let n = d.write(&self.inode.space, off, src)?;
                drop(d);
                self.inode.touch();
                Ok(n)
            }
            Kind::Dir(_) => Err(errno!(EISDIR)),
            _ => Err(errno!(EINVAL)),
        }
    }
}
