//! Opening files by path for a caller: O_CREAT, O_EXCL, O_TRUNC,
//! O_DIRECTORY, O_NOFOLLOW, O_PATH and O_TMPFILE, with the permissions an
//! open needs and the owner and inotify event of a file it creates.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use abi::Errno;

use super::attr::own_new_file;
use super::inotify::{IN_CREATE, IN_OPEN};
use super::permission::{self, MAY_EXEC, MAY_READ, MAY_WRITE};
use super::{Caller, Dentry, FileOps, FileType, Follow, NewNode, OpenFile, Vfs};
use crate::mm::{IoDst, IoSrc};
use crate::SysResult;

/// The access mode: the low two bits, 0 for O_RDONLY.
pub const O_ACCMODE: u32 = 3;
pub const O_CREAT: u32 = 0o100;
pub const O_EXCL: u32 = 0o200;
pub const O_NOCTTY: u32 = 0o400;
pub const O_TRUNC: u32 = 0o1000;
pub const O_APPEND: u32 = 0o2000;
pub const O_NONBLOCK: u32 = 0o4000;
pub const O_DIRECTORY: u32 = 0o200000;
pub const O_NOFOLLOW: u32 = 0o400000;
pub const O_CLOEXEC: u32 = 0o2000000;
pub const O_PATH: u32 = 0o10000000;
/// Linux's __O_TMPFILE: the app's O_TMPFILE is this with O_DIRECTORY.
pub const O_TMPFILE: u32 = 0o20000000;

/// An O_PATH description: names a file, allows no I/O.
#[derive(Debug)]
struct PathOnly;

impl FileOps for PathOnly {
    fn read(&self, _f: &OpenFile, _dst: &mut dyn IoDst, _o: u64) -> SysResult<usize> {
        Err(errno!(EBADF))
    }
    fn write(&self, _f: &OpenFile, _src: &dyn IoSrc, _o: u64) -> SysResult<usize> {
        Err(errno!(EBADF))
    }
}

/// The MAY_* bits an open with `flags` needs on an existing file.
fn open_access(flags: u32) -> u32 {
    let mut want = match flags & O_ACCMODE {
        0 => MAY_READ,
        1 => MAY_WRITE,
        _ => MAY_READ | MAY_WRITE,
    };
    if flags & O_TRUNC != 0 {
        want |= MAY_WRITE;
    }
    want
}

impl Vfs {
    /// open(2) of `path` from `start` with the O_* `flags` (O_TMPFILE aside:
    /// `open_tmpfile`). With O_CREAT a missing file is made with `mode`
    /// less the caller's umask, and its creator may open it as it asked
    /// whatever that mode; an existing file needs the access `flags` ask for.
    /// The description keeps the flags but O_CREAT, O_EXCL, O_NOCTTY,
    /// O_CLOEXEC (the descriptor's, for the caller to apply) and O_TRUNC
    /// (done here, to regular files only).
    pub fn open_at(
        &self,
        who: &Caller,
        start: &Arc<Dentry>,
        path: &[u8],
        flags: u32,
        mode: u32,
    ) -> SysResult<Arc<OpenFile>> {
        let follow = if flags & (O_NOFOLLOW | O_EXCL) != 0 { Follow::No } else { Follow::Yes };
        // A file that appears between the lookup and the create (another process,
        // or the host on a shared mount) is opened as if it had been there.
        const CREATE_TRIES: u32 = 4;
        let mut tries = 0;
        let mut created = false;
        let d = loop {
            tries += 1;
            match self.lookup_at(who, start, path, follow) {
                Ok(d) => {
                    if flags & O_CREAT != 0 && flags & O_EXCL != 0 {
                        return Err(errno!(EEXIST));
                    }
                    break d;
                }
                Err(e) if e == Errno::ENOENT && (flags & O_CREAT != 0) => {
                    let (dir, name) = self.creation_point(who, start, path)?;
                    if name.is_empty() || name == b"." || name == b".." || path.ends_with(b"/") {
                        return Err(errno!(EISDIR));
                    }
                    permission::may_change_entries(&who.creds, &*dir.inode)?;
                    let inode = match dir.inode.create(&name, NewNode::File { mode: mode & !who.umask & 0o7777 }) {
                        Err(e) if e == Errno::EEXIST && (flags & O_EXCL == 0 && tries < CREATE_TRIES) => continue,
                        other => other?,
                    };
                    own_new_file(&who.creds, &*dir.inode, &*inode);
                    let d = Dentry::new_child(&dir, &name, inode);
                    who.events.dentry(&d, IN_CREATE);
                    created = true;
                    break d;
                }
                Err(e) => return Err(e),
            }
        };
        let st = d.inode.stat()?;
        let ft = st.file_type();
        // O_DIRECTORY holds for O_PATH too (mv asks this way whether its target is a directory).
        if flags & O_DIRECTORY != 0 && ft != FileType::Directory {
            return Err(errno!(ENOTDIR));
        }
        if flags & O_PATH != 0 {
            return Ok(OpenFile::new(Arc::new(PathOnly), Some(d), O_PATH));
        }
        if ft == FileType::Symlink {
            return Err(errno!(ELOOP));
        }
        if ft == FileType::Directory && (flags & O_ACCMODE != 0 || flags & O_CREAT != 0) {
            return Err(errno!(EISDIR));
        }
        // The creator of a file may open it as it asked, whatever mode it gave it.
        if !created && d.inode.enforces_mode_bits() {
            permission::check(&who.creds, &st, open_access(flags))?;
        }
        let open_flags = flags & !(O_CREAT | O_EXCL | O_NOCTTY | O_CLOEXEC);
        let ops = d.inode.clone().open(if ft == FileType::Regular { open_flags } else { open_flags & !O_TRUNC })?;
        who.events.dentry(&d, IN_OPEN);
        Ok(OpenFile::new(ops, Some(d), open_flags & !O_TRUNC))
    }

