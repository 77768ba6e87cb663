//! Files whose contents are tasks: /proc (and the sysctls shown under
//! /proc/sys), pseudo-terminals (job control signals the foreground group),
//! signalfd. They sit above `kernel` because they read and signal its tasks.

pub mod proc;
pub mod pty;
pub mod signalfd;
pub mod sysctl;
