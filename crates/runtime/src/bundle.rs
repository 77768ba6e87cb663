//! OCI bundles: a directory holding `config.json` and a root filesystem,
//! checked once on load so that create, run and boot can trust what they read.
//!
//! Also the two documents moat prints without a container: the default spec
//! (`moat spec`) and the features document (`moat features`).

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxNamespace, LinuxNamespaceType, LinuxResources, Mount, Spec};
use serde_json::json;

/// A bundle whose `config.json` parsed and passed moat's checks.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The bundle directory, absolute and canonical.
    pub dir: PathBuf,
    /// The parsed `config.json`.
    pub spec: Spec,
    /// The container's root filesystem (`root.path`), absolute and canonical.
    pub rootfs: PathBuf,
}

/// Why a bundle could not be loaded. Each message names the file or value at
/// fault and what to change.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The bundle directory cannot be opened.
    #[error("cannot open bundle directory {}: {source}; pass --bundle with the directory that holds config.json", .dir.display())]
    DirMissing { dir: PathBuf, source: io::Error },

    /// The bundle path is something other than a directory.
    #[error("bundle {} is not a directory; pass --bundle with the directory that holds config.json", .dir.display())]
    DirNotDirectory { dir: PathBuf },

    /// There is no `config.json` in the bundle.
    #[error("no config.json in bundle {}; write one there (`moat spec` prints a default)", .dir.display())]
    ConfigMissing { dir: PathBuf },

    /// `config.json` exists but cannot be read.
    #[error("cannot read {}: {source}", .config.display())]
    ConfigRead { config: PathBuf, source: io::Error },

    /// `config.json` is not JSON, or not JSON of the OCI config's shape.
    #[error("{} is not a valid OCI config: {reason} at line {line}, column {column}; fix it there", .config.display())]
    InvalidJson { config: PathBuf, reason: String, line: usize, column: usize },

    /// `ociVersion` is absent or not a string.
    #[error("{} has no \"ociVersion\" string; set it to the OCI runtime spec version the bundle follows, e.g. \"1.0.2\"", .config.display())]
    VersionMissing { config: PathBuf },

    /// `ociVersion` names a spec major version other than 1.
    #[error("{}: ociVersion {version:?} is not supported: moat supports OCI runtime spec 1.x; write the bundle for a 1.x spec", .config.display())]
    VersionUnsupported { config: PathBuf, version: String },

    /// `root` is absent.
    #[error("{} has no \"root\"; add \"root\": {{\"path\": \"rootfs\"}} naming the container's root filesystem", .config.display())]
    RootMissing { config: PathBuf },

    /// `root.path` is absent or empty.
    #[error("{}: root.path is missing or empty; set it to the container's root filesystem (relative paths are relative to the bundle)", .config.display())]
    RootPathMissing { config: PathBuf },

    /// `root.path` does not resolve to anything.
    #[error("{}: root filesystem {} cannot be opened: {source}; create it or fix root.path", .config.display(), .rootfs.display())]
    RootfsMissing { config: PathBuf, rootfs: PathBuf, source: io::Error },

    /// `root.path` resolves to something other than a directory.
    #[error("{}: root filesystem {} is not a directory; point root.path at a directory", .config.display(), .rootfs.display())]
    RootfsNotDirectory { config: PathBuf, rootfs: PathBuf },

    /// `process` is absent: fine for the spec, not for a container to run.
    #[error("{} has no \"process\"; a container needs one to be created or run: add one with args and cwd (see `moat spec`)", .config.display())]
    ProcessMissing { config: PathBuf },

    /// `process.args` is absent or empty.
    #[error("{}: process.args is empty; give the command to run, e.g. [\"sh\"]", .config.display())]
    ArgsEmpty { config: PathBuf },

    /// `process.cwd` is relative.
    #[error("{}: process.cwd {cwd:?} is not an absolute path; use a path inside the container starting with /", .config.display())]
    CwdRelative { config: PathBuf, cwd: PathBuf },

    /// A namespace type the sandbox cannot provide.
    #[error("{}: namespace type {kind} is not supported by moat; remove it from linux.namespaces", .config.display())]
    NamespaceUnsupported { config: PathBuf, kind: &'static str },

    /// The same namespace type listed twice.
    #[error("{}: namespace type {kind} is listed more than once in linux.namespaces; keep one", .config.display())]
    NamespaceDuplicate { config: PathBuf, kind: &'static str },

    /// A namespace `path` that is not absolute.
    #[error("{}: {kind} namespace path {path:?} is not absolute; give the full path of the namespace file", .config.display())]
    NamespacePathRelative { config: PathBuf, kind: &'static str, path: PathBuf },

    /// A namespace `path` that does not exist.
    #[error("{}: {kind} namespace path {path:?} does not exist; create the namespace first or drop the path", .config.display())]
    NamespacePathMissing { config: PathBuf, kind: &'static str, path: PathBuf },

    /// A mount whose destination is relative.
    #[error("{}: mount destination {destination:?} is not an absolute path; use a path inside the container starting with /", .config.display())]
    MountDestinationRelative { config: PathBuf, destination: PathBuf },
}

impl Bundle {
    /// Loads and checks the bundle in `dir`.
    pub fn load(dir: &Path) -> Result<Bundle, BundleError> {
        let dir = fs::canonicalize(dir).map_err(|source| BundleError::DirMissing { dir: dir.to_owned(), source })?;
        if !dir.is_dir() {
            return Err(BundleError::DirNotDirectory { dir });
        }
        let config = dir.join("config.json");
        let bytes = match fs::read(&config) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(BundleError::ConfigMissing { dir }),
            Err(source) => return Err(BundleError::ConfigRead { config, source }),
        };

        // The version is read from untyped JSON first: a config for another
        // major version may not fit oci-spec's types, and "version 2 is not
        // supported" says more than the type error it would give.
        let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| invalid_json(&config, &e))?;
        check_version(&config, &value)?;
        let spec: Spec = serde_json::from_slice(&bytes).map_err(|e| invalid_json(&config, &e))?;

        let rootfs = check_root(&config, &dir, &spec)?;
        check_process(&config, &spec)?;
        if let Some(namespaces) = spec.linux().as_ref().and_then(|linux| linux.namespaces().as_ref()) {
            check_namespaces(&config, namespaces)?;
        }
        if let Some(mounts) = spec.mounts() {
            check_mounts(&config, mounts)?;
        }
        Ok(Bundle { dir, spec, rootfs })
    }
}

/// Turns a serde error into one naming the file, the line and the column.
fn invalid_json(config: &Path, e: &serde_json::Error) -> BundleError {
    let full = e.to_string();
    // serde_json's message ends with its own " at line L column C"; the
    // location is reported in our words instead of twice.
    let location = format!(" at line {} column {}", e.line(), e.column());
    let reason = full.strip_suffix(&location).unwrap_or(&full).to_owned();
    BundleError::InvalidJson { config: config.to_owned(), reason, line: e.line(), column: e.column() }
}

fn check_version(config: &Path, value: &serde_json::Value) -> Result<(), BundleError> {
    let version = match value.get("ociVersion").and_then(|v| v.as_str()) {
        Some(v) if !v.is_empty() => v,
        _ => return Err(BundleError::VersionMissing { config: config.to_owned() }),
    };
    let major = version.split('.').next().and_then(|m| m.parse::<u64>().ok());
    if major != Some(1) {
        return Err(BundleError::VersionUnsupported { config: config.to_owned(), version: version.to_owned() });
    }
    Ok(())
}

/// Returns the canonical root filesystem.
fn check_root(config: &Path, dir: &Path, spec: &Spec) -> Result<PathBuf, BundleError> {
    let root = spec.root().as_ref().ok_or_else(|| BundleError::RootMissing { config: config.to_owned() })?;
    if root.path().as_os_str().is_empty() {
        return Err(BundleError::RootPathMissing { config: config.to_owned() });
    }
    // `join` keeps an absolute root.path as it is.
    let joined = dir.join(root.path());
    let rootfs = fs::canonicalize(&joined).map_err(|source| BundleError::RootfsMissing {
        config: config.to_owned(),
        rootfs: joined.clone(),
        source,
    })?;
    if !rootfs.is_dir() {
        return Err(BundleError::RootfsNotDirectory { config: config.to_owned(), rootfs });
    }
    Ok(rootfs)
}

fn check_process(config: &Path, spec: &Spec) -> Result<(), BundleError> {
    let process = spec.process().as_ref().ok_or_else(|| BundleError::ProcessMissing { config: config.to_owned() })?;
    if process.args().as_ref().filter(|args| !args.is_empty()).is_none() {
        return Err(BundleError::ArgsEmpty { config: config.to_owned() });
    }
    if !process.cwd().is_absolute() {
        return Err(BundleError::CwdRelative { config: config.to_owned(), cwd: process.cwd().clone() });
    }
    Ok(())
}

/// The name of a namespace type as `config.json` spells it.
fn namespace_name(kind: LinuxNamespaceType) -> &'static str {
    match kind {
        LinuxNamespaceType::Mount => "mount",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "network",
        LinuxNamespaceType::Time => "time",
    }
}

