//! The systrap platform: app threads run untraced in stub processes; every
//! system call they make traps (seccomp's `SECCOMP_RET_TRAP`) to the stub's
//! signal handler, which posts the thread's signal frame in the thread's
//! *slot* and waits; the Sentry reads and writes that frame through the
//! memory file and resumes it. No ptrace on the hot path: a syscall is two
//! futex hand-offs. Address-space changes go to the process's *syscall
//! thread* (`host::systrap`), whose acknowledgement only it can give.
//!
//! Everything the Sentry reads from a slot was writable by the app (the
//! handler runs in the app's own thread): addresses are checked to lie in
//! the slot, registers are sanitised before they go back, and a thread that
//! stops answering is killed with its process, never waited for forever.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use abi::signal::{SigContext, UContext, FP_XSTATE_MAGIC1, FP_XSTATE_MAGIC2};
use abi::{AsBytes, FromBytes};
use host::memfile::PAGE;
use host::systrap::{self as st, ctx, Op};
use host::{MemoryFile, Regs, StubFactory, StubProcess};

use host::allow;
use host::seccomp::{Rule, When};

use super::{Context, ContextSeed, Event, Kicker, Platform};
use crate::mm::{Layout, MapOp};

/// Memory-file offsets: the stub's code and data pages, then every slot,
/// then one request page per process.
const STUB_CODE_OFF: u64 = 0;
const STUB_DATA_OFF: u64 = PAGE;
const SLOTS_OFF: u64 = 2 * PAGE;
const PROCS: u32 = 1 << 14;
const PROCS_OFF: u64 = SLOTS_OFF + st::SLOTS as u64 * st::SLOT_SIZE;
const FIRST_FREE_OFF: u64 = PROCS_OFF + PROCS as u64 * PAGE;

/// The host values the systrap platform's seccomp rules compare with.
pub mod host_abi {
    pub use crate::platform::ptrace::host_abi::*;
    pub const SIGURG: u64 = abi::signal::SIGURG as u64;
}

use host_abi::*;

/// The host calls the systrap platform makes, for the Sentry's seccomp filter.
pub static SECCOMP_RULES: &[Rule] = &[
    allow!(WAIT4, "whether the source stub still lives while it clones a stub"),
    allow!(TGKILL if When::Any(&[
        When::All(&[When::OnePid { arg: 0 }, When::OneOf { arg: 2, values: &[SIGURG] }]),
        When::OwnSignal { arg: 0, signal_arg: 2, signal: SIGABRT },
    ]),
        "SIGURG interrupts a running app thread (its handler posts it to the Sentry); SIGABRT is abort() \
         in the Sentry itself"),
    allow!(KILL if When::All(&[When::OnePid { arg: 0 }, When::OneOf { arg: 1, values: &[SIGKILL] }]),
        "SIGKILL ends a stub process with its address space; never a group or every process (pid <= 0)"),
    allow!(PIDFD_OPEN if When::OneOf { arg: 1, values: &[0] },
        "a pidfd per stub: its ack pipe is taken through it, and its exit is seen on it"),
    allow!(PIDFD_GETFD if When::OneOf { arg: 2, values: &[0] },
        "the read end of a new stub's ack pipe (a stub holds only the memory file and that pipe)"),
];

/// Free slot and request-page numbers, shared by every process of the sandbox.
#[derive(Debug)]
struct Pool {
    slots: Mutex<Vec<u32>>,
    procs: Mutex<Vec<u32>>,
}

impl Pool {
    fn take(list: &Mutex<Vec<u32>>) -> io::Result<u32> {
        list.lock().unwrap().pop().ok_or_else(|| io::Error::from_raw_os_error(libc_eagain()))
    }
}

fn libc_eagain() -> i32 {
    abi::Errno::EAGAIN.0
}

#[derive(Debug)]
pub struct SystrapPlatform {
    maker: Arc<Maker>,
    warm: Arc<Warm>,
}

/// Makes stub processes: a fresh process with its first thread in a slot.
#[derive(Debug)]
struct Maker {
    mem: Arc<MemoryFile>,
    factory: StubFactory,
    pool: Arc<Pool>,
}

/// How many fresh stub processes are kept made ahead of a fork.
const WARM: usize = 2;

/// Stub processes made ahead of need by the `moat-stubs` thread, so that
/// a fork takes one instead of waiting for a host fork, the stub's own
/// set-up and its first thread (about half a millisecond). Refilled after
/// each fork, from the second process of the sandbox on (a sandbox that
/// never forks makes none); a failure (the pids limit) stops the refill
/// until the next fork. The thread sleeps on the condition variable
/// between refills and ends with the platform.
#[derive(Debug, Default)]
struct Warm {
    state: Mutex<WarmState>,
    wake: Condvar,
}

