//! The sandbox process's control server: one thread per connection answers
//! `state`, `start`, `kill`, `ps`, `exec` and egress policy replacements
//! while the main thread runs init.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::{mpsc, Arc, Mutex};

use sentry::{BootError, CapSets, HostStdio, ProcessConfig, Sandbox};

use super::{exit_code, Prepared};
use crate::control::{ExecProcess, Incoming, Phase, Process, Reply, Request};
use crate::egress::{PolicyRules, Verdict};
/// Shared between the control thread and the main thread.
#[derive(Default)]
struct Shared {
    sandbox: Mutex<Option<Arc<Sandbox>>>,
    stopped: Mutex<bool>,
    /// Set by the first `start`; a second is refused.
    started: std::sync::atomic::AtomicBool,
    /// What an exec'd process gets when its request does not say: init's
    /// capabilities and no_new_privs, as the spec gives them (runc's way).
    exec_defaults: ExecDefaults,
    /// The default verdict the container's policy started with, which a
    /// replacement without one of its own keeps (unknown: deny, failing closed).
    egress_default: Option<Verdict>,
}

#[derive(Default, Clone)]
struct ExecDefaults {
    capabilities: Option<CapSets>,
    no_new_privileges: bool,
    /// init's resource limits, which exec'd processes get too.
    rlimits: Vec<(u32, u64, u64)>,
}

impl Prepared {
    /// Serves the control socket until init exits; returns the exit status.
    pub(super) fn serve(&mut self, listener: UnixListener) -> i32 {
        let exec_defaults = self.config.as_ref().map_or_else(ExecDefaults::default, |c| ExecDefaults {
            capabilities: c.init.capabilities,
            no_new_privileges: c.init.no_new_privileges,
            rlimits: c.init.rlimits.clone(),
        });
        let egress_default = self.egress.as_ref().map(|e| e.policy.default);
        let shared = Arc::new(Shared { exec_defaults, egress_default, ..Shared::default() });
        // `start` hands over where to say how the start went.
        let (start_tx, start_rx) = mpsc::channel::<mpsc::Sender<Result<(), String>>>();
        let (dropped_tx, dropped_rx) = mpsc::channel::<std::io::Result<()>>();
        {
            let shared = shared.clone();
            std::thread::spawn(move || {
                // Like the Sentry's own threads, this one and those it
                // starts hold no capability; said before the filter goes on.
                let dropped = host::sys::drop_thread_capabilities();
                let failed = dropped.is_err();
                let _ = dropped_tx.send(dropped);
                if failed {
                    return;
                }
                for stream in listener.incoming().flatten() {
                    let shared = shared.clone();
                    let start_tx = start_tx.clone();
                    std::thread::spawn(move || handle(stream, &shared, &start_tx));
                }
            });
        }
        match dropped_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = writeln!(std::io::stderr(), "moat: cannot drop the control thread's capabilities: {e}");
                return 1;
            }
            Err(_) => return 1,
        }
        let Ok(started) = start_rx.recv() else { return 1 };
        let Some(mut config) = self.config.take() else { return 1 };
        // The namespace's links, as the engine's hooks left them, become the
        // Sentry's (not a pod's sandbox container's: its app containers');
        // this thread still has the capabilities that takes.
        if !self.pod_sandbox {
            let mut egress = self.egress.take().unwrap_or_default();
            if let Some(text) = self.resolv_conf.as_ref().and_then(crate::egress::read_resolv_conf) {
                egress.resolvers = crate::egress::nameservers(&text);
                let loopback = crate::egress::loopback_nameservers(&text);
                egress.netns_resolvers = super::resolvers::connect_loopback_resolvers(&loopback);
            }
            match super::network::take_over(egress) {
                Ok(network) => config.network = Some(network),
                Err(e) => {
                    let _ = started.send(Err(e.to_string()));
                    return 1;
                }
            }
        }
        let sandbox = match Sandbox::start(config) {
            Ok(s) => Arc::new(s),
            Err(e) => {
                let _ = started.send(Err(failure_message(&e)));
                return e.exec_status().unwrap_or(1);
            }
        };
        *shared.sandbox.lock().unwrap() = Some(sandbox.clone());
        // Only now does `start` return: the container then runs (exec works).
        let _ = started.send(Ok(()));
        let status = sandbox.wait(1);
        *shared.stopped.lock().unwrap() = true;
        sandbox.finish();
        exit_code(status)
    }
}

