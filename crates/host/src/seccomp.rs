//! Classic-BPF seccomp programs built from data: an allow-list of syscall
//! numbers, each with the reason it is there; anything else kills the process.

/// One allowed syscall and why it is allowed.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// The syscall number.
    pub nr: u64,
    /// One line saying why the process needs it.
    pub why: &'static str,
}

const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JMP_JEQ_K: u16 = 0x15;
const BPF_JMP_JGE_K: u16 = 0x35;
const BPF_RET_K: u16 = 0x06;
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[0..2].copy_from_slice(&code.to_ne_bytes());
    b[2] = jt;
    b[3] = jf;
    b[4..8].copy_from_slice(&k.to_ne_bytes());
    b
}

/// What a filter does with a system call that is not on its list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mismatch {
    /// Kill the whole process (the only choice in production).
    KillProcess,
    /// Allow it, and have the kernel log it (audit `type=1326`, code
    /// `0x7ffc0000`): how the list is grown.
    Log,
}

const SECCOMP_RET_LOG: u32 = 0x7ffc_0000;

/// Compiles an allow-list into a BPF program (as raw `sock_filter` bytes): wrong
/// architecture, x32 numbers and every syscall not listed kill the process.
pub fn compile_allow_list(rules: &[Rule]) -> Vec<u8> {
    compile_allow_list_with(rules, Mismatch::KillProcess)
}

/// As [`compile_allow_list`], with `mismatch` for a syscall not listed.
/// A wrong architecture or an x32 number kills the process either way.
pub fn compile_allow_list_with(rules: &[Rule], mismatch: Mismatch) -> Vec<u8> {
    let n = rules.len();
    assert!(n < 250, "allow-list too long for 8-bit jumps");
    // Instruction indices: 0 ld arch, 1 jeq arch, 2 ld nr, 3 jge x32,
    // 4..4+n jeq nr, 4+n otherwise, 5+n allow, 6+n kill.
    let (allow, kill) = (5 + n, 6 + n);
    let otherwise = match mismatch {
        Mismatch::KillProcess => SECCOMP_RET_KILL_PROCESS,
        Mismatch::Log => SECCOMP_RET_LOG,
    };
    let mut prog: Vec<[u8; 8]> = Vec::with_capacity(n + 7);
    prog.push(insn(BPF_LD_W_ABS, 0, 0, 4));
    prog.push(insn(BPF_JMP_JEQ_K, 0, (kill - 2) as u8, AUDIT_ARCH_X86_64));
    prog.push(insn(BPF_LD_W_ABS, 0, 0, 0));
    prog.push(insn(BPF_JMP_JGE_K, (kill - 4) as u8, 0, X32_SYSCALL_BIT));
    for (i, r) in rules.iter().enumerate() {
        let here = 4 + i;
        prog.push(insn(BPF_JMP_JEQ_K, (allow - here - 1) as u8, 0, r.nr as u32));
    }
    prog.push(insn(BPF_RET_K, 0, 0, otherwise));
    prog.push(insn(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW));
    prog.push(insn(BPF_RET_K, 0, 0, SECCOMP_RET_KILL_PROCESS));
    prog.concat()
}

/// Sets `no_new_privs` and installs `program` (from [`compile_allow_list`])
/// on every thread of the calling process, and on all it later creates.
pub fn install_on_all_threads(program: &[u8]) -> std::io::Result<()> {
    const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;
    const SECCOMP_FILTER_FLAG_TSYNC: libc::c_ulong = 1;
    if program.is_empty() || !program.len().is_multiple_of(8) || program.len() / 8 > usize::from(u16::MAX) {
        return Err(std::io::Error::other("not a BPF program"));
    }
    let fprog =
        libc::sock_fprog { len: (program.len() / 8) as u16, filter: program.as_ptr() as *mut libc::sock_filter };
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fprog` points at `program`, which outlives the call; the kernel
    // copies the program and keeps no pointer to it.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            SECCOMP_FILTER_FLAG_TSYNC,
            &fprog as *const libc::sock_fprog,
        )
    };
    match ret {
        0 => Ok(()),
        // TSYNC returns the id of a thread it could not synchronise.
        r if r > 0 => Err(std::io::Error::other(format!("thread {r} could not take the seccomp filter"))),
        _ => Err(std::io::Error::last_os_error()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jumps_land_on_allow_and_kill() {
        let rules = [Rule { nr: 9, why: "mmap" }, Rule { nr: 11, why: "munmap" }];
        let p = compile_allow_list_with(&rules, Mismatch::Log);
        assert_eq!(p.len(), 9 * 8);
        // jeq for nr 9 at index 4 jumps jt=2 to index 7 (allow).
        assert_eq!(p[4 * 8 + 2], 2);
        assert_eq!(p[5 * 8 + 2], 1);
        // arch mismatch jumps to kill (index 8) from index 1: jf = 6; x32 from 3: jt = 4.
        assert_eq!(p[8 + 3], 6);
        assert_eq!(p[3 * 8 + 2], 4);
        let ret = |i: usize| u32::from_ne_bytes(p[i * 8 + 4..i * 8 + 8].try_into().unwrap());
        assert_eq!((ret(6), ret(7), ret(8)), (SECCOMP_RET_LOG, SECCOMP_RET_ALLOW, SECCOMP_RET_KILL_PROCESS));
    }
}
