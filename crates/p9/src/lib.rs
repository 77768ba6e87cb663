//! 9P2000.L for moat: the wire format, a blocking client used by the Sentry,
//! and a server loop with a `Handler` trait implemented by the Gofer; plus
//! moat's fd-donation extension (Tdonate, an fd sent back as `SCM_RIGHTS`).
#![forbid(unsafe_code)]

mod client;
mod error;
pub mod server;
pub mod wire;

pub use client::Client;
pub use error::Error;
pub use server::{serve, Handler};
pub use wire::{Attr, DirEntry, Rstatfs as StatFs, SetAttr};

/// A file identifier: the client's handle for a file on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Fid(pub u32);

/// "No fid": the afid of an unauthenticated Tattach.
pub const NOFID: Fid = Fid(u32::MAX);

/// The server's unique identity for a file: `type[1] version[4] path[8]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Qid {
    /// `QID_TYPE_*` bits.
    pub ty: u8,
    /// Changes when the file changes (0 if the server does not track it).
    pub version: u32,
    /// Unique per file on the server (the host inode number for the Gofer).
    pub path: u64,
}

/// Qid type of a directory.
pub const QID_TYPE_DIR: u8 = 0x80;
/// Qid type of a symbolic link.
pub const QID_TYPE_SYMLINK: u8 = 0x02;
/// Qid type of any other file.
pub const QID_TYPE_FILE: u8 = 0x00;

/// Tgetattr request mask bits and Rgetattr `valid` bits.
pub mod getattr {
    /// `mode`.
    pub const MODE: u64 = 0x0001;
    /// `nlink`.
    pub const NLINK: u64 = 0x0002;
    /// `uid`.
    pub const UID: u64 = 0x0004;
    /// `gid`.
    pub const GID: u64 = 0x0008;
    /// `rdev`.
    pub const RDEV: u64 = 0x0010;
    /// `atime`.
    pub const ATIME: u64 = 0x0020;
    /// `mtime`.
    pub const MTIME: u64 = 0x0040;
    /// `ctime`.
    pub const CTIME: u64 = 0x0080;
    /// `qid.path`.
    pub const INO: u64 = 0x0100;
    /// `size`.
    pub const SIZE: u64 = 0x0200;
    /// `blocks`.
    pub const BLOCKS: u64 = 0x0400;
    /// `btime`.
    pub const BTIME: u64 = 0x0800;
    /// `gen`.
    pub const GEN: u64 = 0x1000;
    /// `data_version`.
    pub const DATA_VERSION: u64 = 0x2000;
    /// Everything `stat(2)` reports.
    pub const BASIC: u64 = 0x07ff;
    /// Every field.
    pub const ALL: u64 = 0x3fff;
}

/// Tsetattr `valid` bits.
pub mod setattr {
    /// Set `mode`.
    pub const MODE: u32 = 0x0001;
    /// Set `uid`.
    pub const UID: u32 = 0x0002;
    /// Set `gid`.
    pub const GID: u32 = 0x0004;
    /// Set `size` (truncate).
    pub const SIZE: u32 = 0x0008;
    /// Set atime (to now unless `ATIME_SET`).
    pub const ATIME: u32 = 0x0010;
    /// Set mtime (to now unless `MTIME_SET`).
    pub const MTIME: u32 = 0x0020;
    /// Update ctime.
    pub const CTIME: u32 = 0x0040;
    /// atime is given in `atime_sec`/`atime_nsec`.
    pub const ATIME_SET: u32 = 0x0080;
    /// mtime is given in `mtime_sec`/`mtime_nsec`.
    pub const MTIME_SET: u32 = 0x0100;
}

/// Tunlinkat flag: remove a directory.
pub const AT_REMOVEDIR: u32 = 0x200;

/// Rlock status values.
pub mod lock {
    /// The lock was granted.
    pub const SUCCESS: u8 = 0;
    /// The lock is held by someone else.
    pub const BLOCKED: u8 = 1;
    /// Tlock/Tgetlock type: unlocked.
    pub const TYPE_UNLCK: u8 = 2;
}
