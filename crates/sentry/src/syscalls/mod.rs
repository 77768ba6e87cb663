//! The syscall table: raw registers become typed calls here, once. Unknown
//! numbers go to one place that returns ENOSYS, counts and logs them.

mod fs;
mod mm;
mod net;
mod process;
mod signal;
mod time;
mod user_io;

use abi::sysno as nr;
use abi::Errno;

use crate::kernel::CurrentTask;
use crate::SysResult;

/// The entry points the kernel's run loop calls (installed by `boot`).
pub const TABLE: crate::kernel::SyscallTable = crate::kernel::SyscallTable { handle, vsyscall };

/// Raw syscall arguments.
pub type Args = [u64; 6];

/// Handles the syscall the current task stopped at and puts the result in rax.
pub fn handle(t: &mut CurrentTask) {
    let n = t.regs.orig_rax;
    let a: Args = [t.regs.rdi, t.regs.rsi, t.regs.rdx, t.regs.r10, t.regs.r8, t.regs.r9];
    let strace = t.k.strace;
    let before = if strace { Some(decode_args(t, n, &a)) } else { None };
    let r = match crate::kernel::app_seccomp::enforce(t, n, &a) {
        Some(r) => r,
        None => dispatch(t, n, a),
    };
    if let Some(args) = before {
        let name = nr::name(n).map(str::to_string).unwrap_or_else(|| format!("syscall_{n}"));
        let res = match &r {
            Ok(v) => format!("{}", *v as i64),
            Err(e) => format!("-1 {}", e.name()),
        };
        crate::kernel::log_line(format_args!("[{}] {}({}) = {}", t.task.tid(), name, args, res));
    }
    match r {
        Ok(v) => t.regs.rax = v,
        Err(e) if e.is_restart() => {
            t.restart = Some(e);
            t.regs.rax = (-Errno::EINTR.0) as i64 as u64;
        }
        Err(e) => t.regs.rax = (-(e.0 as i64)) as u64,
    }
}

fn decode_args(t: &CurrentTask, n: u64, a: &Args) -> String {
    let path_arg = match n {
        nr::OPEN
        | nr::STAT
        | nr::LSTAT
        | nr::ACCESS
        | nr::EXECVE
        | nr::CHDIR
        | nr::CHROOT
        | nr::MKDIR
        | nr::RMDIR
        | nr::UNLINK
        | nr::READLINK
        | nr::CHMOD
        | nr::CREAT
        | nr::TRUNCATE
        | nr::CHOWN
        | nr::LCHOWN
        | nr::STATFS => Some(0),
        nr::OPENAT
        | nr::NEWFSTATAT
        | nr::MKDIRAT
        | nr::UNLINKAT
        | nr::READLINKAT
        | nr::FACCESSAT
        | nr::FACCESSAT2
        | nr::FCHMODAT
        | nr::FCHOWNAT
        | nr::STATX
        | nr::UTIMENSAT
        | nr::EXECVEAT
        | nr::RENAMEAT
        | nr::RENAMEAT2 => Some(1),
        _ => None,
    };
    let mut out = Vec::new();
    for (i, v) in a.iter().enumerate().take(nargs(n)) {
        if Some(i) == path_arg {
            match t.read_cstr(*v) {
                Ok(s) => out.push(format!("{:?}", String::from_utf8_lossy(&s))),
                Err(_) => out.push(format!("{v:#x}")),
            }
        } else if (*v as i64).unsigned_abs() < 4096 {
            out.push(format!("{}", *v as i64));
        } else {
            out.push(format!("{v:#x}"));
        }
    }
    out.join(", ")
}

