//! clone, clone3, fork and vfork: new processes and threads, and the
//! per-thread words they register (set_tid_address, robust lists).

use std::sync::Arc;

use abi::flags::CloneFlags;
use abi::process::*;
use abi::{AsBytes, Errno, FromZeroes};

use crate::kernel::current::CurrentTask;
use crate::kernel::signal;
use crate::kernel::task::{self, Task, ThreadGroup};
use crate::mm::MemoryManager;
use crate::SysResult;

/// Whether the clone `flags` have every one of `set`.
fn has(flags: u64, set: CloneFlags) -> bool {
    CloneFlags::from_bits_retain(flags).contains(set)
}

/// Whether the clone `flags` have any of `set`.
fn has_any(flags: u64, set: CloneFlags) -> bool {
    CloneFlags::from_bits_retain(flags).intersects(set)
}

pub fn sys_clone(t: &mut CurrentTask, flags: u64, stack: u64, ptid: u64, ctid: u64, tls: u64) -> SysResult<u64> {
    // As arch_prctl(ARCH_SET_FS): a thread pointer beyond the app's address
    // space is refused before anything is made.
    if has(flags, CloneFlags::CLONE_SETTLS) && tls >= t.k.platform.layout().top {
        return Err(errno!(EPERM));
    }
    if has(flags, CloneFlags::CLONE_THREAD) {
        return clone_thread(t, flags, stack, ptid, ctid, tls);
    }
    if has_any(flags, CloneFlags::CLONE_SIGHAND | CloneFlags::CLONE_FS | CloneFlags::CLONE_FILES) {
        // Processes sharing fs or fd tables without being threads are not supported yet.
        crate::syscalls::unimplemented(t, abi::sysno::CLONE);
        return Err(errno!(EINVAL));
    }
    let k = t.k.clone();
    k.check_task_limit()?;
    let parent_tg = t.tg().clone();
    // CLONE_VM (vfork, posix_spawn) shares the address space: the child runs as a new
    // thread of the parent's stub until it execs; otherwise the child gets a copy.
    let shared_vm = has(flags, CloneFlags::CLONE_VM);
    let seed = if shared_vm {
        Some(t.ctx.new_thread().map_err(|e| {
            tracing::warn!("cannot create a stub thread: {e}");
            Errno::EAGAIN
        })?)
    } else {
        None
    };
    let mm = if shared_vm {
        MemoryManager::new(k.alloc.clone(), k.platform.layout())
    } else {
        parent_tg.mm().lock().unwrap().fork()?
    };
    let fds = parent_tg.fds.lock().unwrap().clone();
    let fs = parent_tg.fs.lock().unwrap().clone();
    let creds = parent_tg.creds.lock().unwrap().clone();
    let actions = parent_tg.sig.lock().unwrap().actions;
    let (pgid, sid) = {
        let st = parent_tg.state.lock().unwrap();
        (st.pgid, st.sid)
    };
    let real_parent = if has(flags, CloneFlags::CLONE_PARENT) {
        parent_tg.parent().unwrap_or(parent_tg.clone())
    } else {
        parent_tg.clone()
    };
    let comm = parent_tg.comm.lock().unwrap().clone();
    let exe = parent_tg.exe.lock().unwrap().clone();
    let mask = t.task.sig.lock().unwrap().mask;
    let (pid, child_tg, child_task) = {
        let mut pids = k.pids.lock().unwrap();
        let pid = pids.alloc();
        let tg = ThreadGroup::new(
            pid,
            Some(Arc::downgrade(&real_parent)),
            mm,
            fds,
            fs,
            creds,
            actions,
            pgid,
            sid,
            comm,
            exe,
        );
        let task = Task::new(pid, tg.clone(), mask);
        tg.state.lock().unwrap().threads.push(task.clone());
        pids.groups.insert(pid, tg.clone());
        pids.tasks.insert(pid, task.clone());
        (pid, tg, task)
    };
    *child_tg.rlimits.lock().unwrap() = *parent_tg.rlimits.lock().unwrap();
    let adj = parent_tg.oom_score_adj.load(std::sync::atomic::Ordering::Relaxed);
    child_tg.oom_score_adj.store(adj, std::sync::atomic::Ordering::Relaxed);
    let nice = parent_tg.nice.load(std::sync::atomic::Ordering::Relaxed);
    child_tg.nice.store(nice, std::sync::atomic::Ordering::Relaxed);
    let ioprio = parent_tg.ioprio.load(std::sync::atomic::Ordering::Relaxed);
    child_tg.ioprio.store(ioprio, std::sync::atomic::Ordering::Relaxed);
    real_parent.state.lock().unwrap().children.push(child_tg.clone());
    if has(flags, CloneFlags::CLONE_PARENT_SETTID) {
        t.write_obj(ptid, &pid)?;
    }
    if shared_vm {
        child_tg.set_mm(parent_tg.mm());
    }
    if has(flags, CloneFlags::CLONE_CHILD_SETTID) {
        child_tg.mm().lock().unwrap().write(ctid, pid.as_bytes())?;
    }
    let (regs, fp) = child_start(t, &child_task, flags, stack, ctid, tls);
    if let Err(e) = spawn(k.clone(), child_task.clone(), regs, fp, seed) {
        // No host thread to run it (the host's task limit): as if the child never was.
        tracing::warn!("cannot start a task thread: {e}");
        let mut pids = k.pids.lock().unwrap();
        pids.tasks.remove(&pid);
        pids.groups.remove(&pid);
        drop(pids);
        real_parent.state.lock().unwrap().children.retain(|c| !Arc::ptr_eq(c, &child_tg));
        return Err(errno!(EAGAIN));
    }
    if has_any(flags, CloneFlags::CLONE_VFORK | CloneFlags::CLONE_VM) {
        let _ = t.block_on(&[&parent_tg.vfork_wait], None, || {
            if child_tg.state.lock().unwrap().vfork_released {
                Ok(())
            } else {
                Err(errno!(EAGAIN))
            }
        });
    }
    Ok(pid as u64)
}

