//! The Gofer-backed filesystem: a 9P2000.L client view of a host tree that a
//! Gofer serves (the root, or one bind mount).
//!
//! Reads and writes of regular files go straight to a host fd the Gofer
//! donated; only when the server cannot donate (a third-party 9P server) do
//! they travel as Tread/Twrite. Caching depends on who else may change the
//! tree: an `exclusive` mount (the sandbox's alone) caches attributes and
//! names for good, and keeps one donated read-only fd per file, so that a
//! repeated `stat` or open of a file costs no round trip; a `shared` mount
//! revalidates: every lookup walks again, and every `stat` asks the host
//! (by `fstat` of a donated fd where it has one, else Tgetattr).

use std::any::Any;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use abi::Errno;
use p9::{Client, Fid};

use crate::mm::io::{read_through, write_through};
use crate::mm::{IoDst, IoSrc};
use crate::vfs::cache::{default_capacity, Children, Lookup, Recent};
use crate::vfs::{new_fs_id, DirEntry, FileOps, FileType, Inode, InodeRef, NewNode, OpenFile, SetAttr, Stat, Timespec};
use crate::SysResult;

const O_ACCMODE: u32 = 3;
const O_TRUNC: u32 = 0o1000;
const O_DIRECTORY: u32 = 0o200000;
const S_IFIFO: u32 = 0o010000;

#[track_caller]
fn remote(e: p9::Error) -> crate::Error {
    crate::Error::new(Errno(e.errno()))
}

/// Who else may change a Gofer-backed tree while the sandbox runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    /// Nobody: attributes and names are cached for good.
    Exclusive,
    /// The host or other sandboxes: cached attributes are revalidated.
    Shared,
}

/// One Gofer connection mounted somewhere in the sandbox.
#[derive(Debug)]
struct GoferFs {
    client: Arc<Client>,
    id: u64,
    sharing: Sharing,
    read_only: bool,
    /// Cleared when the server answers Tdonate with an error other than a
    /// file's own: it cannot donate, so I/O goes over 9P.
    donates: AtomicBool,
    recent: Recent<GoferInode>,
}

impl GoferFs {
    /// Asks for a host fd for `fid`, opened with `flags`; `None` if the
    /// server does not donate fds.
    fn donate(&self, fid: Fid, flags: u32) -> SysResult<Option<Arc<File>>> {
        if !self.donates.load(Ordering::Relaxed) {
            return Ok(None);
        }
        match self.client.donate(fid, flags) {
            Ok((_, fd)) => Ok(Some(Arc::new(File::from(fd)))),
            Err(p9::Error::Remote(e)) if e == Errno::EOPNOTSUPP.0 || e == Errno::ENOSYS.0 => {
                self.donates.store(false, Ordering::Relaxed);
                Ok(None)
            }
            Err(e) => Err(remote(e)),
        }
    }
}

/// One file on the Gofer, holding a walked fid.
#[derive(Debug)]
pub struct GoferInode {
    fs: Arc<GoferFs>,
    fid: Fid,
    attr: Mutex<Option<Stat>>,
    children: Children<GoferInode>,
    /// A donated read-only fd, kept for later read-only opens (exclusive
    /// mounts) and for `fstat`.
    host: Mutex<Option<Arc<File>>>,
    /// A directory's entries, kept on exclusive mounts.
    listing: Mutex<Option<Arc<Vec<DirEntry>>>>,
    me: Weak<GoferInode>,
}

impl GoferInode {
    /// Attaches to the root of the tree served on `client`.
    pub fn attach(client: Arc<Client>, sharing: Sharing, read_only: bool) -> SysResult<Arc<GoferInode>> {
        let (fid, _) = client.attach("/").map_err(remote)?;
        let fs = Arc::new(GoferFs {
            client,
            id: new_fs_id(),
            sharing,
            read_only,
            donates: AtomicBool::new(true),
            recent: Recent::new(default_capacity()),
        });
        Ok(Self::wrap(&fs, fid))
    }

