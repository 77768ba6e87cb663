//! `moat exec`: the process to start in a running container (from the
//! command line or OCI process JSON), its stdio, and with `--detach` a
//! background `moat exec` that waits for it, so that the pid in
//! `--pid-file` reports its exit (as the containerd shim expects).

use std::io::{BufRead, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;

use crate::bundle::Bundle;
use crate::container::{console, write_pid_file, Exec, Runtime, RuntimeError};
use crate::control::ExecProcess;
use crate::sandbox::{capability_masks, exit_code};
use crate::state::StateDir;
use crate::subcommands::{args_with, ExecWaiter};

/// The PATH of a process exec'd from the command line, as Docker sets it.
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What `moat exec` is asked to run, and how.
#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    /// The container.
    pub id: String,
    /// The process as an OCI process JSON file, instead of `command`.
    pub process_file: Option<PathBuf>,
    /// The command and its arguments.
    pub command: Vec<String>,
    /// The working directory, replacing the process's.
    pub cwd: Option<String>,
    /// `KEY=VALUE`s added to the process's environment.
    pub env: Vec<String>,
    /// `UID[:GID]`, replacing the process's user.
    pub user: Option<String>,
    /// Return once the process runs, leaving a background waiter.
    pub detach: bool,
    /// Where to send the master of a new terminal for the process.
    pub console_socket: Option<PathBuf>,
    /// Where to write the pid of the moat process that waits for it.
    pub pid_file: Option<PathBuf>,
    /// Set when this is the background waiter of a detached exec.
    pub waiter: ExecWaiter,
}

