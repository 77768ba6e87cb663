//! Where this host mounts its cgroup hierarchies, read from the kernel's
//! mount table: v1 controllers (co-mounted or not), a v2 tree, or both.

use std::fs;
use std::path::PathBuf;

use super::{CgroupError, Layout, Result};

/// Where the kernel's mount table is read from.
pub(super) const MOUNTINFO: &str = "/proc/self/mountinfo";

/// The v1 controllers a container's cgroup joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Controller {
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
    pub(super) fn name(self) -> &'static str {
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
pub(super) struct Mounts {
    pub(super) layout: Layout,
    pub(super) v1: Vec<(Controller, PathBuf)>,
}

impl Mounts {
    pub(super) fn read() -> Result<Mounts> {
        let text =
            fs::read_to_string(MOUNTINFO).map_err(|source| CgroupError::Read { path: MOUNTINFO.into(), source })?;
        Mounts::parse(&text)
    }

    /// Parses mountinfo lines: `id parent dev root mountpoint options
    /// [optional...] - fstype source superoptions`.
    pub(super) fn parse(text: &str) -> Result<Mounts> {
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
pub(super) fn unescape_mountinfo(field: &str) -> String {
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

#[cfg(test)]
mod tests {
    use std::path::Path;

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
}
