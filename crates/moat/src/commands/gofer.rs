//! `moat gofer`: the file-server process. moat starts it with one end of a
//! socketpair; it jails itself, then serves the root over 9P until the Sentry goes.
//! Its command line is defined in `runtime::subcommands`.

use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::Path;

use runtime::subcommands::GoferCommand;

/// Exit code of a Gofer that made a forbidden system call and lived.
const SURVIVED_FORBIDDEN_SYSCALL: i32 = 3;

pub fn run(a: GoferCommand) -> i32 {
    let fd = match host::sys::take_inherited_fd(a.fd) {
        Ok(fd) => fd,
        Err(e) => {
            eprintln!("moat gofer: fd {} is not usable: {e}", a.fd);
            return 2;
        }
    };
    let stream = UnixStream::from(fd);
    let config = gofer::Config {
        read_only: a.read_only,
        only: a.only.as_ref().map(|n| n.as_bytes().to_vec()),
        allow_setid: a.allow_setid,
        // Before the jail, whose filter forbids reading the limit.
        limits: gofer::FidLimits::of_this_process(),
    };
    if let Err(e) = gofer::jail::enter(&a.root, &config, stream.as_fd()) {
        eprintln!("moat gofer: serving {}: {e}", a.root.display());
        return 1;
    }
    if a.selftest_forbidden_syscall {
        // std's UDP bind starts with socket(2).
        let result = std::net::UdpSocket::bind(("127.0.0.1", 0));
        eprintln!(
            "moat gofer: a forbidden system call (socket) returned {result:?}; the seccomp filter is not working"
        );
        return SURVIVED_FORBIDDEN_SYSCALL;
    }
    // The jail made the served root `/`.
    match gofer::serve(stream, Path::new("/"), &config) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("moat gofer: {e}");
            1
        }
    }
}
