//! Private file mappings that fill on first use: a backing's pages come from
//! a file a piece at a time, when the app or the Sentry first touches them.
//!
//! Invariants: a piece is read into the backing at most once (`filled`), and
//! before anyone can see it: the stub maps an unfilled piece `PROT_NONE`, so
//! the app's first touch faults to the Sentry, and the Sentry's own accesses
//! fill first. `exposed` marks pieces every VMA of the backing now maps with
//! its real protection: a fault there is the app's own, not ours.

use std::sync::{Arc, Mutex};

use crate::SysResult;

/// How much of a file one fill reads: the Sentry's memory for it, and the
/// granularity of faults.
pub const PIECE: u64 = 256 << 10;

/// Where a backing's pages come from.
pub trait PageSource: Send + Sync + std::fmt::Debug {
    /// Reads up to `buf.len()` bytes at `off`; fewer (or none) at the end.
    fn read(&self, off: u64, buf: &mut [u8]) -> SysResult<usize>;
    /// The next range at or after `off` that may hold data, as (start, end);
    /// None past the last. Between ranges the source reads as zero.
    fn data_extent(&self, off: u64) -> SysResult<Option<(u64, u64)>>;
}

/// The source of a backing and which of its pieces are in.
#[derive(Debug)]
pub struct Fill {
    source: Arc<dyn PageSource>,
    /// Source offset of the backing's first byte.
    offset: u64,
    /// Source bytes the backing shows; past them it reads as zero (nothing
    /// is read).
    len: u64,
    state: Mutex<State>,
}

#[derive(Debug, Clone)]
struct State {
    filled: Vec<u64>,
    exposed: Vec<u64>,
}

fn bit(set: &[u64], i: u64) -> bool {
    set.get((i / 64) as usize).is_some_and(|w| w & (1 << (i % 64)) != 0)
}

fn set_bit(set: &mut [u64], i: u64) {
    if let Some(w) = set.get_mut((i / 64) as usize) {
        *w |= 1 << (i % 64);
    }
}

impl Fill {
    /// A fill for a backing of `backing_len` bytes showing `len` bytes of
    /// `source` from `offset`.
    pub fn new(source: Arc<dyn PageSource>, offset: u64, len: u64, backing_len: u64) -> Fill {
        let words = backing_len.div_ceil(PIECE).div_ceil(64) as usize;
        Fill { source, offset, len, state: Mutex::new(State { filled: vec![0; words], exposed: vec![0; words] }) }
    }

    /// The same source and filled pieces, for a copy of the backing (fork):
    /// the copy's stub maps every filled piece when it starts.
    pub fn fork(&self) -> Fill {
        let state = self.state.lock().unwrap().clone();
        let exposed = state.filled.clone();
        Fill {
            source: self.source.clone(),
            offset: self.offset,
            len: self.len,
            state: Mutex::new(State { filled: state.filled, exposed }),
        }
    }

    /// Whether piece `index` is in.
    pub fn is_filled(&self, index: u64) -> bool {
        bit(&self.state.lock().unwrap().filled, index)
    }

    /// Whether piece `index` is in and mapped with its real protection by
    /// every VMA that shows it.
    pub fn is_exposed(&self, index: u64) -> bool {
        let state = self.state.lock().unwrap();
        bit(&state.filled, index) && bit(&state.exposed, index)
    }

    /// Records that every VMA showing piece `index` now maps it.
    pub fn expose(&self, index: u64) {
        set_bit(&mut self.state.lock().unwrap().exposed, index);
    }

    /// Reads every piece of `[off, off + len)` (backing offsets) not yet in
    /// with `write(backing offset, bytes)`, skipping the source's holes and
    /// zeros (the backing reads as zero there already).
    pub fn fill(&self, off: u64, len: u64, mut write: impl FnMut(u64, &[u8]) -> SysResult<()>) -> SysResult<()> {
        if len == 0 {
            return Ok(());
        }
        let mut state = self.state.lock().unwrap();
        let end = off.checked_add(len).ok_or(errno!(EFAULT))?;
        for index in off / PIECE..end.div_ceil(PIECE) {
            if bit(&state.filled, index) {
                continue;
            }
            let (start, stop) = (index * PIECE, ((index + 1) * PIECE).min(self.len));
            if start < stop {
                let base = self.offset;
                copy_data(&*self.source, base + start, base + stop, |at, data| write(at - base, data))?;
            }
            set_bit(&mut state.filled, index);
        }
        Ok(())
    }
}

/// Copies `[from, to)` of `source` (its offsets) with `write(offset,
/// bytes)`, a piece at a time, skipping the source's holes and any piece of
/// zeros (the destination reads as zero there already, and stays
/// unallocated): the Sentry holds one piece, whatever the range. Returns
/// where the source ended, if before `to`, else `to`.
pub fn copy_data(
    source: &dyn PageSource,
    from: u64,
    to: u64,
    mut write: impl FnMut(u64, &[u8]) -> SysResult<()>,
) -> SysResult<u64> {
    let mut buf = vec![0u8; PIECE.min(to.saturating_sub(from)) as usize];
    let mut pos = from;
    while pos < to {
        let Some((data, hole)) = source.data_extent(pos)? else { break };
        let (data, hole) = (data.max(pos), hole.min(to));
        let mut at = data;
        while at < hole {
            let want = PIECE.min(hole - at) as usize;
            let n = source.read(at, &mut buf[..want])?;
            if n == 0 {
                return Ok(at);
            }
            if buf[..n].iter().any(|&b| b != 0) {
                write(at, &buf[..n])?;
            }
            at += n as u64;
        }
        pos = hole.max(pos + 1);
    }
    Ok(to)
}
