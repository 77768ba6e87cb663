//! `moat ps`: the processes of a container. As runc, `--format json` lists
//! the host pids in the container's cgroup (the sandbox process, its Gofers
//! and stubs); the table shows the sandbox's own processes.

use anyhow::bail;

use crate::commands::oci::{with_runtime, Global};

#[derive(Debug, clap::Args)]
pub struct PsArgs {
    #[arg(long, short = 'f', default_value = "table")]
    pub format: String,
    pub id: String,
    /// ps(1) options (ignored: the table is moat's own).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

pub fn run(global: &Global, a: PsArgs) -> i32 {
    with_runtime(global, |r| {
        match a.format.as_str() {
            "json" => {
                let pids = r.cgroup(&a.id)?.procs()?;
                println!("{}", serde_json::to_string(&pids)?);
            }
            "table" => {
                println!("{:>7} {:>7} CMD", "PID", "PPID");
                for p in r.processes(&a.id)? {
                    let cmd = if p.args.is_empty() { p.name.clone() } else { p.args.join(" ") };
                    println!("{:>7} {:>7} {cmd}", p.pid, p.ppid);
                }
            }
            other => bail!("--format {other}: must be table or json"),
        }
        Ok(0)
    })
}