/// The registers and FPU state a new task starts with: the caller's, returning 0 from
/// clone, on `stack` if given, with `tls` under CLONE_SETTLS; CLONE_CHILD_CLEARTID noted.
fn child_start(
    t: &CurrentTask,
    child: &Task,
    flags: u64,
    stack: u64,
    ctid: u64,
    tls: u64,
) -> (crate::platform::Regs, Option<Vec<u8>>) {
    if has(flags, CloneFlags::CLONE_CHILD_CLEARTID) {
        *child.clear_child_tid.lock().unwrap() = ctid;
    }
    let mut regs = t.regs;
    regs.rax = 0;
    if stack != 0 {
        regs.rsp = stack;
    }
    if has(flags, CloneFlags::CLONE_SETTLS) {
        regs.fs_base = tls;
    }
    crate::platform::sixty_four(&mut regs);
    (regs, t.ctx.fpstate().ok())
}

/// A new thread in the caller's process: a new stub thread in the same stub process.
fn clone_thread(t: &mut CurrentTask, flags: u64, stack: u64, ptid: u64, ctid: u64, tls: u64) -> SysResult<u64> {
    if !has(flags, CloneFlags::CLONE_SIGHAND | CloneFlags::CLONE_VM) {
        return Err(errno!(EINVAL));
    }
    t.k.check_task_limit()?;
    let seed = t.ctx.new_thread().map_err(|e| {
        tracing::warn!("cannot create a stub thread: {e}");
        Errno::EAGAIN
    })?;
    let k = t.k.clone();
    let tg = t.tg().clone();
    let mask = t.task.sig.lock().unwrap().mask;
    let task = {
        let mut pids = k.pids.lock().unwrap();
        let tid = pids.alloc();
        let task = Task::new(tid, tg.clone(), mask);
        tg.state.lock().unwrap().threads.push(task.clone());
        pids.tasks.insert(tid, task.clone());
        task
    };
    let tid = task.tid();
    if has(flags, CloneFlags::CLONE_PARENT_SETTID) {
        t.write_obj(ptid, &tid)?;
    }
    if has(flags, CloneFlags::CLONE_CHILD_SETTID) {
        t.write_obj(ctid, &tid)?;
    }
    let (regs, fp) = child_start(t, &task, flags, stack, ctid, tls);
    let undo = (k.clone(), tg.clone(), task.clone());
    let res = std::thread::Builder::new().name(format!("task-{tid}")).spawn(move || {
        let ctx = match seed.attach() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("cannot attach a stub thread: {e}");
                *task.thread_exit.lock().unwrap() = Some(0);
                return crate::kernel::exit::exit_thread(&k, &task);
            }
        };
        let mut cur = CurrentTask { k: k.clone(), task: task.clone(), ctx, regs, restart: None };
        if let Some(fp) = fp {
            let _ = cur.ctx.set_fpstate(&fp);
        }
        cur.run();
    });
    if let Err(e) = res {
        // No host thread to run it: as if the thread never was.
        tracing::warn!("cannot start a task thread: {e}");
        let (k, tg, task) = undo;
        k.pids.lock().unwrap().tasks.remove(&tid);
        tg.state.lock().unwrap().threads.retain(|t| !Arc::ptr_eq(t, &task));
        return Err(errno!(EAGAIN));
    }
    Ok(tid as u64)
}

