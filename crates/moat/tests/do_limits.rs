//! `moat do --memory/--pids/--cpus`: the sandbox (Sentry, Gofers, stubs)
//! runs in a cgroup of its own holding those limits, gone when moat do ends.
//!
//! Run as root. Each test finds the sandbox's cgroup from /proc/PID/cgroup
//! of the second `moat do` (the sandbox's pid 1) while it runs, checks its
//! limit files, and checks that it is gone afterwards; a test that fails
//! halfway removes what it left.

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use common::{moat_command, Output, Running};

/// A C program built statically from `source` into a scratch directory the
/// sandbox sees (its /tmp is its own), removed when dropped.
#[derive(Debug)]
struct Probe {
    dir: PathBuf,
    binary: PathBuf,
}

impl Probe {
    fn build(name: &str, source: &str) -> Probe {
        let dir = common::native::scratch(&common::unique_name(name));
        let c = dir.join(format!("{name}.c"));
        fs::write(&c, source).expect("write the probe's source");
        let binary = dir.join(name);
        let out = std::process::Command::new("gcc")
            .args(["-static", "-O1", "-Wall", "-Werror", "-o"])
            .arg(&binary)
            .arg(&c)
            .output()
            .unwrap_or_else(|e| panic!("cannot run gcc ({e}); install gcc and libc6-dev"));
        assert!(out.status.success(), "gcc cannot build {name}:\n{}", String::from_utf8_lossy(&out.stderr));
        Probe { dir, binary }
    }

    fn path(&self) -> &str {
        self.binary.to_str().expect("utf-8 scratch path")
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Waits for "go" on stdin, then maps and touches 1 GiB, 16 MiB at a time.
const TOUCH_1_GIB: &str = r#"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(void) {
    const size_t total = (size_t)1 << 30, step = (size_t)16 << 20;
    char go;
    if (read(0, &go, 1) != 1) return 3;
    for (size_t done = 0; done < total; done += step) {
        char *p = mmap(NULL, step, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            printf("mmap failed after %zu MiB: %s\n", done >> 20, strerror(errno));
            return 2;
        }
        for (size_t i = 0; i < step; i += 4096) p[i] = 1;
    }
    puts("touched 1 GiB");
    return 0;
}
"#;

/// Forks children that wait, until fork fails; says how and how many, then
/// waits for stdin to close (so the test can look at the cgroup meanwhile).
const FORK_BOMB: &str = r#"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void) {
    char c;
    for (int children = 0; children < 100000; children++) {
        pid_t pid = fork();
        if (pid == 0) {
            pause();
            _exit(0);
        }
        if (pid < 0) {
            printf("fork failed after %d children: %s\n", children, errno == EAGAIN ? "EAGAIN" : strerror(errno));
            fflush(stdout);
            while (read(0, &c, 1) > 0) {}
            return errno == EAGAIN ? 0 : 1;
        }
    }
    puts("fork never failed");
    return 2;
}
"#;

/// Where each cgroup hierarchy is mounted: the v1 controllers it carries
/// (none for cgroup2) and its mount point, from /proc/self/mountinfo.
fn hierarchies() -> Vec<(Vec<String>, PathBuf)> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").expect("read /proc/self/mountinfo");
    let mut found = Vec::new();
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(dash) = fields.iter().position(|f| *f == "-") else { continue };
        let (Some(fstype), Some(options)) = (fields.get(dash + 1), fields.get(dash + 3)) else { continue };
        let controllers = match *fstype {
            "cgroup2" => Vec::new(),
            "cgroup" => options.split(',').map(str::to_owned).collect(),
            _ => continue,
        };
        found.push((controllers, PathBuf::from(fields[4])));
    }
    found
}

/// A cgroup's directory in each hierarchy: (v1 controllers, or none for
/// cgroup2; directory).
type Dirs = Vec<(Vec<String>, PathBuf)>;

/// The cgroup `inner` (the sandbox's pid 1) has joined: where its
/// /proc/PID/cgroup differs from that of `outer` (the first moat do, which
/// stays where it was started). None until it has joined.
fn joined_cgroup(outer: u32, inner: u32) -> Option<Dirs> {
    let read = |pid: u32| fs::read_to_string(format!("/proc/{pid}/cgroup")).ok();
    let (outer, inner) = (read(outer)?, read(inner)?);
    let hierarchies = hierarchies();
    let mut dirs = Vec::new();
    for line in inner.lines().filter(|l| !outer.lines().any(|o| o == *l)) {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        assert!(path.starts_with("/moat/do-"), "the sandbox joined a cgroup not its own: {line}");
        let controllers: Vec<String> = controllers.split(',').filter(|c| !c.is_empty()).map(str::to_owned).collect();
        let mount = hierarchies.iter().find(|(c, _)| match controllers.first() {
            Some(first) => c.contains(first),
            None => c.is_empty(),
        })?;
        dirs.push((controllers, mount.1.join(path.trim_start_matches('/'))));
    }
    (!dirs.is_empty()).then_some(dirs)
}

