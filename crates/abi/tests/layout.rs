//! The ABI structs against the host C library's own definitions: same size,
//! same field offsets, so that a field written in one place is read there.

use std::mem::{offset_of, size_of};

use abi::file::{Stat, Statfs, Statx};
use abi::process::{CloneArgs, Rlimit, Rusage, SchedParam, Sysinfo, Tms, Utsname};
use abi::signal::{SigEvent, SignalStack, SignalfdSigInfo};
use abi::time::{ITimerSpec, ITimerVal, Timespec, Timeval};
use abi::x86::FxSave;

/// Asserts `$ours` and `$theirs` are the same size and each pair of
/// fields is at the same offset.
macro_rules! same_layout {
    ($ours:ty, $theirs:ty, [$($a:ident => $b:ident),* $(,)?]) => {
        assert_eq!(size_of::<$ours>(), size_of::<$theirs>(), "size of {}", stringify!($ours));
        $(assert_eq!(
            offset_of!($ours, $a),
            offset_of!($theirs, $b),
            "offset of {}::{}",
            stringify!($ours),
            stringify!($a)
        );)*
    };
}

#[test]
fn time_structs_match_libc() {
    same_layout!(Timespec, libc::timespec, [sec => tv_sec, nsec => tv_nsec]);
    same_layout!(Timeval, libc::timeval, [sec => tv_sec, usec => tv_usec]);
    same_layout!(ITimerVal, libc::itimerval, [interval => it_interval, value => it_value]);
    same_layout!(ITimerSpec, libc::itimerspec, [interval => it_interval, value => it_value]);
}

#[test]
fn signal_structs_match_libc() {
    same_layout!(SignalStack, libc::stack_t, [sp => ss_sp, flags => ss_flags, size => ss_size]);
    assert_eq!(size_of::<abi::signal::SignalInfo>(), size_of::<libc::siginfo_t>());
    same_layout!(SigEvent, libc::sigevent, [
        value => sigev_value,
        signo => sigev_signo,
        notify => sigev_notify,
        tid => sigev_notify_thread_id,
    ]);
    same_layout!(SignalfdSigInfo, libc::signalfd_siginfo, [
        signo => ssi_signo,
        errno => ssi_errno,
        code => ssi_code,
        pid => ssi_pid,
        uid => ssi_uid,
        fd => ssi_fd,
        tid => ssi_tid,
        band => ssi_band,
        overrun => ssi_overrun,
        trapno => ssi_trapno,
        status => ssi_status,
        int => ssi_int,
        ptr => ssi_ptr,
        utime => ssi_utime,
        stime => ssi_stime,
        addr => ssi_addr,
        addr_lsb => ssi_addr_lsb,
        syscall => ssi_syscall,
        call_addr => ssi_call_addr,
        arch => ssi_arch,
    ]);
    same_layout!(FxSave, libc::_libc_fpstate, [
        cwd => cwd,
        swd => swd,
        twd => ftw,
        fop => fop,
        rip => rip,
        rdp => rdp,
        mxcsr => mxcsr,
        mxcsr_mask => mxcr_mask,
        st_space => _st,
        xmm_space => _xmm,
    ]);
}

#[test]
fn process_structs_match_libc() {
    same_layout!(Rlimit, libc::rlimit, [cur => rlim_cur, max => rlim_max]);
    same_layout!(Rusage, libc::rusage, [
        utime => ru_utime,
        stime => ru_stime,
        maxrss => ru_maxrss,
        minflt => ru_minflt,
        nvcsw => ru_nvcsw,
        nivcsw => ru_nivcsw,
    ]);
    same_layout!(Tms, libc::tms, [utime => tms_utime, stime => tms_stime, cutime => tms_cutime, cstime => tms_cstime]);
    same_layout!(Sysinfo, libc::sysinfo, [
        uptime => uptime,
        loads => loads,
        totalram => totalram,
        freeram => freeram,
        freeswap => freeswap,
        procs => procs,
        totalhigh => totalhigh,
        freehigh => freehigh,
        mem_unit => mem_unit,
    ]);
    same_layout!(Utsname, libc::utsname, [
        sysname => sysname,
        nodename => nodename,
        release => release,
        version => version,
        machine => machine,
        domainname => domainname,
    ]);
    same_layout!(CloneArgs, libc::clone_args, [
        flags => flags,
        pidfd => pidfd,
        child_tid => child_tid,
        parent_tid => parent_tid,
        exit_signal => exit_signal,
        stack => stack,
        stack_size => stack_size,
        tls => tls,
        set_tid => set_tid,
        set_tid_size => set_tid_size,
        cgroup => cgroup,
    ]);
    same_layout!(SchedParam, libc::sched_param, [priority => sched_priority]);
}