    fn wrap(fs: &Arc<GoferFs>, fid: Fid) -> Arc<GoferInode> {
        Arc::new_cyclic(|me| GoferInode {
            fs: fs.clone(),
            fid,
            attr: Mutex::new(None),
            children: Children::default(),
            host: Mutex::new(None),
            listing: Mutex::new(None),
            me: me.clone(),
        })
    }

    fn client(&self) -> &Client {
        &self.fs.client
    }

    fn clone_fid(&self) -> SysResult<Fid> {
        Ok(self.client().walk(self.fid, &[]).map_err(remote)?.0)
    }

    fn from_ref(i: &InodeRef) -> Option<Arc<GoferInode>> {
        i.as_any().downcast_ref::<GoferInode>().and_then(|g| g.me.upgrade())
    }

    /// Another inode of the same mount, for rename and link.
    fn same_fs(&self, other: &InodeRef) -> SysResult<Arc<GoferInode>> {
        let other = GoferInode::from_ref(other).ok_or(errno!(EXDEV))?;
        if Arc::ptr_eq(&other.fs, &self.fs) {
            Ok(other)
        } else {
            Err(errno!(EXDEV))
        }
    }

    /// Forgets cached attributes (and a directory's entries) after a change.
    fn invalidate(&self) {
        *self.attr.lock().unwrap() = None;
        *self.listing.lock().unwrap() = None;
    }

    fn fetch_listing(&self) -> SysResult<Vec<DirEntry>> {
        let fid = self.clone_fid()?;
        let result = (|| {
            self.client().lopen(fid, O_DIRECTORY).map_err(remote)?;
            let mut out = Vec::new();
            let mut off = 0;
            loop {
                let ents = self.client().readdir(fid, off, 64 * 1024).map_err(remote)?;
                if ents.is_empty() {
                    break;
                }
                for e in ents {
                    off = e.offset;
                    if e.name == b"." || e.name == b".." {
                        continue;
                    }
                    let ftype = match e.dtype {
                        4 => FileType::Directory,
                        10 => FileType::Symlink,
                        1 => FileType::Fifo,
                        2 => FileType::CharDev,
                        6 => FileType::BlockDev,
                        12 => FileType::Socket,
                        _ => FileType::Regular,
                    };
                    out.push(DirEntry { ino: e.qid.path, ftype, name: e.name });
                }
            }
            Ok(out)
        })();
        let _ = self.client().clunk(fid);
        result
    }

    fn writable(&self) -> SysResult<()> {
        if self.fs.read_only {
            Err(errno!(EROFS))
        } else {
            Ok(())
        }
    }

    fn fetch_stat(&self) -> SysResult<Stat> {
        let host = self.host.lock().unwrap().clone();
        if let Some(file) = host {
            let m = file.metadata()?;
            return Ok(Stat {
                dev: self.fs.id,
                ino: m.ino(),
                mode: m.mode(),
                nlink: m.nlink(),
                uid: m.uid(),
                gid: m.gid(),
                rdev: m.rdev(),
                size: m.size(),
                blksize: m.blksize(),
                blocks: m.blocks(),
                atime: Timespec { sec: m.atime(), nsec: m.atime_nsec() },
                mtime: Timespec { sec: m.mtime(), nsec: m.mtime_nsec() },
                ctime: Timespec { sec: m.ctime(), nsec: m.ctime_nsec() },
            });
        }
        let a = self.client().getattr(self.fid, p9::getattr::BASIC).map_err(remote)?;
        let time = |sec: u64, nsec: u64| Timespec { sec: sec as i64, nsec: nsec as i64 };
        Ok(Stat {
            dev: self.fs.id,
            ino: a.qid.path,
            mode: a.mode,
            nlink: a.nlink,
            uid: a.uid,
            gid: a.gid,
            rdev: a.rdev,
            size: a.size,
            blksize: a.blksize,
            blocks: a.blocks,
            atime: time(a.atime_sec, a.atime_nsec),
            mtime: time(a.mtime_sec, a.mtime_nsec),
            ctime: time(a.ctime_sec, a.ctime_nsec),
        })
    }

