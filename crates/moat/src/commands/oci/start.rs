//! `moat start`: run a created container's process.

use super::{with_runtime, Global};

#[derive(Debug, clap::Args)]
pub struct StartArgs {
    pub id: String,
}

pub fn run(global: &Global, a: StartArgs) -> i32 {
    with_runtime(global, |r| {
        r.start(&a.id)?;
        Ok(0)
    })
}