#[derive(Debug, Default)]
struct WarmState {
    ready: Vec<Thread>,
    /// A refill is asked for.
    wanted: bool,
    started: bool,
    stop: bool,
    /// Processes made so far.
    processes: u32,
}

impl SystrapPlatform {
    pub fn new(mem: Arc<MemoryFile>) -> io::Result<SystrapPlatform> {
        let factory = StubFactory::with_flavor(&mem, STUB_CODE_OFF, STUB_DATA_OFF, host::Flavor::Systrap)?;
        let pool = Arc::new(Pool {
            slots: Mutex::new((0..st::SLOTS).rev().collect()),
            procs: Mutex::new((0..PROCS).rev().collect()),
        });
        Ok(SystrapPlatform { maker: Arc::new(Maker { mem, factory, pool }), warm: Arc::default() })
    }

    /// A made process still alive, if one is ready; from the sandbox's
    /// second process on, asks for a refill (starting the thread that makes
    /// them the first time).
    fn take_warm(&self) -> Option<Thread> {
        let mut st = self.warm.state.lock().unwrap();
        st.processes = st.processes.saturating_add(1);
        // A made stub that died (the OOM killer) goes now, not at the end.
        let (live, dead): (Vec<Thread>, Vec<Thread>) =
            std::mem::take(&mut st.ready).into_iter().partition(|th| !th.process.dead());
        st.ready = live;
        let taken = st.ready.pop();
        if st.processes < 2 {
            drop(st);
            drop(dead);
            return taken;
        }
        st.wanted = true;
        if !st.started {
            let (maker, warm) = (self.maker.clone(), self.warm.clone());
            st.started =
                std::thread::Builder::new().name("moat-stubs".into()).spawn(move || warm.serve(&maker)).is_ok();
        }
        self.warm.wake.notify_one();
        drop(st);
        drop(dead);
        taken
    }

    /// Lets every made stub go and stops the refill until the next fork:
    /// what they hold (pids, slots) goes to a fork that found none left.
    fn drop_warm(&self) {
        let ready = {
            let mut st = self.warm.state.lock().unwrap();
            st.wanted = false;
            std::mem::take(&mut st.ready)
        };
        drop(ready);
    }
}

impl Warm {
    /// The `moat-stubs` thread: refills to `WARM` when asked, until stopped.
    fn serve(&self, maker: &Maker) {
        let mut st = self.state.lock().unwrap();
        loop {
            while !(st.stop || st.wanted && st.ready.len() < WARM) {
                st = self.wake.wait(st).unwrap();
            }
            if st.stop {
                return;
            }
            drop(st);
            let made = maker.make();
            st = self.state.lock().unwrap();
            match made {
                Ok(th) if !st.stop => st.ready.push(th),
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!("no stub made ahead: {e}");
                    st.wanted = false;
                }
            }
            if st.ready.len() >= WARM {
                st.wanted = false;
            }
        }
    }
}

impl Drop for SystrapPlatform {
    fn drop(&mut self) {
        let ready = {
            let mut st = self.warm.state.lock().unwrap();
            st.stop = true;
            std::mem::take(&mut st.ready)
        };
        self.warm.wake.notify_all();
        drop(ready);
    }
}

impl Platform for SystrapPlatform {
    fn layout(&self) -> Layout {
        Layout { top: st::APP_TOP }
    }

    fn first_free_offset(&self) -> u64 {
        FIRST_FREE_OFF
    }

    fn seccomp_rules(&self) -> &'static [Rule] {
        SECCOMP_RULES
    }

    fn new_context(&self) -> io::Result<Box<dyn Context>> {
        let th = match self.take_warm() {
            Some(th) => th,
            None => match self.maker.make() {
                Ok(th) => th,
                Err(_) => {
                    self.drop_warm();
                    self.maker.make()?
                }
            },
        };
        Ok(Box::new(SystrapContext::new(th)))
    }
}

impl Maker {
    fn make(&self) -> io::Result<Thread> {
        let idx = Pool::take(&self.pool.procs)?;
        let req_off = PROCS_OFF + idx as u64 * PAGE;
        let give_back = |e: io::Error| {
            let _ = self.mem.zero(req_off, PAGE);
            self.pool.procs.lock().unwrap().push(idx);
            e
        };
        self.mem.zero(req_off, PAGE).map_err(give_back)?;
        let stub = self.factory.new_systrap_stub(&self.mem, req_off).map_err(give_back)?;
        // From here the stub dies with `stub` if anything fails.
        let pidfd = host::sys::pidfd_open(stub.pid()).map_err(give_back)?;
        let ack = st::adopt(&self.mem, req_off, pidfd.as_fd()).map_err(give_back)?;
        let process = Arc::new(Process {
            stub,
            pidfd,
            ack,
            req_off,
            idx,
            seq: Mutex::new(0),
            mem: self.mem.clone(),
            pool: self.pool.clone(),
            orphans: Mutex::new(Vec::new()),
        });
        Thread::start(&process)
    }
}