fn handle(stream: UnixStream, shared: &Shared, start: &mpsc::Sender<mpsc::Sender<Result<(), String>>>) {
    let mut incoming = match Incoming::read(stream) {
        Ok(i) => i,
        Err(_) => return,
    };
    let sandbox = shared.sandbox.lock().unwrap().clone();
    let stopped = *shared.stopped.lock().unwrap();
    let request = incoming.request.clone();
    let reply = match (&request, &sandbox) {
        (Request::State, _) if stopped => Reply::State { phase: Phase::Stopped },
        (Request::State, None) => Reply::State { phase: Phase::Created },
        (Request::State, Some(_)) => Reply::State { phase: Phase::Running },
        (Request::Start, None) => {
            let first = !shared.started.swap(true, std::sync::atomic::Ordering::SeqCst);
            let (tx, rx) = mpsc::channel();
            match first.then(|| start.send(tx)) {
                Some(Ok(())) => match rx.recv() {
                    Ok(Ok(())) => Reply::Ok,
                    Ok(Err(message)) => Reply::StartFailed { message },
                    Err(_) => Reply::StartFailed { message: "the sandbox ended while starting".into() },
                },
                _ => Reply::Error { message: "the container is already starting".into() },
            }
        }
        (Request::Start, Some(_)) => Reply::Error { message: "the container has already started".into() },
        (Request::Kill { signal, .. }, None) => {
            // Not started: the container's process is this one.
            if [libc::SIGKILL, libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT].contains(signal) {
                let _ = incoming.answer(&Reply::Ok);
                std::process::exit(128 + signal);
            }
            Reply::Ok
        }
        (Request::Kill { signal, all, pid }, Some(s)) => {
            let sent = if *all { s.signal_all(*signal) } else { s.signal(pid.unwrap_or(1), *signal) };
            match sent {
                Ok(()) => Reply::Ok,
                Err(e) => Reply::Error { message: format!("cannot send signal {signal}: {}", e.name()) },
            }
        }
        (Request::Ps, Some(s)) => Reply::Processes {
            processes: s
                .processes()
                .into_iter()
                .map(|p| Process { pid: p.pid, ppid: p.ppid, name: p.name, args: p.args, host_pid: p.host_pid })
                .collect(),
        },
        (Request::Ps, None) => Reply::Processes { processes: Vec::new() },
        (Request::NetStats, Some(s)) => {
            let n = s.net_stats();
            let interfaces = n
                .links
                .into_iter()
                .map(|l| crate::control::InterfaceStats {
                    name: l.name,
                    rx_bytes: l.rx_bytes,
                    rx_packets: l.rx_packets,
                    rx_errors: 0,
                    rx_dropped: l.rx_dropped,
                    tx_bytes: l.tx_bytes,
                    tx_packets: l.tx_packets,
                    tx_errors: 0,
                    tx_dropped: 0,
                })
                .collect();
            Reply::NetStats {
                interfaces,
                tcp_connects: n.tcp_connects,
                tcp_accepts: n.tcp_accepts,
                egress_refusals: n.refusals,
            }
        }
        (Request::NetStats, None) => {
            Reply::NetStats { interfaces: Vec::new(), tcp_connects: 0, tcp_accepts: 0, egress_refusals: 0 }
        }
        (Request::Exec(_), None) | (Request::EgressPolicy { .. }, None) => {
            Reply::Error { message: "the container is not running".into() }
        }
        (Request::EgressPolicy { policy }, Some(s)) => match PolicyRules::check(policy, "from the control socket") {
            Ok(rules) => {
                s.set_egress_policy(rules.policy(shared.egress_default.unwrap_or(Verdict::Deny)));
                Reply::Ok
            }
            Err(e) => Reply::Error { message: e.to_string() },
        },
        (Request::Exec(p), Some(s)) => {
            let p = p.clone();
            let fds = std::mem::take(&mut incoming.fds);
            return exec(incoming, s, p, fds, shared.exec_defaults.clone());
        }
    };
    let _ = incoming.answer(&reply);
}

