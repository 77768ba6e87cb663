//! Stub processes: the host processes app code runs in. A clean *source stub*
//! (its address space holds only the stub pages) clones new stubs on request.

use std::io;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::memfile::{MemoryFile, PAGE};
use crate::ptrace::Tracee;

/// Where the stub's code page is mapped in every stub; its data page follows.
pub const STUB_BASE: u64 = 0x7fff_fff0_0000;
/// The first address app mappings may not use (the stub pages start here).
pub const APP_TOP: u64 = STUB_BASE;
const DATA: u64 = STUB_BASE + PAGE;

// Data page layout (offsets), shared by the source stub and the Sentry.
const REQ: u64 = 0;
const DONE: u64 = 4;
const RESP: u64 = 8;
const ZERO_MASK: u64 = 16;
const FPROG: u64 = 24;
const SA_IGN: u64 = 64;
/// The request page (memory-file offset) of the next systrap stub; 0 under ptrace.
const ST_REQ: u64 = 128;
const FILTER: u64 = 256;

// The systrap handler's assembly below spells these out: the spin hint's
// place in the context page ([rbx + 80]), the cap it puts on the hint
// (16384), and the hand-off states it compares with (3, 5, 6; 2, 4, 1).
const _: () = assert!(crate::systrap::ctx::SPIN == 80 && crate::systrap::MAX_APP_SPIN == 16384);
const _: () = assert!(
    crate::systrap::STATE_RUNNING == 1
        && crate::systrap::STATE_POSTED == 2
        && crate::systrap::STATE_RESUME == 3
        && crate::systrap::STATE_POSTED_ASLEEP == 4
        && crate::systrap::STATE_RUNNING_WATCHED == 5
        && crate::systrap::STATE_RESUME_WATCHED == 6
);

