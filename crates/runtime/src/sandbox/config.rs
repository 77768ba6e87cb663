//! A bundle's spec as the Sentry's boot configuration: init's process,
//! root and mounts (each served by a Gofer), sysctls, rlimits and limits.

use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;

use oci_spec::runtime::{LinuxResources, Spec};
use sentry::{BootConfig, FileAccess, HostStdio, ProcessConfig, RootConfig, Sysctls};

use super::capabilities::capability_masks;
use super::mounts::mount_config;
use super::SandboxError;
use crate::bundle::Bundle;
use crate::gofers::{Gofers, Serving};
/// Host tasks a container has beyond two per app task: the sandbox
/// processes, the Sentry's own threads, the Gofers and the source stub.
const HOST_TASKS_OVERHEAD: i64 = 64;

/// The spec's pids limit, which the Sentry enforces on the app's tasks.
fn app_task_limit(spec: &Spec) -> Option<usize> {
    let limit = spec.linux().as_ref()?.resources().as_ref()?.pids().as_ref()?.limit();
    usize::try_from(limit).ok().filter(|&l| l > 0)
}

/// The hostname of the UTS namespace `moat boot` now runs in, for a spec
/// that names none: runc leaves the namespace's own, which a pod's
/// containers share with the pod's sandbox (Kubernetes puts the pod's
/// hostname there and not in their specs); "moat" if it cannot be read.
fn namespace_hostname() -> Vec<u8> {
    std::fs::read("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim_ascii_end().to_vec())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| b"moat".to_vec())
}

/// The spec's memory limit in bytes, which the Sentry reports as the total
/// in /proc/meminfo and sysinfo (as runsc does); none if unset or unlimited.
fn memory_limit(spec: &Spec) -> Option<u64> {
    let limit = spec.linux().as_ref()?.resources().as_ref()?.memory().as_ref()?.limit()?;
    u64::try_from(limit).ok().filter(|&l| l > 0)
}

/// The limits as the host's cgroup applies them. Each app task is a Sentry
/// thread and (for a process) a stub on the host, so the app's pids limit
/// is the Sentry's to enforce, and the host's is set above it, to contain
/// the sandbox without ever being what the app runs into.
pub(crate) fn host_resources(r: &LinuxResources) -> LinuxResources {
    let mut host = r.clone();
    if let Some(pids) = r.pids() {
        if pids.limit() > 0 {
            let mut scaled = *pids;
            scaled.set_limit(pids.limit().saturating_mul(2).saturating_add(HOST_TASKS_OVERHEAD));
            host.set_pids(Some(scaled));
        }
    }
    host
}

/// `overlay` (the runtime's `--overlay`) keeps the root's writes in memory;
/// without it they reach the bundle's rootfs, as under runc.
pub(super) fn boot_config(bundle: &Bundle, gofers: &mut Gofers, overlay: bool) -> Result<BootConfig, SandboxError> {
    let spec = &bundle.spec;
    let process = spec.process().as_ref().ok_or(SandboxError::NoProcess)?;
    let seccomp = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
    let config = || bundle.dir.join("config.json");
    let app_seccomp = seccomp
        .map(crate::seccomp_profile::from_spec)
        .transpose()
        .map_err(|source| SandboxError::Seccomp { config: config(), source })?;
    let read_only_root = spec.root().as_ref().and_then(|r| r.readonly()).unwrap_or(false);
    // The app writes into a host directory: the Gofer opens every name
    // beneath it without following symlinks, makes no device nodes, and
    // strips set-ID bits (as for a bind mount without "suid").
    let root_serving = Serving { read_only: read_only_root || overlay, allow_setid: false };
    let root_socket = gofers.start_dir(&bundle.rootfs, root_serving).map_err(SandboxError::RootGofer)?;
    let mut mounts = Vec::new();
    for m in spec.mounts().clone().unwrap_or_default() {
        if let Some(mount) = mount_config(&m, gofers)? {
            mounts.push(mount);
        }
    }
    let user = process.user();
    let stdio = |fd: std::os::fd::BorrowedFd<'_>| fd.try_clone_to_owned();
    let (stdin, stdout, stderr) =
        match (stdio(std::io::stdin().as_fd()), stdio(std::io::stdout().as_fd()), stdio(std::io::stderr().as_fd())) {
            (Ok(a), Ok(b), Ok(c)) => (a, b, c),
            _ => return Err(SandboxError::NoStdio),
        };
    let mut env = process.env().clone().unwrap_or_default();
    crate::passwd::set_home(&mut env, &bundle.rootfs, user.uid());
    let sysctls = sysctls(spec).map_err(|source| SandboxError::Sysctl { config: config(), source })?;
    Ok(BootConfig {
        root: RootConfig {
            gofer: root_socket,
            access: if overlay { FileAccess::Exclusive } else { FileAccess::ExclusiveWriteThrough },
            overlay_limit: Some(OVERLAY_LIMIT),
            read_only: read_only_root,
        },
        mounts,
        init: ProcessConfig {
            argv: process.args().clone().unwrap_or_default().into_iter().map(String::into_bytes).collect(),
            envp: env.into_iter().map(String::into_bytes).collect(),
            cwd: process.cwd().as_os_str().as_bytes().to_vec(),
            stdio: HostStdio { stdin, stdout, stderr },
            uid: user.uid(),
            gid: user.gid(),
            groups: user.additional_gids().clone().unwrap_or_default(),
            rlimits: rlimits(process)?,
            capabilities: process.capabilities().as_ref().map(|c| capability_masks(c).into()),
            no_new_privileges: process.no_new_privileges().unwrap_or(false),
        },
        hostname: match spec.hostname() {
            Some(name) => name.clone().into_bytes(),
            None => namespace_hostname(),
        },
        domainname: spec.domainname().clone().unwrap_or_default().into_bytes(),
        sysctls,
        strace: false,
        stats: false,
        max_tasks: app_task_limit(spec),
        tmp_limit: None,
        selftest_forbidden_syscall: false,
        app_seccomp,
        platform: sentry::PlatformKind::default(),
        memory_limit: memory_limit(spec),
        // Read at `start`, once the engine's hooks have set the namespace up.
        network: None,
    })
}

/// The spec's `linux.sysctl`, sorted by key, checked as the Sentry will
/// take them, so that a bad key fails `create` with a clear error.
fn sysctls(spec: &Spec) -> Result<Vec<(String, String)>, sentry::SysctlError> {
    let mut pairs: Vec<(String, String)> =
        spec.linux().as_ref().and_then(|l| l.sysctl().clone()).unwrap_or_default().into_iter().collect();
    pairs.sort();
    Sysctls::parse(&pairs)?;
    Ok(pairs)
}

/// The spec's `process.rlimits` as (RLIMIT_* number, soft, hard).
fn rlimits(process: &oci_spec::runtime::Process) -> Result<Vec<(u32, u64, u64)>, SandboxError> {
    use oci_spec::runtime::PosixRlimitType as T;
    let mut out = Vec::new();
    for r in process.rlimits().clone().unwrap_or_default() {
        let which = match r.typ() {
            T::RlimitCpu => 0,
            T::RlimitFsize => 1,
            T::RlimitData => 2,
            T::RlimitStack => 3,
            T::RlimitCore => 4,
            T::RlimitRss => 5,
            T::RlimitNproc => 6,
            T::RlimitNofile => 7,
            T::RlimitMemlock => 8,
            T::RlimitAs => 9,
            T::RlimitLocks => 10,
            T::RlimitSigpending => 11,
            T::RlimitMsgqueue => 12,
            T::RlimitNice => 13,
            T::RlimitRtprio => 14,
            T::RlimitRttime => 15,
        };
        if r.soft() > r.hard() {
            return Err(SandboxError::Rlimit { kind: r.typ(), soft: r.soft(), hard: r.hard() });
        }
        out.push((which, r.soft(), r.hard()));
    }
    Ok(out)
}

/// The in-memory overlay over a container's root (`--overlay`) holds at most this much.
const OVERLAY_LIMIT: u64 = 2 << 30;