    /// Where O_CREAT of `path` (which does not resolve) creates the file: its
    /// parent and last name, or, when that name is a dangling symlink, the
    /// symlink's target, as Linux does.
    fn creation_point(&self, who: &Caller, start: &Arc<Dentry>, path: &[u8]) -> SysResult<(Arc<Dentry>, Vec<u8>)> {
        const MAX_HOPS: u32 = 40;
        let (mut dir, mut name) = self.lookup_parent_at(who, start, path)?;
        for _ in 0..MAX_HOPS {
            if !permission::searches_anything(&who.creds) {
                permission::may(&who.creds, &*dir.inode, MAY_EXEC)?;
            }
            let link = match self.step(&who.root, &dir, &name) {
                Ok(d) if d.inode.stat()?.file_type() == FileType::Symlink => d,
                Ok(_) => return Ok((dir, name)),
                Err(e) if e == Errno::ENOENT => return Ok((dir, name)),
                Err(e) => return Err(e),
            };
            let target = link.inode.readlink()?;
            (dir, name) = self.lookup_parent_at(who, &dir, &target)?;
        }
        Err(errno!(ELOOP))
    }

    /// O_TMPFILE: an unnamed regular file in the filesystem of the directory
    /// `path` names, which `who` must be allowed to add names to. It is
    /// created under a private name and unlinked at once; the open file keeps
    /// it alive. `flags` must ask for writing: the syscall refuses the rest
    /// (EINVAL) before it reads the path, as Linux does.
    pub fn open_tmpfile(
        &self,
        who: &Caller,
        start: &Arc<Dentry>,
        path: &[u8],
        flags: u32,
        mode: u32,
    ) -> SysResult<Arc<OpenFile>> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = self.lookup_at(who, start, path, Follow::Yes)?;
        if dir.inode.stat()?.file_type() != FileType::Directory {
            return Err(errno!(ENOTDIR));
        }
        permission::may_change_entries(&who.creds, &*dir.inode)?;
        let name = format!(".moat-tmpfile-{}", NEXT.fetch_add(1, Ordering::Relaxed)).into_bytes();
        let inode = dir.inode.create(&name, NewNode::File { mode: mode & !who.umask & 0o7777 })?;
        own_new_file(&who.creds, &*dir.inode, &*inode);
        let ops = inode.clone().open(flags & O_ACCMODE)?;
        dir.inode.unlink(&name, false)?;
        let mut dname = b"#".to_vec();
        dname.extend_from_slice(&name);
        let d = Dentry::detached(dname, Some(dir), inode);
        Ok(OpenFile::new(ops, Some(d), flags & (O_ACCMODE | O_APPEND | O_NONBLOCK)))
    }
}
