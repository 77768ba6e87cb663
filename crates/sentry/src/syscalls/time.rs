//! Time syscalls: clocks and sleeping. Sleeps are interruptible by signals.

use std::sync::Arc;
use std::time::{Duration, Instant};

use abi::signal::{SigEvent, SIGEV_NONE, SIGEV_SIGNAL, SIGEV_THREAD_ID};
use abi::time::*;
use abi::Errno;

use super::args::UserRef;
use crate::kernel::CurrentTask;
use crate::SysResult;

fn read_ts(t: &CurrentTask, addr: u64) -> SysResult<Duration> {
    t.read_obj::<Timespec>(addr)?.duration().ok_or(errno!(EINVAL))
}

fn clock_now(t: &CurrentTask, clock: i32) -> SysResult<(i64, i64)> {
    // The CPU-time clocks count what the kernel counts for getrusage: the
    // time the app ran out of the Sentry.
    let cpu = match clock {
        CLOCK_REALTIME
        | CLOCK_MONOTONIC
        | CLOCK_MONOTONIC_RAW
        | CLOCK_REALTIME_COARSE
        | CLOCK_MONOTONIC_COARSE
        | CLOCK_BOOTTIME => return t.k.clock.gettime(clock).map_err(|_| errno!(EINVAL)),
        CLOCK_PROCESS_CPUTIME_ID => {
            let st = t.tg().state.lock().unwrap();
            st.threads.iter().map(|t| t.cpu_ns.load(std::sync::atomic::Ordering::Relaxed)).sum()
        }
        CLOCK_THREAD_CPUTIME_ID => t.task.cpu_ns.load(std::sync::atomic::Ordering::Relaxed),
        _ => return Err(errno!(EINVAL)),
    };
    Ok(((cpu / 1_000_000_000) as i64, (cpu % 1_000_000_000) as i64))
}

pub fn sys_clock_gettime(t: &mut CurrentTask, clock: i32, tp: UserRef<Timespec>) -> SysResult<u64> {
    let (sec, nsec) = clock_now(t, clock)?;
    tp.write(t, &Timespec { sec, nsec })?;
    Ok(0)
}

pub fn sys_clock_getres(t: &mut CurrentTask, clock: i32, res: UserRef<Timespec>) -> SysResult<u64> {
    clock_now(t, clock)?;
    if !res.is_null() {
        res.write(t, &Timespec { sec: 0, nsec: 1 })?;
    }
    Ok(0)
}

/// The time zone reads as UTC with no DST (Linux's `sys_tz` as nobody set
/// it), here and in the vDSO.
pub fn sys_gettimeofday(t: &mut CurrentTask, tv: UserRef<Timeval>, tz: super::args::UserAddr) -> SysResult<u64> {
    if !tv.is_null() {
        let (sec, nsec) = clock_now(t, CLOCK_REALTIME)?;
        tv.write(t, &Timeval { sec, usec: nsec / 1000 })?;
    }
    if tz.0 != 0 {
        t.write_obj(tz.0, &[0i32; 2])?;
    }
    Ok(0)
}

pub fn sys_time(t: &mut CurrentTask, tloc: UserRef<i64>) -> SysResult<u64> {
    let (s, _) = clock_now(t, CLOCK_REALTIME)?;
    if !tloc.is_null() {
        tloc.write(t, &s)?;
    }
    Ok(s as u64)
}

/// `now + d`, or None (sleep until interrupted) if that is beyond what Instant can hold.
fn after(d: Duration) -> Option<Instant> {
    Instant::now().checked_add(d)
}

fn sleep_until(t: &CurrentTask, deadline: Option<Instant>, rem: u64) -> SysResult<u64> {
    match t.block_on(&[], deadline, || Err::<u64, _>(errno!(EAGAIN))) {
        Err(e) if e == Errno::ETIMEDOUT => Ok(0),
        Err(e) if e.as_restart() == Some(crate::Restart::Sys) => {
            if let (true, Some(deadline)) = (rem != 0, deadline) {
                let left = deadline.saturating_duration_since(Instant::now());
                t.write_obj(rem, &Timespec::from_duration(left))?;
            }
            Err(crate::Error::restart(crate::Restart::NoHand))
        }
        r => r,
    }
}

pub fn sys_nanosleep(t: &mut CurrentTask, req: UserRef<Timespec>, rem: u64) -> SysResult<u64> {
    let d = req.read(t)?.duration().ok_or(errno!(EINVAL))?;
    sleep_until(t, after(d), rem)
}

pub fn sys_clock_nanosleep(t: &mut CurrentTask, clock: i32, flags: u32, req: u64, rem: u64) -> SysResult<u64> {
    let d = read_ts(t, req)?;
    let (s, n) = clock_now(t, clock)?;
    let deadline = if flags & TIMER_ABSTIME != 0 {
        let now = Duration::new(s as u64, n as u32);
        after(d.saturating_sub(now))
    } else {
        after(d)
    };
    sleep_until(t, deadline, if flags & TIMER_ABSTIME != 0 { 0 } else { rem })
}

fn itimerval(value: Duration, interval: Duration) -> ITimerVal {
    // A running timer never reports zero left: Linux rounds up to one microsecond.
    let timeval = |d: Duration| Timeval::from_micros(if d.is_zero() { 0 } else { d.as_micros().max(1) } as i64);
    ITimerVal { interval: timeval(interval), value: timeval(value) }
}

