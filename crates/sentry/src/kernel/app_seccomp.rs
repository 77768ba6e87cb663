//! The app's seccomp policy (an OCI spec's `linux.seccomp`): rules as data,
//! decided per syscall with a real filter's semantics before the syscall runs.
//!
//! A real filter is a BPF program in the host kernel; here the app's syscalls
//! never reach the host, so the Sentry decides them itself, as gVisor does.
//! The semantics are those of a libseccomp filter on x86-64: for one syscall,
//! the rules whose conditions all hold; of those, the most restrictive action
//! (the kernel's order of actions: kill process, kill thread, trap, errno,
//! trace, log, allow); if none holds, the default action. Comparisons are on
//! the full 64-bit argument.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use abi::Errno;

use super::current::CurrentTask;
use super::signal::{SigInfo, SIGSYS};
use super::task;
use crate::SysResult;

/// What a policy does with a syscall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The syscall runs.
    Allow,
    /// The syscall does not run and returns this errno (0 is a success
    /// returning 0; values above 4095 are cut to 4095, as Linux does).
    Errno(i32),
    /// The calling thread dies (SECCOMP_RET_KILL_THREAD): only it, while
    /// other threads of its process live; the last one takes the process
    /// down with SIGSYS.
    Kill,
    /// The whole process dies of SIGSYS (SECCOMP_RET_KILL_PROCESS).
    KillProcess,
    /// The syscall does not run; the thread gets a SIGSYS it may catch, and
    /// ENOSYS if its handler returns.
    Trap,
    /// For a tracer (SECCOMP_RET_TRACE). Nobody traces the app inside the
    /// Sentry, and with no tracer Linux fails the syscall with ENOSYS.
    Trace,
    /// The syscall runs, and the first call of each number is logged.
    Log,
}

impl Action {
    /// The kernel's precedence: lower is more restrictive and wins.
    fn rank(self) -> u8 {
        match self {
            Action::KillProcess => 0,
            Action::Kill => 1,
            Action::Trap => 2,
            Action::Errno(_) => 3,
            Action::Trace => 4,
            Action::Log => 5,
            Action::Allow => 6,
        }
    }
}

/// How a condition compares an argument with its value (libseccomp's
/// `SCMP_CMP_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    NotEqual,
    LessThan,
    LessOrEqual,
    Equal,
    GreaterOrEqual,
    GreaterThan,
    /// `(arg & value) == value_two`.
    MaskedEqual,
}

/// One condition on one syscall argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArgCmp {
    /// Which argument, 0 to 5.
    pub index: u8,
    pub value: u64,
    /// Only `MaskedEqual` uses it.
    pub value_two: u64,
    pub op: Op,
}

impl ArgCmp {
    fn holds(&self, args: &[u64; 6]) -> bool {
        let Some(&arg) = args.get(usize::from(self.index)) else {
            return false;
        };
        match self.op {
            Op::NotEqual => arg != self.value,
            Op::LessThan => arg < self.value,
            Op::LessOrEqual => arg <= self.value,
            Op::Equal => arg == self.value,
            Op::GreaterOrEqual => arg >= self.value,
            Op::GreaterThan => arg > self.value,
            Op::MaskedEqual => arg & self.value == self.value_two,
        }
    }
}

/// One rule: for syscall `nr`, when every condition in `args` holds, `action`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub nr: u64,
    pub action: Action,
    pub args: Vec<ArgCmp>,
}

/// A compiled policy: each syscall's rules, most restrictive first.
#[derive(Debug)]
pub struct AppSeccomp {
    default: Action,
    rules: BTreeMap<u64, Vec<(Action, Vec<ArgCmp>)>>,
    /// Syscalls numbered above this that no rule names fail with ENOSYS.
    enosys_above: Option<u64>,
    /// Syscall numbers already logged by a `Log` action.
    logged: Mutex<BTreeSet<u64>>,
}

impl AppSeccomp {
    pub fn new(default: Action, rules: Vec<Rule>) -> AppSeccomp {
        let mut by_nr: BTreeMap<u64, Vec<(Action, Vec<ArgCmp>)>> = BTreeMap::new();
        for rule in rules {
            by_nr.entry(rule.nr).or_default().push((rule.action, rule.args));
        }
        // Stable: among rules of the same rank, the first listed wins (two
        // errnos for one call), as in the kernel's first-filter-wins tie.
        for list in by_nr.values_mut() {
            list.sort_by_key(|(action, _)| action.rank());
        }
        AppSeccomp { default, rules: by_nr, enosys_above: None, logged: Mutex::new(BTreeSet::new()) }
    }

    /// Makes syscalls numbered above `nr` that no rule names fail with
    /// ENOSYS instead of taking the default action. runc does this for a
    /// profile older than the kernel, so that libc falls back from a newer
    /// syscall the profile cannot know of to an older one it allows.
    pub fn with_enosys_above(mut self, nr: u64) -> AppSeccomp {
        self.enosys_above = Some(nr);
        self
    }

