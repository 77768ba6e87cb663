//! `moat boot`: the sandbox process of one container, started by `create`
//! as pid 1 of a new PID namespace.

use std::os::fd::RawFd;
use std::path::PathBuf;

use crate::commands::oci::Global;

#[derive(Debug, clap::Args)]
pub struct BootArgs {
    #[arg(long)]
    id: String,
    #[arg(long)]
    bundle: PathBuf,
    /// The pipe to tell `create` the sandbox is ready (or why not) on.
    #[arg(long)]
    ready_fd: RawFd,
}

pub fn run(global: &Global, a: BootArgs) -> i32 {
    let ready = match host::sys::take_inherited_fd(a.ready_fd) {
        Ok(fd) => fd,
        Err(e) => return global.fail(format!("boot: --ready-fd {}: {e}", a.ready_fd)),
    };
    runtime::sandbox::run(runtime::sandbox::BootArgs {
        root: global.root.clone(),
        id: a.id,
        bundle: a.bundle,
        ready,
        log: global.log.clone(),
        log_json: matches!(global.log_format, crate::commands::oci::LogFormat::Json),
    })
}
