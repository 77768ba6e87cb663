//! `moat run`: create and start a container, and (unless detached) wait for
//! it, exit with its status and delete it.

use std::time::Duration;

use runtime::container::Stdio3;
use runtime::state::Status;

use crate::commands::oci::create::{write_pid_file, CreateArgs};
use crate::commands::oci::{with_runtime, Global};

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    /// Return once the container runs, leaving it running.
    #[arg(long, short = 'd')]
    pub detach: bool,
}

pub fn run(global: &Global, a: RunArgs) -> i32 {
    with_runtime(global, |r| {
        let c = a.create;
        let stdio = match c.console_socket {
            Some(socket) => Stdio3::ConsoleSocket(socket),
            None => Stdio3::Inherit,
        };
        let pid = r.create(&c.id, &c.bundle, stdio).map_err(|e| e.to_string())?;
        write_pid_file(c.pid_file.as_deref(), pid)?;
        let id = c.id;
        if let Err(e) = r.start(&id) {
            let _ = r.delete(&id, true);
            return Err(e.to_string());
        }
        if a.detach {
            return Ok(0);
        }
        // The sandbox process is our child: its exit status is the container's.
        let status = loop {
            match nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None) {
                Ok(nix::sys::wait::WaitStatus::Exited(_, code)) => break code,
                Ok(nix::sys::wait::WaitStatus::Signaled(_, sig, _)) => break 128 + sig as i32,
                Ok(_) => continue,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => {
                    // Not our child after all (reparented): poll until it is gone.
                    while r.state(&id).map(|s| s.status != Status::Stopped).unwrap_or(false) {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    break 0;
                }
            }
        };
        r.delete(&id, true).map_err(|e| e.to_string())?;
        Ok(status)
    })
}