/// The sandbox's cgroup; removed when dropped if moat do left it behind.
#[derive(Debug)]
struct SandboxCgroup {
    dirs: Dirs,
}

impl SandboxCgroup {
    /// A limit file: `v1` in the v1 hierarchy of `controller` if there is
    /// one, else `v2` in the cgroup2 directory.
    fn read(&self, controller: &str, v1: &str, v2: &str) -> String {
        let file = match self.dirs.iter().find(|(c, _)| c.iter().any(|c| c == controller)) {
            Some((_, dir)) => dir.join(v1),
            None => {
                let (_, dir) = self.dirs.iter().find(|(c, _)| c.is_empty()).expect("no cgroup2 directory");
                dir.join(v2)
            }
        };
        fs::read_to_string(&file).unwrap_or_else(|e| panic!("read {}: {e}", file.display())).trim().to_owned()
    }

    /// The memory limit and the memory+swap limit in bytes (v2's
    /// memory.swap.max counts swap alone, so it is added).
    fn memory_limits(&self) -> (String, String) {
        let memory = self.read("memory", "memory.limit_in_bytes", "memory.max");
        let swap = if self.dirs.iter().any(|(c, _)| c.iter().any(|c| c == "memory")) {
            self.read("memory", "memory.memsw.limit_in_bytes", "")
        } else {
            let swap: u64 = self.read("memory", "", "memory.swap.max").parse().expect("memory.swap.max");
            (memory.parse::<u64>().expect("memory.max") + swap).to_string()
        };
        (memory, swap)
    }

    /// The CPU quota and period in microseconds ("-1"/"max" for no quota).
    fn cpu_quota(&self) -> (String, String) {
        if self.dirs.iter().any(|(c, _)| c.iter().any(|c| c == "cpu")) {
            (self.read("cpu", "cpu.cfs_quota_us", ""), self.read("cpu", "cpu.cfs_period_us", ""))
        } else {
            let max = self.read("cpu", "", "cpu.max");
            let (quota, period) = max.split_once(' ').expect("cpu.max is QUOTA PERIOD");
            (quota.to_owned(), period.to_owned())
        }
    }

    fn left(&self) -> Vec<&Path> {
        self.dirs.iter().map(|(_, d)| d.as_path()).filter(|d| d.exists()).collect()
    }
}

