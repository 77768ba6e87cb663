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
