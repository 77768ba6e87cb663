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

/// Compiles an allow-list into a BPF program (as raw `sock_filter` bytes): wrong
/// architecture, x32 numbers and every syscall not listed kill the process.
pub fn compile_allow_list(rules: &[Rule]) -> Vec<u8> {
    let n = rules.len();
    assert!(n < 250, "allow-list too long for 8-bit jumps");
    let mut prog: Vec<[u8; 8]> = Vec::with_capacity(n + 6);
    // Instruction indices: 0 ld arch, 1 jeq arch, 2 ld nr, 3 jge x32, 4..4+n jeq nr, 4+n kill, 5+n allow.
    let kill = 4 + n;
    prog.push(insn(BPF_LD_W_ABS, 0, 0, 4));
    prog.push(insn(BPF_JMP_JEQ_K, 0, (kill - 2) as u8, AUDIT_ARCH_X86_64));
    prog.push(insn(BPF_LD_W_ABS, 0, 0, 0));
    prog.push(insn(BPF_JMP_JGE_K, (kill - 4) as u8, 0, X32_SYSCALL_BIT));
    for (i, r) in rules.iter().enumerate() {
        let here = 4 + i;
        prog.push(insn(BPF_JMP_JEQ_K, (kill + 1 - here - 1) as u8, 0, r.nr as u32));
    }
    prog.push(insn(BPF_RET_K, 0, 0, SECCOMP_RET_KILL_PROCESS));
    prog.push(insn(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW));
    prog.concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jumps_land_on_allow_and_kill() {
        let rules = [Rule { nr: 9, why: "mmap" }, Rule { nr: 11, why: "munmap" }];
        let p = compile_allow_list(&rules);
        assert_eq!(p.len(), 8 * 8);
        // jeq for nr 9 at index 4 jumps jt=2 to index 7 (allow).
        assert_eq!(p[4 * 8 + 2], 2);
        assert_eq!(p[5 * 8 + 2], 1);
        // arch mismatch jumps to kill (index 6) from index 1: jf = 4.
        assert_eq!(p[8 + 3], 4);
    }
}
