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

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources, LinuxThrottleDevice};
use serde::{Serialize, Serializer};
use serde_json::{json, Map, Value};

/// Where the kernel's mount table is read from.
const MOUNTINFO: &str = "/proc/self/mountinfo";
/// The default CFS period, used for `cpu.max` when only a quota is given
/// (documented in the kernel's cgroup-v2.rst, and what runc uses).
const DEFAULT_CPU_PERIOD: u64 = 100_000;
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

/// The v1 controllers a container's cgroup joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Controller {
    Memory,
    Cpu,
    Cpuacct,
    Cpuset,
    Pids,
    Blkio,
    Freezer,
}

impl Controller {
    const ALL: [Controller; 7] = [
        Controller::Memory,
        Controller::Cpu,
        Controller::Cpuacct,
        Controller::Cpuset,
        Controller::Pids,
        Controller::Blkio,
        Controller::Freezer,
    ];

    /// The name the kernel uses in mount options and `/proc/PID/cgroup`.
    fn name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Cpu => "cpu",
            Controller::Cpuacct => "cpuacct",
            Controller::Cpuset => "cpuset",
            Controller::Pids => "pids",
            Controller::Blkio => "blkio",
            Controller::Freezer => "freezer",
        }
    }
}

/// What the mount table says: the layout, and on v1 where each controller
/// is mounted (co-mounted controllers such as `cpu,cpuacct` share a path).
#[derive(Debug)]
struct Mounts {
    layout: Layout,
    v1: Vec<(Controller, PathBuf)>,
}

impl Mounts {
    fn read() -> Result<Mounts> {
        let text =
            fs::read_to_string(MOUNTINFO).map_err(|source| CgroupError::Read { path: MOUNTINFO.into(), source })?;
        Mounts::parse(&text)
    }

