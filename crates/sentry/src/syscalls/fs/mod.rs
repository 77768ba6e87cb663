//! File syscalls, by topic: resolving paths and descriptors, opening,
//! reading and writing, metadata, names and directories, attributes,
//! descriptors and pipes, readiness, and the event files.

mod attr;
mod events;
mod fd;
mod names;
mod open;
mod path;
mod poll;
mod rw;
mod stat;

pub(crate) use attr::set_times;
pub use attr::{
    sys_faccessat, sys_fchmod, sys_fchmodat, sys_fchown, sys_fchownat, sys_ftruncate, sys_truncate, sys_umask,
    sys_utimensat, sys_xattr,
};
pub use events::{
    sys_eventfd2, sys_inotify_add_watch, sys_inotify_init1, sys_inotify_rm_watch, sys_signalfd4, sys_timerfd_create,
    sys_timerfd_gettime, sys_timerfd_settime,
};
pub use fd::{sys_dup, sys_dup2, sys_dup3, sys_fadvise64, sys_fcntl, sys_flock, sys_ioctl, sys_pipe2};
pub use names::{
    sys_chdir, sys_chroot, sys_fchdir, sys_getcwd, sys_getdents64, sys_linkat, sys_mkdirat, sys_mknodat,
    sys_readlinkat, sys_renameat2, sys_symlinkat, sys_unlinkat,
};
pub use open::{sys_close, sys_close_range, sys_memfd_create, sys_openat, sys_openat2};
pub(crate) use path::file;
pub use path::{AT_FDCWD, AT_REMOVEDIR, AT_SYMLINK_NOFOLLOW};
pub use poll::{sys_epoll_create1, sys_epoll_ctl, sys_epoll_pwait, sys_poll, sys_ppoll, sys_pselect6, sys_select};
pub use rw::{
    sys_copy_file_range, sys_fallocate, sys_fsync, sys_lseek, sys_pread64, sys_preadv, sys_preadv2, sys_pwrite64,
    sys_pwritev, sys_pwritev2, sys_read, sys_readv, sys_sendfile, sys_write, sys_writev,
};
pub use stat::{sys_fstat, sys_fstatfs, sys_newfstatat, sys_statfs, sys_statx};

/// For bind(2), which makes a socket's name as the vfs makes other files'.
pub(super) use crate::vfs::attr::own_new_file;
