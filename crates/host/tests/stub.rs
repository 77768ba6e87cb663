//! End-to-end check of the platform's lowest layer: a stub cloned from the source
//! stub runs app code, its syscalls stop at the tracer, and faults are reported.

use host::memfile::PAGE;
use host::{MemoryFile, StopReason, StubFactory};

#[test]
fn stub_runs_code_and_traps_syscalls() {
    let mem = MemoryFile::new(1 << 30).unwrap();
    let factory = StubFactory::new(&mem, 0, PAGE).unwrap();
    let stub = factory.new_stub(&mem).unwrap();
    // App code: mov eax, 39 (getpid); syscall; mov rax, [0]  (fault)
    let code: [u8; 15] = [0xb8, 39, 0, 0, 0, 0x0f, 0x05, 0x48, 0x8b, 0x04, 0x25, 0, 0, 0, 0];
    let app_off = 16 * PAGE;
    mem.write(app_off, &code).unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&mem.fd()) as u64;
    let addr = 0x40_0000u64;
    let r = stub.inject(9, [addr, PAGE, 5, 0x11, fd, app_off]).unwrap();
    assert_eq!(r as u64, addr, "injected mmap");
    let mut regs = stub.get_regs().unwrap();
    regs.rip = addr;
    let ev = stub.run(&mut regs).unwrap();
    assert_eq!(ev, StopReason::Syscall);
    assert_eq!(regs.orig_rax, 39);
    regs.rax = 1234;
    let ev = stub.run(&mut regs).unwrap();
    match ev {
        StopReason::Signal { signo, .. } => assert_eq!(signo, libc::SIGSEGV),
        other => panic!("expected a fault, got {other:?}"),
    }
    assert_eq!(regs.rax, 1234);
    // A second stub is independent.
    let stub2 = factory.new_stub(&mem).unwrap();
    assert_ne!(stub2.pid(), stub.pid());
}

/// A stub with one page of app code at 0x400000 (from `code`), and the memory
/// file's fd number as the stub knows it.
fn stub_with_code(code: &[u8]) -> (MemoryFile, StubFactory, host::Tracee, u64) {
    let mem = MemoryFile::new(1 << 30).unwrap();
    let factory = StubFactory::new(&mem, 0, PAGE).unwrap();
    let stub = factory.new_stub(&mem).unwrap();
    let app_off = 16 * PAGE;
    mem.write(app_off, code).unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&mem.fd()) as u64;
    let r = stub.inject(9, [0x40_0000, PAGE, 7, 0x11, fd, app_off]).unwrap();
    assert_eq!(r, 0x40_0000, "injected mmap");
    (mem, factory, stub, fd)
}

#[test]
fn calls_the_stub_filter_does_not_name_kill_the_stub() {
    let (_mem, _factory, stub, fd) = stub_with_code(&[0xf4]);
    // A shared fixed window of the memory file is what the filter allows...
    let r = stub.inject(9, [0x50_0000, PAGE, 3, 0x11, fd, 32 * PAGE]).unwrap();
    assert_eq!(r, 0x50_0000);
    // ...never anonymous memory (or any other host file), whoever asks.
    let err = stub.inject(9, [0x60_0000, PAGE, 3, 0x22, u64::MAX, 0]).unwrap_err();
    assert!(err.to_string().contains("died"), "an anonymous mmap must kill the stub: {err}");
}

#[test]
fn a_call_of_its_own_choosing_kills_the_stub() {
    let (_mem, _factory, stub, _fd) = stub_with_code(&[0xf4]);
    let err = stub.inject(39, [0; 6]).unwrap_err();
    assert!(err.to_string().contains("died"), "getpid from the injection site must kill the stub: {err}");
}

#[test]
fn thirty_two_bit_system_calls_stop_as_such_and_injection_stays_64_bit() {
    // int $0x80 (eax = 20, getpid in the 32-bit table) in 64-bit code, then
    // a far return into 32-bit code at 0x400010 that does the same.
    let mut code = vec![0u8; 64];
    code[..7].copy_from_slice(&[0xb8, 20, 0, 0, 0, 0xcd, 0x80]);
    // push 0x23; push 0x400010; retfq
    code[7..20].copy_from_slice(&[0x6a, 0x23, 0x68, 0x10, 0x00, 0x40, 0x00, 0x48, 0xcb, 0x90, 0x90, 0x90, 0x90]);
    code[0x10..0x17].copy_from_slice(&[0xb8, 20, 0, 0, 0, 0xcd, 0x80]);
    let (_mem, _factory, stub, fd) = stub_with_code(&code);
    // A stack for the far return.
    stub.inject(9, [0x70_0000, PAGE, 3, 0x11, fd, 48 * PAGE]).unwrap();
    let mut regs = stub.get_regs().unwrap();
    regs.rip = 0x40_0000;
    regs.rsp = 0x70_0800;
    assert_eq!(stub.run(&mut regs).unwrap(), StopReason::CompatSyscall, "int $0x80 from 64-bit code");
    assert_eq!(regs.cs, 0x33);
    regs.rip = 0x40_0007;
    assert_eq!(stub.run(&mut regs).unwrap(), StopReason::CompatSyscall, "int $0x80 from 32-bit code");
    assert_eq!(regs.cs, 0x23, "the app switched to 32-bit mode itself");
    // An injection now runs in 64-bit mode (a 32-bit one would take its rip
    // truncated: an escape) and leaves the app's registers as they were.
    let r = stub.inject(9, [0x50_0000, PAGE, 3, 0x11, fd, 32 * PAGE]).unwrap();
    assert_eq!(r, 0x50_0000);
    assert_eq!(stub.get_regs().unwrap().cs, 0x23);
}

#[test]
fn the_vsyscall_page_is_handed_to_the_tracer() {
    // mov rax, 0xffffffffff600400 (time); call rax
    let code = [0x48, 0xb8, 0x00, 0x04, 0x60, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xd0, 0xf4];
    let (_mem, _factory, stub, fd) = stub_with_code(&code);
    // A stack for the call.
    stub.inject(9, [0x70_0000, PAGE, 3, 0x11, fd, 48 * PAGE]).unwrap();
    let mut regs = stub.get_regs().unwrap();
    regs.rip = 0x40_0000;
    regs.rsp = 0x70_0800;
    match stub.run(&mut regs).unwrap() {
        StopReason::Vsyscall { nr } => assert_eq!(nr, 201),
        other => panic!("expected the vsyscall time(), got {other:?}"),
    }
    assert_eq!((regs.rip, regs.rsp), (0x40_000c, 0x70_0800), "the host returned to the caller");
    // The tracer answers; the caller then halts (a fault).
    regs.rax = 1234;
    match stub.run(&mut regs).unwrap() {
        StopReason::Signal { signo, .. } => assert_eq!(signo, libc::SIGSEGV),
        other => panic!("expected hlt to fault, got {other:?}"),
    }
    assert_eq!(regs.rax, 1234);
    assert_eq!(regs.rip, 0x40_000c, "returned to the caller's hlt");
}
