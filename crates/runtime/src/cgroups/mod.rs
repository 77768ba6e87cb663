//! Linux cgroups for a container: how this host mounts them (v1, v2 or
//! hybrid), creating a container's cgroup with its OCI resource limits, and
//! reading, freezing, updating and removing it afterwards.
//!
//! Paths follow runc's cgroupfs driver: `linux.cgroupsPath` (`/docker/<id>`)
//! names the same directory under every hierarchy's mount point. Values are
//! written the way runc writes them, so a limit means on moat what it means
//! on runc; where runc tolerates a missing file (swap accounting off) this
//! module does too, and a limit that was asked for but cannot be set is an
//! error naming the file and the value.
//!
//! This file is the interface (create, add, update, procs, kill, remove); the
//! rest is split by topic: `mounts` (which hierarchies exist), `resources`
//! (the OCI limits both versions share), `v1` and `v2` (writing limits),
//! `stats`, `freezer` (pause/resume) and `files` (reading and writing them).

mod files;
mod freezer;
mod mounts;
mod resources;
mod stats;
mod v1;
mod v2;

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use oci_spec::runtime::LinuxResources;

use files::{create_dir, read, remove_dir, write};
use mounts::{Controller, Mounts, MOUNTINFO};
use resources::refuse_unsupported;
pub use stats::Stats;
use v1::create_cpuset;
use v2::{create_v2, update_v2};

/// How often waits (rmdir on EBUSY, freezer) look again, and how many times:
/// together about two seconds, long enough for killed processes to exit.
const POLL_INTERVAL: Duration = Duration::from_millis(10);
const POLL_ATTEMPTS: u32 = 200;

/// Why a cgroup operation failed. Each message names the path or file and the
/// value involved.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// The cgroup path has no components.
    #[error("cgroup path {0:?} is empty; give a path such as /moat/<container-id>")]
    EmptyPath(String),
    /// The cgroup path has a `..` component.
    #[error("cgroup path {0:?} contains \"..\"; a cgroup path may not leave its hierarchy")]
    ParentComponent(String),
    /// The cgroup path is in systemd's `slice:prefix:name` form.
    #[error("cgroup path {0:?} is in systemd form (slice:prefix:name): systemd cgroup paths are not supported, use the cgroupfs driver (a path such as /docker/<id>)")]
    SystemdPath(String),
    /// `/proc/self/mountinfo` lists neither a cgroup nor a cgroup2 mount.
    #[error("no cgroup or cgroup2 filesystem is mounted (according to {MOUNTINFO})")]
    NoHierarchy,
    /// A line of `/proc/self/mountinfo` could not be parsed.
    #[error("{MOUNTINFO}: cannot parse line {0:?}")]
    Mountinfo(String),
    /// `Cgroup::open` found the path in no hierarchy.
    #[error("cgroup {0:?} does not exist in any cgroup hierarchy")]
    NotFound(String),
    /// A limit needs a v1 controller that is not mounted.
    #[error("cannot set {what}: the {controller} cgroup controller is not mounted (according to {MOUNTINFO})")]
    ControllerMissing {
        /// The limit or operation asked for.
        what: &'static str,
        /// The v1 controller it needs.
        controller: &'static str,
    },
    /// The resources ask for something moat cannot provide on this layout.
    #[error("{0} is not supported by moat on this cgroup layout")]
    Unsupported(&'static str),
    /// The resources contradict themselves or the kernel's range.
    #[error("invalid resources: {0}")]
    InvalidResources(String),
    /// Creating a cgroup directory failed.
    #[error("creating cgroup directory {path}: {source}")]
    Create {
        /// The directory.
        path: PathBuf,
        /// What mkdir returned.
        source: io::Error,
    },
    /// Reading a cgroup file failed.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the read returned.
        source: io::Error,
    },
    /// Writing a cgroup file failed.
    #[error("writing {value:?} to {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What was written.
        value: String,
        /// What the write returned.
        source: io::Error,
    },
    /// A cgroup file held something other than what the kernel documents.
    #[error("{path} holds {contents:?}, expected {expected}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What it held.
        contents: String,
        /// What it should have held.
        expected: &'static str,
    },
    /// The kernel accepted a value but reads back another.
    #[error("wrote {wrote:?} to {path} but it reads back {read:?}")]
    ReadBack {
        /// The file.
        path: PathBuf,
        /// What was written.
        wrote: String,
        /// What it holds now.
        read: String,
    },
    /// The freezer did not reach the state asked for.
    #[error("{path} still reads {state:?} after about 2 s, expected {expected}")]
    FreezeTimeout {
        /// The freezer state file.
        path: PathBuf,
        /// What it read last.
        state: String,
        /// The state asked for.
        expected: &'static str,
    },
    /// Removing a cgroup directory failed.
    #[error("removing cgroup directory {path}: {source}")]
    Remove {
        /// The directory.
        path: PathBuf,
        /// What rmdir returned last.
        source: io::Error,
    },
}

