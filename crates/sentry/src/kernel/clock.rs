//! The sandbox's clocks and the time page of moat's vDSO.
//!
//! CLOCK_MONOTONIC (and its coarse twin), CLOCK_REALTIME (and coarse) and
//! CLOCK_BOOTTIME are one function of the TSC: `mono = base + (tsc -
//! tsc_base) * mult >> 32`, with REALTIME and BOOTTIME fixed offsets from it.
//! The Sentry's own clock syscalls compute it from the parameters kept here;
//! the app computes the same from the time page (`[vvar]`, one read-only
//! page shared by every process of the sandbox, just below the vDSO), which
//! the Sentry rewrites under a sequence count. So reading the time never
//! traps, and a value the vDSO returns and one a syscall returns belong to
//! one clock.
//!
//! The parameters follow the host's clocks: `start` samples the TSC against
//! them once boot has taken a millisecond, then after 10 ms, 100 ms and
//! every second. The rate is measured over
//! all the time since the first sample; each update keeps CLOCK_MONOTONIC
//! continuous where it takes effect and steers the rate (at most 500 ppm)
//! so that the clock meets the host's within the next second; a gap of over
//! a millisecond (a host suspended) is closed at once, forward only. Until
//! the first update, and on a CPU without an invariant TSC, the page stays
//! disabled and the clocks are the host's (the vDSO makes the syscall).
//!
//! The Sentry never reads the page back: the app cannot make it write one
//! (the mapping is read-only and mprotect refuses it write access), and if
//! it could, it would change only what its own sandbox reads.

use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use abi::time::*;

use crate::mm::{Backing, RangeAllocator};

/// The time page's words, in order (vdso/vdso.c, `struct vvar`).
const W_SEQ: u64 = 0;
const W_ENABLED: u64 = 1;

/// Greatest rate correction per update, in parts per million.
const MAX_SLEW_PPM: i128 = 500;
/// A difference from the host past this is closed at once, not steered.
const STEP_NS: i128 = 1_000_000;
const PERIOD: Duration = Duration::from_secs(1);
const NS: i128 = 1_000_000_000;
/// The shortest time the first rate is measured over.
const FIRST_NS: i128 = 1_000_000;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Params {
    enabled: bool,
    tsc_base: u64,
    /// ns per TSC tick, 32.32 fixed point.
    mult: u64,
    mono_base: u64,
    real_off: i64,
    boot_off: i64,
}

impl Params {
    fn mono(&self, tsc: u64) -> u64 {
        let delta = if (tsc.wrapping_sub(self.tsc_base) as i64) > 0 { tsc - self.tsc_base } else { 0 };
        self.mono_base.wrapping_add(((u128::from(delta) * u128::from(self.mult)) >> 32) as u64)
    }

    fn words(&self) -> [u64; 5] {
        [self.tsc_base, self.mult, self.mono_base, self.real_off as u64, self.boot_off as u64]
    }
}

/// One reading of the TSC against the host's clocks (ns).
#[derive(Debug, Clone, Copy)]
struct Sample {
    tsc: u64,
    mono: i128,
    real: i128,
    boot: i128,
}

fn host_ns(clock: i32) -> i128 {
    host::sys::clock_gettime(clock).map_or(0, |(s, n)| i128::from(s) * NS + i128::from(n))
}

/// The TSC at the midpoint of the tightest of a few brackets around a read
/// of the host's CLOCK_MONOTONIC.
fn sample() -> Sample {
    let mut best: Option<(u64, u64, i128)> = None;
    for _ in 0..5 {
        let t1 = host::sys::rdtsc();
        let mono = host_ns(CLOCK_MONOTONIC);
        let t2 = host::sys::rdtsc();
        if t2 >= t1 && best.is_none_or(|(width, _, _)| t2 - t1 < width) {
            best = Some((t2 - t1, t1 + (t2 - t1) / 2, mono));
        }
    }
    let (_, tsc, mono) = best.unwrap_or((0, host::sys::rdtsc(), host_ns(CLOCK_MONOTONIC)));
    // The offsets of the other clocks, each read right beside a monotonic one.
    let m = host_ns(CLOCK_MONOTONIC);
    let real = host_ns(CLOCK_REALTIME) - m + mono;
    let m = host_ns(CLOCK_MONOTONIC);
    let boot = host_ns(CLOCK_BOOTTIME) - m + mono;
    Sample { tsc, mono, real, boot }
}

