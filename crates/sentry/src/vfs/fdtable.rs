//! File descriptor tables: fd numbers to open files, with FD_CLOEXEC.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::OpenFile;
use crate::SysResult;

/// Default RLIMIT_NOFILE (soft).
pub const NOFILE: u32 = 1024;
/// The most fds a table can ever hold (RLIMIT_NOFILE's hard ceiling, as Linux's nr_open).
pub const NR_OPEN: u32 = 1 << 20;

#[derive(Debug, Clone)]
pub struct FdTable {
    fds: BTreeMap<i32, (Arc<OpenFile>, bool)>,
    /// RLIMIT_NOFILE: fds at or above this cannot be allocated.
    pub limit: u32,
}

impl Default for FdTable {
    fn default() -> Self {
        FdTable { fds: BTreeMap::new(), limit: NOFILE }
    }
}

impl FdTable {
    pub fn get(&self, fd: i32) -> SysResult<Arc<OpenFile>> {
        self.fds.get(&fd).map(|(f, _)| f.clone()).ok_or(errno!(EBADF))
    }

    pub fn cloexec(&self, fd: i32) -> SysResult<bool> {
        self.fds.get(&fd).map(|(_, c)| *c).ok_or(errno!(EBADF))
    }

    pub fn set_cloexec(&mut self, fd: i32, on: bool) -> SysResult<()> {
        self.fds.get_mut(&fd).map(|e| e.1 = on).ok_or(errno!(EBADF))
    }

    /// Installs `file` at the lowest free fd >= `min`.
    pub fn add(&mut self, file: Arc<OpenFile>, cloexec: bool, min: i32) -> SysResult<i32> {
        let mut fd = min;
        for (&k, _) in self.fds.range(min..) {
            if k != fd {
                break;
            }
            fd += 1;
        }
        if fd as u32 >= self.limit {
            return Err(errno!(EMFILE));
        }
        self.fds.insert(fd, (file, cloexec));
        Ok(fd)
    }

    /// Installs `file` at exactly `fd`, returning what was there.
    pub fn set(&mut self, fd: i32, file: Arc<OpenFile>, cloexec: bool) -> SysResult<Option<Arc<OpenFile>>> {
        if fd < 0 || fd as u32 >= self.limit {
            return Err(errno!(EBADF));
        }
        Ok(self.fds.insert(fd, (file, cloexec)).map(|(f, _)| f))
    }

    pub fn remove(&mut self, fd: i32) -> SysResult<Arc<OpenFile>> {
        self.fds.remove(&fd).map(|(f, _)| f).ok_or(errno!(EBADF))
    }

    /// Drops every fd marked close-on-exec.
    pub fn close_on_exec(&mut self) -> Vec<Arc<OpenFile>> {
        let doomed: Vec<i32> = self.fds.iter().filter(|(_, (_, c))| *c).map(|(&k, _)| k).collect();
        doomed.into_iter().filter_map(|k| self.fds.remove(&k).map(|(f, _)| f)).collect()
    }

    pub fn fds(&self) -> impl Iterator<Item = (i32, &Arc<OpenFile>)> {
        self.fds.iter().map(|(&k, (f, _))| (k, f))
    }

    pub fn clear(&mut self) -> Vec<Arc<OpenFile>> {
        std::mem::take(&mut self.fds).into_values().map(|(f, _)| f).collect()
    }
}
