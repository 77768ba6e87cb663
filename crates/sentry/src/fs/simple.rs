//! Building blocks for synthetic filesystems (procfs, devfs): read-only files,
//! symlinks and directories whose content is computed by a closure on demand.
//!
//! Nothing here caches: a directory lists its entries afresh on every lookup and
//! readdir, and a file takes one snapshot of its content per open, so a reader
//! sees a consistent text however small its reads are (as Linux's seq_file does).

use std::any::Any;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::mm::{IoDst, IoSrc};
use crate::vfs::{DirEntry, FileOps, FileType, Inode, InodeRef, NewNode, OpenFile, Stat, Timespec};
use crate::SysResult;

/// Produces a file's content or a symlink's target.
pub type ContentFn = Arc<dyn Fn() -> SysResult<Vec<u8>> + Send + Sync>;
/// Produces a directory's entries: (name, inode) pairs without `.` and `..`.
pub type EntriesFn = Arc<dyn Fn() -> SysResult<Vec<(Vec<u8>, InodeRef)>> + Send + Sync>;

const O_ACCMODE: u32 = 3;

/// A fresh inode number, for trees built once (devfs).
pub fn next_ino() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(2);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A stable inode number for the node at `path`, for trees rebuilt on every lookup
/// (procfs). Stability matters: fts (find, du, rm -r) checks that a directory's
/// ino is unchanged between its lstat and the fstat after opening it.
pub fn path_ino(path: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    path.hash(&mut h);
    // 0 means "no inode" to some readdir users; keep clear of it (and of 1, 2).
    h.finish().max(3)
}

/// Identity and timestamps shared by the three node kinds.
#[derive(Debug, Clone, Copy)]
struct NodeId {
    fs_id: u64,
    ino: u64,
    created: Timespec,
}

impl NodeId {
    fn new(fs_id: u64, ino: u64) -> NodeId {
        NodeId { fs_id, ino, created: Timespec::now() }
    }

    fn stat(&self, mode: u32, nlink: u64, size: u64) -> Stat {
        Stat {
            dev: self.fs_id,
            ino: self.ino,
            mode,
            nlink,
            blksize: 1024,
            size,
            atime: self.created,
            mtime: self.created,
            ctime: self.created,
            ..Default::default()
        }
    }
}

/// A regular file whose content is generated at open; read-only, or with a
/// `store` that takes what one write(2) gives (a /proc knob).
pub struct SimpleFile {
    id: NodeId,
    mode: u32,
    content: ContentFn,
    store: Option<StoreFn>,
}

/// Takes the bytes of one write to a `SimpleFile`.
pub type StoreFn = Arc<dyn Fn(&[u8]) -> SysResult<()> + Send + Sync>;

/// The most one write to a `SimpleFile` passes to its store: knobs take a
/// number or a word.
const MAX_STORE: usize = 4096;

impl std::fmt::Debug for SimpleFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimpleFile").field("ino", &self.id.ino).field("mode", &format_args!("{:o}", self.mode)).finish()
    }
}

impl SimpleFile {
    /// A file with permission bits `perm` (e.g. 0o444) in filesystem `fs_id`.
    pub fn new(
        fs_id: u64,
        ino: u64,
        perm: u32,
        content: impl Fn() -> SysResult<Vec<u8>> + Send + Sync + 'static,
    ) -> Arc<SimpleFile> {
        Arc::new(SimpleFile {
            id: NodeId::new(fs_id, ino),
            mode: perm & 0o7777,
            content: Arc::new(content),
            store: None,
        })
    }

    /// A file that can also be written: each write(2) of at most 4 KiB goes
    /// to `store` whole (as a /proc knob takes it), which may refuse it.
    pub fn writable(
        fs_id: u64,
        ino: u64,
        perm: u32,
        content: impl Fn() -> SysResult<Vec<u8>> + Send + Sync + 'static,
        store: impl Fn(&[u8]) -> SysResult<()> + Send + Sync + 'static,
    ) -> Arc<SimpleFile> {
        Arc::new(SimpleFile {
            id: NodeId::new(fs_id, ino),
            mode: perm & 0o7777,
            content: Arc::new(content),
            store: Some(Arc::new(store)),
        })
    }
}

