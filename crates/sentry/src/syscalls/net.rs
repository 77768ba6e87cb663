//! Socket syscalls (being written).
