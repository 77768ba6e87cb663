//! `moat syscalls`: which Linux system calls the Sentry implements, from its
//! syscall table (the same list as docs/syscalls.md).

use sentry::syscalls::{coverage, coverage_markdown, Status};

/// How to print the list.
#[derive(Debug, Clone, Copy, Default, clap::ValueEnum)]
pub enum Format {
    /// One line per call: number, name, status, note.
    #[default]
    Text,
    /// A JSON array of {nr, name, status, note[, errno]}.
    Json,
    /// docs/syscalls.md.
    Markdown,
}

#[derive(Debug, clap::Args)]
pub struct SyscallsArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

pub fn run(args: SyscallsArgs) -> i32 {
    match args.format {
        Format::Markdown => print!("{}", coverage_markdown()),
        Format::Text => {
            for (nr, name, status) in coverage() {
                let note = status.note();
                let sep = if note.is_empty() { "" } else { ": " };
                println!("{nr:>3} {name:<24} {}{sep}{note}", status.label());
            }
        }
        Format::Json => {
            let rows: Vec<serde_json::Value> = coverage()
                .into_iter()
                .map(|(nr, name, status)| {
                    let mut row = serde_json::json!({
                        "nr": nr, "name": name, "status": status.label(), "note": status.note(),
                    });
                    if let Status::Refused(errno, _) = status {
                        row["errno"] = errno.name().into();
                    }
                    row
                })
                .collect();
            match serde_json::to_string_pretty(&rows) {
                Ok(text) => println!("{text}"),
                Err(e) => {
                    eprintln!("moat: syscalls: {e}");
                    return 1;
                }
            }
        }
    }
    0
}
