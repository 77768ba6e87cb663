//! `moat do -- CMD ARGS...`: one command in a fresh sandbox. The root is
//! `--rootfs DIR` (or the host's `/`), read-only under an in-memory overlay
//! unless `--file-access shared`; `--volume` adds bind mounts, each served
//! by a Gofer of its own. The command gets a clean environment (never
//! moat's own) and, run as root, a cgroup bounding its memory, tasks and CPU.

use std::ffi::OsString;
use std::io::{IsTerminal, Read};
use std::os::fd::AsFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use abi::Errno;
use nix::sys::signal::{SigSet, Signal};
use oci_spec::runtime::{LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};
use runtime::cgroups::Cgroup;
use runtime::gofers::Gofers;
use sentry::BootError;
use sentry::{FileAccess, MountConfig, MountKind, RootConfig};

#[derive(Debug, clap::Args)]
pub struct DoArgs {
    /// Directory to use as the root filesystem (default: the host's /).
    #[arg(long)]
    rootfs: Option<PathBuf>,
    /// How the root reaches the host: `exclusive` (writes stay in an
    /// in-memory overlay) or `shared` (writes reach the host directory).
    #[arg(long, value_enum, default_value = "exclusive")]
    file_access: Access,
    /// Most file data the exclusive root's overlay may hold (e.g. 512M, 2G);
    /// writes past it fail with ENOSPC.
    #[arg(long, value_parser = parse_size, default_value = "2G")]
    overlay_size: u64,
    /// Bind-mount host directory HOST at SANDBOX; writes reach the host.
    /// OPTIONS, comma-separated: `ro` (or `rw`), and `suid` to let the
    /// sandbox make set-user-ID and set-group-ID files there (stripped
    /// otherwise). May be repeated.
    #[arg(long = "volume", short = 'v', value_name = "HOST:SANDBOX[:OPTIONS]", value_parser = parse_volume)]
    volumes: Vec<Volume>,
    /// Mount a fresh tmpfs at PATH, at most SIZE bytes (default 512M). May be repeated.
    #[arg(long = "tmpfs", value_name = "PATH[:SIZE]", value_parser = parse_tmpfs)]
    tmpfs: Vec<(Vec<u8>, u64)>,
    /// Log every syscall the app makes, with arguments and result, to stderr.
    #[arg(long)]
    strace: bool,
    /// How app code runs and traps to the Sentry (`moat syscalls` lists what it serves).
    #[arg(long, value_name = "NAME", default_value = "ptrace")]
    platform: sentry::PlatformKind,
    /// Print counters (Gofer round trips) on stderr when the sandbox ends.
    #[arg(long)]
    stats: bool,
    /// Set VAR to VALUE in the sandbox; `VAR` alone passes the caller's VAR
    /// on (if it is set). May be repeated.
    #[arg(long = "env", short = 'e', value_name = "VAR[=VALUE]")]
    env: Vec<OsString>,
    /// Read variables from FILE: `VAR=VALUE` lines (`VAR` alone passes the
    /// caller's on), `#` comments and blank lines. May be repeated.
    #[arg(long = "env-file", value_name = "FILE")]
    env_files: Vec<PathBuf>,
    /// Most memory the whole sandbox may use, with no swap (e.g. 512M, 4G;
    /// default: half of the host's RAM). Needs root.
    #[arg(long, value_name = "SIZE")]
    memory: Option<String>,
    /// Most tasks (processes and threads) the app may have (default 1024).
    /// Needs root.
    #[arg(long, value_name = "N")]
    pids: Option<String>,
    /// Most CPUs' worth of time the sandbox may use (e.g. 0.5, 1.5; default:
    /// no limit). Needs root.
    #[arg(long, value_name = "N")]
    cpus: Option<String>,
    /// For the Sentry filter's tests: make a host call outside its allow-list.
    #[arg(long, hide = true)]
    selftest_forbidden_syscall: bool,
    /// Set by moat itself: this process is pid 1 of the sandbox's own
    /// namespace, and joins the cgroup CGROUP before anything else.
    #[arg(long, hide = true, value_name = "CGROUP")]
    in_pid_namespace: Option<String>,
    /// The command and its arguments.
    #[arg(required = true, last = true)]
    cmd: Vec<std::ffi::OsString>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Access {
    Exclusive,
    Shared,
}

/// A `--volume HOST:SANDBOX[:OPTIONS]`.
#[derive(Debug, Clone)]
struct Volume {
    host: PathBuf,
    target: Vec<u8>,
    read_only: bool,
    /// `suid`: set-ID bits the sandbox sets reach the host.
    allow_setid: bool,
}

/// The size of `moat do`'s /tmp (`--tmpfs /tmp:SIZE` replaces it).
const TMP_LIMIT: u64 = 1 << 30;

/// `HOST:SANDBOX[:OPTIONS]`, OPTIONS a comma-separated list of at most one
/// of `ro`/`rw` and one of `suid`/`nosuid` (as Docker's `-v` and mount(8)
/// spell them).
fn parse_volume(s: &str) -> Result<Volume, String> {
    let (host, target, options) = match s.split(':').collect::<Vec<_>>()[..] {
        [host, target] => (host, target, None),
        [host, target, options] => (host, target, Some(options)),
        _ => return Err(format!("{s:?} is not HOST:SANDBOX or HOST:SANDBOX:OPTIONS (e.g. ro, or ro,suid)")),
    };
    let (mut read_only, mut allow_setid) = (None, None);
    for option in options.map(|o| o.split(',')).into_iter().flatten() {
        let (setting, value) = match option {
            "ro" => (&mut read_only, true),
            "rw" => (&mut read_only, false),
            "suid" => (&mut allow_setid, true),
            "nosuid" => (&mut allow_setid, false),
            _ => return Err(format!("{s:?}: unknown volume option {option:?} (known: ro, rw, suid, nosuid)")),
        };
        if setting.replace(value).is_some() {
            return Err(format!("{s:?}: {option:?} contradicts or repeats an earlier option"));
        }
    }
    let host_path = PathBuf::from(host);
    if !host_path.is_absolute() {
        return Err(format!("the host directory {host:?} must be an absolute path"));
    }
    Ok(Volume {
        host: host_path,
        target: sandbox_path(target)?,
        read_only: read_only.unwrap_or(false),
        allow_setid: allow_setid.unwrap_or(false),
    })
}

fn parse_tmpfs(s: &str) -> Result<(Vec<u8>, u64), String> {
    let (path, size) = match s.split_once(':') {
        Some((path, size)) => (path, parse_size(size)?),
        None => (s, 512 << 20),
    };
    Ok((sandbox_path(path)?, size))
}

/// An absolute sandbox path with no `.` or `..` in it, for a mount target.
fn sandbox_path(s: &str) -> Result<Vec<u8>, String> {
    if !s.starts_with('/') || s == "/" {
        return Err(format!("the sandbox path {s:?} must be absolute and not /"));
    }
    if s.split('/').any(|c| c == "." || c == "..") {
        return Err(format!("the sandbox path {s:?} must not contain . or .."));
    }
    Ok(s.trim_end_matches('/').as_bytes().to_vec())
}

/// `4096`, `64K`, `512M`, `2G`.
fn parse_size(s: &str) -> Result<u64, String> {
    let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, ""),
    };
    let shift = match unit {
        "" => 0,
        "k" | "K" => 10,
        "m" | "M" => 20,
        "g" | "G" => 30,
        _ => return Err(format!("{s:?} is not a size (a number with an optional K, M or G)")),
    };
    let n: u64 = digits.parse().map_err(|_| format!("{s:?} is not a size"))?;
    n.checked_mul(1 << shift).ok_or_else(|| format!("{s:?} is too large"))
}

