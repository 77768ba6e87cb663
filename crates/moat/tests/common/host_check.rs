//! The host's view of a hostile app under `moat do --stats`: while the run
//! lasts, every host process below it must be moat's own or a stub it traces.
//!
//! Included with `#[path]` by the tests that need it (it builds on `common`).
#![allow(dead_code)]

use std::collections::HashMap;
use std::fs;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::common::{moat_command, Output, Running};

/// The host name (comm) a probe gives itself with a native `prctl(PR_SET_NAME)`
/// if it ever gets out of the tracer; under moat that prctl is the sandbox's.
pub const ESCAPED_NAME: &str = "adv-escaped";

/// How long a process or thread may stay untraced before it counts as an
/// escape: a new stub, or a new stub thread, is parked untraced between its
/// clone and the Sentry's PTRACE_SEIZE, which takes microseconds. Escaping
/// probes keep their untraced processes alive for far longer than this.
const UNTRACED_GRACE: Duration = Duration::from_secs(2);

/// How often the host's process table is scanned during a run.
const SCAN_EVERY: Duration = Duration::from_millis(20);

/// A bound on the Sentry's peak resident memory for the adversarial probes.
/// An honest small program runs with a Sentry of about 25 MiB; the probes
/// make the Sentry touch at most a few tens of MiB of app memory through its
/// view of the memory file (the 16 MiB iovec buffer is the largest), so a
/// Sentry past 256 MiB has been made to allocate in proportion to what the
/// app asked for rather than to what it used.
pub const SENTRY_RSS_BOUND_KIB: u64 = 256 * 1024;

/// What a watched run left behind, and what the host saw while it lasted.
#[derive(Debug)]
pub struct Watched {
    /// What ran (for messages).
    pub what: String,
    pub output: Output,
    /// Problems seen on the host: escaped or untraced processes.
    pub escapes: Vec<String>,
    /// The time limit, if the run reached it (and was killed).
    pub timed_out: Option<Duration>,
}

impl Watched {
    /// The peak resident memory `moat do --stats` reported for the Sentry.
    pub fn sentry_max_rss_kib(&self) -> Option<u64> {
        let line = self.output.stderr.lines().rev().find(|l| l.starts_with("moat: stats: "))?;
        let field = line.split_whitespace().find_map(|f| f.strip_prefix("sentry_max_rss_kib="))?;
        field.parse().ok()
    }

    /// Everything about the run, for a failure message (a flood of output
    /// shortened to its ends).
    pub fn describe(&self) -> String {
        let escapes = if self.escapes.is_empty() {
            String::new()
        } else {
            format!("--- seen on the host ---\n{}\n", self.escapes.join("\n"))
        };
        let output = Output {
            stdout: shorten(&self.output.stdout),
            stderr: shorten(&self.output.stderr),
            status: self.output.status,
        };
        format!("{}\n{escapes}{}", self.what, output.describe())
    }

    /// The host-side checks every adversarial run must pass: it finished in
    /// time, nothing got out of the tracer, the Sentry neither panicked nor
    /// died (it reported its stats) and its peak memory stayed under
    /// `rss_bound_kib`.
    pub fn assert_contained(&self, rss_bound_kib: u64) {
        if let Some(limit) = self.timed_out {
            panic!(
                "the sandbox did not finish within {limit:?} (a hang: the Sentry is wedged or spinning); \
                 the test killed moat and everything below it\n{}",
                self.describe()
            );
        }
        assert!(self.escapes.is_empty(), "app code got out of the tracer\n{}", self.describe());
        let stderr = self.output.stderr.to_lowercase();
        assert!(
            !stderr.contains("panicked") && !stderr.contains("fatal"),
            "the Sentry panicked or failed\n{}",
            self.describe()
        );
        let rss = self
            .sentry_max_rss_kib()
            .unwrap_or_else(|| panic!("no `moat: stats:` line: the Sentry did not end normally\n{}", self.describe()));
        assert!(
            rss < rss_bound_kib,
            "the Sentry's peak resident memory was {rss} KiB ({} MiB), over the bound of {} MiB\n{}",
            rss / 1024,
            rss_bound_kib / 1024,
            self.describe()
        );
    }

