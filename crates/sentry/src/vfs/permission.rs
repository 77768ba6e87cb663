//! Unix file permissions: whether a process may read, write or search an
//! inode by its owner and mode bits, and the capabilities that override them
//! (Linux's generic_permission, may_delete, may_linkat and
//! inode_owner_or_capable).
//!
//! Synthetic files (procfs, devfs, ptys) decide for themselves what an open
//! may do (`Inode::enforces_mode_bits` is false): their mode bits are shown,
//! not checked, but for one rule: a file no one may execute is not executed.

use super::{FileType, Inode, InodeRef, Stat};
use crate::auth::capability::{CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER};
use crate::auth::Creds;
use crate::SysResult;

pub const MAY_EXEC: u32 = 1;
pub const MAY_WRITE: u32 = 2;
pub const MAY_READ: u32 = 4;

pub const S_ISUID: u32 = 0o4000;
pub const S_ISGID: u32 = 0o2000;
const S_ISVTX: u32 = 0o1000;
pub const S_IXGRP: u32 = 0o010;

/// Whether `who` may access a file with attributes `st` as `want` (MAY_*
/// bits): the owner's, group's or others' bits, whichever class `who` is in,
/// else CAP_DAC_OVERRIDE (execute only if some execute bit is set, for a
/// file that is no directory) or CAP_DAC_READ_SEARCH (reading, and
/// searching a directory).
pub fn check(who: &Creds, st: &Stat, want: u32) -> SysResult<()> {
    let mode = st.mode;
    let class = if who.euid == st.uid {
        mode >> 6
    } else if who.in_group(st.gid) {
        mode >> 3
    } else {
        mode
    };
    if want & !class & 7 == 0 {
        return Ok(());
    }
    if st.file_type() == FileType::Directory {
        if want & MAY_WRITE == 0 && who.has(CAP_DAC_READ_SEARCH) {
            return Ok(());
        }
        if who.has(CAP_DAC_OVERRIDE) {
            return Ok(());
        }
        return Err(errno!(EACCES));
    }
    if want == MAY_READ && who.has(CAP_DAC_READ_SEARCH) {
        return Ok(());
    }
    if (want & MAY_EXEC == 0 || mode & 0o111 != 0) && who.has(CAP_DAC_OVERRIDE) {
        return Ok(());
    }
    Err(errno!(EACCES))
}

/// `check` for an inode; no stat is taken when the capabilities settle it.
pub fn may(who: &Creds, inode: &dyn Inode, want: u32) -> SysResult<()> {
    if want & MAY_EXEC == 0 && (who.has(CAP_DAC_OVERRIDE) || !inode.enforces_mode_bits()) {
        return Ok(());
    }
    let st = inode.stat()?;
    if !inode.enforces_mode_bits() {
        let unexecutable = st.file_type() != FileType::Directory && st.mode & 0o111 == 0;
        return if unexecutable { Err(errno!(EACCES)) } else { Ok(()) };
    }
    check(who, &st, want)
}

/// Whether `who` may look names up in any directory whatever its bits, so
/// a path walk need not check each one.
pub fn searches_anything(who: &Creds) -> bool {
    who.has(CAP_DAC_OVERRIDE) || who.has(CAP_DAC_READ_SEARCH)
}

/// Whether `who` owns the file, or may act as if it did (CAP_FOWNER): chmod,
/// utimes with explicit times, and the sticky bit's exceptions.
pub fn owner_or_capable(who: &Creds, st: &Stat) -> bool {
    who.euid == st.uid || who.has(CAP_FOWNER)
}

/// The credentials access(2) checks with: the real ids for the effective
/// ones, and root's capabilities only if the real uid is root (Linux's
/// do_faccessat).
pub fn with_real_ids(who: &Creds) -> Creds {
    let mut real = who.clone();
    real.euid = who.uid;
    real.egid = who.gid;
    real.caps.effective = if who.uid == 0 { who.caps.permitted } else { 0 };
    real
}

/// Whether `who` may make `dir` its working directory or root: a directory
/// it may search.
pub fn may_enter(who: &Creds, dir: &dyn Inode) -> SysResult<()> {
    if dir.stat()?.file_type() != FileType::Directory {
        return Err(errno!(ENOTDIR));
    }
    may(who, dir, MAY_EXEC)
}

/// Linux's protected_hardlinks (on by default): whether `who` may make a
/// hard link to `src`. Someone else's file needs CAP_FOWNER, or to be a
/// regular file the caller may read and write, and not set-ID (EPERM).
pub fn may_link(who: &Creds, src: &dyn Inode) -> SysResult<()> {
    if !src.enforces_mode_bits() {
        return Ok(());
    }
    let st = src.stat()?;
    if owner_or_capable(who, &st) {
        return Ok(());
    }
    let set_id = st.mode & S_ISUID != 0 || st.mode & (S_ISGID | S_IXGRP) == S_ISGID | S_IXGRP;
    if st.file_type() == FileType::Regular && !set_id && check(who, &st, MAY_READ | MAY_WRITE).is_ok() {
        return Ok(());
    }
    Err(errno!(EPERM))
}