std::arch::global_asm!(
    ".pushsection .text.moat_stub_boot,\"ax\",@progbits",
    ".globl moat_stub_bootstrap",
    "moat_stub_bootstrap:",
    // In the freshly forked child of the Sentry: map the stub pages from the memory file
    // at STUB_BASE and jump there. Uses no stack. rdi=memfd, rsi=code offset, rdx=data offset.
    "mov r12, rdi",
    "mov r13, rsi",
    "mov r14, rdx",
    "mov eax, 9",
    "mov rdi, 0x7ffffff00000",
    "mov esi, 4096",
    "mov edx, 5",
    "mov r10d, 0x11",
    "mov r8, r12",
    "mov r9, r13",
    "syscall",
    "cmp rax, rdi",
    "jne .Lmoat_boot_fail",
    "mov eax, 9",
    "mov rdi, 0x7ffffff01000",
    "mov esi, 4096",
    "mov edx, 3",
    "mov r10d, 0x11",
    "mov r8, r12",
    "mov r9, r14",
    "syscall",
    "cmp rax, rdi",
    "jne .Lmoat_boot_fail",
    "mov rdi, r12",
    "mov rax, 0x7ffffff00000",
    "jmp rax",
    ".Lmoat_boot_fail:",
    "mov edi, 121",
    "mov eax, 231",
    "syscall",
    "ud2",
    // The stub page itself: copied into the memory file, so position-independent.
    ".p2align 12",
    ".globl moat_stub_code_start",
    "moat_stub_code_start:",
    "mov r15, rdi",
    "mov rbx, 0x7ffffff01000",
    // Drop everything but the stub pages.
    "mov eax, 11",
    "xor edi, edi",
    "mov rsi, 0x7ffffff00000",
    "syscall",
    "mov eax, 11",
    "mov rdi, 0x7ffffff02000",
    "mov rsi, 0xfd000",
    "syscall",
    // Close every fd but the memory file.
    "test r15, r15",
    "jz .Lmoat_cr2",
    "mov eax, 436",
    "xor edi, edi",
    "lea rsi, [r15 - 1]",
    "xor edx, edx",
    "syscall",
    ".Lmoat_cr2:",
    "mov eax, 436",
    "lea rdi, [r15 + 1]",
    "mov esi, 0xffffffff",
    "xor edx, edx",
    "syscall",
    // Empty signal mask; ignore SIGCHLD so cloned stubs are reaped by the kernel.
    "mov eax, 14",
    "mov edi, 2",
    "lea rsi, [rbx + 16]",
    "xor edx, edx",
    "mov r10d, 8",
    "syscall",
    "mov eax, 13",
    "mov edi, 17",
    "lea rsi, [rbx + 64]",
    "xor edx, edx",
    "mov r10d, 8",
    "syscall",
    // Die with the Sentry; no new privileges; then the allow-list.
    "mov eax, 157",
    "mov edi, 1",
    "mov esi, 9",
    "syscall",
    "mov eax, 157",
    "mov edi, 38",
    "mov esi, 1",
    "xor edx, edx",
    "xor r10d, r10d",
    "xor r8d, r8d",
    "syscall",
    "mov eax, 317",
    "mov edi, 1",
    "xor esi, esi",
    "lea rdx, [rbx + 24]",
    "syscall",
    "test rax, rax",
    "jnz .Lmoat_stub_die",
    // Ready: bump DONE and wake the Sentry. From here on every system call
    // is one of the sites the filter names (its address follows it).
    "lock inc dword ptr [rbx + 4]",
    "mov eax, 202",
    "lea rdi, [rbx + 4]",
    "mov esi, 1",
    "mov edx, 1",
    "syscall",
    ".globl moat_stub_site_ready",
    "moat_stub_site_ready:",
    // Serve clone requests: wait for REQ != 0, fork, publish the pid in RESP.
    ".Lmoat_serve:",
    "mov eax, dword ptr [rbx]",
    "test eax, eax",
    "jnz .Lmoat_clone",
    "mov eax, 202",
    "mov rdi, rbx",
    "xor esi, esi",
    "xor edx, edx",
    "xor r10d, r10d",
    "syscall",
    ".globl moat_stub_site_serve",
    "moat_stub_site_serve:",
    "jmp .Lmoat_serve",
    ".Lmoat_clone:",
    // A systrap stub's request page (its memory-file offset), or 0: read
    // before the fork, while the Sentry holds the request, so that the
    // child has the value of its own request in r13.
    "mov r13, qword ptr [rbx + 128]",
    "mov eax, 56",
    "mov edi, 17",
    "xor esi, esi",
    "xor edx, edx",
    "xor r10d, r10d",
    "xor r8d, r8d",
    "syscall",
    ".globl moat_stub_site_fork",
    "moat_stub_site_fork:",
    "test rax, rax",
    "jz .Lmoat_child",
    "mov dword ptr [rbx + 8], eax",
    "mov dword ptr [rbx], 0",
    "lock inc dword ptr [rbx + 4]",
    "mov eax, 202",
    "lea rdi, [rbx + 4]",
    "mov esi, 1",
    "mov edx, 1",
    "syscall",
    ".globl moat_stub_site_forked",
    "moat_stub_site_forked:",
    "jmp .Lmoat_serve",
    // A new stub: die with the source stub, drop the shared data page, park until seized.
    ".Lmoat_child:",
    "mov eax, 157",
    "mov edi, 1",
    "mov esi, 9",
    "syscall",
    ".globl moat_stub_site_pdeathsig",
    "moat_stub_site_pdeathsig:",
    "mov eax, 11",
    "mov rdi, rbx",
    "mov esi, 4096",
    "syscall",
    ".globl moat_stub_site_drop_data",
    "moat_stub_site_drop_data:",
    "test r13, r13",
    "jnz .Lmoat_st_setup",
    ".Lmoat_park:",
    "mov eax, 202",
    "lea rdi, [rip + moat_stub_park_word]",
    "xor esi, esi",
    "xor edx, edx",
    "xor r10d, r10d",
    "syscall",
    ".globl moat_stub_site_park",
    "moat_stub_site_park:",
    "jmp .Lmoat_park",
    ".Lmoat_stub_die:",
    "mov edi, 122",
    "mov eax, 231",
    "syscall",
    ".globl moat_stub_inject",
    "moat_stub_inject:",
    "syscall",
    ".globl moat_stub_site_inject",
    "moat_stub_site_inject:",
    "int3",
    // New app threads: the Sentry injects clone(CLONE_VM|CLONE_THREAD...) here; the child
    // (rax 0) parks until its own tracer seizes it, the parent traps back.
    ".globl moat_stub_clone_thread",
    "moat_stub_clone_thread:",
    "syscall",
    ".globl moat_stub_site_clone_thread",
    "moat_stub_site_clone_thread:",
    "test rax, rax",
    "jz .Lmoat_park",
    "int3",
    // ---- The systrap platform (host::systrap). ----
    // A systrap process's first stub thread serves address-space requests
    // from its read-only request page (the Sentry writes it through the
    // memory file): rbx = the page, r12d = the last sequence number served,
    // r14 = the memory file, r15 = the ack pipe's write end. It uses no
    // stack and reads nothing the app can write, so what it does is the
    // Sentry's choice alone; its ack (one byte from this page) is the only
    // thing the Sentry waits for.
    ".globl moat_st_loop",
    "moat_st_loop:",
    "mov eax, dword ptr [rbx]",
    "cmp eax, r12d",
    "jne .Lmoat_st_work",
    "mov eax, 202",
    "mov rdi, rbx",
    "xor esi, esi",
    "mov edx, r12d",
    "xor r10d, r10d",
    "syscall",
    ".globl moat_st_site_wait",
    "moat_st_site_wait:",
    "jmp moat_st_loop",
    ".Lmoat_st_work:",
    "mov r12d, eax",
    "mov ebp, dword ptr [rbx + 4]",
    "cmp ebp, 84",
    "jbe .Lmoat_st_counted",
    "mov ebp, 84",
    ".Lmoat_st_counted:",
    "lea r13, [rbx + 64]",
    ".Lmoat_st_next:",
    "test ebp, ebp",
    "jz .Lmoat_st_ok",
    "mov eax, dword ptr [r13]",
    "cmp eax, 1",
    "je .Lmoat_st_map",
    "cmp eax, 2",
    "je .Lmoat_st_unmap",
    "cmp eax, 3",
    "je .Lmoat_st_clone",
    "jmp .Lmoat_st_fail",
    ".Lmoat_st_map:",
    "mov rdi, qword ptr [r13 + 8]",
    "mov rsi, qword ptr [r13 + 16]",
    "mov rdx, qword ptr [r13 + 24]",
    "mov r10d, 0x11",
    "mov r8, r14",
    "mov r9, qword ptr [r13 + 32]",
    "mov eax, 9",
    "syscall",
    ".globl moat_st_site_mmap",
    "moat_st_site_mmap:",
    "cmp rax, qword ptr [r13 + 8]",
    "jne .Lmoat_st_fail",
    "jmp .Lmoat_st_step",
    ".Lmoat_st_unmap:",
    "mov rdi, qword ptr [r13 + 8]",
    "mov rsi, qword ptr [r13 + 16]",
    "mov eax, 11",
    "syscall",
    ".globl moat_st_site_munmap",
    "moat_st_site_munmap:",
    "test rax, rax",
    "jnz .Lmoat_st_fail",
    "jmp .Lmoat_st_step",
    // A new app thread in its slot (r9, kept by clone): the kernel zeroes
    // the slot's state word when it exits (CLONE_CHILD_CLEARTID).
    ".Lmoat_st_clone:",
    "mov r9, qword ptr [r13 + 8]",
    "mov edi, 0x250f00",
    "xor esi, esi",
    "xor edx, edx",
    "mov r10, r9",
    "xor r8d, r8d",
    "mov eax, 56",
    "syscall",
    ".globl moat_st_site_clone",
    "moat_st_site_clone:",
    "test rax, rax",
    "jz .Lmoat_st_child",
    "js .Lmoat_st_fail",
    "mov dword ptr [r9 + 12], eax",
    ".Lmoat_st_step:",
    "add r13, 48",
    "dec ebp",
    "jmp .Lmoat_st_next",
    ".Lmoat_st_ok:",
    "lea rsi, [rip + moat_st_ack_ok]",
    "jmp .Lmoat_st_ack",
    ".Lmoat_st_fail:",
    "lea rsi, [rip + moat_st_ack_fail]",
    ".Lmoat_st_ack:",
    "mov rdi, r15",
    "mov edx, 1",
    "mov eax, 1",
    "syscall",
    ".globl moat_st_site_ack",
    "moat_st_site_ack:",
    "jmp moat_st_loop",
    // A new systrap stub sets itself up, untraced: its request page (read
    // and write while the kernel writes the ack pipe's fds into it, then
    // read-only), the ack pipe, the handler for the app threads' signals,
    // every signal blocked in this thread; then it says it is ready (a word
    // of the request page, then one ack byte) and serves requests as the
    // syscall thread. r13 = the page's offset, r15 = the memory file.
    ".Lmoat_st_setup:",
    "mov eax, 9",
    "mov rdi, 0x7ffffff02000",
    "mov esi, 4096",
    "mov edx, 3",
    "mov r10d, 0x11",
    "mov r8, r15",
    "mov r9, r13",
    "syscall",
    ".globl moat_st_site_req_rw",
    "moat_st_site_req_rw:",
    "cmp rax, rdi",
    "jne .Lmoat_st_die",
    "mov eax, 293",
    "add rdi, 8",
    "xor esi, esi",
    "syscall",
    ".globl moat_st_site_pipe",
    "moat_st_site_pipe:",
    "test rax, rax",
    "jnz .Lmoat_st_die",
    "mov r12d, dword ptr [rdi + 4]",
    "mov dword ptr [rdi + 8], 1",
    "mov eax, 202",
    "add rdi, 8",
    "mov esi, 1",
    "mov edx, 1",
    "syscall",
    ".globl moat_st_site_ready",
    "moat_st_site_ready:",
    "mov eax, 9",
    "mov rdi, 0x7ffffff02000",
    "mov esi, 4096",
    "mov edx, 1",
    "mov r10d, 0x11",
    "mov r8, r15",
    "mov r9, r13",
    "syscall",
    ".globl moat_st_site_req_ro",
    "moat_st_site_req_ro:",
    "cmp rax, rdi",
    "jne .Lmoat_st_die",
    "lea r14, [rip + moat_st_handled]",
    ".Lmoat_st_next_sig:",
    "movzx edi, byte ptr [r14]",
    "test edi, edi",
    "jz .Lmoat_st_sigs_done",
    "mov eax, 13",
    "lea rsi, [rip + moat_st_sigaction]",
    "xor edx, edx",
    "mov r10d, 8",
    "syscall",
    ".globl moat_st_site_sigaction",
    "moat_st_site_sigaction:",
    "test rax, rax",
    "jnz .Lmoat_st_die",
    "inc r14",
    "jmp .Lmoat_st_next_sig",
    ".Lmoat_st_sigs_done:",
    "mov eax, 14",
    "mov edi, 2",
    "lea rsi, [rip + moat_st_full_mask]",
    "xor edx, edx",
    "mov r10d, 8",
    "syscall",
    ".globl moat_st_site_mask",
    "moat_st_site_mask:",
    "mov r14, r15",
    "mov r15d, r12d",
    "xor r12d, r12d",
    "mov rbx, 0x7ffffff02000",
    "jmp .Lmoat_st_ok",
    // The new thread: its own alternate stack in its slot, the app
    // threads' filter, then it reports ready as if it had trapped, with a
    // frame the Sentry fills before the first resume. Signals stay blocked
    // (as the syscall thread's) until that frame's mask unblocks them.
    ".Lmoat_st_child:",
    "mov rbx, r9",
    "lea rax, [rbx + 4096]",
    "mov qword ptr [rbx + 48], rax",
    "mov dword ptr [rbx + 56], 0",
    "mov qword ptr [rbx + 64], 61440",
    "mov eax, 131",
    "lea rdi, [rbx + 48]",
    "xor esi, esi",
    "syscall",
    ".globl moat_st_site_altstack",
    "moat_st_site_altstack:",
    "mov eax, 317",
    "mov edi, 1",
    "xor esi, esi",
    "lea rdx, [rip + moat_st_app_fprog]",
    "syscall",
    ".globl moat_st_site_filter",
    "moat_st_site_filter:",
    "test rax, rax",
    "jnz .Lmoat_st_die",
    "lea rax, [rbx + 64512]",
    "mov qword ptr [rbx + 24], rax",
    "mov dword ptr [rbx + 8], 0",
    "jmp .Lmoat_st_post",
    // The signal handler of every app thread (SIGSYS from the filter, the
    // faults, the Sentry's kick), on the thread's alternate stack in its
    // slot: rdi = signo, rsi = siginfo, rdx = ucontext. It posts them in
    // the slot's context page, waits for the Sentry, and returns into app
    // code with the frame the Sentry left.
    ".globl moat_st_handler",
    "moat_st_handler:",
    "mov rax, rsp",
    "mov rcx, 0x7fffbff00000",
    "sub rax, rcx",
    "cmp rax, 0x40000000",
    "jae .Lmoat_st_die",
    "and rax, -65536",
    "lea rbx, [rcx + rax]",
    "mov dword ptr [rbx + 8], edi",
    "mov qword ptr [rbx + 16], rsi",
    "mov qword ptr [rbx + 24], rdx",
    // Post: state 2; wake the Sentry only if it went to sleep (state 5).
    ".Lmoat_st_post:",
    "mov eax, 2",
    "xchg dword ptr [rbx], eax",
    "cmp eax, 5",
    "je .Lmoat_st_post_wake",
    "cmp eax, 6",
    "jne .Lmoat_st_wait",
    ".Lmoat_st_post_wake:",
    "mov eax, 202",
    "mov rdi, rbx",
    "mov esi, 1",
    "mov edx, 1",
    "syscall",
    ".globl moat_st_site_post",
    "moat_st_site_post:",
    // Wait for state 3: spin a while, then sleep as state 4 (which tells
    // the Sentry to wake us).
    // How long: the Sentry's hint in the context page, at most 16384
    // (MAX_APP_SPIN); 0 looks once and sleeps. State 6 is a resume the
    // Sentry sleeps on.
    ".Lmoat_st_wait:",
    "mov ecx, dword ptr [rbx + 80]",
    "cmp ecx, 16384",
    "jbe .Lmoat_st_spin",
    "mov ecx, 16384",
    ".Lmoat_st_spin:",
    "mov eax, dword ptr [rbx]",
    "cmp eax, 3",
    "je .Lmoat_st_resume",
    "cmp eax, 6",
    "je .Lmoat_st_resume",
    "test ecx, ecx",
    "jz .Lmoat_st_sleep",
    "pause",
    "dec ecx",
    "jmp .Lmoat_st_spin",
    ".Lmoat_st_sleep:",
    "mov eax, 2",
    "mov ecx, 4",
    "lock cmpxchg dword ptr [rbx], ecx",
    "jne .Lmoat_st_wait",
    "mov eax, 202",
    "mov rdi, rbx",
    "xor esi, esi",
    "mov edx, 4",
    "xor r10d, r10d",
    "syscall",
    ".globl moat_st_site_sleep",
    "moat_st_site_sleep:",
    "jmp .Lmoat_st_wait",
    // Running again: state 1, or 5 if the Sentry sleeps on the word (it
    // went to sleep on state 6), so that the next post wakes it.
    ".Lmoat_st_resume:",
    "mov eax, 1",
    "xchg dword ptr [rbx], eax",
    "cmp eax, 6",
    "jne .Lmoat_st_running",
    "mov dword ptr [rbx], 5",
    ".Lmoat_st_running:",
    "mov r12d, dword ptr [rbx + 4]",
    "mov dword ptr [rbx + 4], 0",
    "test r12d, 4",
    "jnz .Lmoat_st_exit",
    "test r12d, 1",
    "jz .Lmoat_st_fs_done",
    "mov eax, 158",
    "mov edi, 0x1002",
    "mov rsi, qword ptr [rbx + 32]",
    "syscall",
    ".globl moat_st_site_setfs",
    "moat_st_site_setfs:",
    ".Lmoat_st_fs_done:",
    "test r12d, 2",
    "jz .Lmoat_st_gs_done",
    "mov eax, 158",
    "mov edi, 0x1001",
    "mov rsi, qword ptr [rbx + 40]",
    "syscall",
    ".globl moat_st_site_setgs",
    "moat_st_site_setgs:",
    ".Lmoat_st_gs_done:",
    "mov rsp, qword ptr [rbx + 24]",
    "mov eax, 15",
    "syscall",
    ".globl moat_st_site_sigreturn",
    "moat_st_site_sigreturn:",
    "ud2",
    ".Lmoat_st_exit:",
    "xor edi, edi",
    "mov eax, 60",
    "syscall",
    ".globl moat_st_site_exit",
    "moat_st_site_exit:",
    ".Lmoat_st_die:",
    "ud2",
    "moat_st_ack_ok:",
    ".byte 1",
    "moat_st_ack_fail:",
    ".byte 2",
    // The host signals the handler takes: SIGSYS, SIGSEGV, SIGBUS, SIGFPE,
    // SIGILL, SIGTRAP and the kick (SIGURG); 0 ends the list.
    "moat_st_handled:",
    ".byte 31, 11, 7, 8, 4, 5, 23, 0",
    // Read-only data the Sentry writes into the page: the app threads'
    // filter (sock_fprog, then the program), the handler's sigaction, and
    // the all-blocked signal mask of the syscall thread.
    ".p2align 3",
    ".globl moat_st_app_fprog",
    "moat_st_app_fprog:",
    ".quad 0, 0",
    ".globl moat_st_sigaction",
    "moat_st_sigaction:",
    ".quad 0, 0, 0, 0",
    ".globl moat_st_full_mask",
    "moat_st_full_mask:",
    ".quad -1",
    ".globl moat_st_app_filter",
    "moat_st_app_filter:",
    ".skip 1024",
    ".p2align 3",
    "moat_stub_park_word:",
    ".long 0",
    ".globl moat_stub_code_end",
    "moat_stub_code_end:",
    ".popsection",
);

