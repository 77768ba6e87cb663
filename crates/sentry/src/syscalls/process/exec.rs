//! execve: a new program image in the calling process, its other threads
//! ended, and the first program of the sandbox.

use std::sync::Arc;

use abi::x86::FxSave;
use abi::{AsBytes, Errno, FromZeroes};

use crate::kernel::current::CurrentTask;
use crate::kernel::signal::{self, SigAction};
use crate::loader;
use crate::SysResult;

/// Linux's MAX_ARG_STRLEN: the longest argument or variable, with its NUL.
const MAX_ARG_STRLEN: usize = 32 * 4096;

fn read_strv(t: &CurrentTask, mut ptr: u64) -> SysResult<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    if ptr == 0 {
        return Ok(out);
    }
    let mut total = 0;
    loop {
        let p = t.read_u64(ptr)?;
        if p == 0 {
            return Ok(out);
        }
        let s = t.tg().mm().lock().unwrap().read_cstr(p, MAX_ARG_STRLEN - 1).map_err(|e| {
            if e == Errno::ENAMETOOLONG {
                errno!(E2BIG)
            } else {
                e
            }
        })?;
        total += s.len() + 1;
        if total > (2 << 20) || out.len() > 65536 {
            return Err(errno!(E2BIG));
        }
        out.push(s);
        ptr += 8;
    }
}

pub fn sys_execve(t: &mut CurrentTask, path: u64, argv: u64, envp: u64) -> SysResult<u64> {
    let path = t.read_cstr(path)?;
    let argv = read_strv(t, argv)?;
    let envp = read_strv(t, envp)?;
    exec(t, &path, argv, envp)?;
    Ok(0)
}

/// Replaces the current process image. Past `loader::load`, failure kills the process.
pub fn exec(t: &mut CurrentTask, path: &[u8], argv: Vec<Vec<u8>>, envp: Vec<Vec<u8>>) -> SysResult<()> {
    let img = loader::load(t, path, argv, envp)?;
    kill_other_threads(t);
    if t.tg().mm_shared() {
        // A vfork child leaves the parent's address space: a stub of its own.
        let ctx = t.k.platform.new_context().map_err(|e| {
            tracing::error!("cannot create a stub for exec: {e}");
            Errno::ENOMEM
        })?;
        t.ctx = ctx;
        *t.task.kicker_slot() = Some(t.ctx.kicker());
        t.tg().set_mm(Arc::new(std::sync::Mutex::new(img.mm)));
        t.change_mm(|mm| Ok(((), mm.all_map_ops()))).map_err(|_| errno!(EFAULT))?;
    } else {
        t.change_mm(|mm| Ok(((), mm.replace_with(img.mm)))).map_err(|_| errno!(EFAULT))?;
    }
    *t.tg().creds.lock().unwrap() = img.creds;
    t.tg().posix_timers.clear();
    let closed = t.tg().fds.lock().unwrap().close_on_exec();
    drop(closed);
    {
        let mut gs = t.tg().sig.lock().unwrap();
        for a in gs.actions.iter_mut() {
            if a.handler != signal::SIG_IGN {
                *a = SigAction::default();
            }
        }
    }
    t.task.sig.lock().unwrap().altstack = Default::default();
    *t.tg().comm.lock().unwrap() = img.comm;
    *t.tg().exe.lock().unwrap() = img.exe;
    let mut regs = t.ctx.initial_regs().map_err(|_| errno!(EFAULT))?;
    regs.rip = img.entry;
    regs.rsp = img.sp;
    crate::platform::sixty_four(&mut regs);
    t.regs = regs;
    let _ = t.ctx.set_fpstate(initial_fpstate().as_bytes());
    let parent = {
        let mut st = t.tg().state.lock().unwrap();
        st.vfork_released = true;
        st.parent.as_ref().and_then(|p| p.upgrade())
    };
    if let Some(p) = parent {
        p.vfork_wait.notify_all();
    }
    Ok(())
}

/// execve's de_thread: every other thread of the process exits before the new image runs.
fn kill_other_threads(t: &CurrentTask) {
    let tg = t.tg().clone();
    let others: Vec<_> = tg.threads().into_iter().filter(|o| !Arc::ptr_eq(o, &t.task)).collect();
    if others.is_empty() {
        return;
    }
    for o in &others {
        *o.thread_exit.lock().unwrap() = Some(0);
        o.interrupt();
    }
    // Not interruptible: the exec is past its point of no return.
    while tg.threads().len() > 1 {
        tg.thread_exit_wait.add(&t.task.waiter);
        if tg.threads().len() <= 1 {
            break;
        }
        t.task.waiter.wait(Some(std::time::Instant::now() + std::time::Duration::from_millis(10)));
    }
    tg.thread_exit_wait.remove(&t.task.waiter);
    let pid = tg.pid;
    if t.task.tid() != pid {
        let mut pids = t.k.pids.lock().unwrap();
        pids.tasks.remove(&t.task.tid());
        t.task.become_leader(pid);
        pids.tasks.insert(pid, t.task.clone());
        crate::auth::set_current(pid, pid);
    }
}

/// FXSAVE image of a freshly reset FPU (FCW 0x37f, MXCSR 0x1f80).
fn initial_fpstate() -> FxSave {
    FxSave { cwd: 0x37f, mxcsr: 0x1f80, mxcsr_mask: 0xffff, ..FxSave::new_zeroed() }
}
