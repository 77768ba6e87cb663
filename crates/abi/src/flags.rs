//! Flag sets of the syscall ABI, as the app passes them: open, *at, clone,
//! mmap. Unknown bits are kept (`from_bits_retain`), so nothing is lost.

use bitflags::bitflags;

bitflags! {
    /// `open`/`openat` flags (the access mode is the low two bits, 0 for O_RDONLY).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct OpenFlags: u32 {
        const O_WRONLY = 0o1;
        const O_RDWR = 0o2;
        const O_CREAT = 0o100;
        const O_EXCL = 0o200;
        const O_NOCTTY = 0o400;
        const O_TRUNC = 0o1000;
        const O_APPEND = 0o2000;
        const O_NONBLOCK = 0o4000;
        const O_DSYNC = 0o10000;
        const O_ASYNC = 0o20000;
        const O_DIRECT = 0o40000;
        const O_LARGEFILE = 0o100000;
        const O_DIRECTORY = 0o200000;
        const O_NOFOLLOW = 0o400000;
        const O_NOATIME = 0o1000000;
        const O_CLOEXEC = 0o2000000;
        const O_SYNC = 0o4010000;
        const O_PATH = 0o10000000;
        const O_TMPFILE = 0o20200000;
    }

    /// The `AT_*` flags of the *at calls.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct AtFlags: u32 {
        const AT_SYMLINK_NOFOLLOW = 0x100;
        const AT_REMOVEDIR = 0x200;
        const AT_SYMLINK_FOLLOW = 0x400;
        const AT_NO_AUTOMOUNT = 0x800;
        const AT_EMPTY_PATH = 0x1000;
    }

    /// `clone` flags; the low byte is the exit signal.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct CloneFlags: u64 {
        const CLONE_VM = 0x100;
        const CLONE_FS = 0x200;
        const CLONE_FILES = 0x400;
        const CLONE_SIGHAND = 0x800;
        const CLONE_PIDFD = 0x1000;
        const CLONE_PTRACE = 0x2000;
        const CLONE_VFORK = 0x4000;
        const CLONE_PARENT = 0x8000;
        const CLONE_THREAD = 0x10000;
        const CLONE_NEWNS = 0x20000;
        const CLONE_SYSVSEM = 0x40000;
        const CLONE_SETTLS = 0x80000;
        const CLONE_PARENT_SETTID = 0x100000;
        const CLONE_CHILD_CLEARTID = 0x200000;
        const CLONE_DETACHED = 0x400000;
        const CLONE_UNTRACED = 0x800000;
        const CLONE_CHILD_SETTID = 0x1000000;
        const CLONE_NEWCGROUP = 0x2000000;
        const CLONE_NEWUTS = 0x4000000;
        const CLONE_NEWIPC = 0x8000000;
        const CLONE_NEWUSER = 0x10000000;
        const CLONE_NEWPID = 0x20000000;
        const CLONE_NEWNET = 0x40000000;
        const CLONE_IO = 0x80000000;
    }

    /// `mmap`/`mprotect` protections.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct ProtFlags: u32 {
        const PROT_READ = 0x1;
        const PROT_WRITE = 0x2;
        const PROT_EXEC = 0x4;
        const PROT_GROWSDOWN = 0x0100_0000;
        const PROT_GROWSUP = 0x0200_0000;
    }

    /// `mmap` flags.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct MapFlags: u32 {
        const MAP_SHARED = 0x01;
        const MAP_PRIVATE = 0x02;
        const MAP_SHARED_VALIDATE = 0x03;
        const MAP_FIXED = 0x10;
        const MAP_ANONYMOUS = 0x20;
        const MAP_GROWSDOWN = 0x100;
        const MAP_DENYWRITE = 0x800;
        const MAP_EXECUTABLE = 0x1000;
        const MAP_LOCKED = 0x2000;
        const MAP_NORESERVE = 0x4000;
        const MAP_POPULATE = 0x8000;
        const MAP_NONBLOCK = 0x10000;
        const MAP_STACK = 0x20000;
        const MAP_HUGETLB = 0x40000;
        const MAP_SYNC = 0x80000;
        const MAP_FIXED_NOREPLACE = 0x100000;
    }
}

/// Flag sets convert to their bits, which is what the C prototypes take.
macro_rules! into_bits {
    ($($ty:ty => $bits:ty),*) => {$(
        impl From<$ty> for $bits {
            fn from(flags: $ty) -> $bits {
                flags.bits()
            }
        }
    )*};
}

into_bits!(OpenFlags => u32, AtFlags => u32, CloneFlags => u64, ProtFlags => u32, MapFlags => u32);

/// What `fork()` is as a `clone`: a new process that signals SIGCHLD when it ends.
pub const FORK: CloneFlags = CloneFlags::from_bits_retain(crate::signal::SIGCHLD as u64);
/// What `vfork()` is as a `clone`: `fork` sharing the address space, the
/// parent waiting until the child execs or exits.
pub const VFORK: CloneFlags =
    CloneFlags::from_bits_retain(CloneFlags::CLONE_VFORK.bits() | CloneFlags::CLONE_VM.bits() | FORK.bits());
