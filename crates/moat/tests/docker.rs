//! Docker drives moat: a dockerd of the test's own (its own data root, exec
//! root, socket and containerd) has moat registered as the runtime `moat`,
//! imports a busybox image, and runs containers on it the ways people use
//! Docker: exit codes, stdin, a tty, exec, stop, kill, memory and pids
//! limits, a read-only root, a bind-mounted volume, logs, stats and top,
//! and Docker's default bridge network, whose setup must reach the
//! container's network namespace and leave the host's as it was.
//!
//! The daemon's default bridge is one the test makes (`moatbrXXXX`, an
//! address in 198.18.0.0/15, reserved for benchmarks) and removes; dockerd
//! runs with `--iptables=false`, no forwarding and no masquerading, so it
//! changes no host firewall rule and nothing leaves the machine. The test
//! fails if the host's links, addresses, routes, firewall rules or
//! forwarding settings differ at its end from what they were at its start.
//!
//! One test does everything in order, so that the daemon it starts is
//! stopped (and its directories removed) when it ends, whatever happens in
//! between. Every check runs even when an earlier one failed; the test then
//! fails listing each failed check with docker's output and the lines moat
//! wrote to its `--log` file.

mod common;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{busybox, moat_binary, TempDir};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// The image the test imports and runs.
const IMAGE: &str = "moat-test-busybox";

/// Every container but check 14's runs on moat in an empty network namespace.
const ON_MOAT: &[&str] = &["--runtime=moat", "--network=none"];

/// The limit for one docker command. Honest runs take a second or two even
/// on a loaded machine; a hang is a bug and fails its check.
const COMMAND_LIMIT: Duration = Duration::from_secs(30);

/// After this much time the remaining checks are not run (and fail), so the
/// whole file stays well under five minutes however broken moat is.
const BUDGET: Duration = Duration::from_secs(180);

#[test]
fn docker_runs_containers_on_moat() {
    let started = Instant::now();
    let host_before = HostState::now();
    let daemon = Daemon::start();
    daemon.import_busybox();
    eprintln!("docker test: dockerd ready with image {IMAGE} after {:?}", started.elapsed());

    let mut checks = Checks { daemon: &daemon, started, failures: Vec::new() };
    checks.run("1 run: stdout and exit code", check_exit_code);
    checks.run("2 run -i: stdin", check_stdin);
    checks.run("3 run -t: a terminal", check_tty);
    let c1 = checks.run("4a run -d: a detached container c1 starts", check_detached);
    if c1 {
        checks.run("4b exec: output and exit code", check_exec);
        checks.run("12 stats: memory usage of a running container", check_stats);
        checks.run("13 top: processes of a running container", check_top);
        checks.run("5 stop: the TERM trap runs, exit code 0", check_stop);
    } else {
        checks.fail("4b exec", "not run: container c1 (check 4a) did not start");
        checks.fail("12 stats", "not run: container c1 (check 4a) did not start");
        checks.fail("13 top", "not run: container c1 (check 4a) did not start");
        checks.fail("5 stop", "not run: container c1 (check 4a) did not start");
    }
    checks.run("6 kill: exit code 137", check_kill);
    checks.run("7 --memory 64m: an app allocating past it is stopped", check_memory_limit);
    checks.run("8 --pids-limit 10: forks past it fail", check_pids_limit);
    checks.run("9 --read-only: writes fail with EROFS", check_read_only);
    checks.run("10 -v HOSTDIR:/data: read and write a host directory", check_volume);
    checks.run("11 logs: stdout and stderr of a finished container", check_logs);
    checks.run("14 the default bridge network: set up in the container's namespace", check_bridge_network);

    let mut failures = std::mem::take(&mut checks.failures);
    eprintln!("docker test: all checks done after {:?}", started.elapsed());
    drop(daemon);
    let host_after = HostState::now();
    if host_after != host_before {
        failures
            .push(format!("the host's network is not as the test found it:\n{}", host_before.difference(&host_after)));
    }
    if !failures.is_empty() {
        panic!("{} docker check(s) failed:\n\n{}", failures.len(), failures.join("\n\n"));
    }
}

// ---------------------------------------------------------------------------
// The checks. Each returns Ok or what went wrong; `Err` texts include
// docker's output, and the runner adds moat's log lines.

/// Check 1: `docker run --rm IMG sh -c 'echo hi; exit 3'`.
fn check_exit_code(d: &Daemon) -> Result<(), String> {
    let out = d.docker(&run_args(&["--rm"], &["sh", "-c", "echo hi; exit 3"]));
    expect(out.stdout.trim() == "hi" && out.status == 3, "stdout \"hi\" and exit code 3", &out)
}

/// Check 2: `echo piped | docker run --rm -i IMG cat`.
fn check_stdin(d: &Daemon) -> Result<(), String> {
    let out = d.docker_with_stdin(&run_args(&["--rm", "-i"], &["cat"]), b"piped\n");
    expect(out.stdout.trim() == "piped" && out.status == 0, "stdout \"piped\", exit code 0", &out)
}