/// Namespace types the sandbox provides its own view of, in `config.json`
/// spelling. `user` and `time` are not among them: the Sentry has no user
/// ID mappings and no clock offsets.
pub const SUPPORTED_NAMESPACES: &[&str] = &["cgroup", "ipc", "mount", "network", "pid", "uts"];

fn check_namespaces(config: &Path, namespaces: &[LinuxNamespace]) -> Result<(), BundleError> {
    let mut seen = BTreeSet::new();
    for namespace in namespaces {
        let kind = namespace_name(namespace.typ());
        if !SUPPORTED_NAMESPACES.contains(&kind) {
            return Err(BundleError::NamespaceUnsupported { config: config.to_owned(), kind });
        }
        if !seen.insert(kind) {
            return Err(BundleError::NamespaceDuplicate { config: config.to_owned(), kind });
        }
        // Only a network namespace is joined (the sandbox's host-side
        // networking lives there); the others are the Sentry's own, so a
        // path for them names nothing moat would enter.
        if let (LinuxNamespaceType::Network, Some(path)) = (namespace.typ(), namespace.path()) {
            if !path.is_absolute() {
                return Err(BundleError::NamespacePathRelative { config: config.to_owned(), kind, path: path.clone() });
            }
            if !path.exists() {
                return Err(BundleError::NamespacePathMissing { config: config.to_owned(), kind, path: path.clone() });
            }
        }
    }
    Ok(())
}

