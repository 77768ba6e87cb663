//! The systrap platform's host side: app threads run untraced in stub
//! processes, with a seccomp filter that turns every app system call into a
//! SIGSYS for the stub's handler (`SECCOMP_RET_TRAP`). The handler posts
//! the thread's signal frame in its *slot* (a context page and an
//! alternate signal stack, in the memory file) and waits for the Sentry,
//! which reads and writes the frame through the memory file and resumes
//! it. Address-space changes are made by the process's first stub thread,
//! the *syscall thread*, from a request page the app can read but not
//! write, and acknowledged through a pipe only that thread can write to.
//!
//! The layout, the protocol words and the filters are here; the assembly is
//! in `stub.rs` (one page with the ptrace platform's stub code).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::memfile::{MemoryFile, PAGE};
use crate::stub::{in_stub, Site, STUB_BASE};

extern "C" {
    static moat_stub_code_start: u8;
    static moat_st_site_wait: u8;
    static moat_st_site_mmap: u8;
    static moat_st_site_munmap: u8;
    static moat_st_site_clone: u8;
    static moat_st_site_ack: u8;
    static moat_st_site_altstack: u8;
    static moat_st_site_filter: u8;
    static moat_st_handler: u8;
    static moat_st_site_post: u8;
    static moat_st_site_sleep: u8;
    static moat_st_site_setfs: u8;
    static moat_st_site_setgs: u8;
    static moat_st_site_sigreturn: u8;
    static moat_st_site_exit: u8;
    static moat_st_app_fprog: u8;
    static moat_st_sigaction: u8;
    static moat_st_site_req_rw: u8;
    static moat_st_site_pipe: u8;
    static moat_st_site_ready: u8;
    static moat_st_site_req_ro: u8;
    static moat_st_site_sigaction: u8;
    static moat_st_site_mask: u8;
    static moat_st_app_filter: u8;
}

/// Where the slots of app threads begin: 16384 slots of 64 KiB below the
/// stub's pages, so app mappings end here.
pub const SLOT_AREA: u64 = STUB_BASE - (1 << 30);
/// The first address app mappings may not use under systrap.
pub const APP_TOP: u64 = SLOT_AREA;
/// One app thread's slot: its context page, then its alternate stack.
pub const SLOT_SIZE: u64 = 1 << 16;
/// How many slots there are (app threads at once, in the whole sandbox).
pub const SLOTS: u32 = 1 << 14;
/// Where the syscall thread's request page is mapped (read-only) in a stub.
pub const REQ_ADDR: u64 = STUB_BASE + 2 * PAGE;
/// The host signal the Sentry interrupts a running app thread with.
pub const KICK_SIGNAL: i32 = libc::SIGURG;

