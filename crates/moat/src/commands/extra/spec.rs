//! `moat spec`: write a default config.json to start a bundle from.

use std::path::PathBuf;

use crate::commands::oci::Global;

#[derive(Debug, clap::Args)]
pub struct SpecArgs {
    /// Where to write config.json.
    #[arg(long, short = 'b', default_value = ".")]
    pub bundle: PathBuf,
}

pub fn run(global: &Global, a: SpecArgs) -> i32 {
    let path = a.bundle.join("config.json");
    if path.exists() {
        return global.fail(format!("{} already exists; remove it first", path.display()));
    }
    let spec = runtime::bundle::default_spec();
    let written = serde_json::to_string_pretty(&spec).map_err(|e| e.to_string()).and_then(|json| {
        std::fs::write(&path, json + "\n").map_err(|e| format!("cannot write {}: {e}", path.display()))
    });
    match written {
        Ok(()) => 0,
        Err(e) => global.fail(e),
    }
}
