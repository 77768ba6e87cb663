//! An OCI spec's `linux.seccomp` as the Sentry's app policy, converted the way
//! runc hands a profile to libseccomp, so that Docker's profiles mean the same.
//!
//! runc's habits kept here: a syscall name the architecture lacks is skipped
//! (Docker's profile names every architecture's calls); a rule whose action is
//! the default is skipped; several conditions on one argument become one rule
//! each; and when the default refuses, syscalls newer than any the profile
//! names fail with ENOSYS, so that libc falls back to older ones. Only x86-64
//! apps run in moat, so `architectures` and the filter flags change nothing.

use std::collections::HashMap;

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator, LinuxSyscall};
use sentry::kernel::app_seccomp::{Action, AppSeccomp, ArgCmp, Op, Rule};

/// Highest syscall number looked up by name: past every x86-64 syscall.
const MAX_SYSCALL: u64 = 512;

/// libseccomp's default errno for SCMP_ACT_ERRNO without `errnoRet`.
const EPERM: u32 = 1;
const ENOSYS: u32 = 38;

/// Where in `linux.seccomp` the profile asks for what moat cannot enforce.
#[derive(Debug, thiserror::Error)]
pub enum SeccompProfileError {
    /// The default action cannot be enforced.
    #[error("linux.seccomp.defaultAction: {0}")]
    DefaultAction(Unenforceable),
    /// A syscall entry's action cannot be enforced.
    #[error("linux.seccomp.syscalls[{index}] ({names}): {reason}")]
    SyscallAction {
        /// The entry's index in `syscalls`.
        index: usize,
        /// Its syscall names, comma-separated.
        names: String,
        /// What moat cannot do.
        reason: Unenforceable,
    },
    /// A syscall entry's argument conditions cannot be enforced.
    #[error("linux.seccomp.syscalls[{index}]: {reason}")]
    SyscallArgs {
        /// The entry's index in `syscalls`.
        index: usize,
        /// What moat cannot do.
        reason: Unenforceable,
    },
}

/// A part of a seccomp profile moat cannot enforce, and what to use instead.
#[derive(Debug, thiserror::Error)]
pub enum Unenforceable {
    /// No seccomp agent can answer for the Sentry.
    #[error(
        "SCMP_ACT_NOTIFY is not supported by moat (no seccomp agent can answer for the Sentry); \
         use SCMP_ACT_ERRNO or SCMP_ACT_ALLOW"
    )]
    Notify,
    /// A condition on an argument a syscall does not have.
    #[error("argument index {0} is past the sixth argument")]
    ArgumentIndex(usize),
}

/// The app policy `s` describes, or what in it moat cannot enforce.
pub fn from_spec(s: &LinuxSeccomp) -> Result<AppSeccomp, SeccompProfileError> {
    let default = action(s.default_action(), s.default_errno_ret()).map_err(SeccompProfileError::DefaultAction)?;
    let numbers: HashMap<&str, u64> =
        (0..=MAX_SYSCALL).filter_map(|nr| abi::sysno::name(nr).map(|name| (name, nr))).collect();
    let mut rules = Vec::new();
    let mut highest_named = None;
    for (i, call) in s.syscalls().iter().flatten().enumerate() {
        let act = action(call.action(), call.errno_ret()).map_err(|reason| SeccompProfileError::SyscallAction {
            index: i,
            names: call.names().join(", "),
            reason,
        })?;
        let conditions = conditions(call).map_err(|reason| SeccompProfileError::SyscallArgs { index: i, reason })?;
        for name in call.names() {
            let Some(&nr) = numbers.get(name.as_str()) else { continue };
            highest_named = highest_named.max(Some(nr));
            if act == default {
                continue;
            }
            rules.extend(conditions.iter().map(|args| Rule { nr, action: act, args: args.clone() }));
        }
    }
    let refuses = !matches!(default, Action::Allow | Action::Log);
    let policy = AppSeccomp::new(default, rules);
    match highest_named {
        Some(nr) if refuses && default != Action::Errno(ENOSYS as i32) => Ok(policy.with_enosys_above(nr)),
        _ => Ok(policy),
    }
}

/// An OCI action with its errno (`errnoRet`, or libseccomp's EPERM).
fn action(a: LinuxSeccompAction, errno_ret: Option<u32>) -> Result<Action, Unenforceable> {
    use LinuxSeccompAction as A;
    Ok(match a {
        A::ScmpActAllow => Action::Allow,
        // libseccomp keeps the low 16 bits (SECCOMP_RET_DATA).
        A::ScmpActErrno => Action::Errno((errno_ret.unwrap_or(EPERM) & 0xffff) as i32),
        A::ScmpActKill | A::ScmpActKillThread => Action::Kill,
        A::ScmpActKillProcess => Action::KillProcess,
        A::ScmpActTrap => Action::Trap,
        A::ScmpActTrace => Action::Trace,
        A::ScmpActLog => Action::Log,
        A::ScmpActNotify => return Err(Unenforceable::Notify),
    })
}

