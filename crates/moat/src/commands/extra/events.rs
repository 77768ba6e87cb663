//! `moat events`: a container's resource usage from its cgroup, and its
//! network's counters from the sandbox, once (--stats) or every --interval.

use std::time::Duration;

use anyhow::anyhow;

use crate::commands::oci::{with_runtime, Global};

#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    /// Print the statistics once and exit.
    #[arg(long)]
    pub stats: bool,
    /// How often to print them otherwise (e.g. 5s, 500ms).
    #[arg(long, default_value = "5s")]
    pub interval: String,
    pub id: String,
}

fn parse_interval(s: &str) -> anyhow::Result<Duration> {
    let bad = || anyhow!("--interval {s}: use a number with ms or s, e.g. 5s");
    if let Some(ms) = s.strip_suffix("ms") {
        return ms.parse().map(Duration::from_millis).map_err(|_| bad());
    }
    let secs = s.strip_suffix('s').unwrap_or(s);
    secs.parse::<f64>().ok().filter(|v| *v > 0.0).map(Duration::from_secs_f64).ok_or_else(bad)
}

pub fn run(global: &Global, a: EventsArgs) -> i32 {
    with_runtime(global, |r| {
        let interval = parse_interval(&a.interval)?;
        loop {
            let mut record = r.cgroup(&a.id)?.events_json(&a.id)?;
            // The network's counters come from the Sentry (the host's veth
            // counters see frames, not the sandbox's connections); a
            // container that is not running has none to give.
            if let Ok(serde_json::Value::Object(net)) = r.net_stats_json(&a.id) {
                if let Some(serde_json::Value::Object(data)) = record.get_mut("data") {
                    data.extend(net);
                }
            }
            println!("{record}");
            if a.stats {
                return Ok(0);
            }
            std::thread::sleep(interval);
            if r.state(&a.id).map(|s| s.status == runtime::state::Status::Stopped).unwrap_or(true) {
                return Ok(0);
            }
        }
    })
}
