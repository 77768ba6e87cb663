//! `moat boot`: the sandbox process of one container, started by `create`
//! as pid 1 of a new PID namespace. Its command line is defined in
//! `runtime::subcommands`, which `create` renders it from.

use runtime::subcommands::BootCommand;

use crate::commands::oci::Global;

pub fn run(global: &Global, a: BootCommand) -> i32 {
    runtime::sandbox::run(&global.runtime, &a).unwrap_or_else(|e| global.fail(&e.into()))
}
