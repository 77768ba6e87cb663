//! The Sentry's own seccomp allow-list, as data: every host system call the
//! Sentry makes once the sandbox is running, and why. Boot installs it on
//! all Sentry threads before the first app instruction runs; any other call
//! kills the Sentry (layer 5 of DESIGN.md §1: a compromised Sentry gains
//! little). App system calls never reach this filter: they trap to the
//! Sentry from the stubs, which have a filter of their own.
//!
//! To grow the list, run with `MOAT_SECCOMP=log` in moat's environment: the
//! filter then allows everything and the kernel logs each call not listed
//! (`dmesg | grep 'code=0x7ffc0000'`, with the syscall number).

use host::seccomp::{Mismatch, Rule};

/// `allow!(READ, "why")`, naming the call by its `abi::sysno` constant.
macro_rules! allow {
    ($name:ident, $why:literal) => {
        Rule { nr: abi::sysno::$name, why: $why }
    };
}

/// Every host system call the running Sentry may make.
pub static ALLOW_LIST: &[Rule] = &[
    // The ptrace platform.
    allow!(PTRACE, "the platform drives stubs: SYSEMU, register and memory access, injected mmaps"),
    allow!(WAIT4, "the platform waits for stub stops and exits"),
    allow!(WAITID, "the platform waits for stub stops and exits"),
    allow!(TGKILL, "interrupting a stub thread or a Sentry thread blocked for an app"),
    allow!(KILL, "killing a stub process when its address space ends"),
    allow!(GETTID, "a Sentry thread names itself to the tracee it attaches"),
    allow!(GETPID, "abort() and signal plumbing name the process"),
    // Memory: the memory file and the Sentry's own heap.
    allow!(MMAP, "the allocator and views of the memory file"),
    allow!(MUNMAP, "the allocator"),
    allow!(MPROTECT, "thread stacks' guard pages"),
    allow!(MREMAP, "the allocator growing large blocks"),
    allow!(MADVISE, "the allocator returning memory; memory-file pages returned to the host"),
    allow!(BRK, "the allocator"),
    allow!(FALLOCATE, "punching holes in the memory file when the app frees memory"),
    allow!(LSEEK, "SEEK_DATA over the memory file when forking, and host file offsets"),
    allow!(FTRUNCATE, "sizing the memory file"),
    // Threads and waiting.
    allow!(CLONE, "a Sentry thread per app thread"),
    allow!(CLONE3, "std creates threads with clone3"),
    allow!(FUTEX, "locks, condition variables and stub hand-offs"),
    allow!(SET_ROBUST_LIST, "every new thread (glibc)"),
    allow!(RSEQ, "every new thread (glibc registers rseq)"),
    allow!(SCHED_YIELD, "spinning on a stub hand-off"),
    allow!(SCHED_GETAFFINITY, "the CPU count /proc and /sys report"),
    allow!(RT_SIGPROCMASK, "threads block signals around blocking waits"),
    allow!(RT_SIGACTION, "std's stack-overflow handler on new threads"),
    allow!(RT_SIGRETURN, "returning from a signal handler"),
    allow!(SIGALTSTACK, "std's stack-overflow handler on new threads"),
    allow!(PRCTL, "naming threads (PR_SET_NAME)"),
    allow!(NANOSLEEP, "sleeps and timers for the app"),
    allow!(CLOCK_NANOSLEEP, "sleeps and timers for the app"),
    allow!(CLOCK_GETTIME, "the sandbox's clocks"),
    allow!(GETRANDOM, "getrandom(2) and /dev/urandom for the app; HashMap seeds"),
    allow!(EXIT, "a Sentry thread ends with its app thread"),
    allow!(EXIT_GROUP, "the sandbox ends"),
    // I/O: stdio, Gofer sockets, donated host files.
    allow!(READ, "moat's stdin and the Gofer socket"),
    allow!(WRITE, "moat's stdout and stderr, logs, the Gofer socket"),
    allow!(READV, "std's buffered readers"),
    allow!(WRITEV, "std's buffered writers and logs"),
    allow!(PREAD64, "reads of donated host files"),
    allow!(PWRITE64, "writes to donated host files"),
    allow!(POLL, "waiting for moat's stdin"),
    allow!(PPOLL, "waiting for moat's stdin"),
    allow!(IOCTL, "terminal requests on moat's own stdio (TCGETS, TIOCGWINSZ, ...)"),
    allow!(FCNTL, "fd flags of moat's stdio"),
    allow!(FSTAT, "attributes of donated host files and stdio"),
    allow!(STATX, "attributes of donated host files and stdio (std)"),
    allow!(NEWFSTATAT, "attributes of donated host files and stdio (glibc fstat)"),
    allow!(CLOSE, "donated fds and clunked files"),
    allow!(SENDTO, "9P requests"),
    allow!(RECVFROM, "9P replies"),
    allow!(RECVMSG, "9P replies carrying donated fds"),
    allow!(SENDMSG, "9P requests"),
    // The runtime's control socket, served from the sandbox process (`moat boot`).
    allow!(ACCEPT4, "accepting start/kill/exec/ps requests on the already-bound control socket"),
];

/// What the filter does with a call not listed: kill, unless moat's
/// environment says `MOAT_SECCOMP=log` (for growing the list).
pub fn mismatch() -> Mismatch {
    match std::env::var("MOAT_SECCOMP").as_deref() {
        Ok("log") => Mismatch::Log,
        _ => Mismatch::KillProcess,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_has_a_reason_and_appears_once() {
        let mut seen = std::collections::HashSet::new();
        for rule in ALLOW_LIST {
            assert!(!rule.why.trim().is_empty(), "syscall {} has no reason", rule.nr);
            assert!(seen.insert(rule.nr), "syscall {} is listed twice", rule.nr);
        }
    }

    #[test]
    fn nothing_that_escapes_is_allowed() {
        use abi::sysno::*;
        // The Sentry never opens a host path, execs, makes sockets or mounts.
        for forbidden in [OPEN, OPENAT, OPENAT2, EXECVE, EXECVEAT, SOCKET, CONNECT, BIND, MOUNT, UNSHARE, SETNS, CHROOT]
        {
            assert!(ALLOW_LIST.iter().all(|r| r.nr != forbidden), "syscall {forbidden} must not be allowed");
        }
    }
}
