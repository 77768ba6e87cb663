//! The Gofer's seccomp allow-list, as data: each system call the serve loop
//! makes, when it may make it, and why. Any other call kills the Gofer.
//!
//! The list is compiled by `host::seccomp` (the same compiler as the
//! Sentry's) at start-up and installed as the jail's last step (see
//! `jail::enter`). To find what a change needs, run the tests under
//! `strace -f` or with the mismatch action set to `Log` (the kernel then
//! logs `type=1326` lines with the number).

use host::seccomp::{BpfProgram, CompileError, Mismatch, Rule, When};

/// `allow!(SYS_read, "why")` or `allow!(SYS_mmap if When::Without { .. }, "why")`,
/// naming the call by its `libc` constant.
macro_rules! allow {
    ($name:ident, $why:literal) => {
        allow!($name if When::Always, $why)
    };
    ($name:ident if $when:expr, $why:literal) => {
        Rule { nr: libc::$name as u64, when: $when, why: $why }
    };
}

const PROT_EXEC: u64 = libc::PROT_EXEC as u64;
const F_GETFD: u64 = libc::F_GETFD as u64;
const F_GETFL: u64 = libc::F_GETFL as u64;
const F_SETFL: u64 = libc::F_SETFL as u64;
const FUTEX_WAIT_PRIVATE: u64 = (libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG) as u64;
const FUTEX_WAKE_PRIVATE: u64 = (libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG) as u64;
const FUTEX_WAIT_BITSET_PRIVATE: u64 = (libc::FUTEX_WAIT_BITSET | libc::FUTEX_PRIVATE_FLAG) as u64;

/// Every system call the jailed Gofer may make.
pub static ALLOW_LIST: &[Rule] = &[
    // The 9P transport: a connected socketpair, never a new socket.
    allow!(SYS_recvfrom, "9P requests: std reads a UnixStream with recv(2)"),
    allow!(SYS_sendto, "9P replies: std writes a UnixStream with send(2), for MSG_NOSIGNAL"),
    allow!(SYS_sendmsg, "Rdonate replies carry the donated fd as SCM_RIGHTS; the 9P socket is the only socket"),
    allow!(SYS_write, "the one line a failing Gofer prints on stderr"),
    // Walking and looking.
    allow!(SYS_openat2, "every host open: one confined name at a time (RESOLVE_BENEATH and friends)"),
    allow!(SYS_statx, "attributes of walked files (Tgetattr, qids, same-inode checks)"),
    allow!(SYS_getdents64, "Treaddir"),
    allow!(SYS_lseek, "Treaddir seeks to the client's offset cookie"),
    allow!(SYS_readlinkat, "Treadlink, on the symlink's own O_PATH fd"),
    allow!(SYS_fstatfs, "Tstatfs"),
    allow!(SYS_close, "clunked fids and reopened files"),
    allow!(SYS_fcntl if When::OneOf { arg: 1, values: &[F_GETFL, F_SETFL, F_GETFD] },
        "GETFL/SETFL clear the O_NONBLOCK a file is reopened with; GETFD is std checking an fd before close"),
    // File I/O.
    allow!(SYS_pread64, "Tread"),
    allow!(SYS_pwrite64, "Twrite"),
    allow!(SYS_ftruncate, "Tsetattr of the size"),
    allow!(SYS_fsync, "Tfsync"),
    allow!(SYS_fdatasync, "Tfsync with datasync"),
    // Changes to the tree (refused with EROFS before the call when read-only).
    allow!(SYS_mkdirat, "Tmkdir"),
    allow!(SYS_mknodat, "Tmknod (FIFOs only)"),
    allow!(SYS_symlinkat, "Tsymlink"),
    allow!(SYS_linkat, "Tlink"),
    allow!(SYS_unlinkat, "Tunlinkat and Tremove"),
    allow!(SYS_renameat, "Trenameat and Trename"),
    allow!(SYS_fchmodat2, "Tsetattr of the mode, on the fid's own O_PATH fd (AT_EMPTY_PATH), never by name"),
    allow!(SYS_fchownat, "Tsetattr of the owner"),
    allow!(SYS_utimensat, "Tsetattr of the times"),
    // Memory, for the allocator; nothing is ever mapped executable.
    allow!(SYS_brk, "the allocator's heap"),
    allow!(SYS_mmap if When::Without { arg: 2, mask: PROT_EXEC }, "the allocator's large blocks, never executable"),
    allow!(SYS_munmap, "freeing large blocks"),
    allow!(SYS_mremap, "growing large blocks"),
    // The runtime.
    allow!(SYS_futex if When::OneOf { arg: 1, values: &[FUTEX_WAIT_PRIVATE, FUTEX_WAKE_PRIVATE, FUTEX_WAIT_BITSET_PRIVATE] },
        "std's Once and locks, e.g. in reporting a panic; process-private futexes only"),
    allow!(SYS_getrandom, "the seed of std's HashMap (the fid table)"),
    allow!(SYS_rt_sigprocmask, "signal masking around abort and exit"),
    allow!(SYS_rt_sigreturn, "returning from std's stack-overflow handler"),
    allow!(SYS_sigaltstack, "std removes its signal stack at exit"),
    allow!(SYS_getpid, "abort() names the process it signals"),
    allow!(SYS_gettid, "abort() names the thread it signals"),
    allow!(SYS_tgkill if When::OwnSignal { arg: 0, signal_arg: 2, signal: libc::SIGABRT as u64 },
        "abort() raising SIGABRT in the Gofer itself, so a crash shows as one"),
    allow!(SYS_exit_group, "leaving when the Sentry goes"),
];

