//! Limits on cgroup v2: one directory whose controllers are enabled from the
//! root down, with OCI's v1-shaped values converted as runc converts them.

use std::io;
use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxResources};

use super::files::{create_dir, read, write};
use super::resources::{memory_values, pids_max, throttle_line};
use super::{CgroupError, Result};

/// The default CFS period, used for `cpu.max` when only a quota is given
/// (documented in the kernel's cgroup-v2.rst, and what runc uses).
pub(super) const DEFAULT_CPU_PERIOD: u64 = 100_000;

/// The v2 value for an OCI number: "" for unset (0), "max" for -1.
pub(super) fn v2_number(value: i64) -> Option<String> {
    match value {
        0 => None,
        -1 => Some("max".to_owned()),
        v => Some(v.to_string()),
    }
}

/// `memory.swap.max` for OCI memory+swap and memory limits, as runc's
/// `ConvertMemorySwapToCgroupV2Value`: v2 limits swap alone.
pub(super) fn v2_swap(swap: i64, limit: i64) -> Option<String> {
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
pub(super) fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.saturating_sub(2) * 9999) / 262_142
}

/// io.weight for blkio.weight, as runc's `ConvertBlkIOToIOWeightValue`:
/// maps 10..=1000 onto 1..=10000.
pub(super) fn blkio_to_io_weight(weight: u16) -> u64 {
    1 + (u64::from(weight).saturating_sub(10) * 9999) / 990
}

pub(super) fn update_v2(dir: &Path, r: &LinuxResources) -> Result<()> {
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

pub(super) fn v2_io(dir: &Path, b: &LinuxBlockIo) -> Result<()> {
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

/// Makes `path` under the v2 root one level at a time, enabling in each
/// ancestor every controller the root offers, so that the leaf has their
/// files. As in runc, a controller the kernel will not enable here is not an
/// error at this point: setting its limit later fails and says which file.
pub(super) fn create_v2(root: &Path, path: &str) -> Result<bool> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