extern "C" {
    static moat_stub_code_start: u8;
    static moat_stub_code_end: u8;
    static moat_stub_inject: u8;
    static moat_stub_clone_thread: u8;
    static moat_stub_site_ready: u8;
    static moat_stub_site_serve: u8;
    static moat_stub_site_fork: u8;
    static moat_stub_site_forked: u8;
    static moat_stub_site_pdeathsig: u8;
    static moat_stub_site_drop_data: u8;
    static moat_stub_site_park: u8;
    static moat_stub_site_inject: u8;
    static moat_stub_site_clone_thread: u8;
    fn moat_stub_bootstrap(memfd: i64, code_off: u64, data_off: u64) -> !;
    // glibc (2.35+) exports where it registered the calling thread's rseq area.
    static __rseq_offset: isize;
    static __rseq_size: u32;
}

const RSEQ_SIG: u64 = 0x5305_3053;

/// Unregisters the calling thread's rseq area. A forked child inherits the registration,
/// and the kernel would fault the stub once the area is unmapped. Runs in the forked child:
/// raw syscalls only.
fn unregister_rseq() {
    let mut fs_base: u64 = 0;
    // SAFETY: ARCH_GET_FS writes one u64 through a valid pointer.
    unsafe { libc::syscall(libc::SYS_arch_prctl, 0x1003, &mut fs_base as *mut u64) };
    // SAFETY: plain reads of glibc's exported constants.
    let (off, size) = unsafe { (__rseq_offset, __rseq_size) };
    if size == 0 {
        return;
    }
    let area = fs_base.wrapping_add(off as u64);
    for len in [size as u64, 32] {
        // SAFETY: unregistering names the registered area; the kernel validates and stops
        // touching it. A wrong length just fails with EINVAL.
        let r = unsafe { libc::syscall(libc::SYS_rseq, area, len, 1u64, RSEQ_SIG) };
        if r == 0 {
            return;
        }
    }
}