/// Check 3: `docker run --rm -t` under `script`, which gives the CLI a terminal.
fn check_tty(d: &Daemon) -> Result<(), String> {
    let inner = format!(
        "{} run --rm -t {} {IMAGE} sh -c 'tty; [ -t 0 ] && echo is-a-tty'",
        d.docker_prefix(),
        ON_MOAT.join(" ")
    );
    let mut command = Command::new("timeout");
    command.args(["-k", "5", &secs(COMMAND_LIMIT), "script", "-eqc", &inner, "/dev/null"]);
    let out = d.output(command, None, &format!("script -eqc \"{inner}\" /dev/null"));
    expect(out.stdout.contains("is-a-tty"), "output containing \"is-a-tty\"", &out)
}

/// Check 4a: A detached container `c1` that traps TERM; checks 4b, 12, 13 and 5
/// use it.
fn check_detached(d: &Daemon) -> Result<(), String> {
    let script = r#"trap "echo got-term; exit 0" TERM; while :; do sleep 1; done"#;
    let out = d.docker(&run_args(&["-d", "--name", "c1"], &["sh", "-c", script]));
    if out.status != 0 {
        return Err(format!("container c1 did not start\n{}", out.describe()));
    }
    d.note_container("c1");
    let running = d.inspect("c1", "{{.State.Running}}");
    expect(running == "true", &format!("c1 running, got {running:?}"), &out)
}

/// Check 4b: `docker exec` in c1.
fn check_exec(d: &Daemon) -> Result<(), String> {
    d.note_container("c1");
    let exec = d.docker(&["exec", "c1", "sh", "-c", "echo exec-ok; exit 4"]);
    expect(exec.stdout.trim() == "exec-ok" && exec.status == 4, "stdout \"exec-ok\" and exit code 4", &exec)
}

/// Check 12: `docker stats` reads c1's cgroup: the usage is not zero.
fn check_stats(d: &Daemon) -> Result<(), String> {
    d.note_container("c1");
    let out = d.docker(&["stats", "--no-stream", "--format", "{{.MemUsage}}", "c1"]);
    // "15.01MiB / 23.54GiB"
    let used = out.stdout.split('/').next().unwrap_or("").trim();
    let number: String = used.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
    let value = number.parse::<f64>().unwrap_or(0.0);
    expect(out.status == 0 && value > 0.0, "a non-zero memory usage such as \"15MiB / 23GiB\"", &out)
}

/// Check 13: `docker top` lists c1's processes by their host pids.
fn check_top(d: &Daemon) -> Result<(), String> {
    d.note_container("c1");
    let out = d.docker(&["top", "c1"]);
    let mut pids = Vec::new();
    let mut lines = out.stdout.lines();
    let header = lines.next().unwrap_or("");
    let pid_column = header.split_whitespace().position(|h| h == "PID");
    for line in lines.filter(|l| !l.trim().is_empty()) {
        if let Some(pid) = pid_column.and_then(|i| line.split_whitespace().nth(i)) {
            pids.push(pid.parse::<i32>().unwrap_or(-1));
        }
    }
    let host_pids = !pids.is_empty() && pids.iter().all(|&p| p > 1 && Path::new(&format!("/proc/{p}")).exists());
    expect(out.status == 0 && host_pids, "at least one process, every PID a live host pid other than 1", &out)
}

/// Check 5: `docker stop` sends TERM; c1's trap prints and exits 0.
fn check_stop(d: &Daemon) -> Result<(), String> {
    d.note_container("c1");
    let stop = d.docker_limited(&["stop", "-t", "20"], "c1", Duration::from_secs(45));
    if stop.status != 0 {
        return Err(format!("docker stop failed\n{}", stop.describe()));
    }
    let logs = d.docker(&["logs", "c1"]);
    let code = d.inspect("c1", "{{.State.ExitCode}} {{.State.Running}}");
    let ok = logs.stdout.contains("got-term") && code == "0 false";
    let result = if ok {
        Ok(())
    } else {
        Err(format!("want logs with \"got-term\" and state \"0 false\", got state {code:?}\nlogs: {}", logs.describe()))
    };
    d.remove("c1", result)
}

/// Check 6: `docker kill` sends KILL: exit code 137.
fn check_kill(d: &Daemon) -> Result<(), String> {
    let out = d.docker(&run_args(&["-d", "--name", "c2"], &["sh", "-c", "while :; do sleep 1; done"]));
    if out.status != 0 {
        return Err(format!("container c2 did not start\n{}", out.describe()));
    }
    d.note_container("c2");
    let killed = d.docker(&["kill", "c2"]);
    let stopped = d.wait_exited("c2", Duration::from_secs(20));
    let state = d.inspect("c2", "{{.State.ExitCode}} {{.State.Running}}");
    let result = if killed.status == 0 && stopped && state == "137 false" {
        Ok(())
    } else {
        Err(format!("want state \"137 false\" after docker kill, got {state:?}\ndocker kill: {}", killed.describe()))
    };
    d.remove("c2", result)
}

