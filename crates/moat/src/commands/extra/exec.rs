//! `moat exec`: run another process in a running container. Its exit status
//! is moat's; with --detach a background moat process waits for it and
//! exits with it, so that the pid in --pid-file reports it (as the
//! containerd shim expects).

use std::path::PathBuf;

use runtime::exec::ExecRequest;
use runtime::subcommands::ExecWaiter;

use crate::commands::oci::{with_runtime, Global};

#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// The process as OCI process JSON (instead of the command line).
    #[arg(long, short = 'p')]
    pub process: Option<PathBuf>,
    #[arg(long, short = 'd')]
    pub detach: bool,
    #[arg(long, short = 't')]
    pub tty: bool,
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    #[arg(long)]
    pub cwd: Option<String>,
    /// KEY=VALUE, may be repeated.
    #[arg(long, short = 'e')]
    pub env: Vec<String>,
    /// UID[:GID].
    #[arg(long, short = 'u')]
    pub user: Option<String>,
    #[command(flatten)]
    pub waiter: ExecWaiter,
    pub id: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

pub fn run(global: &Global, a: ExecArgs) -> i32 {
    let request = ExecRequest {
        id: a.id,
        process_file: a.process,
        command: a.command,
        cwd: a.cwd,
        env: a.env,
        user: a.user,
        detach: a.detach,
        console_socket: a.console_socket,
        pid_file: a.pid_file,
        waiter: a.waiter,
    };
    with_runtime(global, |r| Ok(r.exec_command(&request)?))
}
