//! Sockets in the x86-64 ABI: address families, socket types, message and
//! option constants, and the structs sendmsg, recvmsg and SOL_SOCKET use.

use core::mem::size_of;

use zerocopy::{AsBytes, FromBytes, FromZeroes};

pub const AF_UNSPEC: i32 = 0;
pub const AF_UNIX: i32 = 1;
pub const AF_INET: i32 = 2;
pub const AF_INET6: i32 = 10;
pub const AF_NETLINK: i32 = 16;
/// Families at or above it do not exist.
pub const AF_MAX: i32 = 46;

pub const SOCK_STREAM: i32 = 1;
pub const SOCK_DGRAM: i32 = 2;
pub const SOCK_RAW: i32 = 3;
pub const SOCK_SEQPACKET: i32 = 5;
/// The bits of socket(2)'s type argument that name the type; the rest are flags.
pub const SOCK_TYPE_MASK: i32 = 0xf;
/// Types at or above it do not exist.
pub const SOCK_MAX: i32 = 11;
pub const SOCK_NONBLOCK: i32 = 0o4000;
pub const SOCK_CLOEXEC: i32 = 0o2000000;

pub const MSG_OOB: u32 = 0x1;
pub const MSG_PEEK: u32 = 0x2;
pub const MSG_CTRUNC: u32 = 0x8;
pub const MSG_TRUNC: u32 = 0x20;
pub const MSG_DONTWAIT: u32 = 0x40;
pub const MSG_WAITALL: u32 = 0x100;
pub const MSG_NOSIGNAL: u32 = 0x4000;
pub const MSG_WAITFORONE: u32 = 0x10000;
pub const MSG_CMSG_CLOEXEC: u32 = 0x4000_0000;

pub const SOL_SOCKET: i32 = 1;
pub const SCM_RIGHTS: i32 = 1;
pub const SCM_CREDENTIALS: i32 = 2;
/// SCM_MAX_FD: the most descriptors one message may carry.
pub const SCM_MAX_FD: usize = 253;

pub const SO_DEBUG: i32 = 1;
pub const SO_REUSEADDR: i32 = 2;
pub const SO_TYPE: i32 = 3;
pub const SO_ERROR: i32 = 4;
pub const SO_DONTROUTE: i32 = 5;
pub const SO_BROADCAST: i32 = 6;
pub const SO_SNDBUF: i32 = 7;
pub const SO_RCVBUF: i32 = 8;
pub const SO_KEEPALIVE: i32 = 9;
pub const SO_OOBINLINE: i32 = 10;
pub const SO_NO_CHECK: i32 = 11;
pub const SO_PRIORITY: i32 = 12;
pub const SO_LINGER: i32 = 13;
pub const SO_BSDCOMPAT: i32 = 14;
pub const SO_REUSEPORT: i32 = 15;
pub const SO_PASSCRED: i32 = 16;
pub const SO_PEERCRED: i32 = 17;
pub const SO_RCVLOWAT: i32 = 18;
pub const SO_SNDLOWAT: i32 = 19;
pub const SO_RCVTIMEO_OLD: i32 = 20;
pub const SO_SNDTIMEO_OLD: i32 = 21;
pub const SO_ACCEPTCONN: i32 = 30;
pub const SO_SNDBUFFORCE: i32 = 32;
pub const SO_RCVBUFFORCE: i32 = 33;
pub const SO_PASSSEC: i32 = 34;
pub const SO_PROTOCOL: i32 = 38;
pub const SO_DOMAIN: i32 = 39;
pub const SO_PEERGROUPS: i32 = 59;
pub const SO_RCVTIMEO_NEW: i32 = 66;
pub const SO_SNDTIMEO_NEW: i32 = 67;

/// SOMAXCONN: the largest listen backlog.
pub const SOMAXCONN: usize = 4096;

/// C `sa_family_t`: the first field of every socket address.
pub type SaFamily = u16;

/// `sizeof(struct sockaddr_storage)`: no socket address is longer.
pub const SOCKADDR_STORAGE_LEN: usize = 128;

/// C `struct sockaddr_un`: the family, then a path (NUL-terminated unless
/// it fills the field) or, after a leading NUL, an abstract name. Apps
/// pass shorter lengths than its size, so it is read as bytes and only
/// the family is taken from them as a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromZeroes, FromBytes, AsBytes)]
#[repr(C)]
pub struct SockaddrUn {
    pub family: SaFamily,
    pub path: [u8; 108],
}
const _: () = assert!(size_of::<SockaddrUn>() == 110);

/// C `struct msghdr` (sendmsg, recvmsg): where the address, the data's
/// iovecs and the control buffer are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromZeroes, FromBytes, AsBytes)]
#[repr(C)]
pub struct MsgHdr {
    pub name: u64,
    /// `socklen_t`; signed as Linux checks it (a negative length is EINVAL).
    pub namelen: u32,
    pub pad0: u32,
    pub iov: u64,
    pub iovlen: u64,
    pub control: u64,
    pub controllen: u64,
    pub flags: u32,
    pub pad1: u32,
}
const _: () = assert!(size_of::<MsgHdr>() == 56);

/// C `struct mmsghdr` (sendmmsg, recvmmsg): one message and the bytes it moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromZeroes, FromBytes, AsBytes)]
#[repr(C)]
pub struct MMsgHdr {
    pub hdr: MsgHdr,
    pub len: u32,
    pub pad: u32,
}
const _: () = assert!(size_of::<MMsgHdr>() == 64);

/// C `struct cmsghdr`: the header of one control message; its data follows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromZeroes, FromBytes, AsBytes)]
#[repr(C)]
pub struct CmsgHdr {
    /// The header's length plus the data's, before alignment.
    pub len: u64,
    pub level: i32,
    pub kind: i32,
}
const _: () = assert!(size_of::<CmsgHdr>() == 16);

/// CMSG_ALIGN: control messages start at multiples of 8 bytes.
pub const fn cmsg_align(n: usize) -> usize {
    (n + 7) & !7
}

/// C `struct ucred`: SCM_CREDENTIALS' payload and SO_PEERCRED's value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromZeroes, FromBytes, AsBytes)]
#[repr(C)]
pub struct Ucred {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}
const _: () = assert!(size_of::<Ucred>() == 12);

impl Ucred {
    /// What SO_PEERCRED reports for a socket without a peer.
    pub const NONE: Ucred = Ucred { pid: 0, uid: u32::MAX, gid: u32::MAX };
}

/// C `struct linger` (SO_LINGER).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromZeroes, FromBytes, AsBytes)]
#[repr(C)]
pub struct Linger {
    pub onoff: i32,
    pub linger: i32,
}
const _: () = assert!(size_of::<Linger>() == 8);
