//! Differential runs against the host: the same command natively and under
//! `moat do` (host root), with the same clean environment and a time limit.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

pub fn moat() -> &'static str {
    env!("CARGO_BIN_EXE_moat")
}

/// A scratch directory the sandbox can see (the sandbox's /tmp is its own
/// tmpfs, so a checkout under the host's /tmp uses /var/tmp instead).
pub fn scratch(name: &str) -> PathBuf {
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let base = if target.starts_with("/tmp") { PathBuf::from("/var/tmp") } else { target };
    let d = base.join(format!("moat-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("create scratch dir");
    d
}

/// Runs `cmd` with no stdin and a minimal environment.
pub fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).env_clear().env("PATH", "/usr/local/bin:/usr/bin:/bin").env("LC_ALL", "C");
    // A run of moat gets the platform the suite runs on; a native run nothing more.
    let is_moat = cmd.get_program() == moat() || cmd.get_args().any(|a| a == moat());
    if let (true, Some(p)) = (is_moat, std::env::var_os("MOAT_PLATFORM")) {
        cmd.env("MOAT_PLATFORM", p);
    }
    cmd.output().expect("spawn")
}

/// Runs `args` natively and under moat; stdout and exit status must match.
pub fn differential(args: &[&str]) {
    // coreutils' timeout bounds every run, so a hang fails the test instead of CI.
    let native = run(Command::new("timeout").arg("60").args(args));
    let sandboxed = run(Command::new("timeout").args(["60", moat(), "do", "--"]).args(args));
    assert!(native.status.success(), "native run failed: {native:?}");
    assert!(!native.stdout.is_empty(), "native run printed nothing; the case is broken");
    assert_eq!(
        (String::from_utf8_lossy(&native.stdout), native.status.code()),
        (String::from_utf8_lossy(&sandboxed.stdout), sandboxed.status.code()),
        "moat differs from native for {args:?}; moat stderr:\n{}",
        String::from_utf8_lossy(&sandboxed.stderr)
    );
    assert!(!String::from_utf8_lossy(&sandboxed.stderr).contains("panicked"));
}

/// Builds tests/probes/NAME.c with the machine's gcc (plus `cflags`) where the sandbox
/// can see it. Several tests may build the same probe at once, so each build goes to
/// its own file and is renamed into place.
pub fn probe_with(name: &str, cflags: &[&str]) -> PathBuf {
    probe_as(name, name, cflags)
}

/// As `probe_with`, into a program named `bin` (one source built two ways).
pub fn probe_as(name: &str, bin: &str, cflags: &[&str]) -> PathBuf {
    static BUILDS: AtomicUsize = AtomicUsize::new(0);
    let dir = scratch("probes");
    let bin = dir.join(bin);
    let tmp = dir.join(format!("{name}.build{}", BUILDS.fetch_add(1, Ordering::Relaxed)));
    let src = format!("{}/tests/probes/{name}.c", env!("CARGO_MANIFEST_DIR"));
    let st =
        Command::new("gcc").args(["-O2", "-pthread"]).args(cflags).arg("-o").arg(&tmp).arg(&src).status().expect("gcc");
    assert!(st.success(), "gcc failed on {src}");
    std::fs::rename(&tmp, &bin).expect("rename built probe");
    bin
}

pub fn probe(name: &str) -> PathBuf {
    probe_with(name, &[])
}

/// Runs `program args` natively in a network namespace of its own with only
/// `lo` up (as `moat do`'s default network is) and under `moat do`;
/// compares stdout and status, and checks the Sentry did not panic.
pub fn differential_in_netns(program: &str, args: &[&str]) {
    let native = run(Command::new("timeout")
        .args(["120", "unshare", "-n", "sh", "-c", "ip link set lo up && exec \"$@\"", "sh", program])
        .args(args));
    let sandboxed = run(Command::new("timeout").args(["120", moat(), "do", "--", program]).args(args));
    assert!(native.status.success(), "native run failed: {native:?}");
    assert!(!native.stdout.is_empty(), "native run printed nothing; the case is broken");
    let stderr = String::from_utf8_lossy(&sandboxed.stderr);
    assert_eq!(
        (String::from_utf8_lossy(&native.stdout), native.status.code()),
        (String::from_utf8_lossy(&sandboxed.stdout), sandboxed.status.code()),
        "moat differs from native; moat stderr:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "the Sentry panicked:\n{stderr}");
}
