//! Host system interface: the only crate allowed `unsafe`.
