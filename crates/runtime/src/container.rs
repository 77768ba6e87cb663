//! The OCI lifecycle over a runtime root: create (start the sandbox
//! process and wait until it is ready), start, state, kill, delete, exec,
//! and the hooks around them. The `moat` commands are thin over this.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use oci_spec::runtime::{Hook, LinuxResources};

use crate::bundle::Bundle;
use crate::cgroups::Cgroup;
use crate::control::{self, Connection, ExecProcess, Phase, Reply, Request};
use crate::sandbox::{cgroup_path, default_cgroup_path};
use crate::state::{process_alive, State, StateDir, Status};
use crate::subcommands::{BootCommand, RuntimeFlags};

/// A runtime operation failed; the message is the one line the user sees.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The bundle does not load.
    #[error("{0}")]
    Bundle(#[from] crate::bundle::BundleError),
    /// The container's state cannot be read or written.
    #[error("{0}")]
    State(#[from] crate::state::StateError),
    /// The sandbox process did not answer, or refused.
    #[error("{0}")]
    Control(#[from] control::ControlError),
    /// The container's cgroup cannot be used.
    #[error("{0}")]
    Cgroup(#[from] crate::cgroups::CgroupError),
    /// The spec asks for a terminal and the caller gave none.
    #[error("process.terminal is true but no --console-socket was given")]
    TerminalWithoutConsoleSocket,
    /// The sandbox process could not be started.
    #[error("cannot start the sandbox process: {what}: {source}")]
    SandboxSetup {
        /// The step that failed.
        what: &'static str,
        /// What it returned.
        source: std::io::Error,
    },
    /// The sandbox process could not be started in its PID namespace.
    #[error("{0}")]
    SandboxSpawn(#[from] crate::sandbox::NamespaceError),
    /// The sandbox process ended without saying why.
    #[error("the sandbox process ended before it was ready ({status})")]
    SandboxEnded {
        /// How it ended, as `Child::wait` says.
        status: String,
    },
    /// The sandbox process said why it could not get ready.
    #[error("{0}")]
    SandboxFailed(String),
    /// The process's program is not in the container, or not executable
    /// (runc's words, which engines read).
    #[error("unable to start container process: {0}")]
    Program(String),
    /// `start` on a container that is not created.
    #[error("container {id} is {status}, not created: it cannot be started")]
    NotCreated {
        /// The container.
        id: String,
        /// Its status.
        status: Status,
    },
    /// `kill` (other than SIGKILL) on a paused container.
    #[error("container {0} is paused: resume it first, or send SIGKILL")]
    Paused(String),
    /// The container's process has ended. containerd matches runc's
    /// words "container not running" (and otherwise retries forever).
    #[error("container not running: {0} has stopped")]
    NotRunning(String),
    /// `start` could not start the container's process; the container is
    /// gone (as runc's is when its create fails this way).
    #[error("cannot start container {id}'s process: {message}")]
    StartFailed {
        /// The container.
        id: String,
        /// Why, in runc's words (engines read them).
        message: String,
    },
    /// `delete` without --force on a running or paused container.
    #[error("container {id} is {status}: stop it first or use --force")]
    StillRunning {
        /// The container.
        id: String,
        /// Its status.
        status: Status,
    },
    /// `exec` on a container that is not running.
    #[error("container {id} is {status}, not running: cannot exec in it")]
    ExecNotRunning {
        /// The container.
        id: String,
        /// Its status.
        status: Status,
    },
    /// The sandbox answered with something the request does not expect.
    #[error("unexpected reply {what}: {reply:?}")]
    UnexpectedReply {
        /// Which request: "to exec", "to ps", "from exec".
        what: &'static str,
        /// The reply.
        reply: Reply,
    },
    /// An OCI hook could not be started.
    #[error("hook {}: {source}", .path.display())]
    HookSpawn {
        /// The hook's program.
        path: PathBuf,
        /// What spawn returned.
        source: std::io::Error,
    },
    /// An OCI hook could not be waited for.
    #[error("hook {}: waiting for it: {source}", .path.display())]
    HookWait {
        /// The hook's program.
        path: PathBuf,
        /// What wait returned.
        source: std::io::Error,
    },
    /// An OCI hook exited with a failure.
    #[error("hook {} failed: {status}", .path.display())]
    HookFailed {
        /// The hook's program.
        path: PathBuf,
        /// Its exit status.
        status: std::process::ExitStatus,
    },
    /// An OCI hook ran past its timeout and was killed.
    #[error("hook {} timed out after {seconds}s", .path.display())]
    HookTimeout {
        /// The hook's program.
        path: PathBuf,
        /// The timeout.
        seconds: u64,
    },
    /// No pseudo-terminal could be made.
    #[error("cannot make a terminal: {0}")]
    Terminal(#[source] nix::errno::Errno),
    /// The console socket cannot be connected to.
    #[error("cannot connect to the console socket {}: {source}", .socket.display())]
    ConsoleConnect {
        /// The socket.
        socket: PathBuf,
        /// What connect returned.
        source: std::io::Error,
    },
    /// The terminal could not be sent over the console socket.
    #[error("cannot send the terminal to {}: {source}", .socket.display())]
    ConsoleSend {
        /// The socket.
        socket: PathBuf,
        /// What sendmsg returned.
        source: nix::errno::Errno,
    },
    /// The pid file cannot be written.
    #[error("cannot write the pid file {}: {source}", .path.display())]
    PidFile {
        /// The pid file.
        path: PathBuf,
        /// What write or rename returned.
        source: std::io::Error,
    },
}

fn setup(what: &'static str) -> impl FnOnce(std::io::Error) -> RuntimeError {
    move |source| RuntimeError::SandboxSetup { what, source }
}

/// A runtime root (`--root`) and the moat binary that serves it.
#[derive(Debug, Clone)]
pub struct Runtime {
    /// The runtime's global flags: its root, and the log file handed on to
    /// sandbox processes.
    pub flags: RuntimeFlags,
}

/// Where a created container's stdio goes.
#[derive(Debug)]
pub enum Stdio3 {
    /// The caller's own stdin, stdout and stderr.
    Inherit,
    /// A new pseudo-terminal whose master is sent to this console socket.
    ConsoleSocket(PathBuf),
}

impl Runtime {
    /// The runtime its global flags describe.
    pub fn new(flags: RuntimeFlags) -> Runtime {
        Runtime { flags }
    }

    fn root(&self) -> &Path {
        &self.flags.root
    }

    /// `create`: validates the bundle, starts the sandbox process and waits
    /// until it is ready for `start`. Returns the sandbox process's pid.
    /// On any failure nothing is left behind.
    pub fn create(&self, id: &str, bundle_dir: &Path, stdio: Stdio3) -> Result<i32, RuntimeError> {
        let bundle = Bundle::load(bundle_dir)?;
        let terminal = bundle.spec.process().as_ref().and_then(|p| p.terminal()).unwrap_or(false);
        if terminal && !matches!(stdio, Stdio3::ConsoleSocket(_)) {
            return Err(RuntimeError::TerminalWithoutConsoleSocket);
        }
        crate::lookpath::check(&bundle.rootfs, &bundle.spec).map_err(RuntimeError::Program)?;
        let dir = StateDir::create(self.root(), id)?;
        // Saved at once, so that an engine killing us half-way leaves a
        // container `delete --force` can remove.
        let mut state = State::new(id, &bundle);
        if let Err(e) = dir.save(&state) {
            self.clean_up(dir, &bundle);
            return Err(e.into());
        }
        match self.spawn_sandbox(id, &bundle, stdio) {
            Ok(pid) => {
                state.status = Status::Created;
                state.pid = Some(pid);
                if let Err(e) = dir.save(&state) {
                    end_sandbox(pid, id);
                    self.clean_up(dir, &bundle);
                    return Err(e.into());
                }
                let hooks = bundle.spec.hooks().clone().unwrap_or_default();
                for hook in hooks.prestart().iter().chain(hooks.create_runtime()).flatten() {
                    if let Err(e) = run_hook(hook, &state) {
                        end_sandbox(pid, id);
                        self.clean_up(dir, &bundle);
                        return Err(e);
                    }
                }
                Ok(pid)
            }
            Err(e) => {
                self.clean_up(dir, &bundle);
                Err(e)
            }
        }
    }

    fn clean_up(&self, dir: StateDir, bundle: &Bundle) {
        let id = dir.path().file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if let Ok(cgroup) = Cgroup::open(&cgroup_path(bundle, &id)) {
            let _ = cgroup.remove();
        }
        let _ = dir.remove();
    }

    fn spawn_sandbox(&self, id: &str, bundle: &Bundle, stdio: Stdio3) -> Result<i32, RuntimeError> {
        // containerd's shim leaves its own socket open in us (fd 3): the
        // sandbox gets stdio and the ready pipe, nothing else.
        host::sys::cloexec_from(3).map_err(setup("closing inherited fds"))?;
        let (ready_read, ready_write) = nix::unistd::pipe().map_err(|e| setup("making its ready pipe")(e.into()))?;
        host::sys::set_cloexec(ready_write.as_fd(), false).map_err(setup("passing on its ready pipe"))?;
        let mut command = Command::new(std::env::current_exe().map_err(setup("finding the moat binary"))?);
        let boot = BootCommand { id: id.to_owned(), bundle: bundle.dir.clone(), ready_fd: ready_write.as_raw_fd() };
        command.args(boot.command_line(&self.flags));
        // Its own process group: a terminal's ^C to the caller is not for it.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        if let Stdio3::ConsoleSocket(socket) = &stdio {
            let slave = console(socket)?;
            command
                .stdin(Stdio::from(slave.try_clone().map_err(setup("sharing its terminal"))?))
                .stdout(Stdio::from(slave.try_clone().map_err(setup("sharing its terminal"))?))
                .stderr(Stdio::from(slave));
        }
        // pid 1 of a new PID namespace, so that the pid engines get is in
        // every namespace of the container (it enters the others itself,
        // before it says it is ready).
        let mut child = crate::sandbox::spawn_in_new_pid_namespace(&mut command)?;
        drop(command);
        drop(ready_write);
        let mut line = String::new();
        let read = BufReader::new(std::fs::File::from(ready_read)).read_line(&mut line);
        let pid = child.id() as i32;
        match read {
            Ok(n) if n > 0 && line == "\n" => Ok(pid),
            _ => {
                let _ = child.kill();
                let status = child.wait();
                let why = line.trim();
                if why.is_empty() {
                    Err(RuntimeError::SandboxEnded { status: format!("{status:?}") })
                } else {
                    Err(RuntimeError::SandboxFailed(why.to_owned()))
                }
            }
        }
    }

    /// The container's state, with its status as it is now.
    pub fn state(&self, id: &str) -> Result<State, RuntimeError> {
        let dir = StateDir::open(self.root(), id)?;
        let mut state = dir.load()?;
        state.status = live_status(&dir, &state);
        Ok(state)
    }

    /// Every container under the root, with live statuses and owners.
    pub fn list(&self) -> Result<Vec<State>, RuntimeError> {
        let mut out = Vec::new();
        for mut state in crate::state::list_entries(self.root())? {
            if let Ok(dir) = StateDir::open(self.root(), &state.id) {
                state.status = live_status(&dir, &state);
            }
            out.push(state);
        }
        Ok(out)
    }

    /// `start`: runs the container's process.
    pub fn start(&self, id: &str) -> Result<(), RuntimeError> {
        let state = self.state(id)?;
        if state.status != Status::Created {
            return Err(RuntimeError::NotCreated { id: id.to_owned(), status: state.status });
        }
        let dir = StateDir::open(self.root(), id)?;
        match control::call(&dir.control_socket(), &Request::Start) {
            Ok(_) => {}
            Err(control::ControlError::StartFailed(message)) => {
                // The sandbox is ending; nothing of the container stays
                // (no process, state or cgroup), as with runc, which finds
                // a missing program at create.
                self.delete(id, true)?;
                return Err(RuntimeError::StartFailed { id: id.to_owned(), message });
            }
            Err(e) => return Err(e.into()),
        }
        let bundle = Bundle::load(&state.bundle)?;
        let mut running = state.clone();
        running.status = Status::Running;
        dir.save(&running)?;
        for hook in bundle.spec.hooks().clone().unwrap_or_default().poststart().iter().flatten() {
            // A failing poststart hook is logged, not fatal (runtime spec).
            if let Err(e) = run_hook(hook, &running) {
                eprintln!("moat: poststart hook: {e}");
            }
        }
        Ok(())
    }

    /// `kill`: sends `signal` to the container's init (or all processes).
    /// SIGKILL needs no help from the Sentry: the sandbox process is killed
    /// from the host, and with it (pid 1 of the container's PID namespace)
    /// every process of the container, as runc's SIGKILL to init does; a
    /// Sentry that is stuck or stopped cannot keep the container alive.
    ///
    /// As runc's: a stopped container's init cannot be signalled (an error
    /// saying "container not running"), and `--all` of a stopped container
    /// signals the none left (no error).
    pub fn kill(&self, id: &str, signal: i32, all: bool) -> Result<(), RuntimeError> {
        let sent =
            if signal == libc::SIGKILL { self.kill_sandbox(id) } else { self.signal_in_sandbox(id, signal, all) };
        match sent {
            Err(RuntimeError::NotRunning(_)) if all => Ok(()),
            sent => sent,
        }
    }

    fn signal_in_sandbox(&self, id: &str, signal: i32, all: bool) -> Result<(), RuntimeError> {
        let state = self.state(id)?;
        if state.status == Status::Stopped {
            return Err(not_running(id));
        }
        if state.status == Status::Paused {
            // A frozen sandbox cannot take the request.
            return Err(RuntimeError::Paused(id.to_owned()));
        }
        let dir = StateDir::open(self.root(), id)?;
        if let Err(e) = control::call(&dir.control_socket(), &Request::Kill { signal, all, pid: None }) {
            // Init may have exited since: then say so, in runc's words.
            let stopped = dir.load().is_ok_and(|state| live_status(&dir, &state) == Status::Stopped);
            return Err(if stopped { not_running(id) } else { e.into() });
        }
        Ok(())
    }

    fn kill_sandbox(&self, id: &str) -> Result<(), RuntimeError> {
        let dir = StateDir::open(self.root(), id)?;
        let state = dir.load()?;
        let sandbox =
            state.pid.filter(|_| state.status != Status::Stopped).and_then(|pid| SandboxProcess::find(pid, id));
        let Some(sandbox) = sandbox else { return Err(not_running(id)) };
        if state.status == Status::Paused {
            sandbox.kill();
            // Frozen processes die only once thawed.
            self.cgroup(id)?.thaw()?;
            return Ok(());
        }
        // Once init has exited the sandbox is ending by itself, with init's
        // status, which a kill now would replace. A sandbox that does not
        // answer in time is killed all the same.
        let phase = control::call_within(&dir.control_socket(), &Request::State, KILL_STATE_TIMEOUT);
        if matches!(phase, Ok(Reply::State { phase: Phase::Stopped })) {
            return Err(not_running(id));
        }
        sandbox.kill();
        Ok(())
    }

    /// `delete`: removes a stopped container (any container with `force`).
    pub fn delete(&self, id: &str, force: bool) -> Result<(), RuntimeError> {
        let dir = StateDir::open(self.root(), id)?;
        let state = match dir.load() {
            Ok(state) => state,
            // Half-created, or its state is unreadable: nothing more to stop.
            Err(_) if force => return Ok(dir.remove()?),
            Err(e) => return Err(e.into()),
        };
        // With --force the sandbox is not asked how it is (it may not answer).
        let status = (!force).then(|| live_status(&dir, &state));
        // As runc: a created container is deleted (its process killed) without --force.
        if let Some(status @ (Status::Running | Status::Paused)) = status {
            return Err(RuntimeError::StillRunning { id: id.to_owned(), status });
        }
        let sandbox =
            state.pid.filter(|_| status != Some(Status::Stopped)).and_then(|pid| SandboxProcess::find(pid, id));
        if let Some(sandbox) = sandbox {
            // Killing the sandbox process ends its PID namespace, and with it
            // every process of the container.
            sandbox.kill();
            if state.status == Status::Paused {
                // Frozen processes die only once thawed.
                if let Ok(cgroup) = self.cgroup(id) {
                    let _ = cgroup.thaw();
                }
            }
            sandbox.wait_gone();
        }
        let bundle = Bundle::load(&state.bundle).ok();
        let cgroup = bundle.as_ref().map(|b| cgroup_path(b, id)).unwrap_or_else(|| default_cgroup_path(id));
        // Removed once empty; its processes are never killed one by one, as
        // the path may be shared with what is not ours.
        if let Ok(cgroup) = Cgroup::open(&cgroup) {
            cgroup.remove()?;
        }
        let mut stopped = state.clone();
        stopped.status = Status::Stopped;
        dir.remove()?;
        if let Some(bundle) = bundle {
            for hook in bundle.spec.hooks().clone().unwrap_or_default().poststop().iter().flatten() {
                if let Err(e) = run_hook(hook, &stopped) {
                    eprintln!("moat: poststop hook: {e}");
                }
            }
        }
        Ok(())
    }

    /// `exec`: starts `process` in the running container with the given
    /// stdio; returns a handle that reports its exit.
    pub fn exec(&self, id: &str, process: &ExecProcess, stdio: [RawFd; 3]) -> Result<Exec, RuntimeError> {
        let state = self.state(id)?;
        if state.status != Status::Running {
            return Err(RuntimeError::ExecNotRunning { id: id.to_owned(), status: state.status });
        }
        let dir = StateDir::open(self.root(), id)?;
        let mut connection = Connection::request(&dir.control_socket(), &Request::Exec(process.clone()), &stdio)?;
        match connection.reply()? {
            Reply::Started { pid } => Ok(Exec { pid, connection }),
            reply => Err(RuntimeError::UnexpectedReply { what: "to exec", reply }),
        }
    }

    /// `ps`: the sandbox's processes.
    pub fn processes(&self, id: &str) -> Result<Vec<control::Process>, RuntimeError> {
        let dir = StateDir::open(self.root(), id)?;
        match control::call(&dir.control_socket(), &Request::Ps)? {
            Reply::Processes { processes } => Ok(processes),
            reply => Err(RuntimeError::UnexpectedReply { what: "to ps", reply }),
        }
    }

    /// The sandbox network's counters (`Reply::NetStats`), as runc's
    /// `network_interfaces` and moat's own `network`, for `events --stats`.
    pub fn net_stats_json(&self, id: &str) -> Result<serde_json::Value, RuntimeError> {
        let dir = StateDir::open(self.root(), id)?;
        match control::call(&dir.control_socket(), &Request::NetStats)? {
            Reply::NetStats { interfaces, tcp_connects, tcp_accepts, egress_refusals } => Ok(serde_json::json!({
                "network_interfaces": interfaces,
                "network": {
                    "tcp_connects": tcp_connects,
                    "tcp_accepts": tcp_accepts,
                    "egress_refusals": egress_refusals,
                },
            })),
            reply => Err(RuntimeError::UnexpectedReply { what: "to network stats", reply }),
        }
    }

    /// Records a status the sandbox cannot know (paused by the freezer).
    pub fn set_status(&self, id: &str, status: Status) -> Result<(), RuntimeError> {
        let dir = StateDir::open(self.root(), id)?;
        let mut state = dir.load()?;
        state.status = status;
        Ok(dir.save(&state)?)
    }

    /// `update`: applies new limits to the container's cgroup, as the host
    /// applies a spec's (the pids limit raised for the sandbox's own tasks).
    pub fn update(&self, id: &str, resources: &LinuxResources) -> Result<(), RuntimeError> {
        Ok(self.cgroup(id)?.update(&crate::sandbox::host_resources(resources))?)
    }

    /// `run`: creates and starts the container and, unless `detach`, waits
    /// for it, deletes it and returns its exit status. The sandbox process's
    /// pid goes to `pid_file`. A container that fails to start is deleted.
    pub fn run(
        &self,
        id: &str,
        bundle: &Path,
        stdio: Stdio3,
        pid_file: Option<&Path>,
        detach: bool,
    ) -> Result<i32, RuntimeError> {
        let pid = self.create(id, bundle, stdio)?;
        if let Some(path) = pid_file {
            write_pid_file(path, pid)?;
        }
        if let Err(e) = self.start(id) {
            let _ = self.delete(id, true);
            return Err(e);
        }
        if detach {
            return Ok(0);
        }
        // The sandbox process is our child: its exit status is the container's.
        let status = loop {
            match waitpid(Pid::from_raw(pid), None) {
                Ok(WaitStatus::Exited(_, code)) => break code,
                Ok(WaitStatus::Signaled(_, sig, _)) => break 128 + sig as i32,
                Ok(_) => continue,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => {
                    // Not our child after all (reparented): poll until it is gone.
                    while self.state(id).map(|s| s.status != Status::Stopped).unwrap_or(false) {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    break 0;
                }
            }
        };
        self.delete(id, true)?;
        Ok(status)
    }

    /// The container's cgroup.
    pub fn cgroup(&self, id: &str) -> Result<Cgroup, RuntimeError> {
        let state = StateDir::open(self.root(), id)?.load()?;
        let bundle = Bundle::load(&state.bundle)?;
        Ok(Cgroup::open(&cgroup_path(&bundle, id))?)
    }
}

/// A process started by [`Runtime::exec`].
#[derive(Debug)]
pub struct Exec {
    /// Its pid inside the sandbox.
    pub pid: i32,
    connection: Connection,
}

impl Exec {
    /// Waits for the process to end; returns its wait status.
    pub fn wait(mut self) -> Result<i32, RuntimeError> {
        match self.connection.reply()? {
            Reply::Exited { status } => Ok(status),
            reply => Err(RuntimeError::UnexpectedReply { what: "from exec", reply }),
        }
    }
}

/// How long `kill` waits for a sandbox to say whether its init has
/// exited before it sends SIGKILL regardless: the control thread answers at
/// once unless the Sentry is stuck or stopped.
const KILL_STATE_TIMEOUT: Duration = Duration::from_secs(2);

fn not_running(id: &str) -> RuntimeError {
    RuntimeError::NotRunning(id.to_owned())
}

/// The sandbox process of a container, held by a pidfd: a signal sent
/// through it reaches that process or none, never another that got its pid.
struct SandboxProcess {
    pidfd: OwnedFd,
}

impl SandboxProcess {
    /// Container `id`'s sandbox process at host pid `pid`, if it still is.
    fn find(pid: i32, id: &str) -> Option<SandboxProcess> {
        let pidfd = host::sys::pidfd_open(pid).ok()?;
        // Checked with the pidfd open: had the pid been reused before, the
        // check sees the new process; if it is reused after, the pidfd still
        // names the old one, and signals nothing once it has exited.
        is_sandbox_of(pid, id).then_some(SandboxProcess { pidfd })
    }

    /// SIGKILLs it; it may be gone already.
    fn kill(&self) {
        let _ = host::sys::pidfd_send_signal(self.pidfd.as_fd(), libc::SIGKILL);
    }

    /// Waits (a few seconds at most) until it has exited: for pid 1 of a
    /// PID namespace that is once every process of the namespace has.
    fn wait_gone(&self) {
        let _ = host::sys::poll_one(self.pidfd.as_fd(), libc::POLLIN, 5000);
    }
}

/// Ends the sandbox process `pid` of container `id` that `create` started.
fn end_sandbox(pid: i32, id: &str) {
    if let Some(sandbox) = SandboxProcess::find(pid, id) {
        sandbox.kill();
        sandbox.wait_gone();
    }
}

/// Whether host process `pid` is the sandbox process of container `id`
/// (and not another process that got its pid after it died).
fn is_sandbox_of(pid: i32, id: &str) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { return false };
    BootCommand::is_boot_of(&cmdline, id)
}

fn live_status(dir: &StateDir, state: &State) -> Status {
    let Some(pid) = state.pid else {
        return if state.status == Status::Creating { Status::Creating } else { Status::Stopped };
    };
    if !is_sandbox_of(pid, &state.id) {
        return Status::Stopped;
    }
    if state.status == Status::Stopped {
        return Status::Stopped;
    }
    if state.status == Status::Paused {
        // Frozen, it cannot answer; it is paused as long as it lives.
        return Status::Paused;
    }
    if !process_alive(pid) {
        return Status::Stopped;
    }
    match control::call(&dir.control_socket(), &Request::State) {
        Ok(Reply::State { phase: Phase::Created }) => Status::Created,
        Ok(Reply::State { phase: Phase::Running }) => {
            if state.status == Status::Paused {
                Status::Paused
            } else {
                Status::Running
            }
        }
        Ok(_) => Status::Stopped,
        // Alive but not answering: still setting up or going away.
        Err(_) => state.status,
    }
}

/// Runs an OCI hook with the container's state on its stdin.
fn run_hook(hook: &Hook, state: &State) -> Result<(), RuntimeError> {
    let path = hook.path();
    let mut args = hook.args().clone().unwrap_or_default();
    let argv0 = if args.is_empty() { path.display().to_string() } else { args.remove(0) };
    let mut command = Command::new(path);
    std::os::unix::process::CommandExt::arg0(&mut command, argv0);
    command.args(args).env_clear().stdin(Stdio::piped());
    for e in hook.env().clone().unwrap_or_default() {
        if let Some((k, v)) = e.split_once('=') {
            command.env(k, v);
        }
    }
    let mut child = command.spawn().map_err(|source| RuntimeError::HookSpawn { path: path.clone(), source })?;
    // Serializing a State cannot fail: every key is a string.
    let json = serde_json::to_vec(state).unwrap_or_default();
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(&json);
    }
    let timeout = hook.timeout().map(|t| Duration::from_secs(t.max(1) as u64)).unwrap_or(Duration::from_secs(60));
    let deadline = Instant::now() + timeout;
    loop {
        let exited = child.try_wait().map_err(|source| RuntimeError::HookWait { path: path.clone(), source })?;
        if let Some(status) = exited {
            return if status.success() {
                Ok(())
            } else {
                Err(RuntimeError::HookFailed { path: path.clone(), status })
            };
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(RuntimeError::HookTimeout { path: path.clone(), seconds: timeout.as_secs() });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Makes a pseudo-terminal, sends its master to the console socket (as
/// runc does), and returns the slave for the container's stdio.
pub fn console(socket: &Path) -> Result<OwnedFd, RuntimeError> {
    let pty = nix::pty::openpty(None, None).map_err(RuntimeError::Terminal)?;
    let stream = UnixStream::connect(socket)
        .map_err(|source| RuntimeError::ConsoleConnect { socket: socket.to_owned(), source })?;
    let name = b"/dev/ptmx";
    let iov = [std::io::IoSlice::new(name)];
    let fds = [pty.master.as_raw_fd()];
    let cmsg = [nix::sys::socket::ControlMessage::ScmRights(&fds)];
    nix::sys::socket::sendmsg::<()>(stream.as_raw_fd(), &iov, &cmsg, nix::sys::socket::MsgFlags::empty(), None)
        .map_err(|source| RuntimeError::ConsoleSend { socket: socket.to_owned(), source })?;
    Ok(pty.slave)
}

/// Writes `pid` to the pid file atomically (a temporary file renamed), as
/// runc does.
pub fn write_pid_file(path: &Path, pid: i32) -> Result<(), RuntimeError> {
    let tmp = path.with_extension("moat-tmp");
    std::fs::write(&tmp, pid.to_string())
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|source| RuntimeError::PidFile { path: path.to_owned(), source })
}