impl Inode for SimpleFile {
    fn stat(&self) -> SysResult<Stat> {
        // Size 0 as in Linux procfs: the length is unknown until the content is made.
        Ok(self.id.stat(FileType::Regular.mode_bits() | self.mode, 1, 0))
    }

    fn open(self: Arc<Self>, flags: u32) -> SysResult<Arc<dyn FileOps>> {
        let store = match (flags & O_ACCMODE, &self.store) {
            (0, _) => None,
            (_, Some(store)) => Some(store.clone()),
            (_, None) => return Err(errno!(EACCES)),
        };
        // Opened for writing only, a knob's content is not needed.
        let data = if flags & O_ACCMODE == 1 { Vec::new() } else { (self.content)()? };
        Ok(Arc::new(Snapshot { data, store }))
    }

    fn setattr(&self, _attr: &crate::vfs::SetAttr) -> SysResult<()> {
        Err(errno!(EPERM))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn fs_id(&self) -> u64 {
        self.id.fs_id
    }

    fn enforces_mode_bits(&self) -> bool {
        false
    }
}

/// An open `SimpleFile`: the content as it was at open, served by offset,
/// and where writes go if it takes them.
struct Snapshot {
    data: Vec<u8>,
    store: Option<StoreFn>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot").field("len", &self.data.len()).field("writable", &self.store.is_some()).finish()
    }
}

impl FileOps for Snapshot {
    fn read(&self, _file: &OpenFile, dst: &mut dyn IoDst, off: u64) -> SysResult<usize> {
        let Ok(start) = usize::try_from(off) else { return Ok(0) };
        let rest = self.data.get(start..).unwrap_or_default();
        let n = rest.len().min(dst.space());
        if n == 0 {
            return Ok(0);
        }
        dst.copy_out(0, &rest[..n])
    }

    fn write(&self, _file: &OpenFile, src: &dyn IoSrc, _off: u64) -> SysResult<usize> {
        let Some(store) = &self.store else { return Err(errno!(EBADF)) };
        if src.size() > MAX_STORE {
            return Err(errno!(EINVAL));
        }
        let mut buf = vec![0u8; src.size()];
        let n = src.copy_in(0, &mut buf)?;
        store(&buf[..n])?;
        Ok(n)
    }
}

/// A symlink whose target is generated on every readlink.
pub struct SimpleSymlink {
    id: NodeId,
    target: ContentFn,
}

impl std::fmt::Debug for SimpleSymlink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimpleSymlink").field("ino", &self.id.ino).finish()
    }
}

impl SimpleSymlink {
    pub fn new(
        fs_id: u64,
        ino: u64,
        target: impl Fn() -> SysResult<Vec<u8>> + Send + Sync + 'static,
    ) -> Arc<SimpleSymlink> {
        Arc::new(SimpleSymlink { id: NodeId::new(fs_id, ino), target: Arc::new(target) })
    }

    /// A symlink to a fixed target.
    pub fn fixed(fs_id: u64, ino: u64, target: &[u8]) -> Arc<SimpleSymlink> {
        let target = target.to_vec();
        Self::new(fs_id, ino, move || Ok(target.clone()))
    }
}

impl Inode for SimpleSymlink {
    fn stat(&self) -> SysResult<Stat> {
        // Size 0 as Linux reports for procfs links; readers must not trust st_size.
        Ok(self.id.stat(FileType::Symlink.mode_bits() | 0o777, 1, 0))
    }

    fn readlink(&self) -> SysResult<Vec<u8>> {
        (self.target)()
    }

    fn open(self: Arc<Self>, _flags: u32) -> SysResult<Arc<dyn FileOps>> {
        // The path walk follows symlinks (or the syscall layer refuses or O_PATH-opens them)
        // before an inode is ever opened; reaching here means a symlink loop.
        Err(errno!(ELOOP))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn fs_id(&self) -> u64 {
        self.id.fs_id
    }

    fn enforces_mode_bits(&self) -> bool {
        false
    }
}

/// A read-only directory whose entries come from a closure.
pub struct SimpleDir {
    id: NodeId,
    mode: u32,
    entries: EntriesFn,
}

impl std::fmt::Debug for SimpleDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimpleDir").field("ino", &self.id.ino).field("mode", &format_args!("{:o}", self.mode)).finish()
    }
}