/// Check 7: With `--memory 64m`, a shell doubling a string forever must be
/// stopped: OOM-killed (137, OOMKilled) or told ENOMEM.
fn check_memory_limit(d: &Daemon) -> Result<(), String> {
    let script = r#"x=aaaaaaaaaaaaaaaa; while :; do x="$x$x"; done"#;
    let out = d.docker(&run_args(&["-d", "--name", "m1", "--memory", "64m"], &["sh", "-c", script]));
    if out.status != 0 {
        return Err(format!("container m1 did not start\n{}", out.describe()));
    }
    d.note_container("m1");
    let exited = d.wait_exited("m1", Duration::from_secs(60));
    let state = d.inspect("m1", "{{.State.ExitCode}} {{.State.OOMKilled}}");
    let logs = d.docker(&["logs", "m1"]);
    let all = format!("{}{}", logs.stdout, logs.stderr).to_lowercase();
    let enomem = all.contains("out of memory") || all.contains("cannot allocate memory") || all.contains("enomem");
    let result = if exited && (state.starts_with("137 ") || state.ends_with(" true") || enomem) {
        Ok(())
    } else {
        Err(format!(
            "want exit code 137, OOMKilled or an out-of-memory message; exited: {exited}, \
             exit code and OOMKilled: {state:?}\nlogs: {}",
            logs.describe()
        ))
    };
    d.remove("m1", result)
}

/// Check 8: With `--pids-limit 10`, 40 background sleeps cannot all start: the
/// shell reports failed forks and the container ends by itself.
fn check_pids_limit(d: &Daemon) -> Result<(), String> {
    let script = "for i in $(seq 1 40); do sleep 5 & done; wait; echo all-waited";
    let out = d.docker(&run_args(&["-d", "--name", "p1", "--pids-limit", "10"], &["sh", "-c", script]));
    if out.status != 0 {
        return Err(format!("container p1 did not start\n{}", out.describe()));
    }
    d.note_container("p1");
    let exited = d.wait_exited("p1", Duration::from_secs(30));
    let state = d.inspect("p1", "{{.State.ExitCode}} {{.State.Running}}");
    let logs = d.docker(&["logs", "p1"]);
    let all = format!("{}{}", logs.stdout, logs.stderr);
    // busybox sh: "sh: can't fork: Resource temporarily unavailable".
    let fork_failed = all
        .lines()
        .any(|l| l.starts_with("sh:") && (l.contains("can't fork") || l.contains("Resource temporarily unavailable")));
    let result = if exited && fork_failed && !all.contains("panicked") {
        Ok(())
    } else {
        Err(format!(
            "want the shell to report \"can't fork\" and the container to end within 30 s; \
             ended: {exited}, exit code and running: {state:?}\nlogs: {}",
            logs.describe()
        ))
    };
    d.remove("p1", result)
}

/// Check 9: `--read-only`: writing to / fails with EROFS.
fn check_read_only(d: &Daemon) -> Result<(), String> {
    let out = d.docker(&run_args(&["--rm", "--read-only"], &["sh", "-c", "echo x > /f"]));
    expect(
        out.status != 0 && out.stderr.contains("Read-only file system"),
        "a failure with \"Read-only file system\"",
        &out,
    )
}

/// Check 10: `-v HOSTDIR:/data`: the container reads a host file and writes one
/// the host sees.
fn check_volume(d: &Daemon) -> Result<(), String> {
    let host = d.dir.path().join("volume");
    fs::create_dir_all(&host).map_err(|e| format!("cannot make {}: {e}", host.display()))?;
    fs::write(host.join("in.txt"), "from-host\n").map_err(|e| format!("cannot write in.txt: {e}"))?;
    let volume = format!("{}:/data", host.display());
    let script = "cat /data/in.txt && echo from-container > /data/out.txt";
    let out = d.docker(&run_args(&["--rm", "-v", &volume], &["sh", "-c", script]));
    let written = fs::read_to_string(host.join("out.txt")).unwrap_or_else(|e| format!("(no out.txt on the host: {e})"));
    if out.stdout.trim() == "from-host" && out.status == 0 && written == "from-container\n" {
        Ok(())
    } else {
        Err(format!(
            "want stdout \"from-host\", exit code 0 and the host's out.txt \"from-container\"; \
             the host's out.txt: {written:?}\n{}",
            out.describe()
        ))
    }
}

/// Check 11: `docker logs` of a container that has finished.
fn check_logs(d: &Daemon) -> Result<(), String> {
    let out = d.docker(&run_args(&["--name", "l1"], &["sh", "-c", "echo log-out; echo log-err >&2"]));
    if out.status != 0 {
        return Err(format!("container l1 failed\n{}", out.describe()));
    }
    d.note_container("l1");
    let logs = d.docker(&["logs", "l1"]);
    let result = if logs.stdout.trim() == "log-out" && logs.stderr.trim() == "log-err" {
        Ok(())
    } else {
        Err(format!("want stdout \"log-out\" and stderr \"log-err\"\n{}", logs.describe()))
    };
    d.remove("l1", result)
}

