//! cgroups on this machine's real hierarchies: limits land in the files the
//! kernel reads and are enforced, processes join, freeze and leave.
//!
//! Needs root; fails rather than skips without it, so that CI cannot pass
//! without checking. Each test makes its own `/moat-test/<pid>-<n>`.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;
use runtime::cgroups::{detect, Cgroup, CgroupError, Layout};
use serde_json::json;

const MIB: u64 = 1024 * 1024;

fn require_root() {
    assert!(nix::unistd::geteuid().is_root(), "the cgroup tests need root: they create cgroups under /sys/fs/cgroup");
}

/// A cgroup path no other test (or test run) uses.
fn unique_path() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("/moat-test/{}-{n}", std::process::id())
}

fn resources(value: serde_json::Value) -> LinuxResources {
    serde_json::from_value(value).expect("test resources are valid OCI JSON")
}

/// The directory of `controller` for cgroup `path` on the layout `detect()`
/// found (on v2 the controller is ignored): found independently of the
/// module under test, from the layout's root.
fn dir(controller: &str, path: &str) -> PathBuf {
    let relative = path.trim_start_matches('/');
    match detect().expect("cgroups are mounted") {
        Layout::V1 { root } | Layout::Hybrid { v1: root, .. } => root.join(controller).join(relative),
        Layout::V2 { root } => root.join(relative),
    }
}

fn read(controller: &str, path: &str, file: &str) -> String {
    let file = dir(controller, path).join(file);
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("reading {}: {e}", file.display())).trim().to_owned()
}

/// Whether the host's v1 I/O controller has a weight file (CFQ or BFQ); on
/// v2 the root has none to look at, and a weight is taken as supported.
fn io_weight_supported() -> bool {
    let parent = dir("blkio", "/");
    is_v2() || ["blkio.weight", "blkio.bfq.weight"].iter().any(|f| parent.join(f).exists())
}

fn is_v2() -> bool {
    matches!(detect().unwrap(), Layout::V2 { .. })
}

