//! The command lines moat gives the moat processes it starts itself, each
//! defined once: rendered here (`to_args`) and parsed by the `moat` binary.
//!
//! `moat boot` (a container's sandbox process) and `moat gofer` (a file
//! server) are hidden subcommands; `--waiter-fd` (a detached `moat exec`'s
//! waiter) and `--in-pid-namespace` (the inner `moat do`) are hidden flags
//! added to the caller's own command line when it runs itself again.

use std::ffi::{OsStr, OsString};
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// runc's global flags that moat hands on to the sandbox processes it
/// starts (they come before the subcommand, or anywhere after it).
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct RuntimeFlags {
    /// Where container state lives.
    #[arg(long, global = true, default_value = crate::state::DEFAULT_ROOT)]
    pub root: PathBuf,
    /// Also write errors to this file (containerd and Docker read it).
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// The --log file's format.
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Keep a container's root-filesystem writes in an in-memory overlay of
    /// bounded size, discarded at exit (as `runsc --overlay`), instead of
    /// writing them through to the bundle's rootfs as runc does.
    #[arg(long, global = true)]
    pub overlay: bool,
    /// What a container's egress policy does with traffic no rule covers,
    /// when neither its annotations nor --egress-policy say (default: allow,
    /// as under runc).
    #[arg(long, value_enum, value_name = "allow|deny")]
    pub egress_default: Option<crate::egress::DefaultVerdict>,
    /// The egress policy file of containers whose annotations give no rules.
    #[arg(long, value_name = "FILE")]
    pub egress_policy: Option<PathBuf>,
    /// Where refused connections are recorded, one JSON line each (default:
    /// the sandbox process's stderr).
    #[arg(long, value_name = "FILE")]
    pub audit_log: Option<PathBuf>,
    /// How app code runs and traps to the Sentry: ptrace or systrap
    /// (default: ptrace; MOAT_PLATFORM sets it for every container).
    #[arg(long, global = true, value_name = "NAME", env = "MOAT_PLATFORM")]
    pub platform: Option<sentry::PlatformKind>,
}

/// How the `--log` file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// runc's `level=error msg="..."` lines.
    Text,
    /// One JSON object per line, as containerd's shim parses them.
    Json,
}

impl RuntimeFlags {
    /// The flags as arguments; the log format only with a log, and only
    /// when it is not the default.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut args = vec!["--root".into(), self.root.clone().into()];
        if let Some(log) = &self.log {
            args.extend(["--log".into(), log.clone().into()]);
            if self.log_format == LogFormat::Json {
                args.extend(["--log-format".into(), "json".into()]);
            }
        }
        if self.overlay {
            args.push("--overlay".into());
        }
        if let Some(d) = self.egress_default {
            let name = crate::egress::verdict_name(d.into());
            args.extend(["--egress-default".into(), name.into()]);
        }
        if let Some(file) = &self.egress_policy {
            args.extend(["--egress-policy".into(), file.clone().into()]);
        }
        if let Some(file) = &self.audit_log {
            args.extend(["--audit-log".into(), file.clone().into()]);
        }
        if let Some(p) = self.platform {
            args.extend(["--platform".into(), p.name().into()]);
        }
        args
    }

    /// Whether an egress flag is given (they concern containers only).
    pub fn has_egress(&self) -> bool {
        self.egress_default.is_some() || self.egress_policy.is_some() || self.audit_log.is_some()
    }
}

/// `moat boot`: the sandbox process of one container, started by `create`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct BootCommand {
    /// The container's ID.
    #[arg(long)]
    pub id: String,
    /// The container's bundle directory.
    #[arg(long)]
    pub bundle: PathBuf,
    /// The pipe to tell `create` the sandbox is ready (or why not) on.
    #[arg(long)]
    pub ready_fd: RawFd,
}

impl BootCommand {
    /// The subcommand's name.
    pub const NAME: &'static str = "boot";

    /// The whole command line after the program name: the runtime's flags,
    /// then `boot` and its own.
    pub fn command_line(&self, flags: &RuntimeFlags) -> Vec<OsString> {
        let mut args = flags.to_args();
        args.push(Self::NAME.into());
        args.extend([
            "--id".into(),
            self.id.clone().into(),
            "--bundle".into(),
            self.bundle.clone().into(),
            "--ready-fd".into(),
            self.ready_fd.to_string().into(),
        ]);
        args
    }

    /// Whether `cmdline` (a `/proc/PID/cmdline`: arguments each ended by a
    /// NUL) is the boot command of container `id`.
    pub fn is_boot_of(cmdline: &[u8], id: &str) -> bool {
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        args.contains(&Self::NAME.as_bytes()) && args.windows(2).any(|w| w[0] == b"--id" && w[1] == id.as_bytes())
    }
}