/// Why `moat exec` could not run the process.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The waiter's `--waiter-fd` is not an open fd.
    #[error("exec: --waiter-fd: {0}")]
    WaiterFd(#[source] std::io::Error),
    /// The container refused, or the runtime failed.
    #[error("{0}")]
    Runtime(#[from] RuntimeError),
    /// The `--process` file cannot be read.
    #[error("--process {}: {source}", .path.display())]
    ProcessRead {
        /// The file.
        path: PathBuf,
        /// What the read returned.
        source: std::io::Error,
    },
    /// The `--process` file is not an OCI process.
    #[error("--process {}: not OCI process JSON: {source}", .path.display())]
    ProcessJson {
        /// The file.
        path: PathBuf,
        /// Where and why it does not parse.
        source: serde_json::Error,
    },
    /// Neither a command nor a process with args was given.
    #[error("exec needs a command")]
    NoCommand,
    /// `--user` is not `UID[:GID]`.
    #[error("--user {0}: not UID[:GID]")]
    User(String),
    /// The background waiter could not be started.
    #[error("cannot start the exec waiter: {what}: {source}")]
    WaiterStart {
        /// The step that failed.
        what: &'static str,
        /// What it returned.
        source: std::io::Error,
    },
    /// The background waiter ended without saying why.
    #[error("exec in {id} failed ({status})")]
    WaiterEnded {
        /// The container.
        id: String,
        /// How the waiter ended.
        status: std::process::ExitStatus,
    },
    /// The background waiter said why the process did not start.
    #[error("{0}")]
    WaiterFailed(String),
}

fn waiter_start(what: &'static str) -> impl FnOnce(std::io::Error) -> ExecError {
    move |source| ExecError::WaiterStart { what, source }
}

enum Started {
    Exec(Exec),
    /// Detached: the waiter runs it; nothing to wait for here.
    Detached,
}

impl Runtime {
    /// `moat exec`: starts the process and returns its exit code, or 0 once
    /// a detached one runs. The background waiter of a detached exec tells
    /// the foreground one on its `--waiter-fd` that the process runs (an
    /// empty line), or why not.
    pub fn exec_command(&self, request: &ExecRequest) -> Result<i32, ExecError> {
        let ready = request.waiter.waiter_fd.map(host::sys::take_inherited_fd).transpose();
        let mut ready = ready.map_err(ExecError::WaiterFd)?.map(std::fs::File::from);
        match (self.start_exec(request), ready.take()) {
            (Ok(exec), Some(mut ready)) => {
                if let Some(path) = &request.pid_file {
                    write_pid_file(path, std::process::id() as i32)?;
                }
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
    }

    fn start_exec(&self, request: &ExecRequest) -> Result<Started, ExecError> {
        let mut process = process(request)?;
        if request.detach && request.waiter.waiter_fd.is_none() {
            detach(request)?;
            return Ok(Started::Detached);
        }
        // The container's rootfs on the host, which holds the container's
        // own changes (a user it adds counts, as under runc) unless
        // `--overlay` keeps them in the Sentry's memory.
        let state =
            StateDir::open(&self.flags.root, &request.id).and_then(|dir| dir.load()).map_err(RuntimeError::from)?;
        let bundle = Bundle::load(&state.bundle).map_err(RuntimeError::from)?;
        crate::passwd::set_home(&mut process.env, &bundle.rootfs, process.uid);
        // With a console socket the process gets a new terminal, whose
        // master goes to the socket; otherwise (even with --tty) our stdio.
        let terminal: Option<OwnedFd> = request.console_socket.as_deref().map(console).transpose()?;
        let stdio = match &terminal {
            Some(slave) => [slave.as_raw_fd(); 3],
            None => [std::io::stdin().as_raw_fd(), std::io::stdout().as_raw_fd(), std::io::stderr().as_raw_fd()],
        };
        Ok(Started::Exec(self.exec(&request.id, &process, stdio)?))
    }
}

fn wait(started: Started) -> Result<i32, ExecError> {
    match started {
        Started::Exec(exec) => Ok(exit_code(exec.wait()?)),
        Started::Detached => Ok(0),
    }
}

/// Re-runs this exec as a background waiter, with the same stdio (the
/// process's), and returns once the process runs.
fn detach(request: &ExecRequest) -> Result<(), ExecError> {
    // Only stdio and the ready pipe go to the waiter, not the engine's own fds.
    host::sys::cloexec_from(3).map_err(waiter_start("closing inherited fds"))?;
    let (ready_read, ready_write) = nix::unistd::pipe().map_err(|e| waiter_start("making its ready pipe")(e.into()))?;
    host::sys::set_cloexec(ready_write.as_fd(), false).map_err(waiter_start("passing on its ready pipe"))?;
    let waiter = ExecWaiter { waiter_fd: Some(ready_write.as_raw_fd()) };
    let moat = std::env::current_exe().map_err(waiter_start("finding the moat binary"))?;
    let mut child = std::process::Command::new(moat)
        .args(args_with(ExecWaiter::SUBCOMMAND, &waiter.to_args()))
        .spawn()
        .map_err(waiter_start("spawning it"))?;
    drop(ready_write);
    let mut line = String::new();
    let _ = std::io::BufReader::new(std::fs::File::from(ready_read)).read_line(&mut line);
    if line == "\n" {
        return Ok(());
    }
    let status = child.wait().map_err(waiter_start("waiting for it"))?;
    match line.trim() {
        "" => Err(ExecError::WaiterEnded { id: request.id.clone(), status }),
        why => Err(ExecError::WaiterFailed(why.to_owned())),
    }
}

/// The process to start: from `--process` or the command line, with the
/// request's cwd, env and user applied.
fn process(request: &ExecRequest) -> Result<ExecProcess, ExecError> {
    let mut p = match &request.process_file {
        Some(path) => {
            let json = std::fs::read_to_string(path)
                .map_err(|source| ExecError::ProcessRead { path: path.clone(), source })?;
            let spec: oci_spec::runtime::Process =
                serde_json::from_str(&json).map_err(|source| ExecError::ProcessJson { path: path.clone(), source })?;
            ExecProcess {
                args: spec.args().clone().unwrap_or_default(),
                env: spec.env().clone().unwrap_or_default(),
                cwd: spec.cwd().display().to_string(),
                uid: spec.user().uid(),
                gid: spec.user().gid(),
                groups: spec.user().additional_gids().clone().unwrap_or_default(),
                capabilities: spec.capabilities().as_ref().map(capability_masks),
                no_new_privileges: spec.no_new_privileges(),
            }
        }
        None => ExecProcess {
            args: request.command.clone(),
            env: vec![DEFAULT_PATH.into()],
            cwd: "/".into(),
            uid: 0,
            gid: 0,
            groups: Vec::new(),
            capabilities: None,
            no_new_privileges: None,
        },
    };
    if p.args.is_empty() {
        return Err(ExecError::NoCommand);
    }
    if let Some(cwd) = &request.cwd {
        p.cwd = cwd.clone();
    }
    p.env.extend(request.env.iter().cloned());
    if let Some(user) = &request.user {
        let (uid, gid) = user.split_once(':').unwrap_or((user, "0"));
        p.uid = uid.parse().map_err(|_| ExecError::User(user.clone()))?;
        p.gid = gid.parse().map_err(|_| ExecError::User(user.clone()))?;
    }
    Ok(p)
}
