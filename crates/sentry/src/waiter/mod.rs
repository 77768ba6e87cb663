//! Sleeping and waking: a `Waiter` per task, `WaitQueue`s on everything a task
//! can block on (pipes, children, futexes). Wake-ups are never lost: a waiter
//! is registered before the condition is re-checked.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::Instant;

/// A task's sleep/wake slot.
#[derive(Debug, Default)]
pub struct Waiter {
    woken: Mutex<bool>,
    cv: Condvar,
    /// In `wait` now: what /proc shows as the task's state.
    sleeping: AtomicBool,
}

impl Waiter {
    pub fn new() -> Arc<Waiter> {
        Arc::new(Waiter::default())
    }

    pub fn notify(&self) {
        *self.woken.lock().unwrap() = true;
        self.cv.notify_all();
    }

    /// Sleeps until notified or `deadline`; consumes the notification.
    pub fn wait(&self, deadline: Option<Instant>) {
        let mut w = self.woken.lock().unwrap();
        self.sleeping.store(true, Ordering::Relaxed);
        while !*w {
            match deadline {
                None => w = self.cv.wait(w).unwrap(),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        break;
                    }
                    w = self.cv.wait_timeout(w, d - now).unwrap().0;
                }
            }
        }
        *w = false;
        self.sleeping.store(false, Ordering::Relaxed);
    }

    /// Whether the task sleeps in `wait` now.
    pub fn is_sleeping(&self) -> bool {
        self.sleeping.load(Ordering::Relaxed)
    }

    /// Clears a pending notification before re-checking conditions.
    pub fn reset(&self) {
        *self.woken.lock().unwrap() = false;
    }
}

/// The waiters interested in one object.
#[derive(Debug, Default)]
pub struct WaitQueue {
    waiters: Mutex<Vec<Weak<Waiter>>>,
    /// Counts notifications: edge-triggered epoll reports a file again after new activity.
    events: std::sync::atomic::AtomicU64,
}

impl WaitQueue {
    pub fn add(&self, w: &Arc<Waiter>) {
        let mut ws = self.waiters.lock().unwrap();
        ws.retain(|x| x.strong_count() > 0);
        if !ws.iter().any(|x| std::ptr::eq(x.as_ptr(), Arc::as_ptr(w))) {
            ws.push(Arc::downgrade(w));
        }
    }

    pub fn remove(&self, w: &Arc<Waiter>) {
        self.waiters.lock().unwrap().retain(|x| !std::ptr::eq(x.as_ptr(), Arc::as_ptr(w)) && x.strong_count() > 0);
    }

    /// How many notifications this queue has seen.
    pub fn events(&self) -> u64 {
        self.events.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn notify_all(&self) {
        self.events.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let ws: Vec<_> = self.waiters.lock().unwrap().iter().filter_map(|w| w.upgrade()).collect();
        for w in ws {
            w.notify();
        }
    }
}
