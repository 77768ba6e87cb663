//! A cgroup's usage and limits (memory, pids, CPU time, OOM kills) read from
//! either cgroup version, and their shape in `runc events --stats`.

use serde::{Serialize, Serializer};
use serde_json::{json, Map, Value};

use super::files::{read_keyed, read_max_opt, read_u64_opt};
use super::{Cgroup, Controller, Dirs, Result};

/// Usage and limits of a cgroup. Serializes as the `data` of a `runc events
/// --stats` record, for the fields that map.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes charged now.
    pub memory_usage: u64,
    /// The memory limit in bytes (the kernel's "unlimited" value if none).
    pub memory_limit: u64,
    /// The most bytes ever charged (0 where the kernel does not record it).
    pub memory_max_usage: u64,
    /// Processes and threads in the cgroup.
    pub pids_current: u64,
    /// The pids limit, `None` for "max".
    pub pids_limit: Option<u64>,
    /// CPU time used, in nanoseconds.
    pub cpu_usage_ns: u64,
    /// Processes the OOM killer killed in this cgroup.
    pub oom_kills: u64,
}

impl Stats {
    /// The shape of runc's `types.Stats`, with Go's `omitempty` where runc
    /// has it.
    fn runc_data(&self) -> Value {
        fn put(map: &mut Map<String, Value>, key: &str, value: u64) {
            if value != 0 {
                map.insert(key.to_owned(), value.into());
            }
        }
        let mut cpu_usage = Map::new();
        put(&mut cpu_usage, "total", self.cpu_usage_ns);
        let mut memory_usage = Map::new();
        memory_usage.insert("limit".to_owned(), self.memory_limit.into());
        put(&mut memory_usage, "usage", self.memory_usage);
        put(&mut memory_usage, "max", self.memory_max_usage);
        let mut pids = Map::new();
        put(&mut pids, "current", self.pids_current);
        put(&mut pids, "limit", self.pids_limit.unwrap_or(0));
        json!({
            "cpu": { "usage": cpu_usage },
            "memory": { "usage": memory_usage },
            "pids": pids,
        })
    }
}

impl Serialize for Stats {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        self.runc_data().serialize(serializer)
    }
}

impl Cgroup {
    /// Reads usage and limits. A statistic whose file the kernel does not
    /// offer (controller not mounted or not enabled) reads as zero.
    pub fn stats(&self) -> Result<Stats> {
        match &self.dirs {
            Dirs::V1 { .. } => {
                let mut stats = Stats::default();
                if let Some(memory) = self.v1_dir(Controller::Memory) {
                    stats.memory_usage = read_u64_opt(memory, "memory.usage_in_bytes")?.unwrap_or(0);
                    stats.memory_limit = read_u64_opt(memory, "memory.limit_in_bytes")?.unwrap_or(0);
                    stats.memory_max_usage = read_u64_opt(memory, "memory.max_usage_in_bytes")?.unwrap_or(0);
                    stats.oom_kills = read_keyed(memory, "memory.oom_control", "oom_kill")?.unwrap_or(0);
                }
                if let Some(pids) = self.v1_dir(Controller::Pids) {
                    stats.pids_current = read_u64_opt(pids, "pids.current")?.unwrap_or(0);
                    stats.pids_limit = read_max_opt(pids, "pids.max")?.flatten();
                }
                if let Some(cpuacct) = self.v1_dir(Controller::Cpuacct) {
                    stats.cpu_usage_ns = read_u64_opt(cpuacct, "cpuacct.usage")?.unwrap_or(0);
                }
                Ok(stats)
            }
            Dirs::V2 { dir } => Ok(Stats {
                memory_usage: read_u64_opt(dir, "memory.current")?.unwrap_or(0),
                // runc reports "max" as the largest u64.
                memory_limit: read_max_opt(dir, "memory.max")?.map_or(0, |l| l.unwrap_or(u64::MAX)),
                memory_max_usage: read_u64_opt(dir, "memory.peak")?.unwrap_or(0),
                pids_current: read_u64_opt(dir, "pids.current")?.unwrap_or(0),
                pids_limit: read_max_opt(dir, "pids.max")?.flatten(),
                cpu_usage_ns: read_keyed(dir, "cpu.stat", "usage_usec")?.unwrap_or(0).saturating_mul(1000),
                oom_kills: read_keyed(dir, "memory.events", "oom_kill")?.unwrap_or(0),
            }),
        }
    }

    /// The `runc events --stats` record for container `id`:
    /// `{"type":"stats","id":..,"data":{"cpu":..,"memory":..,"pids":..}}`.
    pub fn events_json(&self, id: &str) -> Result<Value> {
        let stats = self.stats()?;
        Ok(json!({ "type": "stats", "id": id, "data": stats.runc_data() }))
    }

    /// Processes the OOM killer has killed in this cgroup; 0 if the kernel
    /// does not say. For reporting OOM exits to Docker.
    pub fn memory_oom_events(&self) -> u64 {
        let counter = match &self.dirs {
            Dirs::V1 { .. } => self.v1_dir(Controller::Memory).map(|d| read_keyed(d, "memory.oom_control", "oom_kill")),
            Dirs::V2 { dir } => Some(read_keyed(dir, "memory.events", "oom_kill")),
        };
        counter.and_then(|r| r.ok().flatten()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_serialize_like_runc() {
        let stats = Stats { memory_usage: 5, memory_limit: 10, pids_current: 2, cpu_usage_ns: 7, ..Stats::default() };
        let value = serde_json::to_value(&stats).unwrap();
        assert_eq!(
            value,
            json!({
                "cpu": {"usage": {"total": 7}},
                "memory": {"usage": {"limit": 10, "usage": 5}},
                "pids": {"current": 2},
            })
        );
    }
}
