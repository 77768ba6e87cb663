//! The OCI runtime commands every runtime has (create, start, state, kill,
//! delete), and what they share: the global flags and error reporting.

pub mod create;
pub mod delete;
pub mod kill;
pub mod start;
pub mod state;

use std::io::Write;

use anyhow::bail;
use runtime::container::Runtime;
use runtime::subcommands::{LogFormat, RuntimeFlags};

/// runc's global flags.
#[derive(Debug, Clone, clap::Args)]
pub struct Global {
    /// Those handed on to the sandbox processes: --root, --log, --log-format.
    #[command(flatten)]
    pub runtime: RuntimeFlags,
    /// More logging.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Use systemd for cgroups (not supported: an error if asked).
    #[arg(long, global = true)]
    pub systemd_cgroup: bool,
}

impl Global {
    pub fn runtime(&self) -> anyhow::Result<Runtime> {
        if self.systemd_cgroup {
            bail!("--systemd-cgroup is not supported: configure the cgroupfs cgroup driver");
        }
        Ok(Runtime::new(self.runtime.clone()))
    }

    /// Reports `error` on stderr and in the --log file; returns exit status 1.
    pub fn fail(&self, error: &anyhow::Error) -> i32 {
        let message = one_line(error);
        eprintln!("moat: {message}");
        if let Some(path) = &self.runtime.log {
            if let Ok(mut log) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
                let line = match self.runtime.log_format {
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

/// An error as one line: the binary's context, then the error under it
/// (`context: cause`), unless the message already holds it. Library
/// errors name their own causes in their messages, so one level is enough.
pub fn one_line(error: &anyhow::Error) -> String {
    let line = error.to_string();
    match error.chain().nth(1).map(ToString::to_string) {
        Some(cause) if !line.contains(&cause) => format!("{line}: {cause}"),
        _ => line,
    }
}

/// Runs `f` with the runtime, turning an error into exit status 1.
pub fn with_runtime(global: &Global, f: impl FnOnce(&Runtime) -> anyhow::Result<i32>) -> i32 {
    match global.runtime().and_then(|r| f(&r)) {
        Ok(code) => code,
        Err(e) => global.fail(&e),
    }
}

/// A signal given as `9`, `KILL` or `SIGKILL`.
pub fn parse_signal(s: &str) -> anyhow::Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        if !(1..=64).contains(&n) {
            bail!("{s} is not a signal number");
        }
        return Ok(n);
    }
    let name = s.to_ascii_uppercase();
    let name = if name.starts_with("SIG") { name } else { format!("SIG{name}") };
    match name.parse::<nix::sys::signal::Signal>() {
        Ok(signal) => Ok(signal as i32),
        Err(_) => bail!("{s} is not a signal"),
    }
}
