//! Process syscalls: clone/fork/vfork, execve, exit, wait, ids, sessions,
//! limits, uname, futex and the other per-process knobs.

use std::sync::Arc;

use abi::Errno;

use crate::auth::capability::{self, CAP_SETGID, CAP_SETPCAP, CAP_SETUID, CAP_SYS_ADMIN, CAP_SYS_RESOURCE};
use crate::kernel::signal::{self, SigAction};
use crate::kernel::task::{self, find_zombie, CurrentTask, Task, ThreadGroup, WaitFor, WaitTarget};
use crate::loader;
use crate::mm::MemoryManager;
use crate::taskfs::sysctl::UTS_NAME_MAX;
use crate::SysResult;

const CLONE_VM: u64 = 0x100;
const CLONE_FS: u64 = 0x200;
const CLONE_FILES: u64 = 0x400;
const CLONE_SIGHAND: u64 = 0x800;
const CLONE_VFORK: u64 = 0x4000;
const CLONE_PARENT: u64 = 0x8000;
const CLONE_THREAD: u64 = 0x10000;
const CLONE_SETTLS: u64 = 0x80000;
const CLONE_PARENT_SETTID: u64 = 0x100000;
const CLONE_CHILD_CLEARTID: u64 = 0x200000;
const CLONE_CHILD_SETTID: u64 = 0x1000000;

