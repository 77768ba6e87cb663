//! The `moat` binary: command-line parsing only; the work lives in the
//! library crates (`sentry`, `gofer`).
#![forbid(unsafe_code)]

mod commands;

use clap::{Parser, Subcommand};

/// moat: an application-kernel sandbox for untrusted Linux programs.
#[derive(Debug, Parser)]
#[command(name = "moat", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one command in a fresh sandbox (no bundle needed).
    Do(commands::run_do::DoArgs),
    /// Serve a directory over 9P on an inherited socket (started by moat itself).
    #[command(hide = true)]
    Gofer(commands::gofer::GoferArgs),
}

fn main() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MOAT_LOG").unwrap_or_else(|_| "error".into());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Do(a) => commands::run_do::run(a),
        Command::Gofer(a) => commands::gofer::run(a),
    };
    std::process::exit(code);
}
