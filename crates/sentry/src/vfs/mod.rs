//! The virtual filesystem: inodes, dentries (path-aware handles), mounts,
//! path walk with symlinks and `..` resolved here, open files and fd tables.
//!
//! Invariants: a `Dentry` knows its parent, so `..` and getcwd never ask a
//! filesystem; a directory's dentry caches its children weakly, so one name
//! has one dentry and a rename moves it for every holder; a dentry's lock is
//! held only to read or change its place, never across a filesystem call or
//! while taking another dentry's lock; mounts are looked up by the absolute
//! path of the mountpoint; symlinks are followed at most `MAX_SYMLINKS` times
//! per walk. File semantics are here, for a `Caller` (credentials, root,
//! umask): `lookup_at` checks search permission on the way, `open_at`,
//! `create`, `unlink`, `rename`, `link` and `set_attr` what Linux checks, in
//! its order, and report to inotify; `walk` is the kernel's own, unchecked.
//! The syscall layer reads the app's arguments and resolves its descriptors.

pub mod attr;
pub mod cache;
pub mod fdtable;
pub mod file;
pub mod inotify;
pub mod lock;
pub mod names;
pub mod open;
pub mod permission;

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

pub use fdtable::FdTable;
pub use file::{FileOps, FileSource, IoctlArg, IoctlArg as IoctlArgRef, OpenFile, PollMask};

use crate::auth::Creds;
use crate::vfs::cache::{Children, Lookup};
use crate::SysResult;

const MAX_SYMLINKS: u32 = 40;
pub const NAME_MAX: usize = 255;
pub const PATH_MAX: usize = 4096;

pub type InodeRef = Arc<dyn Inode>;

/// File types with their `st_mode` bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileType {
    Regular,
    Directory,
    Symlink,
    CharDev,
    BlockDev,
    Fifo,
    Socket,
}

impl FileType {
    pub fn mode_bits(self) -> u32 {
        match self {
            FileType::Regular => 0o100000,
            FileType::Directory => 0o040000,
            FileType::Symlink => 0o120000,
            FileType::CharDev => 0o020000,
            FileType::BlockDev => 0o060000,
            FileType::Fifo => 0o010000,
            FileType::Socket => 0o140000,
        }
    }

    pub fn from_mode(mode: u32) -> FileType {
        match mode & 0o170000 {
            0o040000 => FileType::Directory,
            0o120000 => FileType::Symlink,
            0o020000 => FileType::CharDev,
            0o060000 => FileType::BlockDev,
            0o010000 => FileType::Fifo,
            0o140000 => FileType::Socket,
            _ => FileType::Regular,
        }
    }

    /// The `d_type` of a directory entry.
    pub fn dtype(self) -> u8 {
        match self {
            FileType::Fifo => 1,
            FileType::CharDev => 2,
            FileType::Directory => 4,
            FileType::BlockDev => 6,
            FileType::Regular => 8,
            FileType::Symlink => 10,
            FileType::Socket => 12,
        }
    }
}

/// A point in time as (seconds, nanoseconds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timespec {
    pub sec: i64,
    pub nsec: i64,
}

impl Timespec {
    pub fn now() -> Timespec {
        let (sec, nsec) = host::sys::clock_gettime(0).unwrap_or((0, 0));
        Timespec { sec, nsec }
    }
}

/// Inode attributes, as stat reports them.
#[derive(Debug, Clone, Default)]
pub struct Stat {
    pub dev: u64,
    pub ino: u64,
    pub mode: u32,
    pub nlink: u64,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub size: u64,
    pub blksize: u64,
    pub blocks: u64,
    pub atime: Timespec,
    pub mtime: Timespec,
    pub ctime: Timespec,
}

impl Stat {
    pub fn file_type(&self) -> FileType {
        FileType::from_mode(self.mode)
    }
}

/// One directory entry (without `.` and `..`).
#[derive(Debug, Clone)]
pub struct DirEntry {
    pub ino: u64,
    pub ftype: FileType,
    pub name: Vec<u8>,
}

/// What to create in a directory.
#[derive(Debug, Clone)]
pub enum NewNode {
    File { mode: u32 },
    Dir { mode: u32 },
    Symlink { target: Vec<u8> },
    Fifo { mode: u32 },
}

/// Attribute changes (chmod, chown, truncate, utimes).
#[derive(Debug, Clone, Default)]
pub struct SetAttr {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime: Option<Timespec>,
    pub mtime: Option<Timespec>,
}

