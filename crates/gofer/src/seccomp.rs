//! The Gofer's seccomp allow-list, as data: each system call the serve loop
//! makes, when it may make it, and why. Any other call kills the Gofer.
//!
//! The list is compiled into a BPF program by seccompiler at start-up and
//! installed as the jail's last step (see `jail::enter`). To find what a
//! change needs, run the tests under `strace -f` or with the mismatch action
//! set to `Log` (the kernel then logs `type=1326` lines with the number).

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule, TargetArch,
};

/// When an allowed system call may be made.
#[derive(Debug, Clone, Copy)]
pub enum When {
    /// With any arguments.
    Always,
    /// Only if argument `arg` has none of the bits of `mask` set.
    Without { arg: u8, mask: u64 },
    /// Only if argument `arg` is one of `values`.
    OneOf { arg: u8, values: &'static [u64] },
    /// Only if argument `arg` is the Gofer's own process id and argument
    /// `signal_arg` is `signal`.
    OwnSignal { arg: u8, signal_arg: u8, signal: u64 },
}

/// One entry of the allow-list.
#[derive(Debug)]
pub struct Allow {
    /// The x86-64 system call number.
    pub syscall: i64,
    /// Its `libc` constant (`SYS_read`), for people and test messages.
    pub name: &'static str,
    /// The arguments it is allowed with.
    pub when: When,
    /// Why the Gofer needs it.
    pub why: &'static str,
}

/// `allow!(SYS_read, "why")` or `allow!(SYS_mmap if When::Without { .. }, "why")`,
/// naming the call by its `libc` constant.
macro_rules! allow {
    ($name:ident, $why:literal) => {
        allow!($name if When::Always, $why)
    };
    ($name:ident if $when:expr, $why:literal) => {
        Allow { syscall: libc::$name, name: stringify!($name), when: $when, why: $why }
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
pub static ALLOW_LIST: &[Allow] = &[
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
    allow!(SYS_fchmodat, "Tsetattr of the mode"),
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
pub fn filter(own_pid: u32) -> Result<BpfProgram, seccompiler::Error> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for allow in ALLOW_LIST {
        let entry = rules.entry(allow.syscall).or_default();
        match allow.when {
            // An empty rule list matches the call with any arguments.
            When::Always => {}
            When::Without { arg, mask } => {
                entry.push(SeccompRule::new(vec![condition(arg, SeccompCmpOp::MaskedEq(mask), 0)?])?);
            }
            When::OneOf { arg, values } => {
                for &value in values {
                    entry.push(SeccompRule::new(vec![condition(arg, SeccompCmpOp::Eq, value)?])?);
                }
            }
            When::OwnSignal { arg, signal_arg, signal } => {
                entry.push(SeccompRule::new(vec![
                    condition(arg, SeccompCmpOp::Eq, u64::from(own_pid))?,
                    condition(signal_arg, SeccompCmpOp::Eq, signal)?,
                ])?);
            }
        }
    }
    let filter = SeccompFilter::new(rules, SeccompAction::KillProcess, SeccompAction::Allow, TargetArch::x86_64)?;
    Ok(filter.try_into()?)
}

/// Arguments are compared as 32-bit values: every one compared here (an
/// fcntl command, mmap protection bits, a pid, a signal) is an `int`.
fn condition(arg: u8, op: SeccompCmpOp, value: u64) -> Result<SeccompCondition, seccompiler::Error> {
    Ok(SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, value)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_has_a_reason_and_appears_once() {
        let mut seen = std::collections::HashSet::new();
        for allow in ALLOW_LIST {
            assert!(!allow.why.trim().is_empty(), "{} has no reason", allow.name);
            assert!(seen.insert(allow.syscall), "{} is listed twice", allow.name);
        }
    }

    #[test]
    fn the_list_compiles() {
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
        for allow in ALLOW_LIST {
            assert!(!forbidden.contains(&allow.syscall), "{} must not be allowed", allow.name);
        }
    }
}
