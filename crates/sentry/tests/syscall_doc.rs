//! docs/syscalls.md is the syscall table's coverage list, regenerated: this
//! test fails when they differ. `MOAT_BLESS=1 cargo test -p sentry --test
//! syscall_doc` rewrites the file from the table.

use std::path::Path;

#[test]
fn docs_syscalls_md_matches_the_table() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/syscalls.md");
    let generated = sentry::syscalls::coverage_markdown();
    if std::env::var_os("MOAT_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("docs/syscalls.md is writable");
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == generated,
        "docs/syscalls.md differs from the syscall table; regenerate it with \
         `MOAT_BLESS=1 cargo test -p sentry --test syscall_doc` (or `moat syscalls --format markdown`)"
    );
}

#[test]
fn every_x86_64_syscall_is_listed_once_with_a_status() {
    let all = sentry::syscalls::coverage();
    assert_eq!(all.len(), abi::sysno::ALL.len());
    assert!(all.windows(2).all(|w| w[0].0 < w[1].0), "each number once, in order");
    let supported = all.iter().filter(|(_, _, s)| s.label() == "supported").count();
    assert!(supported > 150, "the table lists what is implemented: {supported} supported");
    let status = |name: &str| all.iter().find(|(_, n, _)| *n == name).map(|(_, _, s)| *s).unwrap();
    assert_eq!(status("read").label(), "supported");
    assert_eq!(status("kexec_load").label(), "not implemented");
    assert!(matches!(status("rseq"), sentry::syscalls::Status::Quiet(_)), "glibc's rseq probe stays quiet");
    assert_eq!(status("open_by_handle_at").label(), "refused");
}
