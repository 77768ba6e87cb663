//! The fid table of one 9P connection, bounded: every fid's state is
//! charged against a byte budget, and the table holds a bounded number of fids.
//!
//! A client binds a fid without the Gofer opening anything (a walk of no
//! names clones one), so the kernel's limit on open files does not bound
//! the table; these limits do. Past either, a new fid (or a new open file on
//! one) is refused with ENFILE, what Linux answers when its file table is
//! full: one connection serves a whole sandbox, its "system". A rename may
//! push the total past the budget by the growth of the renamed names (the
//! host rename has happened; it cannot be refused); nothing new is bound
//! until the total is back under.

use std::collections::HashMap;

use abi::Errno;
use p9::Fid;

/// How much one connection's fids may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FidLimits {
    /// The most fids bound at once.
    pub max_fids: usize,
    /// The most bytes their states may cost together (see [`Cost`]).
    pub max_bytes: usize,
}

/// Fds a Gofer needs beyond those its fids hold: stdio, the 9P socket, and
/// the few one request opens for its duration (a reopened file, a directory
/// being listed, a donated fd on its way).
const RESERVED_FDS: u64 = 16;

/// The fewest fids a connection is allowed, whatever the open-files limit:
/// the Sentry's root, its working directory and a few files.
const MIN_FIDS: usize = 64;

/// The byte budget of one connection: at a few hundred bytes a fid, over a
/// hundred thousand fids, many times what the Sentry keeps (its lookup cache
/// holds at most 8192 inodes, plus what the app has open).
pub const DEFAULT_MAX_BYTES: usize = 64 << 20;

impl FidLimits {
    /// The limits of a Gofer that may hold `open_files` fds (its
    /// RLIMIT_NOFILE). A client that uses its fids keeps a file open on
    /// most, each an fd of its own; no more fids than the Gofer may open
    /// files is ever needed, and with no more the Gofer does not run out of
    /// fds in the middle of a request.
    pub fn for_open_files(open_files: u64) -> FidLimits {
        let fids = usize::try_from(open_files.saturating_sub(RESERVED_FDS)).unwrap_or(usize::MAX);
        FidLimits { max_fids: fids.max(MIN_FIDS), max_bytes: DEFAULT_MAX_BYTES }
    }

    /// The limits for this process's soft RLIMIT_NOFILE. Read it before
    /// the jail's seccomp filter, which forbids `prlimit64`.
    pub fn of_this_process() -> FidLimits {
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        FidLimits::for_open_files(limit.current.unwrap_or(u64::MAX))
    }
}

/// What a fid's state costs, in bytes, against [`FidLimits::max_bytes`].
pub trait Cost {
    /// The bytes this state holds, the kernel's share for its fds included.
    fn cost(&self) -> usize;
}

#[derive(Debug)]
struct Entry<S> {
    state: S,
    /// What the state cost when last charged, to refund exactly that.
    charged: usize,
}

/// The fids of one connection and what they cost together.
#[derive(Debug)]
pub struct Fids<S> {
    entries: HashMap<Fid, Entry<S>>,
    bytes: usize,
    limits: FidLimits,
}

impl<S: Cost> Fids<S> {
    /// An empty table bounded by `limits`.
    pub fn new(limits: FidLimits) -> Fids<S> {
        Fids { entries: HashMap::new(), bytes: 0, limits }
    }

    /// The state bound to `fid` (EBADF if none).
    pub fn get(&self, fid: Fid) -> Result<&S, Errno> {
        self.entries.get(&fid).map(|e| &e.state).ok_or(Errno::EBADF)
    }

    /// Whether `fid` may be bound to a state costing `cost` (replacing what
    /// it holds): ENFILE if a new fid would pass the count, or the total the
    /// byte budget.
    pub fn check(&self, fid: Fid, cost: usize) -> Result<(), Errno> {
        let replaced = match self.entries.get(&fid) {
            Some(entry) => entry.charged,
            None if self.entries.len() >= self.limits.max_fids => return Err(Errno::ENFILE),
            None => 0,
        };
        if (self.bytes - replaced).saturating_add(cost) > self.limits.max_bytes {
            return Err(Errno::ENFILE);
        }
        Ok(())
    }

