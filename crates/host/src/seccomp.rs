//! Seccomp allow-lists as data: each system call a process may make, on
//! which arguments, and why, compiled (by seccompiler) into one BPF program.
//!
//! One implementation serves the Sentry, the Gofer and the stubs. A list is
//! a slice of [`Rule`]s; [`compile`] turns it into a program whose answer to
//! anything not listed is the caller's [`Mismatch`]. [`install_on_all_threads`]
//! installs the program's raw bytes ([`to_bytes`]), the form the stub's own
//! assembly installs from the memory file too. [`probe`] shows what one call
//! does under a program, for tests of a list.

use std::collections::BTreeMap;
use std::io;

pub use seccompiler::BpfProgram;
use seccompiler::{
    sock_filter, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
    TargetArch,
};

/// The call numbers `allow!` names rules by.
pub use abi::sysno;

/// `allow!(READ, "why")` or `allow!(MMAP if When::Without { .. }, "why")`: a
/// [`Rule`] naming the call by its `abi::sysno` constant.
#[macro_export]
macro_rules! allow {
    ($name:ident, $why:literal) => {
        $crate::allow!($name if $crate::seccomp::When::Always, $why)
    };
    ($name:ident if $when:expr, $why:literal) => {
        $crate::seccomp::Rule { nr: $crate::seccomp::sysno::$name, when: $when, why: $why }
    };
}

/// One entry of an allow-list.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// The x86-64 system call number (an `abi::sysno` constant).
    pub nr: u64,
    /// The arguments it is allowed with.
    pub when: When,
    /// One line saying why the process needs it (and, where the condition
    /// cannot say everything, what it leaves open).
    pub why: &'static str,
}

