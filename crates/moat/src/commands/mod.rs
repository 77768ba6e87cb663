//! One module per subcommand, each a thin layer over the library crates.

pub mod gofer;
pub mod run_do;
