//! `moat kill`: send a signal to a container's process (or all of them).

use super::{parse_signal, with_runtime, Global};

#[derive(Debug, clap::Args)]
pub struct KillArgs {
    /// Signal every process of the container, not just its init.
    #[arg(long, short = 'a')]
    pub all: bool,
    pub id: String,
    /// The signal (number or name); SIGTERM by default.
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

pub fn run(global: &Global, a: KillArgs) -> i32 {
    with_runtime(global, |r| {
        let signal = parse_signal(&a.signal)?;
        r.kill(&a.id, signal, a.all)?;
        Ok(0)
    })
}