pub use crate::mm::FrozenKey;

/// A file-system object. Directory operations default to ENOTDIR, the rest to EPERM/EINVAL.
pub trait Inode: Send + Sync + Any + std::fmt::Debug {
    fn stat(&self) -> SysResult<Stat>;
    fn lookup(&self, _name: &[u8]) -> SysResult<InodeRef> {
        Err(errno!(ENOTDIR))
    }
    fn readdir(&self) -> SysResult<Vec<DirEntry>> {
        Err(errno!(ENOTDIR))
    }
    fn readlink(&self) -> SysResult<Vec<u8>> {
        Err(errno!(EINVAL))
    }
    /// Opens the inode for I/O with the given O_* flags.
    fn open(self: Arc<Self>, flags: u32) -> SysResult<Arc<dyn FileOps>>;
    fn create(&self, _name: &[u8], _node: NewNode) -> SysResult<InodeRef> {
        Err(errno!(ENOTDIR))
    }
    fn unlink(&self, _name: &[u8], _dir: bool) -> SysResult<()> {
        Err(errno!(ENOTDIR))
    }
    /// Moves `old` in this directory to `new` in `new_dir` (same filesystem).
    fn rename(&self, _old: &[u8], _new_dir: &InodeRef, _new: &[u8]) -> SysResult<()> {
        Err(errno!(EXDEV))
    }
    fn link(&self, _name: &[u8], _target: &InodeRef) -> SysResult<()> {
        Err(errno!(EPERM))
    }
    fn setattr(&self, _attr: &SetAttr) -> SysResult<()> {
        Err(errno!(EPERM))
    }
    /// For downcasting to a concrete filesystem's inode (rename, link, overlay copy-up).
    fn as_any(&self) -> &dyn Any;
    /// The memory-file pages a MAP_SHARED mapping of this file uses (`want` bytes at
    /// least). Only files whose data can live in the memory file (tmpfs) have them.
    fn shared_pages(
        &self,
        _alloc: &std::sync::Arc<crate::mm::RangeAllocator>,
        _want: u64,
    ) -> SysResult<std::sync::Arc<crate::mm::Backing>> {
        Err(errno!(ENODEV))
    }
    /// For a regular file whose bytes the sandbox cannot change in place
    /// (an overlay's lower file: a write copies it up first), their name
    /// and an inode that reads exactly them, so that every read-only
    /// private mapping of them may share one copy (`mm::frozen`). None for
    /// a file the sandbox may write where it is.
    fn frozen(&self) -> Option<(FrozenKey, InodeRef)> {
        None
    }
    /// What statfs(2) says of this inode's filesystem. `magic` None: the
    /// mount's type decides it (`Mounts::magic_of`). By default an empty
    /// filesystem (no blocks, no inodes), as Linux's procfs and sysfs are.
    fn statfs(&self) -> SysResult<FsSpace> {
        Ok(FsSpace::default())
    }
    /// Identity of the filesystem, for rename's EXDEV check.
    fn fs_id(&self) -> u64;
    /// Whether access is checked against the owner and mode bits
    /// (`permission`); synthetic files that decide themselves what an open
    /// may do say no.
    fn enforces_mode_bits(&self) -> bool {
        true
    }
}

/// A name in the tree: an inode plus where it sits, so `..` and getcwd work.
///
/// Dentries are shared: a directory caches the dentries of its children, so
/// everyone who reached a name (cwd, open files, a walk in progress) holds the
/// same dentry, and a rename that moves it moves it for all of them.
#[derive(Debug)]
pub struct Dentry {
    place: Mutex<Place>,
    pub inode: InodeRef,
    /// Children looked up through this dentry. Weak, so a directory owns
    /// nothing of its children; a child owns its parent.
    children: Children<Dentry>,
}

/// Where a dentry sits: its name in its parent.
#[derive(Debug)]
struct Place {
    name: Vec<u8>,
    parent: Option<Arc<Dentry>>,
}

impl Dentry {
    pub fn root(inode: InodeRef) -> Arc<Dentry> {
        Dentry::detached(Vec::new(), None, inode)
    }

    /// A dentry its parent does not know of, so no walk finds it: an open
    /// file outside the tree (O_TMPFILE, memfd).
    pub fn detached(name: Vec<u8>, parent: Option<Arc<Dentry>>, inode: InodeRef) -> Arc<Dentry> {
        Arc::new(Dentry { place: Mutex::new(Place { name, parent }), inode, children: Children::default() })
    }

