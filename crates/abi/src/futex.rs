//! Futexes in the x86-64 ABI: `futex` operations and flags, the robust-list
//! head a thread registers, and the owner bits of a robust futex word.

use core::mem::size_of;

use zerocopy::{AsBytes, FromBytes, FromZeroes};

pub const FUTEX_WAIT: u32 = 0;
pub const FUTEX_WAKE: u32 = 1;
pub const FUTEX_REQUEUE: u32 = 3;
pub const FUTEX_CMP_REQUEUE: u32 = 4;
pub const FUTEX_WAKE_OP: u32 = 5;
pub const FUTEX_WAIT_BITSET: u32 = 9;
pub const FUTEX_WAKE_BITSET: u32 = 10;
/// The futex is private to the process: its key is the address alone.
pub const FUTEX_PRIVATE_FLAG: u32 = 128;
/// An absolute timeout is on CLOCK_REALTIME, not CLOCK_MONOTONIC.
pub const FUTEX_CLOCK_REALTIME: u32 = 256;

/// Robust futex word: some thread waits on it.
pub const FUTEX_WAITERS: u32 = 0x8000_0000;
/// Robust futex word: its owner died holding it.
pub const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
/// Robust futex word: the owner's thread id.
pub const FUTEX_TID_MASK: u32 = 0x3fff_ffff;
/// The most robust-list entries walked when a thread dies (Linux's
/// ROBUST_LIST_LIMIT): the list is the app's and may be circular.
pub const ROBUST_LIST_LIMIT: usize = 2048;

/// C `struct robust_list_head` (set_robust_list).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromZeroes, FromBytes, AsBytes)]
#[repr(C)]
pub struct RobustListHead {
    /// The first entry; the list ends where it comes back to the head.
    pub list: u64,
    /// Where the futex word is, relative to an entry.
    pub futex_offset: i64,
    /// An entry being taken or released, not yet on the list.
    pub list_op_pending: u64,
}
const _: () = assert!(size_of::<RobustListHead>() == 24);