    /// Binds `fid` to `state`, replacing what it held, if [`Fids::check`]
    /// allows. Refused, `fid` keeps its old state and `state` is dropped
    /// (closing its fds).
    pub fn insert(&mut self, fid: Fid, state: S) -> Result<(), Errno> {
        let cost = state.cost();
        self.check(fid, cost)?;
        if let Some(old) = self.entries.insert(fid, Entry { state, charged: cost }) {
            self.bytes -= old.charged;
        }
        self.bytes += cost;
        Ok(())
    }

    /// Unbinds `fid`, refunding its cost.
    pub fn remove(&mut self, fid: Fid) -> Option<S> {
        let entry = self.entries.remove(&fid)?;
        self.bytes -= entry.charged;
        Some(entry.state)
    }

    /// Runs `change` on the state of `fid` if the total may grow by `growth`
    /// bytes (ENFILE if not, before `change` runs), then charges what the
    /// state costs afterwards.
    pub fn grow<T>(
        &mut self,
        fid: Fid,
        growth: usize,
        change: impl FnOnce(&mut S) -> Result<T, Errno>,
    ) -> Result<T, Errno> {
        let entry = self.entries.get_mut(&fid).ok_or(Errno::EBADF)?;
        if self.bytes.saturating_add(growth) > self.limits.max_bytes {
            return Err(Errno::ENFILE);
        }
        let result = change(&mut entry.state);
        let cost = entry.state.cost();
        self.bytes = self.bytes - entry.charged + cost;
        entry.charged = cost;
        result
    }

    /// Runs `change` on every state, charging what each costs afterwards.
    pub fn update_all(&mut self, mut change: impl FnMut(&mut S)) {
        for entry in self.entries.values_mut() {
            change(&mut entry.state);
            let cost = entry.state.cost();
            self.bytes = self.bytes - entry.charged + cost;
            entry.charged = cost;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A state that costs what it says.
    struct Bytes(usize);

    impl Cost for Bytes {
        fn cost(&self) -> usize {
            self.0
        }
    }

    fn table(max_fids: usize, max_bytes: usize) -> Fids<Bytes> {
        Fids::new(FidLimits { max_fids, max_bytes })
    }

    #[test]
    fn the_count_and_the_bytes_are_both_bounded() {
        let mut fids = table(2, 100);
        fids.insert(Fid(1), Bytes(10)).unwrap();
        fids.insert(Fid(2), Bytes(10)).unwrap();
        assert_eq!(fids.insert(Fid(3), Bytes(1)), Err(Errno::ENFILE), "a third fid");
        // Replacing a bound fid is not a new one, but its cost counts.
        fids.insert(Fid(2), Bytes(90)).unwrap();
        assert_eq!(fids.insert(Fid(2), Bytes(91)), Err(Errno::ENFILE));
        assert_eq!(fids.get(Fid(2)).unwrap().0, 90, "a refused replacement leaves the old state");
        fids.remove(Fid(1)).unwrap();
        assert_eq!(fids.insert(Fid(3), Bytes(11)), Err(Errno::ENFILE), "90 + 11 bytes");
        fids.insert(Fid(3), Bytes(10)).unwrap();
        assert_eq!(fids.bytes, 100);
        assert_eq!(fids.get(Fid(1)).err(), Some(Errno::EBADF));
    }

    #[test]
    fn growth_is_checked_before_and_charged_after() {
        let mut fids = table(10, 100);
        fids.insert(Fid(1), Bytes(60)).unwrap();
        let refused = fids.grow(Fid(1), 41, |_| -> Result<(), Errno> { panic!("must not run") });
        assert_eq!(refused, Err(Errno::ENFILE));
        fids.grow(Fid(1), 40, |s| {
            s.0 += 40;
            Ok(())
        })
        .unwrap();
        assert_eq!(fids.bytes, 100);
        fids.update_all(|s| s.0 = 5);
        assert_eq!(fids.bytes, 5);
        fids.remove(Fid(1)).unwrap();
        assert_eq!(fids.bytes, 0);
        assert_eq!(fids.grow(Fid(1), 0, |_| Ok(())), Err(Errno::EBADF));
    }

    #[test]
    fn limits_follow_the_open_files_limit() {
        assert_eq!(FidLimits::for_open_files(20_000).max_fids, 20_000 - 16);
        assert_eq!(FidLimits::for_open_files(10).max_fids, MIN_FIDS);
        assert_eq!(FidLimits::for_open_files(u64::MAX).max_bytes, DEFAULT_MAX_BYTES);
    }
}