/// Offsets in a slot's context page (the words the handler and the Sentry share).
pub mod ctx {
    /// u32 futex word: one of the `STATE_*` values; 0 once the thread exited.
    pub const STATE: u64 = 0;
    /// u32: `CMD_*` bits the handler carries out on resume.
    pub const CMD: u64 = 4;
    /// u32: the signal the handler took (0 for a new thread's first report).
    pub const SIGNO: u64 = 8;
    /// u32: the thread's host tid (written by the syscall thread).
    pub const TID: u64 = 12;
    /// u64: the handler's siginfo pointer.
    pub const INFO: u64 = 16;
    /// u64: the frame's ucontext pointer (what rt_sigreturn returns with).
    pub const UC: u64 = 24;
    /// u64: the fs base to set (with `CMD_SET_FS`).
    pub const FS: u64 = 32;
    /// u64: the gs base to set (with `CMD_SET_GS`).
    pub const GS: u64 = 40;
    /// (48..72: the new thread's `stack_t` for sigaltstack.)
    /// u32: how many times the handler spins on the word before it sleeps
    /// (the Sentry's hint; the handler takes at most `MAX_APP_SPIN`).
    pub const SPIN: u64 = 80;
}
/// The most spins the handler makes, whatever the hint says.
pub const MAX_APP_SPIN: u32 = 16384;
/// The thread is gone (the kernel cleared the word: CLONE_CHILD_CLEARTID).
pub const STATE_GONE: u32 = 0;
/// The thread runs app code.
pub const STATE_RUNNING: u32 = 1;
/// The thread has posted an event and waits for the Sentry.
pub const STATE_POSTED: u32 = 2;
/// The Sentry has answered: the thread may go on.
pub const STATE_RESUME: u32 = 3;
/// Posted, and the thread sleeps on the word: resuming it takes a futex wake.
pub const STATE_POSTED_ASLEEP: u32 = 4;
/// Running, and the Sentry sleeps on the word: posting takes a futex wake.
pub const STATE_RUNNING_WATCHED: u32 = 5;
/// Resumed but not yet picked up, and the Sentry sleeps on the word: the
/// thread, picking it up, makes it `STATE_RUNNING_WATCHED`.
pub const STATE_RESUME_WATCHED: u32 = 6;
pub const CMD_SET_FS: u32 = 1;
pub const CMD_SET_GS: u32 = 2;
pub const CMD_EXIT: u32 = 4;
/// Where in its slot a new thread's first frame (a ucontext) lies.
pub const FRESH_UC: u64 = SLOT_SIZE - 1024;
/// Where in its slot the Sentry puts FPU state it sets (64-byte aligned).
pub const FP_AREA: u64 = 0x2000;
/// The room there.
pub const FP_MAX: u64 = 0x6000;
/// The alternate stack: from the end of the context page to the end of the slot.
pub const STACK: u64 = PAGE;
pub const STACK_SIZE: u64 = SLOT_SIZE - PAGE;

/// The request page: a sequence number (u32), an op count (u32), and from
/// `REQ_OPS` up to `MAX_OPS` ops of `OP_SIZE` bytes (kind u32, then u64s).
pub const REQ_SEQ: u64 = 0;
pub const REQ_COUNT: u64 = 4;
pub const REQ_OPS: u64 = 64;
pub const OP_SIZE: u64 = 48;
pub const MAX_OPS: usize = 84;

/// One address-space change, made by the syscall thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// mmap(addr, len, prot, MAP_SHARED|MAP_FIXED, memory file, off).
    Map { addr: u64, len: u64, prot: u64, off: u64 },
    /// munmap(addr, len).
    Unmap { addr: u64, len: u64 },
    /// A new app thread in the slot at `slot` (already mapped).
    Clone { slot: u64 },
}

impl Op {
    /// The op as the request page holds it.
    pub fn encode(&self) -> [u8; OP_SIZE as usize] {
        let (kind, a) = match *self {
            Op::Map { addr, len, prot, off } => (1u32, [addr, len, prot, off]),
            Op::Unmap { addr, len } => (2, [addr, len, 0, 0]),
            Op::Clone { slot } => (3, [slot, 0, 0, 0]),
        };
        let mut b = [0u8; OP_SIZE as usize];
        b[0..4].copy_from_slice(&kind.to_ne_bytes());
        for (i, v) in a.iter().enumerate() {
            b[8 + 8 * i..16 + 8 * i].copy_from_slice(&v.to_ne_bytes());
        }
        b
    }
}

const FUTEX_WAIT: u32 = 0;
const FUTEX_WAKE: u32 = 1;
const MAP_SHARED_FIXED: u32 = 0x11;
const ARCH_SET_GS: u32 = 0x1001;
const ARCH_SET_FS: u32 = 0x1002;
const SECCOMP_SET_MODE_FILTER: u32 = 1;
/// clone's flags for a new app thread: a thread of the stub process, whose
/// exit clears its slot's state word.
const CLONE_THREAD_CLEARTID: u32 = crate::stub::THREAD_FLAGS as u32 | 0x0020_0000;
/// The handler's host signals: the filter's SIGSYS, the CPU's faults, the kick.
pub const HANDLED: [i32; 7] =
    [libc::SIGSYS, libc::SIGSEGV, libc::SIGBUS, libc::SIGFPE, libc::SIGILL, libc::SIGTRAP, KICK_SIGNAL];