    /// The dentry of `inode`, just created as `name` in `parent`; later walks
    /// to that name find this very dentry while the filesystem returns the same inode.
    pub fn new_child(parent: &Arc<Dentry>, name: &[u8], inode: InodeRef) -> Arc<Dentry> {
        let d = Dentry::detached(name.to_vec(), Some(parent.clone()), inode);
        parent.children.insert(name, &d);
        d
    }

    /// The name in the parent directory (empty for a root).
    pub fn name(&self) -> Vec<u8> {
        self.place.lock().unwrap().name.clone()
    }

    /// The directory this dentry is in; None for a root or a file outside any tree.
    pub fn parent(&self) -> Option<Arc<Dentry>> {
        self.place.lock().unwrap().parent.clone()
    }

    /// Drops the cached dentry of `name` (it was unlinked or replaced), so
    /// the next walk asks the filesystem.
    pub fn forget_child(&self, name: &[u8]) {
        self.children.forget(name);
    }

    /// The absolute path of this dentry. Each dentry's lock is taken only
    /// long enough to read its place, so a concurrent rename never deadlocks
    /// with it.
    pub fn path(&self) -> Vec<u8> {
        let (name, mut parent) = {
            let place = self.place.lock().unwrap();
            (place.name.clone(), place.parent.clone())
        };
        if parent.is_none() && !name.is_empty() {
            // A file outside any tree (memfd): Linux shows it as deleted.
            return [b"/", name.as_slice(), b" (deleted)"].concat();
        }
        let mut parts = Vec::new();
        if parent.is_some() {
            parts.push(name);
        }
        while let Some(d) = parent {
            let place = d.place.lock().unwrap();
            if place.parent.is_some() {
                parts.push(place.name.clone());
            }
            parent = place.parent.clone();
        }
        if parts.is_empty() {
            return b"/".to_vec();
        }
        let mut out = Vec::new();
        for p in parts.iter().rev() {
            out.push(b'/');
            out.extend_from_slice(p);
        }
        out
    }

    /// Whether `self` is `ancestor` or lies beneath it.
    fn is_within(self: &Arc<Dentry>, ancestor: &Arc<Dentry>) -> bool {
        let mut d = Some(self.clone());
        while let Some(cur) = d {
            if Arc::ptr_eq(&cur, ancestor) {
                return true;
            }
            d = cur.parent();
        }
        false
    }
}

/// A filesystem's size and kind, for statfs(2): counts in `bsize` blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsSpace {
    /// The filesystem's magic number, if the filesystem knows it better
    /// than its mount's type does (a Gofer's host filesystem).
    pub magic: Option<i64>,
    pub bsize: u64,
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub namelen: u64,
}

impl Default for FsSpace {
    fn default() -> FsSpace {
        FsSpace { magic: None, bsize: 4096, blocks: 0, bfree: 0, bavail: 0, files: 0, ffree: 0, namelen: 255 }
    }
}

/// Linux's magic numbers for the filesystem types moat mounts.
const MAGICS: &[(&str, i64)] = &[
    ("tmpfs", 0x0102_1994),
    ("devtmpfs", 0x0102_1994),
    ("proc", 0x9fa0),
    ("sysfs", 0x6265_6572),
    ("devpts", 0x1cd1),
    ("mqueue", 0x1980_0202),
    ("overlay", 0x794c_7630),
    ("9p", 0x0102_1997),
];

/// The mount table: filesystems grafted on absolute paths.
#[derive(Debug, Default)]
pub struct Mounts {
    table: RwLock<HashMap<Vec<u8>, Mount>>,
}

#[derive(Debug)]
struct Mount {
    root: InodeRef,
    fstype: String,
    source: String,
    read_only: bool,
}

impl Mounts {
    /// Mounts `root` (of type `fstype`, from `source`) at absolute `path`.
    pub fn mount(&self, path: &[u8], root: InodeRef, fstype: &str, source: &str) {
        self.mount_with(path, root, fstype, source, false);
    }

    /// Mounts as `mount` does, marked read-only if `read_only` (the
    /// filesystem itself refuses the writes).
    pub fn mount_with(&self, path: &[u8], root: InodeRef, fstype: &str, source: &str, read_only: bool) {
        let mount = Mount { root, fstype: fstype.to_string(), source: source.to_string(), read_only };
        self.table.write().unwrap().insert(path.to_vec(), mount);
    }

