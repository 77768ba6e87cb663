//! `moat create`: set up a container's sandbox and leave it waiting for `start`.

use std::path::PathBuf;

use runtime::container::{write_pid_file, Stdio3};

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

impl CreateArgs {
    /// Where the container's stdio goes.
    pub fn stdio(&self) -> Stdio3 {
        match &self.console_socket {
            Some(socket) => Stdio3::ConsoleSocket(socket.clone()),
            None => Stdio3::Inherit,
        }
    }
}

pub fn run(global: &Global, a: CreateArgs) -> i32 {
    with_runtime(global, |r| {
        let pid = r.create(&a.id, &a.bundle, a.stdio())?;
        if let Some(path) = &a.pid_file {
            write_pid_file(path, pid)?;
        }
        Ok(0)
    })
}
