//! futex(2): the operations, over the kernel's futex table.

use crate::kernel::current::CurrentTask;
use crate::SysResult;

pub fn sys_futex(t: &mut CurrentTask, a: [u64; 6]) -> SysResult<u64> {
    use abi::futex::*;
    use abi::time::{Timespec, CLOCK_MONOTONIC, CLOCK_REALTIME};
    let (addr, op, val, timeout, addr2, val3) = (a[0], a[1] as u32, a[2] as u32, a[3], a[4], a[5] as u32);
    let f = &t.k.futexes;
    let deadline = |t: &CurrentTask, absolute: bool| -> SysResult<Option<std::time::Instant>> {
        if timeout == 0 {
            return Ok(None);
        }
        let d = t.read_obj::<Timespec>(timeout)?.duration().ok_or(errno!(EINVAL))?;
        let rel = if absolute {
            let clock = if op & FUTEX_CLOCK_REALTIME != 0 { CLOCK_REALTIME } else { CLOCK_MONOTONIC };
            let (s, n) = t.k.clock.gettime(clock).map_err(|_| errno!(EINVAL))?;
            d.saturating_sub(std::time::Duration::new(s as u64, n as u32))
        } else {
            d
        };
        Ok(std::time::Instant::now().checked_add(rel))
    };
    let private = op & FUTEX_PRIVATE_FLAG != 0;
    // The command is the bits below FUTEX_PRIVATE_FLAG.
    let r = match op & (FUTEX_PRIVATE_FLAG - 1) {
        FUTEX_WAIT => f.wait(t, addr, val, u32::MAX, deadline(t, false)?, private),
        FUTEX_WAIT_BITSET => f.wait(t, addr, val, val3, deadline(t, true)?, private),
        FUTEX_WAKE => f.wake(t, addr, val, u32::MAX, private),
        FUTEX_WAKE_BITSET => f.wake(t, addr, val, val3, private),
        FUTEX_REQUEUE => f.requeue(t, addr, val, addr2, timeout as u32, None, private),
        FUTEX_CMP_REQUEUE => f.requeue(t, addr, val, addr2, timeout as u32, Some(val3), private),
        FUTEX_WAKE_OP => f.wake_op(t, addr, val, addr2, timeout as u32, val3, private),
        _ => {
            // PI futexes and FUTEX_WAIT_REQUEUE_PI are not implemented yet.
            return Err(crate::syscalls::unimplemented(t, abi::sysno::FUTEX));
        }
    };
    match r {
        Err(e) if e.as_restart() == Some(crate::Restart::Sys) && (timeout != 0) => Err(errno!(EINTR)),
        r => r,
    }
}