/// `moat gofer`: serve a directory over 9P on an inherited socket.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct GoferCommand {
    /// The inherited socket fd to serve on.
    #[arg(long)]
    pub fd: RawFd,
    /// The directory to serve as the root.
    #[arg(long)]
    pub root: PathBuf,
    /// Refuse every change to the host tree.
    #[arg(long)]
    pub read_only: bool,
    /// Serve only this name in the root directory (a bind mount of one file).
    #[arg(long)]
    pub only: Option<OsString>,
    /// Let the sandbox make set-user-ID and set-group-ID files here (a
    /// `suid` mount). Without it those bits are cleared from every mode the
    /// sandbox creates or sets (S_ISGID stays on directories), and writes
    /// clear them as for an unprivileged writer.
    #[arg(long)]
    pub allow_setid: bool,
    /// For the jail's tests: once jailed, make a system call outside the
    /// allow-list (socket(2)), which must kill the Gofer with SIGSYS.
    #[arg(long, hide = true)]
    pub selftest_forbidden_syscall: bool,
}

impl GoferCommand {
    /// The subcommand's name.
    pub const NAME: &'static str = "gofer";

    /// The whole command line after the program name.
    pub fn command_line(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            Self::NAME.into(),
            "--fd".into(),
            self.fd.to_string().into(),
            "--root".into(),
            self.root.clone().into(),
        ];
        if self.read_only {
            args.push("--read-only".into());
        }
        if self.allow_setid {
            args.push("--allow-setid".into());
        }
        if let Some(name) = &self.only {
            args.extend(["--only".into(), name.clone()]);
        }
        if self.selftest_forbidden_syscall {
            args.push("--selftest-forbidden-syscall".into());
        }
        args
    }
}

/// `moat exec --waiter-fd FD`: this `moat exec` is the background waiter
/// of a detached one, and reports on FD that the process runs (an empty
/// line) or why not.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct ExecWaiter {
    /// Set by moat itself: this is the background waiter of a detached exec,
    /// which reports on this fd that the process runs (an empty line) or why not.
    #[arg(long, hide = true)]
    pub waiter_fd: Option<RawFd>,
}

impl ExecWaiter {
    /// The subcommand the flag belongs to.
    pub const SUBCOMMAND: &'static str = "exec";

    /// The flag as arguments (none if unset).
    pub fn to_args(&self) -> Vec<OsString> {
        self.waiter_fd.iter().flat_map(|fd| ["--waiter-fd".into(), fd.to_string().into()]).collect()
    }
}

/// `moat do --in-pid-namespace=CGROUP [--network-fd=FD]`: this `moat do`
/// is pid 1 of the sandbox's own PID namespace, and joins the cgroup CGROUP
/// first; with `--network sandbox`, FD is its socket to the first `moat do`.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct DoInPidNamespace {
    /// Set by moat itself: this process is pid 1 of the sandbox's own
    /// namespace, and joins the cgroup CGROUP before anything else.
    #[arg(long, hide = true, value_name = "CGROUP")]
    pub in_pid_namespace: Option<String>,
    /// Set by moat itself with --network sandbox: the inherited socket over
    /// which the first moat do makes the sandbox's link and sends policies.
    #[arg(long, hide = true, value_name = "FD")]
    pub network_fd: Option<RawFd>,
}

impl DoInPidNamespace {
    /// The subcommand the flag belongs to.
    pub const SUBCOMMAND: &'static str = "do";

    /// The flags as arguments (none if unset), each as one `--flag=VALUE`.
    pub fn to_args(&self) -> Vec<OsString> {
        let cgroup = self.in_pid_namespace.iter().map(|cgroup| format!("--in-pid-namespace={cgroup}").into());
        cgroup.chain(self.network_fd.iter().map(|fd| format!("--network-fd={fd}").into())).collect()
    }
}

/// This process's arguments (without the program name) with `extra` added
/// right after `subcommand`, before any `--` and command: how a moat
/// command runs itself again with a hidden flag.
pub(crate) fn args_with(subcommand: &str, extra: &[OsString]) -> Vec<OsString> {
    insert_after(std::env::args_os().skip(1).collect(), subcommand, extra)
}

fn insert_after(mut args: Vec<OsString>, subcommand: &str, extra: &[OsString]) -> Vec<OsString> {
    let at = args.iter().position(|a| a.as_os_str() == OsStr::from_bytes(subcommand.as_bytes()));
    let at = at.map_or(args.len(), |i| i + 1);
    args.splice(at..at, extra.iter().cloned());
    args
}

#[cfg(test)]
mod tests {
    use clap::{Parser, Subcommand};

    use super::*;

    /// The shape of the `moat` binary's command line, for the round trips.
    #[derive(Debug, Parser)]
    struct Moat {
        #[command(flatten)]
        flags: RuntimeFlags,
        #[command(subcommand)]
        command: Command,
    }

