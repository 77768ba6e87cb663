//! The syscall table: one line per system call moat has something to say
//! about, from which dispatch, argument decoding, `--strace` and the
//! coverage list (docs/syscalls.md, `moat syscalls`) are all generated.
//!
//! A line is `NAME(arg: Type, …) status => handler;`. `NAME` is the call's
//! constant in `abi::sysno`; the types (see `args.rs`) decode the registers
//! and say how `--strace` shows them; the handler is a function (or closure)
//! taking the task and the decoded arguments. The status is `ok`,
//! `partial("what is missing")`, `missing("why")` (no handler: ENOSYS,
//! counted and logged once), `quiet("why")` (ENOSYS, counted, not logged:
//! callers that probe for it fall back silently) or `refused(ERRNO, "why")`
//! (a deliberate error, not counted). A call without a line is `missing`.
//! A handler written `raw => |t, raw| …` gets the six argument registers as
//! they came instead (families that share one function, such as the xattr
//! calls); the line's types still decode them for `--strace`.

use abi::flags::{AtFlags, CloneFlags, MapFlags, OpenFlags, ProtFlags, FORK, VFORK};
use abi::sysno as nr;
use abi::Errno;

use abi::time::{Timespec, Timeval};

use super::args::{Fd, Mode, Show, SyscallArg, UserAddr, UserCStr, UserRef};
use super::fs::{AT_FDCWD, AT_REMOVEDIR, AT_SYMLINK_NOFOLLOW};
use super::{extra, fs, ipc, mm, net, process, signal, time, Args};
use crate::kernel::CurrentTask;
use crate::SysResult;

/// How much of a syscall moat implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Implemented as Linux has it.
    Supported,
    /// Implemented, with the gap the note names.
    Partial(&'static str),
    /// Not implemented: ENOSYS, counted and logged once per run.
    Missing(&'static str),
    /// Not implemented, and probed for by programs that do without it
    /// (glibc's rseq): ENOSYS, counted, but not logged.
    Quiet(&'static str),
    /// Refused on purpose with this errno (not counted as unimplemented).
    Refused(Errno, &'static str),
}

impl Status {
    /// The status as docs/syscalls.md and the ENOSYS log name it.
    pub fn label(&self) -> &'static str {
        match self {
            Status::Supported => "supported",
            Status::Partial(_) => "partial",
            Status::Missing(_) | Status::Quiet(_) => "not implemented",
            Status::Refused(..) => "refused",
        }
    }

    /// The note that goes with the status (empty when there is none).
    pub fn note(&self) -> &'static str {
        match self {
            Status::Supported => "",
            Status::Partial(n) | Status::Missing(n) | Status::Quiet(n) | Status::Refused(_, n) => n,
        }
    }
}

/// One line of the table.
#[derive(Debug)]
pub struct Entry {
    pub nr: u64,
    /// The arguments' names and how `--strace` shows them.
    pub args: &'static [(&'static str, Show)],
    pub status: Status,
}

impl Entry {
    /// The call's name, as the kernel spells it.
    pub fn name(&self) -> &'static str {
        nr::name(self.nr).unwrap_or("unknown")
    }
}

macro_rules! status {
    (ok) => {
        Status::Supported
    };
    (partial($note:literal)) => {
        Status::Partial($note)
    };
    (missing($note:literal)) => {
        Status::Missing($note)
    };
    (quiet($note:literal)) => {
        Status::Quiet($note)
    };
    (refused($errno:ident, $note:literal)) => {
        Status::Refused(Errno::$errno, $note)
    };
}

macro_rules! syscall_table {
    (@call $t:ident, $raw:ident, ($($ty:ty),*) raw => $handler:expr) => {
        ($handler)($t, $raw)
    };
    (@call $t:ident, $raw:ident, ($($ty:ty),*) => $handler:expr) => {{
        let mut _next = $raw.into_iter();
        ($handler)($t, $(<$ty as SyscallArg>::from_arg(_next.next().unwrap_or(0)).into()),*)
    }};
    (@call $t:ident, $raw:ident, ($($ty:ty),*)) => {
        return None
    };
    (
        $($nr:ident($($arg:ident: $ty:ty),*) $status:ident $(($($note:tt)*))? $($raw:ident)? $(=> $handler:expr)?;)*
    ) => {
        /// Every line of the table, in table order.
        pub static ENTRIES: &[Entry] = &[$(Entry {
            nr: nr::$nr,
            args: &[$((stringify!($arg), <$ty as SyscallArg>::SHOW)),*],
            status: status!($status $(($($note)*))?),
        }),*];

        /// Runs the handler of call `n`; None if the table has none for it.
        pub(super) fn call(t: &mut CurrentTask, n: u64, args: Args) -> Option<SysResult<u64>> {
            Some(match n {
                $(nr::$nr => syscall_table!(@call t, args, ($($ty),*) $($raw)? $(=> $handler)?),)*
                _ => return None,
            })
        }
    };
}