pub fn run(a: DoArgs) -> i32 {
    let outcome = match &a.in_pid_namespace {
        Some(cgroup) => in_pid_namespace(&a, cgroup),
        // The Sentry runs as pid 1 of a PID namespace of its own, in new
        // mount, IPC and UTS namespaces: a compromised Sentry sees (and can
        // signal or trace) no host process. Without the privilege for that
        // (not root), the sandbox still runs, in the caller's namespaces and
        // with no cgroup.
        None if nix::unistd::geteuid().is_root() => in_cgroup(&a),
        None => unprivileged(&a),
    };
    outcome.unwrap_or_else(|e| {
        eprintln!("moat: {e}");
        125
    })
}

fn unprivileged(a: &DoArgs) -> Result<i32, String> {
    if a.memory.is_some() || a.pids.is_some() || a.cpus.is_some() {
        return Err("--memory, --pids and --cpus need root: moat do enforces them with a cgroup, which only root \
                    can make (run as root, or leave them out to run with no cgroup)"
            .to_owned());
    }
    boot(a)
}

/// The second `moat do`, pid 1 of the sandbox's PID namespace.
fn in_pid_namespace(a: &DoArgs, cgroup: &str) -> Result<i32, String> {
    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
    // Into the sandbox's cgroup before anything else, so that the Sentry,
    // every Gofer and every stub start in it.
    Cgroup::open(cgroup)
        .and_then(|c| c.add(0))
        .map_err(|e| format!("cannot join the sandbox's cgroup {cgroup}: {e}"))?;
    runtime::sandbox::enter_private_namespaces()?;
    boot(a)
}

