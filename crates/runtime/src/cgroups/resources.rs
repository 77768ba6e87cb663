//! OCI `linux.resources` as both cgroup versions need them: what moat refuses,
//! which parts are set at all, and the values runc derives from them.

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources, LinuxThrottleDevice};

use super::{CgroupError, Dirs, Result};

/// Refuses resources this module has no way to apply, so that asking for
/// them fails instead of passing silently.
///
/// Device rules are accepted and not written: the Sentry, not the host
/// kernel, decides which device files a container can open (runsc treats the
/// devices controller the same way), and Docker always sends rules.
pub(super) fn refuse_unsupported(r: &LinuxResources, dirs: &Dirs) -> Result<()> {
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

pub(super) fn memory_is_set(m: &LinuxMemory) -> bool {
    m.limit().is_some()
        || m.swap().is_some()
        || m.reservation().is_some()
        || m.swappiness().is_some()
        || m.disable_oom_killer().is_some()
        || m.kernel_tcp().is_some()
}

pub(super) fn cpu_is_set(c: &LinuxCpu) -> bool {
    c.shares().is_some()
        || c.quota().is_some()
        || c.period().is_some()
        || c.burst().is_some()
        || c.idle().is_some()
        || c.realtime_runtime().is_some()
        || c.realtime_period().is_some()
}

pub(super) fn block_io_is_set(b: &LinuxBlockIo) -> bool {
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
pub(super) fn pids_max(limit: i64) -> String {
    if limit > 0 {
        limit.to_string()
    } else {
        "max".to_owned()
    }
}

/// The OCI memory limit, swap (memory+swap) and reservation, 0 for unset as
/// in runc, after checking that swap covers memory.
pub(super) fn memory_values(m: &LinuxMemory) -> Result<(i64, i64, i64)> {
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

/// `major:minor rate`, or `major:minor key=rate` for v2's io.max.
pub(super) fn throttle_line(device: &LinuxThrottleDevice, key: &str) -> String {
    let (major, minor, rate) = (device.major(), device.minor(), device.rate());
    format!("{major}:{minor} {key}{rate}")
}