/// Compiles [`ALLOW_LIST`] into a BPF program that kills the process on any
/// other call; `own_pid` is the Gofer's process id (see [`When::OwnSignal`]).
pub fn filter(own_pid: u32) -> Result<BpfProgram, CompileError> {
    host::seccomp::compile(ALLOW_LIST, Mismatch::KillProcess, own_pid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use host::seccomp::{probe, to_bytes, Ending};

    fn name(rule: &Rule) -> &'static str {
        abi::sysno::name(rule.nr).unwrap_or("an unknown call")
    }

    #[test]
    fn every_rule_has_a_reason_and_the_list_compiles() {
        for rule in ALLOW_LIST {
            assert!(!rule.why.trim().is_empty(), "{} has no reason", name(rule));
        }
        // Compiling also refuses a call listed twice.
        let program = filter(std::process::id()).expect("the allow-list must compile");
        assert!(!program.is_empty());
    }

    #[test]
    fn nothing_that_escapes_is_allowed() {
        let forbidden = [
            libc::SYS_socket,
            libc::SYS_connect,
            libc::SYS_execve,
            libc::SYS_execveat,
            libc::SYS_ptrace,
            libc::SYS_mount,
            libc::SYS_umount2,
            libc::SYS_unshare,
            libc::SYS_setns,
            libc::SYS_clone,
            libc::SYS_clone3,
            libc::SYS_fork,
            libc::SYS_kill,
            libc::SYS_open_by_handle_at,
            libc::SYS_ioctl,
            libc::SYS_prctl,
            libc::SYS_seccomp,
            libc::SYS_bpf,
            libc::SYS_chroot,
            libc::SYS_pivot_root,
        ];
        for rule in ALLOW_LIST {
            assert!(!forbidden.contains(&(rule.nr as i64)), "{} must not be allowed", name(rule));
        }
    }

    #[test]
    fn the_filter_kills_on_forbidden_calls_and_conditions() {
        let program = to_bytes(&filter(std::process::id()).unwrap());
        let killed = Ending::Killed(libc::SIGSYS);
        let call = |nr: i64, args: [u64; 6]| probe(&program, nr as u64, args).expect("the probe child runs");
        assert_eq!(call(libc::SYS_socket, [libc::AF_INET as u64, libc::SOCK_DGRAM as u64, 0, 0, 0, 0]), killed);
        assert_eq!(call(libc::SYS_ioctl, [0, libc::TIOCSTI, 0, 0, 0, 0]), killed);
        let (rx, anon) = ((libc::PROT_READ | libc::PROT_EXEC) as u64, (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u64);
        assert_eq!(call(libc::SYS_mmap, [0, 4096, rx, anon, u64::MAX, 0]), killed);
        assert_eq!(call(libc::SYS_fcntl, [u64::MAX, libc::F_SETOWN as u64, 0, 0, 0, 0]), killed);
        // The probe child is not the Gofer, whose pid OwnSignal names.
        assert_eq!(call(libc::SYS_tgkill, [i32::MAX as u64, i32::MAX as u64, libc::SIGABRT as u64, 0, 0, 0]), killed);
        assert_eq!(call(libc::SYS_fcntl, [u64::MAX, libc::F_GETFL as u64, 0, 0, 0, 0]), Ending::Failed(libc::EBADF));
    }
}