#[test]
fn file_structs_match_libc() {
    same_layout!(Stat, libc::stat, [
        dev => st_dev,
        ino => st_ino,
        nlink => st_nlink,
        mode => st_mode,
        uid => st_uid,
        gid => st_gid,
        rdev => st_rdev,
        size => st_size,
        blksize => st_blksize,
        blocks => st_blocks,
        atime => st_atime,
        atime_nsec => st_atime_nsec,
        mtime => st_mtime,
        mtime_nsec => st_mtime_nsec,
        ctime => st_ctime,
        ctime_nsec => st_ctime_nsec,
    ]);
    same_layout!(Statx, libc::statx, [
        mask => stx_mask,
        blksize => stx_blksize,
        attributes => stx_attributes,
        nlink => stx_nlink,
        uid => stx_uid,
        gid => stx_gid,
        mode => stx_mode,
        ino => stx_ino,
        size => stx_size,
        blocks => stx_blocks,
        attributes_mask => stx_attributes_mask,
        atime => stx_atime,
        btime => stx_btime,
        ctime => stx_ctime,
        mtime => stx_mtime,
        rdev_major => stx_rdev_major,
        rdev_minor => stx_rdev_minor,
        dev_major => stx_dev_major,
        dev_minor => stx_dev_minor,
        mnt_id => stx_mnt_id,
        dio_mem_align => stx_dio_mem_align,
        dio_offset_align => stx_dio_offset_align,
        subvol => stx_subvol,
        atomic_write_unit_min => stx_atomic_write_unit_min,
        atomic_write_unit_max => stx_atomic_write_unit_max,
        atomic_write_segments_max => stx_atomic_write_segments_max,
        dio_read_offset_align => stx_dio_read_offset_align,
        atomic_write_unit_max_opt => stx_atomic_write_unit_max_opt,
    ]);
    same_layout!(Statfs, libc::statfs, [
        fs_type => f_type,
        bsize => f_bsize,
        blocks => f_blocks,
        bfree => f_bfree,
        bavail => f_bavail,
        files => f_files,
        ffree => f_ffree,
        fsid => f_fsid,
        namelen => f_namelen,
        frsize => f_frsize,
    ]);
}

#[test]
fn ucontext_matches_glibc_where_glibc_follows_the_kernel() {
    use abi::signal::{SigContext, UContext};
    // glibc's ucontext_t is the kernel's up to uc_sigmask (glibc's sigset_t
    // is longer, and its extra state follows).
    assert_eq!(offset_of!(UContext, link), offset_of!(libc::ucontext_t, uc_link));
    assert_eq!(offset_of!(UContext, stack), offset_of!(libc::ucontext_t, uc_stack));
    assert_eq!(offset_of!(UContext, mcontext), offset_of!(libc::ucontext_t, uc_mcontext));
    assert_eq!(offset_of!(UContext, sigmask), offset_of!(libc::ucontext_t, uc_sigmask));
    // glibc names the sigcontext registers by index into gregs.
    let greg = |reg: i32| offset_of!(libc::mcontext_t, gregs) + reg as usize * 8;
    assert_eq!(offset_of!(SigContext, r8), greg(libc::REG_R8));
    assert_eq!(offset_of!(SigContext, r15), greg(libc::REG_R15));
    assert_eq!(offset_of!(SigContext, rdi), greg(libc::REG_RDI));
    assert_eq!(offset_of!(SigContext, rsi), greg(libc::REG_RSI));
    assert_eq!(offset_of!(SigContext, rbp), greg(libc::REG_RBP));
    assert_eq!(offset_of!(SigContext, rbx), greg(libc::REG_RBX));
    assert_eq!(offset_of!(SigContext, rdx), greg(libc::REG_RDX));
    assert_eq!(offset_of!(SigContext, rax), greg(libc::REG_RAX));
    assert_eq!(offset_of!(SigContext, rcx), greg(libc::REG_RCX));
    assert_eq!(offset_of!(SigContext, rsp), greg(libc::REG_RSP));
    assert_eq!(offset_of!(SigContext, rip), greg(libc::REG_RIP));
    assert_eq!(offset_of!(SigContext, eflags), greg(libc::REG_EFL));
    assert_eq!(offset_of!(SigContext, cs), greg(libc::REG_CSGSFS));
    assert_eq!(offset_of!(SigContext, err), greg(libc::REG_ERR));
    assert_eq!(offset_of!(SigContext, trapno), greg(libc::REG_TRAPNO));
    assert_eq!(offset_of!(SigContext, oldmask), greg(libc::REG_OLDMASK));
    assert_eq!(offset_of!(SigContext, cr2), greg(libc::REG_CR2));
    assert_eq!(offset_of!(SigContext, fpstate), offset_of!(libc::mcontext_t, fpregs));
    assert_eq!(size_of::<SigContext>(), size_of::<libc::mcontext_t>());
}