/// Results of this module.
pub type Result<T> = std::result::Result<T, CgroupError>;

/// How this host mounts cgroups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// Only v1 hierarchies, one per controller (or group of controllers)
    /// under `root` (usually `/sys/fs/cgroup`).
    V1 {
        /// The directory holding the controller mounts.
        root: PathBuf,
    },
    /// One unified v2 hierarchy mounted at `root`.
    V2 {
        /// The cgroup2 mount point.
        root: PathBuf,
    },
    /// v1 controllers under `v1` plus a v2 tree at `unified` (systemd's
    /// hybrid mode). Limits go to v1; the v2 tree only names the cgroup.
    Hybrid {
        /// The directory holding the v1 controller mounts.
        v1: PathBuf,
        /// The cgroup2 mount point.
        unified: PathBuf,
    },
}

/// Finds how this host mounts cgroups, from `/proc/self/mountinfo`.
pub fn detect() -> Result<Layout> {
    Ok(Mounts::read()?.layout)
}

/// Checks a `linux.cgroupsPath` and returns its components joined by `/`,
/// without a leading `/`.
fn normalize(path: &str) -> Result<String> {
    if !path.starts_with('/') && path.split(':').count() == 3 {
        return Err(CgroupError::SystemdPath(path.to_owned()));
    }
    let mut parts = Vec::new();
    for component in path.split('/') {
        match component {
            "" | "." => {}
            ".." => return Err(CgroupError::ParentComponent(path.to_owned())),
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return Err(CgroupError::EmptyPath(path.to_owned()));
    }
    Ok(parts.join("/"))
}

/// The directories that make up one cgroup.
#[derive(Debug)]
enum Dirs {
    /// One directory per mounted controller, plus the same path in the
    /// hybrid layout's v2 tree if it could be made.
    V1 { controllers: Vec<(Controller, PathBuf)>, unified: Option<PathBuf> },
    /// The one v2 directory.
    V2 { dir: PathBuf },
}

/// A container's cgroup.
#[derive(Debug)]
pub struct Cgroup {
    dirs: Dirs,
}

impl Cgroup {
    /// Creates the cgroup `path` (relative to each hierarchy's root) and
    /// applies `resources`. An existing directory is reused, as runc does.
    /// A parent removed while the cgroup was being made (`remove_if_empty`
    /// in another process) is made again.
    pub fn create(path: &str, resources: Option<&LinuxResources>) -> Result<Cgroup> {
        let mut attempt = 0;
        loop {
            match Cgroup::create_once(path, resources) {
                Err(CgroupError::Create { source, .. })
                    if source.kind() == io::ErrorKind::NotFound && attempt < POLL_ATTEMPTS =>
                {
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    /// Removes the cgroup `path` where it is empty (no processes, no
    /// children) and leaves it where it is not: for a parent that only
    /// groups other cgroups, once its last child is gone.
    pub fn remove_if_empty(path: &str) {
        if let Ok(cgroup) = Cgroup::open(path) {
            for dir in cgroup.all_dirs() {
                // EBUSY or ENOTEMPTY: still in use, which is fine.
                let _ = fs::remove_dir(dir);
            }
        }
    }

    fn create_once(path: &str, resources: Option<&LinuxResources>) -> Result<Cgroup> {
        let path = normalize(path)?;
        let mounts = Mounts::read()?;
        let mut created = false;
        let dirs = match &mounts.layout {
            Layout::V2 { root } => {
                created |= create_v2(root, &path)?;
                Dirs::V2 { dir: root.join(&path) }
            }
            Layout::V1 { .. } | Layout::Hybrid { .. } => {
                let mut controllers = Vec::new();
                for (controller, mount) in &mounts.v1 {
                    let dir = mount.join(&path);
                    if *controller == Controller::Cpuset {
                        created |= create_cpuset(mount, &path)?;
                    } else {
                        created |= create_dir(&dir)?;
                    }
                    controllers.push((*controller, dir));
                }
                // The v2 tree only names the cgroup for /proc/PID/cgroup's
                // `0::` line; failing to make it costs no limit.
                let unified = match &mounts.layout {
                    Layout::Hybrid { unified, .. } => {
                        let dir = unified.join(&path);
                        fs::create_dir_all(&dir).ok().map(|()| dir)
                    }
                    _ => None,
                };
                Dirs::V1 { controllers, unified }
            }
        };
        let cgroup = Cgroup { dirs };
        if let Some(resources) = resources {
            if let Err(e) = cgroup.update(resources) {
                if created {
                    // Leave no half-configured cgroup behind; the error that
                    // matters is the one that stopped creation.
                    let _ = cgroup.remove();
                }
                return Err(e);
            }
        }
        Ok(cgroup)
    }

    /// Opens the existing cgroup `path`, for update, events and delete.
    pub fn open(path: &str) -> Result<Cgroup> {
        let path = normalize(path)?;
        let mounts = Mounts::read()?;
        let dirs = match &mounts.layout {
            Layout::V2 { root } => {
                let dir = root.join(&path);
                if !dir.is_dir() {
                    return Err(CgroupError::NotFound(path));
                }
                Dirs::V2 { dir }
            }
            Layout::V1 { .. } | Layout::Hybrid { .. } => {
                let controllers: Vec<(Controller, PathBuf)> = mounts
                    .v1
                    .iter()
                    .map(|(c, mount)| (*c, mount.join(&path)))
                    .filter(|(_, dir)| dir.is_dir())
                    .collect();
                let unified = match &mounts.layout {
                    Layout::Hybrid { unified, .. } => Some(unified.join(&path)).filter(|d| d.is_dir()),
                    _ => None,
                };
                if controllers.is_empty() && unified.is_none() {
                    return Err(CgroupError::NotFound(path));
                }
                Dirs::V1 { controllers, unified }
            }
        };
        Ok(Cgroup { dirs })
    }

    /// Moves process `pid` (with all its threads) into the cgroup in every
    /// hierarchy.
    pub fn add(&self, pid: i32) -> Result<()> {
        for dir in self.all_dirs() {
            write(dir, "cgroup.procs", &pid.to_string())?;
        }
        Ok(())
    }

    /// Applies `resources`, as at creation (for `update`).
    pub fn update(&self, resources: &LinuxResources) -> Result<()> {
        refuse_unsupported(resources, &self.dirs)?;
        match &self.dirs {
            Dirs::V1 { .. } => self.update_v1(resources),
            Dirs::V2 { dir } => update_v2(dir, resources),
        }
    }

    /// The processes in the cgroup (in any of its hierarchies), sorted.
    pub fn procs(&self) -> Result<Vec<i32>> {
        let mut pids = BTreeSet::new();
        for dir in self.all_dirs() {
            let path = dir.join("cgroup.procs");
            let text = read(dir, "cgroup.procs")?;
            for line in text.lines() {
                let pid = line.trim().parse().map_err(|_| CgroupError::Parse {
                    path: path.clone(),
                    contents: line.to_owned(),
                    expected: "one process id per line",
                })?;
                pids.insert(pid);
            }
        }
        Ok(pids.into_iter().collect())
    }

    /// Sends SIGKILL to every process in the cgroup, once: a process that
    /// joins or is forked meanwhile is missed, so a caller that must empty
    /// the cgroup repeats this. A cgroup that cannot be read kills nothing.
    pub fn kill(&self) {
        for pid in self.procs().unwrap_or_default() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
    }

    /// Removes the cgroup's directories. Kills nothing: while processes are
    /// still exiting rmdir fails with EBUSY, so it is retried for about 2 s.
    /// A directory already gone is fine.
    pub fn remove(self) -> Result<()> {
        let mut first_error = None;
        for dir in self.all_dirs() {
            if let Err(e) = remove_dir(dir) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Every directory, each once (co-mounted controllers share one).
    fn all_dirs(&self) -> Vec<&Path> {
        let mut dirs: Vec<&Path> = Vec::new();
        match &self.dirs {
            Dirs::V1 { controllers, unified } => {
                for (_, dir) in controllers {
                    if !dirs.contains(&dir.as_path()) {
                        dirs.push(dir);
                    }
                }
                dirs.extend(unified.as_deref());
            }
            Dirs::V2 { dir } => dirs.push(dir),
        }
        dirs
    }

    fn v1_dir(&self, controller: Controller) -> Option<&Path> {
        match &self.dirs {
            Dirs::V1 { controllers, .. } => {
                controllers.iter().find(|(c, _)| *c == controller).map(|(_, d)| d.as_path())
            }
            Dirs::V2 { .. } => None,
        }
    }

    fn require_v1(&self, controller: Controller, what: &'static str) -> Result<&Path> {
        self.v1_dir(controller).ok_or(CgroupError::ControllerMissing { what, controller: controller.name() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(normalize("/docker/abc").unwrap(), "docker/abc");
        assert_eq!(normalize("moat//x/./y/").unwrap(), "moat/x/y");
        assert!(matches!(normalize(""), Err(CgroupError::EmptyPath(_))));
        assert!(matches!(normalize("/"), Err(CgroupError::EmptyPath(_))));
        assert!(matches!(normalize("/a/../b"), Err(CgroupError::ParentComponent(_))));
        assert!(matches!(normalize("system.slice:docker:abc"), Err(CgroupError::SystemdPath(_))));
    }
}