fn boot(a: &DoArgs) -> Result<i32, String> {
    let tty = std::io::stdin().is_terminal() || std::io::stdout().is_terminal();
    let envp = environment(a, tty, &caller_variable)?;
    let max_tasks = app_tasks(a)?;
    let mut gofers = Gofers::default();
    sandbox(a, &mut gofers, envp, max_tasks)
}

/// The host signals that end `moat do` early: a terminal's ^C and ^\, a
/// hangup, `kill`. Each ends the sandbox, and then moat do itself by the
/// same signal, once the sandbox's cgroup is gone.
const STOP_SIGNALS: [Signal; 4] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP, Signal::SIGQUIT];

/// The first `moat do` (as root): makes the sandbox's cgroup, runs the
/// sandbox in a new PID namespace (a second `moat do`, which joins the
/// cgroup first), waits for it and removes the cgroup. It stays outside the
/// cgroup itself, so that the cgroup's OOM killer can never pick the
/// process that cleans up after it.
fn in_cgroup(a: &DoArgs) -> Result<i32, String> {
    let resources = host_resources(a)?;
    // Blocked before the cgroup exists (and inherited by the thread that
    // waits for them), so that no stop signal ends this process between
    // making the cgroup and removing it. The sandbox process starts with
    // none blocked: Rust's spawn empties the signal mask.
    let stop_signals = SigSet::from_iter(STOP_SIGNALS);
    stop_signals.thread_block().map_err(|e| format!("cannot block signals: {e}"))?;
    // The pid names the cgroup for a person looking at it; the random part
    // keeps two `moat do` with the same pid in different PID namespaces
    // (containers sharing the host's cgroups) from sharing one.
    let random = std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), 0u8) as u32;
    let path = format!("/moat/do-{}-{random:08x}", std::process::id());
    let cgroup = Cgroup::create(&path, Some(&resources)).map_err(|e| {
        format!("cannot make the sandbox's cgroup {path} (as root, moat do limits every sandbox with one): {e}")
    })?;
    let stop = Arc::new(Stop::default());
    let watcher = Arc::clone(&stop);
    let watched = path.clone();
    std::thread::spawn(move || watcher.kill_on_signal(stop_signals, &watched));
    let status = runtime::sandbox::rerun_in_pid_namespace("do", &format!("--in-pid-namespace={path}"), || ());
    stop.reaped.store(true, Ordering::SeqCst);
    if cgroup.memory_oom_events() > 0 {
        let limit = a.memory.as_deref().map_or_else(|| "half the host's RAM".to_owned(), |m| format!("--memory {m}"));
        eprintln!("moat: the sandbox reached its memory limit ({limit}); the kernel killed a process of it");
    }
    if let Err(e) = cgroup.remove() {
        eprintln!("moat: cannot remove the sandbox's cgroup: {e}");
    }
    if let Some(signal) = stop.signal() {
        // Dying by the signal tells the caller (a shell, a supervisor) what
        // happened, as it would have without moat in between.
        let _ = SigSet::from(signal).thread_unblock();
        let _ = nix::sys::signal::raise(signal);
        return Ok(128 + signal as i32);
    }
    status
}

/// Between the sandbox's process and the thread that ends it on a stop signal.
#[derive(Debug, Default)]
struct Stop {
    /// The stop signal received, 0 for none yet.
    signal: AtomicI32,
    /// Set once the sandbox's process has been reaped.
    reaped: AtomicBool,
}

impl Stop {
    fn signal(&self) -> Option<Signal> {
        Signal::try_from(self.signal.load(Ordering::SeqCst)).ok()
    }

