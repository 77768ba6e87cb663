//! System V message queues and semaphores, differentially: the probe
//! tests/probes/sysv_ipc.c prints the same natively and under `moat do`.

mod common;

use std::process::Command;

use common::native::{differential, moat, probe, run};

fn sysv(sections: &[&str]) {
    let bin = probe("sysv_ipc");
    let mut all = vec![bin.to_str().expect("utf-8 path")];
    all.extend_from_slice(sections);
    differential(&all);
}

#[test]
fn message_queue_round_trips_with_types_and_flags() {
    sysv(&["msg"]);
}

#[test]
fn keys_exclusive_creation_and_permissions_of_another_user() {
    sysv(&["keys"]);
}

#[test]
fn removing_a_queue_wakes_a_blocked_reader_with_eidrm() {
    sysv(&["eidrm_msg"]);
}

#[test]
fn producer_and_consumer_across_fork_through_a_small_queue() {
    sysv(&["prodcons"]);
}

#[test]
fn semaphore_values_atomic_arrays_and_errors() {
    sysv(&["sem"]);
}

#[test]
fn sem_undo_is_applied_at_exit() {
    sysv(&["undo"]);
}

#[test]
fn wait_for_zero_counts_and_removal_under_a_sleeper() {
    sysv(&["waitzero"]);
}

#[test]
fn semtimedop_times_out_and_signals_interrupt() {
    sysv(&["timeout"]);
}

#[test]
fn hostile_sizes_ids_and_pointers_fail_as_on_linux() {
    sysv(&["hostile"]);
}

/// The sandbox-wide bounds are moat's own (Linux would let one app pin a
/// billion semaphores and 512 MiB of messages), so this runs only under moat.
#[test]
fn sandbox_wide_bounds_hold_and_free_again() {
    let bin = probe("sysv_ipc");
    let out = run(Command::new("timeout").args(["60", moat(), "do", "--"]).arg(&bin).arg("bounds"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        (stdout.as_ref(), out.status.code()),
        (
            "bounds\n  sets of 32000: 32, then ENOSPC\n  after removal ok\n  fresh queue full: EAGAIN\n  \
             queued between 60 and 64 MiB: 1\n  after freeing one queue ok\n  queues: 32000, then ENOSPC\n",
            Some(0)
        ),
        "stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