pub fn sys_clone(t: &mut CurrentTask, flags: u64, stack: u64, ptid: u64, ctid: u64, tls: u64) -> SysResult<u64> {
    // As arch_prctl(ARCH_SET_FS): a thread pointer beyond the app's address
    // space is refused before anything is made.
    if flags & CLONE_SETTLS != 0 && tls >= t.k.platform.layout().top {
        return Err(Errno::EPERM);
    }
    if flags & CLONE_THREAD != 0 {
        return clone_thread(t, flags, stack, ptid, ctid, tls);
    }
    if flags & (CLONE_SIGHAND | CLONE_FS | CLONE_FILES) != 0 {
        // Processes sharing fs or fd tables without being threads are not supported yet.
        super::unimplemented(t, abi::sysno::CLONE);
        return Err(Errno::EINVAL);
    }
    let k = t.k.clone();
    k.check_task_limit()?;
    let parent_tg = t.tg().clone();
    // CLONE_VM (vfork, posix_spawn) shares the address space: the child runs as a new
    // thread of the parent's stub until it execs; otherwise the child gets a copy.
    let shared_vm = flags & CLONE_VM != 0;
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
    let real_parent =
        if flags & CLONE_PARENT != 0 { parent_tg.parent().unwrap_or(parent_tg.clone()) } else { parent_tg.clone() };
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
    real_parent.state.lock().unwrap().children.push(child_tg.clone());
    if flags & CLONE_PARENT_SETTID != 0 {
        t.write_mem(ptid, &pid.to_ne_bytes())?;
    }
    if shared_vm {
        child_tg.set_mm(parent_tg.mm());
    }
    if flags & CLONE_CHILD_SETTID != 0 {
        child_tg.mm().lock().unwrap().write(ctid, &pid.to_ne_bytes())?;
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
        return Err(Errno::EAGAIN);
    }
    if flags & CLONE_VFORK != 0 || flags & CLONE_VM != 0 {
        let _ = t.block_on(&[&parent_tg.vfork_wait], None, || {
            if child_tg.state.lock().unwrap().vfork_released {
                Ok(())
            } else {
                Err(Errno::EAGAIN)
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
    if flags & CLONE_CHILD_CLEARTID != 0 {
        *child.clear_child_tid.lock().unwrap() = ctid;
    }
    let mut regs = t.regs;
    regs.rax = 0;
    if stack != 0 {
        regs.rsp = stack;
    }
    if flags & CLONE_SETTLS != 0 {
        regs.fs_base = tls;
    }
    crate::platform::sixty_four(&mut regs);
    (regs, t.ctx.fpstate().ok())
}

/// A new thread in the caller's process: a new stub thread in the same stub process.
fn clone_thread(t: &mut CurrentTask, flags: u64, stack: u64, ptid: u64, ctid: u64, tls: u64) -> SysResult<u64> {
    if flags & CLONE_SIGHAND == 0 || flags & CLONE_VM == 0 {
        return Err(Errno::EINVAL);
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
    if flags & CLONE_PARENT_SETTID != 0 {
        t.write_mem(ptid, &tid.to_ne_bytes())?;
    }
    if flags & CLONE_CHILD_SETTID != 0 {
        t.write_mem(ctid, &tid.to_ne_bytes())?;
    }
    let (regs, fp) = child_start(t, &task, flags, stack, ctid, tls);
    let undo = (k.clone(), tg.clone(), task.clone());
    let res = std::thread::Builder::new().name(format!("task-{tid}")).spawn(move || {
        let ctx = match seed.attach() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("cannot attach a stub thread: {e}");
                *task.thread_exit.lock().unwrap() = Some(0);
                return task::exit_thread(&k, &task);
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
        return Err(Errno::EAGAIN);
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
                return task::exit_thread(&k, &task);
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
        let s = t.read_cstr(p)?;
        total += s.len() + 1;
        if total > (2 << 20) || out.len() > 65536 {
            return Err(Errno::E2BIG);
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
        t.change_mm(|mm| Ok(((), mm.all_map_ops()))).map_err(|_| Errno::EFAULT)?;
    } else {
        t.change_mm(|mm| Ok(((), mm.replace_with(img.mm)))).map_err(|_| Errno::EFAULT)?;
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
    let mut regs = t.ctx.initial_regs().map_err(|_| Errno::EFAULT)?;
    regs.rip = img.entry;
    regs.rsp = img.sp;
    crate::platform::sixty_four(&mut regs);
    t.regs = regs;
    let _ = t.ctx.set_fpstate(&initial_fpstate());
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
fn initial_fpstate() -> [u8; 512] {
    let mut fp = [0u8; 512];
    fp[0..2].copy_from_slice(&0x37fu16.to_ne_bytes());
    fp[24..28].copy_from_slice(&0x1f80u32.to_ne_bytes());
    fp[28..32].copy_from_slice(&0xffffu32.to_ne_bytes());
    fp
}

/// exit(2): ends the calling thread only; the last thread out ends the process.
pub fn sys_exit(t: &mut CurrentTask, code: i32) -> SysResult<u64> {
    *t.task.thread_exit.lock().unwrap() = Some(code);
    Ok(0)
}

/// exit_group(2): ends every thread of the process.
pub fn sys_exit_group(t: &mut CurrentTask, code: i32) -> SysResult<u64> {
    t.tg().begin_exit(task::exited(code));
    Ok(0)
}

fn target(pid: i32, t: &CurrentTask) -> WaitTarget {
    match pid {
        -1 => WaitTarget::Any,
        0 => WaitTarget::Pgid(t.tg().state.lock().unwrap().pgid),
        p if p > 0 => WaitTarget::Pid(p),
        // -INT_MIN is no process group: nothing can match (ESRCH, as Linux).
        p => WaitTarget::Pgid(p.checked_neg().unwrap_or(0)),
    }
}

const WNOHANG: u32 = 1;
const WNOWAIT: u32 = 0x0100_0000;

pub fn sys_wait4(t: &mut CurrentTask, pid: i32, status: u64, options: u32, rusage: u64) -> SysResult<u64> {
    if options & !(WNOHANG | 2 | 8 | 0x2000_0000 | 0x4000_0000 | 0x8000_0000) != 0 {
        return Err(Errno::EINVAL);
    }
    if pid == i32::MIN {
        // -INT_MIN names no process group.
        return Err(Errno::ESRCH);
    }
    let tg = t.tg().clone();
    let tgt = target(pid, t);
    let k = t.k.clone();
    let what = WaitFor { exited: true, stopped: options & 2 != 0, continued: options & 8 != 0, keep: false };
    let r = if options & WNOHANG != 0 {
        find_zombie(&k, &tg, tgt, what)?
    } else {
        Some(t.block_on(&[&tg.child_wait], None, || find_zombie(&k, &tg, tgt, what)?.ok_or(Errno::EAGAIN))?)
    };
    let Some((cpid, st, cpu)) = r else { return Ok(0) };
    if status != 0 {
        t.write_mem(status, &st.to_ne_bytes())?;
    }
    if rusage != 0 {
        t.write_mem(rusage, &rusage_bytes(cpu))?;
    }
    Ok(cpid as u64)
}

pub fn sys_waitid(t: &mut CurrentTask, idtype: u32, id: i32, infop: u64, options: u32) -> SysResult<u64> {
    let tgt = match idtype {
        0 => WaitTarget::Any,
        1 => WaitTarget::Pid(id),
        2 => WaitTarget::Pgid(if id == 0 { t.tg().state.lock().unwrap().pgid } else { id }),
        _ => return Err(Errno::EINVAL),
    };
    const WSTOPPED: u32 = 2;
    const WEXITED: u32 = 4;
    const WCONTINUED: u32 = 8;
    if options & (WSTOPPED | WEXITED | WCONTINUED) == 0 {
        return Err(Errno::EINVAL);
    }
    let tg = t.tg().clone();
    let k = t.k.clone();
    let what = WaitFor {
        exited: options & WEXITED != 0,
        stopped: options & WSTOPPED != 0,
        continued: options & WCONTINUED != 0,
        keep: options & WNOWAIT != 0,
    };
    let r = if options & WNOHANG != 0 {
        find_zombie(&k, &tg, tgt, what)?
    } else {
        Some(t.block_on(&[&tg.child_wait], None, || find_zombie(&k, &tg, tgt, what)?.ok_or(Errno::EAGAIN))?)
    };
    let mut info = [0u8; 128];
    if let Some((cpid, st, _)) = r {
        let (code, val) = if st == 0xffff {
            (6, signal::SIGCONT)
        } else if st & 0xff == 0x7f {
            (5, (st >> 8) & 0xff)
        } else if st & 0x7f == 0 {
            (signal::CLD_EXITED, (st >> 8) & 0xff)
        } else if st & 0x80 != 0 {
            (signal::CLD_DUMPED, st & 0x7f)
        } else {
            (signal::CLD_KILLED, st & 0x7f)
        };
        info =
            signal::SigInfo { signo: signal::SIGCHLD, code, pid: cpid, status: val, ..Default::default() }.to_bytes();
    }
    if infop != 0 {
        t.write_mem(infop, &info)?;
    }
    Ok(0)
}

fn rusage_bytes(cpu_ns: u64) -> Vec<u8> {
    let mut b = vec![0u8; 144];
    let us = cpu_ns / 1000;
    b[0..8].copy_from_slice(&((us / 1_000_000) as i64).to_ne_bytes());
    b[8..16].copy_from_slice(&((us % 1_000_000) as i64).to_ne_bytes());
    b
}

pub fn sys_set_tid_address(t: &mut CurrentTask, addr: u64) -> SysResult<u64> {
    *t.task.clear_child_tid.lock().unwrap() = addr;
    Ok(t.task.tid() as u64)
}

pub fn sys_arch_prctl(t: &mut CurrentTask, code: u32, addr: u64) -> SysResult<u64> {
    const ARCH_SET_GS: u32 = 0x1001;
    const ARCH_SET_FS: u32 = 0x1002;
    const ARCH_GET_FS: u32 = 0x1003;
    const ARCH_GET_GS: u32 = 0x1004;
    match code {
        ARCH_SET_FS | ARCH_SET_GS => {
            if addr >= t.k.platform.layout().top {
                return Err(Errno::EPERM);
            }
            if code == ARCH_SET_FS {
                t.regs.fs_base = addr;
            } else {
                t.regs.gs_base = addr;
            }
            Ok(0)
        }
        ARCH_GET_FS => {
            t.write_mem(addr, &t.regs.fs_base.to_ne_bytes())?;
            Ok(0)
        }
        ARCH_GET_GS => {
            t.write_mem(addr, &t.regs.gs_base.to_ne_bytes())?;
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}

pub fn sys_prctl(t: &mut CurrentTask, op: u32, a: [u64; 6]) -> SysResult<u64> {
    const PR_SET_PDEATHSIG: u32 = 1;
    const PR_GET_DUMPABLE: u32 = 3;
    const PR_SET_DUMPABLE: u32 = 4;
    const PR_GET_KEEPCAPS: u32 = 7;
    const PR_SET_KEEPCAPS: u32 = 8;
    const PR_SET_NAME: u32 = 15;
    const PR_GET_NAME: u32 = 16;
    const PR_CAPBSET_READ: u32 = 23;
    const PR_CAPBSET_DROP: u32 = 24;
    const PR_GET_SECUREBITS: u32 = 27;
    const PR_SET_SECUREBITS: u32 = 28;
    const PR_SET_NO_NEW_PRIVS: u32 = 38;
    const PR_GET_NO_NEW_PRIVS: u32 = 39;
    const PR_CAP_AMBIENT: u32 = 47;
    /// The one securebit the Sentry models.
    const SECBIT_KEEP_CAPS: u64 = 1 << 4;
    let arg = a[1];
    match op {
        PR_SET_NAME => {
            let mut name = t.tg().mm().lock().unwrap().read_cstr(arg, 4096).or_else(|e| {
                if e == Errno::ENAMETOOLONG {
                    Ok(Vec::new())
                } else {
                    Err(e)
                }
            })?;
            name.truncate(15);
            *t.tg().comm.lock().unwrap() = name;
            Ok(0)
        }
        PR_GET_NAME => {
            let mut name = t.tg().comm.lock().unwrap().clone();
            name.resize(16, 0);
            t.write_mem(arg, &name)?;
            Ok(0)
        }
        PR_GET_DUMPABLE => Ok(1),
        PR_SET_DUMPABLE | PR_SET_PDEATHSIG => Ok(0),
        PR_SET_NO_NEW_PRIVS => {
            if arg != 1 || a[2..5].iter().any(|&x| x != 0) {
                return Err(Errno::EINVAL);
            }
            t.tg().creds.lock().unwrap().no_new_privs = true;
            Ok(0)
        }
        PR_GET_NO_NEW_PRIVS => {
            if a[1..5].iter().any(|&x| x != 0) {
                return Err(Errno::EINVAL);
            }
            Ok(u64::from(t.tg().creds.lock().unwrap().no_new_privs))
        }
        PR_GET_KEEPCAPS => Ok(u64::from(t.tg().creds.lock().unwrap().keep_caps)),
        PR_SET_KEEPCAPS => {
            if arg > 1 {
                return Err(Errno::EINVAL);
            }
            t.tg().creds.lock().unwrap().keep_caps = arg == 1;
            Ok(0)
        }
        PR_GET_SECUREBITS => Ok(if t.tg().creds.lock().unwrap().keep_caps { SECBIT_KEEP_CAPS } else { 0 }),
        PR_SET_SECUREBITS => {
            let mut c = t.tg().creds.lock().unwrap();
            if !c.has(CAP_SETPCAP) {
                return Err(Errno::EPERM);
            }
            // The other securebits (noroot, no setuid fixup, the locks) are
            // not modelled: refused rather than ignored.
            if arg & !SECBIT_KEEP_CAPS != 0 {
                return Err(Errno::EINVAL);
            }
            c.keep_caps = arg != 0;
            Ok(0)
        }
        PR_CAPBSET_READ => {
            if !capability::valid(arg) {
                return Err(Errno::EINVAL);
            }
            Ok(u64::from(t.tg().creds.lock().unwrap().caps.bounding & capability::bit(arg as u32) != 0))
        }
        PR_CAPBSET_DROP => {
            let mut c = t.tg().creds.lock().unwrap();
            if !c.has(CAP_SETPCAP) {
                return Err(Errno::EPERM);
            }
            if !capability::valid(arg) {
                return Err(Errno::EINVAL);
            }
            c.caps.bounding &= !capability::bit(arg as u32);
            Ok(0)
        }
        PR_CAP_AMBIENT => prctl_cap_ambient(t, arg, a[2], a[3], a[4]),
        _ => Err(Errno::EINVAL),
    }
}

/// prctl(PR_CAP_AMBIENT, op, cap, 0, 0).
fn prctl_cap_ambient(t: &CurrentTask, op: u64, cap: u64, arg4: u64, arg5: u64) -> SysResult<u64> {
    const IS_SET: u64 = 1;
    const RAISE: u64 = 2;
    const LOWER: u64 = 3;
    const CLEAR_ALL: u64 = 4;
    if arg4 != 0 || arg5 != 0 {
        return Err(Errno::EINVAL);
    }
    let mut c = t.tg().creds.lock().unwrap();
    if op == CLEAR_ALL {
        if cap != 0 {
            return Err(Errno::EINVAL);
        }
        c.caps.ambient = 0;
        return Ok(0);
    }
    if !capability::valid(cap) {
        return Err(Errno::EINVAL);
    }
    let bit = capability::bit(cap as u32);
    match op {
        IS_SET => Ok(u64::from(c.caps.ambient & bit != 0)),
        RAISE => {
            // Only what the process may hold and pass on.
            if c.caps.permitted & c.caps.inheritable & bit == 0 {
                return Err(Errno::EPERM);
            }
            c.caps.ambient |= bit;
            Ok(0)
        }
        LOWER => {
            c.caps.ambient &= !bit;
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}

/// The capget/capset header versions: 1 has one 32-bit word per set, 2 and 3 two.
const CAPABILITY_VERSION_1: u32 = 0x1998_0330;
const CAPABILITY_VERSION_2: u32 = 0x2007_1026;
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Reads a capget/capset header: (words per set, pid). An unknown version is
/// answered with the one the kernel prefers, written back, and EINVAL.
fn cap_header(t: &CurrentTask, header: u64) -> SysResult<(usize, i32)> {
    let b = t.read_vec(header, 8)?;
    let version = u32::from_ne_bytes(b[0..4].try_into().expect("4"));
    let pid = i32::from_ne_bytes(b[4..8].try_into().expect("4"));
    match version {
        CAPABILITY_VERSION_1 => Ok((1, pid)),
        CAPABILITY_VERSION_2 | CAPABILITY_VERSION_3 => Ok((2, pid)),
        _ => {
            t.write_mem(header, &CAPABILITY_VERSION_3.to_ne_bytes())?;
            Err(Errno::EINVAL)
        }
    }
}

pub fn sys_capget(t: &mut CurrentTask, header: u64, data: u64) -> SysResult<u64> {
    let (words, pid) = match cap_header(t, header) {
        // A probe for the version: no data pointer, no error.
        Err(Errno::EINVAL) if data == 0 => return Ok(0),
        r => r?,
    };
    if data == 0 {
        return Ok(0);
    }
    if pid < 0 {
        return Err(Errno::EINVAL);
    }
    let caps = if pid == 0 || pid == t.pid() {
        t.tg().creds.lock().unwrap().caps
    } else {
        let g = t.k.group(pid).ok_or(Errno::ESRCH)?;
        let caps = g.creds.lock().unwrap().caps;
        caps
    };
    // struct __user_cap_data_struct { effective, permitted, inheritable }, per word.
    let mut out = Vec::with_capacity(words * 12);
    for w in 0..words {
        for set in [caps.effective, caps.permitted, caps.inheritable] {
            out.extend(((set >> (32 * w)) as u32).to_ne_bytes());
        }
    }
    t.write_mem(data, &out)?;
    Ok(0)
}

pub fn sys_capset(t: &mut CurrentTask, header: u64, data: u64) -> SysResult<u64> {
    let (words, pid) = cap_header(t, header)?;
    // Only one's own capabilities can be set.
    if pid != 0 && pid != t.pid() {
        return Err(Errno::EPERM);
    }
    let b = t.read_vec(data, words * 12)?;
    let word = |w: usize, i: usize| {
        u64::from(u32::from_ne_bytes(b[w * 12 + i * 4..w * 12 + i * 4 + 4].try_into().expect("4")))
    };
    let (mut effective, mut permitted, mut inheritable) = (0, 0, 0);
    for w in 0..words {
        effective |= word(w, 0) << (32 * w);
        permitted |= word(w, 1) << (32 * w);
        inheritable |= word(w, 2) << (32 * w);
    }
    let mut c = t.tg().creds.lock().unwrap();
    c.caps = capability::capset(&c.caps, effective, permitted, inheritable).ok_or(Errno::EPERM)?;
    Ok(0)
}

pub fn sys_uname(t: &mut CurrentTask, buf: u64) -> SysResult<u64> {
    let mut b = vec![0u8; 65 * 6];
    let host = t.k.hostname.lock().unwrap().clone();
    let domain = t.k.domainname_shown();
    let fields: [&[u8]; 6] =
        [b"Linux", &host, crate::RELEASE.as_bytes(), crate::VERSION.as_bytes(), b"x86_64", &domain];
    for (i, f) in fields.iter().enumerate() {
        let n = f.len().min(64);
        b[i * 65..i * 65 + n].copy_from_slice(&f[..n]);
    }
    t.write_mem(buf, &b)?;
    Ok(0)
}

/// sethostname(2) and setdomainname(2): the UTS names are the sandbox's, and
/// changing them needs CAP_SYS_ADMIN.
pub fn sys_setuts(t: &mut CurrentTask, which: u64, name: u64, len: usize) -> SysResult<u64> {
    if !t.capable(CAP_SYS_ADMIN) {
        return Err(Errno::EPERM);
    }
    if len > UTS_NAME_MAX {
        return Err(Errno::EINVAL);
    }
    let n = t.read_vec(name, len)?;
    let slot = if which == abi::sysno::SETHOSTNAME { &t.k.hostname } else { &t.k.domainname };
    *slot.lock().unwrap() = n;
    Ok(0)
}

pub fn sys_getid(t: &mut CurrentTask, n: u64) -> SysResult<u64> {
    let c = t.tg().creds.lock().unwrap();
    Ok(match n {
        abi::sysno::GETUID => c.uid,
        abi::sysno::GETEUID => c.euid,
        abi::sysno::GETGID => c.gid,
        _ => c.egid,
    } as u64)
}

/// setuid, setgid, setreuid, setregid, setresuid, setresgid: CAP_SETUID
/// (CAP_SETGID for groups) may set any id, others only shuffle their own.
/// Changing user ids changes capabilities as on Linux (`fix_setuid`).
pub fn sys_setid(t: &mut CurrentTask, n: u64, a: [u64; 6]) -> SysResult<u64> {
    use abi::sysno as nr;
    const UNCHANGED: u32 = u32::MAX;
    let v = |i: usize| a[i] as u32;
    let mut c = t.tg().creds.lock().unwrap();
    let old = c.clone();
    let user = matches!(n, nr::SETUID | nr::SETREUID | nr::SETRESUID);
    let privileged = c.has(if user { CAP_SETUID } else { CAP_SETGID });
    // (real, effective, saved) of the kind being set.
    let (r, e, s) = if user { (old.uid, old.euid, old.suid) } else { (old.gid, old.egid, old.sgid) };
    let one_of = |id: u32, allowed: &[u32]| id == UNCHANGED || privileged || allowed.contains(&id);
    let (nr_, ne, ns) = match n {
        nr::SETUID | nr::SETGID => {
            let id = v(0);
            if id == UNCHANGED {
                return Err(Errno::EINVAL);
            }
            if privileged {
                (id, id, id)
            } else if id == r || id == s {
                (r, id, s)
            } else {
                return Err(Errno::EPERM);
            }
        }
        nr::SETREUID | nr::SETREGID => {
            let (nr_, ne) = (v(0), v(1));
            if !one_of(nr_, &[r, e]) || !one_of(ne, &[r, e, s]) {
                return Err(Errno::EPERM);
            }
            let new_r = if nr_ == UNCHANGED { r } else { nr_ };
            let new_e = if ne == UNCHANGED { e } else { ne };
            // The saved id follows the effective one when the real id is set,
            // or the effective one is set to anything but the old real id.
            let new_s = if nr_ != UNCHANGED || (ne != UNCHANGED && ne != r) { new_e } else { s };
            (new_r, new_e, new_s)
        }
        _ => {
            let (nr_, ne, ns) = (v(0), v(1), v(2));
            if ![nr_, ne, ns].iter().all(|&id| one_of(id, &[r, e, s])) {
                return Err(Errno::EPERM);
            }
            let pick = |new: u32, cur: u32| if new == UNCHANGED { cur } else { new };
            (pick(nr_, r), pick(ne, e), pick(ns, s))
        }
    };
    if user {
        (c.uid, c.euid, c.suid) = (nr_, ne, ns);
        capability::fix_setuid(&old, &mut c);
    } else {
        (c.gid, c.egid, c.sgid) = (nr_, ne, ns);
    }
    Ok(0)
}

pub fn sys_getresid(t: &mut CurrentTask, n: u64, a: [u64; 6]) -> SysResult<u64> {
    let c = t.tg().creds.lock().unwrap().clone();
    let ids = if n == abi::sysno::GETRESUID { [c.uid, c.euid, c.suid] } else { [c.gid, c.egid, c.sgid] };
    for (i, id) in ids.iter().enumerate() {
        t.write_mem(a[i], &id.to_ne_bytes())?;
    }
    Ok(0)
}

pub fn sys_getgroups(t: &mut CurrentTask, size: i32, list: u64) -> SysResult<u64> {
    let g = t.tg().creds.lock().unwrap().groups.clone();
    if size < 0 {
        return Err(Errno::EINVAL);
    }
    if size == 0 {
        return Ok(g.len() as u64);
    }
    if (size as usize) < g.len() {
        return Err(Errno::EINVAL);
    }
    let b: Vec<u8> = g.iter().flat_map(|x| x.to_ne_bytes()).collect();
    t.write_mem(list, &b)?;
    Ok(g.len() as u64)
}

pub fn sys_setgroups(t: &mut CurrentTask, size: usize, list: u64) -> SysResult<u64> {
    if size > 65536 {
        return Err(Errno::EINVAL);
    }
    if !t.capable(CAP_SETGID) {
        return Err(Errno::EPERM);
    }
    let b = t.read_vec(list, size * 4)?;
    let g = b.chunks(4).map(|c| u32::from_ne_bytes(c.try_into().expect("4"))).collect();
    t.tg().creds.lock().unwrap().groups = g;
    Ok(0)
}

pub fn sys_setpgid(t: &mut CurrentTask, pid: i32, pgid: i32) -> SysResult<u64> {
    if pgid < 0 {
        return Err(Errno::EINVAL);
    }
    let tg = if pid == 0 || pid == t.pid() {
        t.tg().clone()
    } else {
        let g = t.k.group(pid).ok_or(Errno::ESRCH)?;
        if g.ppid() != t.pid() {
            return Err(Errno::ESRCH);
        }
        g
    };
    let pgid = if pgid == 0 { tg.pid } else { pgid };
    let mut st = tg.state.lock().unwrap();
    if st.sid == tg.pid {
        return Err(Errno::EPERM);
    }
    st.pgid = pgid;
    Ok(0)
}

pub fn sys_getpgid(t: &mut CurrentTask, pid: i32) -> SysResult<u64> {
    let tg = if pid == 0 { t.tg().clone() } else { t.k.group(pid).ok_or(Errno::ESRCH)? };
    let pgid = tg.state.lock().unwrap().pgid;
    Ok(pgid as u64)
}

pub fn sys_setsid(t: &mut CurrentTask) -> SysResult<u64> {
    let pid = t.pid();
    let groups: Vec<_> = t.k.pids.lock().unwrap().groups.values().cloned().collect();
    if groups.iter().any(|g| g.pid != pid && g.state.lock().unwrap().pgid == pid) {
        return Err(Errno::EPERM);
    }
    let mut st = t.tg().state.lock().unwrap();
    if st.pgid == pid {
        return Err(Errno::EPERM);
    }
    st.pgid = pid;
    st.sid = pid;
    Ok(pid as u64)
}

pub fn sys_getsid(t: &mut CurrentTask, pid: i32) -> SysResult<u64> {
    let tg = if pid == 0 { t.tg().clone() } else { t.k.group(pid).ok_or(Errno::ESRCH)? };
    let sid = tg.state.lock().unwrap().sid;
    Ok(sid as u64)
}

pub fn sys_prlimit64(t: &mut CurrentTask, pid: i32, res: u32, new: u64, old: u64) -> SysResult<u64> {
    let tg = if pid == 0 || pid == t.pid() { t.tg().clone() } else { t.k.group(pid).ok_or(Errno::ESRCH)? };
    let which = res as usize;
    if which >= task::RLIM_NLIMITS {
        return Err(Errno::EINVAL);
    }
    let new = if new != 0 {
        let b = t.read_vec(new, 16)?;
        let cur = u64::from_ne_bytes(b[0..8].try_into().expect("8"));
        let max = u64::from_ne_bytes(b[8..16].try_into().expect("8"));
        if cur > max {
            return Err(Errno::EINVAL);
        }
        if which == task::RLIMIT_NOFILE && max > crate::vfs::fdtable::NR_OPEN as u64 {
            return Err(Errno::EPERM);
        }
        Some((cur, max))
    } else {
        None
    };
    let prev = {
        let mut r = tg.rlimits.lock().unwrap();
        let prev = r[which];
        if let Some((cur, max)) = new {
            // Raising a hard limit needs CAP_SYS_RESOURCE.
            if max > prev.1 && !t.capable(CAP_SYS_RESOURCE) {
                return Err(Errno::EPERM);
            }
            r[which] = (cur, max);
        }
        prev
    };
    if let (Some((cur, _)), task::RLIMIT_NOFILE) = (new, which) {
        tg.fds.lock().unwrap().limit = cur.min(crate::vfs::fdtable::NR_OPEN as u64) as u32;
    }
    if old != 0 {
        let mut b = prev.0.to_ne_bytes().to_vec();
        b.extend(prev.1.to_ne_bytes());
        t.write_mem(old, &b)?;
    }
    Ok(0)
}

pub fn sys_getrusage(t: &mut CurrentTask, who: i32, buf: u64) -> SysResult<u64> {
    let cpu = match who {
        0 => t.tg().threads_cpu(),
        -1 => t.tg().state.lock().unwrap().children_cpu_ns,
        1 => t.task.cpu_ns.load(std::sync::atomic::Ordering::Relaxed),
        _ => return Err(Errno::EINVAL),
    };
    t.write_mem(buf, &rusage_bytes(cpu))?;
    Ok(0)
}

pub fn sys_times(t: &mut CurrentTask, buf: u64) -> SysResult<u64> {
    let me = t.tg().threads_cpu() / 10_000_000;
    let ch = t.tg().state.lock().unwrap().children_cpu_ns / 10_000_000;
    if buf != 0 {
        let b: Vec<u8> = [me, 0, ch, 0].iter().flat_map(|v| v.to_ne_bytes()).collect();
        t.write_mem(buf, &b)?;
    }
    Ok((t.k.uptime() * 100.0) as u64)
}

pub fn sys_sysinfo(t: &mut CurrentTask, buf: u64) -> SysResult<u64> {
    let mut b = vec![0u8; 112];
    let total: u64 = 2 << 30;
    let used = t.k.mem.resident_bytes();
    let nprocs = t.k.pids.lock().unwrap().groups.len() as u16;
    b[0..8].copy_from_slice(&(t.k.uptime() as i64).to_ne_bytes());
    b[32..40].copy_from_slice(&total.to_ne_bytes());
    b[40..48].copy_from_slice(&total.saturating_sub(used).to_ne_bytes());
    b[80..82].copy_from_slice(&nprocs.to_ne_bytes());
    b[104..108].copy_from_slice(&1u32.to_ne_bytes());
    t.write_mem(buf, &b)?;
    Ok(0)
}

pub fn sys_getrandom(t: &mut CurrentTask, buf: u64, len: usize) -> SysResult<u64> {
    // Linux gives at most 32 MiB per call; the Sentry holds 64 KiB of it at a time.
    const MAX: usize = 1 << 25;
    let mut piece = [0u8; 64 << 10];
    let (len, mut done) = (len.min(MAX), 0);
    while done < len {
        let n = piece.len().min(len - done);
        host::sys::getrandom(&mut piece[..n]).map_err(|_| Errno::EIO)?;
        match t.write_mem(buf.wrapping_add(done as u64), &piece[..n]) {
            Ok(()) => done += n,
            Err(_) if done > 0 => break,
            Err(e) => return Err(e),
        }
    }
    Ok(done as u64)
}

pub fn sys_sched_getaffinity(t: &mut CurrentTask, len: usize, mask: u64) -> SysResult<u64> {
    let n = host::sys::cpu_count();
    let bytes = n.div_ceil(64) * 8;
    if len < bytes || !len.is_multiple_of(8) {
        return Err(Errno::EINVAL);
    }
    let mut b = vec![0u8; bytes];
    for i in 0..n {
        b[i / 8] |= 1 << (i % 8);
    }
    t.write_mem(mask, &b)?;
    Ok(bytes as u64)
}

pub fn sys_getcpu(t: &mut CurrentTask, cpu: u64, node: u64) -> SysResult<u64> {
    if cpu != 0 {
        t.write_mem(cpu, &0u32.to_ne_bytes())?;
    }
    if node != 0 {
        t.write_mem(node, &0u32.to_ne_bytes())?;
    }
    Ok(0)
}

pub fn sys_futex(t: &mut CurrentTask, a: [u64; 6]) -> SysResult<u64> {
    const FUTEX_WAIT: u32 = 0;
    const FUTEX_WAKE: u32 = 1;
    const FUTEX_REQUEUE: u32 = 3;
    const FUTEX_CMP_REQUEUE: u32 = 4;
    const FUTEX_WAKE_OP: u32 = 5;
    const FUTEX_WAIT_BITSET: u32 = 9;
    const FUTEX_WAKE_BITSET: u32 = 10;
    const FUTEX_CLOCK_REALTIME: u32 = 256;
    let (addr, op, val, timeout, addr2, val3) = (a[0], a[1] as u32, a[2] as u32, a[3], a[4], a[5] as u32);
    let f = &t.k.futexes;
    let deadline = |t: &CurrentTask, absolute: bool| -> SysResult<Option<std::time::Instant>> {
        if timeout == 0 {
            return Ok(None);
        }
        let b = t.read_vec(timeout, 16)?;
        let sec = i64::from_ne_bytes(b[0..8].try_into().expect("8"));
        let nsec = i64::from_ne_bytes(b[8..16].try_into().expect("8"));
        if sec < 0 || !(0..1_000_000_000).contains(&nsec) {
            return Err(Errno::EINVAL);
        }
        let d = std::time::Duration::new(sec as u64, nsec as u32);
        let rel = if absolute {
            let clock = if op & FUTEX_CLOCK_REALTIME != 0 { 0 } else { 1 };
            let (s, n) = host::sys::clock_gettime(clock).map_err(|_| Errno::EINVAL)?;
            d.saturating_sub(std::time::Duration::new(s as u64, n as u32))
        } else {
            d
        };
        Ok(std::time::Instant::now().checked_add(rel))
    };
    let private = op & 128 != 0; // FUTEX_PRIVATE_FLAG
    let r = match op & 0x7f {
        FUTEX_WAIT => f.wait(t, addr, val, u32::MAX, deadline(t, false)?, private),
        FUTEX_WAIT_BITSET => f.wait(t, addr, val, val3, deadline(t, true)?, private),
        FUTEX_WAKE => f.wake(t, addr, val, u32::MAX, private),
        FUTEX_WAKE_BITSET => f.wake(t, addr, val, val3, private),
        FUTEX_REQUEUE => f.requeue(t, addr, val, addr2, timeout as u32, None, private),
        FUTEX_CMP_REQUEUE => f.requeue(t, addr, val, addr2, timeout as u32, Some(val3), private),
        FUTEX_WAKE_OP => f.wake_op(t, addr, val, addr2, timeout as u32, val3, private),
        _ => {
            // PI futexes and FUTEX_WAIT_REQUEUE_PI are not implemented yet.
            return Err(super::unimplemented(t, abi::sysno::FUTEX));
        }
    };
    match r {
        Err(Errno::ERESTARTSYS) if timeout != 0 => Err(Errno::EINTR),
        r => r,
    }
}

/// clone3: the same as clone, with its arguments in a struct.
pub fn sys_clone3(t: &mut CurrentTask, args: u64, size: usize) -> SysResult<u64> {
    if !(64..=4096).contains(&size) {
        return Err(Errno::EINVAL);
    }
    let b = t.read_vec(args, size)?;
    let f = |i: usize| u64::from_ne_bytes(b[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
    // f(1) is the pidfd pointer, meaningful only with CLONE_PIDFD, which is refused.
    let (flags, child_tid, parent_tid, exit_signal, stack, stack_size, tls) =
        (f(0), f(2), f(3), f(4), f(5), f(6), f(7));
    const CLONE_PIDFD: u64 = 0x1000;
    if flags & CLONE_PIDFD != 0 || exit_signal > 64 || (size > 64 && b[64..].iter().any(|&x| x != 0)) {
        // pidfds, set_tid and cgroup placement are not supported.
        return Err(Errno::EINVAL);
    }
    if (stack == 0) != (stack_size == 0) {
        return Err(Errno::EINVAL);
    }
    let top = if stack == 0 { 0 } else { stack.checked_add(stack_size).ok_or(Errno::EINVAL)? };
    sys_clone(t, (flags & !0xff) | exit_signal, top, parent_tid, child_tid, tls)
}

pub fn sys_set_robust_list(t: &mut CurrentTask, head: u64, len: usize) -> SysResult<u64> {
    if len != 24 {
        return Err(Errno::EINVAL);
    }
    *t.task.robust_list.lock().unwrap() = head;
    Ok(0)
}

pub fn sys_get_robust_list(t: &mut CurrentTask, tid: i32, head: u64, len: u64) -> SysResult<u64> {
    let task = if tid == 0 { t.task.clone() } else { t.k.task(tid).ok_or(Errno::ESRCH)? };
    let h = *task.robust_list.lock().unwrap();
    t.write_mem(head, &h.to_ne_bytes())?;
    t.write_mem(len, &24u64.to_ne_bytes())?;
    Ok(0)
}

pub fn sys_sched_param(t: &mut CurrentTask, n: u64, a: [u64; 6]) -> SysResult<u64> {
    use abi::sysno as nr;
    // Every task runs SCHED_OTHER at priority 0; the host schedules the stubs.
    let pid = a[0] as i32;
    if pid < 0 {
        return Err(Errno::EINVAL);
    }
    if pid != 0 && t.k.task(pid).is_none() {
        return Err(Errno::ESRCH);
    }
    match n {
        nr::SCHED_GETSCHEDULER => Ok(0),
        nr::SCHED_GETPARAM => {
            t.write_mem(a[1], &0i32.to_ne_bytes())?;
            Ok(0)
        }
        nr::SCHED_SETSCHEDULER => match a[1] {
            0 | 3 | 5 => Ok(0), // SCHED_OTHER, SCHED_BATCH, SCHED_IDLE
            1 | 2 => Err(Errno::EPERM),
            _ => Err(Errno::EINVAL),
        },
        nr::SCHED_SETPARAM => Ok(0),
        nr::SCHED_SETAFFINITY => Ok(0),
        _ => Err(Errno::EINVAL),
    }
}

pub fn sys_membarrier(_t: &mut CurrentTask, cmd: i32, flags: u32) -> SysResult<u64> {
    const MEMBARRIER_CMD_QUERY: i32 = 0;
    if flags != 0 {
        return Err(Errno::EINVAL);
    }
    match cmd {
        // No membarrier command is offered: a query says so, every command is refused.
        MEMBARRIER_CMD_QUERY => Ok(0),
        _ => Err(Errno::EINVAL),
    }
}
