//! moat's OCI runtime: bundles and their specs, container state under
//! `--root`, cgroups, and the sandbox process (`moat boot`) that runs a
//! container's Gofers and Sentry and answers its control socket.
//!
//! Also the work behind every `moat` command that is not argument parsing:
//! the OCI lifecycle (`container`), `exec`, `moat do` (`do_command`), and
//! the command lines of the moat processes moat starts (`subcommands`).
#![forbid(unsafe_code)]

pub mod bundle;
pub mod cgroups;
pub mod container;
pub mod control;
pub mod do_command;
pub mod egress;
pub mod exec;
pub mod gofers;
mod lookpath;
mod passwd;
pub mod sandbox;
pub mod seccomp_profile;
pub mod state;
pub mod subcommands;
