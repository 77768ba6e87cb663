//! `moat do`'s limits: `--memory`, `--pids` and `--cpus` (or their
//! defaults) as the app's task limit and the host cgroup's resources.

use oci_spec::runtime::{LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};

use super::options::parse_size;
use super::{DoConfig, DoError};

/// Tasks the app may have without `--pids`: plenty for build systems and
/// thread pools, while a fork bomb stops well short of the host's pid space
/// (the host cgroup allows twice this plus the sandbox's own tasks).
const DEFAULT_APP_TASKS: usize = 1024;
/// The most `--pids` may be: the kernel's own most pids (PID_MAX_LIMIT).
pub(super) const MAX_APP_TASKS: usize = 1 << 22;
/// Without `--memory`, the sandbox may use this fraction (1/N) of the
/// host's RAM: one sandbox alone cannot push the host into swapping or its
/// OOM killer, and most programs never notice the limit.
const DEFAULT_MEMORY_DIVISOR: u64 = 2;
/// The smallest `--memory`: the Sentry and its Gofer are charged about
/// 15 MiB before the app runs, and a dynamically linked program as much
/// again; below this, little would run.
const MIN_MEMORY: u64 = 64 << 20;
/// The CFS period `--cpus` is a share of (the kernel's default, as Docker's).
const CPU_PERIOD_US: u64 = 100_000;
/// The smallest quota the kernel takes (1 ms), so `--cpus` 0.01 at least.
const MIN_CPU_QUOTA_US: u64 = 1_000;

/// `--pids`, or its default: the app's task limit, which the Sentry
/// enforces (fork and clone past it fail with EAGAIN).
pub(super) fn app_tasks(c: &DoConfig) -> Result<usize, DoError> {
    let Some(s) = &c.pids else {
        return Ok(DEFAULT_APP_TASKS);
    };
    s.parse().ok().filter(|n| (1..=MAX_APP_TASKS).contains(n)).ok_or_else(|| DoError::Pids(s.clone()))
}

/// The host cgroup's limits: `--memory` as memory and memory+swap (so the
/// sandbox cannot swap past it), `--pids` scaled as for a container (the
/// Sentry's threads, stubs, Gofers), `--cpus` as a CFS quota.
pub(super) fn host_resources(c: &DoConfig) -> Result<LinuxResources, DoError> {
    let memory = memory_limit(c)?;
    let memory = i64::try_from(memory).map_err(|_| DoError::MemoryTooLarge(c.memory.clone().unwrap_or_default()))?;
    let mut resources = LinuxResources::default();
    let mut limits = LinuxMemory::default();
    limits.set_limit(Some(memory));
    limits.set_swap(Some(memory));
    resources.set_memory(Some(limits));
    let mut pids = LinuxPids::default();
    pids.set_limit(app_tasks(c)? as i64);
    resources.set_pids(Some(pids));
    if let Some(s) = &c.cpus {
        let mut cpu = LinuxCpu::default();
        cpu.set_quota(Some(cpu_quota(s)?));
        cpu.set_period(Some(CPU_PERIOD_US));
        resources.set_cpu(Some(cpu));
    }
    Ok(crate::sandbox::host_resources(&resources))
}

/// `--memory`, or its default (a share of the host's RAM), in bytes: the
/// cgroup's limit, and the total the sandbox's /proc/meminfo shows.
pub(super) fn memory_limit(c: &DoConfig) -> Result<u64, DoError> {
    match &c.memory {
        Some(s) => {
            let m = parse_size(s).map_err(DoError::Memory)?;
            if m < MIN_MEMORY {
                return Err(DoError::MemoryTooSmall(s.clone()));
            }
            Ok(m)
        }
        None => Ok(host::sys::total_ram().ok_or(DoError::NoHostRam)? / DEFAULT_MEMORY_DIVISOR),
    }
}

/// `--cpus N` as microseconds of CPU time per period, N from 0.01 to the
/// number of CPUs there are (as Docker checks it).
fn cpu_quota(s: &str) -> Result<i64, DoError> {
    let available = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cpus: f64 = s.trim().parse().map_err(|_| DoError::CpusNotNumber(s.to_owned()))?;
    let quota = (cpus * CPU_PERIOD_US as f64).round();
    if !(MIN_CPU_QUOTA_US as f64..=(available as u64 * CPU_PERIOD_US) as f64).contains(&quota) {
        return Err(DoError::CpusRange { cpus: s.to_owned(), available });
    }
    Ok(quota as i64)
}
