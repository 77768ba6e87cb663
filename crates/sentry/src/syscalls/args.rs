//! Syscall arguments, typed once at the table: how a raw register becomes a
//! value of its type, and how `--strace` shows it.

use std::marker::PhantomData;

use abi::flags::{AtFlags, CloneFlags, MapFlags, OpenFlags, ProtFlags};
use abi::{AsBytes, FromBytes};

use crate::kernel::CurrentTask;
use crate::SysResult;

/// How `--strace` shows an argument.
#[derive(Debug, Clone, Copy)]
pub enum Show {
    /// A signed number (an int the app passes as such).
    Signed,
    /// An unsigned number or size: decimal when small, else hex.
    Unsigned,
    /// A file descriptor (AT_FDCWD by name).
    Fd,
    /// An address in app memory (NULL by name).
    Addr,
    /// A NUL-terminated string in app memory, read for the trace.
    Path,
    /// A file mode, in octal.
    Mode,
    /// A flag set, by the names of its flags.
    Flags(fn(u64) -> String),
}

/// A type an argument register can be read as.
pub trait SyscallArg {
    /// How `--strace` shows it.
    const SHOW: Show;
    /// The value the raw register holds, truncated as Linux's C prototype does.
    fn from_arg(raw: u64) -> Self;
}

/// A file descriptor, or AT_FDCWD where the call allows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fd(pub i32);

/// An address in the app's memory, not yet checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserAddr(pub u64);

/// The address of a NUL-terminated string (a path, a name) in app memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserCStr(pub u64);

/// The address of one `T` (an `abi` struct) in app memory: read and written
/// whole, as the C prototype's pointer is.
#[derive(Debug)]
pub struct UserRef<T> {
    pub addr: u64,
    of: PhantomData<fn() -> T>,
}

impl<T> Clone for UserRef<T> {
    fn clone(&self) -> UserRef<T> {
        *self
    }
}

impl<T> Copy for UserRef<T> {}

impl<T: FromBytes + AsBytes> UserRef<T> {
    pub fn is_null(&self) -> bool {
        self.addr == 0
    }

    /// The `T` at the address (EFAULT if any byte of it is not readable).
    pub fn read(&self, t: &CurrentTask) -> SysResult<T> {
        t.read_obj(self.addr)
    }

    /// Writes `value` at the address (EFAULT if any byte of it is not writable).
    pub fn write(&self, t: &CurrentTask, value: &T) -> SysResult<()> {
        t.write_obj(self.addr, value)
    }
}

impl<T> SyscallArg for UserRef<T> {
    const SHOW: Show = Show::Addr;
    fn from_arg(raw: u64) -> UserRef<T> {
        UserRef { addr: raw, of: PhantomData }
    }
}

/// A file mode (permission bits and, for mknod, the file type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode(pub u32);

impl From<Fd> for i32 {
    fn from(fd: Fd) -> i32 {
        fd.0
    }
}

impl From<UserAddr> for u64 {
    fn from(a: UserAddr) -> u64 {
        a.0
    }
}

impl From<UserCStr> for u64 {
    fn from(a: UserCStr) -> u64 {
        a.0
    }
}

impl From<Mode> for u32 {
    fn from(m: Mode) -> u32 {
        m.0
    }
}

impl SyscallArg for Fd {
    const SHOW: Show = Show::Fd;
    fn from_arg(raw: u64) -> Fd {
        Fd(raw as i32)
    }
}

impl SyscallArg for UserAddr {
    const SHOW: Show = Show::Addr;
    fn from_arg(raw: u64) -> UserAddr {
        UserAddr(raw)
    }
}

impl SyscallArg for UserCStr {
    const SHOW: Show = Show::Path;
    fn from_arg(raw: u64) -> UserCStr {
        UserCStr(raw)
    }
}

impl SyscallArg for Mode {
    const SHOW: Show = Show::Mode;
    fn from_arg(raw: u64) -> Mode {
        Mode(raw as u32)
    }
}

/// Plain integers: the C type's width, as the kernel reads the register.
macro_rules! integer_args {
    ($($ty:ty => $show:ident),*) => {$(
        impl SyscallArg for $ty {
            const SHOW: Show = Show::$show;
            fn from_arg(raw: u64) -> $ty {
                raw as $ty
            }
        }
    )*};
}

integer_args!(i32 => Signed, i64 => Signed, u32 => Unsigned, u64 => Unsigned, usize => Unsigned);

/// Flag sets: shown by name; the syscall functions take their bits.
macro_rules! flag_args {
    ($($ty:ty => $bits:ty),*) => {$(
        impl SyscallArg for $ty {
            const SHOW: Show = Show::Flags(|raw| {
                let flags = <$ty>::from_bits_retain(raw as $bits);
                let mut out = String::new();
                match bitflags::parser::to_writer(&flags, &mut out) {
                    Ok(()) if !out.is_empty() => out,
                    _ => format!("{raw:#x}"),
                }
            });
            fn from_arg(raw: u64) -> $ty {
                <$ty>::from_bits_retain(raw as $bits)
            }
        }
    )*};
}

flag_args!(OpenFlags => u32, AtFlags => u32, CloneFlags => u64, ProtFlags => u32, MapFlags => u32);

/// One argument as `--strace` shows it.
pub fn show(t: &CurrentTask, how: Show, raw: u64) -> String {
    match how {
        Show::Signed => format!("{}", raw as i64),
        Show::Fd if raw as i32 == crate::syscalls::fs::AT_FDCWD => "AT_FDCWD".to_string(),
        Show::Fd => format!("{}", raw as i32),
        Show::Addr if raw == 0 => "NULL".to_string(),
        Show::Addr => format!("{raw:#x}"),
        Show::Path => match t.read_cstr(raw) {
            Ok(s) => format!("{:?}", String::from_utf8_lossy(&s)),
            Err(_) => format!("{raw:#x}"),
        },
        Show::Mode => format!("{:#o}", raw as u32),
        Show::Flags(names) => names(raw),
        Show::Unsigned if (raw as i64).unsigned_abs() < 4096 => format!("{}", raw as i64),
        Show::Unsigned => format!("{raw:#x}"),
    }
}
