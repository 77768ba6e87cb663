//! The syscall layer: raw registers become typed calls here, once, through
//! the table in `table.rs`. Calls without a handler go to one place that
//! returns ENOSYS, counts them and logs them with their status.

mod args;
mod extra;
mod fs;
mod ifreq;
mod ipc;
mod mm;
mod net;
mod process;
mod signal;
pub mod table;
mod time;
mod user_io;

use abi::sysno as nr;
use abi::Errno;

pub use table::{Entry, Status};

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
    let before = if t.k.strace { Some(show_args(t, n, &a)) } else { None };
    let r = match crate::kernel::app_seccomp::enforce(t, n, &a) {
        Some(r) => r,
        None => dispatch(t, n, a),
    };
    if let Some(args) = before {
        let name = nr::name(n).map(str::to_string).unwrap_or_else(|| format!("syscall_{n}"));
        let res = match &r {
            Ok(v) => format!("{}", *v as i64),
            Err(e) => format!("-1 {}", e.as_restart().map_or_else(|| e.errno().name(), |r| r.name())),
        };
        crate::kernel::log_line(format_args!("[{}] {}({}) = {}", t.task.tid(), name, args, res));
    }
    match r {
        Ok(v) => t.regs.rax = v,
        Err(e) => {
            tracing::debug!(tid = t.task.tid(), syscall = nr::name(n).unwrap_or("unknown"), error = %e, "syscall failed");
            match e.as_restart() {
                // Resolved at signal delivery: a restart, or EINTR if a handler ran.
                Some(how) => {
                    t.restart = Some(how);
                    t.regs.rax = (-Errno::EINTR.0) as i64 as u64;
                }
                None => t.regs.rax = (-(e.errno().0 as i64)) as u64,
            }
        }
    }
}

/// The arguments as `--strace` shows them: as many as the call takes, each
/// as its type in the table says (all six, as numbers, for a call without a line).
fn show_args(t: &CurrentTask, n: u64, a: &Args) -> String {
    let shown: Vec<String> = match table::entry(n) {
        Some(e) => e.args.iter().zip(a).map(|((_, how), raw)| args::show(t, *how, *raw)).collect(),
        None => a.iter().map(|raw| args::show(t, args::Show::Unsigned, *raw)).collect(),
    };
    shown.join(", ")
}

fn dispatch(t: &mut CurrentTask, n: u64, a: Args) -> SysResult<u64> {
    match table::call(t, n, a) {
        Some(r) => r,
        None => match table::status(n) {
            Status::Refused(errno, _) => Err(crate::Error::new(errno)),
            _ => Err(unimplemented(t, n)),
        },
    }
}

/// ENOSYS for call `nr` (or a part of it the table calls partial): counted,
/// and logged once per run with the status docs/syscalls.md gives it,
/// unless the table marks it quiet.
#[track_caller]
pub fn unimplemented(t: &CurrentTask, nr: u64) -> crate::Error {
    if t.k.count_unimplemented(nr) {
        let status = table::status(nr);
        match nr::name(nr) {
            _ if nr >= crate::kernel::MAX_SYSCALL_NR => crate::kernel::log_line(format_args!(
                "moat: system call number {nr} (and any past {}) is no Linux call; returning ENOSYS",
                crate::kernel::MAX_SYSCALL_NR
            )),
            _ if matches!(status, Status::Quiet(_)) => {
                tracing::debug!(nr, note = status.note(), "unimplemented syscall (quiet)")
            }
            name => {
                let name = name.unwrap_or("unknown");
                let label = status.label();
                match status.note() {
                    "" => crate::kernel::log_line(format_args!(
                        "moat: unimplemented syscall {name} ({nr}), {label}; returning ENOSYS"
                    )),
                    note => crate::kernel::log_line(format_args!(
                        "moat: unimplemented syscall {name} ({nr}), {label}: {note}; returning ENOSYS"
                    )),
                }
            }
        }
        tracing::warn!(nr, "unimplemented syscall");
    }
    errno!(ENOSYS)
}

/// Every x86-64 syscall with its status, as docs/syscalls.md lists them.
pub fn coverage() -> Vec<(u64, &'static str, Status)> {
    nr::ALL.iter().map(|&(n, name)| (n, name, table::status(n))).collect()
}

/// docs/syscalls.md: the coverage list as a Markdown table.
pub fn coverage_markdown() -> String {
    let all = coverage();
    let count = |label: &str| all.iter().filter(|(_, _, s)| s.label() == label).count();
    let mut out = String::from(
        "# System calls\n\n\
         Every x86-64 Linux system call and what moat does with it. Generated from\n\
         the Sentry's syscall table (`crates/sentry/src/syscalls/table.rs`) by\n\
         `moat syscalls --format markdown`; a test fails when this file and the table differ.\n\n\
         - **supported**: implemented as Linux has it.\n\
         - **partial**: implemented, with the gap the note names.\n\
         - **not implemented**: returns ENOSYS; counted, and logged once per run (except where the note says it is quiet).\n\
         - **refused**: returns the errno named, on purpose.\n\n",
    );
    out += &format!(
        "{} calls: {} supported, {} partial, {} not implemented, {} refused.\n\n",
        all.len(),
        count("supported"),
        count("partial"),
        count("not implemented"),
        count("refused")
    );
    out += "| nr | name | status | note |\n|---:|---|---|---|\n";
    for (n, name, status) in &all {
        let label = match status {
            Status::Refused(errno, _) => format!("refused ({})", errno.name()),
            Status::Quiet(_) => "not implemented (quiet)".to_string(),
            s => s.label().to_string(),
        };
        out += &format!("| {n} | `{name}` | {label} | {} |\n", status.note());
    }
    out
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