/// A stub process: its syscall thread's request page and ack pipe.
#[derive(Debug)]
struct Process {
    stub: Arc<StubProcess>,
    pidfd: OwnedFd,
    ack: OwnedFd,
    req_off: u64,
    idx: u32,
    /// The last request's sequence number; held while a request is out.
    seq: Mutex<u32>,
    mem: Arc<MemoryFile>,
    pool: Arc<Pool>,
    /// Slots still mapped in the stub, freed once it is dead.
    orphans: Mutex<Vec<u32>>,
}

impl Process {
    /// Has the syscall thread make `ops`, in order, and waits for its ack.
    /// Any failure (an op refused, the stub gone) is an error: the caller
    /// ends the process.
    fn request(&self, ops: &[Op]) -> io::Result<()> {
        let mut seq = self.seq.lock().unwrap();
        for chunk in ops.chunks(st::MAX_OPS) {
            let mut page = Vec::with_capacity(chunk.len() * st::OP_SIZE as usize);
            for op in chunk {
                page.extend_from_slice(&op.encode());
            }
            self.mem.write(self.req_off + st::REQ_OPS, &page)?;
            self.mem.store_u32(self.req_off + st::REQ_COUNT, chunk.len() as u32)?;
            *seq = seq.wrapping_add(1).max(1);
            self.mem.store_u32(self.req_off + st::REQ_SEQ, *seq)?;
            self.mem.futex_wake(self.req_off + st::REQ_SEQ)?;
            let mut b = [0u8; 1];
            loop {
                match host::sys::read(self.ack.as_fd(), &mut b) {
                    Ok(1) => break,
                    Ok(_) => return Err(io::Error::other("the stub is gone")),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            }
            if b[0] != 1 {
                return Err(io::Error::other("the stub could not change its address space"));
            }
        }
        Ok(())
    }

    fn pid(&self) -> i32 {
        self.stub.pid()
    }

    fn dead(&self) -> bool {
        st::wait_exit(self.pidfd.as_fd(), 0)
    }

    fn kill(&self) {
        // A stub long dead may have left its pid to another process.
        if !self.dead() {
            let _ = host::sys::kill(self.pid(), 9);
        }
    }

    fn slot_off(slot: u32) -> u64 {
        SLOTS_OFF + slot as u64 * st::SLOT_SIZE
    }

    fn free_slot(&self, slot: u32) {
        let _ = self.mem.zero(Self::slot_off(slot), st::SLOT_SIZE);
        self.pool.slots.lock().unwrap().push(slot);
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
        // Its pages are freed only once no thread of it can touch them.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !st::wait_exit(self.pidfd.as_fd(), 100) {
            if Instant::now() > deadline {
                tracing::error!(pid = self.pid(), "a killed stub does not exit; its slots stay reserved");
                return;
            }
        }
        for slot in std::mem::take(&mut *self.orphans.lock().unwrap()) {
            self.free_slot(slot);
        }
        let _ = self.mem.zero(self.req_off, PAGE);
        self.pool.procs.lock().unwrap().push(self.idx);
    }
}

/// An app thread's stub thread and its slot.
#[derive(Debug)]
struct Thread {
    process: Arc<Process>,
    slot: u32,
    tid: i32,
    /// How long the Sentry spins for the thread's next post, and how long
    /// the thread spins for the Sentry's answer (the hint in its slot):
    /// each doubles when its last spin was answered and halves when it
    /// ended in a sleep, so spinning pays where it is answered and stops
    /// where it only takes a core from whoever has work (two cores, and a
    /// pipeline of processes).
    sentry_spin: AtomicU32,
    app_spin: AtomicU32,
}

/// Bounds of the adaptive spins (iterations of a load and a pause); the
/// stub caps what the thread takes from its hint at `MAX_APP_SPIN`, above
/// anything the Sentry writes.
const SENTRY_SPIN: (u32, u32) = (32, 8_000);
const APP_SPIN: (u32, u32) = (32, 4_000);
const INITIAL_APP_SPIN: u32 = 1_000;

