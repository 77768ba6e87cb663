//! Names and directories: getdents64, getcwd, chdir, chroot, mkdir, mknod,
//! symlink, unlink, rename, link and readlink.

use std::sync::Arc;

use super::path::{
    caller, file, file_raw, lookup, lookup_as, parent_of, AT_EMPTY_PATH, AT_FDCWD, AT_REMOVEDIR, AT_SYMLINK_FOLLOW,
    AT_SYMLINK_NOFOLLOW,
};
use crate::auth::capability::CAP_SYS_CHROOT;
use crate::kernel::CurrentTask;
use crate::vfs::permission;
use crate::vfs::{Dentry, FileType, NewNode};
use crate::SysResult;
use abi::file::Dirent64;
use abi::AsBytes;
use std::mem::size_of;

pub fn sys_getdents64(t: &mut CurrentTask, fd: i32, buf: u64, len: usize) -> SysResult<u64> {
    let f = file(t, fd)?;
    let d = f.dentry.clone().ok_or(errno!(ENOTDIR))?;
    let st = d.inode.stat()?;
    if st.file_type() != FileType::Directory {
        return Err(errno!(ENOTDIR));
    }
    let mut snap = f.dir_snapshot.lock().unwrap();
    let mut pos = f.pos.lock().unwrap();
    if snap.is_none() || *pos == 0 {
        let parent_ino = d.parent().and_then(|p| p.inode.stat().ok()).map(|s| s.ino).unwrap_or(st.ino);
        let mut v = vec![
            crate::vfs::DirEntry { ino: st.ino, ftype: FileType::Directory, name: b".".to_vec() },
            crate::vfs::DirEntry { ino: parent_ino, ftype: FileType::Directory, name: b"..".to_vec() },
        ];
        v.extend(d.inode.readdir()?);
        *snap = Some(v);
    }
    let entries = snap.as_ref().expect("snapshot set above");
    let mut out = Vec::new();
    let mut i = *pos as usize;
    while i < entries.len() {
        let e = &entries[i];
        let reclen = (size_of::<Dirent64>() + e.name.len() + 1).div_ceil(8) * 8;
        if out.len() + reclen > len {
            break;
        }
        let start = out.len();
        let head = Dirent64 { ino: e.ino, off: (i + 1) as i64, reclen: reclen as u16, kind: e.ftype.dtype() };
        out.extend(head.as_bytes());
        out.extend(&e.name);
        out.resize(start + reclen, 0);
        i += 1;
    }
    if out.is_empty() && i < entries.len() {
        return Err(errno!(EINVAL));
    }
    *pos = i as u64;
    t.write_mem(buf, &out)?;
    Ok(out.len() as u64)
}

pub fn sys_readlinkat(t: &mut CurrentTask, dirfd: i32, path: u64, buf: u64, len: usize) -> SysResult<u64> {
    if len == 0 || len > i32::MAX as usize {
        return Err(errno!(EINVAL));
    }
    let d = lookup(t, dirfd, path, AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)?;
    let target = d.inode.readlink()?;
    let n = target.len().min(len);
    t.write_mem(buf, &target[..n])?;
    Ok(n as u64)
}

pub fn sys_getcwd(t: &mut CurrentTask, buf: u64, len: usize) -> SysResult<u64> {
    let fs = t.tg().fs.lock().unwrap().clone();
    let mut p = path_from_root(&fs.root, &fs.cwd);
    p.push(0);
    if p.len() > len {
        return Err(errno!(ERANGE));
    }
    t.write_mem(buf, &p)?;
    Ok(p.len() as u64)
}

/// The path of `d` as a process whose root is `root` sees it (after chroot):
/// Linux's "(unreachable)" prefix for a directory outside that root.
pub(super) fn path_from_root(root: &Arc<Dentry>, d: &Arc<Dentry>) -> Vec<u8> {
    let path = d.path();
    let root_path = root.path();
    if root_path == b"/" {
        return path;
    }
    if path == root_path {
        return b"/".to_vec();
    }
    match path.strip_prefix(root_path.as_slice()) {
        Some(rest) if rest.starts_with(b"/") => rest.to_vec(),
        _ => [b"(unreachable)".as_slice(), &path].concat(),
    }
}

