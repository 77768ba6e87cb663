//! Structs of the x86-64 ABI for I/O on descriptors: `iovec`, `pollfd`,
//! `epoll_event` and `inotify_event`, with the poll and inotify bits.

use core::mem::size_of;

use zerocopy::{AsBytes, FromBytes, FromZeroes};

/// C `struct iovec`: one piece of a vectored read or write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromZeroes, FromBytes, AsBytes)]
#[repr(C)]
pub struct IoVec {
    pub base: u64,
    pub len: u64,
}
const _: () = assert!(size_of::<IoVec>() == 16);

/// C `struct pollfd`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromZeroes, FromBytes, AsBytes)]
#[repr(C)]
pub struct PollFd {
    pub fd: i32,
    pub events: i16,
    pub revents: i16,
}
const _: () = assert!(size_of::<PollFd>() == 8);

pub const POLLIN: u16 = 0x1;
pub const POLLPRI: u16 = 0x2;
pub const POLLOUT: u16 = 0x4;
pub const POLLERR: u16 = 0x8;
pub const POLLHUP: u16 = 0x10;
pub const POLLNVAL: u16 = 0x20;
pub const POLLRDNORM: u16 = 0x40;
pub const POLLWRNORM: u16 = 0x100;
pub const POLLWRBAND: u16 = 0x200;
pub const POLLRDHUP: u16 = 0x2000;

/// C `struct epoll_event`, which x86-64 packs: `data` follows `events`
/// at offset 4, and the struct is 12 bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromZeroes, FromBytes, AsBytes)]
#[repr(C, packed)]
pub struct EpollEvent {
    pub events: u32,
    pub data: u64,
}
const _: () = assert!(size_of::<EpollEvent>() == 12);

/// eventfd2: each read takes 1 from the counter, not all of it.
pub const EFD_SEMAPHORE: u32 = 1;

pub const EPOLL_CTL_ADD: u32 = 1;
pub const EPOLL_CTL_DEL: u32 = 2;
pub const EPOLL_CTL_MOD: u32 = 3;
/// Wake one of the epolls waiting on a file, not all (EPOLL_CTL_ADD only).
pub const EPOLLEXCLUSIVE: u32 = 1 << 28;
pub const EPOLLONESHOT: u32 = 1 << 30;
pub const EPOLLET: u32 = 1 << 31;

/// C `struct inotify_event` without its name: `len` NUL-padded name bytes
/// follow it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromZeroes, FromBytes, AsBytes)]
#[repr(C)]
pub struct InotifyEvent {
    pub wd: i32,
    pub mask: u32,
    pub cookie: u32,
    pub len: u32,
}
const _: () = assert!(size_of::<InotifyEvent>() == 16);

pub const IN_ACCESS: u32 = 0x1;
pub const IN_MODIFY: u32 = 0x2;
pub const IN_ATTRIB: u32 = 0x4;
pub const IN_CLOSE_WRITE: u32 = 0x8;
pub const IN_CLOSE_NOWRITE: u32 = 0x10;
pub const IN_OPEN: u32 = 0x20;
pub const IN_MOVED_FROM: u32 = 0x40;
pub const IN_MOVED_TO: u32 = 0x80;
pub const IN_CREATE: u32 = 0x100;
pub const IN_DELETE: u32 = 0x200;
pub const IN_DELETE_SELF: u32 = 0x400;
pub const IN_Q_OVERFLOW: u32 = 0x4000;
/// The watch is gone (removed, or its file deleted).
pub const IN_IGNORED: u32 = 0x8000;
pub const IN_ISDIR: u32 = 0x4000_0000;
/// inotify_add_watch: fail with ENOTDIR unless the path names a directory.
pub const IN_ONLYDIR: u32 = 0x0100_0000;
/// inotify_add_watch: watch a final symlink itself, not what it points to.
pub const IN_DONT_FOLLOW: u32 = 0x0200_0000;
/// The event bits a watch can ask for.
pub const IN_ALL_EVENTS: u32 = 0xfff;