/// A syscall entry's conditions, as the rules to add: one with them all, or,
/// when one argument has several (libseccomp cannot AND those), one rule per
/// condition, as runc does.
fn conditions(call: &LinuxSyscall) -> Result<Vec<Vec<ArgCmp>>, Unenforceable> {
    let mut all = Vec::new();
    for arg in call.args().iter().flatten() {
        let index =
            u8::try_from(arg.index()).ok().filter(|i| *i < 6).ok_or(Unenforceable::ArgumentIndex(arg.index()))?;
        use LinuxSeccompOperator as O;
        let op = match arg.op() {
            O::ScmpCmpNe => Op::NotEqual,
            O::ScmpCmpLt => Op::LessThan,
            O::ScmpCmpLe => Op::LessOrEqual,
            O::ScmpCmpEq => Op::Equal,
            O::ScmpCmpGe => Op::GreaterOrEqual,
            O::ScmpCmpGt => Op::GreaterThan,
            O::ScmpCmpMaskedEq => Op::MaskedEqual,
        };
        all.push(ArgCmp { index, value: arg.value(), value_two: arg.value_two().unwrap_or(0), op });
    }
    let repeats_an_argument = all.iter().enumerate().any(|(i, a)| all[..i].iter().any(|b| b.index == a.index));
    Ok(if repeats_an_argument { all.into_iter().map(|c| vec![c]).collect() } else { vec![all] })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(json: serde_json::Value) -> Result<AppSeccomp, String> {
        from_spec(&serde_json::from_value(json).expect("a LinuxSeccomp")).map_err(|e| e.to_string())
    }

    const MKDIR: u64 = 83;
    const PERSONALITY: u64 = 135;
    const GETPID: u64 = 39;

    #[test]
    fn docker_style_allow_list() {
        let p = profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 1,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "flags": ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
            "syscalls": [
                {"names": ["getpid", "arm_fadvise64_64", "mkdir"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
                {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            ]
        }))
        .expect("a valid profile");
        assert_eq!(p.decide(GETPID, &[0; 6]), Action::Allow);
        assert_eq!(p.decide(MKDIR, &[0; 6]), Action::Allow);
        assert_eq!(p.decide(PERSONALITY, &[8, 0, 0, 0, 0, 0]), Action::Allow);
        assert_eq!(p.decide(PERSONALITY, &[1, 0, 0, 0, 0, 0]), Action::Errno(1));
        assert_eq!(p.decide(435, &[0; 6]), Action::Errno(38));
        // Not named and older than clone3: the default; newer: ENOSYS.
        assert_eq!(p.decide(41, &[0; 6]), Action::Errno(1));
        assert_eq!(p.decide(439, &[0; 6]), Action::Errno(38));
    }

    #[test]
    fn errno_defaults_to_eperm_and_kill_means_the_thread() {
        let p = profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["getpid"], "action": "SCMP_ACT_KILL"},
                {"names": ["uname"], "action": "SCMP_ACT_KILL_PROCESS"},
                {"names": ["getppid"], "action": "SCMP_ACT_TRAP"},
            ]
        }))
        .expect("a valid profile");
        assert_eq!(p.decide(MKDIR, &[0; 6]), Action::Errno(1));
        assert_eq!(p.decide(GETPID, &[0; 6]), Action::Kill);
        assert_eq!(p.decide(63, &[0; 6]), Action::KillProcess);
        assert_eq!(p.decide(110, &[0; 6]), Action::Trap);
        // An allowing default adds no ENOSYS for newer syscalls.
        assert_eq!(p.decide(449, &[0; 6]), Action::Allow);
    }

    #[test]
    fn conditions_on_one_argument_are_alternatives() {
        let p = profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [
                {"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"},
            ]}]
        }))
        .expect("a valid profile");
        assert_eq!(p.decide(PERSONALITY, &[0; 6]), Action::Allow);
        assert_eq!(p.decide(PERSONALITY, &[8, 0, 0, 0, 0, 0]), Action::Allow);
        assert_eq!(p.decide(PERSONALITY, &[4, 0, 0, 0, 0, 0]), Action::Errno(1));
    }

    #[test]
    fn masked_equal_takes_value_two() {
        let p = profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [
                {"index": 0, "value": 2_114_060_288u64, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"},
            ]}]
        }))
        .expect("a valid profile");
        assert_eq!(p.decide(56, &[0x0120_0011, 0, 0, 0, 0, 0]), Action::Allow);
        assert_eq!(p.decide(56, &[0x1000_0000 | 17, 0, 0, 0, 0, 0]), Action::Errno(1));
    }

    #[test]
    fn what_moat_cannot_enforce_is_an_error() {
        let notify = profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
        }));
        let e = notify.expect_err("NOTIFY is refused");
        assert!(e.contains("syscalls[0] (mkdir)") && e.contains("SCMP_ACT_NOTIFY is not supported"), "{e}");
        let index = profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "args": [
                {"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}]}]
        }));
        assert!(index.expect_err("index 6 is refused").contains("argument index 6"));
    }
}