/// The next parameters, given the current ones, the first sample and a new one.
fn next(old: &Params, first: &Sample, now: &Sample) -> Option<Params> {
    let ticks = now.tsc.checked_sub(first.tsc).filter(|&t| t > 0)?;
    let ns = now.mono - first.mono;
    if ns <= 0 {
        return None;
    }
    let rate = (ns << 32) / i128::from(ticks);
    if rate <= 0 || rate > i128::from(u32::MAX) << 32 {
        return None;
    }
    let (base, mult) = if old.enabled {
        let predicted = i128::from(old.mono(now.tsc));
        let err = now.mono - predicted;
        if err.abs() > STEP_NS {
            (predicted.max(now.mono), rate)
        } else {
            // Meet the host over the next period.
            let bound = rate * MAX_SLEW_PPM / 1_000_000;
            let adj = (rate * err / PERIOD.as_nanos() as i128).clamp(-bound, bound);
            (predicted, rate + adj)
        }
    } else {
        (now.mono, rate)
    };
    Some(Params {
        enabled: true,
        tsc_base: now.tsc,
        mult: u64::try_from(mult).ok()?,
        mono_base: u64::try_from(base).ok()?,
        real_off: i64::try_from(now.real - now.mono).ok()?,
        boot_off: i64::try_from(now.boot - now.mono).ok()?,
    })
}

/// The sandbox's clocks and its time page.
#[derive(Debug)]
pub struct Clock {
    /// The parameters and the page's sequence count.
    params: RwLock<(Params, u64)>,
    mem: Arc<host::MemoryFile>,
    /// The time page, mapped read-only into every process.
    pub page: Arc<Backing>,
    first: Sample,
}

impl Clock {
    /// A clock whose page is disabled (the host's clocks) until `start`.
    pub fn new(alloc: &Arc<RangeAllocator>) -> crate::SysResult<Arc<Clock>> {
        let page = alloc.alloc(host::memfile::PAGE)?;
        Ok(Arc::new(Clock {
            params: RwLock::new((Params::default(), 0)),
            mem: alloc.file.clone(),
            page,
            first: sample(),
        }))
    }

    /// Enables the page, if the CPU's TSC may be used, with a rate measured
    /// over at least the millisecond since `new` (boot has usually taken
    /// that), so that the vDSO serves the first program from its first
    /// instruction; then starts the updates (a Sentry thread that sleeps
    /// between them, and ends when the clock goes).
    pub fn start(self: &Arc<Self>) {
        if !host::sys::invariant_tsc() {
            return;
        }
        let since = host_ns(CLOCK_MONOTONIC) - self.first.mono;
        if since < FIRST_NS {
            std::thread::sleep(Duration::from_nanos((FIRST_NS - since) as u64));
        }
        self.update();
        let weak: Weak<Clock> = Arc::downgrade(self);
        let spawned = std::thread::Builder::new().name("moat-clock".into()).spawn(move || {
            for wait in
                [Duration::from_millis(10), Duration::from_millis(90)].into_iter().chain(std::iter::repeat(PERIOD))
            {
                std::thread::sleep(wait);
                match weak.upgrade() {
                    Some(c) => c.update(),
                    None => return,
                }
            }
        });
        if let Err(e) = spawned {
            tracing::warn!("moat: the clock's thread did not start ({e}); clocks stay the host's");
        }
    }

    fn update(&self) {
        let mut state = self.params.write().unwrap();
        let (p, seq) = &mut *state;
        let Some(new) = next(p, &self.first, &sample()) else { return };
        *p = new;
        let (mem, off) = (&self.mem, self.page.off);
        // Odd while the words change: a reader that saw it retries.
        let _ = mem.write_words(off + W_SEQ * 8, &[*seq + 1]);
        let _ = mem.write_words(off + W_ENABLED * 8, &[1]);
        let _ = mem.write_words(off + (W_ENABLED + 1) * 8, &new.words());
        *seq += 2;
        let _ = mem.write_words(off + W_SEQ * 8, &[*seq]);
    }

    /// The time on `clock` as the sandbox reads it: its own for the clocks
    /// it keeps, the host's for the others (CPU-time clocks, MONOTONIC_RAW).
    pub fn gettime(&self, clock: i32) -> std::io::Result<(i64, i64)> {
        match self.now(clock) {
            Some(t) => Ok(t),
            None => host::sys::clock_gettime(clock),
        }
    }