/// Makes the calling process (the source stub, in the child of its fork)
/// the one the kernel's OOM killer picks first, and every stub it clones
/// after it: at the sandbox's memory limit an app process dies (its stub),
/// never the Sentry or a Gofer. Raising one's own score needs no privilege.
/// Runs in the forked child of a threaded process: raw syscalls only, no
/// allocation. A host without /proc just keeps the default score.
fn first_to_die_of_memory() {
    const PATH: &[u8] = b"/proc/self/oom_score_adj\0";
    const MOST_LIKELY: &[u8] = b"1000";
    // SAFETY: a NUL-terminated path and integer flags; the fd is ours alone.
    let fd = unsafe { libc::open(PATH.as_ptr().cast(), libc::O_WRONLY | libc::O_CLOEXEC) };
    if fd >= 0 {
        // SAFETY: a valid buffer of its own length; then closing our own fd.
        unsafe {
            libc::write(fd, MOST_LIKELY.as_ptr().cast(), MOST_LIKELY.len());
            libc::close(fd);
        }
    }
}

/// Where a label of the stub's code lies in every stub.
pub(crate) fn in_stub(label: *const u8) -> u64 {
    STUB_BASE + label as u64 - std::ptr::addr_of!(moat_stub_code_start) as u64
}

/// One system call a stub may make natively: its number, the address just
/// past the one `syscall` instruction allowed to make it (what seccomp sees
/// as the instruction pointer), the arguments it must have (low 32 bits
/// compared, which is all the kernel reads of each), and why.
#[derive(Debug, Clone)]
pub struct Site {
    pub nr: u64,
    pub after: u64,
    pub args: Vec<(u8, u32)>,
    pub why: &'static str,
}