    /// Waits for a stop signal, then kills everything in the cgroup until
    /// the sandbox's process is reaped. Killing its pid 1 kills the whole
    /// PID namespace; the kill is repeated because a signal may come before
    /// that process has joined the cgroup.
    fn kill_on_signal(&self, signals: SigSet, cgroup: &str) {
        let Ok(signal) = signals.wait() else {
            return;
        };
        self.signal.store(signal as i32, Ordering::SeqCst);
        let Ok(cgroup) = Cgroup::open(cgroup) else {
            return;
        };
        while !self.reaped.load(Ordering::SeqCst) {
            for pid in cgroup.procs().unwrap_or_default() {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Tasks the app may have without `--pids`: plenty for build systems and
/// thread pools, while a fork bomb stops well short of the host's pid space
/// (the host cgroup allows twice this plus the sandbox's own tasks).
const DEFAULT_APP_TASKS: usize = 1024;
/// The most `--pids` may be: the kernel's own most pids (PID_MAX_LIMIT).
const MAX_APP_TASKS: usize = 1 << 22;
/// Without `--memory`, the sandbox may use this fraction (1/N) of the
/// host's RAM: one sandbox alone cannot push the host into swapping or its
/// OOM killer, and most programs never notice the limit.
const DEFAULT_MEMORY_DIVISOR: u64 = 2;
/// The smallest `--memory`: the Sentry and its Gofer are charged about
/// 15 MiB before the app runs, and a dynamically linked program as much
/// again; below this, little would run.
const MIN_MEMORY: u64 = 64 << 20;
/// The CFS period `--cpus` is a share of (the kernel's default, as Docker's).
const CPU_PERIOD_US: u64 = 100_000;
/// The smallest quota the kernel takes (1 ms), so `--cpus` 0.01 at least.
const MIN_CPU_QUOTA_US: u64 = 1_000;

/// `--pids`, or its default: the app's task limit, which the Sentry
/// enforces (fork and clone past it fail with EAGAIN).
fn app_tasks(a: &DoArgs) -> Result<usize, String> {
    let Some(s) = &a.pids else {
        return Ok(DEFAULT_APP_TASKS);
    };
    s.parse()
        .ok()
        .filter(|n| (1..=MAX_APP_TASKS).contains(n))
        .ok_or_else(|| format!("--pids {s:?}: give a number of tasks from 1 to {MAX_APP_TASKS}"))
}

/// The host cgroup's limits: `--memory` as memory and memory+swap (so the
/// sandbox cannot swap past it), `--pids` scaled as for a container (the
/// Sentry's threads, stubs, Gofers), `--cpus` as a CFS quota.
fn host_resources(a: &DoArgs) -> Result<LinuxResources, String> {
    let memory = match &a.memory {
        Some(s) => parse_size(s).map_err(|e| format!("--memory: {e}")).and_then(|m| {
            if m < MIN_MEMORY {
                Err(format!("--memory {s}: the least is 64M"))
            } else {
                Ok(m)
            }
        })?,
        None => host_ram()? / DEFAULT_MEMORY_DIVISOR,
    };
    let memory =
        i64::try_from(memory).map_err(|_| format!("--memory {}: too large", a.memory.as_deref().unwrap_or("")))?;
    let mut resources = LinuxResources::default();
    let mut limits = LinuxMemory::default();
    limits.set_limit(Some(memory));
    limits.set_swap(Some(memory));
    resources.set_memory(Some(limits));
    let mut pids = LinuxPids::default();
    pids.set_limit(app_tasks(a)? as i64);
    resources.set_pids(Some(pids));
    if let Some(s) = &a.cpus {
        let mut cpu = LinuxCpu::default();
        cpu.set_quota(Some(cpu_quota(s)?));
        cpu.set_period(Some(CPU_PERIOD_US));
        resources.set_cpu(Some(cpu));
    }
    Ok(runtime::sandbox::host_resources(&resources))
}

/// `--cpus N` as microseconds of CPU time per period, N from 0.01 to the
/// number of CPUs there are (as Docker checks it).
fn cpu_quota(s: &str) -> Result<i64, String> {
    let available = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cpus: f64 = s.trim().parse().map_err(|_| format!("--cpus {s:?} is not a number (such as 0.5 or 2)"))?;
    let quota = (cpus * CPU_PERIOD_US as f64).round();
    if !(MIN_CPU_QUOTA_US as f64..=(available as u64 * CPU_PERIOD_US) as f64).contains(&quota) {
        return Err(format!("--cpus {s}: the range is 0.01 to {available}, as there are {available} CPUs available"));
    }
    Ok(quota as i64)
}

/// MemTotal from /proc/meminfo, in bytes.
fn host_ram() -> Result<u64, String> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").map_err(|e| format!("cannot read /proc/meminfo: {e}"))?;
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|kb| kb.trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| "/proc/meminfo has no MemTotal line in kB; give --memory".to_owned())
}

/// The PATH of a sandbox, as Docker sets it.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// The most an `--env-file` may hold: it is for variables, and a bound keeps
/// `--env-file /dev/zero` from eating the host's memory.
const MAX_ENV_FILE: u64 = 1 << 20;

/// A variable of the caller's environment.
fn caller_variable(name: &[u8]) -> Option<Vec<u8>> {
    std::env::vars_os().find(|(k, _)| k.as_bytes() == name).map(|(_, v)| v.into_vec())
}

/// The sandbox's environment, never moat's own: PATH, HOME (/root, as the
/// app runs as root), LANG=C.UTF-8, TERM if stdin or stdout is a terminal,
/// then each `--env-file` and each `--env` in order, a later VAR replacing
/// an earlier one. `caller` looks up the caller's variables for `VAR` alone.
fn environment(a: &DoArgs, tty: bool, caller: &dyn Fn(&[u8]) -> Option<Vec<u8>>) -> Result<Vec<Vec<u8>>, String> {
    let mut env = Environment::default();
    env.set(b"PATH", DEFAULT_PATH.as_bytes());
    env.set(b"HOME", b"/root");
    env.set(b"LANG", b"C.UTF-8");
    if tty {
        // The app writes to the caller's own terminal (moat do makes no
        // pseudo-terminal), which the caller's TERM describes best.
        let term = caller(b"TERM").filter(|t| is_terminal_name(t)).unwrap_or_else(|| b"xterm".to_vec());
        env.set(b"TERM", &term);
    }
    for path in &a.env_files {
        let text = read_env_file(path)?;
        env.add_file(&text, caller).map_err(|e| format!("--env-file {}: {e}", path.display()))?;
    }
    for arg in &a.env {
        env.add_arg(arg.as_bytes(), caller)
            .map_err(|e| format!("--env {:?}: {e}", String::from_utf8_lossy(arg.as_bytes())))?;
    }
    Ok(env.into_envp())
}

/// Whether a TERM value is a plain terminal name (as in terminfo), not
/// something that reaches further than naming the terminal.
fn is_terminal_name(term: &[u8]) -> bool {
    (1..=64).contains(&term.len()) && term.iter().all(|&b| b.is_ascii_alphanumeric() || b"._+-".contains(&b))
}

fn read_env_file(path: &Path) -> Result<Vec<u8>, String> {
    let mut text = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_ENV_FILE + 1).read_to_end(&mut text))
        .map_err(|e| format!("--env-file {}: cannot read it: {e}", path.display()))?;
    if text.len() as u64 > MAX_ENV_FILE {
        return Err(format!("--env-file {}: larger than 1 MiB", path.display()));
    }
    Ok(text)
}