    /// Walks to `name` afresh: a new inode with its own fid.
    fn walk_child(&self, name: &[u8]) -> SysResult<Option<Arc<GoferInode>>> {
        match self.client().walk(self.fid, &[name]) {
            Ok((fid, _)) => Ok(Some(Self::wrap(&self.fs, fid))),
            Err(p9::Error::Remote(e)) if e == Errno::ENOENT.0 => Ok(None),
            Err(e) => Err(remote(e)),
        }
    }

    /// Records a child just made or walked to.
    fn adopt(&self, name: &[u8], child: &Arc<GoferInode>) {
        if self.fs.sharing == Sharing::Exclusive {
            self.children.insert(name, child);
            self.fs.recent.keep(child);
        }
    }

    /// After `name` was created: its inode, for the VFS.
    fn created(&self, name: &[u8]) -> SysResult<InodeRef> {
        self.invalidate();
        self.children.forget(name);
        let child = self.walk_child(name)?.ok_or(errno!(ENOENT))?;
        self.adopt(name, &child);
        Ok(child)
    }

    /// Opens a regular file for I/O.
    fn open_file(self: &Arc<Self>, flags: u32) -> SysResult<Arc<dyn FileOps>> {
        let access = flags & O_ACCMODE;
        let writing = access != 0 || flags & O_TRUNC != 0;
        if writing {
            self.writable()?;
        }
        // O_APPEND stays with the Sentry, which places every write itself.
        let host_flags = access | (flags & O_TRUNC);
        let reuse = !writing && self.fs.sharing == Sharing::Exclusive;
        if reuse {
            if let Some(file) = self.host.lock().unwrap().clone() {
                return Ok(Arc::new(GoferFile { inode: self.clone(), io: Io::Host(file) }));
            }
        }
        if let Some(file) = self.fs.donate(self.fid, host_flags)? {
            if writing {
                self.invalidate();
            }
            if !writing {
                *self.host.lock().unwrap() = Some(file.clone());
            }
            return Ok(Arc::new(GoferFile { inode: self.clone(), io: Io::Host(file) }));
        }
        let fid = self.clone_fid()?;
        if let Err(e) = self.client().lopen(fid, host_flags) {
            let _ = self.client().clunk(fid);
            return Err(remote(e));
        }
        if writing {
            self.invalidate();
        }
        Ok(Arc::new(GoferFile { inode: self.clone(), io: Io::Fid(fid) }))
    }

    fn set_attr(&self, a: &SetAttr) -> SysResult<()> {
        use p9::setattr as bit;
        let mut attr = p9::SetAttr::default();
        if let Some(mode) = a.mode {
            attr.valid |= bit::MODE;
            attr.mode = mode & 0o7777;
        }
        if let Some(uid) = a.uid {
            attr.valid |= bit::UID;
            attr.uid = uid;
        }
        if let Some(gid) = a.gid {
            attr.valid |= bit::GID;
            attr.gid = gid;
        }
        if let Some(size) = a.size {
            attr.valid |= bit::SIZE;
            attr.size = size;
        }
        if let Some(t) = a.atime {
            attr.valid |= bit::ATIME | bit::ATIME_SET;
            attr.atime_sec = t.sec as u64;
            attr.atime_nsec = t.nsec as u64;
        }
        if let Some(t) = a.mtime {
            attr.valid |= bit::MTIME | bit::MTIME_SET;
            attr.mtime_sec = t.sec as u64;
            attr.mtime_nsec = t.nsec as u64;
        }
        self.client().setattr(self.fid, &attr).map_err(remote)
    }
}

