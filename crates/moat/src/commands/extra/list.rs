//! `moat list`: every container under the root.

use anyhow::bail;

use crate::commands::oci::{with_runtime, Global};

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[arg(long, short = 'f', default_value = "table")]
    pub format: String,
    /// Print only the ids.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

pub fn run(global: &Global, a: ListArgs) -> i32 {
    with_runtime(global, |r| {
        let states = r.list()?;
        if a.quiet {
            for s in &states {
                println!("{}", s.id);
            }
            return Ok(0);
        }
        match a.format.as_str() {
            "json" => println!("{}", serde_json::to_string(&states)?),
            "table" => {
                println!("{:<20} {:<8} {:<10} {:<40} CREATED", "ID", "PID", "STATUS", "BUNDLE");
                for s in &states {
                    let pid = s.pid.map(|p| p.to_string()).unwrap_or_else(|| "0".into());
                    println!("{:<20} {:<8} {:<10} {:<40} {}", s.id, pid, s.status, s.bundle.display(), s.created);
                }
            }
            other => bail!("--format {other}: must be table or json"),
        }
        Ok(0)
    })
}
