//! Readiness: poll, ppoll, select, pselect6 and epoll.

use std::sync::Arc;
use std::time::{Duration, Instant};

use abi::io::{EpollEvent, PollFd, EPOLL_CTL_ADD, EPOLL_CTL_DEL};
use abi::time::{Timespec, Timeval};
use abi::{AsBytes, Errno};

use super::open::install;
use super::path::file;
use crate::kernel::CurrentTask;
use crate::vfs::open::O_CLOEXEC;
use crate::vfs::{OpenFile, PollMask};
use crate::waiter::WaitQueue;
use crate::SysResult;

/// Waits until one of `fds` (fd, requested events) is ready or `deadline`; returns revents.
pub(super) fn poll_files(t: &CurrentTask, fds: &[(i32, i16)], deadline: Option<Instant>) -> SysResult<Vec<i16>> {
    let files: Vec<Option<Arc<OpenFile>>> =
        fds.iter().map(|(fd, _)| if *fd >= 0 { t.tg().fds.lock().unwrap().get(*fd).ok() } else { None }).collect();
    let queues: Vec<&WaitQueue> = files.iter().flatten().filter_map(|f| f.ops.wait_queue()).collect();
    let has_unqueued = files.iter().flatten().any(|f| f.ops.wait_queue().is_none());
    let check = || -> Vec<i16> {
        fds.iter()
            .zip(&files)
            .map(|((fd, ev), f)| {
                if *fd < 0 {
                    return 0;
                }
                let m = match f {
                    Some(f) => f.ops.poll(),
                    None => PollMask::NVAL,
                };
                m.bits() as i16 & (*ev | 0x8 | 0x10 | 0x20)
            })
            .collect()
    };
    loop {
        // Host-backed files have no wait queue: look again every 20 ms.
        let step = if has_unqueued { Instant::now().checked_add(Duration::from_millis(20)) } else { None };
        let until = match (deadline, step) {
            (Some(d), Some(s)) => Some(d.min(s)),
            (d, s) => d.or(s),
        };
        let r = t.block_on(&queues, until, || {
            let rev = check();
            if rev.iter().any(|&r| r != 0) {
                Ok(rev)
            } else {
                Err(errno!(EAGAIN))
            }
        });
        match r {
            Err(e) if e == Errno::ETIMEDOUT && (deadline.is_some_and(|d| Instant::now() >= d)) => {
                return Ok(vec![0; fds.len()])
            }
            Err(e) if e == Errno::ETIMEDOUT => continue,
            Err(e) if e.as_restart() == Some(crate::Restart::Sys) => {
                return Err(crate::Error::restart(crate::Restart::NoHand))
            }
            r => return r,
        }
    }
}

pub(super) fn ms_deadline(timeout_ms: i64) -> Option<Instant> {
    if timeout_ms < 0 {
        return None;
    }
    Instant::now().checked_add(Duration::from_millis(timeout_ms as u64))
}

/// Reads a timespec timeout (NULL: wait forever) into a deadline.
pub(super) fn ts_deadline(t: &CurrentTask, ts: u64) -> SysResult<Option<Instant>> {
    if ts == 0 {
        return Ok(None);
    }
    let ts: Timespec = t.read_obj(ts)?;
    Ok(Instant::now().checked_add(ts.duration().ok_or(errno!(EINVAL))?))
}

/// Installs a temporary signal mask for ppoll/pselect6; delivery restores the old one.
pub(super) fn swap_sigmask(t: &CurrentTask, set: u64, size: u64) -> SysResult<()> {
    if set == 0 {
        return Ok(());
    }
    if size != 8 {
        return Err(errno!(EINVAL));
    }
    let mask = t.read_u64(set)?;
    let mut ts = t.task.sig.lock().unwrap();
    ts.saved_mask = Some(ts.mask);
    ts.mask = mask & !crate::kernel::signal::UNBLOCKABLE;
    Ok(())
}

pub(super) fn poll_common(t: &mut CurrentTask, fds_ptr: u64, nfds: usize, deadline: Option<Instant>) -> SysResult<u64> {
    if nfds > t.tg().fds.lock().unwrap().limit as usize {
        return Err(errno!(EINVAL));
    }
    let mut pfds = vec![PollFd::default(); nfds];
    t.read_mem(fds_ptr, pfds.as_bytes_mut())?;
    let fds: Vec<(i32, i16)> = pfds.iter().map(|p| (p.fd, p.events)).collect();
    let rev = poll_files(t, &fds, deadline)?;
    for (p, &r) in pfds.iter_mut().zip(&rev) {
        p.revents = r;
    }
    t.write_obj(fds_ptr, &pfds[..])?;
    Ok(rev.iter().filter(|&&r| r != 0).count() as u64)
}