/// `spin` doubled after an answered spin, halved after one that slept, within `bounds`.
fn adapt(spin: &AtomicU32, answered: bool, bounds: (u32, u32)) -> u32 {
    let old = spin.load(Ordering::Relaxed);
    let new = if answered { old.saturating_mul(2) } else { old / 2 }.clamp(bounds.0, bounds.1);
    spin.store(new, Ordering::Relaxed);
    new
}

impl Thread {
    /// A new stub thread in `process`, in a fresh slot; it reports ready on its own.
    fn start(process: &Arc<Process>) -> io::Result<Thread> {
        let slot = Pool::take(&process.pool.slots)?;
        let off = Process::slot_off(slot);
        let addr = st::SLOT_AREA + slot as u64 * st::SLOT_SIZE;
        let made = (|| {
            process.mem.zero(off, st::SLOT_SIZE)?;
            process.mem.store_u32(off + ctx::STATE, st::STATE_RUNNING)?;
            process.mem.store_u32(off + ctx::SPIN, INITIAL_APP_SPIN)?;
            process.request(&[Op::Map { addr, len: st::SLOT_SIZE, prot: 3, off }])?;
            process.orphans.lock().unwrap().push(slot);
            process.request(&[Op::Clone { slot: addr }])?;
            process.mem.load_u32(off + ctx::TID)
        })();
        match made {
            Ok(tid) => Ok(Thread {
                process: process.clone(),
                slot,
                tid: tid as i32,
                sentry_spin: AtomicU32::new(2_000),
                app_spin: AtomicU32::new(INITIAL_APP_SPIN),
            }),
            Err(e) => {
                let mapped = process.orphans.lock().unwrap().contains(&slot);
                if !mapped {
                    process.free_slot(slot);
                }
                Err(e)
            }
        }
    }

    fn off(&self) -> u64 {
        Process::slot_off(self.slot)
    }

    fn addr(&self) -> u64 {
        st::SLOT_AREA + self.slot as u64 * st::SLOT_SIZE
    }

    fn mem(&self) -> &MemoryFile {
        &self.process.mem
    }

    fn state(&self) -> u32 {
        self.mem().load_u32_mapped(self.off() + ctx::STATE).unwrap_or(st::STATE_GONE)
    }

    /// Lets the posted thread go on (waking it if it sleeps).
    fn resume(&self) {
        let off = self.off() + ctx::STATE;
        // The hint for the thread's next wait, published by the swap: did
        // its spin this time last until the answer?
        let hint = adapt(&self.app_spin, self.state() == st::STATE_POSTED, APP_SPIN);
        let _ = self.mem().store_u32(self.off() + ctx::SPIN, hint);
        if self.mem().swap_u32(off, st::STATE_RESUME).ok() == Some(st::STATE_POSTED_ASLEEP) {
            let _ = self.mem().futex_wake(off);
        }
    }

    fn is_posted(s: u32) -> bool {
        s == st::STATE_POSTED || s == st::STATE_POSTED_ASLEEP
    }

    /// Waits until the thread has posted (true) or is gone (false). A
    /// thread that a kick does not bring back within `KICK_GRACE` (it
    /// blocked the host signal with a forged frame) dies with its process.
    fn wait_posted(&self, kicker: &SystrapKicker) -> bool {
        for _ in 0..self.sentry_spin.load(Ordering::Relaxed) {
            match self.state() {
                s if Self::is_posted(s) => {
                    adapt(&self.sentry_spin, true, SENTRY_SPIN);
                    return true;
                }
                st::STATE_GONE => return false,
                _ => std::hint::spin_loop(),
            }
        }
        adapt(&self.sentry_spin, false, SENTRY_SPIN);
        let off = self.off() + ctx::STATE;
        let mut kicked_since: Option<Instant> = None;
        // Rounds in a row that ended without a post: only an app writing
        // its own word makes many, and past CHURN each costs a millisecond
        // of sleep, so that it cannot keep a Sentry thread on a core.
        let mut rounds = 0u32;
        loop {
            let mut s = self.state();
            match s {
                s if Self::is_posted(s) => return true,
                st::STATE_GONE => return false,
                // Sleep as state 5, which the thread's post wakes.
                st::STATE_RUNNING
                    if self.mem().cas_u32(off, st::STATE_RUNNING, st::STATE_RUNNING_WATCHED).ok()
                        == Some(st::STATE_RUNNING) =>
                {
                    s = st::STATE_RUNNING_WATCHED;
                }
                // Not picked up yet (the thread is waking): sleep as state
                // 6, which the thread turns into 5 when it picks the resume
                // up, so that its next post wakes us.
                st::STATE_RESUME
                    if self.mem().cas_u32(off, st::STATE_RESUME, st::STATE_RESUME_WATCHED).ok()
                        == Some(st::STATE_RESUME) =>
                {
                    s = st::STATE_RESUME_WATCHED;
                }
                _ => {}
            }
            // Every wait is woken; the timeout re-checks a word the app may
            // have written itself, the process, and the kick. (A word that
            // changed before the call returns at once.)
            let _ = self.mem().futex_wait(off, s, 200);
            if Self::is_posted(self.state()) {
                continue;
            }
            rounds += 1;
            if rounds > CHURN {
                std::thread::sleep(Duration::from_millis(1));
            }
            if self.process.dead() {
                return false;
            }
            if kicker.pending.load(Ordering::Acquire) != 0 {
                let since = *kicked_since.get_or_insert_with(Instant::now);
                if since.elapsed() > KICK_GRACE {
                    tracing::warn!(pid = self.process.pid(), "an app thread ignores the Sentry's kick; killing it");
                    self.process.kill();
                    return false;
                }
                // A thread still to pick up its resume is not in app code
                // (unless it wrote the word itself: then the grace ends it).
                if self.state() != st::STATE_RESUME_WATCHED {
                    kicker.kick();
                }
            }
        }
    }
}

