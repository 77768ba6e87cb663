//! Capabilities: the five sets a process holds, what execve and the setuid
//! family do to them, and the numbers of the capabilities the Sentry checks.
//!
//! The rules are Linux's (security/commoncap.c) for files without file
//! capabilities (the Sentry's filesystems have no `security.capability`
//! xattr) and with the default securebits (only SECBIT_KEEP_CAPS can be set):
//! root is privileged, a process that leaves uid 0 loses its capabilities.

use super::Creds;

pub const CAP_CHOWN: u32 = 0;
pub const CAP_DAC_OVERRIDE: u32 = 1;
pub const CAP_DAC_READ_SEARCH: u32 = 2;
pub const CAP_FOWNER: u32 = 3;
pub const CAP_FSETID: u32 = 4;
pub const CAP_KILL: u32 = 5;
pub const CAP_SETGID: u32 = 6;
pub const CAP_SETUID: u32 = 7;
pub const CAP_SETPCAP: u32 = 8;
pub const CAP_SYS_CHROOT: u32 = 18;
pub const CAP_SYS_ADMIN: u32 = 21;
pub const CAP_SYS_NICE: u32 = 23;
pub const CAP_SYS_RESOURCE: u32 = 24;
pub const CAP_MKNOD: u32 = 27;
/// The last capability of Linux 5.15 (CAP_CHECKPOINT_RESTORE), the kernel moat reports.
pub const CAP_LAST_CAP: u32 = 40;
/// Every capability.
pub const ALL: u64 = (1 << (CAP_LAST_CAP + 1)) - 1;

/// The mask of one capability.
pub const fn bit(cap: u32) -> u64 {
    1 << cap
}

/// Whether `cap` names a capability this kernel has.
pub fn valid(cap: u64) -> bool {
    cap <= u64::from(CAP_LAST_CAP)
}

/// A process's capability sets, one bit per capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CapSets {
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    /// The most a process (and its descendants) can ever get back by execve.
    pub bounding: u64,
    /// Kept across execve of an unprivileged program; always within
    /// permitted and inheritable.
    pub ambient: u64,
}

impl CapSets {
    /// What Linux's first process holds: everything but the inheritable and ambient sets.
    pub const fn full() -> CapSets {
        CapSets { effective: ALL, permitted: ALL, inheritable: 0, bounding: ALL, ambient: 0 }
    }

    /// What a non-root process started without a capability list holds:
    /// nothing, with the whole bounding set.
    pub const fn unprivileged() -> CapSets {
        CapSets { effective: 0, permitted: 0, inheritable: 0, bounding: ALL, ambient: 0 }
    }

    /// The same sets with every bit outside the kernel's capabilities cleared
    /// and the invariants restored (effective and ambient within permitted,
    /// ambient within inheritable), as Linux holds them.
    pub fn normalized(self) -> CapSets {
        let permitted = self.permitted & ALL;
        let inheritable = self.inheritable & ALL;
        CapSets {
            effective: self.effective & permitted,
            permitted,
            inheritable,
            bounding: self.bounding & ALL,
            ambient: self.ambient & permitted & inheritable,
        }
    }
}

/// What an execve of a file with mode `mode`, owned by `uid`:`gid`, does to
/// the caller's credentials (Linux's bprm_fill_uid and
/// cap_bprm_creds_from_file): the credentials the new program runs with, and
/// whether it is a privilege-changing exec (AT_SECURE).
pub fn exec_creds(old: &Creds, mode: u32, uid: u32, gid: u32) -> (Creds, bool) {
    const S_ISUID: u32 = 0o4000;
    const S_ISGID: u32 = 0o2000;
    const S_IXGRP: u32 = 0o010;
    let mut new = old.clone();
    // Set-user-ID and set-group-ID bits, unless no_new_privs forbids it.
    if !old.no_new_privs {
        if mode & S_ISUID != 0 {
            new.euid = uid;
        }
        if mode & (S_ISGID | S_IXGRP) == S_ISGID | S_IXGRP {
            new.egid = gid;
        }
    }
    let old_caps = old.caps;
    let mut caps = old_caps;
    // No file capabilities: the file's permitted set is empty...
    caps.permitted = 0;
    let mut effective = false;
    // ...except for root, whose files count as holding every capability:
    // it gets its bounding set (and inheritable set) back.
    if new.euid == 0 || new.uid == 0 {
        caps.permitted = old_caps.bounding | old_caps.inheritable;
    }
    // Only an effective root starts with them in effect.
    if new.euid == 0 {
        effective = true;
    }
    // Linux counts an exec as set-ID when the new effective ids differ from
    // the old real ones, whatever the file's mode.
    let is_setid = new.euid != old.uid || new.egid != old.gid;
    let gained = caps.permitted & !old_caps.permitted != 0;
    // no_new_privs: nothing beyond what the caller had.
    if (is_setid || gained) && old.no_new_privs {
        new.euid = new.uid;
        new.egid = new.gid;
        caps.permitted &= old_caps.permitted;
    }
    new.suid = new.euid;
    new.sgid = new.egid;
    if is_setid {
        caps.ambient = 0;
    }
    caps.permitted |= caps.ambient;
    caps.effective = if effective { caps.permitted } else { caps.ambient };
    new.caps = caps;
    new.keep_caps = false;
    let secure = is_setid || (new.uid != 0 && (effective || caps.permitted & !caps.ambient != 0));
    (new, secure)
}