impl Drop for SandboxCgroup {
    /// A test that fails halfway must not leave its sandbox's cgroup
    /// behind. Each test declares its cgroup before its Running, so that the
    /// Running is dropped first and has killed the sandbox by now; rmdir
    /// removes only an empty cgroup.
    fn drop(&mut self) {
        for dir in self.left() {
            for _ in 0..200 {
                if fs::remove_dir(dir).is_ok() {
                    break;
                }
                thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// `moat do ARGS...` started with a stdin pipe.
fn start(args: &[&str]) -> Running {
    let mut full = vec!["do"];
    full.extend_from_slice(args);
    Running::spawn(moat_command(&full), &format!("moat {}", full.join(" ")), true)
}

/// The cgroup of the sandbox `run`, once its app runs (so its pid 1, the
/// second `moat do`, has long joined the cgroup in every hierarchy), with
/// the sandbox's host processes. Fails the test past the run's time limit.
fn sandbox_cgroup(run: &mut Running) -> (SandboxCgroup, Vec<(u32, String)>) {
    loop {
        let descendants = common::host_descendants(run.pid());
        let inner = descendants.iter().find(|(_, cmd)| cmd.contains("--in-pid-namespace"));
        // The Gofer's command line names its subcommand; stubs have none.
        let gofer = descendants.iter().any(|(_, cmd)| cmd.contains(" gofer "));
        let stub = descendants.iter().any(|(_, cmd)| cmd.is_empty());
        if let (Some((inner, _)), true, true) = (inner, gofer, stub) {
            let dirs = joined_cgroup(run.pid(), *inner).expect("the sandbox's pid 1 is in no cgroup of its own");
            return (SandboxCgroup { dirs }, descendants);
        }
        assert!(!run.has_exited(), "moat do exited before its app started");
        assert!(!run.past_deadline(), "the sandbox's app never started");
        thread::sleep(Duration::from_millis(10));
    }
}

fn assert_removed(cgroup: &SandboxCgroup, out: &Output) {
    assert!(cgroup.left().is_empty(), "moat do left its cgroup behind: {:?}\n{}", cgroup.left(), out.describe());
}

/// The app touches 1 GiB under a 256 MiB limit: the kernel's OOM killer
/// stops it (137), or an allocation fails; it never finishes.
#[test]
fn memory_limit_stops_an_app_touching_1_gib() {
    let probe = Probe::build("touch_1_gib", TOUCH_1_GIB);
    let cgroup;
    let mut run = start(&["--memory", "256M", "--", probe.path()]);
    (cgroup, _) = sandbox_cgroup(&mut run);
    let limit = (256u64 << 20).to_string();
    assert_eq!(cgroup.memory_limits(), (limit.clone(), limit), "memory and memory+swap limits");
    run.take_stdin().expect("stdin").write_all(b"go").expect("write to the probe");
    while !run.has_exited() {
        // Running kills the sandbox (and this test's cgroup guard removes
        // the cgroup) when this fails.
        assert!(
            !run.past_deadline(),
            "moat do --memory 256M did not end within {:?} of its app touching 1 GiB: the sandbox hangs under \
             memory pressure (did the OOM killer pick the Sentry or a Gofer instead of the app? see dmesg)",
            common::TIME_LIMIT
        );
        thread::sleep(Duration::from_millis(10));
    }
    let out = run.finish();
    assert!(!out.stdout.contains("touched 1 GiB"), "the app used 1 GiB under --memory 256M\n{}", out.describe());
    let stopped = out.status == 137 || (out.status != 0 && out.stdout.contains("mmap failed"));
    assert!(stopped, "expected an OOM kill (137) or a failed allocation\n{}", out.describe());
    assert_removed(&cgroup, &out);
}

/// The Sentry refuses the 20th task with EAGAIN, as a pids cgroup would;
/// the host cgroup holds the sandbox's own tasks too (2 × 20 + 64).
#[test]
fn pids_limit_stops_a_fork_bomb() {
    let probe = Probe::build("fork_bomb", FORK_BOMB);
    let cgroup;
    let mut run = start(&["--pids", "20", "--", probe.path()]);
    (cgroup, _) = sandbox_cgroup(&mut run);
    assert_eq!(cgroup.read("pids", "pids.max", "pids.max"), "104");
    drop(run.take_stdin());
    let out = run.finish();
    assert_eq!((out.status, out.stdout.as_str()), (0, "fork failed after 19 children: EAGAIN\n"), "{}", out.describe());
    assert_removed(&cgroup, &out);
}

#[test]
fn cpus_sets_a_cfs_quota() {
    for (cpus, quota) in [("0.5", "50000"), ("0.25", "25000")] {
        let cgroup;
        let mut run = start(&["--cpus", cpus, "--", "/bin/sh", "-c", "read line; exit 0"]);
        (cgroup, _) = sandbox_cgroup(&mut run);
        assert_eq!(cgroup.cpu_quota(), (quota.to_owned(), "100000".to_owned()), "--cpus {cpus}");
        let out = run.finish();
        assert_eq!(out.status, 0, "{}", out.describe());
        assert_removed(&cgroup, &out);
    }
}

/// MemTotal from /proc/meminfo, in bytes.
fn host_ram() -> u64 {
    let meminfo = fs::read_to_string("/proc/meminfo").expect("read /proc/meminfo");
    let kb = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .expect("MemTotal in /proc/meminfo");
    kb * 1024
}

/// Without flags: half the host's RAM, no swap, 1024 app tasks (2112 on
/// the host), no CPU quota.
#[test]
fn defaults_fit_the_host() {
    let cgroup;
    let mut run = start(&["--", "/bin/sh", "-c", "read line; exit 0"]);
    (cgroup, _) = sandbox_cgroup(&mut run);
    // The kernel keeps limits in whole pages.
    let half = (host_ram() / 2 / 4096 * 4096).to_string();
    assert_eq!(cgroup.memory_limits(), (half.clone(), half));
    assert_eq!(cgroup.read("pids", "pids.max", "pids.max"), "2112");
    let (quota, _) = cgroup.cpu_quota();
    assert!(quota == "-1" || quota == "max", "a CPU quota without --cpus: {quota}");
    let out = run.finish();
    assert_eq!(out.status, 0, "{}", out.describe());
    assert_removed(&cgroup, &out);
}

/// The Sentry (the second moat do), the Gofer and every stub run in the
/// cgroup; the first moat do, which removes it, stays outside.
#[test]
fn every_sandbox_process_is_in_the_cgroup() {
    let cgroup;
    let mut run = start(&["--", "/bin/sh", "-c", "read line; exit 0"]);
    let descendants;
    (cgroup, descendants) = sandbox_cgroup(&mut run);
    for (pid, cmd) in &descendants {
        let dirs = joined_cgroup(run.pid(), *pid);
        assert_eq!(dirs.as_ref(), Some(&cgroup.dirs), "process {pid} ({cmd:?}) is not in the sandbox's cgroup");
    }
    let out = run.finish();
    assert_eq!(out.status, 0, "{}", out.describe());
    assert_removed(&cgroup, &out);
}

/// SIGTERM or SIGINT to `moat do` ends the sandbox, removes its cgroup, and
/// then ends moat do by the same signal.
#[test]
fn a_stop_signal_ends_the_sandbox_and_removes_its_cgroup() {
    for (signal, status) in [(nix::sys::signal::Signal::SIGTERM, 143), (nix::sys::signal::Signal::SIGINT, 130)] {
        let cgroup;
        let mut run = start(&["--", "/bin/sh", "-c", "read line; exit 0"]);
        (cgroup, _) = sandbox_cgroup(&mut run);
        let _stdin = run.take_stdin();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(run.pid() as i32), signal).expect("signal moat do");
        let out = run.finish();
        assert_eq!(out.status, status, "{signal}\n{}", out.describe());
        assert_removed(&cgroup, &out);
    }
}

#[test]
fn bad_limits_are_refused_with_status_125() {
    let cases: &[(&[&str], &str)] = &[
        (&["--memory", "lots"], "--memory: \"lots\" is not a size"),
        (&["--memory", "1M"], "--memory 1M: the least is 64M"),
        (&["--pids", "0"], "--pids \"0\": give a number of tasks from 1"),
        (&["--pids", "many"], "--pids \"many\""),
        (&["--cpus", "0"], "--cpus 0: the range is 0.01 to"),
        (&["--cpus", "100000"], "--cpus 100000: the range is 0.01 to"),
        (&["--cpus", "NaN"], "--cpus NaN: the range is 0.01 to"),
        (&["--cpus", "half"], "--cpus \"half\" is not a number"),
    ];
    for (flags, message) in cases {
        let mut args = vec!["do"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["--", "echo", "the command ran"]);
        let out = Running::spawn(moat_command(&args), &format!("moat {}", args.join(" ")), false).finish();
        assert_eq!(out.status, 125, "{flags:?}\n{}", out.describe());
        assert!(out.stdout.is_empty(), "{flags:?}\n{}", out.describe());
        assert!(out.stderr.starts_with("moat: ") && out.stderr.lines().count() == 1, "{flags:?}\n{}", out.describe());
        assert!(out.stderr.contains(message), "{flags:?}: expected {message:?}\n{}", out.describe());
    }
}

/// Without root there is no cgroup: asking for a limit is an error rather
/// than a limit silently not applied.
#[test]
fn limits_without_root_are_refused() {
    for flags in [["--memory", "256M"], ["--pids", "20"], ["--cpus", "1"]] {
        let mut args = vec!["do"];
        args.extend_from_slice(&flags);
        args.extend_from_slice(&["--", "echo", "the command ran"]);
        let mut command = moat_command(&args);
        command.uid(65534).gid(65534).current_dir("/");
        let out = Running::spawn(command, &format!("moat {} as nobody", args.join(" ")), false).finish();
        assert_eq!(out.status, 125, "{flags:?}\n{}", out.describe());
        assert!(out.stderr.contains("need root"), "{flags:?}\n{}", out.describe());
        assert!(out.stdout.is_empty(), "{flags:?}\n{}", out.describe());
    }
}

/// The sandbox's /proc/meminfo and sysinfo report its memory limit as the
/// total, as runsc's do (with the default, half the host's RAM): a program
/// sizing its caches by MemTotal sizes them to what it may use.
#[test]
fn meminfo_shows_the_memory_limit() {
    let shown = |args: &[&str]| {
        let out = std::process::Command::new(common::moat_binary())
            .arg("do")
            .args(args)
            .args(["--", "/bin/sh", "-c", "grep MemTotal /proc/meminfo"])
            .output()
            .expect("run moat do");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).split_whitespace().nth(1).and_then(|kb| kb.parse::<u64>().ok()).unwrap()
    };
    assert_eq!(shown(&["--memory", "256M"]), 256 * 1024);
    assert_eq!(shown(&[]), host_ram() / 2 / 1024);
}