#[test]
fn siginfo_union_members_sit_where_linux_puts_them() {
    use abi::signal::{SigChld, SigFault, SigRt, SignalInfo};
    // Offsets from the start of siginfo_t, as in Linux's uapi siginfo.h on x86-64.
    let child = SignalInfo::new(17, 0, 1, SigChld { pid: 7, status: 3, ..Default::default() });
    let bytes = abi::AsBytes::as_bytes(&child);
    assert_eq!(bytes[16..20], 7i32.to_ne_bytes(), "si_pid");
    assert_eq!(bytes[24..28], 3i32.to_ne_bytes(), "si_status");
    let queued = SignalInfo::new(10, 0, -1, SigRt { pid: 1, uid: 2, value: 0xabcd });
    assert_eq!(abi::AsBytes::as_bytes(&queued)[24..32], 0xabcdu64.to_ne_bytes(), "si_value");
    assert_eq!(queued.fields::<SigRt>().uid, 2);
    let fault = SignalInfo::new(11, 0, 1, SigFault { addr: 0x1000 });
    assert_eq!(abi::AsBytes::as_bytes(&fault)[16..24], 0x1000u64.to_ne_bytes(), "si_addr");
}

#[test]
fn io_structs_match_libc() {
    use abi::io::{EpollEvent, InotifyEvent, IoVec, PollFd};
    same_layout!(IoVec, libc::iovec, [base => iov_base, len => iov_len]);
    same_layout!(PollFd, libc::pollfd, [fd => fd, events => events, revents => revents]);
    same_layout!(EpollEvent, libc::epoll_event, [events => events, data => u64]);
    same_layout!(InotifyEvent, libc::inotify_event, [wd => wd, mask => mask, cookie => cookie, len => len]);
}

#[test]
fn net_structs_match_libc() {
    use abi::net::{CmsgHdr, Linger, MMsgHdr, MsgHdr, SockaddrUn, Ucred};
    same_layout!(SockaddrUn, libc::sockaddr_un, [family => sun_family, path => sun_path]);
    same_layout!(MsgHdr, libc::msghdr, [
        name => msg_name,
        namelen => msg_namelen,
        iov => msg_iov,
        iovlen => msg_iovlen,
        control => msg_control,
        controllen => msg_controllen,
        flags => msg_flags,
    ]);
    same_layout!(MMsgHdr, libc::mmsghdr, [hdr => msg_hdr, len => msg_len]);
    same_layout!(CmsgHdr, libc::cmsghdr, [len => cmsg_len, level => cmsg_level, kind => cmsg_type]);
    same_layout!(Ucred, libc::ucred, [pid => pid, uid => uid, gid => gid]);
    same_layout!(Linger, libc::linger, [onoff => l_onoff, linger => l_linger]);
    assert_eq!(abi::net::SOCKADDR_STORAGE_LEN, size_of::<libc::sockaddr_storage>());
}

#[test]
fn tty_structs_match_libc() {
    use abi::tty::{Termios, Winsize};
    // glibc's termios is the kernel's with a longer c_cc and two speeds
    // after it: the kernel's fields are at the same offsets.
    assert_eq!(offset_of!(Termios, iflag), offset_of!(libc::termios, c_iflag));
    assert_eq!(offset_of!(Termios, oflag), offset_of!(libc::termios, c_oflag));
    assert_eq!(offset_of!(Termios, cflag), offset_of!(libc::termios, c_cflag));
    assert_eq!(offset_of!(Termios, lflag), offset_of!(libc::termios, c_lflag));
    assert_eq!(offset_of!(Termios, line), offset_of!(libc::termios, c_line));
    assert_eq!(offset_of!(Termios, cc), offset_of!(libc::termios, c_cc));
    assert_eq!(size_of::<Termios>(), offset_of!(libc::termios, c_cc) + 19);
    same_layout!(Winsize, libc::winsize, [row => ws_row, col => ws_col, xpixel => ws_xpixel, ypixel => ws_ypixel]);
}