/// The clone flags of a new app thread inside a stub: VM FS FILES SIGHAND THREAD SYSVSEM.
pub(crate) const THREAD_FLAGS: u64 = 0x100 | 0x200 | 0x400 | 0x800 | 0x10000 | 0x40000;
const FUTEX_WAIT: u32 = 0;
const FUTEX_WAKE: u32 = 1;
const PR_SET_PDEATHSIG: u32 = 1;
const SIGKILL: u32 = 9;
const SIGCHLD: u32 = 17;
const MAP_SHARED_FIXED: u32 = 0x11;

/// Every system call a stub makes natively once its filter is in place, each
/// from the one instruction that makes it. App system calls never get here
/// (PTRACE_SYSEMU stops them before seccomp runs); these are the stub's own
/// and those the Sentry injects. App code that escaped the tracer could make
/// only these, from these places, with these arguments: map windows of the
/// memory file (its own sandbox's memory), unmap, park, exit.
pub fn stub_sites(memfd: u32) -> Vec<Site> {
    let at = in_stub;
    vec![
        Site {
            nr: abi::sysno::FUTEX,
            after: at(std::ptr::addr_of!(moat_stub_site_ready)),
            args: vec![(1, FUTEX_WAKE)],
            why: "the source stub tells the Sentry it is ready",
        },
        Site {
            nr: abi::sysno::FUTEX,
            after: at(std::ptr::addr_of!(moat_stub_site_serve)),
            args: vec![(1, FUTEX_WAIT)],
            why: "the source stub waits for a clone request",
        },
        Site {
            nr: abi::sysno::CLONE,
            after: at(std::ptr::addr_of!(moat_stub_site_fork)),
            args: vec![(0, SIGCHLD)],
            why: "the source stub forks a new stub (a plain fork: no namespace, no CLONE_UNTRACED)",
        },
        Site {
            nr: abi::sysno::FUTEX,
            after: at(std::ptr::addr_of!(moat_stub_site_forked)),
            args: vec![(1, FUTEX_WAKE)],
            why: "the source stub tells the Sentry the new stub's pid",
        },
        Site {
            nr: abi::sysno::PRCTL,
            after: at(std::ptr::addr_of!(moat_stub_site_pdeathsig)),
            args: vec![(0, PR_SET_PDEATHSIG), (1, SIGKILL)],
            why: "a new stub dies with the source stub",
        },
        Site {
            nr: abi::sysno::MUNMAP,
            after: at(std::ptr::addr_of!(moat_stub_site_drop_data)),
            args: vec![(0, DATA as u32), (1, PAGE as u32)],
            why: "a new stub drops the data page it shared with the source stub",
        },
        Site {
            nr: abi::sysno::FUTEX,
            after: at(std::ptr::addr_of!(moat_stub_site_park)),
            args: vec![(1, FUTEX_WAIT)],
            why: "a new stub or stub thread parks until its tracer seizes it",
        },
        Site {
            nr: abi::sysno::MMAP,
            after: at(std::ptr::addr_of!(moat_stub_site_inject)),
            args: vec![(3, MAP_SHARED_FIXED), (4, memfd)],
            why: "the Sentry maps memory-file windows into the app's address space (only shared, \
                      fixed windows of the memory file: never a host file or anonymous memory)",
        },
        Site {
            nr: abi::sysno::MUNMAP,
            after: at(std::ptr::addr_of!(moat_stub_site_inject)),
            args: vec![],
            why: "the Sentry unmaps app memory",
        },
        Site {
            nr: abi::sysno::EXIT,
            after: at(std::ptr::addr_of!(moat_stub_site_inject)),
            args: vec![],
            why: "the Sentry ends a stub thread whose app thread exited",
        },
        Site {
            nr: abi::sysno::CLONE,
            after: at(std::ptr::addr_of!(moat_stub_site_clone_thread)),
            args: vec![(0, THREAD_FLAGS as u32)],
            why: "the Sentry starts a new app thread in the stub (a thread, never a process)",
        },
    ]
}