/// When a listed system call may be made.
///
/// Every argument but a [`When::Null`] pointer is compared as its low 32
/// bits, which is all the kernel reads of each one compared in moat's lists
/// (an `int` fd, pid or signal, an `unsigned int` ioctl request or fcntl
/// command, clone's flags, the protection bits of mmap). What a pointer
/// points at cannot be checked: the filter sees only the address.
#[derive(Debug, Clone, Copy)]
pub enum When {
    /// With any arguments.
    Always,
    /// Only if argument `arg` has none of the bits of `mask` set.
    Without { arg: u8, mask: u64 },
    /// Only if argument `arg` has every bit of `mask` set.
    With { arg: u8, mask: u64 },
    /// Only if argument `arg` is one of `values`.
    OneOf { arg: u8, values: &'static [u64] },
    /// Only if argument `arg`, a pointer, is NULL (compared in full, all
    /// 64 bits).
    Null { arg: u8 },
    /// Only if argument `arg`, a pid, names one process: 1 ..= `i32::MAX`,
    /// never a process group (negative), the caller's group (0) or every
    /// process the caller may signal (-1).
    OnePid { arg: u8 },
    /// Only if argument `arg` is the compiling process's own id and
    /// argument `signal_arg` is `signal`.
    OwnSignal { arg: u8, signal_arg: u8, signal: u64 },
    /// Only if every one of these holds.
    All(&'static [When]),
    /// Only if any one of these holds.
    Any(&'static [When]),
    /// Never: the call fails with `errno` before it reaches the kernel, with
    /// any arguments, whatever the program does with calls not listed.
    Refused { errno: u16 },
}

/// What a program does with a system call its list does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mismatch {
    /// Kill the whole process (the only choice in production).
    KillProcess,
    /// Allow it, and have the kernel log it (audit `type=1326`, code
    /// `0x7ffc0000`, with the syscall number): how a list is grown. Calls
    /// outside the list are then *not* stopped.
    Log,
}

/// Why a list does not compile.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// Two rules name the same call; one rule must say everything.
    #[error("system call {0} has more than one rule")]
    Twice(String),
    /// A condition the kernel cannot evaluate (an argument past the sixth,
    /// `OneOf` without values, a refusal inside `All` or `Any`).
    #[error("the rule for system call {name} cannot be compiled: {reason}")]
    Malformed { name: String, reason: String },
    /// More refused calls than the refusal prefix's 8-bit jumps can skip.
    #[error("{0} refused system calls; at most {MAX_REFUSED} fit")]
    TooManyRefusals(usize),
    /// seccompiler refused the list (too long, for one).
    #[error("seccompiler: {0}")]
    Seccompiler(#[from] seccompiler::BackendError),
}

/// The name of call `nr`, for messages.
fn name(nr: u64) -> String {
    abi::sysno::name(nr).map_or_else(|| format!("#{nr}"), str::to_owned)
}

/// Compiles `rules` into a BPF program for x86-64: the wrong architecture
/// kills the process, a refused call fails with its errno, an allowed one
/// goes through, and any other (x32 numbers among them) meets `mismatch`.
/// `own_pid` is the id of the process that will install the program (see
/// [`When::OwnSignal`]).
pub fn compile(rules: &[Rule], mismatch: Mismatch, own_pid: u32) -> Result<BpfProgram, CompileError> {
    let mut allowed: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    let mut refused: Vec<(u32, u16)> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for rule in rules {
        if !seen.insert(rule.nr) {
            return Err(CompileError::Twice(name(rule.nr)));
        }
        let malformed = |reason: &str| CompileError::Malformed { name: name(rule.nr), reason: reason.to_owned() };
        let nr = u32::try_from(rule.nr).map_err(|_| malformed("not a system call number"))?;
        if let When::Refused { errno } = rule.when {
            refused.push((nr, errno));
            continue;
        }
        let alternatives = alternatives(&rule.when, own_pid).map_err(malformed)?;
        // A rule without conditions matches the call whatever its arguments;
        // seccompiler says that with an empty rule list.
        let chain = if alternatives.iter().any(Vec::is_empty) {
            Vec::new()
        } else {
            alternatives.into_iter().map(SeccompRule::new).collect::<Result<_, _>>()?
        };
        allowed.insert(i64::from(nr), chain);
    }
    if refused.len() > MAX_REFUSED {
        return Err(CompileError::TooManyRefusals(refused.len()));
    }
    let otherwise = match mismatch {
        Mismatch::KillProcess => SeccompAction::KillProcess,
        Mismatch::Log => SeccompAction::Log,
    };
    let filter = SeccompFilter::new(allowed, otherwise, SeccompAction::Allow, TargetArch::x86_64)?;
    let program: BpfProgram = filter.try_into()?;
    Ok(refusals_before(&refused, program))
}

/// `when` as alternatives (any may hold) of conditions (all must hold).
fn alternatives(when: &When, own_pid: u32) -> Result<Vec<Vec<SeccompCondition>>, &'static str> {
    let one = |arg: u8, op: SeccompCmpOp, value: u64| {
        SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, value).map_err(|_| "no such argument")
    };
    Ok(match *when {
        When::Always => vec![vec![]],
        When::Without { arg, mask } => vec![vec![one(arg, SeccompCmpOp::MaskedEq(mask), 0)?]],
        When::With { arg, mask } => vec![vec![one(arg, SeccompCmpOp::MaskedEq(mask), mask)?]],
        When::OneOf { arg, values } => {
            if values.is_empty() {
                return Err("OneOf without values");
            }
            values.iter().map(|&v| Ok(vec![one(arg, SeccompCmpOp::Eq, v)?])).collect::<Result<_, &str>>()?
        }
        When::Null { arg } => {
            vec![vec![SeccompCondition::new(arg, SeccompCmpArgLen::Qword, SeccompCmpOp::Eq, 0)
                .map_err(|_| "no such argument")?]]
        }
        When::OnePid { arg } => {
            vec![vec![one(arg, SeccompCmpOp::Ge, 1)?, one(arg, SeccompCmpOp::Le, i32::MAX as u64)?]]
        }
        When::OwnSignal { arg, signal_arg, signal } => {
            vec![vec![one(arg, SeccompCmpOp::Eq, u64::from(own_pid))?, one(signal_arg, SeccompCmpOp::Eq, signal)?]]
        }
        When::All(parts) => {
            let mut product = vec![vec![]];
            for part in parts {
                let choices = alternatives(part, own_pid)?;
                product = product
                    .iter()
                    .flat_map(|prefix: &Vec<SeccompCondition>| {
                        choices.iter().map(move |choice| prefix.iter().chain(choice).cloned().collect())
                    })
                    .collect();
            }
            product
        }
        When::Any(parts) => {
            if parts.is_empty() {
                return Err("Any without alternatives");
            }
            let mut all = Vec::new();
            for part in parts {
                all.extend(alternatives(part, own_pid)?);
            }
            all
        }
        When::Refused { .. } => return Err("a refusal is a rule of its own, not part of a condition"),
    })
}

