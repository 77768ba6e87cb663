//! `moat state`: the OCI state of a container, as JSON.

use super::{with_runtime, Global};

#[derive(Debug, clap::Args)]
pub struct StateArgs {
    pub id: String,
}

pub fn run(global: &Global, a: StateArgs) -> i32 {
    with_runtime(global, |r| {
        let state = r.state(&a.id)?;
        println!("{}", serde_json::to_string_pretty(&state)?);
        Ok(0)
    })
}