impl SimpleDir {
    /// A directory with permission bits `perm` (e.g. 0o555).
    pub fn new(
        fs_id: u64,
        ino: u64,
        perm: u32,
        entries: impl Fn() -> SysResult<Vec<(Vec<u8>, InodeRef)>> + Send + Sync + 'static,
    ) -> Arc<SimpleDir> {
        Arc::new(SimpleDir { id: NodeId::new(fs_id, ino), mode: perm & 0o7777, entries: Arc::new(entries) })
    }

    /// A directory over a fixed list of entries.
    pub fn fixed(fs_id: u64, ino: u64, perm: u32, entries: Vec<(Vec<u8>, InodeRef)>) -> Arc<SimpleDir> {
        Self::new(fs_id, ino, perm, move || Ok(entries.clone()))
    }
}

impl Inode for SimpleDir {
    fn stat(&self) -> SysResult<Stat> {
        Ok(self.id.stat(FileType::Directory.mode_bits() | self.mode, 2, 0))
    }

    fn lookup(&self, name: &[u8]) -> SysResult<InodeRef> {
        (self.entries)()?.into_iter().find(|(n, _)| n == name).map(|(_, i)| i).ok_or(errno!(ENOENT))
    }

    fn readdir(&self) -> SysResult<Vec<DirEntry>> {
        // An entry that cannot be stat'ed (a process exiting mid-listing) is left out
        // rather than failing the whole listing.
        Ok((self.entries)()?
            .into_iter()
            .filter_map(|(name, inode)| {
                inode.stat().ok().map(|st| DirEntry { ino: st.ino, ftype: st.file_type(), name })
            })
            .collect())
    }

    fn open(self: Arc<Self>, flags: u32) -> SysResult<Arc<dyn FileOps>> {
        if flags & O_ACCMODE != 0 {
            return Err(errno!(EISDIR));
        }
        Ok(Arc::new(DirHandle))
    }

    // Linux's answers for a directory without the operation: creat(2) gets EACCES,
    // mkdir, mknod, symlink, unlink, rmdir and rename get EPERM.
    fn create(&self, _name: &[u8], node: NewNode) -> SysResult<InodeRef> {
        match node {
            NewNode::File { .. } => Err(errno!(EACCES)),
            _ => Err(errno!(EPERM)),
        }
    }

    fn unlink(&self, _name: &[u8], _dir: bool) -> SysResult<()> {
        Err(errno!(EPERM))
    }

    fn rename(&self, _old: &[u8], _new_dir: &InodeRef, _new: &[u8]) -> SysResult<()> {
        Err(errno!(EPERM))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn fs_id(&self) -> u64 {
        self.id.fs_id
    }

    fn enforces_mode_bits(&self) -> bool {
        false
    }
}

/// An open `SimpleDir`. Listing goes through `Inode::readdir` (getdents in the syscall
/// layer); the handle only has to be seekable so rewinddir's lseek works.
#[derive(Debug)]
struct DirHandle;

impl FileOps for DirHandle {
    fn read(&self, _file: &OpenFile, _dst: &mut dyn IoDst, _off: u64) -> SysResult<usize> {
        Err(errno!(EISDIR))
    }

