//! Terminals in the x86-64 ABI: the kernel's `struct termios` and
//! `struct winsize`, their flag bits, and the TC*/TIOC* ioctl numbers.

use core::mem::size_of;

use zerocopy::{AsBytes, FromBytes, FromZeroes};

pub const TCGETS: u64 = 0x5401;
pub const TCSETS: u64 = 0x5402;
pub const TCSETSW: u64 = 0x5403;
pub const TCSETSF: u64 = 0x5404;
pub const TIOCSCTTY: u64 = 0x540e;
pub const TIOCGPGRP: u64 = 0x540f;
pub const TIOCSPGRP: u64 = 0x5410;
pub const TIOCGWINSZ: u64 = 0x5413;
pub const TIOCSWINSZ: u64 = 0x5414;
pub const FIONREAD: u64 = 0x541b;
pub const TIOCNOTTY: u64 = 0x5422;
pub const TIOCGSID: u64 = 0x5429;
pub const TIOCGPTN: u64 = 0x8004_5430;
pub const TIOCSPTLCK: u64 = 0x4004_5431;

pub const ICRNL: u32 = 0x100;
pub const IXON: u32 = 0x400;
pub const OPOST: u32 = 0x1;
pub const ONLCR: u32 = 0x4;
pub const ISIG: u32 = 0x1;
pub const ICANON: u32 = 0x2;
pub const ECHO: u32 = 0x8;
pub const VINTR: usize = 0;
pub const VQUIT: usize = 1;
pub const VERASE: usize = 2;
pub const VKILL: usize = 3;
pub const VEOF: usize = 4;
pub const VSUSP: usize = 10;

/// The kernel's `struct termios` (what TCGETS/TCSETS copy; glibc's own is
/// larger): four flag words, the line discipline and 19 control characters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromZeroes, FromBytes, AsBytes)]
#[repr(C)]
pub struct Termios {
    pub iflag: u32,
    pub oflag: u32,
    pub cflag: u32,
    pub lflag: u32,
    pub line: u8,
    pub cc: [u8; 19],
}
const _: () = assert!(size_of::<Termios>() == 36);

/// C `struct winsize` (TIOCGWINSZ, TIOCSWINSZ).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromZeroes, FromBytes, AsBytes)]
#[repr(C)]
pub struct Winsize {
    pub row: u16,
    pub col: u16,
    pub xpixel: u16,
    pub ypixel: u16,
}
const _: () = assert!(size_of::<Winsize>() == 8);
