//! Both platforms, whatever MOAT_PLATFORM the suite runs on: an idle
//! sandbox costs the host no CPU, and app threads spinning in system calls
//! do not starve one blocked in the Sentry.

mod common;

use std::fs;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::native::{moat, probe_with};

const PLATFORMS: [&str; 2] = ["ptrace", "systrap"];

/// pid and every process below it.
fn tree(top: u32) -> Vec<u32> {
    let mut all = vec![top];
    let mut i = 0;
    while i < all.len() {
        let parent = all[i];
        for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
            let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
            let Some((_, after)) = stat.rsplit_once(')') else { continue };
            let ppid: u32 = after.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
            if ppid == parent && !all.contains(&pid) {
                all.push(pid);
            }
        }
        i += 1;
    }
    all
}

/// CPU ticks (user + system) of every thread of every process below `top`.
fn ticks(top: u32) -> u64 {
    let mut sum = 0;
    for pid in tree(top) {
        for t in fs::read_dir(format!("/proc/{pid}/task")).into_iter().flatten().flatten() {
            let Ok(stat) = fs::read_to_string(t.path().join("stat")) else { continue };
            let Some((_, after)) = stat.rsplit_once(')') else { continue };
            let f: Vec<&str> = after.split_whitespace().collect();
            sum += f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            sum += f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    sum
}

#[test]
fn an_idle_sandbox_uses_no_cpu_on_either_platform() {
    for platform in PLATFORMS {
        let mut child = Command::new(moat())
            .args(["do", "--platform", platform, "--", "/bin/sleep", "14"])
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn moat do");
        // Past start-up: the app is asleep in the Sentry.
        std::thread::sleep(Duration::from_secs(2));
        let before = ticks(child.id());
        std::thread::sleep(Duration::from_secs(10));
        let after = ticks(child.id());
        // It ends by itself: nothing is left behind.
        let _ = child.wait();
        // A tick is 10 ms: 3 ticks in 10 s is under 0.3 % of one CPU.
        assert!(
            after.saturating_sub(before) <= 3,
            "an idle sandbox on {platform} used {} CPU ticks over 10 s",
            after.saturating_sub(before)
        );
    }
}

#[test]
fn threads_spinning_in_syscalls_do_not_starve_a_blocked_reader() {
    let bin = probe_with("spin_reader", &["-static"]);
    let bin = bin.to_str().expect("utf-8 path");
    for platform in PLATFORMS {
        let out = Command::new("timeout")
            .args(["120", moat(), "do", "--platform", platform, "--", bin])
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .stdin(Stdio::null())
            .output()
            .expect("run moat do");
        assert_eq!(
            (String::from_utf8_lossy(&out.stdout).as_ref(), out.status.code()),
            ("the reader woke with x\nall threads ended\n", Some(0)),
            "on {platform}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