/// What a change of user ids from `old` to `new` does to the capabilities
/// (Linux's cap_emulate_setxuid, for setuid, setreuid and setresuid).
pub fn fix_setuid(old: &Creds, new: &mut Creds) {
    let was_root = old.uid == 0 || old.euid == 0 || old.suid == 0;
    let is_root = new.uid == 0 || new.euid == 0 || new.suid == 0;
    if was_root && !is_root {
        if !new.keep_caps {
            new.caps.permitted = 0;
            new.caps.effective = 0;
        }
        new.caps.ambient = 0;
    }
    if old.euid == 0 && new.euid != 0 {
        new.caps.effective = 0;
    }
    if old.euid != 0 && new.euid == 0 {
        new.caps.effective = new.caps.permitted;
    }
}

/// Linux's checks for capset(2): the new sets must not grant what the caller
/// cannot give itself. Returns the sets to hold (ambient trimmed to fit).
pub fn capset(old: &CapSets, effective: u64, permitted: u64, inheritable: u64) -> Option<CapSets> {
    // Bits past the last capability are ignored, as Linux masks them.
    let (effective, permitted, inheritable) = (effective & ALL, permitted & ALL, inheritable & ALL);
    let inheritable_limit = if old.effective & bit(CAP_SETPCAP) != 0 { old.bounding } else { old.permitted };
    let allowed = inheritable & !(old.inheritable | inheritable_limit) == 0
        && inheritable & !(old.inheritable | old.bounding) == 0
        && permitted & !old.permitted == 0
        && effective & !permitted == 0;
    allowed.then_some(CapSets {
        effective,
        permitted,
        inheritable,
        bounding: old.bounding,
        ambient: old.ambient & permitted & inheritable,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Docker's default capabilities (CapEff 00000000a80425fb).
    const DOCKER: u64 = bit(CAP_CHOWN)
        | bit(CAP_DAC_OVERRIDE)
        | bit(CAP_FSETID)
        | bit(CAP_FOWNER)
        | bit(CAP_MKNOD)
        | bit(13) // CAP_NET_RAW
        | bit(CAP_SETGID)
        | bit(CAP_SETUID)
        | bit(31) // CAP_SETFCAP
        | bit(CAP_SETPCAP)
        | bit(10) // CAP_NET_BIND_SERVICE
        | bit(CAP_SYS_CHROOT)
        | bit(CAP_KILL)
        | bit(29); // CAP_AUDIT_WRITE

    fn creds(uid: u32, caps: CapSets) -> Creds {
        Creds { uid, euid: uid, suid: uid, gid: uid, egid: uid, sgid: uid, caps, ..Creds::default() }
    }

    fn docker() -> CapSets {
        CapSets { effective: DOCKER, permitted: DOCKER, inheritable: 0, bounding: DOCKER, ambient: 0 }
    }

    #[test]
    fn docker_mask_is_the_one_docker_shows() {
        assert_eq!(DOCKER, 0xa80425fb);
    }

    #[test]
    fn root_keeps_its_bounding_set_across_exec() {
        let (new, secure) = exec_creds(&creds(0, docker()), 0o755, 0, 0);
        assert_eq!(new.caps, docker());
        assert!(!secure);
        let (new, _) = exec_creds(&creds(0, CapSets::full()), 0o755, 0, 0);
        assert_eq!(new.caps, CapSets::full());
    }

    #[test]
    fn root_gets_back_what_it_dropped_from_permitted_but_not_from_bounding() {
        let dropped = CapSets { effective: 0, permitted: 0, inheritable: 0, bounding: DOCKER, ambient: 0 };
        let (new, _) = exec_creds(&creds(0, dropped), 0o755, 0, 0);
        assert_eq!((new.caps.permitted, new.caps.effective), (DOCKER, DOCKER));
        // ...unless no_new_privs forbids gaining anything.
        let mut nnp = creds(0, dropped);
        nnp.no_new_privs = true;
        let (new, _) = exec_creds(&nnp, 0o755, 0, 0);
        assert_eq!((new.caps.permitted, new.caps.effective), (0, 0));
    }

    #[test]
    fn a_non_root_user_loses_everything_but_ambient() {
        let (new, secure) = exec_creds(&creds(1000, docker()), 0o755, 0, 0);
        assert_eq!(new.caps, CapSets { bounding: DOCKER, ..CapSets::default() });
        assert!(!secure);
        let raised =
            CapSets { effective: DOCKER, permitted: DOCKER, inheritable: bit(10), bounding: DOCKER, ambient: bit(10) };
        let (new, _) = exec_creds(&creds(1000, raised), 0o755, 0, 0);
        assert_eq!((new.caps.permitted, new.caps.effective, new.caps.ambient), (bit(10), bit(10), bit(10)));
    }

    #[test]
    fn real_root_alone_gets_permitted_but_not_effective() {
        let mut c = creds(0, docker());
        c.euid = 1000;
        c.suid = 1000;
        let (new, secure) = exec_creds(&c, 0o755, 0, 0);
        assert_eq!((new.caps.permitted, new.caps.effective), (DOCKER, 0));
        assert!(secure, "an effective uid other than the real one is a set-ID exec");
    }

    #[test]
    fn setuid_root_binaries_make_root_unless_no_new_privs() {
        let user = creds(1000, CapSets { bounding: DOCKER, ..CapSets::default() });
        let (new, secure) = exec_creds(&user, 0o4755, 0, 0);
        assert_eq!((new.uid, new.euid, new.suid), (1000, 0, 0));
        assert_eq!((new.caps.permitted, new.caps.effective), (DOCKER, DOCKER));
        assert!(secure);
        let mut nnp = user.clone();
        nnp.no_new_privs = true;
        let (new, secure) = exec_creds(&nnp, 0o4755, 0, 0);
        assert_eq!((new.euid, new.caps.permitted, new.caps.effective), (1000, 0, 0));
        assert!(!secure);
    }

    #[test]
    fn setgid_needs_group_execute() {
        let user = creds(1000, CapSets::unprivileged());
        assert_eq!(exec_creds(&user, 0o2755, 0, 50).0.egid, 50);
        assert_eq!(exec_creds(&user, 0o2745, 0, 50).0.egid, 1000, "S_ISGID without S_IXGRP is mandatory locking");
    }

    #[test]
    fn exec_clears_keep_caps() {
        let mut c = creds(0, CapSets::full());
        c.keep_caps = true;
        assert!(!exec_creds(&c, 0o755, 0, 0).0.keep_caps);
    }

    #[test]
    fn leaving_root_clears_permitted_unless_keep_caps() {
        let old = creds(0, docker());
        let mut new = creds(1000, docker());
        fix_setuid(&old, &mut new);
        assert_eq!((new.caps.permitted, new.caps.effective, new.caps.bounding), (0, 0, DOCKER));
        let mut kept = creds(1000, docker());
        kept.keep_caps = true;
        fix_setuid(&old, &mut kept);
        assert_eq!((kept.caps.permitted, kept.caps.effective), (DOCKER, 0));
    }

    #[test]
    fn effective_follows_the_effective_uid() {
        let old = creds(0, docker());
        let mut away = old.clone();
        away.euid = 1000;
        fix_setuid(&old, &mut away);
        assert_eq!((away.caps.permitted, away.caps.effective), (DOCKER, 0), "saved uid 0 keeps permitted");
        let mut back = away.clone();
        back.euid = 0;
        fix_setuid(&away, &mut back);
        assert_eq!(back.caps.effective, DOCKER);
    }

    #[test]
    fn capset_cannot_grow_permitted() {
        let d = docker();
        assert!(capset(&d, 0, d.permitted | bit(CAP_SYS_ADMIN), 0).is_none());
        assert!(capset(&d, bit(CAP_SYS_ADMIN), d.permitted, 0).is_none(), "effective outside permitted");
        let dropped = capset(&d, bit(CAP_CHOWN), bit(CAP_CHOWN), 0).unwrap();
        assert_eq!((dropped.effective, dropped.permitted, dropped.bounding), (bit(CAP_CHOWN), bit(CAP_CHOWN), DOCKER));
        // Inheritable within bounding with CAP_SETPCAP, within permitted without.
        assert!(capset(&d, 0, 0, bit(10)).is_some());
        assert!(capset(&dropped, 0, 0, bit(10)).is_none());
    }
}
