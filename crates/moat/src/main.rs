//! The `moat` binary: command-line parsing only; the work lives in the
//! library crates (`runtime`, `sentry`, `gofer`).
#![forbid(unsafe_code)]

mod commands;

use clap::{CommandFactory, Parser, Subcommand};

use commands::{extra, oci};

/// moat: an application-kernel sandbox for untrusted Linux programs.
#[derive(Debug, Parser)]
#[command(name = "moat", version, about)]
struct Cli {
    #[command(flatten)]
    global: oci::Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one command in a fresh sandbox (no bundle needed).
    Do(commands::run_do::DoArgs),
    /// Create a container from a bundle, ready to start.
    Create(oci::create::CreateArgs),
    /// Start a created container's process.
    Start(oci::start::StartArgs),
    /// Print a container's state as JSON.
    State(oci::state::StateArgs),
    /// Send a signal to a container.
    Kill(oci::kill::KillArgs),
    /// Delete a container.
    Delete(oci::delete::DeleteArgs),
    /// Create and start a container, and wait for it.
    Run(extra::run::RunArgs),
    /// Run another process in a running container.
    Exec(extra::exec::ExecArgs),
    /// List a container's processes.
    Ps(extra::ps::PsArgs),
    /// List containers.
    List(extra::list::ListArgs),
    /// Print a container's resource usage.
    Events(extra::events::EventsArgs),
    /// Freeze a container.
    Pause(extra::pause::PauseArgs),
    /// Thaw a paused container.
    Resume(extra::pause::PauseArgs),
    /// Change a container's resource limits.
    Update(extra::update::UpdateArgs),
    /// Write a default config.json.
    Spec(extra::spec::SpecArgs),
    /// Print the features this runtime supports, as JSON.
    Features,
    /// List the Linux system calls moat implements, partly or not at all.
    Syscalls(commands::syscalls::SyscallsArgs),
    /// Register moat as a Docker runtime; print the containerd/Kubernetes setup.
    Install(extra::install::InstallArgs),
    /// The sandbox process of a container (started by `create`).
    #[command(hide = true)]
    Boot(runtime::subcommands::BootCommand),
    /// Serve a directory over 9P on an inherited socket (started by moat itself).
    #[command(hide = true)]
    Gofer(runtime::subcommands::GoferCommand),
}

fn main() {
    let cli = Cli::try_parse().unwrap_or_else(|e| refuse(e));
    // Inherited by the Gofers and the sandbox; a failure only means fewer files.
    let _ = host::sys::raise_open_files_limit();
    let filter = tracing_subscriber::EnvFilter::try_from_env("MOAT_LOG").unwrap_or_else(|_| "error".into());
    let logger = tracing_subscriber::fmt().with_env_filter(filter);
    if matches!(cli.command, Command::Boot(_)) {
        // A container's stderr is the app's: the sandbox logs to --log only,
        // and not at all in a JSON log (its diagnostics reach that log as
        // JSON lines by another way: every line there must parse).
        let flags = &cli.global.runtime;
        let text_log = flags.log.as_ref().filter(|_| flags.log_format == runtime::subcommands::LogFormat::Text);
        let file = text_log.and_then(|p| std::fs::OpenOptions::new().create(true).append(true).open(p).ok());
        match file {
            Some(file) => logger.with_ansi(false).with_writer(std::sync::Mutex::new(file)).init(),
            None => logger.with_writer(std::io::sink).init(),
        }
    } else {
        logger.with_writer(std::io::stderr).init();
    }
    let g = &cli.global;
    let code = match cli.command {
        Command::Do(a) => commands::run_do::run(g, a),
        Command::Create(a) => oci::create::run(g, a),
        Command::Start(a) => oci::start::run(g, a),
        Command::State(a) => oci::state::run(g, a),
        Command::Kill(a) => oci::kill::run(g, a),
        Command::Delete(a) => oci::delete::run(g, a),
        Command::Run(a) => extra::run::run(g, a),
        Command::Exec(a) => extra::exec::run(g, a),
        Command::Ps(a) => extra::ps::run(g, a),
        Command::List(a) => extra::list::run(g, a),
        Command::Events(a) => extra::events::run(g, a),
        Command::Pause(a) => extra::pause::pause(g, a),
        Command::Resume(a) => extra::pause::resume(g, a),
        Command::Update(a) => extra::update::run(g, a),
        Command::Spec(a) => extra::spec::run(g, a),
        Command::Features => extra::features::run(),
        Command::Syscalls(a) => commands::syscalls::run(a),
        Command::Install(a) => extra::install::run(g, a),
        Command::Boot(a) => extra::boot::run(g, a),
        Command::Gofer(a) => commands::gofer::run(a),
    };
    std::process::exit(code);
}

/// Ends moat on a command line clap refuses. `--help` and `--version` print
/// and exit 0 as usual; the OCI commands' usage errors keep clap's status 2.
/// `moat do` exits with the program's status, so its own failures are 125
/// with one line on stderr, as docker run's are.
fn refuse(e: clap::Error) -> ! {
    // Parsed again, past the error, only to learn which command it was in.
    let in_do = Cli::command().ignore_errors(true).try_get_matches().is_ok_and(|m| m.subcommand_name() == Some("do"));
    if !in_do || !e.use_stderr() {
        e.exit();
    }
    let rendered = e.render().to_string();
    let message: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .take_while(|line| !line.starts_with("Usage:") && !line.starts_with("For more information"))
        .filter(|line| !line.is_empty() && !line.starts_with("tip:"))
        .collect();
    let message = message.join(" ");
    eprintln!("moat: {} (moat do --help lists the options)", message.strip_prefix("error: ").unwrap_or(&message));
    std::process::exit(125);
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;

    use clap::Parser;
    use runtime::subcommands::{BootCommand, GoferCommand, LogFormat, RuntimeFlags};

    use super::{Cli, Command};

    fn parse(args: Vec<OsString>) -> Cli {
        Cli::try_parse_from(std::iter::once(OsString::from("moat")).chain(args)).expect("moat parses its own argv")
    }

    /// The argv `create` starts the sandbox process with is the one this
    /// binary parses, global flags included.
    #[test]
    fn boot_command_line_parses_as_rendered() {
        let flags = RuntimeFlags {
            root: "/r".into(),
            log: Some("/l".into()),
            log_format: LogFormat::Json,
            overlay: true,
            egress_default: Some(runtime::egress::DefaultVerdict::Deny),
            egress_policy: Some("/p.json".into()),
            audit_log: Some("/a.log".into()),
            platform: Some(sentry::PlatformKind::Systrap),
        };
        let boot = BootCommand { id: "c1".into(), bundle: "/b".into(), ready_fd: 5 };
        let cli = parse(boot.command_line(&flags));
        assert_eq!(cli.global.runtime, flags);
        assert!(matches!(cli.command, Command::Boot(ref b) if *b == boot), "{cli:?}");
    }

    #[test]
    fn gofer_command_line_parses_as_rendered() {
        let gofer = GoferCommand {
            fd: 4,
            root: "/srv".into(),
            read_only: true,
            only: Some("f".into()),
            allow_setid: true,
            selftest_forbidden_syscall: false,
        };
        let cli = parse(gofer.command_line());
        assert!(matches!(cli.command, Command::Gofer(ref g) if *g == gofer), "{cli:?}");
    }
}
