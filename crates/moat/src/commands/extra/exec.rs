//! `moat exec`: run another process in a running container. Its exit status
//! is moat's; with --detach a background moat process waits for it and
//! exits with it, so that the pid in --pid-file reports it (as the
//! containerd shim expects).

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd};
use std::path::PathBuf;

use oci_spec::runtime::Process;
use runtime::control::ExecProcess;

use crate::commands::oci::create::write_pid_file;
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
    /// Set by moat itself: this is the background waiter of a detached exec,
    /// which reports on this fd that the process runs (an empty line) or why not.
    #[arg(long, hide = true)]
    pub waiter_fd: Option<std::os::fd::RawFd>,
    pub id: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

pub fn run(global: &Global, a: ExecArgs) -> i32 {
    let mut ready = match a.waiter_fd.map(host::sys::take_inherited_fd).transpose() {
        Ok(fd) => fd.map(std::fs::File::from),
        Err(e) => return global.fail(format!("exec: --waiter-fd: {e}")),
    };
    with_runtime(global, |r| {
        let started = start(r, &a);
        match (started, ready.take()) {
            (Ok(exec), Some(mut ready)) => {
                write_pid_file(a.pid_file.as_deref(), std::process::id() as i32)?;
                // Tell the foreground moat that the process runs.
                let _ = writeln!(ready);
                wait(exec)
            }
            (Ok(exec), None) => wait(exec),
            (Err(e), Some(mut ready)) => {
                let _ = writeln!(ready, "{e}");
                Err(e)
            }
            (Err(e), None) => Err(e),
        }
    })
}

enum Started {
    Exec(runtime::container::Exec),
    /// Detached: the waiter runs it; nothing to wait for here.
    Detached,
}

fn start(r: &runtime::container::Runtime, a: &ExecArgs) -> Result<Started, String> {
    let process = process(a)?;
    if a.detach && a.waiter_fd.is_none() {
        detach(a)?;
        return Ok(Started::Detached);
    }
    // With a console socket the process gets a new terminal, whose
    // master goes to the socket; otherwise (even with --tty) our stdio.
    let terminal = match &a.console_socket {
        Some(socket) => Some(runtime::container::console(socket).map_err(|e| e.to_string())?),
        None => None,
    };
    let stdio = match &terminal {
        Some(slave) => [slave.as_raw_fd(); 3],
        None => [std::io::stdin().as_raw_fd(), std::io::stdout().as_raw_fd(), std::io::stderr().as_raw_fd()],
    };
    let exec = r.exec(&a.id, &process, stdio).map_err(|e| e.to_string())?;
    Ok(Started::Exec(exec))
}

fn wait(started: Started) -> Result<i32, String> {
    match started {
        Started::Exec(exec) => Ok(runtime::sandbox::exit_code(exec.wait().map_err(|e| e.to_string())?)),
        Started::Detached => Ok(0),
    }
}

/// Re-runs this exec as a background waiter, with the same stdio (the
/// process's), and returns once the process runs.
fn detach(a: &ExecArgs) -> Result<(), String> {
    use std::io::BufRead;
    // Only stdio and the ready pipe go to the waiter, not the engine's own fds.
    host::sys::cloexec_from(3).map_err(|e| e.to_string())?;
    let (ready_read, ready_write) = nix::unistd::pipe().map_err(|e| e.to_string())?;
    host::sys::set_cloexec(ready_write.as_fd(), false).map_err(|e| e.to_string())?;
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let at = args.iter().position(|x| x == "exec").map_or(0, |i| i + 1);
    args.splice(at..at, ["--waiter-fd".to_owned(), ready_write.as_raw_fd().to_string()]);
    let mut child = std::process::Command::new(std::env::current_exe().map_err(|e| e.to_string())?)
        .args(&args)
        .spawn()
        .map_err(|e| format!("cannot start the exec waiter: {e}"))?;
    drop(ready_write);
    let mut line = String::new();
    let _ = std::io::BufReader::new(std::fs::File::from(ready_read)).read_line(&mut line);
    if line == "\n" {
        return Ok(());
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    match line.trim() {
        "" => Err(format!("exec in {} failed ({status})", a.id)),
        why => Err(why.to_owned()),
    }
}

fn process(a: &ExecArgs) -> Result<ExecProcess, String> {
    let mut p = match &a.process {
        Some(path) => {
            let json = std::fs::read_to_string(path).map_err(|e| format!("--process {}: {e}", path.display()))?;
            let spec: Process = serde_json::from_str(&json)
                .map_err(|e| format!("--process {}: not OCI process JSON: {e}", path.display()))?;
            ExecProcess {
                args: spec.args().clone().unwrap_or_default(),
                env: spec.env().clone().unwrap_or_default(),
                cwd: spec.cwd().display().to_string(),
                uid: spec.user().uid(),
                gid: spec.user().gid(),
                groups: spec.user().additional_gids().clone().unwrap_or_default(),
                capabilities: spec.capabilities().as_ref().map(runtime::sandbox::capability_masks),
                no_new_privileges: spec.no_new_privileges(),
            }
        }
        None => ExecProcess {
            args: a.command.clone(),
            env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()],
            cwd: "/".into(),
            uid: 0,
            gid: 0,
            groups: Vec::new(),
            capabilities: None,
            no_new_privileges: None,
        },
    };
    if p.args.is_empty() {
        return Err("exec needs a command".into());
    }
    if let Some(cwd) = &a.cwd {
        p.cwd = cwd.clone();
    }
    p.env.extend(a.env.iter().cloned());
    if let Some(user) = &a.user {
        let (uid, gid) = user.split_once(':').unwrap_or((user, "0"));
        p.uid = uid.parse().map_err(|_| format!("--user {user}: not UID[:GID]"))?;
        p.gid = gid.parse().map_err(|_| format!("--user {user}: not UID[:GID]"))?;
    }
    Ok(p)
}
