//! `moat do`'s mount and size options: `--volume HOST:SANDBOX[:OPTIONS]`,
//! `--tmpfs PATH[:SIZE]`, and sizes such as `512M`, checked as they are parsed.

use std::path::PathBuf;

/// Why an option's value was refused; each names the value.
#[derive(Debug, thiserror::Error)]
pub enum OptionError {
    /// A size with an unknown unit.
    #[error("{0:?} is not a size (a number with an optional K, M or G)")]
    SizeUnit(String),
    /// A size whose number does not parse.
    #[error("{0:?} is not a size")]
    SizeNumber(String),
    /// A size past 2^64 bytes.
    #[error("{0:?} is too large")]
    SizeTooLarge(String),
    /// A volume with too few or too many `:`-separated parts.
    #[error("{0:?} is not HOST:SANDBOX or HOST:SANDBOX:OPTIONS (e.g. ro, or ro,suid)")]
    VolumeForm(String),
    /// A volume option moat does not know.
    #[error("{volume:?}: unknown volume option {option:?} (known: ro, rw, suid, nosuid)")]
    VolumeOption {
        /// The whole volume.
        volume: String,
        /// The option.
        option: String,
    },
    /// A volume option given twice or contradicted.
    #[error("{volume:?}: {option:?} contradicts or repeats an earlier option")]
    VolumeOptionRepeated {
        /// The whole volume.
        volume: String,
        /// The option.
        option: String,
    },
    /// A volume's host directory that is relative.
    #[error("the host directory {0:?} must be an absolute path")]
    HostRelative(String),
    /// A mount target that is relative, or `/`.
    #[error("the sandbox path {0:?} must be absolute and not /")]
    SandboxPathNotAbsolute(String),
    /// A mount target with `.` or `..` in it.
    #[error("the sandbox path {0:?} must not contain . or ..")]
    SandboxPathDots(String),
}

/// A `--volume HOST:SANDBOX[:OPTIONS]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    /// The host directory.
    pub host: PathBuf,
    /// Where the sandbox sees it.
    pub target: Vec<u8>,
    /// `ro`: every change fails with EROFS.
    pub read_only: bool,
    /// `suid`: set-ID bits the sandbox sets reach the host.
    pub allow_setid: bool,
}

impl Volume {
    /// `HOST:SANDBOX[:OPTIONS]`, OPTIONS a comma-separated list of at most
    /// one of `ro`/`rw` and one of `suid`/`nosuid` (as Docker's `-v` and
    /// mount(8) spell them).
    pub fn parse(s: &str) -> Result<Volume, OptionError> {
        let (host, target, options) = match s.split(':').collect::<Vec<_>>()[..] {
            [host, target] => (host, target, None),
            [host, target, options] => (host, target, Some(options)),
            _ => return Err(OptionError::VolumeForm(s.to_owned())),
        };
        let (mut read_only, mut allow_setid) = (None, None);
        for option in options.map(|o| o.split(',')).into_iter().flatten() {
            let (setting, value) = match option {
                "ro" => (&mut read_only, true),
                "rw" => (&mut read_only, false),
                "suid" => (&mut allow_setid, true),
                "nosuid" => (&mut allow_setid, false),
                _ => return Err(OptionError::VolumeOption { volume: s.to_owned(), option: option.to_owned() }),
            };
            if setting.replace(value).is_some() {
                return Err(OptionError::VolumeOptionRepeated { volume: s.to_owned(), option: option.to_owned() });
            }
        }
        let host_path = PathBuf::from(host);
        if !host_path.is_absolute() {
            return Err(OptionError::HostRelative(host.to_owned()));
        }
        Ok(Volume {
            host: host_path,
            target: sandbox_path(target)?,
            read_only: read_only.unwrap_or(false),
            allow_setid: allow_setid.unwrap_or(false),
        })
    }
}

/// A `--tmpfs PATH[:SIZE]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tmpfs {
    /// Where the sandbox sees it.
    pub target: Vec<u8>,
    /// The most bytes it holds.
    pub size: u64,
}

/// A `--tmpfs` with no size holds at most this much.
const TMPFS_SIZE: u64 = 512 << 20;

impl Tmpfs {
    /// `PATH[:SIZE]`.
    pub fn parse(s: &str) -> Result<Tmpfs, OptionError> {
        let (path, size) = match s.split_once(':') {
            Some((path, size)) => (path, parse_size(size)?),
            None => (s, TMPFS_SIZE),
        };
        Ok(Tmpfs { target: sandbox_path(path)?, size })
    }
}

/// An absolute sandbox path with no `.` or `..` in it, for a mount target.
fn sandbox_path(s: &str) -> Result<Vec<u8>, OptionError> {
    if !s.starts_with('/') || s == "/" {
        return Err(OptionError::SandboxPathNotAbsolute(s.to_owned()));
    }
    if s.split('/').any(|c| c == "." || c == "..") {
        return Err(OptionError::SandboxPathDots(s.to_owned()));
    }
    Ok(s.trim_end_matches('/').as_bytes().to_vec())
}

/// `4096`, `64K`, `512M`, `2G`.
pub fn parse_size(s: &str) -> Result<u64, OptionError> {
    let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, ""),
    };
    let shift = match unit {
        "" => 0,
        "k" | "K" => 10,
        "m" | "M" => 20,
        "g" | "G" => 30,
        _ => return Err(OptionError::SizeUnit(s.to_owned())),
    };
    let n: u64 = digits.parse().map_err(|_| OptionError::SizeNumber(s.to_owned()))?;
    n.checked_mul(1 << shift).ok_or_else(|| OptionError::SizeTooLarge(s.to_owned()))
}
