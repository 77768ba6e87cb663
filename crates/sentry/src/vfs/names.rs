//! Changing the names in the tree for a caller: creating, removing,
//! renaming and linking, with Linux's permission rules and inotify events.
//!
//! The syscall layer resolves the parent directory and last name of each
//! path (`Vfs::lookup_parent_at`); what is checked after that, and in which
//! order, is here, so the errno an app sees is the same whoever calls.

use std::sync::Arc;

use abi::Errno;

use super::attr::own_new_file;
use super::inotify::{key_of, IN_CREATE, IN_DELETE};
use super::permission::{self, MAY_EXEC, MAY_WRITE};
use super::{Caller, Dentry, FileType, NewNode, Vfs};
use crate::SysResult;

impl NewNode {
    /// What mknod(2) with `mode` (type and permission bits) makes: a FIFO or
    /// a regular file. Device nodes need CAP_MKNOD, and the Sentry's
    /// filesystems hold none even then; sockets are made by bind(2) (EPERM).
    pub fn for_mknod(mode: u32) -> SysResult<NewNode> {
        const S_IFMT: u32 = 0o170000;
        match mode & S_IFMT {
            0 | 0o100000 => Ok(NewNode::File { mode }),
            0o010000 => Ok(NewNode::Fifo { mode }),
            // Directories as on Linux; devices and socket nodes are not made
            // in a sandbox.
            0o040000 | 0o020000 | 0o060000 | 0o140000 => Err(errno!(EPERM)),
            _ => Err(errno!(EINVAL)),
        }
    }

    /// The node with the caller's umask applied to the mode it asked for
    /// (and the file-type bits dropped); a symlink has no mode.
    fn masked(self, umask: u32) -> NewNode {
        let mask = |mode: u32| mode & !umask & 0o7777;
        match self {
            NewNode::File { mode } => NewNode::File { mode: mask(mode) },
            NewNode::Dir { mode } => NewNode::Dir { mode: mask(mode) },
            NewNode::Fifo { mode } => NewNode::Fifo { mode: mask(mode) },
            NewNode::Symlink { target } => NewNode::Symlink { target },
        }
    }
}

impl Vfs {
    /// Looks `name` up in `dir` for `who`, who must be allowed to search it.
    pub(super) fn step_as(&self, who: &Caller, dir: &Arc<Dentry>, name: &[u8]) -> SysResult<Arc<Dentry>> {
        if !permission::searches_anything(&who.creds) {
            permission::may(&who.creds, &*dir.inode, MAY_EXEC)?;
        }
        self.step(dir, dir, name)
    }

    /// Makes `node` as `name` in `dir` (mkdir, mknod, symlink), its mode as
    /// the app asked, less the caller's umask. EEXIST if the name is taken
    /// (or is `.`/`..`), then write and search permission on `dir`; the new
    /// file is the caller's (`own_new_file`) and inotify hears IN_CREATE.
    pub fn create(&self, who: &Caller, dir: &Arc<Dentry>, name: &[u8], node: NewNode) -> SysResult<()> {
        if name.is_empty() || name == b"." || name == b".." {
            return Err(errno!(EEXIST));
        }
        if self.step_as(who, dir, name).is_ok() {
            return Err(errno!(EEXIST));
        }
        permission::may_change_entries(&who.creds, &*dir.inode)?;
        let is_dir = matches!(node, NewNode::Dir { .. });
        let inode = dir.inode.create(name, node.masked(who.umask))?;
        own_new_file(&who.creds, &*dir.inode, &*inode);
        if let Some(k) = key_of(&dir.inode) {
            who.events.entry(k, name, None, IN_CREATE, is_dir);
        }
        Ok(())
    }

    /// Removes `name` from `dir`: a directory if `rmdir` (rmdir,
    /// unlinkat(AT_REMOVEDIR)), anything else if not. `.` and `..` are
    /// refused first, then `may_delete` (the sticky bit included); inotify
    /// hears IN_DELETE.
    pub fn unlink(&self, who: &Caller, dir: &Arc<Dentry>, name: &[u8], rmdir: bool) -> SysResult<()> {
        if name == b"." {
            return Err(if rmdir { errno!(EINVAL) } else { errno!(EISDIR) });
        }
        if name == b".." || name.is_empty() {
            return Err(if rmdir { errno!(ENOTEMPTY) } else { errno!(EISDIR) });
        }
        permission::may_delete(&who.creds, &*dir.inode, || Ok(Some(self.step_as(who, dir, name)?.inode.clone())))?;
        // Only when someone watches: finding the victim costs a lookup.
        let victim = who.events.in_use().then(|| self.step_as(who, dir, name).ok().map(|d| d.inode.clone())).flatten();
        let victim_key = victim.as_ref().and_then(key_of);
        dir.inode.unlink(name, rmdir)?;
        dir.forget_child(name);
        if let (Some(v), Some(k)) = (victim, victim_key) {
            let last = rmdir || v.stat().map_or(true, |s| s.nlink == 0);
            who.events.unlinked(k, last, rmdir);
        }
        if let Some(k) = key_of(&dir.inode) {
            who.events.entry(k, name, None, IN_DELETE, rmdir);
        }
        Ok(())
    }