    /// `assert_contained` with the default bound, then the probe's own exit
    /// status and output.
    pub fn assert_exact(&self, status: i32, stdout: &str) {
        self.assert_contained(SENTRY_RSS_BOUND_KIB);
        self.assert_output(status, stdout);
    }

    /// The probe's exit status and output are `status` and `stdout`.
    pub fn assert_output(&self, status: i32, stdout: &str) {
        assert_eq!(
            (self.output.status, self.output.stdout.as_str()),
            (status, stdout),
            "the probe did not end as Linux ends it\n{}",
            self.describe()
        );
    }
}

/// The longest a watched run may take: below the harness's own TIME_LIMIT,
/// so that collecting the output of a run killed at its limit stays inside it.
pub const WATCH_LIMIT: Duration = Duration::from_secs(45);

/// `text` with all but its first and last 40 lines left out.
fn shorten(text: &str) -> String {
    const KEEP: usize = 40;
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() <= 2 * KEEP {
        return text.to_owned();
    }
    format!(
        "{}\n... {} lines left out ...\n{}\n",
        lines[..KEEP].join("\n"),
        lines.len() - 2 * KEEP,
        lines[lines.len() - KEEP..].join("\n")
    )
}

/// Runs `moat do --stats OPTIONS -- ARGS...` (host root, unless OPTIONS say
/// otherwise) under watch, for at most `limit` (at most WATCH_LIMIT).
pub fn run_watched(options: &[&str], args: &[&str], limit: Duration) -> Watched {
    assert!(limit <= WATCH_LIMIT, "a watched run may take at most {WATCH_LIMIT:?}");
    let mut all = vec!["do", "--stats"];
    all.extend_from_slice(options);
    all.push("--");
    all.extend_from_slice(args);
    let what = format!("moat {}", all.join(" "));
    let running = Running::spawn(moat_command(&all), &what, false);
    watch(running, &what, limit)
}

/// Whether the suite runs on the systrap platform (MOAT_PLATFORM), whose
/// stubs are untraced.
pub fn systrap() -> bool {
    std::env::var("MOAT_PLATFORM").is_ok_and(|p| p == "systrap")
}

/// One process or thread of the host, as /proc shows it.
#[derive(Debug, Clone)]
struct HostTask {
    ppid: u32,
    start: u64,
    state: char,
    tgid: u32,
    tracer: u32,
    /// Seccomp filters in force (`Seccomp_filters:`).
    filters: u32,
    name: String,
}

fn read_task(dir: &str) -> Option<HostTask> {
    let stat = fs::read_to_string(format!("{dir}/stat")).ok()?;
    // The name in parentheses may hold anything; the fields after the last
    // ')' are state (3), ppid (4), ... starttime (22).
    let (_, after) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let ppid = fields.get(1)?.parse().ok()?;
    let start = fields.get(19)?.parse().ok()?;
    let status = fs::read_to_string(format!("{dir}/status")).ok()?;
    let field = |key: &str| status.lines().find_map(|l| l.strip_prefix(key)).map(|v| v.trim().to_owned());
    Some(HostTask {
        ppid,
        start,
        state,
        tgid: field("Tgid:")?.parse().ok()?,
        tracer: field("TracerPid:")?.parse().ok()?,
        filters: field("Seccomp_filters:").and_then(|v| v.parse().ok()).unwrap_or(0),
        name: field("Name:")?,
    })
}

fn numeric_entries(dir: &str) -> Vec<u32> {
    let Ok(entries) = fs::read_dir(dir) else { return Vec::new() };
    entries.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect()
}

fn cmdline(pid: u32) -> String {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    String::from_utf8_lossy(&raw).replace('\0', " ").trim_end().to_owned()
}

/// One scan of the host: every process below `top`.
#[derive(Debug, Default)]
struct Scan {
    /// pid -> the process (its leader thread).
    below: HashMap<u32, HostTask>,
}

