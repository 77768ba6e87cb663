//! POSIX timers (timer_create and friends): per-process timers that deliver a
//! signal to the process (SIGEV_SIGNAL) or one thread (SIGEV_THREAD_ID) on expiry.

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use super::deliver::{send_to_group, send_to_task};
use super::signal::{SigInfo, SI_TIMER};
use super::task::{Task, ThreadGroup};

/// Where a timer's expiry goes.
#[derive(Debug, Clone)]
pub enum Notify {
    None,
    Process { signo: i32, value: u64 },
    Thread { signo: i32, value: u64, task: Weak<Task> },
}

#[derive(Debug)]
struct State {
    deadline: Option<Instant>,
    interval: Duration,
    generation: u64,
    overrun: u64,
}

/// One POSIX timer.
#[derive(Debug)]
pub struct PosixTimer {
    id: i32,
    /// The clock it was created on: an absolute setting is a time of it.
    pub clock: i32,
    notify: Notify,
    state: Mutex<State>,
    cv: Condvar,
}

impl PosixTimer {
    /// (time left, interval).
    pub fn get(&self) -> (Duration, Duration) {
        let s = self.state.lock().unwrap();
        (s.deadline.map(|d| d.saturating_duration_since(Instant::now())).unwrap_or_default(), s.interval)
    }

    pub fn overrun(&self) -> u64 {
        self.state.lock().unwrap().overrun
    }

    /// Arms (deadline Some) or disarms; returns the previous setting.
    pub fn set(
        self: &Arc<Self>,
        tg: Weak<ThreadGroup>,
        deadline: Option<Instant>,
        interval: Duration,
    ) -> (Duration, Duration) {
        let old = self.get();
        let mut s = self.state.lock().unwrap();
        s.generation += 1;
        s.deadline = deadline;
        s.interval = interval;
        s.overrun = 0;
        let generation = s.generation;
        drop(s);
        self.cv.notify_all();
        if deadline.is_some() {
            let me = Arc::downgrade(self);
            let _ = std::thread::Builder::new().name("posix-timer".into()).spawn(move || run(me, tg, generation));
        }
        old
    }

    /// Disarms for good (timer_delete, exit).
    pub fn cancel(&self) {
        let mut s = self.state.lock().unwrap();
        s.generation += 1;
        s.deadline = None;
        drop(s);
        self.cv.notify_all();
    }
}

fn run(me: Weak<PosixTimer>, tg: Weak<ThreadGroup>, generation: u64) {
    loop {
        let Some(t) = me.upgrade() else { return };
        let mut s = t.state.lock().unwrap();
        if s.generation != generation {
            return;
        }
        let Some(deadline) = s.deadline else { return };
        let now = Instant::now();
        if now < deadline {
            drop(t.cv.wait_timeout(s, (deadline - now).min(Duration::from_secs(1))).unwrap());
            continue;
        }
        s.deadline = if s.interval.is_zero() { None } else { deadline.checked_add(s.interval) };
        drop(s);
        let info = |signo, value| SigInfo { signo, code: SI_TIMER, pid: t.id, value, ..Default::default() };
        match &t.notify {
            Notify::None => {}
            Notify::Process { signo, value } => match tg.upgrade() {
                Some(g) if g.state.lock().unwrap().zombie.is_none() => send_to_group(&g, info(*signo, *value)),
                _ => return,
            },
            Notify::Thread { signo, value, task } => match task.upgrade() {
                Some(task) => send_to_task(&task, info(*signo, *value)),
                None => return,
            },
        }
    }
}

/// A process's timers by id.
#[derive(Debug, Default)]
pub struct Timers {
    timers: Mutex<BTreeMap<i32, Arc<PosixTimer>>>,
}

impl Timers {
    pub fn create(&self, notify: Notify, clock: i32) -> Option<i32> {
        let mut m = self.timers.lock().unwrap();
        if m.len() >= 4096 {
            return None;
        }
        let id = (0..).find(|i| !m.contains_key(i))?;
        m.insert(
            id,
            Arc::new(PosixTimer {
                id,
                clock,
                notify,
                state: Mutex::new(State { deadline: None, interval: Duration::ZERO, generation: 0, overrun: 0 }),
                cv: Condvar::new(),
            }),
        );
        Some(id)
    }

    pub fn get(&self, id: i32) -> Option<Arc<PosixTimer>> {
        self.timers.lock().unwrap().get(&id).cloned()
    }

    pub fn delete(&self, id: i32) -> bool {
        match self.timers.lock().unwrap().remove(&id) {
            Some(t) => {
                t.cancel();
                true
            }
            None => false,
        }
    }

    /// exec and exit: every timer goes.
    pub fn clear(&self) {
        for (_, t) in std::mem::take(&mut *self.timers.lock().unwrap()) {
            t.cancel();
        }
    }
}