    fn write(&self, _file: &OpenFile, _src: &dyn IoSrc, _off: u64) -> SysResult<usize> {
        Err(errno!(EISDIR))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::new_fs_id;
    use abi::Errno;

    fn read_all(ops: Arc<dyn FileOps>, chunk: usize) -> Vec<u8> {
        let f = OpenFile::new(ops, None, 0);
        let mut out = Vec::new();
        let mut buf = vec![0u8; chunk];
        loop {
            let n = f.ops.read(&f, &mut buf, out.len() as u64).unwrap();
            if n == 0 {
                return out;
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    #[test]
    fn file_serves_one_snapshot_per_open() {
        let counter = Arc::new(AtomicU64::new(0));
        let c = counter.clone();
        let file = SimpleFile::new(new_fs_id(), next_ino(), 0o444, move || {
            Ok(format!("open number {}\n", c.fetch_add(1, Ordering::Relaxed)).into_bytes())
        });
        let ops = file.clone().open(0).unwrap();
        // Small reads see the text of one open, not a regenerated one.
        assert_eq!(read_all(ops.clone(), 3), b"open number 0\n");
        assert_eq!(read_all(ops, 3), b"open number 0\n");
        assert_eq!(read_all(file.clone().open(0).unwrap(), 100), b"open number 1\n");
        let f = OpenFile::new(file.clone().open(0).unwrap(), None, 0);
        assert_eq!(f.ops.read(&f, &mut [0u8; 4], u64::MAX).unwrap(), 0);
        assert_eq!(f.ops.write(&f, b"x", 0), Err(errno!(EBADF)));
    }

    #[test]
    fn file_stat_and_open_modes() {
        let file = SimpleFile::new(7, 42, 0o400, || Ok(b"x".to_vec()));
        let st = file.stat().unwrap();
        assert_eq!((st.dev, st.ino, st.mode, st.size), (7, 42, 0o100400, 0));
        assert_eq!(file.clone().open(1).err().map(|e| e.errno()), Some(Errno::EACCES));
        assert_eq!(file.clone().open(2).err().map(|e| e.errno()), Some(Errno::EACCES));
        let failing = SimpleFile::new(7, 43, 0o444, || Err(errno!(ESRCH)));
        assert_eq!(failing.open(0).err().map(|e| e.errno()), Some(Errno::ESRCH));
    }

    #[test]
    fn symlink_target_is_computed() {
        let link = SimpleSymlink::new(1, 5, || Ok(b"/somewhere".to_vec()));
        assert_eq!(link.readlink().unwrap(), b"/somewhere");
        assert_eq!(link.stat().unwrap().file_type(), FileType::Symlink);
        assert_eq!(SimpleSymlink::fixed(1, 6, b"x").readlink().unwrap(), b"x");
    }

    #[test]
    fn dir_lookup_and_readdir_agree() {
        let fs = new_fs_id();
        let a: InodeRef = SimpleFile::new(fs, 10, 0o444, || Ok(vec![]));
        let b: InodeRef = SimpleSymlink::fixed(fs, 11, b"a");
        let gone: InodeRef = Arc::new(Vanished);
        let dir =
            SimpleDir::fixed(fs, 12, 0o555, vec![(b"a".to_vec(), a), (b"b".to_vec(), b), (b"gone".to_vec(), gone)]);
        assert_eq!(dir.lookup(b"a").unwrap().stat().unwrap().ino, 10);
        assert_eq!(dir.lookup(b"c").err().map(|e| e.errno()), Some(Errno::ENOENT));
        let names: Vec<(Vec<u8>, u64, FileType)> =
            dir.readdir().unwrap().into_iter().map(|e| (e.name, e.ino, e.ftype)).collect();
        assert_eq!(names, vec![(b"a".to_vec(), 10, FileType::Regular), (b"b".to_vec(), 11, FileType::Symlink)]);
        assert_eq!(dir.stat().unwrap().mode, 0o040555);
        assert_eq!(dir.create(b"x", NewNode::File { mode: 0o644 }).err().map(|e| e.errno()), Some(Errno::EACCES));
        assert_eq!(dir.create(b"x", NewNode::Dir { mode: 0o755 }).err().map(|e| e.errno()), Some(Errno::EPERM));
    }

    #[test]
    fn dir_handle_is_seekable_but_not_readable() {
        let dir = SimpleDir::fixed(1, 2, 0o555, vec![]);
        assert_eq!(dir.clone().open(2).err().map(|e| e.errno()), Some(Errno::EISDIR));
        let f = OpenFile::new(dir.open(0).unwrap(), None, 0);
        assert!(f.ops.seekable());
        assert_eq!(f.ops.read(&f, &mut [0u8; 8], 0), Err(errno!(EISDIR)));
    }

    #[test]
    fn path_inos_are_stable_and_distinct() {
        assert_eq!(path_ino(b"/1/stat"), path_ino(b"/1/stat"));
        assert_ne!(path_ino(b"/1/stat"), path_ino(b"/2/stat"));
        assert!(path_ino(b"") >= 3);
    }

    /// An inode whose object has gone away: stat fails.
    #[derive(Debug)]
    struct Vanished;

    impl Inode for Vanished {
        fn stat(&self) -> SysResult<Stat> {
            Err(errno!(ESRCH))
        }
        fn open(self: Arc<Self>, _flags: u32) -> SysResult<Arc<dyn FileOps>> {
            Err(errno!(ESRCH))
        }
        fn as_any(&self) -> &dyn Any {
            self
        }
        fn fs_id(&self) -> u64 {
            0
        }
    }
}
