//! `moat update`: change a running container's resource limits.

use std::path::PathBuf;

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
        let json = if a.resources.as_os_str() == "-" {
            std::io::read_to_string(std::io::stdin()).map_err(|e| format!("reading stdin: {e}"))?
        } else {
            std::fs::read_to_string(&a.resources).map_err(|e| format!("{}: {e}", a.resources.display()))?
        };
        let resources: LinuxResources = serde_json::from_str(&json)
            .map_err(|e| format!("{}: not linux.resources JSON: {e}", a.resources.display()))?;
        let host = runtime::sandbox::host_resources(&resources);
        r.cgroup(&a.id).and_then(|c| Ok(c.update(&host)?)).map_err(|e| e.to_string())?;
        Ok(0)
    })
}
