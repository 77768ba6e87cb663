//! `moat update`: change a running container's resource limits.

use std::path::PathBuf;

use anyhow::Context;
use oci_spec::runtime::LinuxResources;

use crate::commands::oci::{with_runtime, Global};

#[derive(Debug, clap::Args)]
pub struct UpdateArgs {
    /// The new limits as OCI linux.resources JSON (`-` for stdin).
    #[arg(long, short = 'r')]
    pub resources: PathBuf,
    pub id: String,
}

pub fn run(global: &Global, a: UpdateArgs) -> i32 {
    with_runtime(global, |r| {
        let shown = a.resources.display();
        let json = if a.resources.as_os_str() == "-" {
            std::io::read_to_string(std::io::stdin()).context("reading stdin")?
        } else {
            std::fs::read_to_string(&a.resources).with_context(|| shown.to_string())?
        };
        let resources: LinuxResources =
            serde_json::from_str(&json).with_context(|| format!("{shown}: not linux.resources JSON"))?;
        r.update(&a.id, &resources)?;
        Ok(0)
    })
}