    /// The sandbox's time on `clock`, or None for a clock it does not keep
    /// (the caller reads the host's).
    pub fn now(&self, clock: i32) -> Option<(i64, i64)> {
        let p = self.params.read().unwrap().0;
        if !p.enabled {
            return None;
        }
        let mono = i128::from(p.mono(host::sys::rdtsc()));
        let ns = match clock {
            CLOCK_MONOTONIC | CLOCK_MONOTONIC_COARSE => mono,
            CLOCK_REALTIME | CLOCK_REALTIME_COARSE => mono + i128::from(p.real_off),
            CLOCK_BOOTTIME => mono + i128::from(p.boot_off),
            _ => return None,
        };
        Some(((ns.div_euclid(NS)) as i64, (ns.rem_euclid(NS)) as i64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(tsc: u64, mono: i128) -> Sample {
        Sample { tsc, mono, real: mono + 1_000 * NS, boot: mono + 5 }
    }

    #[test]
    fn the_first_update_takes_the_hosts_time_and_the_measured_rate() {
        let p = next(&Params::default(), &s(1_000, 0), &s(3_000_001_000, 1_000_000_000)).unwrap();
        assert!(p.enabled);
        assert_eq!(p.mono_base, 1_000_000_000);
        // 3 ticks a ns: a third of a ns per tick.
        assert_eq!(p.mult, (1u64 << 32) / 3);
        assert_eq!(p.real_off, 1_000 * NS as i64);
        assert_eq!(p.boot_off, 5);
        assert_eq!(p.mono(3_000_001_000 + 3_000), 1_000_001_000 - 1);
    }

    #[test]
    fn updates_keep_monotonic_continuous_and_steer_within_the_bound() {
        let first = s(0, 0);
        let p1 = next(&Params::default(), &first, &s(1_000_000_000, 1_000_000_000)).unwrap();
        // The host is 200 µs ahead a second later: the clock goes on from
        // where it is, 200 ppm faster.
        let at = 2_000_000_000;
        let p2 = next(&p1, &first, &s(at, 2_000_200_000)).unwrap();
        assert_eq!(p2.mono_base, p1.mono(at));
        assert!(p2.mult > p1.mult);
        // Far off (a suspended host): closed at once, and never backwards.
        let p3 = next(&p2, &first, &s(3_000_000_000, 9_000_000_000)).unwrap();
        assert_eq!(p3.mono_base, 9_000_000_000);
        let p4 = next(&p3, &first, &s(4_000_000_000, 4_000_000_000)).unwrap();
        assert!(p4.mono_base >= p3.mono(4_000_000_000));
        // The correction is bounded: a host 900 µs behind slows the rate by 500 ppm at most.
        let p5 = next(&p4, &first, &s(5_000_000_000, i128::from(p4.mono(5_000_000_000)) - 900_000)).unwrap();
        let rate =
            ((5_000_000_000i128 - 900_000 + i128::from(p4.mono(5_000_000_000)) - 5_000_000_000) << 32) / 5_000_000_000;
        assert!(i128::from(p5.mult) >= rate - rate * MAX_SLEW_PPM / 1_000_000 - 1);
    }

    #[test]
    fn a_tsc_that_went_backwards_changes_nothing() {
        assert_eq!(next(&Params::default(), &s(5_000, 0), &s(4_000, 10)), None);
        assert_eq!(next(&Params::default(), &s(5_000, 10), &s(6_000, 10)), None);
    }

    #[test]
    fn the_sandbox_clock_follows_the_host() {
        let mem = Arc::new(host::MemoryFile::new(1 << 20).unwrap());
        let alloc = RangeAllocator::new(mem.clone(), 0);
        let c = Clock::new(&alloc).unwrap();
        assert_eq!(c.now(CLOCK_MONOTONIC), None);
        std::thread::sleep(Duration::from_millis(20));
        c.update();
        for clock in [CLOCK_MONOTONIC, CLOCK_REALTIME, CLOCK_BOOTTIME] {
            let (s, n) = c.now(clock).unwrap();
            let ours = i128::from(s) * NS + i128::from(n);
            let host = host_ns(clock);
            assert!((ours - host).abs() < 5_000_000, "clock {clock}: {ours} vs the host's {host}");
        }
        assert_eq!(c.now(CLOCK_THREAD_CPUTIME_ID), None);
        // The page holds what the Sentry computes from: enabled, an even sequence count.
        let mut words = [0u64; 7];
        mem.read_words(c.page.off, &mut words).unwrap();
        assert_eq!(words[0] % 2, 0);
        assert_eq!(words[1], 1);
        assert_eq!(&words[2..], &c.params.read().unwrap().0.words());
    }
}
