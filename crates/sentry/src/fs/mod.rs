//! Filesystems and file-like objects: tmpfs, devfs, procfs, the Gofer-backed
//! root, the overlay that keeps it read-only, pipes and host-backed stdio.

pub mod dev;
pub mod epoll;
pub mod eventfd;
pub mod gofer;
pub mod host;
pub mod overlay;
pub mod pipe;
pub mod simple;
pub mod sys;
pub mod timerfd;
pub mod tmpfs;
pub mod unix;