    fn at(&self, path: &[u8]) -> Option<InodeRef> {
        self.table.read().unwrap().get(path).map(|m| m.root.clone())
    }

    /// (mountpoint, fstype, source) of every mount, sorted by path.
    pub fn list(&self) -> Vec<(Vec<u8>, String, String)> {
        let mut v: Vec<_> =
            self.table.read().unwrap().iter().map(|(p, m)| (p.clone(), m.fstype.clone(), m.source.clone())).collect();
        v.sort();
        v
    }

    /// The magic number of the type of the mount that `path` (absolute, as
    /// `Dentry::path` gives it) lies in, and whether that mount is
    /// read-only; None if no mount holds it.
    pub fn kind_of(&self, path: &[u8]) -> Option<(Option<i64>, bool)> {
        let table = self.table.read().unwrap();
        let within = |mount: &[u8]| {
            mount == b"/" || path == mount || (path.starts_with(mount) && path.get(mount.len()) == Some(&b'/'))
        };
        let mount = table.iter().filter(|(p, _)| within(p)).max_by_key(|(p, _)| p.len()).map(|(_, m)| m)?;
        let magic = MAGICS.iter().find(|(name, _)| *name == mount.fstype).map(|(_, magic)| *magic);
        Some((magic, mount.read_only))
    }

    /// The mount options of the mount at `path` (`ro` or `rw`).
    pub fn options(&self, path: &[u8]) -> &'static str {
        match self.table.read().unwrap().get(path) {
            Some(m) if m.read_only => "ro",
            _ => "rw",
        }
    }
}

/// The namespace a task resolves paths in.
#[derive(Debug)]
pub struct Vfs {
    pub root: Arc<Dentry>,
    pub mounts: Mounts,
}

/// Who performs a file operation: the credentials it is checked with, the
/// root its absolute paths (and `..` at the top) stop at, the umask its new
/// files get, and the inotify instances that hear of what it changes.
#[derive(Debug)]
pub struct Caller<'a> {
    pub creds: Creds,
    pub root: Arc<Dentry>,
    pub umask: u32,
    pub events: &'a inotify::Notifier,
}

/// How a walk treats the final component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    Yes,
    No,
}

impl Vfs {
    pub fn new(root: InodeRef) -> Vfs {
        Vfs { root: Dentry::root(root), mounts: Mounts::default() }
    }

    /// Looks up one component under `dir`, crossing into mounts and handling `.`/`..`.
    pub fn step(&self, root: &Arc<Dentry>, dir: &Arc<Dentry>, name: &[u8]) -> SysResult<Arc<Dentry>> {
        if name.is_empty() || name == b"." {
            return Ok(dir.clone());
        }
        if name == b".." {
            if Arc::ptr_eq(dir, root) {
                return Ok(dir.clone());
            }
            return Ok(dir.parent().unwrap_or_else(|| dir.clone()));
        }
        if name.len() > NAME_MAX {
            return Err(errno!(ENAMETOOLONG));
        }
        let st = dir.inode.stat()?;
        if st.file_type() != FileType::Directory {
            return Err(errno!(ENOTDIR));
        }
        let path = join(&dir.path(), name);
        // The mount table comes first: a mount root's dentry is a different
        // inode from the directory it covers, so the cache below never
        // confuses the two.
        let inode = match self.mounts.at(&path) {
            Some(m) => m,
            None => dir.inode.lookup(name)?,
        };
        if let Lookup::Hit(cached) = dir.children.get(name) {
            if Arc::ptr_eq(&cached.inode, &inode) {
                return Ok(cached);
            }
        }
        Ok(Dentry::new_child(dir, name, inode))
    }

    /// Moves the dentries after `old_name` in `old_dir` was renamed to
    /// `new_name` in `new_dir`: whoever holds the moved dentry (a cwd, an
    /// open file) now sees its new path, and the name it replaced is forgotten.
    pub fn renamed(&self, old_dir: &Arc<Dentry>, old_name: &[u8], new_dir: &Arc<Dentry>, new_name: &[u8]) {
        // Mounts are keyed by path and stay where they are; a mount root's
        // dentry must keep naming its mountpoint.
        let old_path = join(&old_dir.path(), old_name);
        let new_path = join(&new_dir.path(), new_name);
        if self.mounts.at(&old_path).is_some() || self.mounts.at(&new_path).is_some() {
            return;
        }
        let replaced = new_dir.children.get(new_name);
        let Lookup::Hit(moved) = old_dir.children.get(old_name) else {
            new_dir.forget_child(new_name);
            return;
        };
        // Renaming a file onto itself or onto another of its hard links
        // changes nothing.
        if matches!(&replaced, Lookup::Hit(r) if Arc::ptr_eq(&r.inode, &moved.inode)) {
            return;
        }
        new_dir.forget_child(new_name);
        old_dir.forget_child(old_name);
        // A directory moved beneath itself would loop `path`; the rename
        // checks refuse that, so this only guards against a racing rename.
        if new_dir.is_within(&moved) {
            return;
        }
        let old_parent = {
            let mut place = moved.place.lock().unwrap();
            place.name = new_name.to_vec();
            place.parent.replace(new_dir.clone())
        };
        // Dropped outside the lock: the last reference to a dentry drops its inode.
        drop(old_parent);
        new_dir.children.insert(new_name, &moved);
    }