/// Check 14: Docker's default bridge network. Docker's network hook (a
/// prestart hook given the pid moat reports) moves the container's end of a
/// veth pair into `/proc/PID/ns/net`, renames it eth0 and gives it an
/// address and routes: that pid must be in the container's network
/// namespace, so that all of it lands there and the host sees only the
/// veth's other end, on the bridge, while the container runs.
fn check_bridge_network(d: &Daemon) -> Result<(), String> {
    let before = HostNetwork::now();
    let out = d.docker(&["run", "--rm", "--runtime=moat", IMAGE, "echo", "on-the-bridge"]);
    if out.status != 0 || out.stdout.trim() != "on-the-bridge" {
        return Err(format!("want stdout \"on-the-bridge\" and exit code 0\n{}", out.describe()));
    }
    let out = d.docker(&["run", "-d", "--runtime=moat", "--name", "n1", IMAGE, "sleep", "1000"]);
    if out.status != 0 {
        return Err(format!("container n1 did not start\n{}", out.describe()));
    }
    d.note_container("n1");
    let running = bridged_container(d, "n1", &before);
    d.remove("n1", running)?;
    // Docker may delete the veth's host end just after `rm` returns.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let after = HostNetwork::now();
        if after == before {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("the host's network changed after n1 was removed:\n{}", before.difference(&after)));
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// While `name` runs: its eth0, with the address Docker gave it, is in the
/// network namespace of its pid, which is not the host's; the host has
/// only the veth's other end, on the bridge, more than `before`.
fn bridged_container(d: &Daemon, name: &str, before: &HostNetwork) -> Result<(), String> {
    let pid = d.inspect(name, "{{.State.Pid}}");
    let address = d.inspect(name, "{{.NetworkSettings.IPAddress}}");
    let netns = format!("/proc/{pid}/ns/net");
    let theirs = fs::read_link(&netns).map_err(|e| format!("{netns}: {e}"))?;
    let ours = fs::read_link("/proc/self/ns/net").map_err(|e| format!("/proc/self/ns/net: {e}"))?;
    if theirs == ours {
        return Err(format!("{name}'s pid {pid} is in the host's network namespace {ours:?}"));
    }
    let inside = Command::new("nsenter")
        .arg(format!("--net={netns}"))
        .args(["ip", "-o", "-4", "addr", "show", "dev", "eth0"])
        .output()
        .map_err(|e| format!("cannot run nsenter: {e}"))?;
    let inside_text = String::from_utf8_lossy(&inside.stdout);
    if !inside.status.success() || address.is_empty() || !inside_text.contains(&format!(" {address}/")) {
        return Err(format!(
            "want eth0 with {name}'s address {address:?} in {netns}; `ip addr show dev eth0` there: {}{}",
            inside_text.trim(),
            String::from_utf8_lossy(&inside.stderr).trim()
        ));
    }
    let during = HostNetwork::now().without_ports_of(&d.bridge.name);
    if during != *before {
        return Err(format!(
            "while {name} runs the host's network differs by more than a veth on {}:\n{}",
            d.bridge.name,
            before.difference(&during)
        ));
    }
    Ok(())
}

/// `run [options] --runtime=moat --network=none IMAGE command...`.
fn run_args<'a>(options: &[&'a str], command: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["run"];
    args.extend_from_slice(options);
    args.extend_from_slice(ON_MOAT);
    args.push(IMAGE);
    args.extend_from_slice(command);
    args
}

fn expect(ok: bool, want: &str, out: &Out) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(format!("want {want}\n{}", out.describe()))
    }
}

fn secs(d: Duration) -> String {
    d.as_secs().to_string()
}

// ---------------------------------------------------------------------------
// Running the checks.

struct Checks<'a> {
    daemon: &'a Daemon,
    started: Instant,
    failures: Vec<String>,
}

impl Checks<'_> {
    /// Runs one check; returns whether it passed.
    fn run(&mut self, name: &str, check: fn(&Daemon) -> Result<(), String>) -> bool {
        if self.started.elapsed() > BUDGET {
            self.fail(name, &format!("not run: the file's time budget of {BUDGET:?} is spent"));
            return false;
        }
        let d = self.daemon;
        d.containers.lock().unwrap_or_else(|e| e.into_inner()).clear();
        let log_mark = d.dockerd_log_len();
        let t = Instant::now();
        let result = check(d);
        match result {
            Ok(()) => {
                eprintln!("docker test: check {name}: ok ({:?})", t.elapsed());
                true
            }
            Err(message) => {
                let mut text = message;
                text.push_str(&d.diagnostics(log_mark));
                self.fail(name, &text);
                false
            }
        }
    }

    fn fail(&mut self, name: &str, message: &str) {
        let text = format!("check {name}: FAILED\n{}", message.trim_end());
        eprintln!("docker test: {text}\n");
        self.failures.push(text);
    }
}

// ---------------------------------------------------------------------------
// The daemon.

/// What a finished command left behind.
struct Out {
    command: String,
    status: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn describe(&self) -> String {
        let timed_out = if self.status == 124 || self.status == 137 { " (124/137: maybe timed out)" } else { "" };
        format!(
            "command: {}\nexit status: {}{timed_out}\nstdout: {}\nstderr: {}",
            self.command,
            self.status,
            self.stdout.trim_end(),
            self.stderr.trim_end()
        )
    }
}

/// A dockerd of the test's own with moat registered, stopped on drop.
struct Daemon {
    /// Everything but the exec root: data root, config, socket, logs.
    dir: TempDir,
    /// dockerd's exec root: short, since moat's control socket ends up at
    /// `<exec root>/runtime-runc/moby/<64 hex id>/control.sock` and a unix
    /// socket path has at most 107 bytes.
    exec_root: PathBuf,
    socket: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    /// The containers the current check made, for their moat logs.
    containers: std::sync::Mutex<Vec<String>>,
    /// dockerd's default bridge; dropped (removed) after dockerd stops.
    bridge: Bridge,
}

