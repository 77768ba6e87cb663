//! `moat ps`: the processes of a container. As runc, `--format json` lists
//! host pids, which engines give to the host's `ps` (`docker top`): those of
//! the stubs that run the app's processes, not moat's own (all of the
//! cgroup's while paused); the table shows the sandbox's processes by their
//! pids inside it.

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
                // A paused sandbox is frozen and cannot answer: then, as runc
                // does, every process in the container's cgroup.
                let pids = if r.state(&a.id)?.status == runtime::state::Status::Paused {
                    r.cgroup(&a.id)?.procs()?
                } else {
                    // The Sentry knows its stubs by their pids in the sandbox's
                    // PID namespace; the host's are found among the cgroup's.
                    let inner: Vec<i32> = r.processes(&a.id)?.iter().filter_map(|p| p.host_pid).collect();
                    let mut pids: Vec<i32> = r
                        .cgroup(&a.id)?
                        .procs()?
                        .into_iter()
                        .filter(|&pid| innermost_pid(pid).is_some_and(|p| inner.contains(&p)))
                        .collect();
                    pids.sort_unstable();
                    pids
                };
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

/// The pid of host process `pid` in its own (innermost) PID namespace: the
/// last field of /proc/PID/status's `NSpid:` line.
fn innermost_pid(pid: i32) -> Option<i32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("NSpid:"))?;
    line.split_whitespace().last()?.parse().ok()
}