/// Variables in the order first set; setting one again replaces its value.
#[derive(Debug, Default)]
struct Environment(Vec<(Vec<u8>, Vec<u8>)>);

impl Environment {
    fn set(&mut self, name: &[u8], value: &[u8]) {
        match self.0.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v = value.to_vec(),
            None => self.0.push((name.to_vec(), value.to_vec())),
        }
    }

    /// `VAR=VALUE`, or `VAR` for the caller's VAR (nothing if unset), as
    /// Docker's `--env`.
    fn add_arg(&mut self, arg: &[u8], caller: &dyn Fn(&[u8]) -> Option<Vec<u8>>) -> Result<(), String> {
        let (name, value) = match arg.iter().position(|&b| b == b'=') {
            Some(i) => (&arg[..i], Some(&arg[i + 1..])),
            None => (arg, None),
        };
        if name.is_empty() {
            return Err("no variable name; give VAR=VALUE or VAR".to_owned());
        }
        if let Some(value) = value.map(<[u8]>::to_vec).or_else(|| caller(name)) {
            self.set(name, &value);
        }
        Ok(())
    }

    /// Docker's env-file format: leading blanks dropped; blank lines and
    /// lines starting with `#` skipped; `VAR=VALUE` (VALUE verbatim, to the
    /// end of the line) or `VAR` alone for the caller's VAR; a name holding
    /// a space or tab is an error.
    fn add_file(&mut self, text: &[u8], caller: &dyn Fn(&[u8]) -> Option<Vec<u8>>) -> Result<(), String> {
        let text = text.strip_prefix(b"\xef\xbb\xbf").unwrap_or(text);
        for (number, line) in text.split(|&b| b == b'\n').enumerate() {
            let number = number + 1;
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let line = &line[line.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(line.len())..];
            if line.is_empty() || line.starts_with(b"#") {
                continue;
            }
            if line.contains(&0) {
                return Err(format!("line {number} holds a NUL byte"));
            }
            let name = line.split(|&b| b == b'=').next().unwrap_or_default();
            if name.iter().any(|&b| b == b' ' || b == b'\t') {
                let name = String::from_utf8_lossy(name);
                return Err(format!("line {number}: the variable name {name:?} holds a space or tab"));
            }
            self.add_arg(line, caller).map_err(|e| format!("line {number}: {e}"))?;
        }
        Ok(())
    }

    fn into_envp(self) -> Vec<Vec<u8>> {
        self.0
            .into_iter()
            .map(|(mut name, value)| {
                name.push(b'=');
                name.extend_from_slice(&value);
                name
            })
            .collect()
    }
}

