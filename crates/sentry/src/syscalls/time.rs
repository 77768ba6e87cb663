//! Time syscalls: clocks and sleeping. Sleeps are interruptible by signals.

use std::sync::Arc;
use std::time::{Duration, Instant};

use abi::Errno;

use crate::kernel::CurrentTask;
use crate::SysResult;

fn ts_bytes(sec: i64, nsec: i64) -> Vec<u8> {
    let mut b = sec.to_ne_bytes().to_vec();
    b.extend(nsec.to_ne_bytes());
    b
}

fn read_ts(t: &CurrentTask, addr: u64) -> SysResult<Duration> {
    let b = t.read_vec(addr, 16)?;
    let sec = i64::from_ne_bytes(b[0..8].try_into().expect("8"));
    let nsec = i64::from_ne_bytes(b[8..16].try_into().expect("8"));
    if sec < 0 || !(0..1_000_000_000).contains(&nsec) {
        return Err(Errno::EINVAL);
    }
    Ok(Duration::new(sec as u64, nsec as u32))
}

fn clock_now(clock: i32) -> SysResult<(i64, i64)> {
    // REALTIME, MONOTONIC, PROCESS/THREAD_CPUTIME, MONOTONIC_RAW, *_COARSE, BOOTTIME.
    let host = match clock {
        0 | 1 | 4 | 5 | 6 | 7 => clock,
        2 | 3 => 3,
        _ => return Err(Errno::EINVAL),
    };
    host::sys::clock_gettime(host).map_err(|_| Errno::EINVAL)
}

pub fn sys_clock_gettime(t: &mut CurrentTask, clock: i32, tp: u64) -> SysResult<u64> {
    let (s, n) = clock_now(clock)?;
    t.write_mem(tp, &ts_bytes(s, n))?;
    Ok(0)
}

pub fn sys_clock_getres(t: &mut CurrentTask, clock: i32, tp: u64) -> SysResult<u64> {
    clock_now(clock)?;
    if tp != 0 {
        t.write_mem(tp, &ts_bytes(0, 1))?;
    }
    Ok(0)
}

pub fn sys_gettimeofday(t: &mut CurrentTask, tv: u64) -> SysResult<u64> {
    if tv != 0 {
        let (s, n) = clock_now(0)?;
        t.write_mem(tv, &ts_bytes(s, n / 1000))?;
    }
    Ok(0)
}

pub fn sys_time(t: &mut CurrentTask, tloc: u64) -> SysResult<u64> {
    let (s, _) = clock_now(0)?;
    if tloc != 0 {
        t.write_mem(tloc, &s.to_ne_bytes())?;
    }
    Ok(s as u64)
}

/// `now + d`, or None (sleep until interrupted) if that is beyond what Instant can hold.
fn after(d: Duration) -> Option<Instant> {
    Instant::now().checked_add(d)
}

fn sleep_until(t: &CurrentTask, deadline: Option<Instant>, rem: u64) -> SysResult<u64> {
    match t.block_on(&[], deadline, || Err::<u64, _>(Errno::EAGAIN)) {
        Err(Errno::ETIMEDOUT) => Ok(0),
        Err(Errno::ERESTARTSYS) => {
            if let (true, Some(deadline)) = (rem != 0, deadline) {
                let left = deadline.saturating_duration_since(Instant::now());
                t.write_mem(rem, &ts_bytes(left.as_secs() as i64, left.subsec_nanos() as i64))?;
            }
            Err(Errno::ERESTARTNOHAND)
        }
        r => r,
    }
}

pub fn sys_nanosleep(t: &mut CurrentTask, req: u64, rem: u64) -> SysResult<u64> {
    let d = read_ts(t, req)?;
    sleep_until(t, after(d), rem)
}

pub fn sys_clock_nanosleep(t: &mut CurrentTask, clock: i32, flags: u32, req: u64, rem: u64) -> SysResult<u64> {
    const TIMER_ABSTIME: u32 = 1;
    let d = read_ts(t, req)?;
    let (s, n) = clock_now(clock)?;
    let deadline = if flags & TIMER_ABSTIME != 0 {
        let now = Duration::new(s as u64, n as u32);
        after(d.saturating_sub(now))
    } else {
        after(d)
    };
    sleep_until(t, deadline, if flags & TIMER_ABSTIME != 0 { 0 } else { rem })
}

fn timeval(b: &[u8]) -> SysResult<Duration> {
    let sec = i64::from_ne_bytes(b[0..8].try_into().expect("8"));
    let usec = i64::from_ne_bytes(b[8..16].try_into().expect("8"));
    if sec < 0 || !(0..1_000_000).contains(&usec) {
        return Err(Errno::EINVAL);
    }
    Ok(Duration::new(sec as u64, usec as u32 * 1000))
}

fn itimerval_bytes(value: Duration, interval: Duration) -> Vec<u8> {
    let mut b = Vec::with_capacity(32);
    for d in [interval, value] {
        // A running timer never reports zero left: Linux rounds up to one microsecond.
        let us = if d.is_zero() { 0 } else { d.as_micros().max(1) } as i64;
        b.extend((us / 1_000_000).to_ne_bytes());
        b.extend((us % 1_000_000).to_ne_bytes());
    }
    b
}

