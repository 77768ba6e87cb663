//! moat's vDSO on both platforms: the same answers as Linux's (probe
//! vdso_clock.c, natively and under moat), and reading the clock never
//! reaches the Sentry (`--stats` counts the system calls it served).

mod common;

use std::process::Command;

use common::native::{moat, probe_as, run};

const PLATFORMS: [&str; 2] = ["ptrace", "systrap"];

/// Splits the probe's output into what must match Linux's and the realtime seconds it read.
fn split(out: &[u8]) -> (String, i64) {
    let text = String::from_utf8_lossy(out).into_owned();
    let (rest, last) = text.trim_end().rsplit_once('\n').unwrap_or(("", ""));
    let secs = last.strip_prefix("realtime ").and_then(|s| s.parse().ok()).unwrap_or(-1);
    (rest.to_string(), secs)
}

#[test]
fn the_vdso_answers_as_linuxs_does() {
    for (name, flags) in [("vdso_clock", &[][..]), ("vdso_clock_static", &["-static"][..])] {
        let bin = probe_as("vdso_clock", name, flags).to_string_lossy().into_owned();
        let native = run(Command::new("timeout").args(["60", &bin]));
        assert!(native.status.success(), "native run failed: {native:?}");
        let (want, native_secs) = split(&native.stdout);
        assert!(want.contains("vDSO <= syscall <= vDSO: yes"), "the probe is broken: {want}");
        for platform in PLATFORMS {
            let out = run(Command::new("timeout").args(["60", moat(), "do", "--platform", platform, "--", &bin]));
            let (got, secs) = split(&out.stdout);
            assert_eq!(
                (got.as_str(), out.status.code()),
                (want.as_str(), Some(0)),
                "{name} on {platform}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            // The sandbox's realtime is the host's.
            assert!((secs - native_secs).abs() < 120, "{name} on {platform}: realtime {secs}, natively {native_secs}");
        }
    }
}

/// The system calls the Sentry served for `args`, from `--stats`.
fn served(platform: &str, args: &[&str]) -> u64 {
    let out =
        run(Command::new("timeout").args(["120", moat(), "do", "--stats", "--platform", platform, "--"]).args(args));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?} on {platform}: {stderr}");
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("moat: stats: syscalls="))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no syscall count in {stderr}"))
}

/// Whether the host's CPU has an invariant TSC (Linux's `nonstop_tsc`), which
/// moat's vDSO computes the clocks from; without it every read is a system call.
fn invariant_tsc() -> bool {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").expect("read /proc/cpuinfo");
    cpuinfo.lines().filter(|l| l.starts_with("flags")).all(|l| l.split_whitespace().any(|f| f == "nonstop_tsc"))
}

#[test]
fn reading_the_clock_never_reaches_the_sentry() {
    let bin = probe_as("vdso_clock", "vdso_clock_loop", &["-static"]);
    let bin = bin.to_str().expect("utf-8 path");
    let python = ["/usr/bin/python3", "-c", "import time\nfor _ in range(100000): time.monotonic(); time.time()"];
    for platform in PLATFORMS {
        // 100000 rounds of clock_gettime twice, gettimeofday and time.
        let loop_calls = served(platform, &[bin, "loop", "100000"]);
        let python_calls = served(platform, &python);
        if invariant_tsc() {
            assert!(loop_calls < 1000, "{loop_calls} system calls on {platform} for 400000 clock reads");
            assert!(python_calls < 5000, "{python_calls} system calls on {platform} for python3's 200000 clock reads");
        } else {
            // The vDSO falls back to the system call, every time.
            assert!(loop_calls >= 400000, "{loop_calls} system calls on {platform} for 400000 clock reads");
            assert!(python_calls >= 200000, "{python_calls} system calls on {platform} for 200000 clock reads");
        }
    }
}