impl Daemon {
    fn start() -> Daemon {
        let dockerd = find_program("dockerd").unwrap_or_else(|| {
            panic!(
                "fixture: dockerd is missing. This test runs containers on moat through Docker: \
                 install Debian's docker.io (`apt-get install docker.io`; .ci/run does)"
            )
        });
        assert!(
            find_program("docker").is_some(),
            "fixture: the docker CLI is missing: install Debian's docker.io (`apt-get install docker.io`)"
        );
        let dir = TempDir::new("docker");
        let exec_root = short_dir();
        let socket = dir.path().join("docker.sock");
        let log = dir.path().join("dockerd.log");
        fs::create_dir(dir.path().join("cli")).expect("fixture: make the docker CLI's config dir");
        let config = serde_json::json!({ "runtimes": { "moat": { "path": moat_binary() } } });
        fs::write(dir.path().join("daemon.json"), config.to_string()).expect("fixture: write daemon.json");
        let bridge = Bridge::create();
        let mut daemon =
            Daemon { dir, exec_root, socket, log, child: None, containers: std::sync::Mutex::new(Vec::new()), bridge };
        // overlay2 works on ext4; vfs works everywhere.
        for driver in ["overlay2", "vfs"] {
            match daemon.spawn(&dockerd, driver) {
                Ok(()) => return daemon,
                Err(e) => {
                    eprintln!("docker test: dockerd with storage driver {driver} failed: {e}");
                    daemon.stop();
                }
            }
        }
        panic!("fixture: dockerd did not start with overlay2 or vfs; its log:\n{}", daemon.log_tail(40));
    }

