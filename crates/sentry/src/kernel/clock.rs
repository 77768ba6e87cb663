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
//! every second. The rate is measured over all the time since the first
//! sample; each update takes effect at a TSC read just before it is
//! published, keeps CLOCK_MONOTONIC continuous there and steers the rate
//! (at most 500 ppm) so that the clock meets the host's within the next
//! second. A jump of over a millisecond (a suspended host whose TSC ran on)
//! is closed at once, forward only, and the rate is measured afresh from
//! there; REALTIME and BOOTTIME are the host's at each update, as offsets
//! from the sandbox's MONOTONIC. A TSC that went backwards turns the page
//! off until the next update has measured it afresh. Until the first
//! update, and on a CPU without an invariant TSC, the page stays disabled
//! and the clocks are the host's (the vDSO makes the syscall).
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
        let delta = tsc.wrapping_sub(self.tsc_base);
        let delta = if (delta as i64) > 0 { delta } else { 0 };
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
    Sample { tsc, mono, real: offset(CLOCK_REALTIME) + mono, boot: offset(CLOCK_BOOTTIME) + mono }
}

/// `clock` less the host's CLOCK_MONOTONIC, from the tightest of a few
/// brackets of monotonic readings around it (a thread preempted between
/// two readings would otherwise see the offset move by the time it slept).
fn offset(clock: i32) -> i128 {
    let mut best: Option<(i128, i128)> = None;
    for _ in 0..3 {
        let m1 = host_ns(CLOCK_MONOTONIC);
        let c = host_ns(clock);
        let m2 = host_ns(CLOCK_MONOTONIC);
        if best.is_none_or(|(width, _)| m2 - m1 < width) {
            best = Some((m2 - m1, c - (m1 + (m2 - m1) / 2)));
        }
    }
    best.map_or(0, |(_, off)| off)
}

/// The offset an update publishes for REALTIME or BOOTTIME: the host's,
/// except that a small move back is not taken (the host's offset moves only
/// by steps; a small one is noise, or the sandbox's MONOTONIC a hair ahead
/// of the host's, and taking it would run the clock backwards).
fn steady(old: i64, new: i64) -> i64 {
    if new >= old || i128::from(old) - i128::from(new) > STEP_NS {
        new
    } else {
        old
    }
}

/// What an update makes of a new sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// Run on with these parameters.
    Run(Params),
    /// The host's clock jumped (a suspend, a TSC reset): these parameters,
    /// and the rate is measured afresh from this sample.
    Step(Params),
    /// The TSC cannot be used now: the host's clocks, and measure afresh.
    Off,
}

/// The parameters that take effect at TSC `at` (read just before they are
/// published, so that readers still on the old ones see no later time),
/// given the current ones, the sample the rate is measured from, and a new one.
fn next(old: &Params, first: &Sample, now: &Sample, at: u64) -> Next {
    let Some(ticks) = now.tsc.checked_sub(first.tsc).filter(|&t| t > 0) else { return Next::Off };
    let ns = now.mono - first.mono;
    let rate = if ns > 0 { (ns << 32) / i128::from(ticks) } else { 0 };
    if rate <= 0 || rate > i128::from(u32::MAX) << 32 || at < now.tsc {
        return Next::Off;
    }
    // The host's monotonic time at `at`.
    let host_at = now.mono + ((i128::from(at - now.tsc) * rate) >> 32);
    let (base, mult, step) = if old.enabled {
        let predicted = i128::from(old.mono(at));
        let err = host_at - predicted;
        if err.abs() > STEP_NS {
            // Forward only; the old rate, measured before the jump, stays.
            (predicted.max(host_at), i128::from(old.mult), true)
        } else {
            // Meet the host over the next period.
            let bound = rate * MAX_SLEW_PPM / 1_000_000;
            let adj = (rate * err / PERIOD.as_nanos() as i128).clamp(-bound, bound);
            (predicted, rate + adj, false)
        }
    } else {
        (host_at, rate, false)
    };
    // REALTIME and BOOTTIME are the host's at `at`, as offsets from the
    // sandbox's own MONOTONIC (which may run ahead of the host's after a jump).
    let params = (|| {
        Some(Params {
            enabled: true,
            tsc_base: at,
            mult: u64::try_from(mult).ok().filter(|&m| m > 0)?,
            mono_base: u64::try_from(base).ok()?,
            real_off: i64::try_from(now.real - now.mono + host_at - base).ok()?,
            boot_off: i64::try_from(now.boot - now.mono + host_at - base).ok()?,
        })
    })();
    match params {
        Some(p) if step => Next::Step(p),
        Some(p) if old.enabled => Next::Run(Params {
            real_off: steady(old.real_off, p.real_off),
            boot_off: steady(old.boot_off, p.boot_off),
            ..p
        }),
        Some(p) => Next::Run(p),
        None => Next::Off,
    }
}