/// What a filter does with a system call its sites do not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// The ptrace platform: app calls never reach the filter (SYSEMU stops
    /// them first), so anything not listed kills the stub.
    Ptrace,
    /// The systrap platform: a call from app code (the wrong architecture,
    /// or any address outside the stub's page) raises SIGSYS for the
    /// stub's handler (`SECCOMP_RET_TRAP`); one from the stub's page that
    /// no site names still kills the stub.
    Systrap,
}

/// The stub's seccomp filter: a wrong architecture, a call from anywhere but
/// its site, or with other arguments, kills the stub (under
/// [`Flavor::Systrap`], a call from outside the stub's page traps instead).
/// The host kernel's vsyscall emulation (app code calling the vsyscall
/// page) consults the filter too, with the vsyscall page as the instruction
/// pointer: those calls are skipped with a SIGSYS (SECCOMP_RET_TRAP) after
/// the host has returned to the caller, and the Sentry answers them there,
/// as it answers every app system call. (A SECCOMP_RET_TRACE stop would
/// need the thread's rip left at the vsyscall entry until it ran on, which
/// no signal delivery or injection in between may then touch.) seccompiler
/// cannot compare the instruction pointer, hence this small program of our
/// own.
pub fn stub_filter(sites: &[Site], flavor: Flavor) -> Vec<u8> {
    use seccompiler::sock_filter;
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    const JGE_K: u16 = 0x35;
    const RET_K: u16 = 0x06;
    const KILL_PROCESS: u32 = 0x8000_0000;
    const TRAP: u32 = 0x0003_0000;
    const ARCH: u32 = 4;
    const IP_LO: u32 = 8;
    const IP_HI: u32 = 12;
    let ld = |k| sock_filter { code: LD_W_ABS, jt: 0, jf: 0, k };
    let jeq = |k, jt, jf| sock_filter { code: JEQ_K, jt, jf, k };
    let jge = |k, jt, jf| sock_filter { code: JGE_K, jt, jf, k };
    let ret = |k| sock_filter { code: RET_K, jt: 0, jf: 0, k };
    let foreign = match flavor {
        Flavor::Ptrace => KILL_PROCESS,
        Flavor::Systrap => TRAP,
    };
    let [vs0, vs1, vs2] = abi::x86::VSYSCALL_ENTRIES.map(|(addr, _)| addr as u32);
    let mut p = vec![
        ld(ARCH),
        jeq(abi::x86::AUDIT_ARCH_X86_64, 1, 0),
        ret(foreign),
        ld(IP_HI),
        jeq((abi::x86::VSYSCALL_ADDR >> 32) as u32, 0, 6),
        ld(IP_LO),
        jeq(vs0, 3, 0),
        jeq(vs1, 2, 0),
        jeq(vs2, 1, 0),
        ret(KILL_PROCESS),
        ret(TRAP),
        // Still the instruction pointer's high half: the stub's page, or
        // app code (which the ptrace platform never lets get here).
        jeq((STUB_BASE >> 32) as u32, 1, 0),
        ret(foreign),
        ld(IP_LO),
        jge(STUB_BASE as u32, 1, 0),
        ret(foreign),
    ];
    push_sites(&mut p, sites);
    p.push(ret(KILL_PROCESS));
    crate::seccomp::to_bytes(&p)
}

