//! `moat do -- CMD ARGS...`: one command in a fresh sandbox. The root is
//! `--rootfs DIR` (or the host's `/`), read-only under an in-memory overlay
//! unless `--file-access shared`; `--volume` adds bind mounts, each served
//! by a Gofer of its own.

use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use abi::Errno;
use runtime::gofers::Gofers;
use sentry::kernel::boot::BootError;
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
    /// Print counters (Gofer round trips) on stderr when the sandbox ends.
    #[arg(long)]
    stats: bool,
    /// For the Sentry filter's tests: make a host call outside its allow-list.
    #[arg(long, hide = true)]
    selftest_forbidden_syscall: bool,
    /// Set by moat itself: this process is pid 1 of the sandbox's own namespace.
    #[arg(long, hide = true)]
    in_pid_namespace: bool,
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
    // The Sentry runs as pid 1 of a PID namespace of its own, in new mount,
    // IPC and UTS namespaces: a compromised Sentry sees (and can signal or
    // trace) no host process. Without the privilege for that (not root),
    // the sandbox still runs, in the caller's namespaces.
    if !a.in_pid_namespace && nix::unistd::geteuid().is_root() {
        return match runtime::sandbox::rerun_in_pid_namespace("do", "--in-pid-namespace", || ()) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("moat: {e}");
                125
            }
        };
    }
    if a.in_pid_namespace {
        let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
        if let Err(e) = runtime::sandbox::enter_private_namespaces() {
            eprintln!("moat: {e}");
            return 125;
        }
    }
    let mut gofers = Gofers::default();
    match sandbox(&a, &mut gofers) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("moat: {e}");
            125
        }
    }
}

fn sandbox(a: &DoArgs, gofers: &mut Gofers) -> Result<i32, String> {
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
    let envp: Vec<Vec<u8>> = std::env::vars_os()
        .map(|(k, v)| {
            let mut e = k.as_bytes().to_vec();
            e.push(b'=');
            e.extend_from_slice(v.as_bytes());
            e
        })
        .collect();
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
        max_tasks: None,
        tmp_limit: Some(TMP_LIMIT),
        selftest_forbidden_syscall: a.selftest_forbidden_syscall,
        stub_cgroups: Vec::new(),
        app_seccomp: None,
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
