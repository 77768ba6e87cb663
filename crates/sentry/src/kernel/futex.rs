//! Futexes: wait queues keyed by the memory-file offset of the futex word, so
//! threads of one process and processes sharing a page meet on the same key.
//! FUTEX_PRIVATE_FLAG operations use a key space of their own, as on Linux,
//! where a private op never matches a waiter that used the shared op.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::current::CurrentTask;
use crate::mm::{PROT_READ, PROT_WRITE};
use crate::waiter::Waiter;
use crate::SysResult;

#[derive(Debug)]
struct FutexWaiter {
    waiter: Arc<Waiter>,
    woken: AtomicBool,
    bitset: u32,
}

/// Every futex queue of the sandbox.
#[derive(Debug, Default)]
pub struct Futexes {
    queues: Mutex<HashMap<Key, Vec<Arc<FutexWaiter>>>>,
}

/// (memory-file offset, private op).
type Key = (u64, bool);

/// The key of the word at `addr`, and its pages, held while the word is
/// read or written (see `MemoryManager::translate_u32`).
fn key(t: &CurrentTask, addr: u64, want: u32, private: bool) -> SysResult<(Key, Arc<crate::mm::Backing>)> {
    let (off, pages) = t.tg().mm().lock().unwrap().translate_u32(addr, want)?;
    Ok(((off, private), pages))
}

impl Futexes {
    /// FUTEX_WAIT(_BITSET): sleeps while the word at `addr` is `val`.
    pub fn wait(
        &self,
        t: &CurrentTask,
        addr: u64,
        val: u32,
        bitset: u32,
        deadline: Option<Instant>,
        private: bool,
    ) -> SysResult<u64> {
        if bitset == 0 {
            return Err(errno!(EINVAL));
        }
        let (k, _pages) = key(t, addr, PROT_READ, private)?;
        let fw = Arc::new(FutexWaiter { waiter: t.task.waiter.clone(), woken: AtomicBool::new(false), bitset });
        {
            let mut q = self.queues.lock().unwrap();
            if t.k.mem.load_u32(k.0).map_err(|_| errno!(EFAULT))? != val {
                return Err(errno!(EAGAIN));
            }
            q.entry(k).or_default().push(fw.clone());
        }
        let r = t.block_on(&[], deadline, || if fw.woken.load(Ordering::SeqCst) { Ok(0) } else { Err(errno!(EAGAIN)) });
        if r.is_err() {
            let mut q = self.queues.lock().unwrap();
            for v in q.values_mut() {
                v.retain(|w| !Arc::ptr_eq(w, &fw));
            }
            q.retain(|_, v| !v.is_empty());
            if fw.woken.load(Ordering::SeqCst) {
                return Ok(0);
            }
        }
        r
    }

    fn wake_key(q: &mut HashMap<Key, Vec<Arc<FutexWaiter>>>, k: Key, n: u32, bitset: u32) -> u32 {
        let mut woken = 0;
        if let Some(v) = q.get_mut(&k) {
            v.retain(|w| {
                if woken < n && w.bitset & bitset != 0 {
                    w.woken.store(true, Ordering::SeqCst);
                    w.waiter.notify();
                    woken += 1;
                    false
                } else {
                    true
                }
            });
            if v.is_empty() {
                q.remove(&k);
            }
        }
        woken
    }

    /// FUTEX_WAKE(_BITSET): wakes up to `n` waiters.
    pub fn wake(&self, t: &CurrentTask, addr: u64, n: u32, bitset: u32, private: bool) -> SysResult<u64> {
        if bitset == 0 {
            return Err(errno!(EINVAL));
        }
        let (k, _) = key(t, addr, PROT_READ, private)?;
        Ok(Self::wake_key(&mut self.queues.lock().unwrap(), k, n, bitset) as u64)
    }

    /// Wakes one waiter on a word already translated, as the kernel does for thread exit's
    /// clear_child_tid and robust futexes: with a shared-key wake.
    pub fn wake_offset(&self, off: u64) {
        Self::wake_key(&mut self.queues.lock().unwrap(), (off, false), 1, u32::MAX);
    }

    /// FUTEX_(CMP_)REQUEUE: wakes `n` waiters on `addr`, moves up to `n2` to `addr2`.
    #[allow(clippy::too_many_arguments)]
    pub fn requeue(
        &self,
        t: &CurrentTask,
        addr: u64,
        n: u32,
        addr2: u64,
        n2: u32,
        cmp: Option<u32>,
        private: bool,
    ) -> SysResult<u64> {
        let (k, _pages) = key(t, addr, PROT_READ, private)?;
        let (k2, _) = key(t, addr2, PROT_READ, private)?;
        let mut q = self.queues.lock().unwrap();
        if let Some(v) = cmp {
            if t.k.mem.load_u32(k.0).map_err(|_| errno!(EFAULT))? != v {
                return Err(errno!(EAGAIN));
            }
        }
        let woken = Self::wake_key(&mut q, k, n, u32::MAX);
        let mut moved = Vec::new();
        if let Some(v) = q.get_mut(&k) {
            let take = (n2 as usize).min(v.len());
            moved.extend(v.drain(..take));
            if v.is_empty() {
                q.remove(&k);
            }
        }
        let count = moved.len() as u32;
        if k2 != k {
            q.entry(k2).or_default().extend(moved);
        } else if !moved.is_empty() {
            q.entry(k).or_default().extend(moved);
        }
        Ok((woken + if cmp.is_some() { count } else { 0 }) as u64)
    }

    /// FUTEX_WAKE_OP: atomically updates the word at `addr2`, wakes `n` on `addr` and, if
    /// the old value of `addr2` passes the encoded comparison, `n2` on `addr2`.
    #[allow(clippy::too_many_arguments)]
    pub fn wake_op(
        &self,
        t: &CurrentTask,
        addr: u64,
        n: u32,
        addr2: u64,
        n2: u32,
        op: u32,
        private: bool,
    ) -> SysResult<u64> {
        let (k, _) = key(t, addr, PROT_READ, private)?;
        let (k2, _pages2) = key(t, addr2, PROT_READ | PROT_WRITE, private)?;
        let mut q = self.queues.lock().unwrap();
        let opcode = (op >> 28) & 7;
        let shift = op & (8 << 28) != 0;
        let cmp = (op >> 24) & 15;
        let mut oparg = (op >> 12) & 0xfff;
        let cmparg = op & 0xfff;
        if shift {
            oparg = 1u32.checked_shl(oparg).unwrap_or(0);
        }
        let old = loop {
            let cur = t.k.mem.load_u32(k2.0).map_err(|_| errno!(EFAULT))?;
            let new = match opcode {
                0 => oparg,
                1 => cur.wrapping_add(oparg),
                2 => cur | oparg,
                3 => cur & !oparg,
                4 => cur ^ oparg,
                _ => return Err(errno!(ENOSYS)),
            };
            if t.k.mem.cas_u32(k2.0, cur, new).map_err(|_| errno!(EFAULT))? == cur {
                break cur;
            }
        };
        let (o, c) = (old as i32, cmparg as i32);
        let hit = match cmp {
            0 => o == c,
            1 => o != c,
            2 => o < c,
            3 => o <= c,
            4 => o > c,
            5 => o >= c,
            _ => return Err(errno!(ENOSYS)),
        };
        let mut woken = Self::wake_key(&mut q, k, n, u32::MAX);
        if hit {
            woken += Self::wake_key(&mut q, k2, n2, u32::MAX);
        }
        Ok(woken as u64)
    }
}
