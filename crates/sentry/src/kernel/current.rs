//! `CurrentTask`: the state a Sentry host thread holds while it runs one
//! app thread, and its ways into the app's memory, address space and sleep.

use std::sync::Arc;
use std::time::Instant;

use abi::{AsBytes, Errno, FromBytes};

use super::signal;
use super::task::{signaled, Task, ThreadGroup};
use super::Kernel;
use crate::auth::Creds;
use crate::mm::{MapOp, MemoryManager};
use crate::platform::{Context, Regs};
use crate::waiter::WaitQueue;
use crate::SysResult;

/// The state a Sentry host thread holds while it runs one app thread.
#[derive(Debug)]
pub struct CurrentTask {
    pub k: Arc<Kernel>,
    pub task: Arc<Task>,
    pub ctx: Box<dyn Context>,
    pub regs: Regs,
    /// A restart code from the last syscall, resolved at signal delivery.
    pub restart: Option<crate::Restart>,
}

impl CurrentTask {
    pub fn tg(&self) -> &Arc<ThreadGroup> {
        &self.task.tg
    }

    pub fn pid(&self) -> i32 {
        self.task.tg.pid
    }

    /// A copy of the process's credentials, for one syscall's checks.
    pub fn creds(&self) -> Creds {
        self.tg().creds.lock().unwrap().clone()
    }

    /// Whether the process holds `cap` in its effective set.
    pub fn capable(&self, cap: u32) -> bool {
        self.tg().creds.lock().unwrap().has(cap)
    }

    /// Copies app memory into `buf`.
    pub fn read_mem(&self, addr: u64, buf: &mut [u8]) -> SysResult<()> {
        self.tg().mm().lock().unwrap().read(addr, buf)
    }

    pub fn read_vec(&self, addr: u64, len: usize) -> SysResult<Vec<u8>> {
        let mut v = vec![0u8; len];
        self.read_mem(addr, &mut v)?;
        Ok(v)
    }

    pub fn write_mem(&self, addr: u64, data: &[u8]) -> SysResult<()> {
        self.tg().mm().lock().unwrap().write(addr, data)
    }

    pub fn read_u64(&self, addr: u64) -> SysResult<u64> {
        self.tg().mm().lock().unwrap().read_u64(addr)
    }

    pub fn read_u32(&self, addr: u64) -> SysResult<u32> {
        self.read_obj(addr)
    }

    /// Copies one ABI struct (or integer) out of app memory: exactly
    /// `size_of::<T>()` bytes at `addr`.
    pub fn read_obj<T: FromBytes + AsBytes>(&self, addr: u64) -> SysResult<T> {
        let mut obj = T::new_zeroed();
        self.read_mem(addr, obj.as_bytes_mut())?;
        Ok(obj)
    }

    /// Copies one ABI struct, integer or slice of them into app memory at `addr`.
    pub fn write_obj<T: AsBytes + ?Sized>(&self, addr: u64, obj: &T) -> SysResult<()> {
        self.write_mem(addr, obj.as_bytes())
    }

    pub fn read_cstr(&self, addr: u64) -> SysResult<Vec<u8>> {
        if addr == 0 {
            return Err(errno!(EFAULT));
        }
        self.tg().mm().lock().unwrap().read_cstr(addr, crate::vfs::PATH_MAX)
    }

    /// Changes the address space with `change` (which returns its result and
    /// the host mapping changes it needs) and has the stub follow before the
    /// lock is let go: every thread's changes reach the host in the order
    /// they were made to the VMAs, and pages a change dropped are freed only
    /// once the stub no longer maps them. If the stub cannot follow, the
    /// process is killed (its pages are freed after its stub is gone).
    pub fn change_mm<T>(
        &mut self,
        change: impl FnOnce(&mut MemoryManager) -> SysResult<(T, Vec<MapOp>)>,
    ) -> SysResult<T> {
        let mm_arc = self.tg().mm();
        let mut mm = mm_arc.lock().unwrap();
        let (value, ops) = change(&mut mm)?;
        if let Err(e) = self.ctx.apply(&ops) {
            drop(mm);
            tracing::error!(pid = self.pid(), "stub mapping failed: {e}");
            self.tg().begin_exit(signaled(signal::SIGKILL, false));
            return Err(errno!(ENOMEM));
        }
        mm.finish_change();
        Ok(value)
    }

    /// Sleeps until `ready` stops returning EAGAIN, a signal arrives (ERESTARTSYS) or the
    /// deadline passes (ETIMEDOUT). `queues` are where the wake-up will come from.
    pub fn block_on<T>(
        &self,
        queues: &[&WaitQueue],
        deadline: Option<Instant>,
        mut ready: impl FnMut() -> SysResult<T>,
    ) -> SysResult<T> {
        let w = &self.task.waiter;
        let result = loop {
            for q in queues {
                q.add(w);
            }
            w.reset();
            match ready() {
                Err(e) if e == Errno::EAGAIN => {}
                r => break r,
            }
            if self.task.interrupted() {
                break Err(crate::Error::restart(crate::Restart::Sys));
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break Err(errno!(ETIMEDOUT));
            }
            w.wait(deadline);
        };
        for q in queues {
            q.remove(w);
        }
        result
    }
}