/// Appends one block per site: the call number, the instruction pointer's
/// low half and the pinned arguments, each falling through to the next
/// block on a mismatch, and ALLOW at its end.
pub(crate) fn push_sites(p: &mut Vec<seccompiler::sock_filter>, sites: &[Site]) {
    use seccompiler::sock_filter;
    let ld = |k| sock_filter { code: 0x20, jt: 0, jf: 0, k };
    let jeq = |k, jt, jf| sock_filter { code: 0x15, jt, jf, k };
    for site in sites {
        let len = 5 + 2 * site.args.len();
        let skip = |at: usize| (len - at - 1) as u8;
        p.push(ld(0));
        p.push(jeq(site.nr as u32, 0, skip(1)));
        p.push(ld(8));
        p.push(jeq(site.after as u32, 0, skip(3)));
        for (i, &(arg, value)) in site.args.iter().enumerate() {
            p.push(ld(16 + 8 * u32::from(arg)));
            p.push(jeq(value, 0, skip(5 + 2 * i)));
        }
        p.push(sock_filter { code: 0x06, jt: 0, jf: 0, k: 0x7fff_0000 });
    }
}

fn stub_code() -> &'static [u8] {
    let start = std::ptr::addr_of!(moat_stub_code_start);
    let end = std::ptr::addr_of!(moat_stub_code_end);
    // SAFETY: both symbols are labels in the same section of our own global_asm block, start
    // before end; the bytes between them are the assembled, immutable stub code.
    unsafe { std::slice::from_raw_parts(start, end as usize - start as usize) }
}

/// Where in every stub the injection site (`syscall; int3`) lies.
pub(crate) fn inject_ip() -> u64 {
    in_stub(std::ptr::addr_of!(moat_stub_inject))
}

/// Where in every stub the clone-thread site lies.
pub(crate) fn clone_thread_ip() -> u64 {
    in_stub(std::ptr::addr_of!(moat_stub_clone_thread))
}

/// A stub process, shared by the tracees of its threads; killed when the last one goes.
#[derive(Debug)]
pub struct StubProcess {
    pub(crate) pid: i32,
}

impl StubProcess {
    /// The stub's host pid.
    pub fn pid(&self) -> i32 {
        self.pid
    }
}

impl Drop for StubProcess {
    fn drop(&mut self) {
        let _ = crate::sys::kill(self.pid, libc::SIGKILL);
    }
}

/// The source stub and the lock that serialises clone requests to it.
#[derive(Debug)]
pub struct StubFactory {
    source_pid: i32,
    data_off: u64,
    lock: Mutex<()>,
}

impl StubFactory {
    /// Writes the stub pages into the memory file at `code_off`/`data_off` (page-aligned,
    /// reserved by the caller) and starts the source stub. Call from a thread that lives as
    /// long as the sandbox: the source stub dies with it.
    pub fn new(mem: &MemoryFile, code_off: u64, data_off: u64) -> io::Result<StubFactory> {
        Self::with_flavor(mem, code_off, data_off, Flavor::Ptrace)
    }

