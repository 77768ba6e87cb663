//! ptrace of stub threads: attach, run until the next syscall or signal
//! (PTRACE_SYSEMU), registers, and syscalls injected at the stub's own
//! `syscall` instruction.

use std::io;

/// The general-purpose registers of an app thread (the kernel's `user_regs_struct`).
pub type Regs = libc::user_regs_struct;

/// Why a traced stub thread stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The app executed `syscall` in 64-bit mode; it was not run (SYSEMU).
    Syscall,
    /// The app made a system call some other way: `int $0x80` (from either
    /// mode), `sysenter`, or `syscall` in 32-bit compatibility mode. It was not
    /// run; the registers are as the host saw them (the 32-bit number in rax).
    CompatSyscall,
    /// The app called vsyscall entry `nr` (gettimeofday, time or getcpu); the
    /// host's vsyscall emulation skipped it and returned to the caller (rip
    /// and rsp are the caller's): set rax to the result and run on.
    Vsyscall { nr: u64 },
    /// A host signal arrived for the stub: a fault from app code (SIGSEGV, SIGBUS, SIGFPE,
    /// SIGILL, SIGTRAP) or a kick from the Sentry. Carries signo, si_code and si_addr.
    Signal { signo: i32, code: i32, addr: u64 },
    /// The stub thread is gone (killed, or exited); carries the raw wait status.
    Gone(i32),
}

/// A stub thread traced by the calling Sentry thread. Every method must be called from
/// the host thread that attached it (ptrace's rule); the type is deliberately !Send.
#[derive(Debug)]
pub struct Tracee {
    process: std::sync::Arc<crate::stub::StubProcess>,
    pid: i32,
    tid: i32,
    inject_ip: u64,
    _not_send: std::marker::PhantomData<*const ()>,
}

const NT_X86_XSTATE: usize = 0x202;

/// si_code of a SIGSYS raised by a seccomp filter.
const SYS_SECCOMP: i32 = 1;

/// Signals the CPU (or the stub's filter) raises for an instruction of the thread itself.
const FAULTS: [i32; 5] = [libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE, libc::SIGSYS];

/// Which code segment [`user_mode`] gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 64-bit mode, always: what the Sentry itself starts (an injected call,
    /// a signal handler, a new thread, a new program, `rt_sigreturn`).
    Sixty4,
    /// The mode the thread was in when it stopped: 32-bit code the app
    /// switched to itself resumes there. Only for registers read from the
    /// stopped thread: any system call it makes from there stops as a
    /// [`StopReason::CompatSyscall`], so the mode is the app's own business.
    AsStopped,
}

/// `regs` as the host may be given them: user segments the Sentry chose
/// (64-bit code and stack, or the app's own 32-bit code segment under
/// [`Mode::AsStopped`]), only the flags a program may set, interrupts on.
/// App code chooses every register; none it chose may leave it running
/// outside the tracer's control.
pub fn user_mode(regs: &Regs, mode: Mode) -> Regs {
    let mut r = *regs;
    r.cs = match mode {
        Mode::AsStopped if regs.cs == abi::x86::USER32_CS => abi::x86::USER32_CS,
        _ => abi::x86::USER_CS,
    };
    r.ss = abi::x86::USER_DS;
    r.eflags = (regs.eflags & abi::x86::EFLAGS_USER) | abi::x86::EFLAGS_IF | abi::x86::EFLAGS_FIXED;
    r
}
/// A register set of zeros.
pub fn zeroed_regs() -> Regs {
    // SAFETY: user_regs_struct is plain integers; all zeros is a valid value.
    unsafe { std::mem::zeroed() }
}

/// Room for the largest XSAVE layout (AVX-512 with AMX tiles is under 12 KiB).
const XSTATE_MAX: usize = 16384;