    #[derive(Debug, Subcommand)]
    enum Command {
        Boot(BootCommand),
        Gofer(GoferCommand),
        Exec {
            #[command(flatten)]
            waiter: ExecWaiter,
            id: String,
        },
        Do {
            #[command(flatten)]
            inner: DoInPidNamespace,
            #[arg(required = true, last = true)]
            cmd: Vec<String>,
        },
    }

    fn parse(args: Vec<OsString>) -> Moat {
        Moat::try_parse_from(std::iter::once(OsString::from("moat")).chain(args))
            .expect("moat's own command line parses")
    }

    #[test]
    fn boot_round_trips_with_the_runtime_flags() {
        let boot = BootCommand { id: "c-1".into(), bundle: "/b dir/x".into(), ready_fd: 7 };
        let plain = RuntimeFlags {
            root: "/run/moat".into(),
            log: None,
            log_format: LogFormat::Text,
            overlay: false,
            egress_default: None,
            egress_policy: None,
            audit_log: None,
            // Rendered, so that MOAT_PLATFORM in the test's environment does not decide it.
            platform: Some(sentry::PlatformKind::Ptrace),
        };
        let flag_sets = [
            plain.clone(),
            RuntimeFlags { root: "/r".into(), log: Some("/l.log".into()), ..plain.clone() },
            RuntimeFlags {
                root: "/r".into(),
                log: Some("/l.json".into()),
                log_format: LogFormat::Json,
                overlay: true,
                ..plain.clone()
            },
            RuntimeFlags {
                egress_default: Some(crate::egress::DefaultVerdict::Deny),
                egress_policy: Some("/etc/moat/egress.json".into()),
                audit_log: Some("/var/log/moat audit.log".into()),
                platform: Some(sentry::PlatformKind::Systrap),
                ..plain
            },
        ];
        for flags in flag_sets {
            let parsed = parse(boot.command_line(&flags));
            assert_eq!(parsed.flags, flags);
            assert!(matches!(parsed.command, Command::Boot(ref b) if *b == boot), "{parsed:?}");
        }
    }

    #[test]
    fn boot_command_line_names_its_container() {
        let boot = BootCommand { id: "abc".into(), bundle: "/b".into(), ready_fd: 3 };
        let flags = RuntimeFlags {
            root: "/r".into(),
            log: None,
            log_format: LogFormat::Text,
            overlay: false,
            egress_default: None,
            egress_policy: None,
            audit_log: None,
            platform: None,
        };
        let mut cmdline = Vec::new();
        for arg in std::iter::once(OsString::from("/usr/bin/moat")).chain(boot.command_line(&flags)) {
            cmdline.extend_from_slice(arg.as_bytes());
            cmdline.push(0);
        }
        assert!(BootCommand::is_boot_of(&cmdline, "abc"));
        assert!(!BootCommand::is_boot_of(&cmdline, "ab"));
        assert!(!BootCommand::is_boot_of(b"/usr/bin/moat\0gofer\0--id\0abc\0", "abc"));
    }

    #[test]
    fn gofer_round_trips() {
        let plain = GoferCommand {
            fd: 4,
            root: "/srv".into(),
            read_only: false,
            only: None,
            allow_setid: false,
            selftest_forbidden_syscall: false,
        };
        let every = GoferCommand {
            read_only: true,
            only: Some("file name".into()),
            allow_setid: true,
            selftest_forbidden_syscall: true,
            ..plain.clone()
        };
        for gofer in [plain, every] {
            let parsed = parse(gofer.command_line());
            assert!(matches!(parsed.command, Command::Gofer(ref g) if *g == gofer), "{parsed:?}");
        }
    }

    #[test]
    fn hidden_flags_round_trip_after_their_subcommand() {
        let waiter = ExecWaiter { waiter_fd: Some(9) };
        let args = insert_after(
            ["--root", "/r", "exec", "c1"].map(OsString::from).to_vec(),
            ExecWaiter::SUBCOMMAND,
            &waiter.to_args(),
        );
        let parsed = parse(args);
        assert!(matches!(parsed.command, Command::Exec { waiter: ref w, ref id } if *w == waiter && id == "c1"));

        let inner = DoInPidNamespace { in_pid_namespace: Some("/moat/do-1-0a".into()), network_fd: Some(5) };
        let args = insert_after(["do", "--", "sh", "-c", "exit"].map(OsString::from).to_vec(), "do", &inner.to_args());
        assert_eq!(args[1..3], ["--in-pid-namespace=/moat/do-1-0a", "--network-fd=5"]);
        let parsed = parse(args);
        assert!(
            matches!(parsed.command, Command::Do { inner: ref i, ref cmd } if *i == inner && cmd == &["sh", "-c", "exit"])
        );
        assert!(ExecWaiter::default().to_args().is_empty() && DoInPidNamespace::default().to_args().is_empty());
    }
}