fn at(label: *const u8) -> u64 {
    in_stub(label)
}

/// The two fds pipe(2) gives in a stub, which holds only the memory file:
/// the two lowest numbers but `memfd`.
pub fn pipe_fds(memfd: u32) -> (u32, u32) {
    let mut free = (0u32..).filter(|&n| n != memfd);
    (free.next().unwrap_or(0), free.next().unwrap_or(1))
}

/// The sites app threads may call natively (each also in the base filter).
fn app_sites() -> Vec<Site> {
    vec![
        Site {
            nr: abi::sysno::FUTEX,
            after: at(std::ptr::addr_of!(moat_st_site_post)),
            args: vec![(1, FUTEX_WAKE)],
            why: "the handler wakes the Sentry: only wakes a waiter on a word of the app's own address space",
        },
        Site {
            nr: abi::sysno::FUTEX,
            after: at(std::ptr::addr_of!(moat_st_site_sleep)),
            args: vec![(1, FUTEX_WAIT)],
            why: "the handler waits for the Sentry's answer (a plain wait, on any word: the app's own time)",
        },
        Site {
            nr: abi::sysno::ARCH_PRCTL,
            after: at(std::ptr::addr_of!(moat_st_site_setfs)),
            args: vec![(0, ARCH_SET_FS)],
            why: "the handler sets the thread's fs base the Sentry gave it (the thread's own register)",
        },
        Site {
            nr: abi::sysno::ARCH_PRCTL,
            after: at(std::ptr::addr_of!(moat_st_site_setgs)),
            args: vec![(0, ARCH_SET_GS)],
            why: "the handler sets the thread's gs base the Sentry gave it (the thread's own register)",
        },
        Site {
            nr: abi::sysno::RT_SIGRETURN,
            after: at(std::ptr::addr_of!(moat_st_site_sigreturn)),
            args: vec![],
            why: "the handler returns into app code with the frame the Sentry left (a forged frame sets \
                  only the thread's own registers, mask and alternate stack)",
        },
        Site {
            nr: abi::sysno::EXIT,
            after: at(std::ptr::addr_of!(moat_st_site_exit)),
            args: vec![],
            why: "a thread the Sentry ends exits (early, the app only ends its own thread: the Sentry sees \
                  its slot cleared and ends the process)",
        },
    ]
}