    /// Starts dockerd and waits until `docker info` answers.
    fn spawn(&mut self, dockerd: &Path, driver: &str) -> Result<(), String> {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| format!("cannot open {}: {e}", self.log.display()))?;
        let d = self.dir.path();
        let mut command = Command::new(dockerd);
        command
            .arg("--config-file")
            .arg(d.join("daemon.json"))
            .arg("--data-root")
            .arg(d.join(format!("data-{driver}")))
            .arg("--exec-root")
            .arg(&self.exec_root)
            .arg("--pidfile")
            .arg(d.join("dockerd.pid"))
            .arg("-H")
            .arg(format!("unix://{}", self.socket.display()))
            .args(["--iptables=false", "--ip6tables=false", "--ip-forward=false", "--ip-masq=false"])
            .arg(format!("--bridge={}", self.bridge.name))
            .args(["--storage-driver", driver, "--exec-opt", "native.cgroupdriver=cgroupfs"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log);
        // dockerd gets SIGTERM should this test die without stopping it.
        host::sys::die_with_parent(&mut command, Signal::SIGTERM as i32);
        let child = command.spawn().map_err(|e| format!("cannot run {}: {e}", dockerd.display()))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                return Err(format!("dockerd exited ({status}); its log:\n{}", self.log_tail(20)));
            }
            let info = self.docker(&["info", "--format", "{{.Driver}}"]);
            if info.status == 0 && info.stdout.trim() == driver {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("docker info did not answer in 60 s: {}\n{}", info.describe(), self.log_tail(20)));
            }
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// Builds a busybox rootfs from the host's static busybox and imports
    /// it as IMAGE.
    fn import_busybox(&self) {
        let rootfs = self.dir.path().join("rootfs");
        for sub in ["bin", "etc", "proc", "sys", "dev", "tmp", "root"] {
            fs::create_dir_all(rootfs.join(sub)).expect("fixture: make the image's rootfs");
        }
        fs::copy(busybox(), rootfs.join("bin/busybox")).expect("fixture: copy busybox into the image");
        let install = Command::new("chroot")
            .arg(&rootfs)
            .args(["/bin/busybox", "--install", "-s", "/bin"])
            .output()
            .expect("fixture: run chroot");
        assert!(install.status.success(), "fixture: busybox --install -s failed: {install:?}");
        fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").expect("fixture: write passwd");
        fs::write(rootfs.join("etc/group"), "root:x:0:\n").expect("fixture: write group");
        let chmod = Command::new("chmod").arg("1777").arg(rootfs.join("tmp")).status().expect("fixture: chmod");
        assert!(chmod.success(), "fixture: chmod 1777 tmp failed");
        let tar = self.dir.path().join("busybox-rootfs.tar");
        let status = Command::new("tar").arg("-C").arg(&rootfs).arg("-cf").arg(&tar).arg(".").status();
        assert!(status.map(|s| s.success()).unwrap_or(false), "fixture: tar of the busybox rootfs failed");
        let tar = tar.to_str().expect("utf-8 path").to_owned();
        let out = self.docker(&["import", "-c", r#"CMD ["/bin/sh"]"#, "-c", "ENV PATH=/bin", &tar, IMAGE]);
        assert!(out.status == 0, "fixture: docker import of the busybox image failed:\n{}", out.describe());
    }

    /// `docker -H unix://SOCKET`, for a shell command line.
    fn docker_prefix(&self) -> String {
        format!("docker -H unix://{}", self.socket.display())
    }

    fn docker_command(&self, limit: Duration, args: &[&str]) -> Command {
        let mut command = Command::new("timeout");
        command
            .args(["-k", "5", &secs(limit), "docker", "-H"])
            .arg(format!("unix://{}", self.socket.display()))
            .args(args)
            .env("DOCKER_CONFIG", self.dir.path().join("cli"));
        command
    }

    fn docker(&self, args: &[&str]) -> Out {
        self.run_docker(args, None, COMMAND_LIMIT)
    }

    fn docker_with_stdin(&self, args: &[&str], stdin: &[u8]) -> Out {
        self.run_docker(args, Some(stdin), COMMAND_LIMIT)
    }

    /// `docker ARGS NAME` with its own time limit.
    fn docker_limited(&self, args: &[&str], name: &str, limit: Duration) -> Out {
        let mut all = args.to_vec();
        all.push(name);
        self.run_docker(&all, None, limit)
    }

    fn run_docker(&self, args: &[&str], stdin: Option<&[u8]>, limit: Duration) -> Out {
        let shown = format!("{} {}", self.docker_prefix(), shell_words(args));
        self.output(self.docker_command(limit, args), stdin, &shown)
    }

    fn output(&self, mut command: Command, stdin: Option<&[u8]>, shown: &str) -> Out {
        command.env("DOCKER_CONFIG", self.dir.path().join("cli"));
        command.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) => {
                return Out { command: shown.to_owned(), status: -1, stdout: String::new(), stderr: e.to_string() }
            }
        };
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            let _ = pipe.write_all(input);
        }
        let out = child.wait_with_output().expect("wait for a command");
        Out {
            command: shown.to_owned(),
            status: out.status.code().unwrap_or(128),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `docker inspect -f FORMAT NAME`, trimmed (or the error).
    fn inspect(&self, name: &str, format: &str) -> String {
        let out = self.docker(&["inspect", "-f", format, name]);
        if out.status == 0 {
            out.stdout.trim().to_owned()
        } else {
            format!("(inspect failed: {})", out.stderr.trim())
        }
    }

    /// Waits until the container is no longer running.
    fn wait_exited(&self, name: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if self.inspect(name, "{{.State.Running}}") == "false" {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(250));
        }
    }

    /// Remembers a container of the current check, for its moat log.
    fn note_container(&self, name: &str) {
        let id = self.inspect(name, "{{.Id}}");
        self.containers.lock().unwrap_or_else(|e| e.into_inner()).push(format!("{name} {id}"));
    }

    /// `docker rm -f NAME`, after saving moat's log should `result` be a
    /// failure (the log goes with the container).
    fn remove(&self, name: &str, result: Result<(), String>) -> Result<(), String> {
        let result = result.map_err(|e| format!("{e}{}", self.moat_logs()));
        self.containers.lock().unwrap_or_else(|e| e.into_inner()).clear();
        let out = self.docker(&["rm", "-f", name]);
        match (result, out.status) {
            (Err(e), _) => Err(e),
            (Ok(()), 0) => Ok(()),
            (Ok(()), _) => Err(format!("docker rm -f {name} failed\n{}", out.describe())),
        }
    }

    /// The last lines of moat's `--log` of the current check's containers.
    fn moat_logs(&self) -> String {
        let mut text = String::new();
        for entry in self.containers.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let (name, id) = entry.split_once(' ').unwrap_or((entry, ""));
            let path =
                self.exec_root.join("containerd/daemon/io.containerd.runtime.v2.task/moby").join(id).join("log.json");
            match fs::read_to_string(&path) {
                Ok(log) => {
                    let lines: Vec<&str> = log.lines().collect();
                    let tail = lines[lines.len().saturating_sub(15)..].join("\n");
                    text.push_str(&format!("\nmoat's log of {name} ({}):\n{tail}", path.display()));
                }
                Err(e) => text.push_str(&format!("\nmoat's log of {name}: cannot read {}: {e}", path.display())),
            }
        }
        text
    }

    /// moat's logs and dockerd's errors since `log_mark`, for a failure.
    fn diagnostics(&self, log_mark: u64) -> String {
        let mut text = self.moat_logs();
        let log = fs::read(&self.log).unwrap_or_default();
        let new = String::from_utf8_lossy(log.get(log_mark as usize..).unwrap_or_default()).into_owned();
        let errors: Vec<&str> =
            new.lines().filter(|l| l.contains("level=error") || l.contains("level=warning")).collect();
        if !errors.is_empty() {
            let tail = errors[errors.len().saturating_sub(8)..].join("\n");
            text.push_str(&format!("\ndockerd's errors:\n{tail}"));
        }
        text
    }

    fn dockerd_log_len(&self) -> u64 {
        fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0)
    }

    fn log_tail(&self, n: usize) -> String {
        let log = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Removes every container, then stops dockerd: SIGTERM, then SIGKILL
    /// after 20 s; then its containerd, should it outlive it.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        if child.try_wait().ok().flatten().is_none() {
            let all = self.run_docker(&["ps", "-aq"], None, Duration::from_secs(15));
            let ids: Vec<&str> = all.stdout.split_whitespace().collect();
            if !ids.is_empty() {
                let mut args = vec!["rm", "-f"];
                args.extend(ids);
                let _ = self.run_docker(&args, None, Duration::from_secs(30));
            }
        }
        let pid = Pid::from_raw(child.id() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        while child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                eprintln!("docker test: dockerd ignored SIGTERM for 20 s; killing it");
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            thread::sleep(Duration::from_millis(100));
        }
        let containerd = self.exec_root.join("containerd/containerd.pid");
        if let Some(pid) = fs::read_to_string(&containerd).ok().and_then(|s| s.trim().parse::<i32>().ok()) {
            let pid = Pid::from_raw(pid);
            if kill(pid, None).is_ok() && is_ours(pid.as_raw(), &self.exec_root) {
                eprintln!("docker test: dockerd's containerd {pid} outlived it; stopping it");
                let _ = kill(pid, Signal::SIGTERM);
                thread::sleep(Duration::from_secs(2));
                let _ = kill(pid, Signal::SIGKILL);
            }
        }
    }

    /// Unmounts what dockerd left mounted below its directories (the
    /// netns/default bind, overlay2's private bind).
    fn unmount_leftovers(&self) {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let roots = [self.dir.path().to_path_buf(), self.exec_root.clone()];
        let mut points: Vec<String> = mountinfo
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|p| roots.iter().any(|r| Path::new(p).starts_with(r)))
            .map(str::to_owned)
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for point in points {
            let _ = Command::new("umount").args(["-l", &point]).status();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
        for pid in leftover_processes(&self.exec_root) {
            eprintln!("docker test: warning: process {pid} of this test's dockerd outlived it; killing it");
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        self.unmount_leftovers();
        // Like TempDir: never leave the exec root's file system.
        let _ = Command::new("rm").args(["-rf", "--one-file-system"]).arg(&self.exec_root).status();
    }
}