/// How many arguments a syscall takes, so --strace shows only those.
fn nargs(n: u64) -> usize {
    match n {
        nr::GETPID
        | nr::GETTID
        | nr::GETPPID
        | nr::FORK
        | nr::VFORK
        | nr::GETUID
        | nr::GETEUID
        | nr::GETGID
        | nr::GETEGID
        | nr::GETPGRP
        | nr::SETSID
        | nr::SCHED_YIELD
        | nr::PAUSE
        | nr::SYNC
        | nr::RT_SIGRETURN => 0,
        nr::CLOSE
        | nr::BRK
        | nr::EXIT
        | nr::EXIT_GROUP
        | nr::UMASK
        | nr::CHDIR
        | nr::CHROOT
        | nr::FCHDIR
        | nr::DUP
        | nr::UNAME
        | nr::RMDIR
        | nr::UNLINK
        | nr::SET_TID_ADDRESS
        | nr::TIME
        | nr::SYSINFO
        | nr::TIMES
        | nr::PIPE
        | nr::FSYNC
        | nr::FDATASYNC
        | nr::GETPGID
        | nr::GETSID
        | nr::SETUID
        | nr::SETGID => 1,
        nr::FSTAT
        | nr::STAT
        | nr::LSTAT
        | nr::ACCESS
        | nr::MKDIR
        | nr::DUP2
        | nr::PIPE2
        | nr::GETCWD
        | nr::KILL
        | nr::TKILL
        | nr::MUNMAP
        | nr::RENAME
        | nr::LINK
        | nr::SYMLINK
        | nr::CHMOD
        | nr::FCHMOD
        | nr::ARCH_PRCTL
        | nr::CLOCK_GETTIME
        | nr::CLOCK_GETRES
        | nr::GETTIMEOFDAY
        | nr::NANOSLEEP
        | nr::SETPGID
        | nr::GETRLIMIT
        | nr::SETRLIMIT
        | nr::GETRUSAGE
        | nr::SIGALTSTACK
        | nr::RT_SIGSUSPEND
        | nr::RT_SIGPENDING
        | nr::TRUNCATE
        | nr::FTRUNCATE
        | nr::SET_ROBUST_LIST
        | nr::GETGROUPS
        | nr::SETGROUPS
        | nr::SETREUID
        | nr::SETREGID
        | nr::SETHOSTNAME
        | nr::SETDOMAINNAME
        | nr::CAPGET
        | nr::CAPSET
        | nr::STATFS
        | nr::FSTATFS
        | nr::CREAT
        | nr::FLOCK => 2,
        nr::READ
        | nr::WRITE
        | nr::OPEN
        | nr::LSEEK
        | nr::MPROTECT
        | nr::IOCTL
        | nr::READV
        | nr::WRITEV
        | nr::FCNTL
        | nr::EXECVE
        | nr::READLINK
        | nr::CHOWN
        | nr::LCHOWN
        | nr::FCHOWN
        | nr::DUP3
        | nr::MKDIRAT
        | nr::UNLINKAT
        | nr::SYMLINKAT
        | nr::FCHMODAT
        | nr::FACCESSAT
        | nr::TGKILL
        | nr::GETDENTS64
        | nr::MADVISE
        | nr::POLL
        | nr::MKNOD
        | nr::GETRANDOM
        | nr::SETRESUID
        | nr::SETRESGID
        | nr::GETRESUID
        | nr::GETRESGID
        | nr::GETCPU
        | nr::SCHED_GETAFFINITY => 3,
        nr::OPENAT
        | nr::NEWFSTATAT
        | nr::PREAD64
        | nr::PWRITE64
        | nr::RT_SIGACTION
        | nr::RT_SIGPROCMASK
        | nr::WAIT4
        | nr::READLINKAT
        | nr::RENAMEAT
        | nr::MKNODAT
        | nr::UTIMENSAT
        | nr::CLOCK_NANOSLEEP
        | nr::PRLIMIT64
        | nr::FACCESSAT2 => 4,
        nr::CLONE | nr::FCHOWNAT | nr::LINKAT | nr::RENAMEAT2 | nr::STATX | nr::WAITID | nr::PRCTL => 5,
        _ => 6,
    }
}