    /// Parses mountinfo lines: `id parent dev root mountpoint options
    /// [optional...] - fstype source superoptions`.
    fn parse(text: &str) -> Result<Mounts> {
        let mut v1: Vec<(Controller, PathBuf)> = Vec::new();
        let mut unified = None;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let separator = fields
                .iter()
                .position(|f| *f == "-")
                .filter(|&i| i >= 6 && fields.len() >= i + 4)
                .ok_or_else(|| CgroupError::Mountinfo(line.to_owned()))?;
            let mount_point = PathBuf::from(unescape_mountinfo(fields[4]));
            match fields[separator + 1] {
                "cgroup2" => {
                    unified.get_or_insert(mount_point);
                }
                "cgroup" => {
                    for option in fields[separator + 3].split(',') {
                        let known = Controller::ALL.into_iter().find(|c| c.name() == option);
                        if let Some(controller) = known {
                            if !v1.iter().any(|(c, _)| *c == controller) {
                                v1.push((controller, mount_point.clone()));
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        // Named hierarchies (name=systemd) carry no controllers, so a v2 host
        // that also mounts one is still a v2 host.
        let v1_root = v1.first().map(|(_, p)| p.parent().unwrap_or(p).to_path_buf());
        let layout = match (v1_root, unified) {
            (Some(root), None) => Layout::V1 { root },
            (Some(v1), Some(unified)) => Layout::Hybrid { v1, unified },
            (None, Some(root)) => Layout::V2 { root },
            (None, None) => return Err(CgroupError::NoHierarchy),
        };
        Ok(Mounts { layout, v1 })
    }
}

/// Undoes mountinfo's octal escapes (`\040` for a space, `\134` for `\`).
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal =
            bytes.get(i + 1..i + 4).filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match octal {
            Some(d) => {
                let value = d.iter().fold(0u32, |v, b| v * 8 + u32::from(b - b'0'));
                out.push(value as u8);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
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
    path: String,
    dirs: Dirs,
}

/// Usage and limits of a cgroup. Serializes as the `data` of a `runc events
/// --stats` record, for the fields that map.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes charged now.
    pub memory_usage: u64,
    /// The memory limit in bytes (the kernel's "unlimited" value if none).
    pub memory_limit: u64,
    /// The most bytes ever charged (0 where the kernel does not record it).
    pub memory_max_usage: u64,
    /// Processes and threads in the cgroup.
    pub pids_current: u64,
    /// The pids limit, `None` for "max".
    pub pids_limit: Option<u64>,
    /// CPU time used, in nanoseconds.
    pub cpu_usage_ns: u64,
    /// Processes the OOM killer killed in this cgroup.
    pub oom_kills: u64,
}

impl Stats {
    /// The shape of runc's `types.Stats`, with Go's `omitempty` where runc
    /// has it.
    fn runc_data(&self) -> Value {
        fn put(map: &mut Map<String, Value>, key: &str, value: u64) {
            if value != 0 {
                map.insert(key.to_owned(), value.into());
            }
        }
        let mut cpu_usage = Map::new();
        put(&mut cpu_usage, "total", self.cpu_usage_ns);
        let mut memory_usage = Map::new();
        memory_usage.insert("limit".to_owned(), self.memory_limit.into());
        put(&mut memory_usage, "usage", self.memory_usage);
        put(&mut memory_usage, "max", self.memory_max_usage);
        let mut pids = Map::new();
        put(&mut pids, "current", self.pids_current);
        put(&mut pids, "limit", self.pids_limit.unwrap_or(0));
        json!({
            "cpu": { "usage": cpu_usage },
            "memory": { "usage": memory_usage },
            "pids": pids,
        })
    }
}

impl Serialize for Stats {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        self.runc_data().serialize(serializer)
    }
}

impl Cgroup {
    /// Creates the cgroup `path` (relative to each hierarchy's root) and
    /// applies `resources`. An existing directory is reused, as runc does.
    pub fn create(path: &str, resources: Option<&LinuxResources>) -> Result<Cgroup> {
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
        let cgroup = Cgroup { path, dirs };
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
        Ok(Cgroup { path, dirs })
    }

    /// The cgroup's path relative to each hierarchy root, without a leading
    /// `/`.
    pub fn path(&self) -> &str {
        &self.path
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

    /// Reads usage and limits. A statistic whose file the kernel does not
    /// offer (controller not mounted or not enabled) reads as zero.
    pub fn stats(&self) -> Result<Stats> {
        match &self.dirs {
            Dirs::V1 { .. } => {
                let mut stats = Stats::default();
                if let Some(memory) = self.v1_dir(Controller::Memory) {
                    stats.memory_usage = read_u64_opt(memory, "memory.usage_in_bytes")?.unwrap_or(0);
                    stats.memory_limit = read_u64_opt(memory, "memory.limit_in_bytes")?.unwrap_or(0);
                    stats.memory_max_usage = read_u64_opt(memory, "memory.max_usage_in_bytes")?.unwrap_or(0);
                    stats.oom_kills = read_keyed(memory, "memory.oom_control", "oom_kill")?.unwrap_or(0);
                }
                if let Some(pids) = self.v1_dir(Controller::Pids) {
                    stats.pids_current = read_u64_opt(pids, "pids.current")?.unwrap_or(0);
                    stats.pids_limit = read_max_opt(pids, "pids.max")?.flatten();
                }
                if let Some(cpuacct) = self.v1_dir(Controller::Cpuacct) {
                    stats.cpu_usage_ns = read_u64_opt(cpuacct, "cpuacct.usage")?.unwrap_or(0);
                }
                Ok(stats)
            }
            Dirs::V2 { dir } => Ok(Stats {
                memory_usage: read_u64_opt(dir, "memory.current")?.unwrap_or(0),
                // runc reports "max" as the largest u64.
                memory_limit: read_max_opt(dir, "memory.max")?.map_or(0, |l| l.unwrap_or(u64::MAX)),
                memory_max_usage: read_u64_opt(dir, "memory.peak")?.unwrap_or(0),
                pids_current: read_u64_opt(dir, "pids.current")?.unwrap_or(0),
                pids_limit: read_max_opt(dir, "pids.max")?.flatten(),
                cpu_usage_ns: read_keyed(dir, "cpu.stat", "usage_usec")?.unwrap_or(0).saturating_mul(1000),
                oom_kills: read_keyed(dir, "memory.events", "oom_kill")?.unwrap_or(0),
            }),
        }
    }

    /// The `runc events --stats` record for container `id`:
    /// `{"type":"stats","id":..,"data":{"cpu":..,"memory":..,"pids":..}}`.
    pub fn events_json(&self, id: &str) -> Result<Value> {
        let stats = self.stats()?;
        Ok(json!({ "type": "stats", "id": id, "data": stats.runc_data() }))
    }

    /// Processes the OOM killer has killed in this cgroup; 0 if the kernel
    /// does not say. For reporting OOM exits to Docker.
    pub fn memory_oom_events(&self) -> u64 {
        let counter = match &self.dirs {
            Dirs::V1 { .. } => self.v1_dir(Controller::Memory).map(|d| read_keyed(d, "memory.oom_control", "oom_kill")),
            Dirs::V2 { dir } => Some(read_keyed(dir, "memory.events", "oom_kill")),
        };
        counter.and_then(|r| r.ok().flatten()).unwrap_or(0)
    }

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

    fn update_v1(&self, r: &LinuxResources) -> Result<()> {
        if let Some(memory) = r.memory() {
            if memory_is_set(memory) {
                v1_memory(self.require_v1(Controller::Memory, "memory limits")?, memory)?;
            }
        }
        if let Some(cpu) = r.cpu() {
            if cpu_is_set(cpu) {
                v1_cpu(self.require_v1(Controller::Cpu, "cpu limits")?, cpu)?;
            }
            if let Some(cpus) = cpu.cpus().as_deref().filter(|s| !s.is_empty()) {
                let dir = self.require_v1(Controller::Cpuset, "cpuset cpus")?;
                write(dir, "cpuset.cpus", cpus)?;
            }
            if let Some(mems) = cpu.mems().as_deref().filter(|s| !s.is_empty()) {
                let dir = self.require_v1(Controller::Cpuset, "cpuset mems")?;
                write(dir, "cpuset.mems", mems)?;
            }
        }
        if let Some(pids) = r.pids() {
            let dir = self.require_v1(Controller::Pids, "the pids limit")?;
            write(dir, "pids.max", &pids_max(pids.limit()))?;
        }
        if let Some(block_io) = r.block_io() {
            if block_io_is_set(block_io) {
                v1_block_io(self.require_v1(Controller::Blkio, "block I/O limits")?, block_io)?;
            }
        }
        Ok(())
    }
}

/// Refuses resources this module has no way to apply, so that asking for
/// them fails instead of passing silently.
///
/// Device rules are accepted and not written: the Sentry, not the host
/// kernel, decides which device files a container can open (runsc treats the
/// devices controller the same way), and Docker always sends rules.
fn refuse_unsupported(r: &LinuxResources, dirs: &Dirs) -> Result<()> {
    if r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty()) {
        return Err(CgroupError::Unsupported("linux.resources.hugepageLimits"));
    }
    if r.rdma().as_ref().is_some_and(|h| !h.is_empty()) {
        return Err(CgroupError::Unsupported("linux.resources.rdma"));
    }
    if let Some(network) = r.network() {
        if network.class_id().is_some() || network.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
            return Err(CgroupError::Unsupported("linux.resources.network"));
        }
    }
    let unified = r.unified().as_ref().is_some_and(|u| !u.is_empty());
    if unified && matches!(dirs, Dirs::V1 { .. }) {
        return Err(CgroupError::Unsupported("linux.resources.unified (cgroup v2 files) on a v1 host"));
    }
    let realtime = r.cpu().as_ref().is_some_and(|c| c.realtime_runtime().is_some() || c.realtime_period().is_some());
    if realtime && matches!(dirs, Dirs::V2 { .. }) {
        return Err(CgroupError::Unsupported(
            "cpu realtime runtime/period (cgroup v2 has no realtime group scheduling)",
        ));
    }
    Ok(())
}

fn memory_is_set(m: &LinuxMemory) -> bool {
    m.limit().is_some()
        || m.swap().is_some()
        || m.reservation().is_some()
        || m.swappiness().is_some()
        || m.disable_oom_killer().is_some()
        || m.kernel_tcp().is_some()
}

fn cpu_is_set(c: &LinuxCpu) -> bool {
    c.shares().is_some()
        || c.quota().is_some()
        || c.period().is_some()
        || c.burst().is_some()
        || c.idle().is_some()
        || c.realtime_runtime().is_some()
        || c.realtime_period().is_some()
}

fn block_io_is_set(b: &LinuxBlockIo) -> bool {
    let any = |d: &Option<Vec<_>>| d.as_ref().is_some_and(|d: &Vec<_>| !d.is_empty());
    b.weight().is_some()
        || b.leaf_weight().is_some()
        || b.weight_device().as_ref().is_some_and(|d| !d.is_empty())
        || any(b.throttle_read_bps_device())
        || any(b.throttle_write_bps_device())
        || any(b.throttle_read_iops_device())
        || any(b.throttle_write_iops_device())
}

/// `pids.max` for an OCI pids limit: a count, or "max" for 0 and below.
fn pids_max(limit: i64) -> String {
    if limit > 0 {
        limit.to_string()
    } else {
        "max".to_owned()
    }
}

/// The OCI memory limit, swap (memory+swap) and reservation, 0 for unset as
/// in runc, after checking that swap covers memory.
fn memory_values(m: &LinuxMemory) -> Result<(i64, i64, i64)> {
    let limit = m.limit().unwrap_or(0);
    let swap = m.swap().unwrap_or(0);
    if swap > 0 && limit > 0 && swap < limit {
        return Err(CgroupError::InvalidResources(format!(
            "memory.swap {swap} is below memory.limit {limit} (swap is the memory+swap limit, so it must be at least the memory limit)"
        )));
    }
    if swap > 0 && limit <= 0 {
        return Err(CgroupError::InvalidResources(format!("memory.swap {swap} is set without a memory.limit")));
    }
    Ok((limit, swap, m.reservation().unwrap_or(0)))
}

fn v1_memory(dir: &Path, m: &LinuxMemory) -> Result<()> {
    const LIMIT: &str = "memory.limit_in_bytes";
    const MEMSW: &str = "memory.memsw.limit_in_bytes";
    let (limit, mut swap, reservation) = memory_values(m)?;
    // Without swap accounting (swapaccount=0) the memsw files are absent and
    // a swap limit cannot apply; runc skips it too.
    let swap_accounted = dir.join(MEMSW).exists();
    if !swap_accounted {
        swap = 0;
    } else if limit == -1 && swap == 0 {
        // "Unlimited memory" must lift the memory+swap limit as well.
        swap = -1;
    }
    if limit != 0 && swap != 0 {
        // memsw may never be below the memory limit, so raising limits sets
        // memsw first and lowering them sets it last.
        let current = read_u64(dir, LIMIT)?;
        if limit == -1 || current < limit as u64 {
            write(dir, MEMSW, &swap.to_string())?;
            write(dir, LIMIT, &limit.to_string())?;
        } else {
            write(dir, LIMIT, &limit.to_string())?;
            write(dir, MEMSW, &swap.to_string())?;
        }
    } else if limit != 0 {
        write(dir, LIMIT, &limit.to_string())?;
    } else if swap != 0 {
        write(dir, MEMSW, &swap.to_string())?;
    }
    if reservation != 0 {
        write(dir, "memory.soft_limit_in_bytes", &reservation.to_string())?;
    }
    if let Some(tcp) = m.kernel_tcp() {
        write(dir, "memory.kmem.tcp.limit_in_bytes", &tcp.to_string())?;
    }
    if let Some(swappiness) = m.swappiness() {
        if swappiness > 100 {
            return Err(CgroupError::InvalidResources(format!("memory.swappiness {swappiness} is above 100")));
        }
        write(dir, "memory.swappiness", &swappiness.to_string())?;
    }
    if let Some(disable) = m.disable_oom_killer() {
        write(dir, "memory.oom_control", if disable { "1" } else { "0" })?;
    }
    Ok(())
}

fn v1_cpu(dir: &Path, c: &LinuxCpu) -> Result<()> {
    if let Some(shares) = c.shares().filter(|&s| s != 0) {
        let wrote = shares.to_string();
        write(dir, "cpu.shares", &wrote)?;
        // The kernel clamps shares to 2..=262144 without an error.
        let read = read(dir, "cpu.shares")?;
        if read != wrote {
            return Err(CgroupError::ReadBack { path: dir.join("cpu.shares"), wrote, read });
        }
    }
    let quota = c.quota().unwrap_or(0);
    let mut pending_period = None;
    if let Some(period) = c.period().filter(|&p| p != 0) {
        match write(dir, "cpu.cfs_period_us", &period.to_string()) {
            Ok(()) => {}
            // A period smaller than the current one can be refused (EINVAL)
            // while the old quota would exceed the parent's; runc retries it
            // after the quota, and so does this.
            Err(CgroupError::Write { source, .. }) if source.raw_os_error() == Some(libc::EINVAL) && quota != 0 => {
                pending_period = Some(period);
            }
            Err(e) => return Err(e),
        }
    }
    if quota != 0 {
        write(dir, "cpu.cfs_quota_us", &quota.to_string())?;
        if let Some(period) = pending_period {
            write(dir, "cpu.cfs_period_us", &period.to_string())?;
        }
    }
    if let Some(burst) = c.burst() {
        write(dir, "cpu.cfs_burst_us", &burst.to_string())?;
    }
    if let Some(idle) = c.idle() {
        write(dir, "cpu.idle", &idle.to_string())?;
    }
    // The kernel refuses a runtime longer than the period, so the period
    // goes first.
    if let Some(period) = c.realtime_period().filter(|&p| p != 0) {
        write(dir, "cpu.rt_period_us", &period.to_string())?;
    }
    if let Some(runtime) = c.realtime_runtime().filter(|&r| r != 0) {
        write(dir, "cpu.rt_runtime_us", &runtime.to_string())?;
    }
    Ok(())
}

fn v1_block_io(dir: &Path, b: &LinuxBlockIo) -> Result<()> {
    // With BFQ the weight lives in blkio.bfq.*; blkio.weight is the legacy
    // CFQ file. runc picks whichever exists, and fails if neither does.
    let (weight_file, weight_device_file) = if dir.join("blkio.bfq.weight").exists() {
        ("blkio.bfq.weight", "blkio.bfq.weight_device")
    } else {
        ("blkio.weight", "blkio.weight_device")
    };
    if let Some(weight) = b.weight().filter(|&w| w != 0) {
        write(dir, weight_file, &weight.to_string())?;
    }
    if let Some(weight) = b.leaf_weight().filter(|&w| w != 0) {
        write(dir, "blkio.leaf_weight", &weight.to_string())?;
    }
    for device in b.weight_device().iter().flatten() {
        let id = format!("{}:{}", device.major(), device.minor());
        if let Some(weight) = device.weight() {
            write(dir, weight_device_file, &format!("{id} {weight}"))?;
        }
        if let Some(weight) = device.leaf_weight() {
            write(dir, "blkio.leaf_weight_device", &format!("{id} {weight}"))?;
        }
    }
    let throttles = [
        (b.throttle_read_bps_device(), "blkio.throttle.read_bps_device"),
        (b.throttle_write_bps_device(), "blkio.throttle.write_bps_device"),
        (b.throttle_read_iops_device(), "blkio.throttle.read_iops_device"),
        (b.throttle_write_iops_device(), "blkio.throttle.write_iops_device"),
    ];
    for (devices, file) in throttles {
        for device in devices.iter().flatten() {
            write(dir, file, &throttle_line(device, ""))?;
        }
    }
    Ok(())
}

/// `major:minor rate`, or `major:minor key=rate` for v2's io.max.
fn throttle_line(device: &LinuxThrottleDevice, key: &str) -> String {
    let (major, minor, rate) = (device.major(), device.minor(), device.rate());
    format!("{major}:{minor} {key}{rate}")
}

/// The v2 value for an OCI number: "" for unset (0), "max" for -1.
fn v2_number(value: i64) -> Option<String> {
    match value {
        0 => None,
        -1 => Some("max".to_owned()),
        v => Some(v.to_string()),
    }
}

/// `memory.swap.max` for OCI memory+swap and memory limits, as runc's
/// `ConvertMemorySwapToCgroupV2Value`: v2 limits swap alone.
fn v2_swap(swap: i64, limit: i64) -> Option<String> {
    if limit == -1 && swap == 0 {
        return Some("max".to_owned());
    }
    match swap {
        0 => None,
        -1 => Some("max".to_owned()),
        s => Some((s - limit).to_string()),
    }
}

/// cpu.weight for cpu.shares, as runc's `ConvertCPUSharesToCgroupV2Value`:
/// maps shares' 2..=262144 onto weight's 1..=10000.
fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.saturating_sub(2) * 9999) / 262_142
}

/// io.weight for blkio.weight, as runc's `ConvertBlkIOToIOWeightValue`:
/// maps 10..=1000 onto 1..=10000.
fn blkio_to_io_weight(weight: u16) -> u64 {
    1 + (u64::from(weight).saturating_sub(10) * 9999) / 990
}

fn update_v2(dir: &Path, r: &LinuxResources) -> Result<()> {
    if let Some(m) = r.memory() {
        let (limit, swap, reservation) = memory_values(m)?;
        if let Some(value) = v2_swap(swap, limit) {
            match write(dir, "memory.swap.max", &value) {
                Ok(()) => {}
                // Without swap accounting there is no memory.swap.max; runc
                // then ignores "no swap" and "unlimited swap" but nothing else.
                Err(CgroupError::Write { source, .. })
                    if source.kind() == io::ErrorKind::NotFound && (value == "max" || value == "0") => {}
                Err(e) => return Err(e),
            }
        }
        if let Some(value) = v2_number(limit) {
            write(dir, "memory.max", &value)?;
        }
        if let Some(value) = v2_number(reservation) {
            write(dir, "memory.low", &value)?;
        }
        // Kernel memory, swappiness and the OOM-killer switch have no v2
        // files; runc ignores them on v2 as well.
    }
    if let Some(c) = r.cpu() {
        if let Some(weight) = c.shares().map(shares_to_weight).filter(|&w| w != 0) {
            write(dir, "cpu.weight", &weight.to_string())?;
        }
        let quota = c.quota().unwrap_or(0);
        let period = c.period().unwrap_or(0);
        if quota != 0 || period != 0 {
            let quota = if quota > 0 { quota.to_string() } else { "max".to_owned() };
            let period = if period == 0 { DEFAULT_CPU_PERIOD } else { period };
            write(dir, "cpu.max", &format!("{quota} {period}"))?;
        }
        if let Some(burst) = c.burst() {
            write(dir, "cpu.max.burst", &burst.to_string())?;
        }
        if let Some(idle) = c.idle() {
            write(dir, "cpu.idle", &idle.to_string())?;
        }
        if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
            write(dir, "cpuset.cpus", cpus)?;
        }
        if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
            write(dir, "cpuset.mems", mems)?;
        }
    }
    if let Some(pids) = r.pids() {
        write(dir, "pids.max", &pids_max(pids.limit()))?;
    }
    if let Some(b) = r.block_io() {
        v2_io(dir, b)?;
    }
    for (file, value) in r.unified().iter().flatten() {
        if file.is_empty() || file.contains('/') || file.starts_with('.') {
            return Err(CgroupError::InvalidResources(format!(
                "linux.resources.unified key {file:?} is not a file name in the cgroup directory"
            )));
        }
        write(dir, file, value)?;
    }
    Ok(())
}