fn only_real(t: &CurrentTask, which: i32) -> SysResult<()> {
    match which {
        ITIMER_REAL => Ok(()),
        ITIMER_VIRTUAL | ITIMER_PROF => {
            // ITIMER_VIRTUAL and ITIMER_PROF count CPU time; not implemented yet.
            Err(super::unimplemented(t, abi::sysno::SETITIMER))
        }
        _ => Err(errno!(EINVAL)),
    }
}

pub fn sys_setitimer(t: &mut CurrentTask, which: i32, new: u64, old: u64) -> SysResult<u64> {
    only_real(t, which)?;
    let (value, interval) = if new == 0 {
        (Duration::ZERO, Duration::ZERO)
    } else {
        let new: ITimerVal = t.read_obj(new)?;
        let duration = |tv: Timeval| tv.duration().ok_or(errno!(EINVAL));
        (duration(new.value)?, duration(new.interval)?)
    };
    let tg = std::sync::Arc::downgrade(t.tg());
    let (ov, oi) = t.tg().real_timer.set(tg, value, interval);
    if old != 0 {
        t.write_obj(old, &itimerval(ov, oi))?;
    }
    Ok(0)
}

pub fn sys_getitimer(t: &mut CurrentTask, which: i32, cur: u64) -> SysResult<u64> {
    only_real(t, which)?;
    let (v, i) = t.tg().real_timer.get();
    t.write_obj(cur, &itimerval(v, i))?;
    Ok(0)
}

pub fn sys_alarm(t: &mut CurrentTask, secs: u32) -> SysResult<u64> {
    let tg = std::sync::Arc::downgrade(t.tg());
    let (old, _) = t.tg().real_timer.set(tg, Duration::from_secs(secs as u64), Duration::ZERO);
    // alarm reports whole seconds left, rounded to nearest, and never 0 for a live timer.
    let left = if old.is_zero() { 0 } else { ((old.as_millis() + 500) / 1000).max(1) };
    Ok(left as u64)
}

pub fn sys_timer_create(t: &mut CurrentTask, clock: i32, sevp: u64, id_out: u64) -> SysResult<u64> {
    use crate::kernel::posix_timer::Notify;
    clock_now(t, clock)?;
    let notify = if sevp == 0 {
        Notify::Process { signo: crate::kernel::signal::SIGALRM, value: 0 }
    } else {
        let SigEvent { value, signo, notify: how, tid, .. } = t.read_obj(sevp)?;
        let valid = (1..=crate::kernel::signal::NSIG).contains(&signo);
        match how {
            SIGEV_NONE => Notify::None,
            SIGEV_SIGNAL if valid => Notify::Process { signo, value },
            SIGEV_THREAD_ID if valid => {
                let task = t.k.task(tid).filter(|x| Arc::ptr_eq(&x.tg, t.tg())).ok_or(errno!(EINVAL))?;
                Notify::Thread { signo, value, task: Arc::downgrade(&task) }
            }
            _ => return Err(errno!(EINVAL)),
        }
    };
    let id = t.tg().posix_timers.create(notify, clock).ok_or(errno!(EAGAIN))?;
    if let Err(e) = t.write_obj(id_out, &id) {
        t.tg().posix_timers.delete(id);
        return Err(e);
    }
    Ok(0)
}

fn itimerspec(value: Duration, interval: Duration) -> ITimerSpec {
    ITimerSpec { interval: Timespec::from_duration(interval), value: Timespec::from_duration(value) }
}

pub fn sys_timer_settime(t: &mut CurrentTask, id: i32, flags: u32, new: u64, old: u64) -> SysResult<u64> {
    let timer = t.tg().posix_timers.get(id).ok_or(errno!(EINVAL))?;
    let new: ITimerSpec = t.read_obj(new)?;
    let interval = new.interval.duration().ok_or(errno!(EINVAL))?;
    let value = new.value.duration().ok_or(errno!(EINVAL))?;
    let deadline = if value.is_zero() {
        None
    } else if flags & TIMER_ABSTIME != 0 {
        // A time of the timer's own clock (CLOCK_REALTIME: since the epoch).
        let (s, n) = clock_now(t, timer.clock)?;
        after(value.saturating_sub(Duration::new(s as u64, n as u32)))
    } else {
        after(value)
    };
    let (ov, oi) = timer.set(Arc::downgrade(t.tg()), deadline, interval);
    if old != 0 {
        t.write_obj(old, &itimerspec(ov, oi))?;
    }
    Ok(0)
}

pub fn sys_timer_gettime(t: &mut CurrentTask, id: i32, cur: u64) -> SysResult<u64> {
    let timer = t.tg().posix_timers.get(id).ok_or(errno!(EINVAL))?;
    let (v, i) = timer.get();
    t.write_obj(cur, &itimerspec(v, i))?;
    Ok(0)
}

pub fn sys_timer_getoverrun(t: &mut CurrentTask, id: i32) -> SysResult<u64> {
    Ok(t.tg().posix_timers.get(id).ok_or(errno!(EINVAL))?.overrun())
}

pub fn sys_timer_delete(t: &mut CurrentTask, id: i32) -> SysResult<u64> {
    if t.tg().posix_timers.delete(id) {
        Ok(0)
    } else {
        Err(errno!(EINVAL))
    }
}