    /// What the policy does with syscall `nr` called with `args`.
    pub fn decide(&self, nr: u64, args: &[u64; 6]) -> Action {
        match self.rules.get(&nr) {
            Some(list) => list
                .iter()
                .find(|(_, conds)| conds.iter().all(|c| c.holds(args)))
                .map_or(self.default, |(action, _)| *action),
            None if self.enosys_above.is_some_and(|above| nr > above) => Action::Errno(Errno::ENOSYS.0),
            None => self.default,
        }
    }

    /// Whether this is the first time `nr` is logged.
    fn first_log(&self, nr: u64) -> bool {
        self.logged.lock().unwrap_or_else(|e| e.into_inner()).insert(nr)
    }
}

/// `si_code` of a SIGSYS sent by a seccomp trap.
const SYS_SECCOMP: i32 = 1;

/// Applies the kernel's app policy, if any, to the syscall `t` stopped at:
/// `None` lets it run; `Some(result)` is what the app gets instead.
pub fn enforce(t: &mut CurrentTask, nr: u64, args: &[u64; 6]) -> Option<SysResult<u64>> {
    let policy = t.k.app_seccomp.as_ref()?;
    let name = || abi::sysno::name(nr).map_or_else(|| format!("syscall_{nr}"), str::to_string);
    match policy.decide(nr, args) {
        Action::Allow => None,
        Action::Log => {
            if policy.first_log(nr) {
                super::log_line(format_args!(
                    "moat: seccomp: pid {} called {} ({nr}), allowed and logged",
                    t.pid(),
                    name()
                ));
            }
            None
        }
        Action::Errno(0) => Some(Ok(0)),
        Action::Errno(e) => Some(Err(crate::Error::new(Errno(e.clamp(1, 4095))))),
        Action::Trace => Some(Err(errno!(ENOSYS))),
        Action::Trap => {
            // Linux also fills si_syscall, si_arch and si_call_addr; SigInfo
            // has no fields for them yet, so the handler sees zeros there.
            t.force_signal(SigInfo { signo: SIGSYS, code: SYS_SECCOMP, errno: 0, ..Default::default() });
            Some(Err(errno!(ENOSYS)))
        }
        action @ (Action::Kill | Action::KillProcess) => {
            // Linux logs seccomp kills by default (the audit log); the
            // runtime's log is the place here.
            super::log_line(format_args!(
                "moat: seccomp: pid {} tid {} killed at syscall {} ({nr})",
                t.pid(),
                t.task.tid(),
                name()
            ));
            if action == Action::Kill && t.tg().threads().len() > 1 {
                *t.task.thread_exit.lock().unwrap() = Some(0);
            } else {
                t.tg().begin_exit(task::signaled(SIGSYS, false));
            }
            Some(Err(errno!(ENOSYS)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GETPID: u64 = 39;
    const SOCKET: u64 = 41;
    const CLONE: u64 = 56;
    const MKDIR: u64 = 83;

    fn cmp(index: u8, op: Op, value: u64) -> ArgCmp {
        ArgCmp { index, value, value_two: 0, op }
    }

    fn rule(nr: u64, action: Action, args: Vec<ArgCmp>) -> Rule {
        Rule { nr, action, args }
    }

    #[test]
    fn unnamed_syscalls_take_the_default_action() {
        let p = AppSeccomp::new(Action::Errno(1), vec![rule(GETPID, Action::Allow, vec![])]);
        assert_eq!(p.decide(GETPID, &[0; 6]), Action::Allow);
        assert_eq!(p.decide(MKDIR, &[0; 6]), Action::Errno(1));
        let open = AppSeccomp::new(Action::Allow, vec![]);
        assert_eq!(open.decide(MKDIR, &[0; 6]), Action::Allow);
    }

    #[test]
    fn an_errno_rule_in_an_allowing_policy() {
        let p = AppSeccomp::new(Action::Allow, vec![rule(MKDIR, Action::Errno(1), vec![])]);
        assert_eq!(p.decide(MKDIR, &[0; 6]), Action::Errno(1));
        assert_eq!(p.decide(GETPID, &[0; 6]), Action::Allow);
    }

    #[test]
    fn every_condition_of_a_rule_must_hold() {
        // Docker's: socket(AF_NETLINK, _, NETLINK_AUDIT) gets EINVAL.
        let p = AppSeccomp::new(
            Action::Allow,
            vec![rule(SOCKET, Action::Errno(22), vec![cmp(0, Op::Equal, 16), cmp(2, Op::Equal, 9)])],
        );
        assert_eq!(p.decide(SOCKET, &[16, 3, 9, 0, 0, 0]), Action::Errno(22));
        assert_eq!(p.decide(SOCKET, &[16, 3, 0, 0, 0, 0]), Action::Allow);
        assert_eq!(p.decide(SOCKET, &[2, 1, 9, 0, 0, 0]), Action::Allow);
    }

    #[test]
    fn each_comparison() {
        let at = |op, arg: u64| {
            AppSeccomp::new(Action::Errno(1), vec![rule(GETPID, Action::Allow, vec![cmp(1, op, 10)])])
                .decide(GETPID, &[0, arg, 0, 0, 0, 0])
                == Action::Allow
        };
        assert!(at(Op::NotEqual, 9) && !at(Op::NotEqual, 10));
        assert!(at(Op::LessThan, 9) && !at(Op::LessThan, 10));
        assert!(at(Op::LessOrEqual, 10) && !at(Op::LessOrEqual, 11));
        assert!(at(Op::Equal, 10) && !at(Op::Equal, 11));
        assert!(at(Op::GreaterOrEqual, 10) && !at(Op::GreaterOrEqual, 9));
        assert!(at(Op::GreaterThan, 11) && !at(Op::GreaterThan, 10));
        // 64-bit: a value past 32 bits is not cut.
        assert!(!at(Op::Equal, (1 << 32) | 10));
        assert!(at(Op::GreaterThan, 1 << 40));
    }

    #[test]
    fn masked_equal_compares_the_masked_argument_with_value_two() {
        // Docker's clone rule: allowed unless a namespace flag is set.
        const NS_FLAGS: u64 = 0x7E02_0000;
        let p = AppSeccomp::new(
            Action::Errno(1),
            vec![rule(
                CLONE,
                Action::Allow,
                vec![ArgCmp { index: 0, value: NS_FLAGS, value_two: 0, op: Op::MaskedEqual }],
            )],
        );
        let fork_flags = 0x0120_0011; // CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD
        assert_eq!(p.decide(CLONE, &[fork_flags, 0, 0, 0, 0, 0]), Action::Allow);
        let new_pid_ns = 0x2000_0000 | 17;
        assert_eq!(p.decide(CLONE, &[new_pid_ns, 0, 0, 0, 0, 0]), Action::Errno(1));
        let masked = AppSeccomp::new(
            Action::Allow,
            vec![rule(
                GETPID,
                Action::Errno(5),
                vec![ArgCmp { index: 0, value: 0xf0, value_two: 0x30, op: Op::MaskedEqual }],
            )],
        );
        assert_eq!(masked.decide(GETPID, &[0x3f, 0, 0, 0, 0, 0]), Action::Errno(5));
        assert_eq!(masked.decide(GETPID, &[0x7f, 0, 0, 0, 0, 0]), Action::Allow);
    }

    #[test]
    fn the_most_restrictive_matching_rule_wins() {
        let p = AppSeccomp::new(
            Action::Allow,
            vec![
                rule(GETPID, Action::Log, vec![]),
                rule(GETPID, Action::Errno(1), vec![cmp(0, Op::Equal, 1)]),
                rule(GETPID, Action::Trap, vec![cmp(0, Op::Equal, 2)]),
                rule(GETPID, Action::Errno(13), vec![cmp(0, Op::GreaterOrEqual, 2)]),
                rule(GETPID, Action::KillProcess, vec![cmp(0, Op::Equal, 3)]),
                rule(GETPID, Action::Kill, vec![cmp(0, Op::GreaterOrEqual, 3)]),
                rule(GETPID, Action::Trace, vec![cmp(0, Op::Equal, 5)]),
            ],
        );
        let with = |arg0| p.decide(GETPID, &[arg0, 0, 0, 0, 0, 0]);
        assert_eq!(with(0), Action::Log);
        assert_eq!(with(1), Action::Errno(1));
        assert_eq!(with(2), Action::Trap);
        assert_eq!(with(3), Action::KillProcess);
        assert_eq!(with(4), Action::Kill);
        assert_eq!(with(5), Action::Kill);
        // Of two errnos, the first listed.
        let twice = AppSeccomp::new(
            Action::Allow,
            vec![rule(MKDIR, Action::Errno(30), vec![]), rule(MKDIR, Action::Errno(1), vec![])],
        );
        assert_eq!(twice.decide(MKDIR, &[0; 6]), Action::Errno(30));
    }

    #[test]
    fn a_rule_whose_conditions_fail_falls_back_to_the_default() {
        let p = AppSeccomp::new(Action::Kill, vec![rule(GETPID, Action::Allow, vec![cmp(0, Op::Equal, 0)])]);
        assert_eq!(p.decide(GETPID, &[0; 6]), Action::Allow);
        assert_eq!(p.decide(GETPID, &[1, 0, 0, 0, 0, 0]), Action::Kill);
    }

    #[test]
    fn syscalls_newer_than_the_profile_get_enosys() {
        let p = AppSeccomp::new(
            Action::Errno(1),
            vec![rule(GETPID, Action::Allow, vec![]), rule(MKDIR, Action::Errno(13), vec![])],
        )
        .with_enosys_above(MKDIR);
        assert_eq!(p.decide(GETPID, &[0; 6]), Action::Allow);
        assert_eq!(p.decide(SOCKET, &[0; 6]), Action::Errno(1));
        assert_eq!(p.decide(MKDIR, &[0; 6]), Action::Errno(13));
        assert_eq!(p.decide(MKDIR + 1, &[0; 6]), Action::Errno(38));
        assert_eq!(p.decide(0x4000_0000 | GETPID, &[0; 6]), Action::Errno(38));
    }
}