/// Rounds of the Sentry's wait without a post before each costs a sleep.
const CHURN: u32 = 64;
/// How long a kicked thread may take to come back.
const KICK_GRACE: Duration = Duration::from_secs(2);

impl Drop for Thread {
    fn drop(&mut self) {
        if Arc::strong_count(&self.process) == 1 {
            // The last thread: the process dies and frees every slot it had.
            return;
        }
        // Ask it to exit; a thread that does not (it is running app code
        // after a forged resume) takes its process with it.
        let off = self.off();
        let mut gone = false;
        if Self::is_posted(self.state()) {
            let _ = self.mem().store_u32(off + ctx::CMD, st::CMD_EXIT);
            self.resume();
            let deadline = Instant::now() + Duration::from_secs(2);
            while Instant::now() < deadline {
                let s = self.state();
                if s == st::STATE_GONE {
                    gone = true;
                    break;
                }
                let _ = self.mem().futex_wait(off + ctx::STATE, s, 50);
            }
        }
        if !gone {
            self.process.kill();
            return;
        }
        let addr = self.addr();
        if self.process.request(&[Op::Unmap { addr, len: st::SLOT_SIZE }]).is_ok() {
            self.process.orphans.lock().unwrap().retain(|&s| s != self.slot);
            self.process.free_slot(self.slot);
        } else {
            self.process.kill();
        }
    }
}

#[derive(Debug)]
struct SystrapKicker {
    pid: i32,
    tid: i32,
    /// Kicks not yet answered by an event.
    pending: AtomicU32,
}

impl Kicker for SystrapKicker {
    fn kick(&self) {
        self.pending.fetch_add(1, Ordering::AcqRel);
        let _ = host::sys::tgkill(self.pid, self.tid, st::KICK_SIGNAL);
    }

    fn host_pid(&self) -> i32 {
        self.pid
    }
}

#[derive(Debug)]
struct SystrapContext {
    th: Thread,
    kicker: Arc<SystrapKicker>,
    /// The thread has posted and waits (its frame is the Sentry's to change).
    posted: bool,
    /// The fs and gs bases the thread has (None: not set by the Sentry yet).
    fs: Option<u64>,
    gs: Option<u64>,
    /// FPU state to give the thread at its next resume.
    pending_fp: Option<Vec<u8>>,
    _not_send: std::marker::PhantomData<*const ()>,
}

const UC_SIZE: u64 = size_of::<UContext>() as u64;
const SIGINFO_SIZE: u64 = 128;
const UC_FP_XSTATE: u64 = 1;
const UC_SIGCONTEXT_SS: u64 = 2;
const UC_STRICT_RESTORE_SS: u64 = 4;

impl SystrapContext {
    fn new(th: Thread) -> SystrapContext {
        let kicker = Arc::new(SystrapKicker { pid: th.process.pid(), tid: th.tid, pending: AtomicU32::new(0) });
        SystrapContext {
            th,
            kicker,
            posted: false,
            fs: None,
            gs: None,
            pending_fp: None,
            _not_send: Default::default(),
        }
    }

    /// The memory-file offset of `addr` if `[addr, addr+len)` lies in this
    /// thread's alternate stack.
    fn in_stack(&self, addr: u64, len: u64) -> Option<u64> {
        let lo = self.th.addr() + st::STACK;
        let hi = self.th.addr() + st::SLOT_SIZE;
        (addr >= lo && addr.checked_add(len)? <= hi).then(|| self.th.off() + (addr - self.th.addr()))
    }