/// The systrap sites of the base filter every stub thread has: the app
/// threads' own, the syscall thread's, a new thread's set-up, and the
/// calls the Sentry injects while it sets a stub up. App threads add
/// [`app_filter`] on top, which traps every one of these but their own.
pub fn base_sites(memfd: u32) -> Vec<Site> {
    let (_, wfd) = pipe_fds(memfd);
    let mut v = app_sites();
    v.extend([
        Site {
            nr: abi::sysno::FUTEX,
            after: at(std::ptr::addr_of!(moat_st_site_wait)),
            args: vec![(1, FUTEX_WAIT)],
            why: "the syscall thread waits for a request",
        },
        Site {
            nr: abi::sysno::MMAP,
            after: at(std::ptr::addr_of!(moat_st_site_mmap)),
            args: vec![(3, MAP_SHARED_FIXED), (4, memfd)],
            why: "the syscall thread maps memory-file windows the Sentry asked for (from its read-only page)",
        },
        Site {
            nr: abi::sysno::MUNMAP,
            after: at(std::ptr::addr_of!(moat_st_site_munmap)),
            args: vec![],
            why: "the syscall thread unmaps what the Sentry asked",
        },
        Site {
            nr: abi::sysno::CLONE,
            after: at(std::ptr::addr_of!(moat_st_site_clone)),
            args: vec![(0, CLONE_THREAD_CLEARTID)],
            why: "the syscall thread starts a new app thread (a thread, never a process)",
        },
        Site {
            nr: abi::sysno::WRITE,
            after: at(std::ptr::addr_of!(moat_st_site_ack)),
            args: vec![(0, wfd)],
            why: "the syscall thread acknowledges a request on its pipe",
        },
        Site {
            nr: abi::sysno::SIGALTSTACK,
            after: at(std::ptr::addr_of!(moat_st_site_altstack)),
            args: vec![],
            why: "a new app thread sets its slot's alternate stack",
        },
        Site {
            nr: abi::sysno::SECCOMP,
            after: at(std::ptr::addr_of!(moat_st_site_filter)),
            args: vec![(0, SECCOMP_SET_MODE_FILTER)],
            why: "a new app thread adds the app threads' filter (from the read-only code page)",
        },
        Site {
            nr: abi::sysno::MMAP,
            after: at(std::ptr::addr_of!(moat_st_site_req_rw)),
            args: vec![(1, PAGE as u32), (2, 3), (3, MAP_SHARED_FIXED), (4, memfd)],
            why: "a new stub maps its request page read-write while the kernel writes its pipe's fds there",
        },
        Site {
            nr: abi::sysno::PIPE2,
            after: at(std::ptr::addr_of!(moat_st_site_pipe)),
            args: vec![],
            why: "a new stub makes its ack pipe (its only fds: the memory file and this pipe)",
        },
        Site {
            nr: abi::sysno::FUTEX,
            after: at(std::ptr::addr_of!(moat_st_site_ready)),
            args: vec![(1, FUTEX_WAKE)],
            why: "a new stub tells the Sentry its pipe is there",
        },
        Site {
            nr: abi::sysno::MMAP,
            after: at(std::ptr::addr_of!(moat_st_site_req_ro)),
            args: vec![(1, PAGE as u32), (2, 1), (3, MAP_SHARED_FIXED), (4, memfd)],
            why: "a new stub maps its request page read-only for good",
        },
        Site {
            nr: abi::sysno::RT_SIGACTION,
            after: at(std::ptr::addr_of!(moat_st_site_sigaction)),
            args: vec![],
            why: "a new stub installs the handler (the sigaction in its read-only code page)",
        },
        Site {
            nr: abi::sysno::RT_SIGPROCMASK,
            after: at(std::ptr::addr_of!(moat_st_site_mask)),
            args: vec![],
            why: "a new stub blocks every signal in its syscall thread",
        },
    ]);
    v
}

/// The filter every app thread adds to the base one: a call from app code
/// (or in the wrong architecture) traps to the handler; from the stub's
/// page only the handler's own sites pass; any other kills the process.
pub fn app_filter() -> Vec<u8> {
    use seccompiler::sock_filter;
    const TRAP: u32 = 0x0003_0000;
    const KILL_PROCESS: u32 = 0x8000_0000;
    let ld = |k| sock_filter { code: 0x20, jt: 0, jf: 0, k };
    let jeq = |k, jt, jf| sock_filter { code: 0x15, jt, jf, k };
    let jge = |k, jt, jf| sock_filter { code: 0x35, jt, jf, k };
    let ret = |k| sock_filter { code: 0x06, jt: 0, jf: 0, k };
    let mut p = vec![
        ld(4),
        jeq(abi::x86::AUDIT_ARCH_X86_64, 1, 0),
        ret(TRAP),
        ld(12),
        jeq((STUB_BASE >> 32) as u32, 1, 0),
        ret(TRAP),
        ld(8),
        jge(STUB_BASE as u32, 1, 0),
        ret(TRAP),
    ];
    crate::stub::push_sites(&mut p, &app_sites());
    p.push(ret(KILL_PROCESS));
    crate::seccomp::to_bytes(&p)
}

fn page_offset(label: *const u8) -> u64 {
    label as u64 - std::ptr::addr_of!(moat_stub_code_start) as u64
}

