//! Thin safe wrappers over the few host syscalls the Sentry and Gofer make
//! directly (I/O on host-backed fds, clocks, randomness, processes).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

fn check(ret: libc::c_long) -> io::Result<usize> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}

/// read(2) on a host fd.
pub fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: buf is a valid writable slice of buf.len() bytes for the call's duration.
    let r = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    check(r as libc::c_long)
}

/// write(2) on a host fd.
pub fn write(fd: BorrowedFd<'_>, data: &[u8]) -> io::Result<usize> {
    // SAFETY: data is a valid readable slice of data.len() bytes for the call's duration.
    let r = unsafe { libc::write(fd.as_raw_fd(), data.as_ptr().cast(), data.len()) };
    check(r as libc::c_long)
}

/// The next range of a host file at or after `off` that holds data
/// (lseek's SEEK_DATA, then SEEK_HOLE): holes between are read as zeros
/// without being read. None past the last data.
pub fn data_extent(fd: BorrowedFd<'_>, off: u64) -> io::Result<Option<(u64, u64)>> {
    let seek = |whence| {
        let at = libc::off_t::try_from(off).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: lseek on a borrowed fd with integer arguments.
        let r = unsafe { libc::lseek(fd.as_raw_fd(), at, whence) };
        check(r as libc::c_long).map(|v| v as u64)
    };
    let start = match seek(libc::SEEK_DATA) {
        Ok(start) => start,
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => return Ok(None),
        Err(e) => return Err(e),
    };
    let seek_hole = |from: u64| {
        let at = libc::off_t::try_from(from).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: as above.
        let r = unsafe { libc::lseek(fd.as_raw_fd(), at, libc::SEEK_HOLE) };
        check(r as libc::c_long).map(|v| v as u64)
    };
    Ok(Some((start, seek_hole(start)?)))
}

/// poll(2) on one host fd; returns the revents (0 on timeout).
pub fn poll_one(fd: BorrowedFd<'_>, events: i16, timeout_ms: i32) -> io::Result<i16> {
    let mut p = libc::pollfd { fd: fd.as_raw_fd(), events, revents: 0 };
    // SAFETY: p is a valid pollfd array of length 1.
    let r = unsafe { libc::poll(&mut p, 1, timeout_ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(0);
        }
        return Err(e);
    }
    Ok(p.revents)
}

/// ioctl(2) with a pointer to a buffer, for the terminal requests a host tty serves
/// (TCGETS, TCSETS*, TIOCGWINSZ, TIOCSWINSZ, TIOCGPGRP). `buf` must be at least as large
/// as the request's argument structure; the caller picks sizes from the ABI.
pub fn ioctl_buf(fd: BorrowedFd<'_>, request: u64, buf: &mut [u8]) -> io::Result<i32> {
    let need = match request as libc::c_ulong {
        // The kernel's struct termios (36 bytes), not glibc's larger one.
        libc::TCGETS | libc::TCSETS | libc::TCSETSW | libc::TCSETSF => 36,
        libc::TIOCGWINSZ | libc::TIOCSWINSZ => std::mem::size_of::<libc::winsize>(),
        libc::TIOCGPGRP | libc::TIOCSPGRP => 4,
        _ => return Err(io::Error::from_raw_os_error(libc::ENOTTY)),
    };
    if buf.len() < need {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: request is one of the whitelisted requests above whose argument is a pointer to
    // a structure of at most `need` bytes, and buf holds at least that many writable bytes.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), request as libc::c_ulong, buf.as_mut_ptr()) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Fills `buf` from the host's getrandom(2).
pub fn getrandom(buf: &mut [u8]) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        // SAFETY: the pointer and length describe the unfilled tail of buf.
        let r = unsafe { libc::getrandom(buf[done..].as_mut_ptr().cast(), buf.len() - done, 0) };
        done += check(r as libc::c_long)?;
    }
    Ok(())
}

/// clock_gettime(2) for the clocks the Sentry bases its own on; (seconds, nanoseconds).
pub fn clock_gettime(clock: libc::clockid_t) -> io::Result<(i64, i64)> {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: ts is a valid timespec to be written.
    let r = unsafe { libc::clock_gettime(clock, &mut ts) };
    check(r as libc::c_long)?;
    Ok((ts.tv_sec, ts.tv_nsec))
}

/// CPU time of the calling host thread (ns), for the app thread it runs.
pub fn thread_cpu_ns() -> u64 {
    clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID).map(|(s, n)| s as u64 * 1_000_000_000 + n as u64).unwrap_or(0)
}