/// Removes the test's cgroup even when an assertion failed first, and the
/// shared parent once no test is using it: every test holds `LIVE` for
/// reading while its cgroup exists, the last one out takes it for writing.
struct Cleanup(String, Option<std::sync::RwLockReadGuard<'static, ()>>);

static LIVE: std::sync::RwLock<()> = std::sync::RwLock::new(());

impl Cleanup {
    fn new(path: String) -> Cleanup {
        Cleanup(path, Some(LIVE.read().unwrap_or_else(|e| e.into_inner())))
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Ok(cgroup) = Cgroup::open(&self.0) {
            for pid in cgroup.procs().unwrap_or_default() {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            let _ = cgroup.remove();
        }
        drop(self.1.take());
        let Ok(_alone) = LIVE.try_write() else { return };
        let roots: Vec<PathBuf> = match detect() {
            Ok(Layout::V1 { root }) => controller_dirs(&root),
            Ok(Layout::Hybrid { v1, unified }) => controller_dirs(&v1).into_iter().chain([unified]).collect(),
            Ok(Layout::V2 { root }) => vec![root],
            Err(_) => Vec::new(),
        };
        for root in roots {
            let _ = std::fs::remove_dir(root.join("moat-test"));
        }
    }
}

/// The directories of the v1 hierarchies under `root`.
fn controller_dirs(root: &std::path::Path) -> Vec<PathBuf> {
    std::fs::read_dir(root).map(|d| d.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect()).unwrap_or_default()
}

/// A child killed and reaped when dropped.
struct Child(std::process::Child);

impl Child {
    /// `sh -c script` with piped stdio; scripts start with `read go` so the
    /// test can move the shell into a cgroup before it does anything.
    fn shell(script: &str) -> Child {
        let child = Command::new("sh")
            .args(["-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning sh");
        Child(child)
    }

    fn pid(&self) -> i32 {
        self.0.id() as i32
    }

    fn go(&mut self) {
        let stdin = self.0.stdin.as_mut().expect("stdin is piped");
        stdin.write_all(b"go\n").expect("telling the child to go");
    }

    fn read_line(&mut self) -> String {
        let stdout = self.0.stdout.as_mut().expect("stdout is piped");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("reading the child's stdout");
        line.trim().to_owned()
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The one-letter state in /proc/PID/stat (after the parenthesised name).
fn proc_state(pid: i32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("reading /proc/PID/stat");
    let after_name = &stat[stat.rfind(')').expect("stat has a name") + 2..];
    after_name.chars().next().expect("stat has a state")
}

#[test]
fn create_writes_the_limits_asked_for() {
    require_root();
    let path = unique_path();
    let _cleanup = Cleanup::new(path.clone());
    // Proportional I/O weights exist only under CFQ or BFQ; on a host
    // without either (a VM whose disks use none or mq-deadline) there is no
    // weight file, and asking for a weight fails as it does with runc.
    let weight = io_weight_supported();
    let mut r = json!({
        "memory": {"limit": 64 * MIB},
        "pids": {"limit": 10},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0"},
    });
    if weight {
        r["blockIO"] = json!({"weight": 300});
    } else {
        let refused = Cgroup::create(&path, Some(&resources(json!({"blockIO": {"weight": 300}}))));
        let error = refused.expect_err("a block I/O weight without CFQ or BFQ must be refused").to_string();
        assert!(error.contains("weight"), "the error names the weight file: {error}");
    }
    let r = resources(r);
    let cgroup = Cgroup::create(&path, Some(&r)).unwrap();
    let layout = detect().unwrap();
    eprintln!("layout: {layout:?}");
    if is_v2() {
        assert_eq!(read("", &path, "memory.max"), (64 * MIB).to_string());
        assert_eq!(read("", &path, "pids.max"), "10");
        assert_eq!(read("", &path, "cpu.max"), "50000 100000");
        // runc's conversion: 1 + ((512 - 2) * 9999) / 262142.
        assert_eq!(read("", &path, "cpu.weight"), "20");
        assert_eq!(read("", &path, "cpuset.cpus"), "0");
        // io.bfq.weight takes blkio's range; io.weight runc's conversion.
        if dir("", &path).join("io.bfq.weight").exists() {
            assert!(read("", &path, "io.bfq.weight").starts_with("default 300"));
        } else {
            assert!(read("", &path, "io.weight").starts_with("default 2930"));
        }
    } else {
        assert_eq!(read("memory", &path, "memory.limit_in_bytes"), (64 * MIB).to_string());
        assert_eq!(read("pids", &path, "pids.max"), "10");
        assert_eq!(read("cpu", &path, "cpu.cfs_quota_us"), "50000");
        assert_eq!(read("cpu", &path, "cpu.cfs_period_us"), "100000");
        assert_eq!(read("cpu", &path, "cpu.shares"), "512");
        assert_eq!(read("cpuset", &path, "cpuset.cpus"), "0");
        // BFQ's file where the scheduler is BFQ, else the legacy CFQ one.
        if !weight {
            eprintln!("no CFQ or BFQ here: the weight was checked to be refused");
        } else if dir("blkio", &path).join("blkio.bfq.weight").exists() {
            assert_eq!(read("blkio", &path, "blkio.bfq.weight"), "300");
        } else {
            assert_eq!(read("blkio", &path, "blkio.weight"), "300");
        }
        // Copied from the parent: without mems the cpuset refuses tasks.
        assert!(!read("cpuset", &path, "cpuset.mems").is_empty());
        for controller in ["cpuacct", "blkio", "freezer"] {
            assert!(dir(controller, &path).is_dir(), "{controller} directory for {path}");
        }
    }
    if let Layout::Hybrid { unified, .. } = &layout {
        assert!(unified.join(path.trim_start_matches('/')).is_dir());
    }
    cgroup.remove().unwrap();
}

#[test]
fn added_process_is_listed_and_named_in_proc_cgroup() {
    require_root();
    let path = unique_path();
    let _cleanup = Cleanup::new(path.clone());
    let cgroup = Cgroup::create(&path, None).unwrap();
    let child = Child(Command::new("sleep").arg("30").spawn().unwrap());
    cgroup.add(child.pid()).unwrap();

    // Every line for a controller this module joins (and the v2 line on
    // hybrid and v2 hosts) names the path.
    let membership = std::fs::read_to_string(format!("/proc/{}/cgroup", child.pid())).unwrap();
    let ours = ["memory", "cpu", "cpuacct", "cpuset", "pids", "blkio", "freezer"];
    let mut named = 0;
    for line in membership.lines() {
        let mut fields = line.splitn(3, ':');
        let (_, controllers, at) = (fields.next(), fields.next().unwrap_or(""), fields.next().unwrap_or(""));
        let joined = match detect().unwrap() {
            Layout::V1 { .. } => controllers.split(',').any(|c| ours.contains(&c)),
            Layout::Hybrid { .. } => controllers.is_empty() || controllers.split(',').any(|c| ours.contains(&c)),
            Layout::V2 { .. } => controllers.is_empty(),
        };
        if joined {
            assert_eq!(at, path, "line {line:?} of:\n{membership}");
            named += 1;
        }
    }
    assert!(named >= 1, "{path} is not in:\n{membership}");
    assert_eq!(cgroup.procs().unwrap(), vec![child.pid()]);
    drop(child);
    assert_eq!(cgroup.procs().unwrap(), Vec::<i32>::new());
    cgroup.remove().unwrap();
}

#[test]
fn pids_limit_stops_forks() {
    require_root();
    let path = unique_path();
    let _cleanup = Cleanup::new(path.clone());
    let cgroup = Cgroup::create(&path, Some(&resources(json!({"pids": {"limit": 5}})))).unwrap();
    let mut child =
        Child::shell("read go; for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 30 & echo started; done; wait");
    cgroup.add(child.pid()).unwrap();
    child.go();
    let status = child.0.wait().unwrap();
    let stats = cgroup.stats().unwrap();
    // The sleeps hold the shell's stdout open: they go before it is read.
    for pid in cgroup.procs().unwrap() {
        kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    }
    let mut stdout = String::new();
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.0.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    std::io::Read::read_to_string(child.0.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    // The shell is one of the five.
    assert_eq!(stdout.lines().count(), 4, "stdout {stdout:?} stderr {stderr:?}");
    assert!(!status.success(), "the shell should fail to fork: {stderr:?}");
    assert!(stderr.contains("fork"), "stderr {stderr:?}");
    assert_eq!(stats.pids_limit, Some(5));
    assert_eq!(stats.pids_current, 4);
    cgroup.remove().unwrap();
}

#[test]
fn memory_limit_oom_kills() {
    require_root();
    let path = unique_path();
    let _cleanup = Cleanup::new(path.clone());
    // swap equal to the limit: no swap, so the allocation cannot escape to it.
    let limit = 32 * MIB;
    let r = resources(json!({"memory": {"limit": limit, "swap": limit}}));
    let cgroup = Cgroup::create(&path, Some(&r)).unwrap();
    // tail holds the last lines; /dev/zero has no newline, so it holds all
    // 200 MiB.
    let mut child = Child::shell("read go; head -c 200M /dev/zero | tail > /dev/null");
    cgroup.add(child.pid()).unwrap();
    child.go();
    let status = child.0.wait().unwrap();
    // The shell reports tail's death by SIGKILL as 128 + 9.
    assert_eq!(status.code(), Some(137), "{status:?}");
    let stats = cgroup.stats().unwrap();
    assert!(stats.oom_kills >= 1, "{stats:?}");
    assert_eq!(cgroup.memory_oom_events(), stats.oom_kills);
    assert_eq!(stats.memory_limit, limit);
    cgroup.remove().unwrap();
}

#[test]
fn freeze_stops_processes_and_thaw_restarts_them() {
    require_root();
    let path = unique_path();
    let _cleanup = Cleanup::new(path.clone());
    let cgroup = Cgroup::create(&path, None).unwrap();
    let child = Child(Command::new("sleep").arg("30").spawn().unwrap());
    cgroup.add(child.pid()).unwrap();

    cgroup.freeze().unwrap();
    if is_v2() {
        assert!(read("", &path, "cgroup.events").contains("frozen 1"));
    } else {
        assert_eq!(read("freezer", &path, "freezer.state"), "FROZEN");
        // The v1 freezer parks tasks in an uninterruptible sleep.
        assert_eq!(proc_state(child.pid()), 'D');
    }
    cgroup.thaw().unwrap();
    if is_v2() {
        assert!(read("", &path, "cgroup.events").contains("frozen 0"));
    } else {
        assert_eq!(read("freezer", &path, "freezer.state"), "THAWED");
    }
    // Thawed tasks go back to the sleep they were frozen in.
    let mut state = proc_state(child.pid());
    for _ in 0..100 {
        if state == 'S' {
            break;
        }
        thread::sleep(Duration::from_millis(10));
        state = proc_state(child.pid());
    }
    assert_eq!(state, 'S');
    drop(child);
    cgroup.remove().unwrap();
}

#[test]
fn update_changes_limits() {
    require_root();
    let path = unique_path();
    let _cleanup = Cleanup::new(path.clone());
    let cgroup = Cgroup::create(&path, Some(&resources(json!({"memory": {"limit": 64 * MIB}})))).unwrap();
    let opened = Cgroup::open(&path).unwrap();
    opened.update(&resources(json!({"memory": {"limit": 128 * MIB}, "pids": {"limit": 20}}))).unwrap();
    let stats = cgroup.stats().unwrap();
    assert_eq!(stats.memory_limit, 128 * MIB);
    assert_eq!(stats.pids_limit, Some(20));
    // -1 lifts the limits again.
    opened.update(&resources(json!({"memory": {"limit": -1}, "pids": {"limit": -1}}))).unwrap();
    let stats = cgroup.stats().unwrap();
    assert!(stats.memory_limit > 1 << 60, "{stats:?}");
    assert_eq!(stats.pids_limit, None);
    opened.remove().unwrap();
    assert!(matches!(Cgroup::open(&path), Err(CgroupError::NotFound(_))));
}

#[test]
fn stats_and_events_json_are_sane() {
    require_root();
    let path = unique_path();
    let _cleanup = Cleanup::new(path.clone());
    let r = resources(json!({"memory": {"limit": 64 * MIB}, "pids": {"limit": 10}}));
    let cgroup = Cgroup::create(&path, Some(&r)).unwrap();
    // Some work charged to the cgroup: CPU for the loop, memory for the
    // pipe and the shells' pages.
    let mut child = Child::shell(
        "read go; i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; \
         head -c 4M /dev/zero | tail -c 1 > /dev/null; echo ready; exec sleep 30",
    );
    cgroup.add(child.pid()).unwrap();
    child.go();
    assert_eq!(child.read_line(), "ready");

    let stats = cgroup.stats().unwrap();
    assert_eq!(stats.memory_limit, 64 * MIB);
    assert!(stats.memory_usage > 0 && stats.memory_usage < 64 * MIB, "{stats:?}");
    assert!(stats.memory_max_usage >= stats.memory_usage || is_v2(), "{stats:?}");
    assert!(stats.cpu_usage_ns > 0, "{stats:?}");
    assert_eq!(stats.pids_current, 1);
    assert_eq!(stats.pids_limit, Some(10));
    assert_eq!(stats.oom_kills, 0);

    let event = cgroup.events_json("c1").unwrap();
    assert_eq!(event["type"], "stats");
    assert_eq!(event["id"], "c1");
    assert_eq!(event["data"]["memory"]["usage"]["limit"], 64 * MIB);
    assert!(event["data"]["memory"]["usage"]["usage"].as_u64().unwrap() > 0);
    assert!(event["data"]["cpu"]["usage"]["total"].as_u64().unwrap() > 0);
    assert_eq!(event["data"]["pids"]["limit"], 10);
    assert!(event["data"]["pids"]["current"].as_u64().unwrap() >= 1);
    drop(child);
    cgroup.remove().unwrap();
}

#[test]
fn bad_paths_are_refused() {
    for path in ["../x", "/a/../../x"] {
        let err = Cgroup::create(path, None).unwrap_err();
        assert!(matches!(err, CgroupError::ParentComponent(_)), "{path}: {err}");
    }
    for path in ["", "/", "//./"] {
        let err = Cgroup::create(path, None).unwrap_err();
        assert!(matches!(err, CgroupError::EmptyPath(_)), "{path:?}: {err}");
    }
    let err = Cgroup::create("system.slice:docker:abc", None).unwrap_err();
    assert!(err.to_string().contains("systemd cgroup paths are not supported"), "{err}");
    let err = Cgroup::open("system.slice:docker:abc").unwrap_err();
    assert!(matches!(err, CgroupError::SystemdPath(_)), "{err}");
}

#[test]
fn unsupported_or_contradictory_resources_are_refused() {
    require_root();
    let path = unique_path();
    let _cleanup = Cleanup::new(path.clone());
    let r = resources(json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 1}]}));
    let err = Cgroup::create(&path, Some(&r)).unwrap_err();
    assert!(matches!(err, CgroupError::Unsupported(_)), "{err}");
    let r = resources(json!({"memory": {"limit": 64 * MIB, "swap": 32 * MIB}}));
    let err = Cgroup::create(&path, Some(&r)).unwrap_err();
    assert!(matches!(err, CgroupError::InvalidResources(_)), "{err}");
    // A failed create leaves no cgroup behind.
    assert!(matches!(Cgroup::open(&path), Err(CgroupError::NotFound(_))));
    // A value the kernel refuses names the file and the value.
    let r = resources(json!({"cpu": {"cpus": "4096"}}));
    let err = Cgroup::create(&path, Some(&r)).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("cpuset.cpus") && message.contains("\"4096\""), "{message}");
}

#[test]
fn remove_waits_for_exiting_processes_and_leaves_nothing() {
    require_root();
    let path = unique_path();
    let _cleanup = Cleanup::new(path.clone());
    let r = resources(json!({"memory": {"limit": 64 * MIB}, "cpu": {"cpus": "0"}}));
    let cgroup = Cgroup::create(&path, Some(&r)).unwrap();
    let mut child = Child(Command::new("sleep").arg("30").spawn().unwrap());
    cgroup.add(child.pid()).unwrap();
    let controllers: Vec<PathBuf> =
        ["memory", "cpu", "cpuacct", "cpuset", "pids", "blkio", "freezer"].iter().map(|c| dir(c, &path)).collect();
    let again = Cgroup::open(&path).unwrap();
    // Killed but possibly not yet gone: rmdir sees EBUSY until it has.
    child.0.kill().unwrap();
    cgroup.remove().unwrap();
    for dir in &controllers {
        assert!(!dir.exists(), "{} is left behind", dir.display());
    }
    if let Layout::Hybrid { unified, .. } = detect().unwrap() {
        assert!(!unified.join(path.trim_start_matches('/')).exists());
    }
    child.0.wait().unwrap();
    // Removing what is already gone is fine.
    again.remove().unwrap();
    assert!(matches!(Cgroup::open(&path), Err(CgroupError::NotFound(_))));
}