/// Writes what the systrap code reads into the code page at `code_off`:
/// the app filter and its sock_fprog, and the handler's sigaction.
pub(crate) fn write_code_data(mem: &MemoryFile, code_off: u64) -> io::Result<()> {
    let filter = app_filter();
    if filter.len() > 1024 {
        return Err(io::Error::other("the app threads' filter exceeds its room in the stub page"));
    }
    let filter_at = std::ptr::addr_of!(moat_st_app_filter);
    mem.write(code_off + page_offset(filter_at), &filter)?;
    let mut fprog = [0u8; 16];
    fprog[0..2].copy_from_slice(&((filter.len() / 8) as u16).to_ne_bytes());
    fprog[8..16].copy_from_slice(&at(filter_at).to_ne_bytes());
    mem.write(code_off + page_offset(std::ptr::addr_of!(moat_st_app_fprog)), &fprog)?;
    const SA_SIGINFO: u64 = 4;
    const SA_ONSTACK: u64 = 0x0800_0000;
    const SA_RESTORER: u64 = 0x0400_0000;
    let mut sa = [0u8; 32];
    sa[0..8].copy_from_slice(&at(std::ptr::addr_of!(moat_st_handler)).to_ne_bytes());
    sa[8..16].copy_from_slice(&(SA_SIGINFO | SA_ONSTACK | SA_RESTORER).to_ne_bytes());
    // Never used (the handler returns with rt_sigreturn itself): the ud2 after it.
    sa[16..24].copy_from_slice(&at(std::ptr::addr_of!(moat_st_site_sigreturn)).to_ne_bytes());
    sa[24..32].copy_from_slice(&u64::MAX.to_ne_bytes());
    mem.write(code_off + page_offset(std::ptr::addr_of!(moat_st_sigaction)), &sa)?;
    Ok(())
}

/// Where in the request page a new stub says its pipe is there (u32, 1).
pub const REQ_READY: u64 = 16;

/// Waits for a stub from [`crate::StubFactory::new_systrap_stub`] to set
/// itself up: its ready word, then (through `pidfd`) the read end of its ack
/// pipe, then its first ack. Returns that read end. A stub that dies or
/// takes longer than 10 s is an error (the caller drops it, which kills it).
pub fn adopt(mem: &MemoryFile, req_off: u64, pidfd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while mem.load_u32_mapped(req_off + REQ_READY)? != 1 {
        if wait_exit(pidfd, 0) {
            return Err(io::Error::other("a new stub died while it set itself up"));
        }
        if std::time::Instant::now() > deadline {
            return Err(io::Error::other("a new stub does not set itself up"));
        }
        mem.futex_wait(req_off + REQ_READY, 0, 50)?;
    }
    let memfd = mem.fd().as_raw_fd() as u32;
    let ack = pidfd_getfd(pidfd, pipe_fds(memfd).0 as i32)?;
    let mut b = [0u8; 1];
    loop {
        match crate::sys::read(std::os::fd::AsFd::as_fd(&ack), &mut b) {
            Ok(1) if b[0] == 1 => return Ok(ack),
            Ok(_) => return Err(io::Error::other("a new stub failed to set itself up")),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// A copy of fd `fd` of the process `pidfd` names (pidfd_getfd(2)).
pub fn pidfd_getfd(pidfd: BorrowedFd<'_>, fd: i32) -> io::Result<OwnedFd> {
    // SAFETY: plain integers; the kernel returns a new fd of ours or an error.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this new fd; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(r as i32) })
}

/// Waits up to `timeout_ms` for the process behind `pidfd` to exit; true once it has.
pub fn wait_exit(pidfd: BorrowedFd<'_>, timeout_ms: i32) -> bool {
    crate::sys::poll_one(pidfd, libc::POLLIN, timeout_ms).is_ok_and(|r| r & libc::POLLIN != 0)
}