fn v2_io(dir: &Path, b: &LinuxBlockIo) -> Result<()> {
    // io.bfq.weight takes blkio's own range; io.weight (the default I/O
    // controller) needs runc's conversion.
    let bfq = dir.join("io.bfq.weight").exists();
    if let Some(weight) = b.weight().filter(|&w| w != 0) {
        if bfq {
            write(dir, "io.bfq.weight", &weight.to_string())?;
        } else {
            write(dir, "io.weight", &format!("default {}", blkio_to_io_weight(weight)))?;
        }
    }
    for device in b.weight_device().iter().flatten() {
        if let Some(weight) = device.weight() {
            let id = format!("{}:{}", device.major(), device.minor());
            if bfq {
                write(dir, "io.bfq.weight", &format!("{id} {weight}"))?;
            } else {
                write(dir, "io.weight", &format!("{id} {}", blkio_to_io_weight(weight)))?;
            }
        }
    }
    let throttles = [
        (b.throttle_read_bps_device(), "rbps="),
        (b.throttle_write_bps_device(), "wbps="),
        (b.throttle_read_iops_device(), "riops="),
        (b.throttle_write_iops_device(), "wiops="),
    ];
    for (devices, key) in throttles {
        for device in devices.iter().flatten() {
            write(dir, "io.max", &throttle_line(device, key))?;
        }
    }
    Ok(())
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

/// Makes `dir` and its missing parents; says whether `dir` itself was new.
fn create_dir(dir: &Path) -> Result<bool> {
    if dir.is_dir() {
        return Ok(false);
    }
    fs::create_dir_all(dir).map_err(|source| CgroupError::Create { path: dir.to_path_buf(), source })?;
    Ok(true)
}

/// Makes `path` under the v1 cpuset mount one level at a time, giving each
/// new level its parent's cpus and mems: a cpuset with none refuses tasks.
fn create_cpuset(mount: &Path, path: &str) -> Result<bool> {
    let mut parent = mount.to_path_buf();
    let mut created = false;
    for component in path.split('/') {
        let dir = parent.join(component);
        created = create_dir(&dir)?;
        for file in ["cpuset.cpus", "cpuset.mems"] {
            if read(&dir, file)?.is_empty() {
                write(&dir, file, &read(&parent, file)?)?;
            }
        }
        parent = dir;
    }
    Ok(created)
}

/// Makes `path` under the v2 root one level at a time, enabling in each
/// ancestor every controller the root offers, so that the leaf has their
/// files. As in runc, a controller the kernel will not enable here is not an
/// error at this point: setting its limit later fails and says which file.
fn create_v2(root: &Path, path: &str) -> Result<bool> {
    let offered = read(root, "cgroup.controllers")?;
    let enable: Vec<String> = offered.split_whitespace().map(|c| format!("+{c}")).collect();
    let mut parent = root.to_path_buf();
    let mut created = false;
    for component in path.split('/') {
        if !enable.is_empty() && write(&parent, "cgroup.subtree_control", &enable.join(" ")).is_err() {
            for controller in &enable {
                let _ = write(&parent, "cgroup.subtree_control", controller);
            }
        }
        let dir = parent.join(component);
        created = create_dir(&dir)?;
        parent = dir;
    }
    Ok(created)
}

/// rmdir, retried while the kernel says the cgroup is busy.
fn remove_dir(dir: &Path) -> Result<()> {
    let mut attempt = 0;
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < POLL_ATTEMPTS => {
                attempt += 1;
                thread::sleep(POLL_INTERVAL);
            }
            Err(source) => return Err(CgroupError::Remove { path: dir.to_path_buf(), source }),
        }
    }
}