    /// Moves `old_name` in `old_dir` to `new_name` in `new_dir`, replacing
    /// what is there unless `no_replace` (RENAME_NOREPLACE: EEXIST). Checked
    /// in Linux's order, near enough: EBUSY for `.`/`..`, deleting from both
    /// directories (the sticky bit included), write permission on a
    /// directory that changes parent (its `..` is rewritten), EINVAL for a
    /// directory moved beneath itself, EXDEV across filesystems. Every holder
    /// of the moved dentry sees its new path; inotify hears the move.
    pub fn rename(
        &self,
        who: &Caller,
        old_dir: &Arc<Dentry>,
        old_name: &[u8],
        new_dir: &Arc<Dentry>,
        new_name: &[u8],
        no_replace: bool,
    ) -> SysResult<()> {
        let (od, on, nd, nn) = (old_dir, old_name, new_dir, new_name);
        for n in [on, nn] {
            if n.is_empty() || n == b"." || n == b".." {
                return Err(errno!(EBUSY));
            }
        }
        if no_replace && self.step_as(who, nd, nn).is_ok() {
            return Err(errno!(EEXIST));
        }
        let src = self.step_as(who, od, on)?;
        permission::may_delete(&who.creds, &*od.inode, || Ok(Some(src.inode.clone())))?;
        // Replacing a file is deleting it.
        permission::may_delete(&who.creds, &*nd.inode, || match self.step_as(who, nd, nn) {
            Ok(replaced) => Ok(Some(replaced.inode.clone())),
            Err(e) if e == Errno::ENOENT => Ok(None),
            Err(e) => Err(e),
        })?;
        // A directory moved to another parent has its `..` rewritten.
        if !Arc::ptr_eq(od, nd) && src.inode.stat()?.file_type() == FileType::Directory {
            permission::may(&who.creds, &*src.inode, MAY_WRITE)?;
        }
        // Refuse to move a directory beneath itself.
        let src_path = src.path();
        let mut dst_path = nd.path();
        dst_path.push(b'/');
        if src.inode.stat()?.file_type() == FileType::Directory
            && dst_path.starts_with(&[src_path.as_slice(), b"/"].concat())
        {
            return Err(errno!(EINVAL));
        }
        if od.inode.fs_id() != nd.inode.fs_id() {
            return Err(errno!(EXDEV));
        }
        let is_dir = src.inode.stat().is_ok_and(|s| s.file_type() == FileType::Directory);
        od.inode.rename(on, &nd.inode, nn)?;
        self.renamed(od, on, nd, nn);
        if let (Some(a), Some(b)) = (key_of(&od.inode), key_of(&nd.inode)) {
            who.events.rename(a, on, b, nn, is_dir);
        }
        Ok(())
    }

    /// Makes a hard link to `src` at the name `new_place` resolves to, as
    /// (directory, name). A directory is refused (EPERM) before that name is
    /// resolved; then EEXIST if it is taken, EXDEV across filesystems, write
    /// and search permission on the directory, and `permission::may_link`.
    pub fn link(
        &self,
        who: &Caller,
        src: &Arc<Dentry>,
        new_place: impl FnOnce() -> SysResult<(Arc<Dentry>, Vec<u8>)>,
    ) -> SysResult<()> {
        if src.inode.stat()?.file_type() == FileType::Directory {
            return Err(errno!(EPERM));
        }
        let (dir, name) = new_place()?;
        if self.step_as(who, &dir, &name).is_ok() {
            return Err(errno!(EEXIST));
        }
        if src.inode.fs_id() != dir.inode.fs_id() {
            return Err(errno!(EXDEV));
        }
        permission::may_change_entries(&who.creds, &*dir.inode)?;
        permission::may_link(&who.creds, &*src.inode)?;
        dir.inode.link(&name, &src.inode)
    }
}
