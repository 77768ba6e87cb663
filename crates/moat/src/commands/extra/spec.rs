//! `moat spec`: write a default config.json to start a bundle from.

use std::path::PathBuf;

use anyhow::{bail, Context};

use crate::commands::oci::Global;

#[derive(Debug, clap::Args)]
pub struct SpecArgs {
    /// Where to write config.json.
    #[arg(long, short = 'b', default_value = ".")]
    pub bundle: PathBuf,
}

pub fn run(global: &Global, a: SpecArgs) -> i32 {
    write_spec(&a).map_or_else(|e| global.fail(&e), |()| 0)
}

fn write_spec(a: &SpecArgs) -> anyhow::Result<()> {
    let path = a.bundle.join("config.json");
    if path.exists() {
        bail!("{} already exists; remove it first", path.display());
    }
    let json = serde_json::to_string_pretty(&runtime::bundle::default_spec())?;
    std::fs::write(&path, json + "\n").with_context(|| format!("cannot write {}", path.display()))
}