/// The engine waits for an exec'd process through the `moat exec` that asked
/// for it; when that one is killed (an exec probe's timeout, `docker exec`
/// interrupted), the process is killed too, as runc's would be.
fn watch_for_hangup(incoming: &Incoming, sandbox: &Arc<Sandbox>, pid: i32) {
    let Ok(mut stream) = incoming.try_clone_stream() else { return };
    let sandbox = sandbox.clone();
    let watching = std::thread::Builder::new().name(format!("exec-{pid}")).spawn(move || {
        let mut byte = [0u8; 1];
        // Nothing more is ever sent: this returns when the client goes.
        let _ = std::io::Read::read(&mut stream, &mut byte);
        if sandbox.exited(pid).is_none() {
            let _ = sandbox.signal(pid, libc::SIGKILL);
        }
    });
    drop(watching);
}

fn exec(mut incoming: Incoming, sandbox: &Arc<Sandbox>, p: ExecProcess, fds: Vec<OwnedFd>, defaults: ExecDefaults) {
    let Ok([stdin, stdout, stderr]) = <[OwnedFd; 3]>::try_from(fds) else {
        let _ = incoming.answer(&Reply::Error { message: "exec needs stdin, stdout and stderr fds".into() });
        return;
    };
    let config = ProcessConfig {
        argv: p.args.into_iter().map(String::into_bytes).collect(),
        envp: p.env.into_iter().map(String::into_bytes).collect(),
        cwd: p.cwd.into_bytes(),
        stdio: HostStdio { stdin, stdout, stderr },
        uid: p.uid,
        gid: p.gid,
        groups: p.groups,
        rlimits: defaults.rlimits,
        capabilities: p.capabilities.map(CapSets::from).or(defaults.capabilities),
        no_new_privileges: p.no_new_privileges.unwrap_or(defaults.no_new_privileges),
    };
    match sandbox.exec(config) {
        Ok(pid) => {
            if incoming.answer(&Reply::Started { pid }).is_err() {
                let _ = sandbox.signal(pid, libc::SIGKILL);
                return;
            }
            watch_for_hangup(&incoming, sandbox, pid);
            let status = sandbox.wait(pid);
            let _ = incoming.answer(&Reply::Exited { status });
        }
        Err(e) => {
            // runc's words for an exec that did not start; Docker shows them.
            let message = format!("exec failed: unable to start container process: {}", failure_message(&e));
            let _ = incoming.answer(&Reply::Error { message });
        }
    }
}

/// Why a process did not start, worded as runc words it: engines read the
/// words (Docker reports "executable file not found" and "no such file or
/// directory" as exit status 127, "permission denied" as 126), and
/// containerd shows them.
fn failure_message(e: &BootError) -> String {
    let BootError::Exec { path, errno } = e else { return e.to_string() };
    let searched = !path.contains('/');
    // Go's exec.LookPath, which runc uses, skips a $PATH entry it cannot
    // execute as it skips a missing one.
    if searched && [sentry::Errno::ENOENT, sentry::Errno::EACCES].contains(errno) {
        return format!("exec: {path:?}: executable file not found in $PATH");
    }
    // strerror's words, lower-cased as Go's syscall errors are.
    let desc = nix::errno::Errno::from_raw(errno.0).desc();
    let mut words = desc.chars();
    let desc: String = words.next().map(|c| c.to_ascii_lowercase()).into_iter().chain(words).collect();
    if *errno == sentry::Errno::ENOENT {
        format!("exec: {path:?}: stat {path}: {desc}")
    } else {
        format!("exec: {path:?}: {desc}")
    }
}
