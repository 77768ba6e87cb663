//! One module per subcommand, each a thin layer over the library crates:
//! the OCI-standard runtime commands in `oci`, runc's extras in `extra`.

pub mod extra;
pub mod gofer;
pub mod oci;
pub mod run_do;
pub mod syscalls;