impl Drop for GoferInode {
    fn drop(&mut self) {
        let _ = self.fs.client.clunk(self.fid);
    }
}

impl Inode for GoferInode {
    fn stat(&self) -> SysResult<Stat> {
        if self.fs.sharing == Sharing::Exclusive {
            if let Some(s) = self.attr.lock().unwrap().as_ref() {
                return Ok(s.clone());
            }
        }
        let st = self.fetch_stat()?;
        // A file with other names has other inodes here, whose writes would
        // not invalidate this one's attributes (a writable root's hard links).
        let other_names = st.nlink > 1 && st.file_type() != FileType::Directory;
        if self.fs.sharing == Sharing::Exclusive && !other_names {
            *self.attr.lock().unwrap() = Some(st.clone());
        }
        Ok(st)
    }

    fn lookup(&self, name: &[u8]) -> SysResult<InodeRef> {
        if self.fs.sharing == Sharing::Exclusive {
            match self.children.get(name) {
                Lookup::Hit(c) => return Ok(c),
                Lookup::Absent => return Err(errno!(ENOENT)),
                Lookup::Unknown => {}
            }
        }
        match self.walk_child(name)? {
            Some(child) => {
                self.adopt(name, &child);
                Ok(child)
            }
            None => {
                if self.fs.sharing == Sharing::Exclusive {
                    self.children.insert_absent(name);
                }
                Err(errno!(ENOENT))
            }
        }
    }

    fn readdir(&self) -> SysResult<Vec<DirEntry>> {
        if self.fs.sharing == Sharing::Shared {
            return self.fetch_listing();
        }
        if let Some(listing) = self.listing.lock().unwrap().clone() {
            return Ok(listing.to_vec());
        }
        let listing = Arc::new(self.fetch_listing()?);
        *self.listing.lock().unwrap() = Some(listing.clone());
        Ok(listing.to_vec())
    }

    fn readlink(&self) -> SysResult<Vec<u8>> {
        self.client().readlink(self.fid).map_err(remote)
    }

    fn open(self: Arc<Self>, flags: u32) -> SysResult<Arc<dyn FileOps>> {
        match self.stat()?.file_type() {
            FileType::Directory => Ok(Arc::new(GoferDir)),
            FileType::Regular => self.open_file(flags),
            FileType::Symlink => Err(errno!(ELOOP)),
            // Device nodes, FIFOs and sockets in a served tree are metadata
            // only: the host object is never opened.
            _ => Err(errno!(EACCES)),
        }
    }

    fn create(&self, name: &[u8], node: NewNode) -> SysResult<InodeRef> {
        self.writable()?;
        match node {
            NewNode::File { mode } => {
                // Tlcreate turns a clone of the directory's fid into the new file's.
                let fid = self.clone_fid()?;
                const O_RDWR_CREAT_EXCL: u32 = 2 | 0o100 | 0o200;
                if let Err(e) = self.client().lcreate(fid, name, O_RDWR_CREAT_EXCL, mode & 0o7777, 0) {
                    let _ = self.client().clunk(fid);
                    return Err(remote(e));
                }
                self.invalidate();
                self.children.forget(name);
                let child = Self::wrap(&self.fs, fid);
                self.adopt(name, &child);
                return Ok(child);
            }
            NewNode::Dir { mode } => self.client().mkdir(self.fid, name, mode & 0o7777, 0),
            NewNode::Symlink { target } => self.client().symlink(self.fid, name, &target, 0),
            NewNode::Fifo { mode } => self.client().mknod(self.fid, name, S_IFIFO | (mode & 0o7777), 0, 0, 0),
        }
        .map_err(remote)?;
        self.created(name)
    }

    fn unlink(&self, name: &[u8], dir: bool) -> SysResult<()> {
        self.writable()?;
        let flags = if dir { p9::AT_REMOVEDIR } else { 0 };
        let result = self.client().unlinkat(self.fid, name, flags).map_err(remote);
        self.invalidate();
        self.children.forget(name);
        result
    }