const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JMP_JEQ_K: u16 = 0x15;
const BPF_JMP_JA: u16 = 0x05;
const BPF_RET_K: u16 = 0x06;
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
/// The most refused calls [`refusals_before`] can jump over (2 + 2m < 256).
const MAX_REFUSED: usize = 126;
/// Offsets of the architecture and the call number in `struct seccomp_data`.
const ARCH_OFFSET: u32 = 4;
const NR_OFFSET: u32 = 0;

/// Puts the refused calls in front of `program`: seccompiler gives one
/// action to every call it matches, so the calls answered with an errno
/// are matched here first. On the wrong architecture, or for any other
/// call, this falls through to `program` (which kills on the former).
fn refusals_before(refused: &[(u32, u16)], program: BpfProgram) -> BpfProgram {
    if refused.is_empty() {
        return program;
    }
    let m = refused.len();
    let insn = |code, jt, jf, k| sock_filter { code, jt, jf, k };
    // 0 ld arch, 1 jeq arch, 2 ld nr, 3..3+m jeq nr_i, 3+m ja past,
    // 4+m..4+2m ret errno_i, then `program` at 4+2m.
    let mut prefix = Vec::with_capacity(4 + 2 * m + program.len());
    prefix.push(insn(BPF_LD_W_ABS, 0, 0, ARCH_OFFSET));
    prefix.push(insn(BPF_JMP_JEQ_K, 0, (2 + 2 * m) as u8, AUDIT_ARCH_X86_64));
    prefix.push(insn(BPF_LD_W_ABS, 0, 0, NR_OFFSET));
    for &(nr, _) in refused {
        prefix.push(insn(BPF_JMP_JEQ_K, m as u8, 0, nr));
    }
    prefix.push(insn(BPF_JMP_JA, 0, 0, m as u32));
    for &(_, errno) in refused {
        prefix.push(insn(BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | u32::from(errno)));
    }
    prefix.extend(program);
    prefix
}

/// `program` as raw `struct sock_filter` bytes, for [`install_on_all_threads`]
/// and for the stub, which installs its filter from the memory file.
pub fn to_bytes(program: &[sock_filter]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(program.len() * 8);
    for insn in program {
        bytes.extend_from_slice(&insn.code.to_ne_bytes());
        bytes.push(insn.jt);
        bytes.push(insn.jf);
        bytes.extend_from_slice(&insn.k.to_ne_bytes());
    }
    bytes
}

/// Compiles a list for the calling process into raw bytes, killing on any
/// call not listed.
///
/// # Panics
/// If the list does not compile: lists are static data, and each has a
/// unit test that compiles it.
pub fn compile_allow_list(rules: &[Rule]) -> Vec<u8> {
    compile_allow_list_with(rules, Mismatch::KillProcess)
}

/// As [`compile_allow_list`], with `mismatch` for a call not listed.
///
/// # Panics
/// As [`compile_allow_list`].
pub fn compile_allow_list_with(rules: &[Rule], mismatch: Mismatch) -> Vec<u8> {
    match compile(rules, mismatch, std::process::id()) {
        Ok(program) => to_bytes(&program),
        Err(e) => panic!("a static seccomp allow-list does not compile: {e}"),
    }
}

/// Checks that `program` is a whole number of BPF instructions the kernel
/// can take, and wraps it for seccomp(2).
fn fprog(program: &[u8]) -> io::Result<libc::sock_fprog> {
    if program.is_empty() || !program.len().is_multiple_of(8) || program.len() / 8 > usize::from(u16::MAX) {
        return Err(io::Error::other("not a BPF program"));
    }
    Ok(libc::sock_fprog { len: (program.len() / 8) as u16, filter: program.as_ptr() as *mut libc::sock_filter })
}