syscall_table! {
    // Files: reading and writing.
    READ(fd: Fd, buf: UserAddr, count: usize) ok => fs::sys_read;
    WRITE(fd: Fd, buf: UserAddr, count: usize) ok => fs::sys_write;
    PREAD64(fd: Fd, buf: UserAddr, count: usize, offset: i64) ok => fs::sys_pread64;
    PWRITE64(fd: Fd, buf: UserAddr, count: usize, offset: i64) ok => fs::sys_pwrite64;
    READV(fd: Fd, iov: UserAddr, iovcnt: usize) ok => fs::sys_readv;
    WRITEV(fd: Fd, iov: UserAddr, iovcnt: usize) ok => fs::sys_writev;
    PREADV(fd: Fd, iov: UserAddr, iovcnt: usize, pos_l: i64, pos_h: i64) ok => fs::sys_preadv;
    PWRITEV(fd: Fd, iov: UserAddr, iovcnt: usize, pos_l: i64, pos_h: i64) ok => fs::sys_pwritev;
    PREADV2(fd: Fd, iov: UserAddr, iovcnt: usize, pos_l: i64, pos_h: i64, flags: u32)
        partial("RWF_* hints accepted and change nothing") => fs::sys_preadv2;
    PWRITEV2(fd: Fd, iov: UserAddr, iovcnt: usize, pos_l: i64, pos_h: i64, flags: u32)
        partial("RWF_APPEND writes at the end; the other RWF_* hints change nothing") => fs::sys_pwritev2;
    LSEEK(fd: Fd, offset: i64, whence: u32) ok => fs::sys_lseek;
    SENDFILE(out_fd: Fd, in_fd: Fd, offset: UserAddr, count: usize) ok => fs::sys_sendfile;
    COPY_FILE_RANGE(fd_in: Fd, off_in: UserAddr, fd_out: Fd, off_out: UserAddr, len: usize, flags: u32) ok
        raw => fs::sys_copy_file_range;
    FALLOCATE(fd: Fd, mode: u32, offset: i64, len: i64) ok => fs::sys_fallocate;
    FSYNC(fd: Fd) ok => fs::sys_fsync;
    FDATASYNC(fd: Fd) ok => fs::sys_fsync;
    SYNC() ok => |_| Ok(0);
    SYNCFS(fd: Fd) ok => fs::sys_fsync;
    SYNC_FILE_RANGE(fd: Fd, offset: i64, nbytes: i64, flags: u32) ok => extra::sys_sync_file_range;
    FADVISE64(fd: Fd, offset: i64, len: i64, advice: i32) partial("checked as Linux checks it; no advice changes anything")
        => fs::sys_fadvise64;
    // Files: opening, naming, metadata.
    OPEN(path: UserCStr, flags: OpenFlags, mode: Mode) ok => |t, p, f, m| fs::sys_openat(t, AT_FDCWD, p, f, m);
    CREAT(path: UserCStr, mode: Mode) ok => |t, p, m| fs::sys_openat(t, AT_FDCWD, p, CREAT_FLAGS, m);
    OPENAT(dirfd: Fd, path: UserCStr, flags: OpenFlags, mode: Mode) ok => fs::sys_openat;
    OPENAT2(dirfd: Fd, path: UserCStr, how: UserAddr, size: usize) ok => fs::sys_openat2;
    CLOSE(fd: Fd) ok => fs::sys_close;
    CLOSE_RANGE(first: u32, last: u32, flags: u32) ok => fs::sys_close_range;
    STAT(path: UserCStr, buf: UserAddr) ok => |t, p, b| fs::sys_newfstatat(t, AT_FDCWD, p, b, 0);
    LSTAT(path: UserCStr, buf: UserAddr) ok => |t, p, b| fs::sys_newfstatat(t, AT_FDCWD, p, b, AT_SYMLINK_NOFOLLOW);
    FSTAT(fd: Fd, buf: UserAddr) ok => fs::sys_fstat;
    NEWFSTATAT(dirfd: Fd, path: UserCStr, buf: UserAddr, flags: AtFlags) ok => fs::sys_newfstatat;
    STATX(dirfd: Fd, path: UserCStr, flags: AtFlags, mask: u32, buf: UserAddr) ok => fs::sys_statx;
    STATFS(path: UserCStr, buf: UserAddr) ok => fs::sys_statfs;
    FSTATFS(fd: Fd, buf: UserAddr) ok => fs::sys_fstatfs;
    GETDENTS64(fd: Fd, dirp: UserAddr, count: usize) ok => fs::sys_getdents64;
    READLINK(path: UserCStr, buf: UserAddr, size: usize) ok => |t, p, b, s| fs::sys_readlinkat(t, AT_FDCWD, p, b, s);
    READLINKAT(dirfd: Fd, path: UserCStr, buf: UserAddr, size: usize) ok => fs::sys_readlinkat;
    ACCESS(path: UserCStr, mode: u32) ok => |t, p, m| fs::sys_faccessat(t, AT_FDCWD, p, m, 0);
    FACCESSAT(dirfd: Fd, path: UserCStr, mode: u32) ok => |t, d, p, m| fs::sys_faccessat(t, d, p, m, 0);
    FACCESSAT2(dirfd: Fd, path: UserCStr, mode: u32, flags: AtFlags) ok => fs::sys_faccessat;
    GETCWD(buf: UserAddr, size: usize) ok => fs::sys_getcwd;
    CHDIR(path: UserCStr) ok => fs::sys_chdir;
    FCHDIR(fd: Fd) ok => fs::sys_fchdir;
    CHROOT(path: UserCStr) ok => fs::sys_chroot;
    MKDIR(path: UserCStr, mode: Mode) ok => |t, p, m| fs::sys_mkdirat(t, AT_FDCWD, p, m);
    MKDIRAT(dirfd: Fd, path: UserCStr, mode: Mode) ok => fs::sys_mkdirat;
    MKNOD(path: UserCStr, mode: Mode, dev: u64) ok => |t, p, m, d| fs::sys_mknodat(t, AT_FDCWD, p, m, d);
    MKNODAT(dirfd: Fd, path: UserCStr, mode: Mode, dev: u64) ok => fs::sys_mknodat;
    RMDIR(path: UserCStr) ok => |t, p| fs::sys_unlinkat(t, AT_FDCWD, p, AT_REMOVEDIR);
    UNLINK(path: UserCStr) ok => |t, p| fs::sys_unlinkat(t, AT_FDCWD, p, 0);
    UNLINKAT(dirfd: Fd, path: UserCStr, flags: AtFlags) ok => fs::sys_unlinkat;
    RENAME(old: UserCStr, new: UserCStr) ok => |t, o, n| fs::sys_renameat2(t, AT_FDCWD, o, AT_FDCWD, n, 0);
    RENAMEAT(olddirfd: Fd, old: UserCStr, newdirfd: Fd, new: UserCStr) ok
        => |t, od, o, nd, n| fs::sys_renameat2(t, od, o, nd, n, 0);
    RENAMEAT2(olddirfd: Fd, old: UserCStr, newdirfd: Fd, new: UserCStr, flags: u32) ok => fs::sys_renameat2;
    LINK(old: UserCStr, new: UserCStr) ok => |t, o, n| fs::sys_linkat(t, AT_FDCWD, o, AT_FDCWD, n, 0);
    LINKAT(olddirfd: Fd, old: UserCStr, newdirfd: Fd, new: UserCStr, flags: AtFlags) ok => fs::sys_linkat;
    SYMLINK(target: UserCStr, path: UserCStr) ok => |t, target, p| fs::sys_symlinkat(t, target, AT_FDCWD, p);
    SYMLINKAT(target: UserCStr, dirfd: Fd, path: UserCStr) ok => fs::sys_symlinkat;
    CHMOD(path: UserCStr, mode: Mode) ok => |t, p, m| fs::sys_fchmodat(t, AT_FDCWD, p, m);
    FCHMOD(fd: Fd, mode: Mode) ok => fs::sys_fchmod;
    FCHMODAT(dirfd: Fd, path: UserCStr, mode: Mode) ok => fs::sys_fchmodat;
    CHOWN(path: UserCStr, uid: u32, gid: u32) ok => |t, p, u, g| fs::sys_fchownat(t, AT_FDCWD, p, u, g, 0);
    LCHOWN(path: UserCStr, uid: u32, gid: u32) ok
        => |t, p, u, g| fs::sys_fchownat(t, AT_FDCWD, p, u, g, AT_SYMLINK_NOFOLLOW);
    FCHOWN(fd: Fd, uid: u32, gid: u32) ok => fs::sys_fchown;
    FCHOWNAT(dirfd: Fd, path: UserCStr, uid: u32, gid: u32, flags: AtFlags) ok => fs::sys_fchownat;
    TRUNCATE(path: UserCStr, length: i64) ok => fs::sys_truncate;
    FTRUNCATE(fd: Fd, length: i64) ok => fs::sys_ftruncate;
    UTIME(path: UserCStr, times: UserAddr) ok => extra::sys_utime;
    UTIMES(path: UserCStr, times: UserAddr) ok => |t, p, tv| extra::sys_futimesat(t, Fd(AT_FDCWD), p, tv);
    FUTIMESAT(dirfd: Fd, path: UserCStr, times: UserAddr) ok => extra::sys_futimesat;
    UTIMENSAT(dirfd: Fd, path: UserCStr, times: UserAddr, flags: AtFlags) ok => fs::sys_utimensat;
    UMASK(mask: Mode) ok => fs::sys_umask;
    MEMFD_CREATE(name: UserCStr, flags: u32) ok => fs::sys_memfd_create;
    SETXATTR(path: UserCStr, name: UserCStr, value: UserAddr, size: usize, flags: i32) ok
        raw => |t, raw| fs::sys_xattr(t, nr::SETXATTR, raw);
    LSETXATTR(path: UserCStr, name: UserCStr, value: UserAddr, size: usize, flags: i32) ok
        raw => |t, raw| fs::sys_xattr(t, nr::LSETXATTR, raw);
    FSETXATTR(fd: Fd, name: UserCStr, value: UserAddr, size: usize, flags: i32) ok
        raw => |t, raw| fs::sys_xattr(t, nr::FSETXATTR, raw);
    GETXATTR(path: UserCStr, name: UserCStr, value: UserAddr, size: usize) ok
        raw => |t, raw| fs::sys_xattr(t, nr::GETXATTR, raw);
    LGETXATTR(path: UserCStr, name: UserCStr, value: UserAddr, size: usize) ok
        raw => |t, raw| fs::sys_xattr(t, nr::LGETXATTR, raw);
    FGETXATTR(fd: Fd, name: UserCStr, value: UserAddr, size: usize) ok
        raw => |t, raw| fs::sys_xattr(t, nr::FGETXATTR, raw);
    LISTXATTR(path: UserCStr, list: UserAddr, size: usize) ok raw => |t, raw| fs::sys_xattr(t, nr::LISTXATTR, raw);
    LLISTXATTR(path: UserCStr, list: UserAddr, size: usize) ok raw => |t, raw| fs::sys_xattr(t, nr::LLISTXATTR, raw);
    FLISTXATTR(fd: Fd, list: UserAddr, size: usize) ok raw => |t, raw| fs::sys_xattr(t, nr::FLISTXATTR, raw);
    REMOVEXATTR(path: UserCStr, name: UserCStr) ok raw => |t, raw| fs::sys_xattr(t, nr::REMOVEXATTR, raw);
    LREMOVEXATTR(path: UserCStr, name: UserCStr) ok raw => |t, raw| fs::sys_xattr(t, nr::LREMOVEXATTR, raw);
    FREMOVEXATTR(fd: Fd, name: UserCStr) ok raw => |t, raw| fs::sys_xattr(t, nr::FREMOVEXATTR, raw);
    NAME_TO_HANDLE_AT(dirfd: Fd, path: UserCStr, handle: UserAddr, mount_id: UserAddr, flags: AtFlags)
        refused(EOPNOTSUPP, "file handles would name files outside the path walk");
    OPEN_BY_HANDLE_AT(mount_fd: Fd, handle: UserAddr, flags: OpenFlags)
        refused(EPERM, "file handles would name files outside the path walk");
    // Descriptors.
    DUP(fd: Fd) ok => fs::sys_dup;
    DUP2(oldfd: Fd, newfd: Fd) ok => fs::sys_dup2;
    DUP3(oldfd: Fd, newfd: Fd, flags: OpenFlags) ok => fs::sys_dup3;
    FCNTL(fd: Fd, cmd: u32, arg: u64) partial("no leases, OFD locks or F_NOTIFY") => fs::sys_fcntl;
    FLOCK(fd: Fd, operation: u32) ok => fs::sys_flock;
    IOCTL(fd: Fd, request: u32, arg: u64) partial("terminals, FIONREAD/FIONBIO/FIOCLEX and the SIOCGIF* interface queries only")
        => |t, fd, request: u32, arg| fs::sys_ioctl(t, fd, u64::from(request), arg);
    PIPE(fds: UserAddr) ok => |t, fds| fs::sys_pipe2(t, fds, 0);
    PIPE2(fds: UserAddr, flags: OpenFlags) ok => fs::sys_pipe2;
    // Readiness and event files.
    POLL(fds: UserAddr, nfds: usize, timeout: i32) ok => |t, f, n, ms: i32| fs::sys_poll(t, f, n, i64::from(ms));
    PPOLL(fds: UserAddr, nfds: usize, timeout: UserAddr, sigmask: UserAddr, sigsetsize: u64) ok => fs::sys_ppoll;
    SELECT(nfds: i32, readfds: UserAddr, writefds: UserAddr, exceptfds: UserAddr, timeout: UserAddr) ok
        => fs::sys_select;
    PSELECT6(nfds: i32, readfds: UserAddr, writefds: UserAddr, exceptfds: UserAddr, timeout: UserAddr, sigmask: UserAddr) ok
        => fs::sys_pselect6;
    EPOLL_CREATE(size: i32) ok => |t, size: i32| if size <= 0 { Err(errno!(EINVAL)) } else { fs::sys_epoll_create1(t, 0) };
    EPOLL_CREATE1(flags: u32) ok => fs::sys_epoll_create1;
    EPOLL_CTL(epfd: Fd, op: u32, fd: Fd, event: UserAddr) ok => fs::sys_epoll_ctl;
    EPOLL_WAIT(epfd: Fd, events: UserAddr, maxevents: i32, timeout: i32) ok
        => |t, e, ev, max, ms: i32| fs::sys_epoll_pwait(t, e, ev, max, i64::from(ms));
    EPOLL_PWAIT(epfd: Fd, events: UserAddr, maxevents: i32, timeout: i32, sigmask: UserAddr, sigsetsize: usize)
        partial("a signal mask is ENOSYS") => |t: &mut CurrentTask, e, ev, max, ms: i32, mask: UserAddr, _: usize| {
            if mask.0 != 0 {
                return Err(super::unimplemented(t, nr::EPOLL_PWAIT));
            }
            fs::sys_epoll_pwait(t, e, ev, max, i64::from(ms))
        };
    EVENTFD(initval: u32) ok => |t, v| fs::sys_eventfd2(t, v, 0);
    EVENTFD2(initval: u32, flags: u32) ok => fs::sys_eventfd2;
    SIGNALFD(fd: Fd, mask: UserAddr, sizemask: usize) ok => |t, f, m, s| fs::sys_signalfd4(t, f, m, s, 0);
    SIGNALFD4(fd: Fd, mask: UserAddr, sizemask: usize, flags: u32) ok => fs::sys_signalfd4;
    TIMERFD_CREATE(clockid: i32, flags: u32) ok => fs::sys_timerfd_create;
    TIMERFD_SETTIME(fd: Fd, flags: u32, new: UserAddr, old: UserAddr) ok => fs::sys_timerfd_settime;
    TIMERFD_GETTIME(fd: Fd, curr: UserAddr) ok => fs::sys_timerfd_gettime;
    INOTIFY_INIT() ok => |t| fs::sys_inotify_init1(t, 0);
    INOTIFY_INIT1(flags: u32) ok => fs::sys_inotify_init1;
    INOTIFY_ADD_WATCH(fd: Fd, path: UserCStr, mask: u32) ok => fs::sys_inotify_add_watch;
    INOTIFY_RM_WATCH(fd: Fd, wd: i32) ok => fs::sys_inotify_rm_watch;
    // Sockets.
    SOCKET(domain: i32, kind: i32, protocol: i32) partial("AF_UNIX; AF_INET and AF_INET6 TCP and UDP on the sandbox's own stack (127.0.0.1, ::1; TCP also over an OCI container's links, UDP not yet); AF_NETLINK NETLINK_ROUTE (link, address and route dumps, RTM_GETLINK by index or name; changes EPERM or EOPNOTSUPP); no raw or ping sockets, no other netlink protocols")
        => net::sys_socket;
    SOCKETPAIR(domain: i32, kind: i32, protocol: i32, sv: UserAddr) ok => net::sys_socketpair;
    BIND(fd: Fd, addr: UserAddr, addrlen: u32) ok => net::sys_bind;
    LISTEN(fd: Fd, backlog: i32) ok => net::sys_listen;
    CONNECT(fd: Fd, addr: UserAddr, addrlen: u32) ok => net::sys_connect;
    ACCEPT(fd: Fd, addr: UserAddr, addrlen: UserAddr) ok => |t, f, a, l| net::sys_accept4(t, f, a, l, 0);
    ACCEPT4(fd: Fd, addr: UserAddr, addrlen: UserAddr, flags: u32) ok => net::sys_accept4;
    SENDTO(fd: Fd, buf: UserAddr, len: usize, flags: u32, addr: UserAddr, addrlen: u32) ok => net::sys_sendto;
    RECVFROM(fd: Fd, buf: UserAddr, len: usize, flags: u32, addr: UserAddr, addrlen: UserAddr) ok => net::sys_recvfrom;
    SENDMSG(fd: Fd, msg: UserAddr, flags: u32) partial("control messages on AF_UNIX only; ignored on internet and netlink sockets")
        => net::sys_sendmsg;
    RECVMSG(fd: Fd, msg: UserAddr, flags: u32) partial("control messages on AF_UNIX only; none on internet and netlink sockets (SO_PASSCRED is kept but sends no credentials)")
        => net::sys_recvmsg;
    SENDMMSG(fd: Fd, msgvec: UserAddr, vlen: u32, flags: u32) ok => net::sys_sendmmsg;
    RECVMMSG(fd: Fd, msgvec: UserAddr, vlen: u32, flags: u32, timeout: UserAddr) ok => net::sys_recvmmsg;
    SHUTDOWN(fd: Fd, how: i32) ok => net::sys_shutdown;
    GETSOCKNAME(fd: Fd, addr: UserAddr, addrlen: UserAddr) ok => net::sys_getsockname;
    GETPEERNAME(fd: Fd, addr: UserAddr, addrlen: UserAddr) ok => net::sys_getpeername;
    SETSOCKOPT(fd: Fd, level: i32, name: i32, value: UserAddr, len: u32)
        partial("internet sockets: the SOL_SOCKET, TCP and IP options glibc, Python and curl set; netlink: buffers, SO_PASSCRED, timeouts and the SOL_NETLINK flags and memberships; others ENOPROTOOPT")
        => net::sys_setsockopt;
    GETSOCKOPT(fd: Fd, level: i32, name: i32, value: UserAddr, len: UserAddr)
        partial("internet sockets: the SOL_SOCKET, TCP and IP options glibc, Python and curl set; netlink: buffers, SO_PASSCRED, timeouts and the SOL_NETLINK flags; others ENOPROTOOPT")
        => net::sys_getsockopt;
    // Memory.
    BRK(addr: UserAddr) ok => mm::sys_brk;
    MMAP(addr: UserAddr, len: u64, prot: ProtFlags, flags: MapFlags, fd: Fd, offset: u64) ok => mm::sys_mmap;
    MUNMAP(addr: UserAddr, len: u64) ok => mm::sys_munmap;
    MPROTECT(addr: UserAddr, len: u64, prot: ProtFlags) ok => mm::sys_mprotect;
    MREMAP(old_addr: UserAddr, old_len: u64, new_len: u64, flags: u32, new_addr: UserAddr) ok => mm::sys_mremap;
    MADVISE(addr: UserAddr, len: u64, advice: u32) ok => mm::sys_madvise;
    MSYNC(addr: UserAddr, len: u64, flags: u32) ok => mm::sys_msync;
    MINCORE(addr: UserAddr, len: u64, vec: UserAddr) ok => mm::sys_mincore;
    MLOCK(addr: UserAddr, len: u64) partial("the range is checked; nothing is swapped, so nothing is locked")
        => |t, a: UserAddr, l| mm::sys_mlock(t, a.0, l);
    MUNLOCK(addr: UserAddr, len: u64) partial("the range is checked; nothing is swapped, so nothing is locked")
        => |t, a: UserAddr, l| mm::sys_mlock(t, a.0, l);
    MLOCKALL(flags: u32) partial("the flags are checked; nothing is swapped, so nothing is locked") => mm::sys_mlockall;
    MUNLOCKALL() ok => |_| Ok(0);
    MLOCK2(addr: UserAddr, len: u64, flags: u32) partial("the range and flags are checked; nothing is locked")
        => |t, a: UserAddr, l, f| mm::sys_mlock2(t, a.0, l, f);
    // Processes and threads.
    GETPID() ok => |t: &mut CurrentTask| Ok(t.pid() as u64);
    GETTID() ok => |t: &mut CurrentTask| Ok(t.task.tid() as u64);
    GETPPID() ok => |t: &mut CurrentTask| Ok(t.tg().ppid() as u64);
    FORK() ok => |t| process::sys_clone(t, FORK.bits(), 0, 0, 0, 0);
    VFORK() ok => |t| process::sys_clone(t, VFORK.bits(), 0, 0, 0, 0);
    CLONE(flags: CloneFlags, stack: UserAddr, parent_tid: UserAddr, child_tid: UserAddr, tls: u64)
        partial("no new namespaces") => process::sys_clone;
    CLONE3(args: UserAddr, size: usize) partial("no new namespaces") => process::sys_clone3;
    EXECVE(path: UserCStr, argv: UserAddr, envp: UserAddr) ok => process::sys_execve;
    EXIT(status: i32) ok => process::sys_exit;
    EXIT_GROUP(status: i32) ok => process::sys_exit_group;
    WAIT4(pid: i32, status: UserAddr, options: u32, rusage: UserAddr) ok => process::sys_wait4;
    WAITID(idtype: u32, id: i32, info: UserAddr, options: u32, rusage: UserAddr) ok
        => |t, idtype, id, info, options, _: UserAddr| process::sys_waitid(t, idtype, id, info, options);
    SET_TID_ADDRESS(tidptr: UserAddr) ok => process::sys_set_tid_address;
    SET_ROBUST_LIST(head: UserAddr, len: usize) ok => process::sys_set_robust_list;
    GET_ROBUST_LIST(pid: i32, head: UserAddr, len: UserAddr) ok => process::sys_get_robust_list;
    FUTEX(uaddr: UserAddr, op: i32, val: u32, timeout: UserAddr, uaddr2: UserAddr, val3: u32)
        partial("no PI futexes") raw => process::sys_futex;
    ARCH_PRCTL(code: u32, addr: u64) ok => process::sys_arch_prctl;
    PRCTL(option: u32, arg2: u64, arg3: u64, arg4: u64, arg5: u64) partial("the options programs use")
        raw => |t, raw: Args| process::sys_prctl(t, raw[0] as u32, raw);
    PERSONALITY(persona: u32) partial("PER_LINUX only") => extra::sys_personality;
    UNAME(buf: UserAddr) ok => process::sys_uname;
    SETHOSTNAME(name: UserAddr, len: usize) ok => |t, n, l| process::sys_setuts(t, nr::SETHOSTNAME, n, l);
    SETDOMAINNAME(name: UserAddr, len: usize) ok => |t, n, l| process::sys_setuts(t, nr::SETDOMAINNAME, n, l);
    SCHED_YIELD() ok => |_| Ok(0);
    SCHED_GETAFFINITY(pid: i32, len: usize, mask: UserAddr) ok
        => |t, _: i32, l, m| process::sys_sched_getaffinity(t, l, m);
    SCHED_SETAFFINITY(pid: i32, len: usize, mask: UserAddr) ok
        raw => |t, raw| process::sys_sched_param(t, nr::SCHED_SETAFFINITY, raw);
    SCHED_GETSCHEDULER(pid: i32) ok raw => |t, raw| process::sys_sched_param(t, nr::SCHED_GETSCHEDULER, raw);
    SCHED_SETSCHEDULER(pid: i32, policy: i32, param: UserAddr) ok
        raw => |t, raw| process::sys_sched_param(t, nr::SCHED_SETSCHEDULER, raw);
    GETPRIORITY(which: i32, who: i32) ok => process::sys_getpriority;
    IOPRIO_GET(which: i32, who: i32) ok => process::sys_ioprio_get;
    SCHED_RR_GET_INTERVAL(pid: i32, interval: UserAddr) ok => process::sys_sched_rr_get_interval;
    KCMP(pid1: i32, pid2: i32, kind: i32, idx1: u64, idx2: u64) partial("no KCMP_EPOLL_TFD; no ptrace-mode check")
        => process::sys_kcmp;
    IOPRIO_SET(which: i32, who: i32, ioprio: i32) partial("recorded and reported; the host does the I/O")
        => process::sys_ioprio_set;
    SETPRIORITY(which: i32, who: i32, prio: i32) partial("recorded and reported; the host schedules the stubs")
        => process::sys_setpriority;
    SCHED_GETPARAM(pid: i32, param: UserAddr) ok raw => |t, raw| process::sys_sched_param(t, nr::SCHED_GETPARAM, raw);
    SCHED_SETPARAM(pid: i32, param: UserAddr) ok raw => |t, raw| process::sys_sched_param(t, nr::SCHED_SETPARAM, raw);
    SCHED_GET_PRIORITY_MAX(policy: i32) ok => |_, policy| extra::sched_priority(policy, true);
    SCHED_GET_PRIORITY_MIN(policy: i32) ok => |_, policy| extra::sched_priority(policy, false);
    MEMBARRIER(cmd: i32, flags: u32) ok => process::sys_membarrier;
    GETCPU(cpu: UserAddr, node: UserAddr, cache: UserAddr) ok => |t, c, n, _: UserAddr| process::sys_getcpu(t, c, n);
    RSEQ(rseq: UserAddr, len: u32, flags: i32, sig: u32)
        quiet("glibc registers it at start-up and does without it when it is ENOSYS");
    // Credentials and limits.
    GETUID() ok => |t| process::sys_getid(t, nr::GETUID);
    GETEUID() ok => |t| process::sys_getid(t, nr::GETEUID);
    GETGID() ok => |t| process::sys_getid(t, nr::GETGID);
    GETEGID() ok => |t| process::sys_getid(t, nr::GETEGID);
    SETUID(uid: u32) ok raw => |t, raw| process::sys_setid(t, nr::SETUID, raw);
    SETGID(gid: u32) ok raw => |t, raw| process::sys_setid(t, nr::SETGID, raw);
    SETREUID(ruid: u32, euid: u32) ok raw => |t, raw| process::sys_setid(t, nr::SETREUID, raw);
    SETREGID(rgid: u32, egid: u32) ok raw => |t, raw| process::sys_setid(t, nr::SETREGID, raw);
    SETRESUID(ruid: u32, euid: u32, suid: u32) ok raw => |t, raw| process::sys_setid(t, nr::SETRESUID, raw);
    SETRESGID(rgid: u32, egid: u32, sgid: u32) ok raw => |t, raw| process::sys_setid(t, nr::SETRESGID, raw);
    GETRESUID(ruid: UserAddr, euid: UserAddr, suid: UserAddr) ok
        raw => |t, raw| process::sys_getresid(t, nr::GETRESUID, raw);
    GETRESGID(rgid: UserAddr, egid: UserAddr, sgid: UserAddr) ok
        raw => |t, raw| process::sys_getresid(t, nr::GETRESGID, raw);
    GETGROUPS(size: i32, list: UserAddr) ok => process::sys_getgroups;
    SETGROUPS(size: usize, list: UserAddr) ok => process::sys_setgroups;
    CAPGET(header: UserAddr, data: UserAddr) ok => process::sys_capget;
    CAPSET(header: UserAddr, data: UserAddr) ok => process::sys_capset;
    SETPGID(pid: i32, pgid: i32) ok => process::sys_setpgid;
    GETPGID(pid: i32) ok => process::sys_getpgid;
    GETPGRP() ok => |t| process::sys_getpgid(t, 0);
    SETSID() ok => process::sys_setsid;
    GETSID(pid: i32) ok => process::sys_getsid;
    GETRLIMIT(resource: u32, rlim: UserAddr) ok => |t, r, l: UserAddr| process::sys_prlimit64(t, 0, r, 0, l.0);
    SETRLIMIT(resource: u32, rlim: UserAddr) ok => |t, r, l: UserAddr| process::sys_prlimit64(t, 0, r, l.0, 0);
    PRLIMIT64(pid: i32, resource: u32, new: UserAddr, old: UserAddr) ok => process::sys_prlimit64;
    GETRUSAGE(who: i32, usage: UserAddr) ok => process::sys_getrusage;
    TIMES(buf: UserAddr) ok => process::sys_times;
    SYSINFO(info: UserAddr) ok => process::sys_sysinfo;
    GETRANDOM(buf: UserAddr, len: usize, flags: u32) ok => process::sys_getrandom;
    // Signals.
    RT_SIGACTION(sig: i32, act: UserAddr, oldact: UserAddr, sigsetsize: usize) ok => signal::sys_rt_sigaction;
    RT_SIGPROCMASK(how: u32, set: UserAddr, oldset: UserAddr, sigsetsize: usize) ok => signal::sys_rt_sigprocmask;
    RT_SIGRETURN() ok => |t: &mut CurrentTask| t.sigreturn();
    RT_SIGPENDING(set: UserAddr, sigsetsize: usize) ok => signal::sys_rt_sigpending;
    RT_SIGSUSPEND(mask: UserAddr, sigsetsize: usize) ok => signal::sys_rt_sigsuspend;
    RT_SIGTIMEDWAIT(set: UserAddr, info: UserAddr, timeout: UserAddr, sigsetsize: usize) ok
        => signal::sys_rt_sigtimedwait;
    RT_SIGQUEUEINFO(pid: i32, sig: i32, info: UserAddr) ok => signal::sys_rt_sigqueueinfo;
    RT_TGSIGQUEUEINFO(tgid: i32, tid: i32, sig: i32, info: UserAddr) ok => signal::sys_rt_tgsigqueueinfo;
    SIGALTSTACK(ss: UserAddr, old_ss: UserAddr) ok => signal::sys_sigaltstack;
    KILL(pid: i32, sig: i32) ok => signal::sys_kill;
    TKILL(tid: i32, sig: i32) ok => |t, tid, sig| signal::sys_tgkill(t, -1, tid, sig);
    TGKILL(tgid: i32, tid: i32, sig: i32) ok => signal::sys_tgkill;
    PAUSE() ok => signal::sys_pause;
    // System V IPC (the sandbox is one IPC namespace).
    MSGGET(key: i32, msgflg: i32) ok => ipc::sys_msgget;
    MSGSND(msqid: i32, msgp: UserAddr, msgsz: usize, msgflg: i32)
        partial("past 64 MiB queued in the whole sandbox a send waits (or EAGAIN) as on a full queue")
        => ipc::sys_msgsnd;
    MSGRCV(msqid: i32, msgp: UserAddr, msgsz: usize, msgtyp: i64, msgflg: i32)
        partial("a message that cannot be copied out (EFAULT) stays queued; Linux drops it")
        => ipc::sys_msgrcv;
    MSGCTL(msqid: i32, cmd: i32, buf: UserAddr) ok => ipc::sys_msgctl;
    SEMGET(key: i32, nsems: i32, semflg: i32)
        partial("the sandbox holds at most 1,048,576 semaphores in all sets (Linux's SEMMNS allows about 10⁹)")
        => ipc::sys_semget;
    SEMOP(semid: i32, sops: UserAddr, nsops: usize) ok => |t, i, s, n| ipc::sys_semtimedop(t, i, s, n, UserAddr(0));
    SEMTIMEDOP(semid: i32, sops: UserAddr, nsops: usize, timeout: UserAddr) ok => ipc::sys_semtimedop;
    SEMCTL(semid: i32, semnum: i32, cmd: i32, arg: u64) ok => ipc::sys_semctl;
    // Time.
    CLOCK_GETTIME(clockid: i32, tp: UserRef<Timespec>) ok => time::sys_clock_gettime;
    CLOCK_GETRES(clockid: i32, res: UserRef<Timespec>) ok => time::sys_clock_getres;
    CLOCK_NANOSLEEP(clockid: i32, flags: u32, request: UserAddr, remain: UserAddr) ok => time::sys_clock_nanosleep;
    GETTIMEOFDAY(tv: UserRef<Timeval>, tz: UserAddr) ok => time::sys_gettimeofday;
    TIME(tloc: UserRef<i64>) ok => time::sys_time;
    NANOSLEEP(request: UserRef<Timespec>, remain: UserAddr) ok => time::sys_nanosleep;
    SETITIMER(which: i32, new: UserAddr, old: UserAddr) partial("ITIMER_REAL only") => time::sys_setitimer;
    GETITIMER(which: i32, curr: UserAddr) ok => time::sys_getitimer;
    ALARM(seconds: u32) ok => time::sys_alarm;
    TIMER_CREATE(clockid: i32, sevp: UserAddr, timerid: UserAddr) ok => time::sys_timer_create;
    TIMER_SETTIME(timerid: i32, flags: u32, new: UserAddr, old: UserAddr) ok => time::sys_timer_settime;
    TIMER_GETTIME(timerid: i32, curr: UserAddr) ok => time::sys_timer_gettime;
    TIMER_GETOVERRUN(timerid: i32) ok => time::sys_timer_getoverrun;
    TIMER_DELETE(timerid: i32) ok => time::sys_timer_delete;
}

/// `creat(path, mode)` is `open(path, O_CREAT | O_WRONLY | O_TRUNC, mode)`.
const CREAT_FLAGS: u32 = OpenFlags::O_CREAT.bits() | OpenFlags::O_WRONLY.bits() | OpenFlags::O_TRUNC.bits();

/// The table's line for call `nr`, if it has one.
pub fn entry(nr: u64) -> Option<&'static Entry> {
    static INDEX: std::sync::OnceLock<Vec<Option<u16>>> = std::sync::OnceLock::new();
    let index = INDEX.get_or_init(|| {
        let mut index = vec![None; nr::MAX as usize];
        for (i, e) in ENTRIES.iter().enumerate() {
            index[e.nr as usize] = Some(i as u16);
        }
        index
    });
    let i = (*index.get(usize::try_from(nr).ok()?)?)?;
    Some(&ENTRIES[usize::from(i)])
}

/// The status of call `nr`: its line's, or not implemented if it has none.
pub fn status(nr: u64) -> Status {
    entry(nr).map_or(Status::Missing(""), |e| e.status)
}
