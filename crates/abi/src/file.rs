//! File metadata in the x86-64 ABI: `struct stat` (stat, fstat, lstat,
//! newfstatat), `struct statx` and `struct statfs`.

use core::mem::size_of;

use zerocopy::{AsBytes, FromBytes, FromZeroes};

/// C `struct stat` as x86-64 lays it out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromZeroes, FromBytes, AsBytes)]
#[repr(C)]
pub struct Stat {
    pub dev: u64,
    pub ino: u64,
    /// x86-64 puts `st_nlink` before `st_mode`, and makes it 64 bits.
    pub nlink: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub pad0: u32,
    pub rdev: u64,
    pub size: i64,
    pub blksize: i64,
    /// In 512-byte units.
    pub blocks: i64,
    pub atime: i64,
    pub atime_nsec: i64,
    pub mtime: i64,
    pub mtime_nsec: i64,
    pub ctime: i64,
    pub ctime_nsec: i64,
    pub unused: [i64; 3],
}
const _: () = assert!(size_of::<Stat>() == 144);

/// C `struct statx_timestamp`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromZeroes, FromBytes, AsBytes)]
#[repr(C)]
pub struct StatxTimestamp {
    pub sec: i64,
    pub nsec: u32,
    pub reserved: i32,
}
const _: () = assert!(size_of::<StatxTimestamp>() == 16);

/// C `struct statx`; `mask` says which fields are filled in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromZeroes, FromBytes, AsBytes)]
#[repr(C)]
pub struct Statx {
    pub mask: u32,
    pub blksize: u32,
    pub attributes: u64,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub mode: u16,
    pub spare0: u16,
    pub ino: u64,
    pub size: u64,
    pub blocks: u64,
    pub attributes_mask: u64,
    pub atime: StatxTimestamp,
    pub btime: StatxTimestamp,
    pub ctime: StatxTimestamp,
    pub mtime: StatxTimestamp,
    pub rdev_major: u32,
    pub rdev_minor: u32,
    pub dev_major: u32,
    pub dev_minor: u32,
    pub mnt_id: u64,
    pub dio_mem_align: u32,
    pub dio_offset_align: u32,
    pub subvol: u64,
    pub atomic_write_unit_min: u32,
    pub atomic_write_unit_max: u32,
    pub atomic_write_segments_max: u32,
    pub dio_read_offset_align: u32,
    pub atomic_write_unit_max_opt: u32,
    pub spare2: u32,
    pub spare3: [u64; 8],
}
const _: () = assert!(size_of::<Statx>() == 256);

/// C `struct statfs` as x86-64 lays it out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromZeroes, FromBytes, AsBytes)]
#[repr(C)]
pub struct Statfs {
    /// The filesystem's magic number.
    pub fs_type: i64,
    pub bsize: i64,
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub fsid: [i32; 2],
    pub namelen: i64,
    pub frsize: i64,
    /// `ST_*` mount flags.
    pub flags: i64,
    pub spare: [i64; 4],
}
const _: () = assert!(size_of::<Statfs>() == 120);

/// C `struct flock` (fcntl's F_GETLK/F_SETLK/F_SETLKW).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromZeroes, FromBytes, AsBytes)]
#[repr(C)]
pub struct Flock {
    /// F_RDLCK, F_WRLCK or F_UNLCK.
    pub kind: i16,
    /// SEEK_SET, SEEK_CUR or SEEK_END: what `start` counts from.
    pub whence: i16,
    pub pad0: u32,
    pub start: i64,
    /// 0: to the end of the file, however far it grows.
    pub len: i64,
    pub pid: i32,
    pub pad1: u32,
}
const _: () = assert!(size_of::<Flock>() == 32);

/// C `struct open_how` (openat2), in its first, 24-byte version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromZeroes, FromBytes, AsBytes)]
#[repr(C)]
pub struct OpenHow {
    pub flags: u64,
    pub mode: u64,
    /// RESOLVE_* restrictions on the path walk.
    pub resolve: u64,
}
const _: () = assert!(size_of::<OpenHow>() == 24);

/// The fixed head of C `struct linux_dirent64`; the NUL-terminated name
/// follows, and the record is padded to 8 bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromZeroes, FromBytes, AsBytes)]
#[repr(C, packed)]
pub struct Dirent64 {
    pub ino: u64,
    /// The offset of the next record, as getdents64 reports it.
    pub off: i64,
    /// This record's length, name and padding included.
    pub reclen: u16,
    /// DT_* file type.
    pub kind: u8,
}
const _: () = assert!(size_of::<Dirent64>() == 19);