pub fn sys_poll(t: &mut CurrentTask, fds_ptr: u64, nfds: usize, timeout_ms: i64) -> SysResult<u64> {
    poll_common(t, fds_ptr, nfds, ms_deadline(timeout_ms))
}

pub fn sys_ppoll(t: &mut CurrentTask, fds_ptr: u64, nfds: usize, ts: u64, set: u64, size: u64) -> SysResult<u64> {
    let deadline = ts_deadline(t, ts)?;
    swap_sigmask(t, set, size)?;
    let r = poll_common(t, fds_ptr, nfds, deadline);
    finish_masked(t, r)
}

/// After a masked wait: keep the temporary mask for the signal frame on EINTR, else restore.
pub(super) fn finish_masked(t: &CurrentTask, r: SysResult<u64>) -> SysResult<u64> {
    if r != Err(crate::Error::restart(crate::Restart::NoHand)) {
        let mut ts = t.task.sig.lock().unwrap();
        if let Some(m) = ts.saved_mask.take() {
            ts.mask = m;
        }
    }
    r
}

/// select/pselect6 over fd_set bitmaps.
pub(super) fn select_common(
    t: &mut CurrentTask,
    nfds: i32,
    sets: [u64; 3],
    deadline: Option<Instant>,
) -> SysResult<u64> {
    if !(0..=crate::vfs::fdtable::NR_OPEN as i32).contains(&nfds) {
        return Err(errno!(EINVAL));
    }
    let bytes = (nfds as usize).div_ceil(64) * 8;
    let mut maps = [vec![0u8; bytes], vec![0u8; bytes], vec![0u8; bytes]];
    for (m, &p) in maps.iter_mut().zip(&sets) {
        if p != 0 {
            *m = t.read_vec(p, bytes)?;
        }
    }
    let bit = |m: &Vec<u8>, fd: usize| m[fd / 8] & (1 << (fd % 8)) != 0;
    let mut fds = Vec::new();
    for fd in 0..nfds as usize {
        let mut ev = 0i16;
        if bit(&maps[0], fd) {
            ev |= 0x1;
        }
        if bit(&maps[1], fd) {
            ev |= 0x4;
        }
        if bit(&maps[2], fd) {
            ev |= 0x2;
        }
        if ev != 0 {
            if t.tg().fds.lock().unwrap().get(fd as i32).is_err() {
                return Err(errno!(EBADF));
            }
            fds.push((fd as i32, ev));
        }
    }
    let rev = poll_files(t, &fds, deadline)?;
    let mut out = [vec![0u8; bytes], vec![0u8; bytes], vec![0u8; bytes]];
    let mut n = 0;
    for ((fd, ev), r) in fds.iter().zip(&rev) {
        let fd = *fd as usize;
        for (i, mask) in [(0usize, 0x1 | 0x8 | 0x10), (1, 0x4 | 0x8), (2, 0x2)] {
            let want = [0x1, 0x4, 0x2][i];
            if ev & want != 0 && r & mask != 0 {
                out[i][fd / 8] |= 1 << (fd % 8);
                n += 1;
            }
        }
    }
    for (m, &p) in out.iter().zip(&sets) {
        if p != 0 {
            t.write_mem(p, m)?;
        }
    }
    Ok(n)
}

pub fn sys_select(t: &mut CurrentTask, nfds: i32, r: u64, w: u64, e: u64, tv: u64) -> SysResult<u64> {
    let deadline = if tv == 0 {
        None
    } else {
        let tv: Timeval = t.read_obj(tv)?;
        Instant::now().checked_add(tv.duration().ok_or(errno!(EINVAL))?)
    };
    select_common(t, nfds, [r, w, e], deadline)
}

pub fn sys_pselect6(t: &mut CurrentTask, nfds: i32, r: u64, w: u64, e: u64, ts: u64, sig: u64) -> SysResult<u64> {
    let deadline = ts_deadline(t, ts)?;
    let (set, size) = if sig != 0 {
        // pselect6's sixth argument: { const sigset_t *ss; size_t ss_len }.
        let [set, size]: [u64; 2] = t.read_obj(sig)?;
        (set, size)
    } else {
        (0, 0)
    };
    swap_sigmask(t, set, size)?;
    let res = select_common(t, nfds, [r, w, e], deadline);
    finish_masked(t, res)
}

