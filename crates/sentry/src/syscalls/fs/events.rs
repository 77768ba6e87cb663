//! The event files: eventfd, signalfd, timerfd and inotify.

use std::sync::Arc;
use std::time::{Duration, Instant};

use abi::time::{ITimerSpec, Timespec};

use super::open::install;
use super::path::{caller, file, lookup_as, AT_FDCWD, AT_SYMLINK_NOFOLLOW};
use crate::kernel::CurrentTask;
use crate::vfs::inotify::IN_DONT_FOLLOW;
use crate::vfs::open::{O_CLOEXEC, O_NONBLOCK};
use crate::vfs::OpenFile;
use crate::SysResult;

pub fn sys_eventfd2(t: &mut CurrentTask, initval: u32, flags: u32) -> SysResult<u64> {
    if flags & !(O_CLOEXEC | O_NONBLOCK | crate::fs::eventfd::EFD_SEMAPHORE) != 0 {
        return Err(errno!(EINVAL));
    }
    let f = OpenFile::new(crate::fs::eventfd::EventFd::new(initval, flags), None, 2 | (flags & O_NONBLOCK));
    install(t, f, flags & O_CLOEXEC != 0)
}

pub fn sys_signalfd4(t: &mut CurrentTask, fd: i32, mask: u64, size: usize, flags: u32) -> SysResult<u64> {
    if size != 8 || flags & !(O_CLOEXEC | O_NONBLOCK) != 0 {
        return Err(errno!(EINVAL));
    }
    let set = t.read_u64(mask)? & !crate::kernel::signal::UNBLOCKABLE;
    if fd != -1 {
        let f = file(t, fd)?;
        let sfd = f.ops.as_any_ops().downcast_ref::<crate::taskfs::signalfd::SignalFd>().ok_or(errno!(EINVAL))?;
        *sfd.mask.lock().unwrap() = set;
        return Ok(fd as u64);
    }
    let ops = Arc::new(crate::taskfs::signalfd::SignalFd::new(Arc::downgrade(&t.k), set));
    install(t, OpenFile::new(ops, None, flags & O_NONBLOCK), flags & O_CLOEXEC != 0)
}

pub fn sys_timerfd_create(t: &mut CurrentTask, clock: i32, flags: u32) -> SysResult<u64> {
    if !matches!(clock, 0 | 1 | 7 | 8 | 9) || flags & !(O_CLOEXEC | O_NONBLOCK) != 0 {
        return Err(errno!(EINVAL));
    }
    install(t, OpenFile::new(crate::fs::timerfd::TimerFd::new(clock), None, flags & O_NONBLOCK), flags & O_CLOEXEC != 0)
}

pub(super) fn timerfd_of(f: &Arc<OpenFile>) -> SysResult<Arc<crate::fs::timerfd::TimerFd>> {
    let ops = f.ops.clone();
    if ops.as_any_ops().downcast_ref::<crate::fs::timerfd::TimerFd>().is_none() {
        return Err(errno!(EINVAL));
    }
    // The concrete type was checked just above, so the downcast cannot fail.
    let raw: Arc<dyn std::any::Any + Send + Sync> = ops.into_any_arc();
    raw.downcast::<crate::fs::timerfd::TimerFd>().map_err(|_| errno!(EINVAL))
}

fn itimerspec(value: Duration, interval: Duration) -> ITimerSpec {
    ITimerSpec { interval: Timespec::from_duration(interval), value: Timespec::from_duration(value) }
}

pub fn sys_timerfd_settime(t: &mut CurrentTask, fd: i32, flags: u32, new: u64, old: u64) -> SysResult<u64> {
    const TFD_TIMER_ABSTIME: u32 = 1;
    const TFD_TIMER_CANCEL_ON_SET: u32 = 2;
    if flags & !(TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET) != 0 {
        return Err(errno!(EINVAL));
    }
    let tfd = timerfd_of(&file(t, fd)?)?;
    let new: ITimerSpec = t.read_obj(new)?;
    let interval = new.interval.duration().ok_or(errno!(EINVAL))?;
    let value = new.value.duration().ok_or(errno!(EINVAL))?;
    let deadline = if value.is_zero() {
        None
    } else if flags & TFD_TIMER_ABSTIME != 0 {
        // A time of the timer's own clock (CLOCK_REALTIME: since the epoch);
        // the alarm clocks read as their plain ones.
        let clock = match tfd.clock {
            8 => 0,
            9 => 7,
            c => c,
        };
        let (s, n) = t.k.clock.gettime(clock).map_err(|_| errno!(EINVAL))?;
        Instant::now().checked_add(value.saturating_sub(Duration::new(s as u64, n as u32)))
    } else {
        Instant::now().checked_add(value)
    };
    let (ov, oi) = tfd.set(deadline, interval);
    if old != 0 {
        t.write_obj(old, &itimerspec(ov, oi))?;
    }
    Ok(0)
}

pub fn sys_timerfd_gettime(t: &mut CurrentTask, fd: i32, cur: u64) -> SysResult<u64> {
    let tfd = timerfd_of(&file(t, fd)?)?;
    let (v, i) = tfd.get();
    t.write_obj(cur, &itimerspec(v, i))?;
    Ok(0)
}

pub fn sys_inotify_init1(t: &mut CurrentTask, flags: u32) -> SysResult<u64> {
    if flags & !(O_CLOEXEC | O_NONBLOCK) != 0 {
        return Err(errno!(EINVAL));
    }
    let i = Arc::new(crate::vfs::inotify::Inotify::default());
    t.k.inotify.register(&i);
    install(t, OpenFile::new(i, None, flags & O_NONBLOCK), flags & O_CLOEXEC != 0)
}

pub(super) fn inotify_of(f: &Arc<OpenFile>) -> SysResult<&crate::vfs::inotify::Inotify> {
    f.ops.as_any_ops().downcast_ref::<crate::vfs::inotify::Inotify>().ok_or(errno!(EINVAL))
}

pub fn sys_inotify_add_watch(t: &mut CurrentTask, fd: i32, path: u64, mask: u32) -> SysResult<u64> {
    let f = file(t, fd)?;
    let ino = inotify_of(&f)?;
    let follow = if mask & IN_DONT_FOLLOW != 0 { AT_SYMLINK_NOFOLLOW } else { 0 };
    let who = caller(t);
    let d = lookup_as(t, &who, AT_FDCWD, path, follow)?;
    Ok(ino.watch(&who.creds, &d, mask)? as u64)
}

pub fn sys_inotify_rm_watch(t: &mut CurrentTask, fd: i32, wd: i32) -> SysResult<u64> {
    let f = file(t, fd)?;
    inotify_of(&f)?.rm_watch(wd)?;
    Ok(0)
}