    fn rename(&self, old: &[u8], new_dir: &InodeRef, new: &[u8]) -> SysResult<()> {
        let target = self.same_fs(new_dir)?;
        self.writable()?;
        let result = self.client().renameat(self.fid, old, target.fid, new).map_err(remote);
        for (dir, name) in [(self, old), (&*target, new)] {
            dir.invalidate();
            dir.children.forget(name);
        }
        result
    }

    fn link(&self, name: &[u8], target: &InodeRef) -> SysResult<()> {
        let target = self.same_fs(target)?;
        self.writable()?;
        let result = self.client().link(self.fid, target.fid, name).map_err(remote);
        target.invalidate();
        self.invalidate();
        self.children.forget(name);
        result
    }

    fn setattr(&self, attr: &SetAttr) -> SysResult<()> {
        self.writable()?;
        let result = self.set_attr(attr);
        self.invalidate();
        result
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    /// The host filesystem's, as the Gofer reads it with fstatfs: its own
    /// magic number too, as runc's container sees the directory's.
    fn statfs(&self) -> SysResult<crate::vfs::FsSpace> {
        let s = self.fs.client.statfs(self.fid).map_err(remote)?;
        Ok(crate::vfs::FsSpace {
            magic: Some(i64::from(s.fs_type)),
            bsize: u64::from(s.bsize),
            blocks: s.blocks,
            bfree: s.bfree,
            bavail: s.bavail,
            files: s.files,
            ffree: s.ffree,
            namelen: u64::from(s.namelen),
        })
    }

    fn fs_id(&self) -> u64 {
        self.fs.id
    }
}

#[derive(Debug)]
struct GoferDir;

impl FileOps for GoferDir {
    fn read(&self, _f: &OpenFile, _dst: &mut dyn IoDst, _off: u64) -> SysResult<usize> {
        Err(errno!(EISDIR))
    }
}

/// Where an open Gofer file's bytes go.
#[derive(Debug)]
enum Io {
    /// A host fd the Gofer donated.
    Host(Arc<File>),
    /// An opened fid, read and written over 9P.
    Fid(Fid),
}

#[derive(Debug)]
struct GoferFile {
    inode: Arc<GoferInode>,
    io: Io,
}

impl FileOps for GoferFile {
    fn read(&self, _f: &OpenFile, dst: &mut dyn IoDst, off: u64) -> SysResult<usize> {
        match &self.io {
            // The kernel moves the bytes from the donated file to app memory.
            Io::Host(file) => dst.read_file(0, file, off, dst.space()),
            Io::Fid(fid) => {
                let client = self.inode.client();
                read_through(dst, |done, buf| client.read(*fid, off + done as u64, buf).map_err(remote))
            }
        }
    }

    fn data_extent(&self, _f: &OpenFile, off: u64) -> SysResult<Option<(u64, u64)>> {
        match &self.io {
            Io::Host(file) => {
                host::sys::data_extent(std::os::fd::AsFd::as_fd(&**file), off).map_err(crate::Error::from)
            }
            Io::Fid(_) => Ok(Some((off, u64::MAX))),
        }
    }

    fn write(&self, _f: &OpenFile, src: &dyn IoSrc, off: u64) -> SysResult<usize> {
        let written = match &self.io {
            Io::Host(file) => src.write_file(0, file, off, src.size()),
            Io::Fid(fid) => {
                let client = self.inode.client();
                write_through(src, |done, data| client.write(*fid, off + done as u64, data).map_err(remote))
            }
        };
        self.inode.invalidate();
        written
    }
}

impl Drop for GoferFile {
    fn drop(&mut self) {
        if let Io::Fid(fid) = self.io {
            let _ = self.inode.client().clunk(fid);
        }
    }
}
