//! The x86-64 user-mode machine state Linux gives 64-bit programs: segment
//! selectors, the flags a program may change, the FPU image, `arch_prctl`
//! codes, and where the address space ends.

use core::mem::size_of;

use zerocopy::{AsBytes, FromBytes, FromZeroes};

/// The 64-bit user code segment selector (`__USER_CS`).
pub const USER_CS: u64 = 0x33;
/// The user data/stack segment selector (`__USER_DS`).
pub const USER_DS: u64 = 0x2b;
/// The 32-bit (compatibility mode) user code segment selector (`__USER32_CS`).
pub const USER32_CS: u64 = 0x23;

/// The interrupt-enable flag: always set in user mode.
pub const EFLAGS_IF: u64 = 0x200;
/// Bit 1 of EFLAGS, which always reads as one.
pub const EFLAGS_FIXED: u64 = 0x2;
/// The trap flag (single-step).
pub const EFLAGS_TF: u64 = 0x100;
/// The direction flag.
pub const EFLAGS_DF: u64 = 0x400;
/// The flags a program may set itself (`popf`, a signal frame): CF PF AF ZF
/// SF TF DF OF, RF and AC, as Linux's `FIX_EFLAGS`. Never IOPL, NT, VM or the
/// interrupt flags.
pub const EFLAGS_USER: u64 = 0x1 | 0x4 | 0x10 | 0x40 | 0x80 | EFLAGS_TF | EFLAGS_DF | 0x800 | 0x10000 | 0x40000;

/// The vsyscall page every x86-64 process has at a fixed address.
pub const VSYSCALL_ADDR: u64 = 0xffff_ffff_ff60_0000;
/// The three vsyscall entry points, 1024 bytes apart, and the calls they stand for.
pub const VSYSCALL_ENTRIES: [(u64, u64); 3] = [
    (VSYSCALL_ADDR, crate::sysno::GETTIMEOFDAY),
    (VSYSCALL_ADDR + 0x400, crate::sysno::TIME),
    (VSYSCALL_ADDR + 0x800, crate::sysno::GETCPU),
];

/// The call a vsyscall entry at `addr` stands for, if `addr` is one.
pub fn vsyscall_at(addr: u64) -> Option<u64> {
    VSYSCALL_ENTRIES.iter().find(|(at, _)| *at == addr).map(|(_, nr)| *nr)
}

/// The Linux audit architecture of 64-bit x86 system calls.
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// The Linux audit architecture of 32-bit x86 system calls (`int $0x80`,
/// `sysenter`, `syscall` from compatibility mode).
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;
/// The bit that marks an x32 system call number.
pub const X32_SYSCALL_BIT: u64 = 0x4000_0000;

/// The MXCSR bits a program may set (Linux's `mxcsr_feature_mask` on CPUs
/// with DAZ): any other makes the CPU refuse the state.
pub const MXCSR_FEATURE_MASK: u32 = 0xffff;

/// `arch_prctl` codes.
pub const ARCH_SET_GS: u32 = 0x1001;
pub const ARCH_SET_FS: u32 = 0x1002;
pub const ARCH_GET_FS: u32 = 0x1003;
pub const ARCH_GET_GS: u32 = 0x1004;

/// The 512-byte FXSAVE image (Linux's `struct fxregs_state`, the user
/// `struct _fpstate_64`): x87 and SSE state, then bytes the CPU leaves
/// alone, whose last 48 Linux uses to describe XSAVE state after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromZeroes, FromBytes, AsBytes)]
#[repr(C)]
pub struct FxSave {
    /// The x87 control word.
    pub cwd: u16,
    pub swd: u16,
    pub twd: u16,
    pub fop: u16,
    pub rip: u64,
    pub rdp: u64,
    pub mxcsr: u32,
    pub mxcsr_mask: u32,
    pub st_space: [u32; 32],
    pub xmm_space: [u32; 64],
    pub padding: [u32; 12],
    pub sw_reserved: FpxSwBytes,
}
const _: () = assert!(size_of::<FxSave>() == 512);

/// C `struct _fpx_sw_bytes`: in a signal frame's FXSAVE image, whether an
/// XSAVE image follows and how large it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromZeroes, FromBytes, AsBytes)]
#[repr(C)]
pub struct FpxSwBytes {
    /// `FP_XSTATE_MAGIC1` if XSAVE state follows.
    pub magic1: u32,
    /// The XSAVE image's size plus the `FP_XSTATE_MAGIC2` after it.
    pub extended_size: u32,
    /// The state components present (the XSAVE header's `xfeatures`).
    pub xfeatures: u64,
    /// The XSAVE image's size.
    pub xstate_size: u32,
    pub padding: [u32; 7],
}
const _: () = assert!(size_of::<FpxSwBytes>() == 48);
