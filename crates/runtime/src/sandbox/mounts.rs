//! A spec's `mounts` as the Sentry mounts them: bind mounts served by
//! Gofers of their own, tmpfs with its size, and what the Sentry provides.

use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use oci_spec::runtime::Mount;
use sentry::{MountConfig, MountKind};

use crate::gofers::{GoferError, Gofers, Serving};

/// Why a spec mount cannot be mounted; each names the mount at fault.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// A bind mount without a source.
    #[error("bind mount at {} has no source", .target.display())]
    BindWithoutSource {
        /// The mount's destination.
        target: PathBuf,
    },
    /// A bind mount whose source cannot be looked at.
    #[error("bind mount source {}: {source}", .path.display())]
    BindSource {
        /// The source.
        path: PathBuf,
        /// What stat returned.
        source: std::io::Error,
    },
    /// The Gofer for a bind mount could not be started.
    #[error("bind mount at {}: {source}", .target.display())]
    BindGofer {
        /// The mount's destination.
        target: PathBuf,
        /// Why the Gofer did not start.
        source: GoferError,
    },
    /// A file bind mount whose source has no parent directory.
    #[error("bind mount source {} has no directory", .path.display())]
    BindWithoutDirectory {
        /// The source.
        path: PathBuf,
    },
    /// A file bind mount whose source has no file name.
    #[error("bind mount source {} has no name", .path.display())]
    BindWithoutName {
        /// The source.
        path: PathBuf,
    },
    /// A tmpfs `mode=` that is not octal.
    #[error("tmpfs at {}: bad mode {mode:?}", .target.display())]
    TmpfsMode {
        /// The mount's destination.
        target: PathBuf,
        /// The mode given.
        mode: String,
    },
    /// A tmpfs `size=` that is not a size.
    #[error("bad tmpfs size {0:?}")]
    TmpfsSize(String),
    /// A filesystem type moat does not mount.
    #[error("mount type {fstype:?} at {} is not supported by moat", .target.display())]
    Unsupported {
        /// The type asked for.
        fstype: String,
        /// The mount's destination.
        target: PathBuf,
    },
    /// A destination with `.` or `..` in it.
    #[error("mount destination {0:?} must not contain . or ..")]
    DestinationDots(String),
    /// A destination that is relative, or `/`.
    #[error("mount destination {0:?} must be an absolute path other than /")]
    DestinationNotAbsolute(String),
}
/// Mount types the Sentry provides itself, whatever the spec asks of them.
const SENTRY_FILESYSTEMS: &[&str] = &["proc", "sysfs", "devpts", "mqueue", "cgroup", "cgroup2"];

/// A spec mount as the Sentry mounts it; `None` for the filesystems the
/// Sentry provides itself (/proc, /sys, /dev/pts, ...).
pub(super) fn mount_config(m: &Mount, gofers: &mut Gofers) -> Result<Option<MountConfig>, MountError> {
    let target = normalize_target(m.destination().as_os_str().as_bytes())?;
    let options = m.options().clone().unwrap_or_default();
    let fstype = m.typ().clone().unwrap_or_default();
    let is_bind = fstype == "bind" || options.iter().any(|o| o == "bind" || o == "rbind");
    let read_only = options.iter().any(|o| o == "ro");
    let destination = m.destination();
    if is_bind {
        // As for runc the last of "suid" and "nosuid" decides; unlike runc,
        // set-ID files are stripped unless the spec asks for "suid".
        let allow_setid = options.iter().rev().find(|o| *o == "suid" || *o == "nosuid").is_some_and(|o| o == "suid");
        let serving = Serving { read_only, allow_setid };
        let source =
            m.source().as_ref().ok_or_else(|| MountError::BindWithoutSource { target: destination.clone() })?;
        // The engine chose this host path, and runc's mount(2) follows it if
        // it is a symlink (`-v /etc/localtime:…`, docker-init): resolve it
        // here, on the host's side, as the Gofer serves no symlink itself.
        let source =
            &std::fs::canonicalize(source).map_err(|e| MountError::BindSource { path: source.clone(), source: e })?;
        let meta = std::fs::metadata(source).map_err(|e| MountError::BindSource { path: source.clone(), source: e })?;
        if meta.is_dir() {
            let gofer = gofers.start_dir(source, serving).map_err(|e| bind_gofer(destination, e))?;
            return Ok(Some(MountConfig { target, kind: MountKind::Bind { gofer, read_only } }));
        }
        let dir = source.parent().ok_or_else(|| MountError::BindWithoutDirectory { path: source.clone() })?;
        let file_name = source.file_name().ok_or_else(|| MountError::BindWithoutName { path: source.clone() })?;
        let name = file_name.as_bytes().to_vec();
        // The Gofer serves that one name, not the directory around it.
        let gofer = gofers.start_one_file(dir, file_name, serving).map_err(|e| bind_gofer(destination, e))?;
        return Ok(Some(MountConfig { target, kind: MountKind::BindFile { gofer, name, read_only } }));
    }
    match fstype.as_str() {
        "tmpfs" if target == b"/dev" => Ok(None),
        "tmpfs" => {
            let size = options.iter().find_map(|o| o.strip_prefix("size=")).map(parse_size).transpose()?;
            let mode = options
                .iter()
                .find_map(|o| o.strip_prefix("mode="))
                .map(|mode| {
                    u32::from_str_radix(mode, 8)
                        .map_err(|_| MountError::TmpfsMode { target: destination.clone(), mode: mode.to_owned() })
                })
                .transpose()?
                .unwrap_or(0o1777);
            Ok(Some(MountConfig { target, kind: MountKind::Tmpfs { mode, limit: size.or(Some(TMPFS_LIMIT)) } }))
        }
        t if SENTRY_FILESYSTEMS.contains(&t) => Ok(None),
        t => Err(MountError::Unsupported { fstype: t.to_owned(), target: destination.clone() }),
    }
}

/// A mount destination as the Sentry keys mounts: absolute, single
/// slashes, no trailing one, and no `.` or `..` (which would name another place).
fn normalize_target(path: &[u8]) -> Result<Vec<u8>, MountError> {
    let shown = String::from_utf8_lossy(path);
    let mut out = Vec::new();
    for part in path.split(|&b| b == b'/').filter(|p| !p.is_empty()) {
        if part == b"." || part == b".." {
            return Err(MountError::DestinationDots(shown.into_owned()));
        }
        out.push(b'/');
        out.extend_from_slice(part);
    }
    if !path.starts_with(b"/") || out.is_empty() {
        return Err(MountError::DestinationNotAbsolute(shown.into_owned()));
    }
    Ok(out)
}

/// A tmpfs mount with no size option holds at most this much.
const TMPFS_LIMIT: u64 = 512 << 20;

/// tmpfs `size=` values: bytes, or with a k, m or g suffix.
fn parse_size(s: &str) -> Result<u64, MountError> {
    let (digits, shift) = match s.as_bytes().last() {
        Some(b'k' | b'K') => (&s[..s.len() - 1], 10),
        Some(b'm' | b'M') => (&s[..s.len() - 1], 20),
        Some(b'g' | b'G') => (&s[..s.len() - 1], 30),
        _ => (s, 0),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| MountError::TmpfsSize(s.to_owned()))
}

fn bind_gofer(target: &std::path::Path, source: GoferError) -> MountError {
    MountError::BindGofer { target: target.to_owned(), source }
}
