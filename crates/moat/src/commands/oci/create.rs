//! `moat create`: set up a container's sandbox and leave it waiting for `start`.

use std::path::PathBuf;

use runtime::container::Stdio3;

use super::{with_runtime, Global};

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The bundle directory (config.json and the root filesystem).
    #[arg(long, short = 'b', default_value = ".")]
    pub bundle: PathBuf,
    /// Write the sandbox process's pid here.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// A Unix socket to send the terminal's master to (process.terminal).
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Accepted for runc compatibility; the Sentry never pivots the host root.
    #[arg(long)]
    pub no_pivot: bool,
    /// Accepted for runc compatibility.
    #[arg(long)]
    pub no_new_keyring: bool,
    pub id: String,
}

pub fn run(global: &Global, a: CreateArgs) -> i32 {
    with_runtime(global, |r| {
        let stdio = match a.console_socket {
            Some(socket) => Stdio3::ConsoleSocket(socket),
            None => Stdio3::Inherit,
        };
        let pid = r.create(&a.id, &a.bundle, stdio).map_err(|e| e.to_string())?;
        write_pid_file(a.pid_file.as_deref(), pid)?;
        Ok(0)
    })
}

/// Writes `pid` to the pid file atomically, as runc does.
pub fn write_pid_file(path: Option<&std::path::Path>, pid: i32) -> Result<(), String> {
    let Some(path) = path else { return Ok(()) };
    let tmp = path.with_extension("moat-tmp");
    std::fs::write(&tmp, pid.to_string())
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("cannot write the pid file {}: {e}", path.display()))
}