/// The sandbox's clocks and its time page.
#[derive(Debug)]
pub struct Clock {
    params: RwLock<State>,
    mem: Arc<host::MemoryFile>,
    /// The time page, mapped read-only into every process.
    pub page: Arc<Backing>,
}

#[derive(Debug)]
struct State {
    params: Params,
    /// The page's sequence count.
    seq: u64,
    /// The sample the rate is measured from.
    first: Sample,
}

impl Clock {
    /// A clock whose page is disabled (the host's clocks) until `start`.
    pub fn new(alloc: &Arc<RangeAllocator>) -> crate::SysResult<Arc<Clock>> {
        let page = alloc.alloc(host::memfile::PAGE)?;
        let state = State { params: Params::default(), seq: 0, first: sample() };
        Ok(Arc::new(Clock { params: RwLock::new(state), mem: alloc.file.clone(), page }))
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
        let since = host_ns(CLOCK_MONOTONIC) - self.params.read().unwrap().first.mono;
        if (0..FIRST_NS).contains(&since) {
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
        let now = sample();
        let mut state = self.params.write().unwrap();
        let State { params, seq, first } = &mut *state;
        let (mem, off) = (&self.mem, self.page.off);
        // Odd while the words change: a reader that sees it waits (or, after
        // a while, makes the system call).
        let _ = mem.write_words(off + W_SEQ * 8, &[*seq + 1]);
        match next(params, first, &now, host::sys::rdtsc()) {
            Next::Run(p) => *params = p,
            Next::Step(p) => {
                *params = p;
                *first = now;
            }
            Next::Off => {
                *params = Params::default();
                *first = now;
            }
        }
        let _ = mem.write_words(off + (W_ENABLED + 1) * 8, &params.words());
        let _ = mem.write_words(off + W_ENABLED * 8, &[u64::from(params.enabled)]);
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
        let p = self.params.read().unwrap().params;
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

    fn run(n: Next) -> Params {
        match n {
            Next::Run(p) => p,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_first_update_takes_the_hosts_time_and_the_measured_rate() {
        let p = run(next(&Params::default(), &s(1_000, 0), &s(3_000_001_000, 1_000_000_000), 3_000_001_000));
        assert!(p.enabled);
        assert_eq!(p.mono_base, 1_000_000_000);
        // 3 ticks a ns: a third of a ns per tick.
        assert_eq!(p.mult, (1u64 << 32) / 3);
        assert_eq!(p.real_off, 1_000 * NS as i64);
        assert_eq!(p.boot_off, 5);
        assert_eq!(p.mono(3_000_001_000 + 3_000), 1_000_001_000 - 1);
        // Published a little after the sample: the host's time then.
        let later = run(next(&Params::default(), &s(1_000, 0), &s(3_000_001_000, 1_000_000_000), 3_000_031_000));
        assert_eq!(later.mono_base, 1_000_010_000 - 1);
        assert_eq!(later.tsc_base, 3_000_031_000);
    }

    #[test]
    fn updates_keep_monotonic_continuous_and_steer_within_the_bound() {
        let first = s(0, 0);
        let p1 = run(next(&Params::default(), &first, &s(1_000_000_000, 1_000_000_000), 1_000_000_000));
        // The host is 200 µs ahead a second later: the clock goes on from
        // where it is where the new values take effect, 200 ppm faster.
        let at = 2_000_000_500;
        let p2 = run(next(&p1, &first, &s(2_000_000_000, 2_000_200_000), at));
        assert_eq!(p2.mono_base, p1.mono(at));
        assert!(p2.mult > p1.mult);
        // The correction is bounded: a host 900 µs behind slows the rate by 500 ppm at most.
        let at = 3_000_000_000;
        let host = i128::from(p2.mono(at)) - 900_000;
        let p3 = run(next(&p2, &first, &s(at, host), at));
        let rate = (host << 32) / i128::from(at);
        assert!(i128::from(p3.mult) >= rate - rate * MAX_SLEW_PPM / 1_000_000 - 1);
        assert_eq!(p3.mono_base, p2.mono(at));
    }

    #[test]
    fn realtime_does_not_run_back_by_a_hair_but_follows_a_step_of_the_host() {
        let first = s(0, 0);
        let p1 = run(next(&Params::default(), &first, &s(1_000_000_000, 1_000_000_000), 1_000_000_000));
        let real = |p: &Params, at: u64| i128::from(p.mono(at)) + i128::from(p.real_off);
        // The sandbox's MONOTONIC is 300 µs ahead of the host's: REALTIME
        // as the host has it would be 300 µs back; the offset stays.
        let at = 2_000_000_000;
        let host = i128::from(p1.mono(at)) - 300_000;
        let p2 = run(next(&p1, &first, &s(at, host), at));
        assert_eq!(p2.real_off, p1.real_off);
        assert!(real(&p2, at) >= real(&p1, at));
        // A host 200 µs ahead: REALTIME moves up to it.
        let at = 3_000_000_000;
        let host = i128::from(p2.mono(at)) + 200_000;
        let p3 = run(next(&p2, &first, &s(at, host), at));
        assert_eq!(real(&p3, at), host + 1_000 * NS);
        // The host's realtime set back by a minute: the sandbox's follows.
        let at = 4_000_000_000;
        let host = i128::from(p3.mono(at));
        let set_back = Sample { real: host + 940 * NS, ..s(at, host) };
        let p4 = run(next(&p3, &first, &set_back, at));
        assert_eq!(real(&p4, at), host + 940 * NS);
    }

    #[test]
    fn a_jump_of_the_host_steps_forward_only_and_realtime_stays_the_hosts() {
        let first = s(0, 0);
        let p1 = run(next(&Params::default(), &first, &s(1_000_000_000, 1_000_000_000), 1_000_000_000));
        // The TSC ran on through 5 s the host's monotonic clock did not count.
        let at = 7_000_000_000;
        let Next::Step(p2) = next(&p1, &first, &s(at, 2_000_000_000), at) else { panic!("no step") };
        assert_eq!(p2.mono_base, p1.mono(at));
        assert_eq!(p2.mult, p1.mult);
        // REALTIME is the host's, however far MONOTONIC ran ahead.
        assert_eq!(i128::from(p2.mono_base) + i128::from(p2.real_off), 2_000_000_000 + 1_000 * NS);
        // A host far ahead: the clock steps up to it.
        let Next::Step(p3) =
            next(&p2, &s(at, 2_000_000_000), &s(at + 1_000_000_000, 9_000_000_000), at + 1_000_000_000)
        else {
            panic!("no step")
        };
        assert_eq!(p3.mono_base, 9_000_000_000);
    }

    #[test]
    fn a_tsc_that_went_backwards_turns_the_page_off() {
        assert_eq!(next(&Params::default(), &s(5_000, 0), &s(4_000, 10), 4_000), Next::Off);
        assert_eq!(next(&Params::default(), &s(5_000, 10), &s(6_000, 10), 6_000), Next::Off);
        assert_eq!(next(&Params::default(), &s(5_000, 0), &s(6_000, 10), 5_500), Next::Off);
        // A TSC a hair behind the base (another CPU's) reads as the base.
        let p = Params { enabled: true, tsc_base: 1_000, mult: 1 << 32, mono_base: 7, ..Default::default() };
        assert_eq!(p.mono(3), 7);
        assert_eq!(p.mono(1_010), 17);
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
        assert_eq!(&words[2..], &c.params.read().unwrap().params.words());
    }
}