/// Starts a host thread that runs a new process: in a new stub with a copy of the
/// address space, or (with `seed`) as a thread of the parent's stub sharing it.
pub fn spawn(
    k: Arc<crate::kernel::Kernel>,
    task: Arc<Task>,
    regs: crate::platform::Regs,
    fp: Option<Vec<u8>>,
    seed: Option<Box<dyn crate::platform::ContextSeed>>,
) -> std::io::Result<()> {
    let name = format!("task-{}", task.tid());
    let res = std::thread::Builder::new().name(name).spawn(move || {
        let shared = seed.is_some();
        let made = match seed {
            Some(seed) => seed.attach(),
            None => k.platform.new_context(),
        };
        let ctx = match made {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("cannot create a stub: {e}");
                task.tg.begin_exit(task::signaled(signal::SIGKILL, false));
                return crate::kernel::exit::exit_thread(&k, &task);
            }
        };
        let mut cur = CurrentTask { k: k.clone(), task: task.clone(), ctx, regs, restart: None };
        let mapped = cur.change_mm(|mm| Ok(((), if shared { Vec::new() } else { mm.all_map_ops() })));
        if mapped.is_ok() {
            if let Some(fp) = fp {
                let _ = cur.ctx.set_fpstate(&fp);
            }
        }
        cur.run();
    });
    res.map(|_| ())
}

pub fn sys_set_tid_address(t: &mut CurrentTask, addr: u64) -> SysResult<u64> {
    *t.task.clear_child_tid.lock().unwrap() = addr;
    Ok(t.task.tid() as u64)
}

/// clone3: the same as clone, with its arguments in a struct.
pub fn sys_clone3(t: &mut CurrentTask, args: u64, size: usize) -> SysResult<u64> {
    if !(CLONE_ARGS_SIZE_VER0..=4096).contains(&size) {
        return Err(errno!(EINVAL));
    }
    let b = t.read_vec(args, size)?;
    // What the app gave of the struct, the rest zero (Linux's copy_struct_from_user).
    let mut a = CloneArgs::new_zeroed();
    let known = size.min(std::mem::size_of::<CloneArgs>());
    a.as_bytes_mut()[..known].copy_from_slice(&b[..known]);
    // a.pidfd is meaningful only with CLONE_PIDFD, which is refused.
    let CloneArgs { flags, child_tid, parent_tid, exit_signal, stack, stack_size, tls, .. } = a;
    if has(flags, CloneFlags::CLONE_PIDFD) || exit_signal > 64 || b[CLONE_ARGS_SIZE_VER0..].iter().any(|&x| x != 0) {
        // pidfds, set_tid and cgroup placement are not supported.
        return Err(errno!(EINVAL));
    }
    if (stack == 0) != (stack_size == 0) {
        return Err(errno!(EINVAL));
    }
    let top = if stack == 0 { 0 } else { stack.checked_add(stack_size).ok_or(errno!(EINVAL))? };
    sys_clone(t, (flags & !0xff) | exit_signal, top, parent_tid, child_tid, tls)
}

pub fn sys_set_robust_list(t: &mut CurrentTask, head: u64, len: usize) -> SysResult<u64> {
    if len != std::mem::size_of::<abi::futex::RobustListHead>() {
        return Err(errno!(EINVAL));
    }
    *t.task.robust_list.lock().unwrap() = head;
    Ok(0)
}

pub fn sys_get_robust_list(t: &mut CurrentTask, tid: i32, head: u64, len: u64) -> SysResult<u64> {
    let task = if tid == 0 { t.task.clone() } else { t.k.task(tid).ok_or(errno!(ESRCH))? };
    let h = *task.robust_list.lock().unwrap();
    t.write_obj(head, &h)?;
    t.write_obj(len, &(std::mem::size_of::<abi::futex::RobustListHead>() as u64))?;
    Ok(0)
}