/// Writes `value` to an existing cgroup file in one write(2), which is how
/// the kernel wants it; never creates the file.
fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    let path = dir.join(file);
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .map_err(|source| CgroupError::Write { path, value: value.to_owned(), source })
}

/// A cgroup file's contents without the trailing newline.
fn read(dir: &Path, file: &str) -> Result<String> {
    let path = dir.join(file);
    match fs::read_to_string(&path) {
        Ok(text) => Ok(text.trim_end().to_owned()),
        Err(source) => Err(CgroupError::Read { path, source }),
    }
}

/// Like `read`, but `None` when the file does not exist.
fn read_opt(dir: &Path, file: &str) -> Result<Option<String>> {
    match read(dir, file) {
        Ok(text) => Ok(Some(text)),
        Err(CgroupError::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn parse_u64(dir: &Path, file: &str, text: &str, expected: &'static str) -> Result<u64> {
    text.trim().parse().map_err(|_| CgroupError::Parse { path: dir.join(file), contents: text.to_owned(), expected })
}

fn read_u64(dir: &Path, file: &str) -> Result<u64> {
    parse_u64(dir, file, &read(dir, file)?, "a number")
}

fn read_u64_opt(dir: &Path, file: &str) -> Result<Option<u64>> {
    read_opt(dir, file)?.map(|text| parse_u64(dir, file, &text, "a number")).transpose()
}

/// A limit file holding a number or "max": `None` when the file does not
/// exist, `Some(None)` for "max".
fn read_max_opt(dir: &Path, file: &str) -> Result<Option<Option<u64>>> {
    let Some(text) = read_opt(dir, file)? else {
        return Ok(None);
    };
    if text == "max" {
        return Ok(Some(None));
    }
    parse_u64(dir, file, &text, "a number or \"max\"").map(|n| Some(Some(n)))
}

/// The value of `key` in a flat-keyed file (`key value` lines): `None` when
/// the file or the key is absent.
fn read_keyed(dir: &Path, file: &str, key: &str) -> Result<Option<u64>> {
    let Some(text) = read_opt(dir, file)? else {
        return Ok(None);
    };
    for line in text.lines() {
        if let Some((k, v)) = line.split_once(' ') {
            if k == key {
                return parse_u64(dir, file, v, "\"key number\" lines").map(Some);
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
34 31 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
";

    #[test]
    fn mountinfo_hybrid_with_comounted_controllers() {
        let mounts = Mounts::parse(HYBRID).unwrap();
        assert_eq!(
            mounts.layout,
            Layout::Hybrid { v1: "/sys/fs/cgroup".into(), unified: "/sys/fs/cgroup/unified".into() }
        );
        let cpuacct = mounts.v1.iter().find(|(c, _)| *c == Controller::Cpuacct).unwrap();
        assert_eq!(cpuacct.1, Path::new("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(mounts.v1.len(), 3);
    }

    #[test]
    fn mountinfo_v2_with_named_v1_hierarchy() {
        let text = "\
30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate
40 30 0:37 / /run/systemd\\040legacy rw - cgroup cgroup rw,name=systemd
";
        let mounts = Mounts::parse(text).unwrap();
        assert_eq!(mounts.layout, Layout::V2 { root: "/sys/fs/cgroup".into() });
    }

    #[test]
    fn mountinfo_errors() {
        assert!(matches!(Mounts::parse("1 2 3"), Err(CgroupError::Mountinfo(_))));
        let none = "22 1 0:21 / /proc rw - proc proc rw\n";
        assert!(matches!(Mounts::parse(none), Err(CgroupError::NoHierarchy)));
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mountinfo("/a\\040b\\134c"), "/a b\\c");
        assert_eq!(unescape_mountinfo("/trailing\\04"), "/trailing\\04");
    }

    #[test]
    fn paths() {
        assert_eq!(normalize("/docker/abc").unwrap(), "docker/abc");
        assert_eq!(normalize("moat//x/./y/").unwrap(), "moat/x/y");
        assert!(matches!(normalize(""), Err(CgroupError::EmptyPath(_))));
        assert!(matches!(normalize("/"), Err(CgroupError::EmptyPath(_))));
        assert!(matches!(normalize("/a/../b"), Err(CgroupError::ParentComponent(_))));
        assert!(matches!(normalize("system.slice:docker:abc"), Err(CgroupError::SystemdPath(_))));
    }

    #[test]
    fn conversions_match_runc() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(blkio_to_io_weight(10), 1);
        assert_eq!(blkio_to_io_weight(1000), 10_000);
        assert_eq!(v2_swap(0, 100), None);
        assert_eq!(v2_swap(0, -1).as_deref(), Some("max"));
        assert_eq!(v2_swap(300, 100).as_deref(), Some("200"));
        assert_eq!(v2_swap(100, 100).as_deref(), Some("0"));
        assert_eq!(pids_max(-1), "max");
        assert_eq!(pids_max(0), "max");
        assert_eq!(pids_max(7), "7");
    }

    #[test]
    fn stats_serialize_like_runc() {
        let stats = Stats { memory_usage: 5, memory_limit: 10, pids_current: 2, cpu_usage_ns: 7, ..Stats::default() };
        let value = serde_json::to_value(&stats).unwrap();
        assert_eq!(
            value,
            json!({
                "cpu": {"usage": {"total": 7}},
                "memory": {"usage": {"limit": 10, "usage": 5}},
                "pids": {"current": 2},
            })
        );
    }
}
