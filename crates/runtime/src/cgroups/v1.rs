//! Limits on cgroup v1: one directory per controller (memory, cpu, cpuset,
//! pids, blkio), each file written the way runc writes it.

use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};

use super::files::{create_dir, read, read_u64, write};
use super::resources::{block_io_is_set, cpu_is_set, memory_is_set, memory_values, pids_max, throttle_line};
use super::{Cgroup, CgroupError, Controller, Result};

impl Cgroup {
    pub(super) fn update_v1(&self, r: &LinuxResources) -> Result<()> {
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

pub(super) fn v1_memory(dir: &Path, m: &LinuxMemory) -> Result<()> {
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

pub(super) fn v1_cpu(dir: &Path, c: &LinuxCpu) -> Result<()> {
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

pub(super) fn v1_block_io(dir: &Path, b: &LinuxBlockIo) -> Result<()> {
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

/// Makes `path` under the v1 cpuset mount one level at a time, giving each
/// new level its parent's cpus and mems: a cpuset with none refuses tasks.
pub(super) fn create_cpuset(mount: &Path, path: &str) -> Result<bool> {
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