const ITIMER_REAL: i32 = 0;

fn only_real(t: &CurrentTask, which: i32) -> SysResult<()> {
    match which {
        ITIMER_REAL => Ok(()),
        1 | 2 => {
            // ITIMER_VIRTUAL and ITIMER_PROF count CPU time; not implemented yet.
            Err(super::unimplemented(t, abi::sysno::SETITIMER))
        }
        _ => Err(Errno::EINVAL),
    }
}

pub fn sys_setitimer(t: &mut CurrentTask, which: i32, new: u64, old: u64) -> SysResult<u64> {
    only_real(t, which)?;
    let (value, interval) = if new == 0 {
        (Duration::ZERO, Duration::ZERO)
    } else {
        let b = t.read_vec(new, 32)?;
        (timeval(&b[16..32])?, timeval(&b[0..16])?)
    };
    let tg = std::sync::Arc::downgrade(t.tg());
    let (ov, oi) = t.tg().real_timer.set(tg, value, interval);
    if old != 0 {
        t.write_mem(old, &itimerval_bytes(ov, oi))?;
    }
    Ok(0)
}

pub fn sys_getitimer(t: &mut CurrentTask, which: i32, cur: u64) -> SysResult<u64> {
    only_real(t, which)?;
    let (v, i) = t.tg().real_timer.get();
    t.write_mem(cur, &itimerval_bytes(v, i))?;
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
    const SIGEV_SIGNAL: i32 = 0;
    const SIGEV_NONE: i32 = 1;
    const SIGEV_THREAD_ID: i32 = 4;
    clock_now(clock)?;
    let notify = if sevp == 0 {
        Notify::Process { signo: crate::kernel::signal::SIGALRM, value: 0 }
    } else {
        let b = t.read_vec(sevp, 64)?;
        let value = u64::from_ne_bytes(b[0..8].try_into().expect("8"));
        let signo = i32::from_ne_bytes(b[8..12].try_into().expect("4"));
        let how = i32::from_ne_bytes(b[12..16].try_into().expect("4"));
        let tid = i32::from_ne_bytes(b[16..20].try_into().expect("4"));
        let valid = (1..=crate::kernel::signal::NSIG).contains(&signo);
        match how {
            SIGEV_NONE => Notify::None,
            SIGEV_SIGNAL if valid => Notify::Process { signo, value },
            SIGEV_THREAD_ID if valid => {
                let task = t.k.task(tid).filter(|x| Arc::ptr_eq(&x.tg, t.tg())).ok_or(Errno::EINVAL)?;
                Notify::Thread { signo, value, task: Arc::downgrade(&task) }
            }
            _ => return Err(Errno::EINVAL),
        }
    };
    let id = t.tg().posix_timers.create(notify).ok_or(Errno::EAGAIN)?;
    if let Err(e) = t.write_mem(id_out, &id.to_ne_bytes()) {
        t.tg().posix_timers.delete(id);
        return Err(e);
    }
    Ok(0)
}

fn itimerspec_bytes(value: Duration, interval: Duration) -> Vec<u8> {
    let mut b = ts_bytes(interval.as_secs() as i64, interval.subsec_nanos() as i64);
    b.extend(ts_bytes(value.as_secs() as i64, value.subsec_nanos() as i64));
    b
}

pub fn sys_timer_settime(t: &mut CurrentTask, id: i32, flags: u32, new: u64, old: u64) -> SysResult<u64> {
    const TIMER_ABSTIME: u32 = 1;
    let timer = t.tg().posix_timers.get(id).ok_or(Errno::EINVAL)?;
    let interval = read_ts(t, new)?;
    let value = read_ts(t, new + 16)?;
    let deadline = if value.is_zero() {
        None
    } else if flags & TIMER_ABSTIME != 0 {
        let (s, n) = clock_now(1)?;
        after(value.saturating_sub(Duration::new(s as u64, n as u32)))
    } else {
        after(value)
    };
    let (ov, oi) = timer.set(Arc::downgrade(t.tg()), deadline, interval);
    if old != 0 {
        t.write_mem(old, &itimerspec_bytes(ov, oi))?;
    }
    Ok(0)
}

pub fn sys_timer_gettime(t: &mut CurrentTask, id: i32, cur: u64) -> SysResult<u64> {
    let timer = t.tg().posix_timers.get(id).ok_or(Errno::EINVAL)?;
    let (v, i) = timer.get();
    t.write_mem(cur, &itimerspec_bytes(v, i))?;
    Ok(0)
}

pub fn sys_timer_getoverrun(t: &mut CurrentTask, id: i32) -> SysResult<u64> {
    Ok(t.tg().posix_timers.get(id).ok_or(Errno::EINVAL)?.overrun())
}

pub fn sys_timer_delete(t: &mut CurrentTask, id: i32) -> SysResult<u64> {
    if t.tg().posix_timers.delete(id) {
        Ok(0)
    } else {
        Err(Errno::EINVAL)
    }
}
