//! Who a process is to the kernel: its user and group ids, capabilities and
//! no_new_privs, and which app thread the calling host thread serves.

use super::capability::{self, CapSets};

/// User and group ids, capabilities and no_new_privs (root with every
/// capability unless the spec says otherwise). They are the process's: every
/// thread of it has the same. The effective ids are also the filesystem ids.
#[derive(Debug, Clone)]
pub struct Creds {
    pub uid: u32,
    pub euid: u32,
    pub suid: u32,
    pub gid: u32,
    pub egid: u32,
    pub sgid: u32,
    pub groups: Vec<u32>,
    pub caps: CapSets,
    /// SECBIT_KEEP_CAPS (prctl PR_SET_KEEPCAPS): leaving uid 0 keeps the
    /// permitted set. Cleared by execve.
    pub keep_caps: bool,
    /// prctl PR_SET_NO_NEW_PRIVS: execve grants nothing (no set-ID, no
    /// capabilities beyond the caller's). Inherited and never cleared.
    pub no_new_privs: bool,
}

impl Default for Creds {
    fn default() -> Creds {
        Creds {
            uid: 0,
            euid: 0,
            suid: 0,
            gid: 0,
            egid: 0,
            sgid: 0,
            groups: Vec::new(),
            caps: CapSets::full(),
            keep_caps: false,
            no_new_privs: false,
        }
    }
}

impl Creds {
    /// Whether `cap` is in the effective set.
    pub fn has(&self, cap: u32) -> bool {
        self.caps.effective & capability::bit(cap) != 0
    }

    /// Whether `gid` is the effective group or a supplementary one.
    pub fn in_group(&self, gid: u32) -> bool {
        self.egid == gid || self.groups.contains(&gid)
    }
}

thread_local! {
    static CURRENT: std::cell::Cell<(i32, i32)> = const { std::cell::Cell::new((0, 0)) };
}

/// Records which app thread this host thread runs (for /proc/self and friends).
pub fn set_current(pid: i32, tid: i32) {
    CURRENT.with(|c| c.set((pid, tid)));
}

/// (pid, tid) of the app thread the calling host thread runs; (0, 0) outside tasks.
pub fn current() -> (i32, i32) {
    CURRENT.with(|c| c.get())
}