/// Sets `no_new_privs` and installs `program` (raw bytes, from [`to_bytes`])
/// on every thread of the calling process, and on all it later creates.
pub fn install_on_all_threads(program: &[u8]) -> io::Result<()> {
    const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;
    const SECCOMP_FILTER_FLAG_TSYNC: libc::c_ulong = 1;
    let fprog = fprog(program)?;
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fprog` points at `program`, which outlives the call; the kernel
    // copies the program and keeps no pointer to it.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            SECCOMP_FILTER_FLAG_TSYNC,
            &fprog as *const libc::sock_fprog,
        )
    };
    match ret {
        0 => Ok(()),
        // TSYNC returns the id of a thread it could not synchronise.
        r if r > 0 => Err(io::Error::other(format!("thread {r} could not take the seccomp filter"))),
        _ => Err(io::Error::last_os_error()),
    }
}

/// How one system call ended under a filter, in a [`probe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// It returned a non-negative value: the filter let it through.
    Returned,
    /// It failed with this errno (from the kernel, or a refusal).
    Failed(i32),
    /// The process died by this signal (SIGSYS: the filter killed it).
    Killed(i32),
}

/// Forks a child that puts itself in a process group of its own, installs
/// `program` (raw bytes), makes system call `nr` with `args` and exits:
/// what a listed or unlisted call does under a filter, for tests. The
/// parent is untouched by the filter and by the call, which runs in the
/// child's copy of memory (a pointer argument of 0 makes a call that is let
/// through fail harmlessly with EFAULT). The program must allow
/// exit_group, which the child leaves with.
pub fn probe(program: &[u8], nr: u64, args: [u64; 6]) -> io::Result<Ending> {
    const INSTALL_FAILED: i32 = 255;
    let fprog = fprog(program)?;
    // SAFETY: the child makes only raw system calls (no allocation, no lock
    // another thread of the parent might hold) and leaves with _exit; the
    // parent only gets a pid.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: in the child, integer arguments, and `fprog` pointing at the
        // program, which the fork copied. The probed call can touch only the
        // child's memory, which ends with it.
        unsafe {
            let installed = libc::setpgid(0, 0) == 0
                && libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
                && libc::syscall(libc::SYS_seccomp, 1, 0, &fprog as *const libc::sock_fprog) == 0;
            if !installed {
                libc::_exit(INSTALL_FAILED);
            }
            let r = libc::syscall(nr as libc::c_long, args[0], args[1], args[2], args[3], args[4], args[5]);
            let code = if r >= 0 { 0 } else { (*libc::__errno_location()).clamp(1, INSTALL_FAILED - 1) };
            libc::_exit(code);
        }
    }
    let mut status = 0;
    loop {
        // SAFETY: waits for our own child; `status` is a valid out-parameter.
        if unsafe { libc::waitpid(pid, &mut status, 0) } == pid {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    if libc::WIFSIGNALED(status) {
        return Ok(Ending::Killed(libc::WTERMSIG(status)));
    }
    match libc::WEXITSTATUS(status) {
        0 => Ok(Ending::Returned),
        INSTALL_FAILED => Err(io::Error::other("the probe child could not install the filter")),
        errno => Ok(Ending::Failed(errno)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use abi::sysno;

    const SIGSYS: i32 = libc::SIGSYS;

    static LIST: &[Rule] = &[
        Rule { nr: sysno::GETPID, when: When::Always, why: "a plain call" },
        Rule { nr: sysno::EXIT_GROUP, when: When::Always, why: "the probe child leaves" },
        Rule { nr: sysno::MMAP, when: When::Without { arg: 2, mask: libc::PROT_EXEC as u64 }, why: "never exec" },
        Rule {
            nr: sysno::KILL,
            when: When::All(&[When::OnePid { arg: 0 }, When::OneOf { arg: 1, values: &[0] }]),
            why: "one process, signal 0",
        },
        Rule { nr: sysno::CLONE3, when: When::Refused { errno: libc::ENOSYS as u16 }, why: "fall back to clone" },
    ];

    fn program(mismatch: Mismatch) -> Vec<u8> {
        to_bytes(&compile(LIST, mismatch, std::process::id()).unwrap())
    }

    #[test]
    fn conditions_allow_refuse_and_kill() {
        let p = program(Mismatch::KillProcess);
        assert_eq!(probe(&p, sysno::GETPID, [0; 6]).unwrap(), Ending::Returned);
        let anon = (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u64;
        let rw = (libc::PROT_READ | libc::PROT_WRITE) as u64;
        assert_eq!(probe(&p, sysno::MMAP, [0, 4096, rw, anon, u64::MAX, 0]).unwrap(), Ending::Returned);
        let rx = (libc::PROT_READ | libc::PROT_EXEC) as u64;
        assert_eq!(probe(&p, sysno::MMAP, [0, 4096, rx, anon, u64::MAX, 0]).unwrap(), Ending::Killed(SIGSYS));
        assert_eq!(probe(&p, sysno::CLONE3, [0; 6]).unwrap(), Ending::Failed(libc::ENOSYS));
        assert_eq!(probe(&p, sysno::GETPPID, [0; 6]).unwrap(), Ending::Killed(SIGSYS));
        // The probe child is alone in its process group, so a pid of 0 would
        // reach no one else even if it were let through.
        assert_eq!(probe(&p, sysno::KILL, [0, 0, 0, 0, 0, 0]).unwrap(), Ending::Killed(SIGSYS));
        assert_eq!(probe(&p, sysno::KILL, [u64::from(std::process::id()), 0, 0, 0, 0, 0]).unwrap(), Ending::Returned);
        // A pid above any pid_max: were SIGKILL let through, it would reach no one.
        assert_eq!(probe(&p, sysno::KILL, [i32::MAX as u64, 9, 0, 0, 0, 0]).unwrap(), Ending::Killed(SIGSYS));
        assert_eq!(probe(&p, sysno::KILL, [i32::MAX as u64, 0, 0, 0, 0, 0]).unwrap(), Ending::Failed(libc::ESRCH));
    }

    #[test]
    fn log_mode_lets_other_calls_through_but_still_refuses() {
        let p = program(Mismatch::Log);
        assert_eq!(probe(&p, sysno::GETPPID, [0; 6]).unwrap(), Ending::Returned);
        assert_eq!(probe(&p, sysno::CLONE3, [0; 6]).unwrap(), Ending::Failed(libc::ENOSYS));
    }

    #[test]
    fn several_refusals_each_get_their_errno() {
        let list = [
            Rule { nr: sysno::GETPID, when: When::Refused { errno: libc::EPERM as u16 }, why: "one" },
            Rule { nr: sysno::GETPPID, when: When::Refused { errno: libc::ENOSYS as u16 }, why: "two" },
            Rule { nr: sysno::EXIT_GROUP, when: When::Always, why: "the probe child leaves" },
        ];
        let p = to_bytes(&compile(&list, Mismatch::KillProcess, 1).unwrap());
        assert_eq!(probe(&p, sysno::GETPID, [0; 6]).unwrap(), Ending::Failed(libc::EPERM));
        assert_eq!(probe(&p, sysno::GETPPID, [0; 6]).unwrap(), Ending::Failed(libc::ENOSYS));
        assert_eq!(probe(&p, sysno::GETUID, [0; 6]).unwrap(), Ending::Killed(SIGSYS));
    }

    #[test]
    fn a_call_with_two_rules_does_not_compile() {
        let twice = [
            Rule { nr: sysno::GETPID, when: When::Always, why: "one" },
            Rule { nr: sysno::GETPID, when: When::OneOf { arg: 0, values: &[1] }, why: "two" },
        ];
        assert!(matches!(compile(&twice, Mismatch::KillProcess, 1), Err(CompileError::Twice(_))));
        let nested = [Rule { nr: sysno::GETPID, when: When::Any(&[When::Refused { errno: 1 }]), why: "?" }];
        assert!(matches!(compile(&nested, Mismatch::KillProcess, 1), Err(CompileError::Malformed { .. })));
    }

    #[test]
    fn bytes_are_the_instructions_in_order() {
        let program = compile(LIST, Mismatch::KillProcess, 1).unwrap();
        let bytes = to_bytes(&program);
        assert_eq!(bytes.len(), program.len() * 8);
        // The refusal prefix comes first: load the architecture, compare it.
        assert_eq!(u16::from_ne_bytes([bytes[0], bytes[1]]), BPF_LD_W_ABS);
        assert_eq!(u32::from_ne_bytes(bytes[12..16].try_into().unwrap()), AUDIT_ARCH_X86_64);
    }
}