fn check_mounts(config: &Path, mounts: &[Mount]) -> Result<(), BundleError> {
    for mount in mounts {
        if !mount.destination().is_absolute() {
            return Err(BundleError::MountDestinationRelative {
                config: config.to_owned(),
                destination: mount.destination().clone(),
            });
        }
    }
    Ok(())
}

/// The spec `moat spec` writes: `runc spec`'s default with hostname "moat",
/// and without runc's `/sys/fs/cgroup` mount, because the Sentry has no
/// cgroup file system to put there.
pub fn default_spec() -> Spec {
    // oci-spec's default is runc's with a few differences, undone here.
    let mut spec = Spec::default();
    spec.set_hostname(Some("moat".to_owned()));
    spec.set_annotations(None);
    if let Some(mounts) = spec.mounts_mut() {
        mounts.retain(|mount| mount.destination() != Path::new("/sys/fs/cgroup"));
    }
    if let Some(process) = spec.process_mut() {
        process.set_terminal(Some(true));
        if let Some(mut capabilities) = process.capabilities().clone() {
            capabilities.set_inheritable(None);
            process.set_capabilities(Some(capabilities));
        }
    }
    if let Some(linux) = spec.linux_mut() {
        let mut deny_all = LinuxDeviceCgroup::default();
        deny_all.set_allow(false);
        deny_all.set_access(Some("rwm".to_owned()));
        let mut resources = LinuxResources::default();
        resources.set_devices(Some(vec![deny_all]));
        linux.set_resources(Some(resources));
        linux.set_uid_mappings(None);
        linux.set_gid_mappings(None);
        linux.set_sysctl(None);
        linux.set_devices(None);
        linux.set_rootfs_propagation(None);
        linux.set_mount_label(None);
        if let Some(namespaces) = linux.namespaces_mut() {
            namespaces.retain(|namespace| namespace.typ() != LinuxNamespaceType::Cgroup);
        }
    }
    spec
}

/// Mount options moat accepts in `config.json` mounts.
pub const MOUNT_OPTIONS: &[&str] = &[
    "bind",
    "defaults",
    "dev",
    "exec",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "nosuid",
    "private",
    "rbind",
    "relatime",
    "ro",
    "rprivate",
    "rshared",
    "rslave",
    "runbindable",
    "rw",
    "shared",
    "slave",
    "strictatime",
    "suid",
    "unbindable",
];

/// Capabilities a container process may be given, as in `runc features`.
const CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The OCI features document `moat features` prints, shaped like
/// `runc features`' output.
pub fn features() -> serde_json::Value {
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": oci_spec::runtime::VERSION,
        "hooks": ["prestart", "createRuntime", "poststart", "poststop"],
        "mountOptions": MOUNT_OPTIONS,
        "linux": {
            "namespaces": SUPPORTED_NAMESPACES,
            "capabilities": CAPABILITIES,
            "cgroup": { "v1": true, "v2": true, "systemd": false, "systemdUser": false },
            "seccomp": {
                "enabled": true,
                "actions": [
                    "SCMP_ACT_ALLOW",
                    "SCMP_ACT_ERRNO",
                    "SCMP_ACT_KILL",
                    "SCMP_ACT_KILL_PROCESS",
                    "SCMP_ACT_KILL_THREAD",
                    "SCMP_ACT_LOG",
                    "SCMP_ACT_TRAP",
                ],
                "operators": [
                    "SCMP_CMP_EQ",
                    "SCMP_CMP_GE",
                    "SCMP_CMP_GT",
                    "SCMP_CMP_LE",
                    "SCMP_CMP_LT",
                    "SCMP_CMP_MASKED_EQ",
                    "SCMP_CMP_NE",
                ],
                "archs": ["SCMP_ARCH_X86_64"],
            },
            "apparmor": { "enabled": false },
            "selinux": { "enabled": false },
        },
        "annotations": {
            "moat.version": env!("CARGO_PKG_VERSION"),
        },
    })
}
