//! The Sentry's own seccomp allow-list, as data: every host system call the
//! Sentry makes once the sandbox is running, on which arguments, and why.
//! Boot installs it on all Sentry threads before the first app instruction
//! runs; any other call kills the Sentry (layer 5 of DESIGN.md §1: a
//! compromised Sentry gains little). App system calls never reach this
//! filter: they trap to the Sentry from the stubs, which have a filter of
//! their own.
//!
//! To grow the list, run with `MOAT_SECCOMP=log` in moat's environment: the
//! filter then lets every call through and the kernel logs each one the list
//! does not allow (`dmesg | grep 'code=0x7ffc0000'`, with the syscall number
//! but not the arguments: for a call listed with a condition, find the
//! argument with `strace` or the `syscalls` trace events).

use host::allow;
use host::seccomp::{Mismatch, Rule, When};

use crate::platform::Platform;

/// The Linux x86-64 values the conditions compare with, from the kernel's
/// uapi headers (the Sentry does not link the `libc` crate).
mod linux {
    pub const PROT_EXEC: u64 = 0x4;
    /// The flags glibc 2.36's pthread_create passes (nptl/pthread_create.c):
    /// CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
    /// CLONE_SYSVSEM | CLONE_SETTLS | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID,
    /// and no exit signal.
    pub const THREAD_CLONE_FLAGS: u64 = 0x0000_0100
        | 0x0000_0200
        | 0x0000_0400
        | 0x0000_0800
        | 0x0001_0000
        | 0x0004_0000
        | 0x0008_0000
        | 0x0010_0000
        | 0x0020_0000;
    pub const TCGETS: u64 = 0x5401;
    pub const TCSETS: u64 = 0x5402;
    pub const TCSETSW: u64 = 0x5403;
    pub const TCSETSF: u64 = 0x5404;
    pub const TIOCGWINSZ: u64 = 0x5413;
    pub const TIOCSWINSZ: u64 = 0x5414;
    pub const F_GETFD: u64 = 1;
    pub const F_SETFD: u64 = 2;
    pub const F_GETFL: u64 = 3;
    pub const F_SETFL: u64 = 4;
    pub const F_DUPFD_CLOEXEC: u64 = 1030;
    pub const PR_SET_NAME: u64 = 15;
    pub const RUSAGE_SELF: u64 = 0;
    pub const AT_EMPTY_PATH: u64 = 0x1000;
    pub const ENOSYS: u16 = 38;
}

use linux::*;

