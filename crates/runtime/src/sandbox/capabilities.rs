//! OCI capability names as the Sentry's capability numbers and masks, for
//! a container's init and for the processes `exec` starts in it.

use oci_spec::runtime::{Capability, LinuxCapabilities};

use crate::control::CapabilityMasks;
/// The capability number of an OCI capability name.
fn capability_number(c: Capability) -> u32 {
    use Capability as C;
    match c {
        C::Chown => 0,
        C::DacOverride => 1,
        C::DacReadSearch => 2,
        C::Fowner => 3,
        C::Fsetid => 4,
        C::Kill => 5,
        C::Setgid => 6,
        C::Setuid => 7,
        C::Setpcap => 8,
        C::LinuxImmutable => 9,
        C::NetBindService => 10,
        C::NetBroadcast => 11,
        C::NetAdmin => 12,
        C::NetRaw => 13,
        C::IpcLock => 14,
        C::IpcOwner => 15,
        C::SysModule => 16,
        C::SysRawio => 17,
        C::SysChroot => 18,
        C::SysPtrace => 19,
        C::SysPacct => 20,
        C::SysAdmin => 21,
        C::SysBoot => 22,
        C::SysNice => 23,
        C::SysResource => 24,
        C::SysTime => 25,
        C::SysTtyConfig => 26,
        C::Mknod => 27,
        C::Lease => 28,
        C::AuditWrite => 29,
        C::AuditControl => 30,
        C::Setfcap => 31,
        C::MacOverride => 32,
        C::MacAdmin => 33,
        C::Syslog => 34,
        C::WakeAlarm => 35,
        C::BlockSuspend => 36,
        C::AuditRead => 37,
        C::Perfmon => 38,
        C::Bpf => 39,
        C::CheckpointRestore => 40,
    }
}

/// OCI's `process.capabilities` as masks; a set the spec leaves out is empty.
pub(crate) fn capability_masks(c: &LinuxCapabilities) -> CapabilityMasks {
    let mask = |set: &Option<oci_spec::runtime::Capabilities>| {
        set.iter().flatten().fold(0u64, |m, &cap| m | 1 << capability_number(cap))
    };
    CapabilityMasks {
        effective: mask(c.effective()),
        permitted: mask(c.permitted()),
        inheritable: mask(c.inheritable()),
        bounding: mask(c.bounding()),
        ambient: mask(c.ambient()),
    }
}
