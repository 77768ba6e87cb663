//! ITIMER_REAL (setitimer, getitimer, alarm): a per-process real-time timer
//! that sends SIGALRM, run by a sleeping host thread while armed.

use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use super::deliver::send_to_group;
use super::signal::{SigInfo, SIGALRM};
use super::task::ThreadGroup;

#[derive(Debug, Default)]
struct State {
    deadline: Option<Instant>,
    interval: Duration,
    generation: u64,
}

/// One process's real-time interval timer.
#[derive(Debug, Default)]
pub struct RealTimer {
    state: Mutex<State>,
    cv: Condvar,
}

impl RealTimer {
    /// Time left and interval of the armed timer (zero when disarmed).
    pub fn get(&self) -> (Duration, Duration) {
        let s = self.state.lock().unwrap();
        let left = s.deadline.map(|d| d.saturating_duration_since(Instant::now())).unwrap_or_default();
        (left, s.interval)
    }

    /// Arms (or with a zero `value`, disarms) the timer; returns the previous (left, interval).
    pub fn set(self: &Arc<Self>, tg: Weak<ThreadGroup>, value: Duration, interval: Duration) -> (Duration, Duration) {
        let old = self.get();
        let mut s = self.state.lock().unwrap();
        s.generation += 1;
        s.interval = interval;
        s.deadline = if value.is_zero() { None } else { Instant::now().checked_add(value) };
        let generation = s.generation;
        let armed = s.deadline.is_some();
        drop(s);
        self.cv.notify_all();
        if armed {
            let me = self.clone();
            let _ = std::thread::Builder::new().name("itimer".into()).spawn(move || me.run(tg, generation));
        }
        old
    }

    fn run(&self, tg: Weak<ThreadGroup>, generation: u64) {
        let mut s = self.state.lock().unwrap();
        loop {
            if s.generation != generation {
                return;
            }
            let Some(deadline) = s.deadline else { return };
            let now = Instant::now();
            if now < deadline {
                s = self.cv.wait_timeout(s, deadline - now).unwrap().0;
                continue;
            }
            s.deadline = if s.interval.is_zero() { None } else { deadline.checked_add(s.interval) };
            let Some(g) = tg.upgrade() else { return };
            if g.state.lock().unwrap().zombie.is_some() {
                return;
            }
            drop(s);
            send_to_group(&g, SigInfo::kernel(SIGALRM));
            s = self.state.lock().unwrap();
        }
    }
}
