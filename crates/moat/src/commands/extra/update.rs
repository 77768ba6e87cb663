//! `moat update`: change a running container's resource limits, or replace
//! its egress policy.

use std::path::PathBuf;

use anyhow::{bail, Context};
use oci_spec::runtime::LinuxResources;
use runtime::egress::PolicyRules;
use runtime::state::StateDir;

use crate::commands::oci::{with_runtime, Global};

#[derive(Debug, clap::Args)]
pub struct UpdateArgs {
    /// The new limits as OCI linux.resources JSON (`-` for stdin).
    #[arg(long, short = 'r')]
    pub resources: Option<PathBuf>,
    /// A new egress policy (JSON: {"default", "allow", "deny"}) to replace
    /// the running container's: connections made stay, new ones are judged
    /// by it. Without a "default" it keeps the container's.
    #[arg(long, value_name = "FILE")]
    pub egress_policy: Option<PathBuf>,
    pub id: String,
}

pub fn run(global: &Global, a: UpdateArgs) -> i32 {
    with_runtime(global, |r| {
        if a.resources.is_none() && a.egress_policy.is_none() {
            bail!("give --resources FILE, --egress-policy FILE or both");
        }
        // Both are read and checked before either is applied.
        let policy = a.egress_policy.as_deref().map(PolicyRules::read).transpose()?;
        let resources = match &a.resources {
            Some(path) => {
                let shown = path.display();
                let json = if path.as_os_str() == "-" {
                    std::io::read_to_string(std::io::stdin()).context("reading stdin")?
                } else {
                    std::fs::read_to_string(path).with_context(|| shown.to_string())?
                };
                let resources: LinuxResources =
                    serde_json::from_str(&json).with_context(|| format!("{shown}: not linux.resources JSON"))?;
                Some(resources)
            }
            None => None,
        };
        if let Some(resources) = &resources {
            r.update(&a.id, resources)?;
        }
        if let Some(policy) = &policy {
            let dir = StateDir::open(&global.runtime.root, &a.id)?;
            runtime::control::replace_egress_policy(&dir.control_socket(), policy)
                .with_context(|| format!("container {}: cannot replace its egress policy", a.id))?;
        }
        Ok(0)
    })
}