impl Scan {
    fn take(top: u32) -> Scan {
        let all: HashMap<u32, HostTask> = numeric_entries("/proc")
            .into_iter()
            .filter_map(|pid| Some((pid, read_task(&format!("/proc/{pid}"))?)))
            .collect();
        let mut below = HashMap::new();
        let mut todo = vec![top];
        while let Some(parent) = todo.pop() {
            for (&pid, task) in all.iter().filter(|(_, t)| t.ppid == parent) {
                if below.insert(pid, task.clone()).is_none() {
                    todo.push(pid);
                }
            }
        }
        Scan { below }
    }

    fn children(&self, parent: u32) -> Vec<u32> {
        let mut c: Vec<u32> = self.below.iter().filter(|(_, t)| t.ppid == parent).map(|(&p, _)| p).collect();
        c.sort_by_key(|p| (self.below[p].start, *p));
        c
    }
}

/// What one scan found wrong, keyed by (pid or tid, start time) so that a
/// problem that persists can be told from a transient one.
#[derive(Debug, Default)]
struct Findings {
    /// Problems that are escapes as soon as they are seen.
    certain: Vec<String>,
    /// Untraced processes and threads (transient for a stub being set up).
    untraced: Vec<((u32, u64), String)>,
}

/// Judges one scan. The tree `moat do` (top) makes as root is: top -> the
/// Sentry (`moat do --in-pid-namespace`, pid 1 of its PID namespace) -> the
/// Gofers (`moat gofer ...`) and the source stub (untraced, the first
/// non-Gofer child) -> the stubs app code runs in, every thread of which must
/// be traced by a thread of the Sentry. Anything else is out of place.
fn judge(top: u32, scan: &Scan) -> Findings {
    let mut f = Findings::default();
    for (&pid, task) in &scan.below {
        for tid in numeric_entries(&format!("/proc/{pid}/task")) {
            let name = if tid == pid {
                Some(task.name.clone())
            } else {
                read_task(&format!("/proc/{pid}/task/{tid}")).map(|t| t.name)
            };
            if name.as_deref() == Some(ESCAPED_NAME) {
                f.certain.push(format!(
                    "host task {tid} (process {pid}) is named {ESCAPED_NAME:?}: the probe made a native prctl"
                ));
            }
        }
    }
    let Some(&sentry) = scan.children(top).first() else { return f };
    for other in scan.children(top).into_iter().skip(1) {
        f.untraced.push(((other, scan.below[&other].start), format!("process {other} is a second child of moat do")));
    }
    let mut source_stub = None;
    for child in scan.children(sentry) {
        let line = cmdline(child);
        if line.contains(" gofer ") {
            for stray in scan.children(child) {
                f.untraced.push(((stray, scan.below[&stray].start), format!("process {stray} runs below a Gofer")));
            }
        } else if source_stub.is_none() {
            source_stub = Some(child);
        } else {
            let start = scan.below[&child].start;
            f.untraced.push((
                (child, start),
                format!("process {child} ({:?}, cmdline {line:?}) is a child of the Sentry but neither a Gofer nor the source stub", scan.below[&child].name),
            ));
        }
    }
    let Some(source_stub) = source_stub else { return f };
    // Every process below the source stub is a stub: every thread of it is
    // traced by the Sentry (or is a zombie, which runs nothing).
    let mut todo = scan.children(source_stub);
    while let Some(stub) = todo.pop() {
        // Only the source stub forks stubs: a child of a stub was made by app
        // code running natively.
        for child in scan.children(stub) {
            f.untraced.push((
                (child, scan.below[&child].start),
                format!("process {child} ({:?}) is a child of stub {stub}, which never forks", scan.below[&child].name),
            ));
            todo.push(child);
        }
        for tid in numeric_entries(&format!("/proc/{stub}/task")) {
            let Some(t) = read_task(&format!("/proc/{stub}/task/{tid}")) else { continue };
            if t.state == 'Z' || t.state == 'X' {
                continue;
            }
            if systrap() {
                // Untraced by design: every thread runs under the stub's
                // filter, and app threads under the app threads' filter too
                // (which traps every app call to the Sentry). The syscall
                // thread (the stub's first) has the stub's filter alone.
                let needed = if tid == stub { 1 } else { 2 };
                if t.tracer != 0 || t.filters < needed {
                    let parent = scan.below[&stub].ppid;
                    f.untraced.push((
                        (tid, t.start),
                        format!(
                            "host task {tid} ({:?}) of process {stub} (parent {parent}) has {} seccomp filters \
                             (needs {needed}) and tracer {}",
                            t.name, t.filters, t.tracer
                        ),
                    ));
                }
                continue;
            }
            let tracer_tgid = (t.tracer != 0).then(|| read_task(&format!("/proc/{}", t.tracer)).map(|tr| tr.tgid));
            let problem = match tracer_tgid {
                None => Some("is not traced".to_owned()),
                Some(Some(tgid)) if tgid == sentry => None,
                Some(Some(tgid)) => Some(format!("is traced by {} of process {tgid}, not by the Sentry", t.tracer)),
                // The tracer vanished between two reads: judged on the next scan.
                Some(None) => None,
            };
            if let Some(problem) = problem {
                let parent = scan.below[&stub].ppid;
                f.untraced.push((
                    (tid, t.start),
                    format!("host task {tid} ({:?}) of process {stub} (parent {parent}) {problem}", t.name),
                ));
            }
        }
    }
    f
}

