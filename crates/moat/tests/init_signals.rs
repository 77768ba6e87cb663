//! The sandbox's init is pid 1 of its PID namespace, and Linux drops every
//! signal sent to such an init from inside when its action is the default
//! and it is not blocked — whichever call sends it (kill, raise's tgkill,
//! tkill, sigqueue). A program that raises SIGTERM or SIGINT at itself as
//! pid 1 (a container's entrypoint) survives under Linux and runc, and must
//! under moat. Native oracle: the same probe as pid 1 of `unshare -pf`.

mod common;

use std::process::Command;

use common::native::{moat, probe, run};

#[test]
fn init_drops_default_action_signals_it_sends_itself_by_every_call() {
    let bin = probe("init_self_signals");
    let bin = bin.to_str().expect("utf-8 path");
    let native = run(Command::new("timeout").args(["60", "unshare", "-pf", "--mount-proc", bin]));
    let sandboxed = run(Command::new("timeout").args(["60", moat(), "do", "--", bin]));
    let native_out = String::from_utf8_lossy(&native.stdout);
    assert!(native.status.success() && native_out.starts_with("pid 1\n"), "native run is not init: {native:?}");
    assert_eq!(
        (native_out.as_ref(), native.status.code()),
        (String::from_utf8_lossy(&sandboxed.stdout).as_ref(), sandboxed.status.code()),
        "moat differs from native; moat stderr:\n{}",
        String::from_utf8_lossy(&sandboxed.stderr)
    );
}