/// A fresh directory `/tmp/mXXXX` (short: see `Daemon::exec_root`).
fn short_dir() -> PathBuf {
    let seed = std::process::id();
    for n in 0..1000u32 {
        let path = PathBuf::from(format!("/tmp/m{:04x}", (seed.wrapping_add(n.wrapping_mul(7919))) & 0xffff));
        if fs::create_dir(&path).is_ok() {
            return path;
        }
    }
    panic!("fixture: cannot make a short exec root /tmp/mXXXX");
}

/// Whether `pid`'s command line names `dir` (a process of this test's
/// dockerd: its containerd, shims and sandboxes all name the exec root).
fn is_ours(pid: i32, dir: &Path) -> bool {
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let mut needle = dir.as_os_str().as_encoded_bytes().to_vec();
    needle.push(b'/');
    cmdline.windows(needle.len()).any(|w| w == needle.as_slice())
}

fn leftover_processes(dir: &Path) -> Vec<i32> {
    let me = std::process::id() as i32;
    fs::read_dir("/proc")
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
                .filter(|&pid| pid != me && is_ours(pid, dir))
                .collect()
        })
        .unwrap_or_default()
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin".into());
    std::env::split_paths(&path).chain(["/usr/sbin".into(), "/sbin".into()]).map(|d| d.join(name)).find(|p| p.is_file())
}