fn ptrace(req: libc::c_uint, tid: i32, addr: usize, data: usize) -> io::Result<libc::c_long> {
    // SAFETY: every caller passes a request whose addr/data are either integers or pointers to
    // live, correctly sized buffers owned by the caller for the duration of the call.
    let r = unsafe { libc::ptrace(req, tid, addr, data) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(r)
}

fn wait(tid: i32) -> io::Result<i32> {
    let mut status = 0;
    loop {
        // SAFETY: status is a valid out-pointer.
        let r = unsafe { libc::waitpid(tid, &mut status, libc::__WALL) };
        if r >= 0 {
            return Ok(status);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

impl Tracee {
    /// Seizes the parked stub thread `tid` of process `pid` and stops it.
    pub(crate) fn seize(
        process: std::sync::Arc<crate::stub::StubProcess>,
        tid: i32,
        inject_ip: u64,
    ) -> io::Result<Tracee> {
        let pid = process.pid;
        let opts = libc::PTRACE_O_TRACESYSGOOD | libc::PTRACE_O_EXITKILL;
        ptrace(libc::PTRACE_SEIZE, tid, 0, opts as usize)?;
        ptrace(libc::PTRACE_INTERRUPT, tid, 0, 0)?;
        let t = Tracee { process, pid, tid, inject_ip, _not_send: std::marker::PhantomData };
        loop {
            let st = wait(tid)?;
            if libc::WIFSTOPPED(st) && (st >> 16) == libc::PTRACE_EVENT_STOP {
                break;
            }
            if !libc::WIFSTOPPED(st) {
                return Err(io::Error::other(format!("stub {tid} died while being attached (status {st:#x})")));
            }
            // A signal-delivery stop before the interrupt: suppress it and wait again.
            ptrace(libc::PTRACE_CONT, tid, 0, 0)?;
        }
        Ok(t)
    }

    /// Host process id of the stub.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Host thread id of the stub thread.
    pub fn tid(&self) -> i32 {
        self.tid
    }

    /// Reads the general-purpose registers.
    pub fn get_regs(&self) -> io::Result<Regs> {
        // SAFETY: user_regs_struct is plain data.
        let mut regs: Regs = unsafe { std::mem::zeroed() };
        ptrace(libc::PTRACE_GETREGS, self.tid, 0, &mut regs as *mut Regs as usize)?;
        Ok(regs)
    }

    /// Writes the general-purpose registers.
    pub fn set_regs(&self, regs: &Regs) -> io::Result<()> {
        ptrace(libc::PTRACE_SETREGS, self.tid, 0, regs as *const Regs as usize)?;
        Ok(())
    }

    /// Writes the legacy FXSAVE area.
    pub fn set_fpregs(&self, buf: &[u8; 512]) -> io::Result<()> {
        ptrace(libc::PTRACE_SETFPREGS, self.tid, 0, buf.as_ptr() as usize)?;
        Ok(())
    }

    /// Reads the full XSAVE area (x87, SSE, AVX and beyond), as the signal frame holds it.
    pub fn get_xstate(&self) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; XSTATE_MAX];
        let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
        ptrace(libc::PTRACE_GETREGSET, self.tid, NT_X86_XSTATE, &mut iov as *mut libc::iovec as usize)?;
        buf.truncate(iov.iov_len);
        Ok(buf)
    }

    /// Writes an XSAVE area read by `get_xstate` (of the same size).
    pub fn set_xstate(&self, state: &[u8]) -> io::Result<()> {
        let mut buf = state.to_vec();
        let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
        ptrace(libc::PTRACE_SETREGSET, self.tid, NT_X86_XSTATE, &mut iov as *mut libc::iovec as usize)?;
        Ok(())
    }

    /// Runs app code with `regs` until the next syscall or signal. The
    /// registers are sanitised first (see [`user_mode`]).
    pub fn run(&self, regs: &mut Regs) -> io::Result<StopReason> {
        // orig_rax = -1: the host kernel must never apply its own syscall-restart logic to
        // app registers (the Sentry does restarts itself).
        let mut r = user_mode(regs, Mode::AsStopped);
        r.orig_rax = u64::MAX;
        self.set_regs(&r)?;
        ptrace(libc::PTRACE_SYSEMU, self.tid, 0, 0)?;
        loop {
            let st = wait(self.tid)?;
            if !libc::WIFSTOPPED(st) {
                return Ok(StopReason::Gone(st));
            }
            let sig = libc::WSTOPSIG(st);
            if sig == (libc::SIGTRAP | 0x80) {
                *regs = self.get_regs()?;
                if self.is_compat(regs)? {
                    return Ok(StopReason::CompatSyscall);
                }
                return Ok(StopReason::Syscall);
            }
            if (st >> 16) != 0 {
                // A ptrace event stop (e.g. an interrupt); just go on.
                ptrace(libc::PTRACE_SYSEMU, self.tid, 0, 0)?;
                continue;
            }
            // SAFETY: siginfo_t is plain data.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            ptrace(libc::PTRACE_GETSIGINFO, self.tid, 0, &mut info as *mut _ as usize)?;
            *regs = self.get_regs()?;
            // SAFETY: si_addr is valid to read for any siginfo (it is a union field of plain data);
            // for a SIGSYS it is the call's address (si_call_addr).
            let addr = unsafe { info.si_addr() } as u64;
            // The stub's filter traps only the vsyscall entries (every other
            // call it does not allow kills the stub), and no one else can send
            // a stub a seccomp SIGSYS.
            if sig == libc::SIGSYS && info.si_code == SYS_SECCOMP {
                if let Some(nr) = abi::x86::vsyscall_at(addr) {
                    return Ok(StopReason::Vsyscall { nr });
                }
            }
            return Ok(StopReason::Signal { signo: sig, code: info.si_code, addr });
        }
    }

    /// Whether the system call the thread is stopped at was made some other
    /// way than with `syscall` from 64-bit code. A 32-bit code segment tells
    /// at once. In 64-bit code, `syscall` itself leaves the return address in
    /// rcx and the flags in r11, so a stop where they match is taken as one
    /// without asking the host (app code could stage them around an
    /// `int $0x80`, which then runs as the 64-bit call its registers name:
    /// its choice, in 64-bit mode, under the tracer); any other stop is
    /// classified by the host's own record of the entry (TS_COMPAT, which
    /// the audit architecture reports).
    fn is_compat(&self, regs: &Regs) -> io::Result<bool> {
        if regs.cs != abi::x86::USER_CS {
            return Ok(true);
        }
        if regs.rcx == regs.rip && regs.r11 == regs.eflags {
            return Ok(false);
        }
        Ok(self.syscall_arch()? != abi::x86::AUDIT_ARCH_X86_64)
    }

    /// The audit architecture of the system call the thread is stopped at.
    fn syscall_arch(&self) -> io::Result<u32> {
        const PTRACE_GET_SYSCALL_INFO: libc::c_uint = 0x420e;
        // struct ptrace_syscall_info begins with op (u8), 3 bytes of padding
        // and arch (u32); the kernel copies no more than the size given.
        let mut info = [0u8; 8];
        ptrace(PTRACE_GET_SYSCALL_INFO, self.tid, info.len(), info.as_mut_ptr() as usize)?;
        Ok(u32::from_ne_bytes([info[4], info[5], info[6], info[7]]))
    }

    /// Runs one host syscall inside the stub (at its `syscall; int3` pair) and returns its
    /// raw result (negative errno on failure). The app's registers are preserved.
    pub fn inject(&self, nr: i64, args: [u64; 6]) -> io::Result<i64> {
        self.run_at(self.inject_ip, nr as u64, args)
    }

    /// Runs the stub's `syscall` at `ip` with call `nr` and `args`, in 64-bit
    /// mode whatever the app's registers hold (an app stopped in 32-bit code
    /// would otherwise take the injected `rip` truncated to 32 bits: a jump to
    /// an address of its choosing, under PTRACE_CONT), and puts the app's
    /// registers back. A fault there (the stub's page gone, say) is an error,
    /// never retried: the caller ends the app process.
    fn run_at(&self, ip: u64, nr: u64, args: [u64; 6]) -> io::Result<i64> {
        let saved = self.get_regs()?;
        let mut r = user_mode(&saved, Mode::Sixty4);
        r.eflags = abi::x86::EFLAGS_IF | abi::x86::EFLAGS_FIXED;
        r.rip = ip;
        r.rax = nr;
        r.orig_rax = u64::MAX;
        r.rdi = args[0];
        r.rsi = args[1];
        r.rdx = args[2];
        r.r10 = args[3];
        r.r8 = args[4];
        r.r9 = args[5];
        self.set_regs(&r)?;
        ptrace(libc::PTRACE_CONT, self.tid, 0, 0)?;
        let result = loop {
            let st = wait(self.tid)?;
            if !libc::WIFSTOPPED(st) {
                return Err(io::Error::other(format!(
                    "stub {} died in injected syscall {nr} (status {st:#x})",
                    self.tid
                )));
            }
            let sig = libc::WSTOPSIG(st);
            if sig == libc::SIGTRAP && (st >> 16) == 0 {
                break self.get_regs()?.rax as i64;
            }
            if (st >> 16) == 0 && FAULTS.contains(&sig) {
                return Err(io::Error::other(format!(
                    "stub {} faulted (signal {sig}) in injected syscall {nr}",
                    self.tid
                )));
            }
            // Something else (a kick) arrived first: suppress it and let the syscall finish.
            ptrace(libc::PTRACE_CONT, self.tid, 0, 0)?;
        };
        self.set_regs(&saved)?;
        Ok(result)
    }

    /// Starts a new thread in this stub's process, parked until seized: the seed for a new
    /// app thread's tracee (to be attached by the host thread that will run it).
    pub fn spawn_thread(&self) -> io::Result<ThreadSeed> {
        let tid = self.run_at(
            crate::stub::clone_thread_ip(),
            libc::SYS_clone as u64,
            [crate::stub::THREAD_FLAGS, 0, 0, 0, 0, 0],
        )?;
        if tid < 0 {
            return Err(io::Error::from_raw_os_error(-tid as i32));
        }
        Ok(ThreadSeed { process: self.process.clone(), tid: tid as i32, inject_ip: self.inject_ip })
    }

    /// Ends this stub thread (the process lives on while other tracees hold it).
    fn exit_thread(&self) {
        if self.tid == self.pid {
            // The stub's leader thread: while other threads live, its exit leaves a zombie
            // that wait cannot reap, and PTRACE_O_EXITKILL would SIGKILL the whole process
            // when this tracer goes. Drop EXITKILL, start the exit, and do not wait.
            let _ = ptrace(libc::PTRACE_SETOPTIONS, self.tid, 0, libc::PTRACE_O_TRACESYSGOOD as usize);
            if let Ok(r) = self.get_regs() {
                let mut r = user_mode(&r, Mode::Sixty4);
                r.rip = self.inject_ip;
                r.rax = libc::SYS_exit as u64;
                r.orig_rax = u64::MAX;
                r.rdi = 0;
                if self.set_regs(&r).is_ok() {
                    let _ = ptrace(libc::PTRACE_CONT, self.tid, 0, 0);
                }
            }
            return;
        }
        // exit never returns, so inject reports the thread gone; reap whatever is left.
        let _ = self.inject(libc::SYS_exit, [0; 6]);
        self.reap();
    }

    /// Lets the thread go with registers `regs` (sanitised to 64-bit user
    /// mode first): it runs on untraced, and the stub process lives on with
    /// the returned handle (killed when the last holder drops it).
    pub fn detach_with(self, regs: &Regs) -> io::Result<std::sync::Arc<crate::stub::StubProcess>> {
        let mut r = user_mode(regs, Mode::Sixty4);
        r.orig_rax = u64::MAX;
        self.set_regs(&r)?;
        ptrace(libc::PTRACE_DETACH, self.tid, 0, 0)?;
        let me = std::mem::ManuallyDrop::new(self);
        // SAFETY: `me` is never used or dropped again; the Arc is moved out exactly once.
        Ok(unsafe { std::ptr::read(&me.process) })
    }

    /// Kills the whole stub process and reaps the traced thread.
    pub fn kill(&self) {
        let _ = crate::sys::kill(self.pid, libc::SIGKILL);
        self.reap();
    }

    fn reap(&self) {
        loop {
            match wait(self.tid) {
                Ok(st) if libc::WIFSTOPPED(st) => {
                    let _ = ptrace(libc::PTRACE_CONT, self.tid, 0, 0);
                }
                _ => break,
            }
        }
    }
}

impl Drop for Tracee {
    fn drop(&mut self) {
        if std::sync::Arc::strong_count(&self.process) > 1 {
            self.exit_thread();
        } else {
            self.kill();
        }
    }
}

/// A parked stub thread waiting for its tracer.
#[derive(Debug)]
pub struct ThreadSeed {
    process: std::sync::Arc<crate::stub::StubProcess>,
    tid: i32,
    inject_ip: u64,
}

impl ThreadSeed {
    /// Seizes the thread for the calling host thread, which becomes its tracer.
    pub fn attach(self) -> io::Result<Tracee> {
        Tracee::seize(self.process, self.tid, self.inject_ip)
    }
}