    /// Resolves `path` from `cwd` (or `root` if absolute). Symlinks are followed in every
    /// component but the last, and in the last too when `follow` is Yes. No
    /// permission is checked: this is the kernel's own walk.
    pub fn walk(&self, root: &Arc<Dentry>, cwd: &Arc<Dentry>, path: &[u8], follow: Follow) -> SysResult<Arc<Dentry>> {
        let mut budget = MAX_SYMLINKS;
        self.walk_inner(None, root, cwd, path, follow, &mut budget)
    }

    /// `walk` for a process: each directory looked in must be searchable by `who`.
    pub fn walk_as(
        &self,
        who: &Creds,
        root: &Arc<Dentry>,
        cwd: &Arc<Dentry>,
        path: &[u8],
        follow: Follow,
    ) -> SysResult<Arc<Dentry>> {
        let mut budget = MAX_SYMLINKS;
        let who = (!permission::searches_anything(who)).then_some(who);
        self.walk_inner(who, root, cwd, path, follow, &mut budget)
    }

    /// Resolves `path` from `start` (or the caller's root if absolute) as
    /// `walk_as` does, for `who`.
    pub fn lookup_at(&self, who: &Caller, start: &Arc<Dentry>, path: &[u8], follow: Follow) -> SysResult<Arc<Dentry>> {
        self.walk_as(&who.creds, &who.root, start, path, follow)
    }

    fn walk_inner(
        &self,
        who: Option<&Creds>,
        root: &Arc<Dentry>,
        cwd: &Arc<Dentry>,
        path: &[u8],
        follow: Follow,
        budget: &mut u32,
    ) -> SysResult<Arc<Dentry>> {
        if path.is_empty() {
            return Err(errno!(ENOENT));
        }
        if path.len() >= PATH_MAX {
            return Err(errno!(ENAMETOOLONG));
        }
        let mut cur = if path[0] == b'/' { root.clone() } else { cwd.clone() };
        let comps: Vec<&[u8]> = path.split(|&b| b == b'/').filter(|c| !c.is_empty()).collect();
        let trailing_slash = path.ends_with(b"/");
        for (i, comp) in comps.iter().enumerate() {
            let last = i + 1 == comps.len();
            if let Some(who) = who {
                permission::may(who, &*cur.inode, permission::MAY_EXEC)?;
            }
            let next = self.step(root, &cur, comp)?;
            let st = next.inode.stat()?;
            if st.file_type() == FileType::Symlink && (!last || follow == Follow::Yes || trailing_slash) {
                if *budget == 0 {
                    return Err(errno!(ELOOP));
                }
                *budget -= 1;
                let target = next.inode.readlink()?;
                cur = self.walk_inner(who, root, &cur, &target, Follow::Yes, budget)?;
            } else {
                cur = next;
            }
        }
        if trailing_slash && cur.inode.stat()?.file_type() != FileType::Directory {
            return Err(errno!(ENOTDIR));
        }
        Ok(cur)
    }

    /// Resolves all but the last component; returns (parent, last name). The name is empty
    /// for "/" and may be "." or "..".
    pub fn walk_parent(&self, root: &Arc<Dentry>, cwd: &Arc<Dentry>, path: &[u8]) -> SysResult<(Arc<Dentry>, Vec<u8>)> {
        self.walk_parent_inner(None, root, cwd, path)
    }

    /// `walk_parent` for a process, checking search permission as `walk_as`.
    /// The parent itself is not checked: what is done in it checks it.
    pub fn walk_parent_as(
        &self,
        who: &Creds,
        root: &Arc<Dentry>,
        cwd: &Arc<Dentry>,
        path: &[u8],
    ) -> SysResult<(Arc<Dentry>, Vec<u8>)> {
        self.walk_parent_inner(Some(who), root, cwd, path)
    }