/// Kills `pid` and everything below it that a scan finds: the tests must
/// leave no process behind, whatever state the run got into.
fn kill_tree(top: u32) {
    let mut pids: Vec<u32> = Scan::take(top).below.into_keys().collect();
    pids.push(top);
    for pid in pids {
        // It may be gone already.
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
    }
}

/// Watches `running` until it exits (or `limit` passes: then kills it and
/// everything below it).
pub fn watch(mut running: Running, what: &str, limit: Duration) -> Watched {
    let top = running.pid();
    let deadline = Instant::now() + limit;
    let mut escapes: Vec<String> = Vec::new();
    // First sighting of each untraced task, by (tid, start time).
    let mut untraced_since: HashMap<(u32, u64), Instant> = HashMap::new();
    let mut timed_out = None;
    while !running.has_exited() {
        if Instant::now() >= deadline {
            timed_out = Some(limit);
            break;
        }
        let findings = judge(top, &Scan::take(top));
        for problem in findings.certain {
            if !escapes.contains(&problem) {
                escapes.push(problem);
            }
        }
        let now = Instant::now();
        for (key, problem) in findings.untraced {
            let first = *untraced_since.entry(key).or_insert(now);
            let problem = format!("{problem} (for at least {:?})", UNTRACED_GRACE);
            if now.duration_since(first) >= UNTRACED_GRACE && !escapes.contains(&problem) {
                escapes.push(problem);
            }
        }
        thread::sleep(SCAN_EVERY);
    }
    if timed_out.is_some() || !escapes.is_empty() {
        kill_tree(top);
    }
    Watched { what: what.to_owned(), output: running.finish(), escapes, timed_out }
}

/// Runs `args` natively (the oracle) with no stdin and the tests' clean
/// environment, bounded by timeout(1).
pub fn run_native(args: &[&str], limit: Duration) -> Output {
    let out = Command::new("timeout")
        .args(["-s", "KILL", &limit.as_secs().to_string()])
        .args(args)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("LC_ALL", "C")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?} natively: {e}"));
    let status = match (out.status.code(), std::os::unix::process::ExitStatusExt::signal(&out.status)) {
        (Some(code), _) => code,
        (None, Some(sig)) => 128 + sig,
        (None, None) => panic!("native run of {args:?} has no exit status"),
    };
    assert_ne!(status, 137, "the native run of {args:?} did not finish within {limit:?}");
    Output {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        status,
    }
}
