//! Process syscalls, by topic: creating processes and threads, exec, exit
//! and wait, credentials, sessions, limits and usage, scheduling, futexes.

mod clone;
mod creds;
mod exec;
mod futex;
mod limits;
mod prctl;
mod sched;
mod session;
mod system;
mod wait;

pub use clone::{sys_clone, sys_clone3, sys_get_robust_list, sys_set_robust_list, sys_set_tid_address};
pub use creds::{sys_capget, sys_capset, sys_getgroups, sys_getid, sys_getresid, sys_setgroups, sys_setid};
pub use exec::{exec, sys_execve};
pub use futex::sys_futex;
pub use limits::{sys_getrusage, sys_prlimit64, sys_times};
pub use prctl::{sys_arch_prctl, sys_prctl};
pub use sched::{
    sys_getcpu, sys_getpriority, sys_ioprio_get, sys_ioprio_set, sys_kcmp, sys_membarrier, sys_sched_getaffinity,
    sys_sched_param, sys_sched_rr_get_interval, sys_setpriority,
};
pub use session::{sys_getpgid, sys_getsid, sys_setpgid, sys_setsid};
pub use system::{sys_getrandom, sys_setuts, sys_sysinfo, sys_uname};
pub use wait::{sys_exit, sys_exit_group, sys_wait4, sys_waitid};
