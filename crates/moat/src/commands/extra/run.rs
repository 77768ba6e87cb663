//! `moat run`: create and start a container, and (unless detached) wait for
//! it, exit with its status and delete it.

use crate::commands::oci::create::CreateArgs;
use crate::commands::oci::{with_runtime, Global};

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    /// Return once the container runs, leaving it running.
    #[arg(long, short = 'd')]
    pub detach: bool,
}

pub fn run(global: &Global, a: RunArgs) -> i32 {
    let c = &a.create;
    with_runtime(global, |r| Ok(r.run(&c.id, &c.bundle, c.stdio(), c.pid_file.as_deref(), a.detach)?))
}
