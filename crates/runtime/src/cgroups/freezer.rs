//! Pausing and resuming a cgroup: v1's `freezer.state` or v2's
//! `cgroup.freeze`, each waited on until the kernel reports it done.

use std::path::Path;
use std::thread;

use super::files::{read, read_keyed, write};
use super::{Cgroup, CgroupError, Controller, Dirs, Result, POLL_ATTEMPTS, POLL_INTERVAL};

impl Cgroup {
    /// Freezes every process in the cgroup (for `pause`) and returns once
    /// the kernel reports them frozen.
    pub fn freeze(&self) -> Result<()> {
        match &self.dirs {
            Dirs::V1 { .. } => {
                let freezer = self.require_v1(Controller::Freezer, "pause (freezer)")?;
                let result = set_v1_freezer(freezer, "FROZEN");
                if result.is_err() {
                    // Do not leave the container half frozen.
                    let _ = write(freezer, "freezer.state", "THAWED");
                }
                result
            }
            Dirs::V2 { dir } => {
                write(dir, "cgroup.freeze", "1")?;
                wait_v2_frozen(dir, true)
            }
        }
    }

    /// Thaws a frozen cgroup (for `resume`).
    pub fn thaw(&self) -> Result<()> {
        match &self.dirs {
            Dirs::V1 { .. } => {
                let freezer = self.require_v1(Controller::Freezer, "resume (freezer)")?;
                set_v1_freezer(freezer, "THAWED")
            }
            Dirs::V2 { dir } => {
                write(dir, "cgroup.freeze", "0")?;
                wait_v2_frozen(dir, false)
            }
        }
    }
}

/// Writes FROZEN or THAWED to `freezer.state` and waits until it reads back
/// so. Freezing passes through FREEZING; writing FROZEN again nudges tasks
/// that were forking when the first write came, as runc does.
fn set_v1_freezer(dir: &Path, state: &'static str) -> Result<()> {
    let mut last = String::new();
    for attempt in 0..POLL_ATTEMPTS {
        if attempt % 10 == 0 {
            write(dir, "freezer.state", state)?;
        }
        last = read(dir, "freezer.state")?;
        if last == state {
            return Ok(());
        }
        thread::sleep(POLL_INTERVAL);
    }
    Err(CgroupError::FreezeTimeout { path: dir.join("freezer.state"), state: last, expected: state })
}

/// Waits until v2's `cgroup.events` reports `frozen 1` (or `frozen 0`).
fn wait_v2_frozen(dir: &Path, frozen: bool) -> Result<()> {
    let want = u64::from(frozen);
    let mut last = None;
    for _ in 0..POLL_ATTEMPTS {
        last = read_keyed(dir, "cgroup.events", "frozen")?;
        if last == Some(want) {
            return Ok(());
        }
        thread::sleep(POLL_INTERVAL);
    }
    Err(CgroupError::FreezeTimeout {
        path: dir.join("cgroup.events"),
        state: format!("frozen {}", last.map_or("?".to_owned(), |v| v.to_string())),
        expected: if frozen { "frozen 1" } else { "frozen 0" },
    })
}