/// Every host system call the running Sentry may make, whatever its
/// platform (whose own calls [`Platform::seccomp_rules`] adds).
pub static ALLOW_LIST: &[Rule] = &[
    allow!(GETTID, "a Sentry thread names itself to the tracee it attaches"),
    allow!(GETPID, "abort() and signal plumbing name the process"),
    // Memory: the memory file and the Sentry's own heap, never executable.
    allow!(MMAP if When::Without { arg: 2, mask: PROT_EXEC },
        "the allocator, thread stacks and views of the memory file; never PROT_EXEC, so no code the \
         Sentry did not start with ever runs in it"),
    allow!(MUNMAP, "the allocator"),
    allow!(MPROTECT if When::Without { arg: 2, mask: PROT_EXEC },
        "thread stacks' guard pages; never PROT_EXEC (see mmap)"),
    allow!(MREMAP, "the allocator growing large blocks (a move keeps the protection)"),
    allow!(MADVISE, "the allocator returning memory; memory-file pages returned to the host"),
    allow!(BRK, "the allocator"),
    allow!(FALLOCATE, "punching holes in the memory file when the app frees memory"),
    allow!(LSEEK, "SEEK_DATA over the memory file when forking, and host file offsets"),
    allow!(
        COPY_FILE_RANGE,
        "copying app memory within the memory file when forking, and between tmpfs data and app \
         memory (pages never mapped into the Sentry); the fds cannot be limited to it, but the Sentry may \
         read and write its other fds anyway"
    ),
    allow!(
        SPLICE,
        "file reads and writes between donated host files and app memory, through the memory file's own \
         pipes (copy_file_range cannot cross filesystems); moves bytes only between fds the Sentry may \
         read and write anyway"
    ),
    // Threads and waiting.
    allow!(CLONE if When::OneOf { arg: 0, values: &[THREAD_CLONE_FLAGS] },
        "a Sentry thread per app thread, with exactly glibc's pthread_create flags: no fork, no new \
         namespace (CLONE_NEWUSER and friends), no shared-nothing process"),
    allow!(CLONE3 if When::Refused { errno: ENOSYS },
        "glibc tries clone3 first and on ENOSYS falls back to clone, whose flags are an argument the \
         filter can see (clone3's are in memory, where it cannot look)"),
    allow!(FUTEX, "locks, condition variables and stub hand-offs (shared futexes in the memory file)"),
    allow!(SET_ROBUST_LIST, "every new thread (glibc)"),
    allow!(RSEQ, "every new thread (glibc registers rseq)"),
    allow!(SCHED_YIELD, "spinning on a stub hand-off"),
    allow!(SCHED_GETAFFINITY, "the CPU count /proc and /sys report"),
    allow!(RT_SIGPROCMASK, "threads block signals around blocking waits"),
    allow!(RT_SIGACTION, "std's stack-overflow handler on new threads"),
    allow!(RT_SIGRETURN, "returning from a signal handler"),
    allow!(SIGALTSTACK, "std's stack-overflow handler on new threads"),
    allow!(PRCTL if When::OneOf { arg: 0, values: &[PR_SET_NAME] },
        "naming threads (std's thread::Builder::name, from the thread itself); PR_SET_PDEATHSIG and \
         no_new_privs are set before the filter"),
    allow!(CLOCK_NANOSLEEP, "std's thread::sleep (glibc's nanosleep is clock_nanosleep)"),
    allow!(CLOCK_GETTIME, "the sandbox's clocks"),
    allow!(GETRUSAGE if When::OneOf { arg: 0, values: &[RUSAGE_SELF] },
        "the Sentry's own peak memory for `moat do --stats`; never another process's"),
    allow!(GETRANDOM, "getrandom(2) and /dev/urandom for the app; HashMap seeds"),
    allow!(EXIT, "a Sentry thread ends with its app thread"),
    allow!(EXIT_GROUP, "the sandbox ends"),
    // I/O: stdio, Gofer sockets, donated host files.
    allow!(READ, "moat's stdin and the Gofer socket"),
    allow!(WRITE, "moat's stdout and stderr, logs, the Gofer socket"),
    allow!(READV, "std's buffered readers"),
    allow!(WRITEV, "std's buffered writers and logs"),
    allow!(PREAD64, "reads of app memory (the memory file) and of donated host files"),
    allow!(PWRITE64, "writes to app memory (the memory file) and to donated host files"),
    allow!(POLL, "waiting for moat's stdin"),
    allow!(PPOLL, "waiting for moat's stdin"),
    allow!(IOCTL if When::OneOf { arg: 1, values: &[TCGETS, TCSETS, TCSETSW, TCSETSF, TIOCGWINSZ, TIOCSWINSZ] },
        "the terminal requests host::sys::ioctl_buf makes on moat's own stdio for the app (TCGETS also \
         tells a tty); never TIOCSTI (typing into the host's terminal), TIOCLINUX or TIOCSPGRP \
         (the app's process groups live in the Sentry)"),
    allow!(FCNTL if When::OneOf { arg: 1, values: &[F_GETFD, F_SETFD, F_GETFL, F_SETFL, F_DUPFD_CLOEXEC] },
        "fd flags of moat's stdio and donated fds, and std's try_clone; no locks, leases or owners"),
    allow!(FSTAT, "attributes of donated host files and stdio"),
    allow!(STATX if When::Any(&[
        When::With { arg: 2, mask: AT_EMPTY_PATH },
        When::All(&[When::Null { arg: 1 }, When::OneOf { arg: 2, values: &[0] }]),
    ]),
        "attributes of donated host files (std's File::metadata: statx(fd, \"\", AT_EMPTY_PATH)), and \
         std's statx(0, NULL, 0) probe after a first failure; the path is a pointer the filter cannot \
         read, so a compromised Sentry may still stat (never open) a host path"),
    allow!(NEWFSTATAT if When::With { arg: 3, mask: AT_EMPTY_PATH },
        "glibc's fstat is fstatat(fd, \"\", AT_EMPTY_PATH); the path is not checkable (see statx)"),
    allow!(CLOSE, "donated fds and clunked files"),
    allow!(SENDTO, "9P requests; no socket(2) or connect(2), so only on sockets the Sentry was handed"),
    allow!(RECVFROM, "9P replies"),
    allow!(RECVMSG, "9P replies carrying donated fds"),
    allow!(SENDMSG, "9P requests"),
    // The runtime's control socket, served from the sandbox process (`moat boot`).
    allow!(ACCEPT4, "accepting start/kill/exec/ps requests on the already-bound control socket"),
];