/// The most resident memory the calling process has had (KiB): its own
/// pages and the memory-file pages it touched through its view.
pub fn max_rss_kib() -> u64 {
    // SAFETY: rusage is plain data that getrusage fills.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: usage is a valid out-pointer.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } < 0 {
        return 0;
    }
    usage.ru_maxrss.max(0) as u64
}

/// Sends host signal `sig` to host thread `tid` of process `pid`.
pub fn tgkill(pid: i32, tid: i32, sig: i32) -> io::Result<()> {
    // SAFETY: tgkill takes plain integers.
    let r = unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, sig) };
    check(r).map(|_| ())
}

/// Sends host signal `sig` to process `pid`.
pub fn kill(pid: i32, sig: i32) -> io::Result<()> {
    // SAFETY: kill takes plain integers.
    let r = unsafe { libc::kill(pid, sig) };
    check(r as libc::c_long).map(|_| ())
}

/// The calling host thread's id.
pub fn gettid() -> i32 {
    // SAFETY: gettid has no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

/// Closes a raw fd the caller owns and will not use again.
pub fn close(fd: RawFd) {
    // SAFETY: the caller owns fd and drops every other handle to it.
    unsafe { libc::close(fd) };
}

/// The host's auxiliary-vector value for `key` (AT_HWCAP etc.), 0 if absent.
pub fn auxval(key: u64) -> u64 {
    // SAFETY: getauxval only reads the process's auxiliary vector.
    unsafe { libc::getauxval(key as libc::c_ulong) as u64 }
}

/// Takes ownership of an fd inherited from the parent process (e.g. `moat gofer --fd 3`),
/// after checking that it is open. The caller must not use the number afterwards.
pub fn take_inherited_fd(fd: RawFd) -> io::Result<std::os::fd::OwnedFd> {
    // SAFETY: F_GETFD only queries the descriptor table.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the fd is open (checked above) and, by this function's contract, owned by the
    // caller alone from now on.
    Ok(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// Marks every fd from `first` up close-on-exec, so that fds inherited by
/// mistake (a container engine's own sockets) reach no child we spawn.
pub fn cloexec_from(first: RawFd) -> io::Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets fd flags; no fd is closed.
    let r =
        unsafe { libc::syscall(libc::SYS_close_range, first as libc::c_uint, libc::c_uint::MAX, CLOSE_RANGE_CLOEXEC) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Raises the soft limit on open files to the hard one: the Gofers hold an
/// fd per walked file and the Sentry one per cached file, which the usual
/// soft limit of 1024 would cut short.
pub fn raise_open_files_limit() -> io::Result<()> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes one rlimit struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    limit.rlim_cur = limit.rlim_max;
    // SAFETY: setrlimit reads one rlimit struct we own.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The soft limit on open files (1024 if it cannot be read).
pub fn open_files_limit() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes one rlimit struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 1024;
    }
    limit.rlim_cur
}

/// Keeps glibc's malloc from opening files once the Sentry's seccomp filter
/// forbids it: with the number of arenas fixed it never counts CPUs (it
/// opens /sys/devices/system/cpu/online when a ninth thread first
/// allocates), and with trimming off it never shrinks a thread's heap (it
/// opens /proc/sys/vm/overcommit_memory the first time it does).
pub fn tame_malloc(arenas: i32) -> io::Result<()> {
    // SAFETY: mallopt only changes malloc's tunables.
    let fixed = unsafe { libc::mallopt(libc::M_ARENA_MAX, arenas) } == 1;
    // SAFETY: as above. The largest threshold mallopt takes: no heap of a
    // thread's arena (64 MiB at most) ever reaches it.
    let untrimmed = unsafe { libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX) } == 1;
    // SAFETY: as above. Fixing the trim threshold also fixes the mmap
    // threshold, which would otherwise have grown: keep I/O buffers (a
    // read's megabyte) on the heap rather than mapping and faulting them
    // anew each time (32 MiB is the most malloc allows).
    let unmapped = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20) } == 1;
    if fixed && untrimmed && unmapped {
        Ok(())
    } else {
        Err(io::Error::other("mallopt failed"))
    }
}

/// Gives up every capability of the calling thread (effective, permitted,
/// inheritable), for good: threads and processes it creates later start with
/// none either. Other threads keep theirs (capabilities are per thread).
pub fn drop_thread_capabilities() -> io::Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    let header = Header { version: LINUX_CAPABILITY_VERSION_3, pid: 0 };
    let data = [Data { effective: 0, permitted: 0, inheritable: 0 }; 2];
    // SAFETY: capset reads the header and two data structs (version 3 layout),
    // which live until the call returns; pid 0 means the calling thread.
    let r = unsafe { libc::syscall(libc::SYS_capset, &header as *const Header, data.as_ptr()) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Makes the process `command` spawns receive `signal` when the thread that
/// spawned it dies (PR_SET_PDEATHSIG), e.g. a daemon a test starts.
pub fn die_with_parent(command: &mut std::process::Command, signal: libc::c_int) {
    use std::os::unix::process::CommandExt;
    // SAFETY: between fork and exec the child only calls prctl, which is
    // async-signal-safe, and touches no memory shared with the parent.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, signal as libc::c_ulong, 0, 0, 0) == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        });
    }
}

