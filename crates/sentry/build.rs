//! Builds moat's vDSO (vdso/vdso.c, linked by vdso/vdso.lds) with the C
//! compiler Rust already links with; the loader embeds the image
//! (`include_bytes!`) and maps it into every process.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR")).join("vdso");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("vdso.so");
    println!("cargo:rerun-if-changed=vdso/vdso.c");
    println!("cargo:rerun-if-changed=vdso/vdso.lds");
    println!("cargo:rerun-if-env-changed=CC");
    let cc = env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc)
        .args([
            "-O2",
            "-fPIC",
            "-fno-stack-protector",
            "-ffreestanding",
            "-fno-builtin",
            "-fcf-protection=none",
            "-fno-jump-tables",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-nostdlib",
            "-shared",
            "-Wl,--hash-style=both",
            "-Wl,--build-id=none",
            "-Wl,--eh-frame-hdr",
            "-Wl,-Bsymbolic",
            "-Wl,--strip-all",
            "-Wl,-soname=linux-vdso.so.1",
            "-Wl,-z,noexecstack",
            "-Wl,-z,max-page-size=4096",
        ])
        .arg(format!("-Wl,-T,{}", dir.join("vdso.lds").display()))
        .arg("-o")
        .arg(&out)
        .arg(dir.join("vdso.c"))
        .status()
        .unwrap_or_else(|e| panic!("sentry: cannot run the C compiler `{cc}` for the vDSO: {e}"));
    assert!(status.success(), "sentry: building the vDSO with `{cc}` failed ({status})");
}