fn dispatch(t: &mut CurrentTask, n: u64, a: Args) -> SysResult<u64> {
    let fd = |i: usize| a[i] as i32;
    match n {
        // Files and descriptors.
        nr::READ => fs::sys_read(t, fd(0), a[1], a[2] as usize),
        nr::WRITE => fs::sys_write(t, fd(0), a[1], a[2] as usize),
        nr::PREAD64 => fs::sys_pread64(t, fd(0), a[1], a[2] as usize, a[3] as i64),
        nr::PWRITE64 => fs::sys_pwrite64(t, fd(0), a[1], a[2] as usize, a[3] as i64),
        nr::READV => fs::sys_readv(t, fd(0), a[1], a[2] as usize),
        nr::WRITEV => fs::sys_writev(t, fd(0), a[1], a[2] as usize),
        nr::OPEN => fs::sys_openat(t, fs::AT_FDCWD, a[0], a[1] as u32, a[2] as u32),
        nr::CREAT => fs::sys_openat(t, fs::AT_FDCWD, a[0], 0o1101, a[1] as u32),
        nr::OPENAT => fs::sys_openat(t, fd(0), a[1], a[2] as u32, a[3] as u32),
        nr::CLOSE => fs::sys_close(t, fd(0)),
        nr::LSEEK => fs::sys_lseek(t, fd(0), a[1] as i64, a[2] as u32),
        nr::STAT => fs::sys_newfstatat(t, fs::AT_FDCWD, a[0], a[1], 0),
        nr::LSTAT => fs::sys_newfstatat(t, fs::AT_FDCWD, a[0], a[1], fs::AT_SYMLINK_NOFOLLOW),
        nr::FSTAT => fs::sys_fstat(t, fd(0), a[1]),
        nr::NEWFSTATAT => fs::sys_newfstatat(t, fd(0), a[1], a[2], a[3] as u32),
        nr::STATX => fs::sys_statx(t, fd(0), a[1], a[2] as u32, a[3] as u32, a[4]),
        nr::GETDENTS64 => fs::sys_getdents64(t, fd(0), a[1], a[2] as usize),
        nr::READLINK => fs::sys_readlinkat(t, fs::AT_FDCWD, a[0], a[1], a[2] as usize),
        nr::READLINKAT => fs::sys_readlinkat(t, fd(0), a[1], a[2], a[3] as usize),
        nr::ACCESS => fs::sys_faccessat(t, fs::AT_FDCWD, a[0], a[1] as u32, 0),
        nr::FACCESSAT => fs::sys_faccessat(t, fd(0), a[1], a[2] as u32, 0),
        nr::FACCESSAT2 => fs::sys_faccessat(t, fd(0), a[1], a[2] as u32, a[3] as u32),
        nr::GETCWD => fs::sys_getcwd(t, a[0], a[1] as usize),
        nr::CHDIR => fs::sys_chdir(t, a[0]),
        nr::CHROOT => fs::sys_chroot(t, a[0]),
        nr::FCHDIR => fs::sys_fchdir(t, fd(0)),
        nr::MKDIR => fs::sys_mkdirat(t, fs::AT_FDCWD, a[0], a[1] as u32),
        nr::MKDIRAT => fs::sys_mkdirat(t, fd(0), a[1], a[2] as u32),
        nr::MKNOD => fs::sys_mknodat(t, fs::AT_FDCWD, a[0], a[1] as u32, a[2]),
        nr::MKNODAT => fs::sys_mknodat(t, fd(0), a[1], a[2] as u32, a[3]),
        nr::RMDIR => fs::sys_unlinkat(t, fs::AT_FDCWD, a[0], fs::AT_REMOVEDIR),
        nr::UNLINK => fs::sys_unlinkat(t, fs::AT_FDCWD, a[0], 0),
        nr::UNLINKAT => fs::sys_unlinkat(t, fd(0), a[1], a[2] as u32),
        nr::RENAME => fs::sys_renameat2(t, fs::AT_FDCWD, a[0], fs::AT_FDCWD, a[1], 0),
        nr::RENAMEAT => fs::sys_renameat2(t, fd(0), a[1], fd(2), a[3], 0),
        nr::RENAMEAT2 => fs::sys_renameat2(t, fd(0), a[1], fd(2), a[3], a[4] as u32),
        nr::LINK => fs::sys_linkat(t, fs::AT_FDCWD, a[0], fs::AT_FDCWD, a[1], 0),
        nr::LINKAT => fs::sys_linkat(t, fd(0), a[1], fd(2), a[3], a[4] as u32),
        nr::SYMLINK => fs::sys_symlinkat(t, a[0], fs::AT_FDCWD, a[1]),
        nr::SYMLINKAT => fs::sys_symlinkat(t, a[0], fd(1), a[2]),
        nr::CHMOD => fs::sys_fchmodat(t, fs::AT_FDCWD, a[0], a[1] as u32),
        nr::FCHMODAT => fs::sys_fchmodat(t, fd(0), a[1], a[2] as u32),
        nr::FCHMOD => fs::sys_fchmod(t, fd(0), a[1] as u32),
        nr::CHOWN => fs::sys_fchownat(t, fs::AT_FDCWD, a[0], a[1] as u32, a[2] as u32, 0),
        nr::LCHOWN => fs::sys_fchownat(t, fs::AT_FDCWD, a[0], a[1] as u32, a[2] as u32, fs::AT_SYMLINK_NOFOLLOW),
        nr::FCHOWNAT => fs::sys_fchownat(t, fd(0), a[1], a[2] as u32, a[3] as u32, a[4] as u32),
        nr::FCHOWN => fs::sys_fchown(t, fd(0), a[1] as u32, a[2] as u32),
        nr::TRUNCATE => fs::sys_truncate(t, a[0], a[1] as i64),
        nr::FTRUNCATE => fs::sys_ftruncate(t, fd(0), a[1] as i64),
        nr::UTIMENSAT => fs::sys_utimensat(t, fd(0), a[1], a[2], a[3] as u32),
        nr::UMASK => fs::sys_umask(t, a[0] as u32),
        nr::DUP => fs::sys_dup(t, fd(0)),
        nr::DUP2 => fs::sys_dup2(t, fd(0), fd(1)),
        nr::DUP3 => fs::sys_dup3(t, fd(0), fd(1), a[2] as u32),
        nr::FCNTL => fs::sys_fcntl(t, fd(0), a[1] as u32, a[2]),
        nr::PIPE => fs::sys_pipe2(t, a[0], 0),
        nr::PIPE2 => fs::sys_pipe2(t, a[0], a[1] as u32),
        nr::IOCTL => fs::sys_ioctl(t, fd(0), a[1] as u32 as u64, a[2]),
        nr::FSYNC | nr::FDATASYNC => fs::sys_fsync(t, fd(0)),
        nr::SYNC => Ok(0),
        nr::STATFS => fs::sys_statfs(t, a[0], a[1]),
        nr::FSTATFS => fs::sys_fstatfs(t, fd(0), a[1]),
        nr::POLL => fs::sys_poll(t, a[0], a[1] as usize, a[2] as i32 as i64),
        nr::PPOLL => fs::sys_ppoll(t, a[0], a[1] as usize, a[2], a[3], a[4]),
        nr::SELECT => fs::sys_select(t, a[0] as i32, a[1], a[2], a[3], a[4]),
        nr::PSELECT6 => fs::sys_pselect6(t, a[0] as i32, a[1], a[2], a[3], a[4], a[5]),
        nr::FLOCK => fs::sys_flock(t, fd(0), a[1] as u32),
        nr::SETXATTR
        | nr::LSETXATTR
        | nr::FSETXATTR
        | nr::GETXATTR
        | nr::LGETXATTR
        | nr::FGETXATTR
        | nr::LISTXATTR
        | nr::LLISTXATTR
        | nr::FLISTXATTR
        | nr::REMOVEXATTR
        | nr::LREMOVEXATTR
        | nr::FREMOVEXATTR => fs::sys_xattr(t, n, a),
        // File handles would let the app name files outside the path walk; never offered.
        nr::NAME_TO_HANDLE_AT => Err(Errno::EOPNOTSUPP),
        nr::OPEN_BY_HANDLE_AT => Err(Errno::EPERM),
        nr::FALLOCATE => fs::sys_fallocate(t, fd(0), a[1] as u32, a[2] as i64, a[3] as i64),
        nr::SENDFILE => fs::sys_sendfile(t, fd(0), fd(1), a[2], a[3] as usize),
        nr::COPY_FILE_RANGE => fs::sys_copy_file_range(t, a),
        nr::MEMFD_CREATE => fs::sys_memfd_create(t, a[0], a[1] as u32),
        nr::OPENAT2 => fs::sys_openat2(t, fd(0), a[1], a[2], a[3] as usize),
        // Advice only: checking the fd is all there is to do.
        nr::FADVISE64 => fs::sys_fsync(t, fd(0)),
        nr::INOTIFY_INIT => fs::sys_inotify_init1(t, 0),
        nr::INOTIFY_INIT1 => fs::sys_inotify_init1(t, a[0] as u32),
        nr::INOTIFY_ADD_WATCH => fs::sys_inotify_add_watch(t, fd(0), a[1], a[2] as u32),
        nr::INOTIFY_RM_WATCH => fs::sys_inotify_rm_watch(t, fd(0), a[1] as i32),
        nr::EVENTFD => fs::sys_eventfd2(t, a[0] as u32, 0),
        nr::EVENTFD2 => fs::sys_eventfd2(t, a[0] as u32, a[1] as u32),
        nr::EPOLL_CREATE => match a[0] as i32 {
            n if n <= 0 => Err(Errno::EINVAL),
            _ => fs::sys_epoll_create1(t, 0),
        },
        nr::EPOLL_CREATE1 => fs::sys_epoll_create1(t, a[0] as u32),
        nr::EPOLL_CTL => fs::sys_epoll_ctl(t, fd(0), a[1] as u32, fd(2), a[3]),
        nr::EPOLL_WAIT => fs::sys_epoll_pwait(t, fd(0), a[1], a[2] as i32, a[3] as i32 as i64),
        nr::EPOLL_PWAIT if a[4] == 0 => fs::sys_epoll_pwait(t, fd(0), a[1], a[2] as i32, a[3] as i32 as i64),
        // Sockets (net.rs) begin.
        nr::SOCKET => net::sys_socket(t, a[0] as i32, a[1] as i32, a[2] as i32),
        nr::SOCKETPAIR => net::sys_socketpair(t, a[0] as i32, a[1] as i32, a[2] as i32, a[3]),
        nr::BIND => net::sys_bind(t, fd(0), a[1], a[2] as u32),
        nr::LISTEN => net::sys_listen(t, fd(0), a[1] as i32),
        nr::CONNECT => net::sys_connect(t, fd(0), a[1], a[2] as u32),
        nr::ACCEPT => net::sys_accept4(t, fd(0), a[1], a[2], 0),
        nr::ACCEPT4 => net::sys_accept4(t, fd(0), a[1], a[2], a[3] as u32),
        nr::SENDTO => net::sys_sendto(t, fd(0), a[1], a[2] as usize, a[3] as u32, a[4], a[5] as u32),
        nr::RECVFROM => net::sys_recvfrom(t, fd(0), a[1], a[2] as usize, a[3] as u32, a[4], a[5]),
        nr::SENDMSG => net::sys_sendmsg(t, fd(0), a[1], a[2] as u32),
        nr::RECVMSG => net::sys_recvmsg(t, fd(0), a[1], a[2] as u32),
        nr::SENDMMSG => net::sys_sendmmsg(t, fd(0), a[1], a[2] as u32, a[3] as u32),
        nr::RECVMMSG => net::sys_recvmmsg(t, fd(0), a[1], a[2] as u32, a[3] as u32, a[4]),
        nr::SHUTDOWN => net::sys_shutdown(t, fd(0), a[1] as i32),
        nr::GETSOCKNAME => net::sys_getsockname(t, fd(0), a[1], a[2]),
        nr::GETPEERNAME => net::sys_getpeername(t, fd(0), a[1], a[2]),
        nr::SETSOCKOPT => net::sys_setsockopt(t, fd(0), a[1] as i32, a[2] as i32, a[3], a[4] as u32),
        nr::GETSOCKOPT => net::sys_getsockopt(t, fd(0), a[1] as i32, a[2] as i32, a[3], a[4]),
        // Sockets (net.rs) end.
        // Memory.
        nr::BRK => mm::sys_brk(t, a[0]),
        nr::MMAP => mm::sys_mmap(t, a[0], a[1], a[2] as u32, a[3] as u32, fd(4), a[5]),
        nr::MUNMAP => mm::sys_munmap(t, a[0], a[1]),
        nr::MPROTECT => mm::sys_mprotect(t, a[0], a[1], a[2] as u32),
        nr::MADVISE => mm::sys_madvise(t, a[0], a[1], a[2] as u32),
        nr::MREMAP => mm::sys_mremap(t, a[0], a[1], a[2], a[3] as u32, a[4]),
        nr::MSYNC => mm::sys_msync(t, a[0], a[1], a[2] as u32),
        nr::MINCORE => mm::sys_mincore(t, a[0], a[1], a[2]),
        nr::MLOCK | nr::MUNLOCK | nr::MLOCKALL | nr::MUNLOCKALL => Ok(0),
        // Processes.
        nr::GETPID => Ok(t.pid() as u64),
        nr::GETTID => Ok(t.task.tid() as u64),
        nr::GETPPID => Ok(t.tg().ppid() as u64),
        nr::FORK => process::sys_clone(t, 17, 0, 0, 0, 0),
        nr::VFORK => process::sys_clone(t, 0x4000 | 0x100 | 17, 0, 0, 0, 0),
        nr::CLONE => process::sys_clone(t, a[0], a[1], a[2], a[3], a[4]),
        nr::EXECVE => process::sys_execve(t, a[0], a[1], a[2]),
        nr::EXIT => process::sys_exit(t, a[0] as i32),
        nr::EXIT_GROUP => process::sys_exit_group(t, a[0] as i32),
        nr::WAIT4 => process::sys_wait4(t, a[0] as i32, a[1], a[2] as u32, a[3]),
        nr::WAITID => process::sys_waitid(t, a[0] as u32, a[1] as i32, a[2], a[3] as u32),
        nr::SET_TID_ADDRESS => process::sys_set_tid_address(t, a[0]),
        nr::SET_ROBUST_LIST => process::sys_set_robust_list(t, a[0], a[1] as usize),
        nr::GET_ROBUST_LIST => process::sys_get_robust_list(t, a[0] as i32, a[1], a[2]),
        nr::CLONE3 => process::sys_clone3(t, a[0], a[1] as usize),
        nr::SCHED_GETSCHEDULER
        | nr::SCHED_GETPARAM
        | nr::SCHED_SETSCHEDULER
        | nr::SCHED_SETPARAM
        | nr::SCHED_SETAFFINITY => process::sys_sched_param(t, n, a),
        nr::SCHED_GET_PRIORITY_MAX | nr::SCHED_GET_PRIORITY_MIN => match a[0] {
            0 | 3 | 5 => Ok(0),
            1 | 2 => Ok(if n == nr::SCHED_GET_PRIORITY_MAX { 99 } else { 1 }),
            _ => Err(Errno::EINVAL),
        },
        nr::MEMBARRIER => process::sys_membarrier(t, a[0] as i32, a[1] as u32),
        nr::ARCH_PRCTL => process::sys_arch_prctl(t, a[0] as u32, a[1]),
        nr::PRCTL => process::sys_prctl(t, a[0] as u32, a),
        nr::UNAME => process::sys_uname(t, a[0]),
        nr::SETHOSTNAME | nr::SETDOMAINNAME => process::sys_setuts(t, n, a[0], a[1] as usize),
        nr::CAPGET => process::sys_capget(t, a[0], a[1]),
        nr::CAPSET => process::sys_capset(t, a[0], a[1]),
        nr::GETUID | nr::GETEUID | nr::GETGID | nr::GETEGID => process::sys_getid(t, n),
        nr::SETUID | nr::SETGID | nr::SETREUID | nr::SETREGID | nr::SETRESUID | nr::SETRESGID => {
            process::sys_setid(t, n, a)
        }
        nr::GETRESUID | nr::GETRESGID => process::sys_getresid(t, n, a),
        nr::GETGROUPS => process::sys_getgroups(t, a[0] as i32, a[1]),
        nr::SETGROUPS => process::sys_setgroups(t, a[0] as usize, a[1]),
        nr::SETPGID => process::sys_setpgid(t, a[0] as i32, a[1] as i32),
        nr::GETPGID => process::sys_getpgid(t, a[0] as i32),
        nr::GETPGRP => process::sys_getpgid(t, 0),
        nr::SETSID => process::sys_setsid(t),
        nr::GETSID => process::sys_getsid(t, a[0] as i32),
        nr::GETRLIMIT => process::sys_prlimit64(t, 0, a[0] as u32, 0, a[1]),
        nr::SETRLIMIT => process::sys_prlimit64(t, 0, a[0] as u32, a[1], 0),
        nr::PRLIMIT64 => process::sys_prlimit64(t, a[0] as i32, a[1] as u32, a[2], a[3]),
        nr::GETRUSAGE => process::sys_getrusage(t, a[0] as i32, a[1]),
        nr::TIMES => process::sys_times(t, a[0]),
        nr::SYSINFO => process::sys_sysinfo(t, a[0]),
        nr::GETRANDOM => process::sys_getrandom(t, a[0], a[1] as usize),
        nr::SCHED_YIELD => Ok(0),
        nr::SCHED_GETAFFINITY => process::sys_sched_getaffinity(t, a[1] as usize, a[2]),
        nr::GETCPU => process::sys_getcpu(t, a[0], a[1]),
        nr::FUTEX => process::sys_futex(t, a),
        // Signals.
        nr::RT_SIGACTION => signal::sys_rt_sigaction(t, a[0] as i32, a[1], a[2], a[3] as usize),
        nr::RT_SIGPROCMASK => signal::sys_rt_sigprocmask(t, a[0] as u32, a[1], a[2], a[3] as usize),
        nr::RT_SIGRETURN => t.sigreturn(),
        nr::RT_SIGPENDING => signal::sys_rt_sigpending(t, a[0], a[1] as usize),
        nr::RT_SIGSUSPEND => signal::sys_rt_sigsuspend(t, a[0], a[1] as usize),
        nr::SIGALTSTACK => signal::sys_sigaltstack(t, a[0], a[1]),
        nr::KILL => signal::sys_kill(t, a[0] as i32, a[1] as i32),
        nr::TKILL => signal::sys_tgkill(t, -1, a[0] as i32, a[1] as i32),
        nr::TGKILL => signal::sys_tgkill(t, a[0] as i32, a[1] as i32, a[2] as i32),
        nr::PAUSE => signal::sys_pause(t),
        nr::RT_SIGTIMEDWAIT => signal::sys_rt_sigtimedwait(t, a[0], a[1], a[2], a[3] as usize),
        nr::RT_SIGQUEUEINFO => signal::sys_rt_sigqueueinfo(t, a[0] as i32, a[1] as i32, a[2]),
        nr::RT_TGSIGQUEUEINFO => signal::sys_rt_tgsigqueueinfo(t, a[0] as i32, a[1] as i32, a[2] as i32, a[3]),
        nr::SIGNALFD => fs::sys_signalfd4(t, fd(0), a[1], a[2] as usize, 0),
        nr::SIGNALFD4 => fs::sys_signalfd4(t, fd(0), a[1], a[2] as usize, a[3] as u32),
        nr::TIMERFD_CREATE => fs::sys_timerfd_create(t, a[0] as i32, a[1] as u32),
        nr::TIMERFD_SETTIME => fs::sys_timerfd_settime(t, fd(0), a[1] as u32, a[2], a[3]),
        nr::TIMERFD_GETTIME => fs::sys_timerfd_gettime(t, fd(0), a[1]),
        // Time.
        nr::CLOCK_GETTIME => time::sys_clock_gettime(t, a[0] as i32, a[1]),
        nr::CLOCK_GETRES => time::sys_clock_getres(t, a[0] as i32, a[1]),
        nr::GETTIMEOFDAY => time::sys_gettimeofday(t, a[0]),
        nr::TIME => time::sys_time(t, a[0]),
        nr::NANOSLEEP => time::sys_nanosleep(t, a[0], a[1]),
        nr::SETITIMER => time::sys_setitimer(t, a[0] as i32, a[1], a[2]),
        nr::GETITIMER => time::sys_getitimer(t, a[0] as i32, a[1]),
        nr::ALARM => time::sys_alarm(t, a[0] as u32),
        nr::TIMER_CREATE => time::sys_timer_create(t, a[0] as i32, a[1], a[2]),
        nr::TIMER_SETTIME => time::sys_timer_settime(t, a[0] as i32, a[1] as u32, a[2], a[3]),
        nr::TIMER_GETTIME => time::sys_timer_gettime(t, a[0] as i32, a[1]),
        nr::TIMER_GETOVERRUN => time::sys_timer_getoverrun(t, a[0] as i32),
        nr::TIMER_DELETE => time::sys_timer_delete(t, a[0] as i32),
        nr::CLOSE_RANGE => fs::sys_close_range(t, a[0] as u32, a[1] as u32, a[2] as u32),
        nr::CLOCK_NANOSLEEP => time::sys_clock_nanosleep(t, a[0] as i32, a[1] as u32, a[2], a[3]),
        _ => {
            t.k.note_unimplemented(n);
            Err(Errno::ENOSYS)
        }
    }
}

/// A call of a vsyscall entry (gettimeofday, time, getcpu), with its
/// arguments in the registers as for the system call, under the app's
/// seccomp policy as Linux's emulation is.
pub fn vsyscall(t: &mut CurrentTask, nr: u64) -> SysResult<u64> {
    let a: Args = [t.regs.rdi, t.regs.rsi, t.regs.rdx, 0, 0, 0];
    match crate::kernel::app_seccomp::enforce(t, nr, &a) {
        Some(r) => r,
        None => dispatch(t, nr, a),
    }
}

/// Executes the first program of the sandbox (init's image).
pub fn exec_initial(t: &mut CurrentTask, path: &[u8], argv: Vec<Vec<u8>>, envp: Vec<Vec<u8>>) -> SysResult<()> {
    process::exec(t, path, argv, envp)
}