/// The whole list for a Sentry on `platform`: the calls every platform
/// needs and the platform's own.
pub fn allow_list(platform: &dyn Platform) -> Vec<Rule> {
    ALLOW_LIST.iter().chain(platform.seccomp_rules()).copied().collect()
}

/// What the filter does with a call not listed: kill, unless moat's
/// environment says `MOAT_SECCOMP=log` (for growing the list), which this
/// announces on stderr, since the Sentry then runs unconfined by its filter.
pub fn mismatch() -> Mismatch {
    match std::env::var("MOAT_SECCOMP").as_deref() {
        Ok("log") => {
            crate::kernel::log_line(format_args!(
                "moat: WARNING: MOAT_SECCOMP=log: the Sentry's seccomp filter only logs host calls outside \
                 its allow-list and lets them through; this sandbox is NOT confined by it"
            ));
            Mismatch::Log
        }
        _ => Mismatch::KillProcess,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use abi::sysno::*;
    use host::seccomp::{probe, Ending};

    const SIGSYS: i32 = 31;
    /// Above any pid_max: a call that names it and gets through reaches no one.
    const NO_SUCH_PID: u64 = i32::MAX as u64;

    use crate::platform::ptrace::host_abi::*;

    /// The list a Sentry on the ptrace platform installs.
    fn full_list() -> Vec<Rule> {
        ALLOW_LIST.iter().chain(crate::platform::ptrace::SECCOMP_RULES).copied().collect()
    }

    fn program() -> Vec<u8> {
        host::seccomp::compile_allow_list(&full_list())
    }

    fn ending(nr: u64, args: [u64; 6]) -> Ending {
        probe(&program(), nr, args).expect("the probe child runs")
    }

    #[test]
    fn every_rule_has_a_reason_and_the_list_compiles() {
        for rule in &full_list() {
            assert!(!rule.why.trim().is_empty(), "syscall {:?} has no reason", abi::sysno::name(rule.nr));
        }
        // Compiling also refuses a call listed twice.
        host::seccomp::compile(&full_list(), Mismatch::KillProcess, std::process::id()).expect("the list compiles");
        host::seccomp::compile(&full_list(), Mismatch::Log, std::process::id()).expect("the list compiles");
    }

    #[test]
    fn nothing_that_escapes_is_listed() {
        // The Sentry never opens a host path, execs, makes sockets, mounts,
        // changes namespaces or privileges, or loads a filter or a program.
        for forbidden in [
            OPEN,
            OPENAT,
            OPENAT2,
            EXECVE,
            EXECVEAT,
            SOCKET,
            CONNECT,
            BIND,
            MOUNT,
            UMOUNT2,
            UNSHARE,
            SETNS,
            CHROOT,
            PIVOT_ROOT,
            FORK,
            VFORK,
            SETUID,
            CAPSET,
            SECCOMP,
            BPF,
            PERSONALITY,
            PKEY_MPROTECT,
            PROCESS_VM_WRITEV,
            FTRUNCATE,
            WAITID,
        ] {
            assert!(ALLOW_LIST.iter().all(|r| r.nr != forbidden), "syscall {forbidden} must not be allowed");
        }
    }

    #[test]
    fn forbidden_calls_kill_the_sentry() {
        const CLONE_NEWUSER: u64 = 0x1000_0000;
        const SIGCHLD: u64 = 17;
        const TIOCSTI: u64 = 0x5412;
        const TIOCLINUX: u64 = 0x541c;
        const TIOCSPGRP: u64 = 0x5410;
        const PR_SET_DUMPABLE: u64 = 4;
        const PTRACE_ATTACH: u64 = 16;
        const PTRACE_POKEDATA: u64 = 5;
        const F_SETOWN: u64 = 8;
        const STDIN: u64 = 0;
        let anon_private = 0x22;
        let killed = Ending::Killed(SIGSYS);
        // Typing into the host terminal (and its kin), on any fd.
        assert_eq!(ending(IOCTL, [STDIN, TIOCSTI, 0, 0, 0, 0]), killed);
        assert_eq!(ending(IOCTL, [u64::MAX, TIOCSTI, 0, 0, 0, 0]), killed);
        assert_eq!(ending(IOCTL, [u64::MAX, TIOCLINUX, 0, 0, 0, 0]), killed);
        assert_eq!(ending(IOCTL, [u64::MAX, TIOCSPGRP, 0, 0, 0, 0]), killed);
        // Executable memory.
        assert_eq!(ending(MMAP, [0, 4096, 0x1 | PROT_EXEC, anon_private, u64::MAX, 0]), killed);
        assert_eq!(ending(MMAP, [0, 4096, 0x7, anon_private, u64::MAX, 0]), killed);
        assert_eq!(ending(MPROTECT, [0, 4096, PROT_EXEC, 0, 0, 0]), killed);
        // New processes and namespaces.
        assert_eq!(ending(CLONE, [THREAD_CLONE_FLAGS | CLONE_NEWUSER, 0, 0, 0, 0, 0]), killed);
        assert_eq!(ending(CLONE, [CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0, 0]), killed);
        assert_eq!(ending(CLONE, [SIGCHLD, 0, 0, 0, 0, 0]), killed);
        assert_eq!(ending(UNSHARE, [CLONE_NEWUSER, 0, 0, 0, 0, 0]), killed);
        assert_eq!(ending(SETNS, [u64::MAX, 0, 0, 0, 0, 0]), killed);
        // Signals to groups; other signals (pid 0: the probe's own group).
        assert_eq!(ending(KILL, [0, SIGKILL, 0, 0, 0, 0]), killed);
        assert_eq!(ending(KILL, [NO_SUCH_PID, 15, 0, 0, 0, 0]), killed);
        // Other prctls, ptrace requests and fcntl commands.
        assert_eq!(ending(PRCTL, [PR_SET_DUMPABLE, 1, 0, 0, 0, 0]), killed);
        assert_eq!(ending(PTRACE, [PTRACE_ATTACH, NO_SUCH_PID, 0, 0, 0, 0]), killed);
        assert_eq!(ending(PTRACE, [PTRACE_POKEDATA, NO_SUCH_PID, 0, 0, 0, 0]), killed);
        assert_eq!(ending(FCNTL, [u64::MAX, F_SETOWN, 0, 0, 0, 0]), killed);
        // Files by path, sockets, programs, mounts.
        assert_eq!(ending(NEWFSTATAT, [u64::MAX, 0, 0, 0, 0, 0]), killed);
        assert_eq!(ending(STATX, [u64::MAX, 1, 0, 0, 0, 0]), killed);
        // A path whose address merely ends in 32 zero bits is not NULL.
        assert_eq!(ending(STATX, [u64::MAX, 1 << 32, 0, 0, 0, 0]), killed);
        assert_eq!(ending(OPENAT, [u64::MAX, 0, 0, 0, 0, 0]), killed);
        assert_eq!(ending(SOCKET, [2, 2, 0, 0, 0, 0]), killed);
        assert_eq!(ending(EXECVE, [0, 0, 0, 0, 0, 0]), killed);
        assert_eq!(ending(MOUNT, [0, 0, 0, 0, 0, 0]), killed);
    }

    /// Set in the copy of this test binary that `threads_start_under_the_filter` runs.
    const FILTERED_CHILD: &str = "MOAT_TEST_SENTRY_FILTERED_CHILD";

    /// std's threads (glibc's clone3, refused, then clone with the thread
    /// flags, then PR_SET_NAME) under the whole filter, in a copy of this
    /// test binary: the filter is for every thread of a process, and the
    /// test harness has several.
    #[test]
    fn threads_start_under_the_filter() {
        if std::env::var_os(FILTERED_CHILD).is_some() {
            host::seccomp::install_on_all_threads(&program()).expect("the filter installs");
            let thread = std::thread::Builder::new().name("filtered".to_owned()).spawn(|| 6 * 7);
            assert_eq!(thread.expect("a thread starts").join().expect("the thread ends"), 42);
            return;
        }
        let me = std::env::current_exe().expect("the test binary's path");
        // This test's name as the harness knows it: the module path without the crate.
        let name = format!("{}::threads_start_under_the_filter", module_path!().split_once("::").unwrap().1);
        let output = std::process::Command::new(me)
            .args(["--exact", &name, "--test-threads=1"])
            .env(FILTERED_CHILD, "1")
            .output()
            .expect("the test binary runs again");
        let signal = std::os::unix::process::ExitStatusExt::signal(&output.status);
        assert!(
            output.status.success(),
            "the filtered copy ended with {:?} (signal {signal:?}; 31 is SIGSYS)\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(String::from_utf8_lossy(&output.stdout).contains("1 passed"), "the filtered copy ran no test");
    }

    #[test]
    fn the_calls_the_sentry_makes_survive() {
        const ESRCH: i32 = 3;
        const EBADF: i32 = 9;
        const EFAULT: i32 = 14;
        let anon_private = 0x22;
        assert_eq!(ending(GETPID, [0; 6]), Ending::Returned);
        assert_eq!(ending(MMAP, [0, 4096, 0x3, anon_private, u64::MAX, 0]), Ending::Returned);
        assert_eq!(ending(IOCTL, [u64::MAX, TCGETS, 0, 0, 0, 0]), Ending::Failed(EBADF));
        assert_eq!(ending(IOCTL, [u64::MAX, TIOCGWINSZ, 0, 0, 0, 0]), Ending::Failed(EBADF));
        assert_eq!(ending(FCNTL, [u64::MAX, F_GETFL, 0, 0, 0, 0]), Ending::Failed(EBADF));
        assert_eq!(ending(PRCTL, [PR_SET_NAME, 0, 0, 0, 0, 0]), Ending::Failed(EFAULT));
        assert_eq!(ending(KILL, [NO_SUCH_PID, SIGKILL, 0, 0, 0, 0]), Ending::Failed(ESRCH));
        assert_eq!(ending(TGKILL, [NO_SUCH_PID, NO_SUCH_PID, SIGSTOP, 0, 0, 0]), Ending::Failed(ESRCH));
        assert_eq!(ending(PTRACE, [PTRACE_INTERRUPT, NO_SUCH_PID, 0, 0, 0, 0]), Ending::Failed(ESRCH));
        assert_eq!(ending(CLONE3, [0; 6]), Ending::Failed(i32::from(ENOSYS)));
        assert!(matches!(ending(STATX, [u64::MAX, 0, AT_EMPTY_PATH, 0, 0, 0]), Ending::Failed(_)));
        assert_eq!(ending(STATX, [0, 0, 0, 0, 0, 0]), Ending::Failed(EFAULT));
    }
}