    /// Resolves all but the last component of `path` from `start` for
    /// `who`, as `walk_parent_as` does.
    pub fn lookup_parent_at(
        &self,
        who: &Caller,
        start: &Arc<Dentry>,
        path: &[u8],
    ) -> SysResult<(Arc<Dentry>, Vec<u8>)> {
        self.walk_parent_as(&who.creds, &who.root, start, path)
    }

    fn walk_parent_inner(
        &self,
        who: Option<&Creds>,
        root: &Arc<Dentry>,
        cwd: &Arc<Dentry>,
        path: &[u8],
    ) -> SysResult<(Arc<Dentry>, Vec<u8>)> {
        if path.is_empty() {
            return Err(errno!(ENOENT));
        }
        let trimmed = {
            let mut p = path;
            while p.len() > 1 && p.ends_with(b"/") {
                p = &p[..p.len() - 1];
            }
            p
        };
        // The last name is checked as the walk checks the others.
        let last = trimmed.rsplit(|&b| b == b'/').next().unwrap_or_default();
        if last.len() > NAME_MAX {
            return Err(errno!(ENAMETOOLONG));
        }
        match trimmed.iter().rposition(|&b| b == b'/') {
            None => Ok((cwd.clone(), trimmed.to_vec())),
            Some(i) => {
                let dir = match (i, who) {
                    (0, _) => root.clone(),
                    (_, Some(who)) => self.walk_as(who, root, cwd, &trimmed[..i], Follow::Yes)?,
                    (_, None) => self.walk(root, cwd, &trimmed[..i], Follow::Yes)?,
                };
                if dir.inode.stat()?.file_type() != FileType::Directory {
                    return Err(errno!(ENOTDIR));
                }
                Ok((dir, trimmed[i + 1..].to_vec()))
            }
        }
    }
}

/// The absolute path of `name` in the directory at absolute path `dir`.
fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut path = dir.to_vec();
    if path != b"/" {
        path.push(b'/');
    }
    path.extend_from_slice(name);
    path
}