fn sandbox(a: &DoArgs, gofers: &mut Gofers, envp: Vec<Vec<u8>>, max_tasks: usize) -> Result<i32, String> {
    let root = a.rootfs.clone().unwrap_or_else(|| PathBuf::from("/"));
    let access = match a.file_access {
        Access::Exclusive => FileAccess::Exclusive,
        Access::Shared => FileAccess::Shared,
    };
    let sock = gofers.start(&root, access == FileAccess::Exclusive).map_err(|e| format!("--rootfs {e}"))?;
    let mut mounts = Vec::new();
    for v in &a.volumes {
        let serving = runtime::gofers::Serving { read_only: v.read_only, allow_setid: v.allow_setid };
        let gofer = gofers.start_dir(&v.host, serving).map_err(|e| format!("--volume {e}"))?;
        mounts.push(MountConfig { target: v.target.clone(), kind: MountKind::Bind { gofer, read_only: v.read_only } });
    }
    for (target, size) in &a.tmpfs {
        mounts
            .push(MountConfig { target: target.clone(), kind: MountKind::Tmpfs { mode: 0o1777, limit: Some(*size) } });
    }
    let dup = |fd: std::os::fd::BorrowedFd<'_>| fd.try_clone_to_owned();
    let stdio = match (dup(std::io::stdin().as_fd()), dup(std::io::stdout().as_fd()), dup(std::io::stderr().as_fd())) {
        (Ok(stdin), Ok(stdout), Ok(stderr)) => sentry::HostStdio { stdin, stdout, stderr },
        _ => return Err("stdin, stdout and stderr must be open".to_owned()),
    };
    let cfg = sentry::BootConfig {
        root: RootConfig { gofer: sock, access, overlay_limit: Some(a.overlay_size), read_only: false },
        mounts,
        init: sentry::ProcessConfig {
            argv: a.cmd.iter().map(|s| s.as_bytes().to_vec()).collect(),
            envp,
            cwd: b"/".to_vec(),
            stdio,
            uid: 0,
            gid: 0,
            groups: Vec::new(),
            rlimits: Vec::new(),
            capabilities: None,
            no_new_privileges: false,
        },
        hostname: b"moat".to_vec(),
        domainname: Vec::new(),
        sysctls: Vec::new(),
        strace: a.strace,
        stats: a.stats,
        max_tasks: Some(max_tasks),
        tmp_limit: Some(TMP_LIMIT),
        selftest_forbidden_syscall: a.selftest_forbidden_syscall,
        app_seccomp: None,
        platform: a.platform,
    };
    let result = sentry::boot(cfg);
    match result {
        Ok(status) => Ok(runtime::sandbox::exit_code(status)),
        Err(e) => match (&e, e.exec_status()) {
            (BootError::Exec { path, errno }, Some(code)) => {
                eprintln!("moat: cannot execute {path}: {}", describe(*errno));
                Ok(code)
            }
            _ => Err(e.to_string()),
        },
    }
}

fn describe(e: Errno) -> String {
    let what = match e {
        Errno::ENOENT => "no such file or directory (or its #! interpreter is missing)",
        Errno::EACCES => "permission denied (not a regular executable file)",
        Errno::ENOEXEC => "exec format error (not a valid x86-64 ELF or script)",
        Errno::ELIBBAD => "bad ELF interpreter",
        Errno::ELOOP => "too many levels of symbolic links or #! interpreters",
        Errno::E2BIG => "argument list too long",
        _ => "cannot be executed",
    };
    format!("{what} ({})", e.name())
}
