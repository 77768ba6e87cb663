//! The Gofer-backed filesystem: a 9P2000.L client view of the host tree the
//! Gofer serves. Read-only here; the overlay above it takes the writes.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use abi::Errno;
use p9::{Client, Fid};

use crate::vfs::{new_fs_id, DirEntry, FileOps, FileType, Inode, InodeRef, OpenFile, Stat, Timespec};
use crate::SysResult;

const GETATTR_BASIC: u64 = 0x7ff;
const O_DIRECTORY: u32 = 0o200000;

fn remote(e: p9::Error) -> Errno {
    Errno(e.errno())
}

/// One file on the Gofer, holding a walked fid. Attributes and children are cached:
/// the root is mounted exclusive, so nothing else changes it behind our back.
#[derive(Debug)]
pub struct GoferInode {
    client: Arc<Client>,
    fid: Fid,
    fs: u64,
    attr: Mutex<Option<Stat>>,
    children: Mutex<HashMap<Vec<u8>, Option<Arc<GoferInode>>>>,
    me: Weak<GoferInode>,
}

impl GoferInode {
    /// Attaches to the Gofer's root.
    pub fn attach(client: Arc<Client>) -> SysResult<Arc<GoferInode>> {
        let (fid, _) = client.attach("/").map_err(remote)?;
        Ok(Self::wrap(client, fid, new_fs_id()))
    }

    fn wrap(client: Arc<Client>, fid: Fid, fs: u64) -> Arc<GoferInode> {
        Arc::new_cyclic(|me| GoferInode {
            client,
            fid,
            fs,
            attr: Mutex::new(None),
            children: Mutex::new(HashMap::new()),
            me: me.clone(),
        })
    }

    fn clone_fid(&self) -> SysResult<Fid> {
        Ok(self.client.walk(self.fid, &[]).map_err(remote)?.0)
    }
}

impl Drop for GoferInode {
    fn drop(&mut self) {
        let _ = self.client.clunk(self.fid);
    }
}

impl Inode for GoferInode {
    fn stat(&self) -> SysResult<Stat> {
        if let Some(s) = self.attr.lock().unwrap().as_ref() {
            return Ok(s.clone());
        }
        let a = self.client.getattr(self.fid, GETATTR_BASIC).map_err(remote)?;
        let st = Stat {
            dev: self.fs,
            ino: a.qid.path,
            mode: a.mode,
            nlink: a.nlink,
            uid: a.uid,
            gid: a.gid,
            rdev: a.rdev,
            size: a.size,
            blksize: a.blksize,
            blocks: a.blocks,
            atime: Timespec { sec: a.atime_sec as i64, nsec: a.atime_nsec as i64 },
            mtime: Timespec { sec: a.mtime_sec as i64, nsec: a.mtime_nsec as i64 },
            ctime: Timespec { sec: a.ctime_sec as i64, nsec: a.ctime_nsec as i64 },
        };
        *self.attr.lock().unwrap() = Some(st.clone());
        Ok(st)
    }

    fn lookup(&self, name: &[u8]) -> SysResult<InodeRef> {
        if let Some(c) = self.children.lock().unwrap().get(name) {
            return c.clone().map(|c| c as InodeRef).ok_or(Errno::ENOENT);
        }
        let child = match self.client.walk(self.fid, &[name]) {
            Ok((fid, _)) => Some(Self::wrap(self.client.clone(), fid, self.fs)),
            Err(p9::Error::Remote(e)) if e == Errno::ENOENT.0 => None,
            Err(e) => return Err(remote(e)),
        };
        self.children.lock().unwrap().insert(name.to_vec(), child.clone());
        child.map(|c| c as InodeRef).ok_or(Errno::ENOENT)
    }

    fn readdir(&self) -> SysResult<Vec<DirEntry>> {
        let fid = self.clone_fid()?;
        let result = (|| {
            self.client.lopen(fid, O_DIRECTORY).map_err(remote)?;
            let mut out = Vec::new();
            let mut off = 0;
            loop {
                let ents = self.client.readdir(fid, off, 64 * 1024).map_err(remote)?;
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
        let _ = self.client.clunk(fid);
        result
    }

    fn readlink(&self) -> SysResult<Vec<u8>> {
        self.client.readlink(self.fid).map_err(remote)
    }

    fn open(self: Arc<Self>, flags: u32) -> SysResult<Arc<dyn FileOps>> {
        if flags & 3 != 0 || flags & 0o1000 != 0 {
            return Err(Errno::EROFS);
        }
        let st = self.stat()?;
        match st.file_type() {
            FileType::Directory => Ok(Arc::new(GoferDir)),
            FileType::Regular => {
                let fid = self.clone_fid()?;
                if let Err(e) = self.client.lopen(fid, 0) {
                    let _ = self.client.clunk(fid);
                    return Err(remote(e));
                }
                Ok(Arc::new(GoferFile { client: self.client.clone(), fid }))
            }
            FileType::Symlink => Err(Errno::ELOOP),
            // Device nodes and FIFOs in the rootfs are metadata only: never opened on the host.
            _ => Err(Errno::EACCES),
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn fs_id(&self) -> u64 {
        self.fs
    }
}

impl GoferInode {
    /// Reads a whole regular file (for copy-up).
    pub fn read_all(self: &Arc<Self>) -> SysResult<Vec<u8>> {
        let f = self.clone().open(0)?;
        let size = self.stat()?.size as usize;
        let mut out = vec![0u8; size];
        let file = OpenFile::new(f.clone(), None, 0);
        let mut done = 0;
        while done < out.len() {
            let n = f.read(&file, &mut out[done..], done as u64)?;
            if n == 0 {
                break;
            }
            done += n;
        }
        out.truncate(done);
        Ok(out)
    }

    /// Downcasts a generic inode.
    pub fn from_ref(i: &InodeRef) -> Option<Arc<GoferInode>> {
        i.as_any().downcast_ref::<GoferInode>().and_then(|g| g.me.upgrade())
    }
}

#[derive(Debug)]
struct GoferDir;

impl FileOps for GoferDir {
    fn read(&self, _f: &OpenFile, _buf: &mut [u8], _off: u64) -> SysResult<usize> {
        Err(Errno::EISDIR)
    }
}

#[derive(Debug)]
struct GoferFile {
    client: Arc<Client>,
    fid: Fid,
}

impl FileOps for GoferFile {
    fn read(&self, _f: &OpenFile, buf: &mut [u8], off: u64) -> SysResult<usize> {
        self.client.read(self.fid, off, buf).map_err(remote)
    }
}

impl Drop for GoferFile {
    fn drop(&mut self) {
        let _ = self.client.clunk(self.fid);
    }
}