/// Whether `who` may add or remove names in directory `dir`: write and
/// search (any directory, with CAP_DAC_OVERRIDE).
pub fn may_change_entries(who: &Creds, dir: &dyn Inode) -> SysResult<()> {
    if who.has(CAP_DAC_OVERRIDE) {
        return Ok(());
    }
    may(who, dir, MAY_WRITE | MAY_EXEC)
}

/// Whether `who` may remove (or rename away, or replace) a file from
/// directory `dir`: write and search on `dir`, and in a sticky directory
/// (/tmp) only the owner of the file or of the directory, or CAP_FOWNER
/// (EPERM otherwise). The file, `victim`, is looked up only if that matters;
/// None if there is none (a rename onto a new name).
pub fn may_delete(who: &Creds, dir: &dyn Inode, victim: impl FnOnce() -> SysResult<Option<InodeRef>>) -> SysResult<()> {
    may_change_entries(who, dir)?;
    if !dir.enforces_mode_bits() || who.has(CAP_FOWNER) {
        return Ok(());
    }
    let dir_st = dir.stat()?;
    if dir_st.mode & S_ISVTX == 0 || who.euid == dir_st.uid {
        return Ok(());
    }
    match victim()? {
        Some(v) if v.stat()?.uid != who.euid => Err(errno!(EPERM)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::capability::{bit, CapSets, CAP_CHOWN};

    fn st(mode: u32, uid: u32, gid: u32) -> Stat {
        Stat { mode, uid, gid, ..Stat::default() }
    }

    fn who(uid: u32, effective: u64) -> Creds {
        let caps = CapSets { effective, permitted: effective, ..CapSets::default() };
        Creds { uid, euid: uid, suid: uid, gid: uid, egid: uid, sgid: uid, groups: vec![50], caps, ..Creds::default() }
    }

    const FILE: u32 = 0o100000;
    const DIR: u32 = 0o040000;

    #[test]
    fn the_callers_class_decides() {
        let f = st(FILE | 0o640, 1000, 50);
        assert!(check(&who(1000, 0), &f, MAY_READ | MAY_WRITE).is_ok());
        assert!(check(&who(2000, 0), &f, MAY_READ).is_ok(), "group 50 reads");
        assert_eq!(check(&who(2000, 0), &f, MAY_WRITE), Err(errno!(EACCES)));
        let mut stranger = who(2000, 0);
        stranger.groups.clear();
        assert_eq!(check(&stranger, &f, MAY_READ), Err(errno!(EACCES)));
        // The owner's class applies even when it is poorer than the others'.
        assert_eq!(check(&who(1000, 0), &st(FILE | 0o077, 1000, 50), MAY_READ), Err(errno!(EACCES)));
    }

    #[test]
    fn root_without_dac_override_is_refused_like_anyone() {
        let locked = st(FILE, 1000, 1000);
        assert_eq!(check(&who(0, bit(CAP_CHOWN)), &locked, MAY_READ), Err(errno!(EACCES)));
        assert_eq!(check(&who(0, 0), &st(FILE, 0, 0), MAY_READ), Err(errno!(EACCES)), "mode 000, even its own");
        assert!(check(&who(0, bit(CAP_DAC_OVERRIDE)), &locked, MAY_READ | MAY_WRITE).is_ok());
    }

    #[test]
    fn dac_override_executes_only_what_someone_may_execute() {
        let root = who(0, bit(CAP_DAC_OVERRIDE));
        assert_eq!(check(&root, &st(FILE | 0o644, 0, 0), MAY_EXEC), Err(errno!(EACCES)));
        assert!(check(&root, &st(FILE | 0o001, 5, 5), MAY_EXEC).is_ok());
        assert!(check(&root, &st(DIR, 5, 5), MAY_EXEC | MAY_WRITE).is_ok());
    }

    #[test]
    fn dac_read_search_reads_and_searches_but_never_writes() {
        let reader = who(0, bit(CAP_DAC_READ_SEARCH));
        assert!(check(&reader, &st(FILE, 5, 5), MAY_READ).is_ok());
        assert_eq!(check(&reader, &st(FILE, 5, 5), MAY_READ | MAY_WRITE), Err(errno!(EACCES)));
        assert!(check(&reader, &st(DIR, 5, 5), MAY_READ | MAY_EXEC).is_ok());
        assert_eq!(check(&reader, &st(DIR, 5, 5), MAY_WRITE | MAY_EXEC), Err(errno!(EACCES)));
    }
}
