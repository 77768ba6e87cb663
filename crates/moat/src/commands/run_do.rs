//! `moat do -- CMD ARGS...`: one command in a fresh sandbox. The root is
//! `--rootfs DIR` (or the host's `/`), read-only under an in-memory overlay.

use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command};

use abi::Errno;
use sentry::kernel::boot::BootError;

#[derive(Debug, clap::Args)]
pub struct DoArgs {
    /// Directory to use as the root filesystem (default: the host's /).
    #[arg(long)]
    rootfs: Option<PathBuf>,
    /// Log every syscall the app makes, with arguments and result, to stderr.
    #[arg(long)]
    strace: bool,
    /// The command and its arguments.
    #[arg(required = true, last = true)]
    cmd: Vec<std::ffi::OsString>,
}

fn start_gofer(root: &std::path::Path) -> std::io::Result<(Child, UnixStream)> {
    let (ours, theirs) = UnixStream::pair()?;
    host::sys::set_cloexec(theirs.as_fd(), false)?;
    let fd = std::os::fd::AsRawFd::as_raw_fd(&theirs);
    let child = Command::new(std::env::current_exe()?)
        .arg("gofer")
        .arg("--fd")
        .arg(fd.to_string())
        .arg("--root")
        .arg(root)
        .arg("--read-only")
        .env_clear()
        .stdin(std::process::Stdio::null())
        .spawn()?;
    drop(theirs);
    Ok((child, ours))
}

pub fn run(a: DoArgs) -> i32 {
    let root = a.rootfs.clone().unwrap_or_else(|| PathBuf::from("/"));
    if !root.is_dir() {
        eprintln!("moat: --rootfs {}: not a directory", root.display());
        return 125;
    }
    let (mut gofer, sock) = match start_gofer(&root) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("moat: cannot start the gofer for {}: {e}", root.display());
            return 125;
        }
    };
    let dup = |fd: std::os::fd::BorrowedFd<'_>| fd.try_clone_to_owned();
    let stdio = match (dup(std::io::stdin().as_fd()), dup(std::io::stdout().as_fd()), dup(std::io::stderr().as_fd())) {
        (Ok(stdin), Ok(stdout), Ok(stderr)) => sentry::HostStdio { stdin, stdout, stderr },
        _ => {
            eprintln!("moat: stdin, stdout and stderr must be open");
            return 125;
        }
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
        gofer: sock,
        argv: a.cmd.iter().map(|s| s.as_bytes().to_vec()).collect(),
        envp,
        cwd: b"/".to_vec(),
        hostname: b"moat".to_vec(),
        stdio,
        strace: a.strace,
    };
    let result = sentry::boot(cfg);
    let code = match result {
        Ok(status) if status & 0x7f == 0 => (status >> 8) & 0xff,
        Ok(status) => 128 + (status & 0x7f),
        Err(BootError::Exec { path, errno }) => {
            eprintln!("moat: cannot execute {path}: {}", describe(errno));
            if errno == Errno::ENOENT {
                127
            } else {
                126
            }
        }
        Err(e) => {
            eprintln!("moat: {e}");
            125
        }
    };
    let _ = gofer.kill();
    let _ = gofer.wait();
    code
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
