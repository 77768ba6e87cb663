//! Attribute changes for a caller (chmod, chown, truncate, utimes) with
//! Linux's rules for who may make them, and who owns a file just made.
//!
//! Linux's setattr_prepare decides these; the set-ID bits a change drops
//! are added to the change itself, so the filesystem makes both at once.

use std::sync::Arc;

use super::inotify::{IN_ATTRIB, IN_MODIFY};
use super::permission::{self, MAY_WRITE, S_ISGID, S_ISUID, S_IXGRP};
use super::{Caller, Dentry, FileType, Inode, OpenFile, SetAttr, Vfs};
use crate::auth::capability::{CAP_CHOWN, CAP_FSETID};
use crate::auth::Creds;
use crate::SysResult;

/// What an attribute change is, for who may make it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Mode,
    Owner,
    /// Both times set to now (utimes with no times): the owner, or anyone who may write.
    TouchTimes,
    /// Times set to given values: the owner only.
    SetTimes,
    /// A size, through a descriptor open for writing.
    Size,
}

impl Vfs {
    /// Makes `change` (`attr`) to the file `d` names, if `who` may (chmod,
    /// chown, utimes by path); inotify hears IN_ATTRIB, or IN_MODIFY for a size.
    pub fn set_attr(&self, who: &Caller, d: &Dentry, change: Change, mut attr: SetAttr) -> SysResult<()> {
        permit_change(&who.creds, &*d.inode, change, &mut attr)?;
        d.inode.setattr(&attr)?;
        who.events.dentry(d, if attr.size.is_some() { IN_MODIFY } else { IN_ATTRIB });
        Ok(())
    }

    /// `set_attr` through an open file (fchmod, fchown, ftruncate,
    /// futimens); EINVAL for a file with no inode (a pipe). inotify is not
    /// told, as it has not been.
    pub fn set_attr_open(&self, who: &Caller, f: &OpenFile, change: Change, mut attr: SetAttr) -> SysResult<()> {
        let inode = f.inode().ok_or(errno!(EINVAL))?;
        permit_change(&who.creds, &**inode, change, &mut attr)?;
        inode.setattr(&attr)
    }

    /// truncate(2): sets the size of the file `d` names, which `who` must
    /// be allowed to write (EISDIR for a directory).
    pub fn truncate(&self, who: &Caller, d: &Arc<Dentry>, len: u64) -> SysResult<()> {
        if d.inode.stat()?.file_type() == FileType::Directory {
            return Err(errno!(EISDIR));
        }
        permission::may(&who.creds, &*d.inode, MAY_WRITE)?;
        // Opening for write copies an overlay file up before the size changes.
        let _ops = d.inode.clone().open(1)?;
        d.inode.setattr(&SetAttr { size: Some(len), ..Default::default() })
    }
}

/// Linux's setattr_prepare for the changes the Sentry makes: whether `who`
/// may make `change`, and the set-ID bits it clears (added to `a`).
fn permit_change(who: &Creds, inode: &dyn Inode, change: Change, a: &mut SetAttr) -> SysResult<()> {
    if change == Change::Size || !inode.enforces_mode_bits() {
        return Ok(());
    }
    let st = inode.stat()?;
    match change {
        Change::Mode => {
            if !permission::owner_or_capable(who, &st) {
                return Err(errno!(EPERM));
            }
            if let Some(mode) = &mut a.mode {
                if !who.in_group(st.gid) && !who.has(CAP_FSETID) {
                    *mode &= !S_ISGID;
                }
            }
        }
        Change::Owner => {
            let owner = who.euid == st.uid;
            let uid_ok = a.uid.is_none_or(|uid| (owner && uid == st.uid) || who.has(CAP_CHOWN));
            let gid_ok = a.gid.is_none_or(|gid| (owner && (gid == st.gid || who.in_group(gid))) || who.has(CAP_CHOWN));
            if !uid_ok || !gid_ok {
                return Err(errno!(EPERM));
            }
            // A chown drops the set-user-ID bit, and the set-group-ID bit
            // with group execute, of anything but a directory (root's too).
            let perm = st.mode & 0o7777;
            let mut kept = perm & !S_ISUID;
            if perm & (S_ISGID | S_IXGRP) == S_ISGID | S_IXGRP {
                kept &= !S_ISGID;
            }
            if st.file_type() != FileType::Directory && kept != perm && (a.uid.is_some() || a.gid.is_some()) {
                a.mode = Some(kept);
            }
        }
        Change::TouchTimes => {
            if !permission::owner_or_capable(who, &st) {
                permission::check(who, &st, MAY_WRITE)?;
            }
        }
        Change::SetTimes => {
            if !permission::owner_or_capable(who, &st) {
                return Err(errno!(EPERM));
            }
        }
        Change::Size => {}
    }
    Ok(())
}

/// Makes `inode`, just created in `dir`, its creator's: owned by the
/// effective uid, and by the effective gid or, in a set-group-ID directory,
/// the directory's (a new directory there is set-group-ID too). Root's files
/// are left as the filesystems make them, root's. Best-effort: a host
/// filesystem's Gofer may not be allowed to give files away.
pub fn own_new_file(who: &Creds, dir: &dyn Inode, inode: &dyn Inode) {
    if who.euid == 0 && who.egid == 0 {
        return;
    }
    let (Ok(dir_st), Ok(st)) = (dir.stat(), inode.stat()) else { return };
    let mut change = SetAttr::default();
    let gid = if dir_st.mode & S_ISGID != 0 { dir_st.gid } else { who.egid };
    if dir_st.mode & S_ISGID != 0 && st.file_type() == FileType::Directory && st.mode & S_ISGID == 0 {
        change.mode = Some((st.mode | S_ISGID) & 0o7777);
    }
    change.uid = (st.uid != who.euid).then_some(who.euid);
    change.gid = (st.gid != gid).then_some(gid);
    if change.uid.is_some() || change.gid.is_some() || change.mode.is_some() {
        let _ = inode.setattr(&change);
    }
}