/// Sets or clears FD_CLOEXEC, so an fd can be inherited by a child we spawn.
pub fn set_cloexec(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    // SAFETY: F_SETFD on a borrowed (open) fd.
    let r = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, if on { libc::FD_CLOEXEC } else { 0 }) };
    check(r as libc::c_long).map(|_| ())
}

/// The host's RAM in bytes (sysinfo; opens no file), or None if the call fails.
pub fn total_ram() -> Option<u64> {
    // SAFETY: sysinfo is plain data; zeroed is a valid initial value.
    let mut info: libc::sysinfo = unsafe { std::mem::zeroed() };
    // SAFETY: info is a valid sysinfo to be written.
    if unsafe { libc::sysinfo(&mut info) } != 0 {
        return None;
    }
    (info.totalram as u64).checked_mul(u64::from(info.mem_unit))
}

/// Number of CPUs this process may run on (sched_getaffinity; opens no file).
pub fn cpu_count() -> usize {
    // SAFETY: cpu_set_t is plain data; zeroed is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: set is a valid cpu_set_t of the size passed.
    let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if r < 0 {
        return 1;
    }
    // SAFETY: CPU_COUNT only reads the set.
    (unsafe { libc::CPU_COUNT(&set) } as usize).max(1)
}

/// Sets the permission bits of the file `fd` refers to, an `O_PATH` fd
/// included, never through a name: `fchmodat2(fd, "", mode, AT_EMPTY_PATH |
/// AT_SYMLINK_NOFOLLOW)` (Linux 6.6). fchmod(2) refuses `O_PATH` fds, and
/// fchmodat(2) must name the file, which a rename can swap for a symlink
/// between a check and the call. A symlink answers EOPNOTSUPP.
pub fn chmod_fd(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    let flags = libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW;
    // SAFETY: the kernel reads only the path, a static empty C string, and
    // acts on the borrowed (open) fd.
    let r = unsafe { libc::syscall(libc::SYS_fchmodat2, fd.as_raw_fd(), c"".as_ptr(), mode, flags) };
    check(r).map(|_| ())
}

/// A pidfd for host process `pid` (pidfd_open(2)): signals sent through it
/// reach that process only, never one that later gets its pid.
pub fn pidfd_open(pid: i32) -> io::Result<std::os::fd::OwnedFd> {
    // SAFETY: pidfd_open takes plain integers.
    let fd = check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    // SAFETY: the kernel just returned this new fd; nothing else owns it.
    Ok(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as RawFd) })
}

/// Sends host signal `sig` to the process `pidfd` refers to (ESRCH once it has exited).
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, sig: i32) -> io::Result<()> {
    // SAFETY: a null siginfo asks for the kill(2)-like default; the fd is borrowed (open).
    let r = unsafe { libc::syscall(libc::SYS_pidfd_send_signal, pidfd.as_raw_fd(), sig, std::ptr::null::<u8>(), 0) };
    check(r).map(|_| ())
}

/// The time-stamp counter, ordered after earlier loads (`lfence; rdtsc`), as
/// moat's vDSO reads it.
pub fn rdtsc() -> u64 {
    // SAFETY: lfence and rdtsc read no memory and write only the returned
    // value; every x86-64 CPU has both.
    unsafe {
        std::arch::x86_64::_mm_lfence();
        std::arch::x86_64::_rdtsc()
    }
}

/// Whether the CPU says its TSC runs at a constant rate through every
/// power state (CPUID 0x8000_0007, EDX bit 8: "invariant TSC", which Linux
/// shows as `constant_tsc` and `nonstop_tsc`). Only then may a clock be
/// computed from it.
#[allow(unused_unsafe)] // __cpuid is a safe function from Rust 1.87 on; moat builds with 1.80
pub fn invariant_tsc() -> bool {
    // SAFETY: cpuid only reads CPU identification; leaf 0x8000_0000 says
    // which extended leaves exist before 0x8000_0007 is asked.
    unsafe {
        let max = std::arch::x86_64::__cpuid(0x8000_0000).eax;
        max >= 0x8000_0007 && std::arch::x86_64::__cpuid(0x8000_0007).edx & (1 << 8) != 0
    }
}