    fn word(&self, at: u64) -> u64 {
        let mut w = [0u64; 1];
        let _ = self.th.mem().read_words(self.th.off() + at, &mut w);
        w[0]
    }

    /// Reads `N` words at `off` of the memory file (in this slot) as bytes.
    fn read_bytes<const N: usize>(&self, off: u64) -> io::Result<Vec<u8>> {
        let mut w = [0u64; N];
        self.th.mem().read_words(off, &mut w)?;
        Ok(w.iter().flat_map(|x| x.to_ne_bytes()).collect())
    }

    /// Where the thread's frame lies, checked.
    fn frame(&self) -> io::Result<u64> {
        let uc = self.word(ctx::UC);
        self.in_stack(uc, UC_SIZE).map(|_| uc).ok_or_else(|| io::Error::other("a frame outside the slot"))
    }

    fn read_uc(&self, uc: u64) -> io::Result<UContext> {
        let off = self.in_stack(uc, UC_SIZE).ok_or_else(|| io::Error::other("a frame outside the slot"))?;
        let b = self.read_bytes::<{ UC_SIZE as usize / 8 }>(off)?;
        Ok(UContext::read_from(&b[..]).expect("sized"))
    }

    fn write_frame(&mut self, regs: &Regs) -> io::Result<()> {
        let uc_addr = self.frame()?;
        let mut uc = self.read_uc(uc_addr)?;
        let r = host::user_mode(regs, host::Mode::AsStopped);
        let m = &mut uc.mcontext;
        *m = SigContext {
            r8: r.r8,
            r9: r.r9,
            r10: r.r10,
            r11: r.r11,
            r12: r.r12,
            r13: r.r13,
            r14: r.r14,
            r15: r.r15,
            rdi: r.rdi,
            rsi: r.rsi,
            rbp: r.rbp,
            rbx: r.rbx,
            rdx: r.rdx,
            rax: r.rax,
            rcx: r.rcx,
            rsp: r.rsp,
            rip: r.rip,
            eflags: r.eflags,
            cs: r.cs as u16,
            gs: 0,
            fs: 0,
            ss: r.ss as u16,
            err: 0,
            trapno: 0,
            oldmask: 0,
            cr2: 0,
            fpstate: m.fpstate,
            reserved: [0; 8],
        };
        if let Some(fp) = self.pending_fp.take() {
            let area = self.th.addr() + st::FP_AREA;
            let mut img = fp;
            let xsave = img.len() > 512;
            if !xsave {
                img[464..512].fill(0);
            }
            self.th.mem().write(self.th.off() + st::FP_AREA, &img)?;
            if xsave {
                self.th.mem().write(self.th.off() + st::FP_AREA + img.len() as u64, &FP_XSTATE_MAGIC2.to_ne_bytes())?;
            }
            m.fpstate = area;
            uc.flags = if xsave { UC_FP_XSTATE } else { 0 };
        } else if m.fpstate != 0 && self.fp_image_len(m.fpstate).is_none() {
            // A frame whose FPU pointer leaves the slot: start from a clean FPU.
            m.fpstate = 0;
        }
        uc.flags = (uc.flags & UC_FP_XSTATE) | UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS;
        uc.link = 0;
        uc.stack = abi::signal::SignalStack { sp: self.th.addr() + st::STACK, flags: 0, pad: 0, size: st::STACK_SIZE };
        // Every host signal unblocked: the kick and the faults must reach the handler.
        uc.sigmask = 0;
        let off = self.in_stack(uc_addr, UC_SIZE).expect("checked above");
        let words: Vec<u64> =
            uc.as_bytes().chunks_exact(8).map(|c| u64::from_ne_bytes(c.try_into().expect("8 bytes"))).collect();
        self.th.mem().write_words(off, &words)
    }

    /// The length of the FPU image at `addr` in the slot: 512 for an
    /// FXSAVE-only one, the XSAVE size its software bytes give otherwise.
    fn fp_image_len(&self, addr: u64) -> Option<usize> {
        let off = self
            .in_stack(addr, 512)
            .or_else(|| (addr == self.th.addr() + st::FP_AREA).then(|| self.th.off() + st::FP_AREA))?;
        // Through the mapping (no system call): the image is 64-byte
        // aligned wherever the host put it; one that is not is refused.
        // The software bytes' magic1 is bytes 0..4 and xstate_size bytes
        // 16..20: the low halves of words 0 and 2 (x86-64 is little-endian).
        let mut words = [0u64; 3];
        self.th.mem().read_words(off + 464, &mut words).ok()?;
        let magic1 = words[0] as u32;
        let size = u64::from(words[2] as u32);
        if magic1 != FP_XSTATE_MAGIC1 || size <= 512 || size > st::FP_MAX - 4 {
            return Some(512);
        }
        let fits = self.in_stack(addr, size + 4).is_some() || addr == self.th.addr() + st::FP_AREA;
        fits.then_some(size as usize)
    }

