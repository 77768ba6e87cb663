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
    let mut spec = serde_json::to_value(runtime::bundle::default_spec())?;
    // oci-spec keeps capability sets in hash sets, whose order changes from
    // run to run; runc writes them sorted.
    if let Some(sets) = spec.pointer_mut("/process/capabilities").and_then(|c| c.as_object_mut()) {
        for set in sets.values_mut().filter_map(|s| s.as_array_mut()) {
            set.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
        }
    }
    let json = serde_json::to_string_pretty(&spec)?;
    std::fs::write(&path, json + "\n").with_context(|| format!("cannot write {}", path.display()))
}