pub(super) fn set_cwd(t: &CurrentTask, d: Arc<Dentry>) -> SysResult<u64> {
    permission::may_enter(&t.creds(), &*d.inode)?;
    t.tg().fs.lock().unwrap().cwd = d;
    Ok(0)
}

pub fn sys_chdir(t: &mut CurrentTask, path: u64) -> SysResult<u64> {
    let d = lookup(t, AT_FDCWD, path, 0)?;
    set_cwd(t, d)
}

pub fn sys_fchdir(t: &mut CurrentTask, fd: i32) -> SysResult<u64> {
    let d = file_raw(t, fd)?.dentry.clone().ok_or(errno!(ENOTDIR))?;
    set_cwd(t, d)
}

/// chroot(2): later absolute paths (and `..` at the top) stop at `path`. The
/// working directory stays where it is, as on Linux.
pub fn sys_chroot(t: &mut CurrentTask, path: u64) -> SysResult<u64> {
    let d = lookup(t, AT_FDCWD, path, 0)?;
    permission::may_enter(&t.creds(), &*d.inode)?;
    if !t.capable(CAP_SYS_CHROOT) {
        return Err(errno!(EPERM));
    }
    t.tg().fs.lock().unwrap().root = d;
    Ok(0)
}

pub(super) fn create_at(t: &CurrentTask, dirfd: i32, path: u64, node: NewNode) -> SysResult<u64> {
    let who = caller(t);
    let (dir, name) = parent_of(t, &who, dirfd, path)?;
    t.k.vfs.create(&who, &dir, &name, node)?;
    Ok(0)
}

pub fn sys_mkdirat(t: &mut CurrentTask, dirfd: i32, path: u64, mode: u32) -> SysResult<u64> {
    create_at(t, dirfd, path, NewNode::Dir { mode })
}

pub fn sys_mknodat(t: &mut CurrentTask, dirfd: i32, path: u64, mode: u32, _dev: u64) -> SysResult<u64> {
    let node = NewNode::for_mknod(mode)?;
    create_at(t, dirfd, path, node)
}

pub fn sys_symlinkat(t: &mut CurrentTask, target: u64, dirfd: i32, path: u64) -> SysResult<u64> {
    let target = t.read_cstr(target)?;
    if target.is_empty() {
        return Err(errno!(ENOENT));
    }
    create_at(t, dirfd, path, NewNode::Symlink { target })
}

pub fn sys_unlinkat(t: &mut CurrentTask, dirfd: i32, path: u64, flags: u32) -> SysResult<u64> {
    if flags & !AT_REMOVEDIR != 0 {
        return Err(errno!(EINVAL));
    }
    let who = caller(t);
    let (dir, name) = parent_of(t, &who, dirfd, path)?;
    t.k.vfs.unlink(&who, &dir, &name, flags & AT_REMOVEDIR != 0)?;
    Ok(0)
}

pub fn sys_renameat2(
    t: &mut CurrentTask,
    olddirfd: i32,
    oldpath: u64,
    newdirfd: i32,
    newpath: u64,
    flags: u32,
) -> SysResult<u64> {
    const RENAME_NOREPLACE: u32 = 1;
    if flags & !RENAME_NOREPLACE != 0 {
        return Err(errno!(EINVAL));
    }
    let who = caller(t);
    let (od, on) = parent_of(t, &who, olddirfd, oldpath)?;
    let (nd, nn) = parent_of(t, &who, newdirfd, newpath)?;
    t.k.vfs.rename(&who, &od, &on, &nd, &nn, flags & RENAME_NOREPLACE != 0)?;
    Ok(0)
}

pub fn sys_linkat(
    t: &mut CurrentTask,
    olddirfd: i32,
    oldpath: u64,
    newdirfd: i32,
    newpath: u64,
    flags: u32,
) -> SysResult<u64> {
    if flags & !(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(errno!(EINVAL));
    }
    let follow = if flags & AT_SYMLINK_FOLLOW != 0 { 0 } else { AT_SYMLINK_NOFOLLOW };
    let who = caller(t);
    let src = lookup_as(t, &who, olddirfd, oldpath, follow | (flags & AT_EMPTY_PATH))?;
    t.k.vfs.link(&who, &src, || parent_of(t, &who, newdirfd, newpath))?;
    Ok(0)
}