    fn read_event(&mut self, regs: &mut Regs) -> Event {
        let Ok(uc_addr) = self.frame() else {
            return self.broken();
        };
        let Ok(uc) = self.read_uc(uc_addr) else {
            return self.broken();
        };
        let m = &uc.mcontext;
        let mut r = *regs;
        r.r8 = m.r8;
        r.r9 = m.r9;
        r.r10 = m.r10;
        r.r11 = m.r11;
        r.r12 = m.r12;
        r.r13 = m.r13;
        r.r14 = m.r14;
        r.r15 = m.r15;
        r.rdi = m.rdi;
        r.rsi = m.rsi;
        r.rbp = m.rbp;
        r.rbx = m.rbx;
        r.rdx = m.rdx;
        r.rax = m.rax;
        r.rcx = m.rcx;
        r.rsp = m.rsp;
        r.rip = m.rip;
        r.eflags = m.eflags;
        r.cs = m.cs as u64;
        r.ss = m.ss as u64;
        r.orig_rax = u64::MAX;
        if let Some(fs) = self.fs {
            r.fs_base = fs;
        }
        if let Some(gs) = self.gs {
            r.gs_base = gs;
        }
        let signo = self.th.mem().load_u32_mapped(self.th.off() + ctx::SIGNO).unwrap_or(0) as i32;
        let info_addr = self.word(ctx::INFO);
        let info = self
            .in_stack(info_addr, SIGINFO_SIZE)
            .filter(|off| off % 8 == 0)
            .and_then(|off| self.read_bytes::<{ SIGINFO_SIZE as usize / 8 }>(off).ok())
            .unwrap_or_else(|| vec![0u8; SIGINFO_SIZE as usize]);
        let int = |at: usize| i32::from_ne_bytes(info[at..at + 4].try_into().expect("4 bytes"));
        let long = |at: usize| u64::from_ne_bytes(info[at..at + 8].try_into().expect("8 bytes"));
        let code = int(8);
        *regs = r;
        const SYS_SECCOMP: i32 = 1;
        match signo {
            31 if code == SYS_SECCOMP && int(0) == 31 => {
                let call_addr = long(16);
                let nr = int(24) as u32 as u64;
                let arch = int(28) as u32;
                if arch != abi::x86::AUDIT_ARCH_X86_64 {
                    return Event::CompatSyscall;
                }
                if let Some(nr) = abi::x86::vsyscall_at(call_addr) {
                    return Event::Vsyscall { nr, returned: true };
                }
                regs.orig_rax = nr;
                regs.rax = nr;
                Event::Syscall
            }
            11 if code > 0 && long(16) == regs.rip && abi::x86::vsyscall_at(regs.rip).is_some() => {
                Event::Vsyscall { nr: abi::x86::vsyscall_at(regs.rip).unwrap_or_default(), returned: false }
            }
            4 | 5 | 7 | 8 | 11 if code > 0 => Event::Fault { signo, code, addr: long(16) },
            _ => Event::Interrupted,
        }
    }

    /// A thread whose slot no longer makes sense: it dies with its process.
    fn broken(&mut self) -> Event {
        tracing::warn!(pid = self.th.process.pid(), "an app thread's frame is outside its slot; killing it");
        self.th.process.kill();
        Event::Gone
    }
}

impl Context for SystrapContext {
    fn switch(&mut self, regs: &mut Regs) -> Event {
        if !self.posted {
            if !self.th.wait_posted(&self.kicker) {
                return Event::Gone;
            }
            self.posted = true;
        }
        if self.write_frame(regs).is_err() {
            return self.broken();
        }
        let off = self.th.off();
        let mem = self.th.mem();
        let mut cmd = 0;
        if self.fs != Some(regs.fs_base) {
            let _ = mem.write(off + ctx::FS, &regs.fs_base.to_ne_bytes());
            cmd |= st::CMD_SET_FS;
            self.fs = Some(regs.fs_base);
        }
        if self.gs != Some(regs.gs_base) {
            let _ = mem.write(off + ctx::GS, &regs.gs_base.to_ne_bytes());
            cmd |= st::CMD_SET_GS;
            self.gs = Some(regs.gs_base);
        }
        let _ = mem.store_u32(off + ctx::CMD, cmd);
        self.posted = false;
        self.th.resume();
        if !self.th.wait_posted(&self.kicker) {
            return Event::Gone;
        }
        self.posted = true;
        self.kicker.pending.store(0, Ordering::Release);
        self.read_event(regs)
    }