pub fn sys_epoll_create1(t: &mut CurrentTask, flags: u32) -> SysResult<u64> {
    if flags & !O_CLOEXEC != 0 {
        return Err(errno!(EINVAL));
    }
    let f = OpenFile::new(crate::fs::epoll::Epoll::new(), None, 2);
    install(t, f, flags & O_CLOEXEC != 0)
}

pub(super) fn epoll_of(f: &Arc<OpenFile>) -> SysResult<&crate::fs::epoll::Epoll> {
    let any: &dyn std::any::Any = f.ops.as_any_ops();
    any.downcast_ref::<crate::fs::epoll::Epoll>().ok_or(errno!(EINVAL))
}

pub fn sys_epoll_ctl(t: &mut CurrentTask, epfd: i32, op: u32, fd: i32, ev: u64) -> SysResult<u64> {
    let ep = file(t, epfd)?;
    let target = file(t, fd)?;
    if Arc::ptr_eq(&ep, &target) {
        return Err(errno!(EINVAL));
    }
    if target.ops.seekable() && target.inode().is_some() {
        // Regular files and directories are always ready; Linux refuses them.
        return Err(errno!(EPERM));
    }
    if op == EPOLL_CTL_ADD && epoll_of(&target).is_ok() {
        check_epoll_nesting(&ep, &target)?;
    }
    let (events, data) = if op == EPOLL_CTL_DEL {
        (0, 0)
    } else {
        let e: EpollEvent = t.read_obj(ev)?;
        (e.events, e.data)
    };
    epoll_of(&ep)?.ctl(op, fd, &target, events, data)?;
    Ok(0)
}

/// Adding the epoll `inner` to `outer`: ELOOP if `outer` is among the epolls
/// `inner` watches, however deep, or if the nesting below `inner` is deeper
/// than Linux allows (EP_MAX_NESTS). Without this an epoll watching itself
/// through another would poll itself forever.
pub(super) fn check_epoll_nesting(outer: &Arc<OpenFile>, inner: &Arc<OpenFile>) -> SysResult<()> {
    const EP_MAX_NESTS: usize = 4;
    fn walk(outer: &Arc<OpenFile>, f: &Arc<OpenFile>, depth: usize) -> SysResult<()> {
        if depth > EP_MAX_NESTS {
            return Err(errno!(ELOOP));
        }
        let Ok(ep) = epoll_of(f) else { return Ok(()) };
        for member in ep.files().0 {
            if Arc::ptr_eq(&member, outer) {
                return Err(errno!(ELOOP));
            }
            walk(outer, &member, depth + 1)?;
        }
        Ok(())
    }
    walk(outer, inner, 1)
}

pub fn sys_epoll_pwait(t: &mut CurrentTask, epfd: i32, evs: u64, max: i32, timeout_ms: i64) -> SysResult<u64> {
    if max <= 0 || max > 65536 {
        return Err(errno!(EINVAL));
    }
    let epf = file(t, epfd)?;
    let ep = epoll_of(&epf)?;
    let deadline =
        if timeout_ms >= 0 { Instant::now().checked_add(Duration::from_millis(timeout_ms as u64)) } else { None };
    let r = loop {
        let (files, unqueued) = ep.files();
        let queues: Vec<&WaitQueue> = files.iter().filter_map(|f| f.ops.wait_queue()).collect();
        // Host-backed files have no wait queue: look again every 20 ms.
        let step = if unqueued { Instant::now().checked_add(Duration::from_millis(20)) } else { None };
        let until = match (deadline, step) {
            (Some(d), Some(s)) => Some(d.min(s)),
            (d, s) => d.or(s),
        };
        match t.block_on(&queues, until, || {
            let r = ep.ready(max as usize);
            if r.is_empty() {
                Err(errno!(EAGAIN))
            } else {
                Ok(r)
            }
        }) {
            Err(e) if e == Errno::ETIMEDOUT && (deadline.is_some_and(|d| Instant::now() >= d)) => break Ok(Vec::new()),
            Err(e) if e == Errno::ETIMEDOUT => continue,
            Err(e) if e.as_restart() == Some(crate::Restart::Sys) => break Err(errno!(EINTR)),
            r => break r,
        }
    }?;
    let out: Vec<EpollEvent> = r.iter().map(|&(events, data)| EpollEvent { events, data }).collect();
    t.write_obj(evs, &out[..])?;
    Ok(r.len() as u64)
}
