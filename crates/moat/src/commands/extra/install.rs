//! `moat install`: register moat as a Docker runtime (as `runsc install`
//! does) and print what containerd and Kubernetes need.

use std::path::PathBuf;

use anyhow::{anyhow, Context};
use serde_json::Value;

use crate::commands::oci::Global;

#[derive(Debug, clap::Args)]
pub struct InstallArgs {
    /// The name Docker knows the runtime by (`docker run --runtime=NAME`).
    #[arg(long, default_value = "moat")]
    pub runtime_name: String,
    /// Docker's daemon configuration to add the runtime to.
    #[arg(long, default_value = "/etc/docker/daemon.json")]
    pub config: PathBuf,
    /// Extra arguments Docker passes to moat (e.g. --debug).
    #[arg(long = "runtime-arg", allow_hyphen_values = true)]
    pub runtime_args: Vec<String>,
}

pub fn run(global: &Global, a: InstallArgs) -> i32 {
    match install(&a) {
        Ok(binary) => {
            println!("moat: added runtime {:?} ({binary}) to {}", a.runtime_name, a.config.display());
            println!("Reload Docker to use it (e.g. `systemctl reload docker` or `kill -HUP $(pidof dockerd)`),");
            println!("then: docker run --runtime={} --network=none IMAGE CMD", a.runtime_name);
            println!();
            println!("containerd (CRI) — in /etc/containerd/config.toml:");
            println!("  [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.{}]", a.runtime_name);
            println!("    runtime_type = \"io.containerd.runc.v2\"");
            println!("  [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.{}.options]", a.runtime_name);
            println!("    BinaryName = \"{binary}\"");
            println!();
            println!("Kubernetes — a RuntimeClass for pods to name in spec.runtimeClassName:");
            println!("  apiVersion: node.k8s.io/v1");
            println!("  kind: RuntimeClass");
            println!("  metadata:");
            println!("    name: {}", a.runtime_name);
            println!("  handler: {}", a.runtime_name);
            0
        }
        Err(e) => global.fail(&e),
    }
}

/// Adds the runtime to the daemon configuration, keeping everything else in
/// it; returns the moat binary registered.
fn install(a: &InstallArgs) -> anyhow::Result<String> {
    let binary = std::env::current_exe().context("cannot find the moat binary")?;
    let binary = binary.display().to_string();
    let shown = a.config.display();
    let mut config = match std::fs::read_to_string(&a.config) {
        Ok(text) if text.trim().is_empty() => Value::Object(Default::default()),
        Ok(text) => {
            serde_json::from_str(&text).map_err(|e| anyhow!("{shown} is not valid JSON ({e}); fix it first"))?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Value::Object(Default::default()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {shown}")),
    };
    let object = config.as_object_mut().ok_or_else(|| anyhow!("{shown} is not a JSON object"))?;
    let runtimes = object.entry("runtimes").or_insert_with(|| Value::Object(Default::default()));
    let runtimes = runtimes.as_object_mut().ok_or_else(|| anyhow!("\"runtimes\" in {shown} is not an object"))?;
    let mut entry = serde_json::json!({ "path": binary });
    if !a.runtime_args.is_empty() {
        entry["runtimeArgs"] = a.runtime_args.clone().into();
    }
    runtimes.insert(a.runtime_name.clone(), entry);
    if let Some(dir) = a.config.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let tmp = a.config.with_extension("moat-tmp");
    let text = serde_json::to_string_pretty(&config)? + "\n";
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, &a.config))
        .with_context(|| format!("cannot write {shown}"))?;
    Ok(binary)
}