    fn apply(&mut self, ops: &[MapOp]) -> io::Result<()> {
        let mut out = Vec::with_capacity(ops.len());
        for op in ops {
            // The slots and the stub's pages lie above the app's address
            // space: no change ever reaches them, whatever the kernel asks.
            let (addr, len) = match *op {
                MapOp::Map { addr, len, .. } | MapOp::Unmap { addr, len } => (addr, len),
            };
            if addr.checked_add(len).is_none_or(|end| end > st::APP_TOP) {
                return Err(io::Error::other(format!("a mapping change at {addr:#x}+{len:#x} reaches the stub")));
            }
            out.push(match *op {
                MapOp::Map { addr, len, prot, off } => Op::Map { addr, len, prot: prot as u64, off },
                MapOp::Unmap { addr, len } => Op::Unmap { addr, len },
            });
        }
        self.th.process.request(&out)
    }

    fn fpstate(&self) -> io::Result<Vec<u8>> {
        if let Some(fp) = &self.pending_fp {
            return Ok(fp.clone());
        }
        let uc = self.read_uc(self.frame()?)?;
        let at = uc.mcontext.fpstate;
        if at == 0 {
            return Ok(clean_fxsave());
        }
        let len = self.fp_image_len(at).ok_or_else(|| io::Error::other("an FPU image outside the slot"))?;
        let off = self.th.off() + (at - self.th.addr());
        let mut b = vec![0u8; len];
        self.th.mem().read(off, &mut b)?;
        Ok(b)
    }

    fn set_fpstate(&mut self, state: &[u8]) -> io::Result<()> {
        let len = state.len();
        if len < 512 || len as u64 > st::FP_MAX - 4 {
            return Err(io::Error::from_raw_os_error(abi::Errno::EINVAL.0));
        }
        if len > 512 {
            // What the host's sigreturn checks, checked first: the software
            // bytes must describe this image, and its XSAVE header be one
            // XRSTOR accepts (standard form, reserved bytes zero).
            let u32_at = |at: usize| u32::from_ne_bytes(state[at..at + 4].try_into().expect("4 bytes"));
            let u64_at = |at: usize| u64::from_ne_bytes(state[at..at + 8].try_into().expect("8 bytes"));
            let features = u64_at(464 + 8);
            let ok = len >= 576
                && u32_at(464) == FP_XSTATE_MAGIC1
                && u32_at(464 + 16) as usize == len
                && u32_at(464 + 4) as usize == len + 4
                && u64_at(512) & !features == 0
                && u64_at(520) == 0
                && state[528..576].iter().all(|&b| b == 0);
            if !ok {
                return Err(io::Error::from_raw_os_error(abi::Errno::EINVAL.0));
            }
        }
        self.pending_fp = Some(state.to_vec());
        Ok(())
    }

    fn initial_regs(&self) -> io::Result<Regs> {
        let mut r = host::zeroed_regs();
        r.orig_rax = u64::MAX;
        r.cs = abi::x86::USER_CS;
        r.ss = abi::x86::USER_DS;
        r.eflags = 0x202;
        Ok(r)
    }

    fn kicker(&self) -> Arc<dyn Kicker> {
        self.kicker.clone()
    }

    fn new_thread(&mut self) -> io::Result<Box<dyn ContextSeed>> {
        Ok(Box::new(SystrapSeed { th: Thread::start(&self.th.process)? }))
    }
}

/// An FXSAVE image of a reset FPU.
fn clean_fxsave() -> Vec<u8> {
    let mut b = vec![0u8; 512];
    b[0..2].copy_from_slice(&0x37fu16.to_ne_bytes());
    b[24..28].copy_from_slice(&0x1f80u32.to_ne_bytes());
    b[28..32].copy_from_slice(&0xffffu32.to_ne_bytes());
    b
}

#[derive(Debug)]
struct SystrapSeed {
    th: Thread,
}

impl ContextSeed for SystrapSeed {
    fn attach(self: Box<Self>) -> io::Result<Box<dyn Context>> {
        Ok(Box::new(SystrapContext::new(self.th)))
    }
}

// The platform's reservations fit in the memory file, and the slots below the stub's pages.
const _: () = assert!(FIRST_FREE_OFF < (1 << 40) && PROCS_OFF.is_multiple_of(PAGE));
const _: () = assert!(st::SLOT_AREA + st::SLOTS as u64 * st::SLOT_SIZE <= host::STUB_BASE);
