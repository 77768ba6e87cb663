//! Clocks, times and interval timers of the x86-64 ABI: `timespec`,
//! `timeval`, `itimerval`, `itimerspec`, and the clock and timer constants.

use core::mem::size_of;
use core::time::Duration;

use zerocopy::{AsBytes, FromBytes, FromZeroes};

pub const CLOCK_REALTIME: i32 = 0;
pub const CLOCK_MONOTONIC: i32 = 1;
pub const CLOCK_PROCESS_CPUTIME_ID: i32 = 2;
pub const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
pub const CLOCK_MONOTONIC_RAW: i32 = 4;
pub const CLOCK_REALTIME_COARSE: i32 = 5;
pub const CLOCK_MONOTONIC_COARSE: i32 = 6;
pub const CLOCK_BOOTTIME: i32 = 7;

/// `clock_nanosleep`/`timer_settime` flag: the time is a point on the
/// clock, not an interval from now.
pub const TIMER_ABSTIME: u32 = 1;

pub const ITIMER_REAL: i32 = 0;
pub const ITIMER_VIRTUAL: i32 = 1;
pub const ITIMER_PROF: i32 = 2;

const NSEC_PER_SEC: i64 = 1_000_000_000;
const USEC_PER_SEC: i64 = 1_000_000;

/// C `struct timespec`: seconds and nanoseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromZeroes, FromBytes, AsBytes)]
#[repr(C)]
pub struct Timespec {
    pub sec: i64,
    pub nsec: i64,
}
const _: () = assert!(size_of::<Timespec>() == 16);

impl Timespec {
    /// The time as a duration; None if it is negative or the nanoseconds
    /// are out of range (which Linux refuses with EINVAL).
    pub fn duration(self) -> Option<Duration> {
        if self.sec < 0 || !(0..NSEC_PER_SEC).contains(&self.nsec) {
            return None;
        }
        Some(Duration::new(self.sec as u64, self.nsec as u32))
    }

    pub fn from_duration(d: Duration) -> Timespec {
        Timespec { sec: d.as_secs() as i64, nsec: i64::from(d.subsec_nanos()) }
    }
}

/// C `struct timeval`: seconds and microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromZeroes, FromBytes, AsBytes)]
#[repr(C)]
pub struct Timeval {
    pub sec: i64,
    pub usec: i64,
}
const _: () = assert!(size_of::<Timeval>() == 16);

impl Timeval {
    /// The time as a duration; None if it is negative or the microseconds
    /// are out of range.
    pub fn duration(self) -> Option<Duration> {
        if self.sec < 0 || !(0..USEC_PER_SEC).contains(&self.usec) {
            return None;
        }
        Some(Duration::new(self.sec as u64, self.usec as u32 * 1000))
    }

    /// `us` microseconds as seconds and microseconds.
    pub fn from_micros(us: i64) -> Timeval {
        Timeval { sec: us / USEC_PER_SEC, usec: us % USEC_PER_SEC }
    }
}

/// C `struct itimerval` (setitimer, getitimer): the reload interval, then
/// the time left.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromZeroes, FromBytes, AsBytes)]
#[repr(C)]
pub struct ITimerVal {
    pub interval: Timeval,
    pub value: Timeval,
}
const _: () = assert!(size_of::<ITimerVal>() == 32);

/// C `struct itimerspec` (timer_settime, timerfd): the reload interval,
/// then the time left.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromZeroes, FromBytes, AsBytes)]
#[repr(C)]
pub struct ITimerSpec {
    pub interval: Timespec,
    pub value: Timespec,
}
const _: () = assert!(size_of::<ITimerSpec>() == 32);

/// `t` as RFC 3339 in UTC, as runc writes `created` (Go's `RFC3339Nano`:
/// nanoseconds without trailing zeros, e.g. `2026-12-01T07:21:46.8445456Z`).
/// Times before 1970 are written as the epoch.
pub fn format_rfc3339(t: std::time::SystemTime) -> String {
    let since = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    let nanos = format!(".{:09}", since.subsec_nanos());
    let fraction = nanos.trim_end_matches('0').trim_end_matches('.');
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}{fraction}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}
