//! The OCI runtime commands every runtime has (create, start, state, kill,
//! delete), and what they share: the global flags and error reporting.

pub mod create;
pub mod delete;
pub mod kill;
pub mod start;
pub mod state;

use std::io::Write;
use std::path::PathBuf;

use runtime::container::Runtime;

/// runc's global flags.
#[derive(Debug, Clone, clap::Args)]
pub struct Global {
    /// Where container state lives.
    #[arg(long, global = true, default_value = "/run/moat")]
    pub root: PathBuf,
    /// Also write errors to this file (containerd and Docker read it).
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// The --log file's format.
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// More logging.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Use systemd for cgroups (not supported: an error if asked).
    #[arg(long, global = true)]
    pub systemd_cgroup: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl Global {
    pub fn runtime(&self) -> Result<Runtime, String> {
        if self.systemd_cgroup {
            return Err("--systemd-cgroup is not supported: configure the cgroupfs cgroup driver".into());
        }
        Ok(Runtime::new(&self.root, self.log.clone(), matches!(self.log_format, LogFormat::Json)))
    }

    /// Reports `message` on stderr and in the --log file; returns exit status 1.
    pub fn fail(&self, message: impl std::fmt::Display) -> i32 {
        let message = message.to_string();
        eprintln!("moat: {message}");
        if let Some(path) = &self.log {
            if let Ok(mut log) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
                let line = match self.log_format {
                    LogFormat::Text => format!("level=error msg={message:?}\n"),
                    LogFormat::Json => {
                        let time = runtime::state::format_rfc3339(std::time::SystemTime::now());
                        format!("{}\n", serde_json::json!({"level": "error", "msg": message, "time": time}))
                    }
                };
                let _ = log.write_all(line.as_bytes());
            }
        }
        1
    }
}

/// Runs `f` with the runtime, turning an error into exit status 1.
pub fn with_runtime(global: &Global, f: impl FnOnce(&Runtime) -> Result<i32, String>) -> i32 {
    match global.runtime().and_then(|r| f(&r)) {
        Ok(code) => code,
        Err(e) => global.fail(e),
    }
}

/// A signal given as `9`, `KILL` or `SIGKILL`.
pub fn parse_signal(s: &str) -> Result<i32, String> {
    if let Ok(n) = s.parse::<i32>() {
        return if (1..=64).contains(&n) { Ok(n) } else { Err(format!("{s} is not a signal number")) };
    }
    let name = s.to_ascii_uppercase();
    let name = if name.starts_with("SIG") { name } else { format!("SIG{name}") };
    name.parse::<nix::sys::signal::Signal>().map(|s| s as i32).map_err(|_| format!("{s} is not a signal"))
}
