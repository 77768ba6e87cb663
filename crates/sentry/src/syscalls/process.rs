//! Process syscalls: clone/fork/vfork, execve, exit, wait, ids, sessions,
//! limits, uname, futex and the other per-process knobs.

use std::sync::Arc;

use abi::flags::CloneFlags;
use abi::process::*;
use abi::signal::{SignalInfo, CLD_CONTINUED, CLD_STOPPED};
use abi::x86::{FxSave, ARCH_GET_FS, ARCH_GET_GS, ARCH_SET_FS, ARCH_SET_GS};
use abi::{AsBytes, Errno, FromZeroes};

use crate::auth::capability::{self, CAP_SETGID, CAP_SETPCAP, CAP_SETUID, CAP_SYS_ADMIN, CAP_SYS_RESOURCE};
use crate::kernel::current::CurrentTask;
use crate::kernel::exit::{find_zombie, WaitFor, WaitTarget};
use crate::kernel::signal::{self, SigAction};
use crate::kernel::task::{self, Task, ThreadGroup};
use crate::loader;
use crate::mm::MemoryManager;
use crate::taskfs::sysctl::UTS_NAME_MAX;
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
        return Err(Errno::EPERM);
    }
    if has(flags, CloneFlags::CLONE_THREAD) {
        return clone_thread(t, flags, stack, ptid, ctid, tls);
    }
    if has_any(flags, CloneFlags::CLONE_SIGHAND | CloneFlags::CLONE_FS | CloneFlags::CLONE_FILES) {
        // Processes sharing fs or fd tables without being threads are not supported yet.
        super::unimplemented(t, abi::sysno::CLONE);
        return Err(Errno::EINVAL);
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
        return Err(Errno::EAGAIN);
    }
    if has_any(flags, CloneFlags::CLONE_VFORK | CloneFlags::CLONE_VM) {
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

pub fn sys_wait4(t: &mut CurrentTask, pid: i32, status: u64, options: u32, rusage: u64) -> SysResult<u64> {
    if options & !(WNOHANG | WUNTRACED | WCONTINUED | WNOTHREAD | WALL | WCLONE) != 0 {
        return Err(Errno::EINVAL);
    }
    if pid == i32::MIN {
        // -INT_MIN names no process group.
        return Err(Errno::ESRCH);
    }
    let tg = t.tg().clone();
    let tgt = target(pid, t);
    let k = t.k.clone();
    let what =
        WaitFor { exited: true, stopped: options & WUNTRACED != 0, continued: options & WCONTINUED != 0, keep: false };
    let r = if options & WNOHANG != 0 {
        find_zombie(&k, &tg, tgt, what)?
    } else {
        Some(t.block_on(&[&tg.child_wait], None, || find_zombie(&k, &tg, tgt, what)?.ok_or(Errno::EAGAIN))?)
    };
    let Some((cpid, st, cpu)) = r else { return Ok(0) };
    if status != 0 {
        t.write_obj(status, &st)?;
    }
    if rusage != 0 {
        t.write_obj(rusage, &rusage_of(cpu))?;
    }
    Ok(cpid as u64)
}

pub fn sys_waitid(t: &mut CurrentTask, idtype: u32, id: i32, infop: u64, options: u32) -> SysResult<u64> {
    let tgt = match idtype {
        P_ALL => WaitTarget::Any,
        P_PID => WaitTarget::Pid(id),
        P_PGID => WaitTarget::Pgid(if id == 0 { t.tg().state.lock().unwrap().pgid } else { id }),
        _ => return Err(Errno::EINVAL),
    };
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
    let mut info = SignalInfo::new_zeroed();
    if let Some((cpid, st, _)) = r {
        let (code, val) = if st == 0xffff {
            (CLD_CONTINUED, signal::SIGCONT)
        } else if st & 0xff == 0x7f {
            (CLD_STOPPED, (st >> 8) & 0xff)
        } else if st & 0x7f == 0 {
            (signal::CLD_EXITED, (st >> 8) & 0xff)
        } else if st & 0x80 != 0 {
            (signal::CLD_DUMPED, st & 0x7f)
        } else {
            (signal::CLD_KILLED, st & 0x7f)
        };
        info =
            signal::SigInfo { signo: signal::SIGCHLD, code, pid: cpid, status: val, ..Default::default() }.to_siginfo();
    }
    if infop != 0 {
        t.write_obj(infop, &info)?;
    }
    Ok(0)
}

/// A `struct rusage` of `cpu_ns` user time, the only usage moat counts.
fn rusage_of(cpu_ns: u64) -> Rusage {
    Rusage { utime: abi::time::Timeval::from_micros((cpu_ns / 1000) as i64), ..Default::default() }
}

pub fn sys_set_tid_address(t: &mut CurrentTask, addr: u64) -> SysResult<u64> {
    *t.task.clear_child_tid.lock().unwrap() = addr;
    Ok(t.task.tid() as u64)
}

pub fn sys_arch_prctl(t: &mut CurrentTask, code: u32, addr: u64) -> SysResult<u64> {
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
            t.write_obj(addr, &t.regs.fs_base)?;
            Ok(0)
        }
        ARCH_GET_GS => {
            t.write_obj(addr, &t.regs.gs_base)?;
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}

pub fn sys_prctl(t: &mut CurrentTask, op: u32, a: [u64; 6]) -> SysResult<u64> {
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
            // KEEP_CAPS is the one securebit modelled; the others (noroot,
            // no setuid fixup, the locks) are refused rather than ignored.
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
    if arg4 != 0 || arg5 != 0 {
        return Err(Errno::EINVAL);
    }
    let mut c = t.tg().creds.lock().unwrap();
    if op == PR_CAP_AMBIENT_CLEAR_ALL {
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
        PR_CAP_AMBIENT_IS_SET => Ok(u64::from(c.caps.ambient & bit != 0)),
        PR_CAP_AMBIENT_RAISE => {
            // Only what the process may hold and pass on.
            if c.caps.permitted & c.caps.inheritable & bit == 0 {
                return Err(Errno::EPERM);
            }
            c.caps.ambient |= bit;
            Ok(0)
        }
        PR_CAP_AMBIENT_LOWER => {
            c.caps.ambient &= !bit;
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}

/// Reads a capget/capset header: (words per set, pid). An unknown version is
/// answered with the one the kernel prefers, written back, and EINVAL.
fn cap_header(t: &CurrentTask, header: u64) -> SysResult<(usize, i32)> {
    let CapUserHeader { version, pid } = t.read_obj(header)?;
    match version {
        LINUX_CAPABILITY_VERSION_1 => Ok((1, pid)),
        LINUX_CAPABILITY_VERSION_2 | LINUX_CAPABILITY_VERSION_3 => Ok((2, pid)),
        _ => {
            t.write_obj(header, &LINUX_CAPABILITY_VERSION_3)?;
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
    let word = |set: u64, w: usize| (set >> (32 * w)) as u32;
    let out: Vec<CapUserData> = (0..words)
        .map(|w| CapUserData {
            effective: word(caps.effective, w),
            permitted: word(caps.permitted, w),
            inheritable: word(caps.inheritable, w),
        })
        .collect();
    t.write_obj(data, out.as_slice())?;
    Ok(0)
}

pub fn sys_capset(t: &mut CurrentTask, header: u64, data: u64) -> SysResult<u64> {
    let (words, pid) = cap_header(t, header)?;
    // Only one's own capabilities can be set.
    if pid != 0 && pid != t.pid() {
        return Err(Errno::EPERM);
    }
    let mut data_words = vec![CapUserData::default(); words];
    t.read_mem(data, data_words.as_bytes_mut())?;
    let (mut effective, mut permitted, mut inheritable) = (0, 0, 0);
    for (w, d) in data_words.iter().enumerate() {
        effective |= u64::from(d.effective) << (32 * w);
        permitted |= u64::from(d.permitted) << (32 * w);
        inheritable |= u64::from(d.inheritable) << (32 * w);
    }
    let mut c = t.tg().creds.lock().unwrap();
    c.caps = capability::capset(&c.caps, effective, permitted, inheritable).ok_or(Errno::EPERM)?;
    Ok(0)
}

pub fn sys_uname(t: &mut CurrentTask, buf: u64) -> SysResult<u64> {
    /// A utsname field: the name, cut to leave room for its NUL.
    fn field(name: &[u8]) -> [u8; UTS_FIELD_LEN] {
        let mut f = [0u8; UTS_FIELD_LEN];
        let n = name.len().min(UTS_FIELD_LEN - 1);
        f[..n].copy_from_slice(&name[..n]);
        f
    }
    let host = t.k.hostname.lock().unwrap().clone();
    let uts = Utsname {
        sysname: field(b"Linux"),
        nodename: field(&host),
        release: field(crate::RELEASE.as_bytes()),
        version: field(crate::VERSION.as_bytes()),
        machine: field(b"x86_64"),
        domainname: field(&t.k.domainname_shown()),
    };
    t.write_obj(buf, &uts)?;
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
        t.write_obj(a[i], id)?;
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
    t.write_obj(list, g.as_slice())?;
    Ok(g.len() as u64)
}

pub fn sys_setgroups(t: &mut CurrentTask, size: usize, list: u64) -> SysResult<u64> {
    if size > 65536 {
        return Err(Errno::EINVAL);
    }
    if !t.capable(CAP_SETGID) {
        return Err(Errno::EPERM);
    }
    let mut g = vec![0u32; size];
    t.read_mem(list, g.as_bytes_mut())?;
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
    if res >= RLIM_NLIMITS {
        return Err(Errno::EINVAL);
    }
    let which = res as usize;
    let new = if new != 0 {
        let Rlimit { cur, max } = t.read_obj(new)?;
        if cur > max {
            return Err(Errno::EINVAL);
        }
        if res == RLIMIT_NOFILE && max > crate::vfs::fdtable::NR_OPEN as u64 {
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
    if let (Some((cur, _)), RLIMIT_NOFILE) = (new, res) {
        tg.fds.lock().unwrap().limit = cur.min(crate::vfs::fdtable::NR_OPEN as u64) as u32;
    }
    if old != 0 {
        t.write_obj(old, &Rlimit { cur: prev.0, max: prev.1 })?;
    }
    Ok(0)
}

pub fn sys_getrusage(t: &mut CurrentTask, who: i32, buf: u64) -> SysResult<u64> {
    let cpu = match who {
        RUSAGE_SELF => t.tg().threads_cpu(),
        RUSAGE_CHILDREN => t.tg().state.lock().unwrap().children_cpu_ns,
        RUSAGE_THREAD => t.task.cpu_ns.load(std::sync::atomic::Ordering::Relaxed),
        _ => return Err(Errno::EINVAL),
    };
    t.write_obj(buf, &rusage_of(cpu))?;
    Ok(0)
}

pub fn sys_times(t: &mut CurrentTask, buf: u64) -> SysResult<u64> {
    let me = t.tg().threads_cpu() / 10_000_000;
    let ch = t.tg().state.lock().unwrap().children_cpu_ns / 10_000_000;
    if buf != 0 {
        t.write_obj(buf, &Tms { utime: me as i64, stime: 0, cutime: ch as i64, cstime: 0 })?;
    }
    Ok((t.k.uptime() * 100.0) as u64)
}

pub fn sys_sysinfo(t: &mut CurrentTask, buf: u64) -> SysResult<u64> {
    let total: u64 = 2 << 30;
    let used = t.k.mem.resident_bytes();
    let info = Sysinfo {
        uptime: t.k.uptime() as i64,
        totalram: total,
        freeram: total.saturating_sub(used),
        procs: t.k.pids.lock().unwrap().groups.len() as u16,
        mem_unit: 1,
        ..Default::default()
    };
    t.write_obj(buf, &info)?;
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
        t.write_obj(cpu, &0u32)?;
    }
    if node != 0 {
        t.write_obj(node, &0u32)?;
    }
    Ok(0)
}

pub fn sys_futex(t: &mut CurrentTask, a: [u64; 6]) -> SysResult<u64> {
    use abi::futex::*;
    use abi::time::{Timespec, CLOCK_MONOTONIC, CLOCK_REALTIME};
    let (addr, op, val, timeout, addr2, val3) = (a[0], a[1] as u32, a[2] as u32, a[3], a[4], a[5] as u32);
    let f = &t.k.futexes;
    let deadline = |t: &CurrentTask, absolute: bool| -> SysResult<Option<std::time::Instant>> {
        if timeout == 0 {
            return Ok(None);
        }
        let d = t.read_obj::<Timespec>(timeout)?.duration().ok_or(Errno::EINVAL)?;
        let rel = if absolute {
            let clock = if op & FUTEX_CLOCK_REALTIME != 0 { CLOCK_REALTIME } else { CLOCK_MONOTONIC };
            let (s, n) = host::sys::clock_gettime(clock).map_err(|_| Errno::EINVAL)?;
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
    if !(CLONE_ARGS_SIZE_VER0..=4096).contains(&size) {
        return Err(Errno::EINVAL);
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
        return Err(Errno::EINVAL);
    }
    if (stack == 0) != (stack_size == 0) {
        return Err(Errno::EINVAL);
    }
    let top = if stack == 0 { 0 } else { stack.checked_add(stack_size).ok_or(Errno::EINVAL)? };
    sys_clone(t, (flags & !0xff) | exit_signal, top, parent_tid, child_tid, tls)
}

pub fn sys_set_robust_list(t: &mut CurrentTask, head: u64, len: usize) -> SysResult<u64> {
    if len != std::mem::size_of::<abi::futex::RobustListHead>() {
        return Err(Errno::EINVAL);
    }
    *t.task.robust_list.lock().unwrap() = head;
    Ok(0)
}

pub fn sys_get_robust_list(t: &mut CurrentTask, tid: i32, head: u64, len: u64) -> SysResult<u64> {
    let task = if tid == 0 { t.task.clone() } else { t.k.task(tid).ok_or(Errno::ESRCH)? };
    let h = *task.robust_list.lock().unwrap();
    t.write_obj(head, &h)?;
    t.write_obj(len, &(std::mem::size_of::<abi::futex::RobustListHead>() as u64))?;
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
            t.write_obj(a[1], &SchedParam { priority: 0 })?;
            Ok(0)
        }
        nr::SCHED_SETSCHEDULER => match i32::try_from(a[1]) {
            Ok(SCHED_OTHER | SCHED_BATCH | SCHED_IDLE) => Ok(0),
            Ok(SCHED_FIFO | SCHED_RR) => Err(Errno::EPERM),
            _ => Err(Errno::EINVAL),
        },
        nr::SCHED_SETPARAM => Ok(0),
        nr::SCHED_SETAFFINITY => Ok(0),
        _ => Err(Errno::EINVAL),
    }
}

pub fn sys_membarrier(_t: &mut CurrentTask, cmd: i32, flags: u32) -> SysResult<u64> {
    if flags != 0 {
        return Err(Errno::EINVAL);
    }
    match cmd {
        // No membarrier command is offered: a query says so, every command is refused.
        MEMBARRIER_CMD_QUERY => Ok(0),
        _ => Err(Errno::EINVAL),
    }
}