/// Arguments as a shell would need them, for failure messages.
fn shell_words(args: &[&str]) -> String {
    args.iter()
        .map(|a| {
            if !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,@{}".contains(c)) {
                (*a).to_owned()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

// ---------------------------------------------------------------------------
// The host's network, before and after.

/// dockerd's default bridge: made by the test with an address of a /24 in
/// 198.18.0.0/15 that no host route covers, and deleted when dropped.
struct Bridge {
    name: String,
}

impl Bridge {
    fn create() -> Bridge {
        let seed = std::process::id();
        let taken = HostNetwork::now();
        let free = (0..256u32).map(|n| (seed.wrapping_add(n) & 0xffff, (seed.wrapping_add(n) & 0xff) as u8)).find(
            |(tag, subnet)| {
                let name = format!("moatbr{tag:04x}");
                !taken.links.iter().any(|l| l.split_whitespace().nth(1) == Some(name.as_str()))
                    && !taken
                        .routes
                        .iter()
                        .any(|r| r.contains(&format!(" 198.18.{subnet}.")) || r.contains(" 198.18.0.0/15"))
            },
        );
        let (tag, subnet) = free.expect("fixture: no free bridge name and 198.18.N.0/24 subnet for dockerd");
        let bridge = Bridge { name: format!("moatbr{tag:04x}") };
        // A MAC of its own (locally administered): else the bridge takes
        // its lowest port's, and changes with the veths Docker plugs in.
        let mac = format!("02:6d:6f:61:{:02x}:{:02x}", tag >> 8, tag & 0xff);
        ip(&["link", "add", &bridge.name, "address", &mac, "type", "bridge"]);
        // Without IPv6 the bridge gets no link-local address of its own when
        // a port comes up, so it looks the same before and after.
        let _ = fs::write(format!("/proc/sys/net/ipv6/conf/{}/disable_ipv6", bridge.name), "1");
        ip(&["addr", "add", &format!("198.18.{subnet}.1/24"), "dev", &bridge.name]);
        bridge
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.name]).status();
    }
}

/// Runs `ip ARGS`, panicking (a fixture failure) if it fails.
fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("fixture: run ip");
    assert!(out.status.success(), "fixture: ip {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
}

/// `ip -j ARGS` as JSON objects.
fn ip_json(args: &[&str]) -> Vec<serde_json::Value> {
    let out = Command::new("ip").arg("-j").args(args).output().expect("run ip -j");
    serde_json::from_slice(&out.stdout).unwrap_or_default()
}

/// The host's links, addresses and routes, each one line of the fields that
/// say what it is (not counters or carrier state).
#[derive(Debug, PartialEq, Eq)]
struct HostNetwork {
    /// `IFINDEX NAME MAC master BRIDGE`.
    links: std::collections::BTreeSet<String>,
    /// `NAME FAMILY ADDRESS/PREFIX`.
    addresses: std::collections::BTreeSet<String>,
    /// `FAMILY table TABLE TYPE DST via GATEWAY dev NAME`.
    routes: std::collections::BTreeSet<String>,
}

impl HostNetwork {
    fn now() -> HostNetwork {
        let text = |v: &serde_json::Value, key: &str| v[key].as_str().unwrap_or("-").to_owned();
        let links = ip_json(&["link", "show"])
            .iter()
            .map(|l| {
                format!("{} {} {} master {}", l["ifindex"], text(l, "ifname"), text(l, "address"), text(l, "master"))
            })
            .collect();
        let mut addresses = std::collections::BTreeSet::new();
        for link in ip_json(&["addr", "show"]) {
            for a in link["addr_info"].as_array().into_iter().flatten() {
                addresses.insert(format!(
                    "{} {} {}/{}",
                    text(&link, "ifname"),
                    text(a, "family"),
                    text(a, "local"),
                    a["prefixlen"]
                ));
            }
        }
        let mut routes = std::collections::BTreeSet::new();
        for family in ["-4", "-6"] {
            for r in ip_json(&[family, "route", "show", "table", "all"]) {
                routes.insert(format!(
                    "{family} table {} {} {} via {} dev {}",
                    text(&r, "table"),
                    text(&r, "type"),
                    text(&r, "dst"),
                    text(&r, "gateway"),
                    text(&r, "dev")
                ));
            }
        }
        HostNetwork { links, addresses, routes }
    }

    /// Without the links whose master is `bridge` (veth ends Docker plugs
    /// into it), nor their addresses and routes.
    fn without_ports_of(mut self, bridge: &str) -> HostNetwork {
        let ports: Vec<String> = self
            .links
            .iter()
            .filter(|l| l.ends_with(&format!(" master {bridge}")))
            .filter_map(|l| l.split_whitespace().nth(1).map(str::to_owned))
            .collect();
        self.links.retain(|l| !ports.iter().any(|p| l.split_whitespace().nth(1) == Some(p)));
        self.addresses.retain(|a| !ports.iter().any(|p| a.split_whitespace().next() == Some(p)));
        self.routes.retain(|r| !ports.iter().any(|p| r.ends_with(&format!(" dev {p}"))));
        self
    }

    /// The lines only in `self` (`-`) and only in `other` (`+`).
    fn difference(&self, other: &HostNetwork) -> String {
        let mut text = String::new();
        for (what, a, b) in [
            ("link", &self.links, &other.links),
            ("address", &self.addresses, &other.addresses),
            ("route", &self.routes, &other.routes),
        ] {
            for gone in a.difference(b) {
                text.push_str(&format!("- {what} {gone}\n"));
            }
            for new in b.difference(a) {
                text.push_str(&format!("+ {what} {new}\n"));
            }
        }
        text
    }
}

/// The host's network and what else a dockerd could change in it: firewall
/// rules and forwarding settings.
#[derive(Debug, PartialEq, Eq)]
struct HostState {
    network: HostNetwork,
    /// `iptables-save`, `ip6tables-save` and `nft list ruleset`, without
    /// comments and counters.
    firewall: Vec<String>,
    /// Forwarding and bridge netfilter sysctls.
    sysctls: Vec<String>,
}

impl HostState {
    fn now() -> HostState {
        let mut firewall = Vec::new();
        for command in [&["iptables-save"][..], &["ip6tables-save"], &["nft", "list", "ruleset"]] {
            let Ok(out) = Command::new(command[0]).args(&command[1..]).output() else { continue };
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            for line in text.lines().filter(|l| !l.starts_with('#')) {
                // ":INPUT ACCEPT [12:3456]": the counters change with traffic.
                let line = match line.rfind(" [") {
                    Some(i) if line.starts_with(':') => &line[..i],
                    _ => line,
                };
                firewall.push(format!("{}: {line}", command[0]));
            }
        }
        let sysctls = [
            "net/ipv4/ip_forward",
            "net/ipv6/conf/all/forwarding",
            "net/bridge/bridge-nf-call-iptables",
            "net/bridge/bridge-nf-call-ip6tables",
            "net/bridge/bridge-nf-call-arptables",
        ]
        .iter()
        .map(|k| format!("{k} = {}", fs::read_to_string(format!("/proc/sys/{k}")).unwrap_or_default().trim()))
        .collect();
        HostState { network: HostNetwork::now(), firewall, sysctls }
    }

    fn difference(&self, other: &HostState) -> String {
        let mut text = self.network.difference(&other.network);
        for (what, a, b) in [("firewall", &self.firewall, &other.firewall), ("sysctl", &self.sysctls, &other.sysctls)] {
            for gone in a.iter().filter(|l| !b.contains(l)) {
                text.push_str(&format!("- {what} {gone}\n"));
            }
            for new in b.iter().filter(|l| !a.contains(l)) {
                text.push_str(&format!("+ {what} {new}\n"));
            }
        }
        text
    }
}