    /// [`StubFactory::new`] for either platform: the systrap flavour adds its
    /// sites to the stub's filter, traps app calls instead of killing, and
    /// writes the data the systrap code reads into the code page.
    pub fn with_flavor(mem: &MemoryFile, code_off: u64, data_off: u64, flavor: Flavor) -> io::Result<StubFactory> {
        let code = stub_code();
        if code.len() as u64 > PAGE {
            return Err(io::Error::other("stub code exceeds one page"));
        }
        mem.write(code_off, code)?;
        let memfd = std::os::fd::AsRawFd::as_raw_fd(&mem.fd()) as u32;
        let mut sites = stub_sites(memfd);
        if flavor == Flavor::Systrap {
            sites.extend(crate::systrap::base_sites(memfd));
            crate::systrap::write_code_data(mem, code_off)?;
        }
        let filter = stub_filter(&sites, flavor);
        if FILTER + filter.len() as u64 > PAGE {
            return Err(io::Error::other("stub seccomp filter exceeds the data page"));
        }
        mem.write(data_off + FILTER, &filter)?;
        let mut fprog = [0u8; 16];
        fprog[0..2].copy_from_slice(&((filter.len() / 8) as u16).to_ne_bytes());
        fprog[8..16].copy_from_slice(&(DATA + FILTER).to_ne_bytes());
        mem.write(data_off + FPROG, &fprog)?;
        mem.write(data_off + ZERO_MASK, &[0u8; 8])?;
        let mut sa = [0u8; 32];
        sa[0..8].copy_from_slice(&(libc::SIG_IGN as u64).to_ne_bytes());
        mem.write(data_off + SA_IGN, &sa)?;
        mem.store_u32(data_off + REQ, 0)?;
        mem.store_u32(data_off + DONE, 0)?;
        let fd = std::os::fd::AsRawFd::as_raw_fd(&mem.fd());
        // SAFETY: a raw fork. The child runs only moat_stub_bootstrap (no allocation, no locks,
        // no stack use) which replaces its whole address space; the parent just gets a pid.
        let pid = unsafe { libc::syscall(libc::SYS_clone, libc::SIGCHLD as u64, 0u64, 0u64, 0u64, 0u64) };
        if pid == 0 {
            unregister_rseq();
            first_to_die_of_memory();
            // SAFETY: in the child; see above. Never returns.
            unsafe { moat_stub_bootstrap(fd as i64, code_off, data_off) };
        }
        if pid < 0 {
            return Err(io::Error::last_os_error());
        }
        let f = StubFactory { source_pid: pid as i32, data_off, lock: Mutex::new(()) };
        f.wait_done(mem, 0)?;
        Ok(f)
    }

    fn wait_done(&self, mem: &MemoryFile, seen: u32) -> io::Result<u32> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let now = mem.load_u32(self.data_off + DONE)?;
            if now != seen {
                return Ok(now);
            }
            let mut status = 0;
            // SAFETY: status is a valid out-pointer.
            let r = unsafe { libc::waitpid(self.source_pid, &mut status, libc::WNOHANG) };
            if r == self.source_pid {
                return Err(io::Error::other(format!("source stub exited (status {status:#x})")));
            }
            if Instant::now() > deadline {
                return Err(io::Error::other("source stub does not answer"));
            }
            mem.futex_wait(self.data_off + DONE, seen, 100)?;
        }
    }

    /// Clones a new stub from the source stub and seizes it for the calling thread, which
    /// becomes its tracer.
    pub fn new_stub(&self, mem: &MemoryFile) -> io::Result<Tracee> {
        let pid = {
            let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            let seen = mem.load_u32(self.data_off + DONE)?;
            mem.store_u32(self.data_off + REQ, 1)?;
            mem.futex_wake(self.data_off + REQ)?;
            self.wait_done(mem, seen)?;
            mem.load_u32(self.data_off + RESP)? as i32
        };
        if pid <= 0 {
            return Err(io::Error::from_raw_os_error(-pid));
        }
        let t = Tracee::seize(std::sync::Arc::new(StubProcess { pid }), pid, inject_ip())?;
        // The child unmaps the data page itself, but it may have been stopped before it did.
        t.inject(abi::sysno::MUNMAP as i64, [DATA, PAGE, 0, 0, 0, 0])?;
        Ok(t)
    }

    /// Clones a new stub that sets itself up as a systrap stub with its
    /// request page at `req_off` (zeroed by the caller) and runs on
    /// untraced: the caller waits for its ready word and ack
    /// (`host::systrap::adopt`).
    pub fn new_systrap_stub(&self, mem: &MemoryFile, req_off: u64) -> io::Result<std::sync::Arc<StubProcess>> {
        if req_off == 0 || !req_off.is_multiple_of(PAGE) {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let pid = {
            let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            mem.write(self.data_off + ST_REQ, &req_off.to_ne_bytes())?;
            let seen = mem.load_u32(self.data_off + DONE)?;
            mem.store_u32(self.data_off + REQ, 1)?;
            mem.futex_wake(self.data_off + REQ)?;
            let done = self.wait_done(mem, seen);
            mem.write(self.data_off + ST_REQ, &0u64.to_ne_bytes())?;
            done?;
            mem.load_u32(self.data_off + RESP)? as i32
        };
        if pid <= 0 {
            return Err(io::Error::from_raw_os_error(-pid));
        }
        Ok(std::sync::Arc::new(StubProcess { pid }))
    }

    /// Host pid of the source stub.
    pub fn source_pid(&self) -> i32 {
        self.source_pid
    }
}

impl Drop for StubFactory {
    fn drop(&mut self) {
        let _ = crate::sys::kill(self.source_pid, libc::SIGKILL);
        let mut status = 0;
        // SAFETY: status is a valid out-pointer; reaps our own child.
        unsafe { libc::waitpid(self.source_pid, &mut status, 0) };
    }
}