/// Filesystem ids for `st_dev` and rename checks.
pub fn new_fs_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0x20);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::tmpfs::TmpfsInode;
    use abi::Errno;

    /// A memory file for the test's tmpfs trees to keep their files in.
    fn alloc() -> Arc<crate::mm::RangeAllocator> {
        let mem = Arc::new(host::MemoryFile::new(64 << 20).expect("a memory file"));
        crate::mm::RangeAllocator::new(mem, 0)
    }

    fn tree() -> Vfs {
        let vfs = Vfs::new(TmpfsInode::new_fs(0o755, &alloc()));
        for dir in [&b"/a"[..], b"/a/sub", b"/b", b"/mnt"] {
            let (parent, name) = vfs.walk_parent(&vfs.root, &vfs.root, dir).unwrap();
            parent.inode.create(&name, NewNode::Dir { mode: 0o755 }).unwrap();
        }
        vfs
    }

    fn walk(vfs: &Vfs, path: &[u8]) -> Arc<Dentry> {
        vfs.walk(&vfs.root, &vfs.root, path, Follow::Yes).unwrap()
    }

    fn rename(vfs: &Vfs, old: &[u8], new: &[u8]) {
        let (od, on) = vfs.walk_parent(&vfs.root, &vfs.root, old).unwrap();
        let (nd, nn) = vfs.walk_parent(&vfs.root, &vfs.root, new).unwrap();
        od.inode.rename(&on, &nd.inode, &nn).unwrap();
        vfs.renamed(&od, &on, &nd, &nn);
    }

    #[test]
    fn walks_share_one_dentry_per_name() {
        let vfs = tree();
        let held = walk(&vfs, b"/a/sub");
        assert!(Arc::ptr_eq(&held, &walk(&vfs, b"/a/../a/./sub")));
    }

    #[test]
    fn a_rename_moves_the_dentry_everyone_holds() {
        let vfs = tree();
        let cwd = walk(&vfs, b"/a/sub");
        rename(&vfs, b"/a/sub", b"/b/moved");
        assert_eq!(cwd.path(), b"/b/moved");
        assert_eq!(vfs.step(&vfs.root, &cwd, b"..").unwrap().path(), b"/b");
        assert!(Arc::ptr_eq(&cwd, &walk(&vfs, b"/b/moved")));
        assert_eq!(vfs.walk(&vfs.root, &vfs.root, b"/a/sub", Follow::Yes).unwrap_err(), Errno::ENOENT);
        // Its parent moving moves it too.
        rename(&vfs, b"/b", b"/a/b2");
        assert_eq!(cwd.path(), b"/a/b2/moved");
    }

    #[test]
    fn a_mount_root_is_not_the_directory_it_covers() {
        let vfs = tree();
        let covered = walk(&vfs, b"/mnt");
        vfs.mounts.mount(b"/mnt", TmpfsInode::new_fs(0o755, &alloc()), "tmpfs", "tmpfs");
        let root = walk(&vfs, b"/mnt");
        assert!(!Arc::ptr_eq(&covered, &root));
        assert!(Arc::ptr_eq(&root, &walk(&vfs, b"/mnt")));
        assert_eq!(root.path(), b"/mnt");
    }

    /// The semantics a caller meets, without a task: the rules the syscall
    /// layer used to hold, called as the vfs API.
    mod for_a_caller {
        use super::*;
        use crate::vfs::attr::Change;
        use crate::vfs::inotify::{Inotify, Notifier, IN_CREATE};
        use crate::vfs::open::{O_CREAT, O_EXCL};
        use crate::vfs::permission::{S_ISGID, S_ISUID};

        const O_WRONLY: u32 = 1;

        /// An unprivileged user with group `uid` and no capabilities.
        fn user(uid: u32) -> Creds {
            Creds {
                uid,
                euid: uid,
                suid: uid,
                gid: uid,
                egid: uid,
                sgid: uid,
                caps: Default::default(),
                ..Creds::default()
            }
        }

        fn caller<'a>(vfs: &Vfs, creds: Creds, events: &'a Notifier) -> Caller<'a> {
            Caller { creds, root: vfs.root.clone(), umask: 0o022, events }
        }

        /// `tree()` with a world-writable sticky /tmp, as root made it.
        fn with_tmp(events: &Notifier) -> Vfs {
            let vfs = tree();
            let root = caller(&vfs, Creds::default(), events);
            vfs.create(&root, &vfs.root, b"tmp", NewNode::Dir { mode: 0o777 }).unwrap();
            walk(&vfs, b"/tmp").inode.setattr(&SetAttr { mode: Some(0o1777), ..Default::default() }).unwrap();
            vfs
        }

        fn stat(vfs: &Vfs, path: &[u8]) -> Stat {
            walk(vfs, path).inode.stat().unwrap()
        }

        #[test]
        fn the_sticky_bit_keeps_a_strangers_files() {
            let events = Notifier::default();
            let vfs = with_tmp(&events);
            let tmp = walk(&vfs, b"/tmp");
            let (alice, bob) = (caller(&vfs, user(1000), &events), caller(&vfs, user(2000), &events));
            vfs.create(&alice, &tmp, b"f", NewNode::File { mode: 0o666 }).unwrap();
            assert_eq!(stat(&vfs, b"/tmp/f").uid, 1000);
            assert_eq!(stat(&vfs, b"/tmp/f").mode & 0o7777, 0o644, "the umask applies");
            assert_eq!(vfs.unlink(&bob, &tmp, b"f", false), Err(errno!(EPERM)));
            assert_eq!(vfs.rename(&bob, &tmp, b"f", &tmp, b"g", false), Err(errno!(EPERM)));
            vfs.unlink(&alice, &tmp, b"f", false).unwrap();
        }

        #[test]
        fn a_new_file_in_a_set_group_id_directory_takes_its_group() {
            let events = Notifier::default();
            let vfs = with_tmp(&events);
            let shared = walk(&vfs, b"/b");
            shared.inode.setattr(&SetAttr { mode: Some(0o2777), gid: Some(50), ..Default::default() }).unwrap();
            let alice = caller(&vfs, user(1000), &events);
            vfs.create(&alice, &shared, b"d", NewNode::Dir { mode: 0o755 }).unwrap();
            vfs.create(&alice, &shared, b"f", NewNode::File { mode: 0o644 }).unwrap();
            let (d, f) = (stat(&vfs, b"/b/d"), stat(&vfs, b"/b/f"));
            assert_eq!((d.uid, d.gid, f.uid, f.gid), (1000, 50, 1000, 50));
            assert_ne!(d.mode & S_ISGID, 0, "a directory there is set-group-ID too");
            assert_eq!(f.mode & S_ISGID, 0);
        }

        #[test]
        fn a_rename_stays_in_its_filesystem_and_out_of_itself() {
            let events = Notifier::default();
            let vfs = tree();
            vfs.mounts.mount(b"/mnt", TmpfsInode::new_fs(0o755, &alloc()), "tmpfs", "tmpfs");
            let root = caller(&vfs, Creds::default(), &events);
            let (a, sub, mnt) = (walk(&vfs, b"/a"), walk(&vfs, b"/a/sub"), walk(&vfs, b"/mnt"));
            assert_eq!(vfs.rename(&root, &vfs.root, b"a", &sub, b"x", false), Err(errno!(EINVAL)));
            assert_eq!(vfs.rename(&root, &vfs.root, b"b", &mnt, b"b", false), Err(errno!(EXDEV)));
            assert_eq!(vfs.rename(&root, &vfs.root, b"b", &a, b"sub", true), Err(errno!(EEXIST)));
            assert_eq!(vfs.rename(&root, &a, b"..", &a, b"x", false), Err(errno!(EBUSY)));
        }

        #[test]
        fn a_hard_link_to_a_file_the_linker_may_not_write_is_refused() {
            let events = Notifier::default();
            let vfs = with_tmp(&events);
            let tmp = walk(&vfs, b"/tmp");
            let (root, alice) = (caller(&vfs, Creds::default(), &events), caller(&vfs, user(1000), &events));
            vfs.create(&root, &tmp, b"secret", NewNode::File { mode: 0o644 }).unwrap();
            let secret = walk(&vfs, b"/tmp/secret");
            let place = || Ok((tmp.clone(), b"l".to_vec()));
            assert_eq!(vfs.link(&alice, &secret, place), Err(errno!(EPERM)));
            vfs.link(&root, &secret, place).unwrap();
            assert_eq!(vfs.link(&root, &tmp, place), Err(errno!(EPERM)), "a directory, before the name is looked at");
        }

        #[test]
        fn open_creates_for_its_caller_and_reports_it() {
            let events = Notifier::default();
            let watcher = Arc::new(Inotify::default());
            events.register(&watcher);
            let vfs = with_tmp(&events);
            let tmp = walk(&vfs, b"/tmp");
            watcher.watch(&Creds::default(), &tmp, IN_CREATE).unwrap();
            let alice = caller(&vfs, user(1000), &events);
            let f = vfs.open_at(&alice, &vfs.root, b"/tmp/ro", O_CREAT | O_WRONLY, 0o444).unwrap();
            assert!(f.writable(), "its creator opens it as asked, whatever its mode");
            assert!(watcher.poll().contains(PollMask::IN), "IN_CREATE queued");
            assert_eq!(stat(&vfs, b"/tmp/ro").mode & 0o7777, 0o444);
            assert_eq!(vfs.open_at(&alice, &vfs.root, b"/tmp/ro", O_WRONLY, 0).unwrap_err(), Errno::EACCES);
            assert_eq!(vfs.open_at(&alice, &vfs.root, b"/tmp/ro", O_CREAT | O_EXCL, 0).unwrap_err(), Errno::EEXIST);
        }

        #[test]
        fn chown_is_the_owners_only_within_its_groups_and_drops_set_user_id() {
            let events = Notifier::default();
            let vfs = with_tmp(&events);
            let tmp = walk(&vfs, b"/tmp");
            let (root, alice) = (caller(&vfs, Creds::default(), &events), caller(&vfs, user(1000), &events));
            vfs.create(&alice, &tmp, b"prog", NewNode::File { mode: 0o755 }).unwrap();
            let prog = walk(&vfs, b"/tmp/prog");
            vfs.set_attr(&alice, &prog, Change::Mode, SetAttr { mode: Some(0o4755), ..Default::default() }).unwrap();
            let give_away = SetAttr { uid: Some(2000), ..Default::default() };
            assert_eq!(vfs.set_attr(&alice, &prog, Change::Owner, give_away.clone()), Err(errno!(EPERM)));
            let other_group = SetAttr { gid: Some(50), ..Default::default() };
            assert_eq!(vfs.set_attr(&alice, &prog, Change::Owner, other_group), Err(errno!(EPERM)));
            vfs.set_attr(&root, &prog, Change::Owner, give_away).unwrap();
            let st = stat(&vfs, b"/tmp/prog");
            assert_eq!((st.uid, st.mode & 0o7777), (2000, 0o755));
            assert_eq!(st.mode & S_ISUID, 0);
        }
    }
}
