//! Differential tests of edge-case kernel semantics: small C probes under
//! tests/probes/ run natively and under `moat do` (host root) and must print the
//! same stdout and exit with the same status.

mod common;

use common::native::{differential, probe};

/// Builds the probe and runs it differentially; `sections` are passed as its
/// arguments (each probe runs only the named sections, or all with none).
fn differential_probe(name: &str, sections: &[&str]) {
    let bin = probe(name);
    let mut all = vec![bin.to_str().expect("utf-8 path")];
    all.extend_from_slice(sections);
    differential(&all);
}

// 1. Thread-directed and process-directed signal delivery.
#[test]
fn pthread_kill_and_process_signal_pick_the_right_thread() {
    differential_probe("sig_thread_target", &[]);
}

// 2. SA_RESTART versus EINTR for read, write, wait4 and nanosleep.
#[test]
fn sa_restart_restarts_and_plain_handler_gives_eintr() {
    differential_probe("sa_restart", &[]);
}

// 3. A SIGSEGV handler on an alternate stack catches a stack overflow.
#[test]
fn sigaltstack_catches_stack_overflow() {
    differential_probe("sigaltstack", &[]);
}

// 4. Condition-variable broadcast and raw FUTEX_CMP_REQUEUE.
#[test]
fn futex_cmp_requeue_and_cond_broadcast() {
    differential_probe("futex_requeue", &["cond", "requeue"]);
}

#[test]
fn futex_private_op_does_not_match_shared_waiter() {
    differential_probe("futex_requeue", &["private_shared"]);
}

// 5. epoll: EPOLLET, EPOLLONESHOT, level-triggered, errors, EPOLLHUP.
#[test]
fn epoll_level_oneshot_errors_and_write_edge() {
    differential_probe("epoll_et", &["lt", "oneshot", "errors", "et_write", "hup"]);
}

#[test]
fn epoll_edge_triggered_rereports_on_new_write() {
    differential_probe("epoll_et", &["et"]);
}

// 6. SIGSEGV siginfo: si_addr and si_code.
#[test]
fn sigsegv_siginfo_addr_and_code() {
    differential_probe("segv_siginfo", &["maperr", "accerr", "nx"]);
}

#[test]
fn sigsegv_prot_none_is_accerr() {
    differential_probe("segv_siginfo", &["prot_none"]);
}

// 7. vfork + execve, and posix_spawn.
#[test]
fn vfork_then_execve() {
    differential_probe("vfork_exec", &["exec", "exit", "missing", "spawn"]);
}

#[test]
fn vfork_shares_memory_and_suspends_parent() {
    differential_probe("vfork_exec", &["shared", "suspend", "spawn_enoent"]);
}

// 8. execve from a thread other than the main one.
#[test]
fn execve_from_a_non_main_thread() {
    let bin = probe("thread_exec");
    let bin = bin.to_str().expect("utf-8 path");
    differential(&[bin]);
    differential(&[bin, "self"]);
}

// 9. Zombies, SIGCHLD, wait statuses and ECHILD.
#[test]
fn zombies_sigchld_and_wait_statuses() {
    differential_probe("zombie_sigchld", &["exit", "kill", "echild", "ignore"]);
}

#[test]
fn waitpid_reports_stopped_and_continued_children() {
    differential_probe("zombie_sigchld", &["stop"]);
}

// 10. sigsuspend, pselect and ppoll masks, rt_sigtimedwait timeouts.
#[test]
fn sigsuspend_pselect_ppoll_and_sigtimedwait() {
    differential_probe("sigwait_masks", &[]);
}

// execve takes argument and environment strings up to Linux's
// MAX_ARG_STRLEN (128 KiB with the NUL), E2BIG past it.
#[test]
fn execve_takes_strings_up_to_max_arg_strlen() {
    differential_probe("exec_arg_limits", &[]);
}

// F_GETPIPE_SZ/F_SETPIPE_SZ (rounding, EBUSY, EINVAL, EBADF, a grown pipe
// holding what it says) and /proc/sys/fs/pipe-max-size.
#[test]
fn pipe_capacity_is_read_and_set_as_linux_does() {
    differential_probe("pipe_size", &[]);
}

// Absolute CLOCK_REALTIME timers (timerfd and POSIX) fire at that time.
#[test]
fn absolute_realtime_timers_fire() {
    differential_probe("abs_timers", &[]);
}

// Invalid arguments give Linux's errors (advice, flags, unmapped ranges).
#[test]
fn invalid_arguments_are_refused_as_linux_does() {
    differential_probe("invalid_args", &[]);
}

// Path calls fail as Linux's do (NAME_MAX for the last name too, the *at
// calls' flags).
#[test]
fn path_call_errors_are_linuxs() {
    differential_probe("path_errors", &[]);
}

// epoll_ctl and epoll_wait refuse and report as Linux does.
#[test]
fn epoll_answers_are_linuxs() {
    differential_probe("epoll_errors", &[]);
}

// inotify reports opens, reads, closes without writing, a watched file's
// deletion and removed watches as Linux does.
#[test]
fn inotify_events_are_linuxs() {
    differential_probe("inotify_events", &[]);
}

// /proc/PID/stat shows the main thread's state to the process's other
// threads: asleep in futex_wait is 'S' (LTP's TST_PROCESS_STATE_WAIT).
#[test]
fn proc_stat_shows_the_main_thread_asleep() {
    differential_probe("proc_state", &[]);
}

// mknod's types, a FIFO writer without a reader, and what an O_PATH fd
// may do, as on Linux.
#[test]
fn fifo_and_o_path_calls_answer_as_linux_does() {
    differential_probe("fifo_opath", &[]);
}

// The positioned vector calls, v2 flags included.
#[test]
fn preadv_and_pwritev_families_are_linuxs() {
    differential_probe("preadv", &[]);
}

// Nice values: kept per process, clamped, inherited and shown in /proc.
#[test]
fn nice_values_are_kept_as_linux_keeps_them() {
    differential_probe("nice", &[]);
}

// I/O priorities: kept per process, inherited, checked as on Linux.
#[test]
fn io_priorities_are_kept_as_linux_keeps_them() {
    differential_probe("ioprio", &[]);
}

// kcmp compares descriptions, address spaces and per-process objects.
#[test]
fn kcmp_compares_as_linux_does() {
    differential_probe("kcmp", &[]);
}

// sched_rr_get_interval for SCHED_OTHER, and its errors.
#[test]
fn sched_rr_get_interval_answers_as_linux_does() {
    differential_probe("sched_rr", &[]);
}

// Read-only private file mappings share one copy of the file in the
// sandbox: a fork, mprotect to writable, MADV_DONTNEED and patching libc's
// text each leave every other mapping, process and exec with the file's bytes.
#[test]
fn shared_file_pages_are_never_written_through() {
    differential_probe("frozen_pages", &[]);
}
