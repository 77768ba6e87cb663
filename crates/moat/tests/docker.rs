//! Docker on moat behaves as Docker on runc: a differential suite. One
//! dockerd of the test's own (its own data root, exec root, socket,
//! containerd and default bridge) has both runtimes; every case runs the
//! same `docker` commands once with `--runtime=runc`, the oracle, and once
//! with `--runtime=moat`, and the two observations must be equal — except
//! for the few cases in `DIFFERENCES`, each with the reason moat differs.
//!
//! Every moat run must have made moat create a container (dockerd calls
//! moat through a wrapper that records its calls) and no runc run may; and
//! `uname -r` must show moat's kernel under moat and not under runc. So a
//! dockerd that silently used runc fails the suite.
//!
//! The daemon's default bridge is one the test makes (`moatbrXXXX`, an
//! address in 198.18.0.0/15, reserved for benchmarks) and removes; dockerd
//! runs with `--iptables=false`, no forwarding and no masquerading, so it
//! changes no host firewall rule and nothing leaves the machine. The test
//! fails if the host's links, addresses, routes, firewall rules or
//! forwarding settings differ at its end from what they were at its start.

#[path = "engines/bridge.rs"]
mod bridge;
mod common;
#[path = "engines/differential.rs"]
mod differential;
#[path = "engines/dockerd.rs"]
mod dockerd;
#[path = "engines/host_state.rs"]
mod host_state;
#[path = "engines/http.rs"]
mod http;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use differential::{clean, run_all, Case, Runtime};
use dockerd::{Daemon, Out, COMMAND_LIMIT, IMAGE};
use host_state::{namespace_holds, HostNetwork, HostState};
use http::{HttpServer, HELLO};

/// After this much time the remaining cases are not run (and fail), so the
/// file stays bounded however broken moat is.
const BUDGET: Duration = Duration::from_secs(600);

/// Where moat differs from runc on purpose, and why. The suite fails if a
/// case listed here no longer differs (the entry must then go).
const DIFFERENCES: &[(&str, &str)] = &[(
    "top: the CMD column",
    "the host's `ps` shows moat's stubs, which run the app's processes on the host, as [moat]: \
     the app's arguments live in the Sentry's view of its memory, not in the stub's command line",
)];

const CASES: &[Case<Daemon>] = &[
    Case { name: "run: stdout, stderr and exit code", observe: case_exit_code },
    Case { name: "run -i: stdin", observe: case_stdin },
    Case { name: "run -i: a megabyte through stdin", observe: case_big_stdin },
    Case { name: "run without -i: stdin is empty", observe: case_no_stdin },
    Case { name: "run -t: a terminal", observe: case_tty },
    Case { name: "run -it: Ctrl-C interrupts the foreground program", observe: case_ctrl_c },
    Case { name: "run --init: docker-init is pid 1", observe: case_init },
    Case { name: "run -e: the environment, HOME from passwd", observe: case_env },
    Case { name: "run -w: a new working directory", observe: case_workdir },
    Case { name: "run --user UID:GID", observe: case_user_ids },
    Case { name: "run --user NAME", observe: case_user_name },
    Case { name: "run --hostname", observe: case_hostname },
    Case { name: "run: /etc/hosts and /etc/hostname", observe: case_etc_files },
    Case { name: "run -v FILE:FILE:ro", observe: case_volume_file },
    Case { name: "run -v DIR:DIR", observe: case_volume_dir },
    Case { name: "run --read-only", observe: case_read_only },
    Case { name: "run --read-only --tmpfs", observe: case_tmpfs },
    Case { name: "exit code 127: no such program", observe: case_127 },
    Case { name: "exit code 127: not in PATH", observe: case_127_path },
    Case { name: "exit code 126: not executable", observe: case_126 },
    Case { name: "exit code 126: a directory", observe: case_126_dir },
    Case { name: "exit code 137: killed by SIGKILL", observe: case_137 },
    Case { name: "an entrypoint logging through /dev/stdout", observe: case_dev_stdout },
    Case { name: "exec: output, stdin, user, workdir, env, status; stop runs the TERM trap", observe: case_exec },
    Case { name: "top: one row per app process, by host pid", observe: case_top_rows },
    Case { name: "top: the CMD column", observe: case_top_cmd },
    Case { name: "stats: memory usage", observe: case_stats },
    Case { name: "cp into and out of a running container", observe: case_cp },
    Case { name: "diff and commit", observe: case_diff_commit },
    Case { name: "logs -f", observe: case_logs_follow },
    Case { name: "wait", observe: case_wait },
    Case { name: "kill -s USR1, then kill", observe: case_kill },
    Case { name: "restart", observe: case_restart },
    Case { name: "pause and unpause", observe: case_pause },
    Case { name: "--memory 64m: an app allocating past it is stopped", observe: case_memory },
    Case { name: "--pids-limit 10: forks past it fail", observe: case_pids },
    Case { name: "--cpus 0.5: the cgroup's CPU quota", observe: case_cpus },
    Case { name: "-p 127.0.0.1:PORT:8000: the host reads a server in the container", observe: case_publish },
    Case { name: "a user-defined network: one container reaches another by name", observe: case_user_network },
];

#[test]
fn docker_on_moat_behaves_as_on_runc() {
    let started = Instant::now();
    let host_before = HostState::now();
    let daemon = Daemon::start();
    daemon.import_image();
    eprintln!("docker test: dockerd ready with image {IMAGE} after {:?}", started.elapsed());

    let mut failures = Vec::new();
    if let Err(e) = moat_kernel_runs_under_moat_only(&daemon) {
        failures.push(format!("proof that moat runs the containers: FAILED\n{e}"));
    }
    failures.extend(run_all(&daemon, CASES, DIFFERENCES, "docker test", BUDGET));
    if let Err(e) = bridge_network(&daemon) {
        failures.push(format!("the default bridge network on moat: FAILED\n{e}"));
    }

    eprintln!("docker test: all cases done after {:?}", started.elapsed());
    drop(daemon);
    let host_after = HostState::now();
    if host_after != host_before {
        failures
            .push(format!("the host's network is not as the test found it:\n{}", host_before.difference(&host_after)));
    }
    if !failures.is_empty() {
        panic!("{} docker case(s) failed:\n\n{}", failures.len(), failures.join("\n\n"));
    }
}

/// `uname -r` names moat's kernel under moat and the host's under runc.
fn moat_kernel_runs_under_moat_only(d: &Daemon) -> Result<(), String> {
    let release = |rt| run(d, rt, &["--rm"], &["uname", "-r"]);
    let (runc, moat) = (release(Runtime::Runc), release(Runtime::Moat));
    let is_moat = |out: &Out| out.status == 0 && out.stdout.trim_end().ends_with("-moat");
    if !is_moat(&moat) || is_moat(&runc) || runc.status != 0 {
        return Err(format!("want moat's release (…-moat) under moat only\n{}\n{}", runc.describe(), moat.describe()));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Observing.

/// `docker run OPTIONS --runtime=RT --network=none IMAGE COMMAND...`.
fn run(d: &Daemon, rt: Runtime, options: &[&str], command: &[&str]) -> Out {
    d.docker(&strs(&run_args(rt, options, IMAGE, command)))
}

fn run_args<'a>(rt: Runtime, options: &[&'a str], image: &'a str, command: &[&'a str]) -> Vec<String> {
    network_run_args(rt, "none", options, image, command)
}

/// `docker run OPTIONS --runtime=RT --network=NETWORK IMAGE COMMAND...`.
fn network_run_args<'a>(
    rt: Runtime,
    network: &str,
    options: &[&'a str],
    image: &'a str,
    command: &[&'a str],
) -> Vec<String> {
    let mut args = vec!["run".to_owned()];
    args.extend(options.iter().map(|s| (*s).to_owned()));
    args.push(format!("--runtime={}", rt.as_str()));
    args.push(format!("--network={network}"));
    args.push(image.to_owned());
    args.extend(command.iter().map(|s| (*s).to_owned()));
    args
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// Exit code, stdout and stderr.
fn everything(out: &Out) -> String {
    format!("exit {}\nstdout:\n{}stderr:\n{}", out.status, clean(&out.stdout), clean(&out.stderr))
}

/// Exit code and stdout: for runs where the error text is the runtime's
/// own (`runc create failed: …`), which Docker reports verbatim.
fn status_and_stdout(out: &Out) -> String {
    format!("exit {}\nstdout:\n{}", out.status, clean(&out.stdout))
}

/// Polls `check` for up to `limit`; whether it became true.
fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if check() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(200));
    }
}

/// Starts a detached container named `name` running `script`; returns what
/// went wrong, as an observation, if it did not start.
fn detached(d: &Daemon, rt: Runtime, name: &str, options: &[&str], script: &str) -> Result<(), String> {
    let mut all = vec!["-d", "--name", name];
    all.extend_from_slice(options);
    let out = run(d, rt, &all, &["sh", "-c", script]);
    d.note_container(name);
    if out.status != 0 {
        return Err(format!("container {name} did not start: exit {}\n{}", out.status, clean(&out.stderr)));
    }
    Ok(())
}

/// `docker rm -f NAME` (its moat log kept by `note_container`).
fn remove(d: &Daemon, name: &str) -> String {
    let out = d.docker(&["rm", "-f", name]);
    if out.status == 0 {
        String::new()
    } else {
        format!("docker rm -f failed: {}\n", clean(&out.stderr))
    }
}

// ---------------------------------------------------------------------------
// The cases.

fn case_exit_code(d: &Daemon, rt: Runtime) -> String {
    everything(&run(d, rt, &["--rm"], &["sh", "-c", "echo hi; echo err >&2; exit 3"]))
}

fn case_stdin(d: &Daemon, rt: Runtime) -> String {
    let args = run_args(rt, &["--rm", "-i"], IMAGE, &["sh", "-c", "cat; echo done"]);
    everything(&d.docker_with_stdin(&strs(&args), b"piped\nlines\n"))
}

fn case_big_stdin(d: &Daemon, rt: Runtime) -> String {
    let input: Vec<u8> = (0..1 << 20).map(|i: u32| b"abcdefghijklmnopqrstuvwxyz\n"[(i % 27) as usize]).collect();
    let args = run_args(rt, &["--rm", "-i"], IMAGE, &["sh", "-c", "wc -c; echo done"]);
    everything(&d.docker_with_stdin(&strs(&args), &input))
}

fn case_no_stdin(d: &Daemon, rt: Runtime) -> String {
    everything(&run(d, rt, &["--rm"], &["sh", "-c", "cat; echo eof"]))
}

/// Under `script`, which gives the docker CLI a terminal.
fn case_tty(d: &Daemon, rt: Runtime) -> String {
    let args =
        run_args(rt, &["--rm", "-t"], IMAGE, &["sh", "-c", "tty; [ -t 0 ] && echo in-tty; [ -t 1 ] && echo out-tty"]);
    let inner = format!("{} {}", d.docker_prefix(), dockerd::shell_words(&strs(&args)));
    let mut command = Command::new("timeout");
    command.args(["-k", "5", &COMMAND_LIMIT.as_secs().to_string(), "script", "-eqc", &inner, "/dev/null"]);
    everything(&d.output(command, None, &inner))
}

/// Drives `docker run -it` from a pty (python's), types Ctrl-C once the
/// foreground `sleep` runs, and shows what the terminal showed. The
/// container's shell is pid 1, which SIGINT does not end, so it reports
/// the sleep's status.
fn case_ctrl_c(d: &Daemon, rt: Runtime) -> String {
    let args = run_args(rt, &["--rm", "-it"], IMAGE, &["sh", "-c", "echo ready; sleep 20; echo status=$?; echo after"]);
    let mut command = Command::new("python3");
    command
        .arg("-c")
        .arg(PTY_DRIVER)
        .arg("ready")
        .arg("docker")
        .arg("-H")
        .arg(format!("unix://{}", d.socket.display()));
    command.args(&args);
    let shown = format!("python3 pty driver: {} {}", d.docker_prefix(), dockerd::shell_words(&strs(&args)));
    everything(&d.output(command, None, &shown))
}

/// Runs argv[2:] on a new pty; once the terminal has shown argv[1], types
/// Ctrl-C; prints what the terminal showed (lines) and exits with the
/// program's status. Gives up after 15 s (status 124).
const PTY_DRIVER: &str = r#"
import os, pty, select, sys, time
marker = sys.argv[1].encode()
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
shown, sent, deadline = b"", False, time.time() + 15
while time.time() < deadline:
    ready, _, _ = select.select([fd], [], [], 0.2)
    if ready:
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        shown += data
    if not sent and marker in shown:
        time.sleep(1)
        os.write(fd, b"\x03")
        sent = True
else:
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    sys.stdout.write(shown.decode(errors="replace"))
    sys.exit(124)
_, status = os.waitpid(pid, 0)
sys.stdout.write(shown.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
"#;

fn case_init(d: &Daemon, rt: Runtime) -> String {
    let script = r#"tr '\0' ' ' < /proc/1/cmdline; echo; cat /proc/1/comm"#;
    everything(&run(d, rt, &["--rm", "--init"], &["sh", "-c", script]))
}

fn case_env(d: &Daemon, rt: Runtime) -> String {
    let script = "env | grep -v '^HOSTNAME=' | sort";
    everything(&run(d, rt, &["--rm", "-e", "FOO=bar baz", "-e", "EMPTY="], &["sh", "-c", script]))
}

fn case_workdir(d: &Daemon, rt: Runtime) -> String {
    everything(&run(d, rt, &["--rm", "-w", "/work/dir"], &["sh", "-c", "pwd; ls -ld . | cut -c1-10"]))
}

fn case_user_ids(d: &Daemon, rt: Runtime) -> String {
    let script = "id; echo home=$HOME; echo x > /f; ls -ld /tmp | cut -c1-10";
    everything(&run(d, rt, &["--rm", "--user", "65534:65534"], &["sh", "-c", script]))
}

fn case_user_name(d: &Daemon, rt: Runtime) -> String {
    everything(&run(d, rt, &["--rm", "--user", "nobody"], &["sh", "-c", "id; echo home=$HOME"]))
}

fn case_hostname(d: &Daemon, rt: Runtime) -> String {
    everything(&run(d, rt, &["--rm", "--hostname", "box-one"], &["sh", "-c", "hostname; cat /etc/hostname"]))
}

fn case_etc_files(d: &Daemon, rt: Runtime) -> String {
    let script = "cat /etc/hosts; echo --; cat /etc/hostname | wc -c; grep -c . /etc/resolv.conf >/dev/null; echo $?";
    everything(&run(d, rt, &["--rm"], &["sh", "-c", script]))
}

fn case_volume_file(d: &Daemon, rt: Runtime) -> String {
    let host = d.dir.path().join(rt.own("motd"));
    if let Err(e) = fs::write(&host, "message of the day\n") {
        return format!("fixture: cannot write {}: {e}", host.display());
    }
    let volume = format!("{}:/etc/motd:ro", host.display());
    everything(&run(d, rt, &["--rm", "-v", &volume], &["sh", "-c", "cat /etc/motd; echo x > /etc/motd"]))
}

fn case_volume_dir(d: &Daemon, rt: Runtime) -> String {
    let host = d.dir.path().join(rt.own("volume"));
    if let Err(e) = fs::create_dir_all(&host).and_then(|()| fs::write(host.join("in.txt"), "from-host\n")) {
        return format!("fixture: cannot make {}: {e}", host.display());
    }
    let volume = format!("{}:/data", host.display());
    let script = "cat /data/in.txt; echo from-container > /data/out.txt; mkdir /data/sub; ls /data";
    let out = run(d, rt, &["--rm", "-v", &volume], &["sh", "-c", script]);
    let written = fs::read_to_string(host.join("out.txt")).unwrap_or_else(|e| format!("(none: {e})"));
    format!("{}host's out.txt: {written}", everything(&out))
}

fn case_read_only(d: &Daemon, rt: Runtime) -> String {
    everything(&run(
        d,
        rt,
        &["--rm", "--read-only"],
        &["sh", "-c", "echo x > /f; echo status=$?; cat /etc/passwd | wc -l"],
    ))
}

fn case_tmpfs(d: &Daemon, rt: Runtime) -> String {
    let script = "echo x > /run/f && cat /run/f; stat -c '%a %U' /run; echo y > /f";
    everything(&run(d, rt, &["--rm", "--read-only", "--tmpfs", "/run"], &["sh", "-c", script]))
}

fn case_127(d: &Daemon, rt: Runtime) -> String {
    status_and_stdout(&run(d, rt, &["--rm"], &["/nonexistent"]))
}

fn case_127_path(d: &Daemon, rt: Runtime) -> String {
    status_and_stdout(&run(d, rt, &["--rm"], &["no-such-program"]))
}

fn case_126(d: &Daemon, rt: Runtime) -> String {
    status_and_stdout(&run(d, rt, &["--rm"], &["/etc/passwd"]))
}

fn case_126_dir(d: &Daemon, rt: Runtime) -> String {
    status_and_stdout(&run(d, rt, &["--rm"], &["/etc"]))
}

fn case_137(d: &Daemon, rt: Runtime) -> String {
    everything(&run(d, rt, &["--rm"], &["sh", "-c", "echo before; kill -9 $$; echo after"]))
}

/// As nginx-style images do: logs are symlinks to /dev/stdout and /dev/stderr.
fn case_dev_stdout(d: &Daemon, rt: Runtime) -> String {
    let script = "echo a > /dev/stdout; echo b > /dev/stderr; ln -s /dev/stdout /tmp/access.log; \
                  ln -s /dev/stderr /tmp/error.log; echo c >> /tmp/access.log; echo d > /tmp/error.log; \
                  echo e > /proc/self/fd/1; cat /dev/stdin";
    let args = run_args(rt, &["--rm", "-i"], IMAGE, &["sh", "-c", script]);
    everything(&d.docker_with_stdin(&strs(&args), b"f\n"))
}

fn case_exec(d: &Daemon, rt: Runtime) -> String {
    let name = rt.own("exec");
    let script = r#"trap "echo got-term; exit 0" TERM; echo started; sleep 1000 & wait"#;
    if let Err(e) = detached(d, rt, &name, &[], script) {
        return e + &remove(d, &name);
    }
    let mut seen = String::new();
    let n = name.as_str();
    for args in [
        &["exec", n, "sh", "-c", "echo exec-ok; exit 4"][..],
        &["exec", "-u", "65534", n, "id"],
        &["exec", "-w", "/tmp", n, "pwd"],
        &["exec", "-e", "X=1", n, "sh", "-c", "echo X=$X HOME=$HOME"],
        &["exec", n, "ps", "-o", "comm"],
    ] {
        seen.push_str(&format!("{}\n", everything(&d.docker(args))));
    }
    seen.push_str(&everything(&d.docker_with_stdin(&["exec", "-i", n, "cat"], b"to-exec\n")));
    seen.push_str(&status_and_stdout(&d.docker(&["exec", n, "/nonexistent"])));
    let stop = d.docker_limited(&["stop", "-t", "20"], n, Duration::from_secs(45));
    seen.push_str(&format!("stop: exit {}\n", stop.status));
    seen.push_str(&format!("logs:\n{}", clean(&d.docker(&["logs", n]).stdout)));
    seen.push_str(&format!("state: {}\n", d.inspect(n, "{{.State.ExitCode}} {{.State.Running}}")));
    seen + &remove(d, n)
}

/// `docker top` lists the container's processes by their host pids (runc's
/// `ps --format json`), as `ps -ef` shows them: each row's PID, whether it
/// is a live host process, and its CMD.
fn top(d: &Daemon, rt: Runtime, base: &str) -> (i32, Vec<(bool, String)>) {
    let name = rt.own(base);
    if let Err(e) = detached(d, rt, &name, &[], "sleep 1000 & sleep 2000") {
        return (-1, vec![(false, e + &remove(d, &name))]);
    }
    let out = d.docker(&["top", &name]);
    let mut lines = out.stdout.lines();
    let columns: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    let pid_at = columns.iter().position(|h| *h == "PID");
    let mut rows = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let live = pid_at
            .and_then(|i| fields.get(i))
            .and_then(|p| p.parse::<i32>().ok())
            .is_some_and(|p| p > 1 && Path::new(&format!("/proc/{p}")).exists());
        let cmd = fields.get(columns.len().saturating_sub(1)..).map(|c| c.join(" ")).unwrap_or_default();
        rows.push((live, cmd));
    }
    rows.sort();
    let removed = remove(d, &name);
    if !removed.is_empty() {
        rows.push((false, removed));
    }
    (out.status, rows)
}

fn case_top_rows(d: &Daemon, rt: Runtime) -> String {
    let (status, rows) = top(d, rt, "top-rows");
    let live: Vec<String> = rows.iter().map(|(live, _)| format!("live host pid: {live}")).collect();
    format!(
        "exit {status}
{}",
        live.join("\n")
    )
}

fn case_top_cmd(d: &Daemon, rt: Runtime) -> String {
    let (status, rows) = top(d, rt, "top-cmd");
    let cmds: Vec<&str> = rows.iter().map(|(_, cmd)| cmd.as_str()).collect();
    format!(
        "exit {status}
{}",
        cmds.join("\n")
    )
}

fn case_stats(d: &Daemon, rt: Runtime) -> String {
    let name = rt.own("stats");
    if let Err(e) = detached(d, rt, &name, &[], "sleep 1000") {
        return e + &remove(d, &name);
    }
    let out = d.docker(&["stats", "--no-stream", "--format", "{{.MemUsage}}", &name]);
    // "15.01MiB / 23.54GiB"
    let used = out.stdout.split('/').next().unwrap_or("").trim();
    let number: String = used.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
    let nonzero = number.parse::<f64>().unwrap_or(0.0) > 0.0;
    format!("exit {}\nmemory used > 0: {nonzero}\n{}", out.status, remove(d, &name))
}

fn case_cp(d: &Daemon, rt: Runtime) -> String {
    let name = rt.own("cp");
    if let Err(e) = detached(d, rt, &name, &[], "mkdir -p /srv; echo made-inside > /srv/out; sleep 1000") {
        return e + &remove(d, &name);
    }
    let dir = d.dir.path().join(rt.own("cp"));
    let into = dir.join("in.txt");
    if let Err(e) = fs::create_dir_all(&dir).and_then(|()| fs::write(&into, "copied-in\n")) {
        return format!("fixture: {e}") + &remove(d, &name);
    }
    let mut seen = String::new();
    let _ = eventually(Duration::from_secs(10), || d.docker(&["exec", &name, "test", "-f", "/srv/out"]).status == 0);
    let cp_in = d.docker(&["cp", &into.display().to_string(), &format!("{name}:/srv/in.txt")]);
    seen.push_str(&format!("cp in: exit {} {}", cp_in.status, clean(&cp_in.stderr)));
    seen.push_str(&everything(&d.docker(&["exec", &name, "cat", "/srv/in.txt"])));
    let out = dir.join("out.txt");
    let cp_out = d.docker(&["cp", &format!("{name}:/srv/out"), &out.display().to_string()]);
    let copied = fs::read_to_string(&out).unwrap_or_else(|e| format!("(none: {e})"));
    seen.push_str(&format!("cp out: exit {} {}copied: {copied}", cp_out.status, clean(&cp_out.stderr)));
    seen + &remove(d, &name)
}

fn case_diff_commit(d: &Daemon, rt: Runtime) -> String {
    let name = rt.own("diff");
    let image = rt.own("moat-test-commit");
    let script = "echo new > /new; rm /etc/group; mkdir /made; echo more >> /etc/passwd; ln -s /new /link";
    let out = run(d, rt, &["--name", &name], &["sh", "-c", script]);
    d.note_container(&name);
    let mut seen = everything(&out);
    let diff = d.docker(&["diff", &name]);
    let mut lines: Vec<&str> = diff.stdout.lines().collect();
    lines.sort();
    seen.push_str(&format!("diff: exit {}\n{}\n", diff.status, lines.join("\n")));
    let commit = d.docker(&["commit", &name, &image]);
    seen.push_str(&format!("commit: exit {}\n", commit.status));
    let args =
        run_args(rt, &["--rm"], &image, &["sh", "-c", "cat /new; tail -1 /etc/passwd; ls /etc/group; ls -d /made"]);
    seen.push_str(&everything(&d.docker(&strs(&args))));
    let _ = d.docker(&["rmi", "-f", &image]);
    seen + &remove(d, &name)
}

fn case_logs_follow(d: &Daemon, rt: Runtime) -> String {
    let name = rt.own("logs");
    let script = "echo one; sleep 1; echo two >&2; sleep 1; echo three";
    if let Err(e) = detached(d, rt, &name, &[], script) {
        return e + &remove(d, &name);
    }
    everything(&d.docker(&["logs", "-f", &name])) + &remove(d, &name)
}

fn case_wait(d: &Daemon, rt: Runtime) -> String {
    let name = rt.own("wait");
    if let Err(e) = detached(d, rt, &name, &[], "sleep 1; exit 5") {
        return e + &remove(d, &name);
    }
    everything(&d.docker(&["wait", &name])) + &remove(d, &name)
}

fn case_kill(d: &Daemon, rt: Runtime) -> String {
    let name = rt.own("kill");
    let script = r#"trap "echo got-usr1" USR1; echo ready; while :; do sleep 1; done"#;
    if let Err(e) = detached(d, rt, &name, &[], script) {
        return e + &remove(d, &name);
    }
    let logs = || d.docker(&["logs", &name]).stdout;
    let ready = eventually(Duration::from_secs(10), || logs().contains("ready"));
    let usr1 = d.docker(&["kill", "-s", "USR1", &name]);
    let trapped = eventually(Duration::from_secs(10), || logs().contains("got-usr1"));
    let kill = d.docker(&["kill", &name]);
    let exited = d.wait_exited(&name, Duration::from_secs(20));
    let state = d.inspect(&name, "{{.State.ExitCode}} {{.State.Running}}");
    format!(
        "ready: {ready}\nkill -s USR1: exit {}\ntrapped: {trapped}\nkill: exit {}\nexited: {exited}\nstate: {state}\n{}",
        usr1.status,
        kill.status,
        remove(d, &name)
    )
}

fn case_restart(d: &Daemon, rt: Runtime) -> String {
    let name = rt.own("restart");
    if let Err(e) = detached(d, rt, &name, &[], "echo start; while :; do sleep 1; done") {
        return e + &remove(d, &name);
    }
    let _ = eventually(Duration::from_secs(10), || d.docker(&["logs", &name]).stdout.contains("start"));
    let restart = d.docker_limited(&["restart", "-t", "1"], &name, Duration::from_secs(45));
    let twice = eventually(Duration::from_secs(10), || d.docker(&["logs", &name]).stdout.matches("start").count() == 2);
    let state = d.inspect(&name, "{{.State.Status}}");
    let exec = d.docker(&["exec", &name, "echo", "alive"]);
    format!(
        "restart: exit {}\nstarted twice: {twice}\nstate: {state}\n{}{}",
        restart.status,
        everything(&exec),
        remove(d, &name)
    )
}

fn case_pause(d: &Daemon, rt: Runtime) -> String {
    let name = rt.own("pause");
    if let Err(e) = detached(d, rt, &name, &[], "while :; do sleep 1; done") {
        return e + &remove(d, &name);
    }
    let pause = d.docker(&["pause", &name]);
    let paused = d.inspect(&name, "{{.State.Status}}");
    let unpause = d.docker(&["unpause", &name]);
    let running = d.inspect(&name, "{{.State.Status}}");
    let exec = d.docker(&["exec", &name, "echo", "alive"]);
    format!(
        "pause: exit {}, then {paused}\nunpause: exit {}, then {running}\n{}{}",
        pause.status,
        unpause.status,
        everything(&exec),
        remove(d, &name)
    )
}

/// A shell doubling a string forever must be stopped: OOM-killed (137) or
/// told ENOMEM, by the kernel it runs on.
fn case_memory(d: &Daemon, rt: Runtime) -> String {
    let name = rt.own("memory");
    let script = r#"x=aaaaaaaaaaaaaaaa; while :; do x="$x$x"; done"#;
    if let Err(e) = detached(d, rt, &name, &["--memory", "64m"], script) {
        return e + &remove(d, &name);
    }
    let exited = d.wait_exited(&name, Duration::from_secs(60));
    let state = d.inspect(&name, "{{.State.ExitCode}} {{.State.OOMKilled}}");
    let logs = d.docker(&["logs", &name]);
    let all = format!("{}{}", logs.stdout, logs.stderr).to_lowercase();
    let enomem = all.contains("out of memory") || all.contains("cannot allocate memory");
    let stopped = exited && (state.starts_with("137 ") || state.ends_with(" true") || enomem);
    format!("stopped by the limit: {stopped}\n{}", remove(d, &name))
}

/// 40 background sleeps cannot all start: the shell reports failed forks
/// and the container ends by itself.
fn case_pids(d: &Daemon, rt: Runtime) -> String {
    let name = rt.own("pids");
    let script = "for i in $(seq 1 40); do sleep 5 & done; wait; echo all-waited";
    if let Err(e) = detached(d, rt, &name, &["--pids-limit", "10"], script) {
        return e + &remove(d, &name);
    }
    let exited = d.wait_exited(&name, Duration::from_secs(30));
    let logs = d.docker(&["logs", &name]);
    let all = format!("{}{}", logs.stdout, logs.stderr);
    // busybox sh: "sh: can't fork: Resource temporarily unavailable".
    let fork_failed = all.lines().any(|l| l.starts_with("sh:") && l.contains("can't fork"));
    format!(
        "ended: {exited}\nfork failed: {fork_failed}\nall waited: {}\n{}",
        all.contains("all-waited"),
        remove(d, &name)
    )
}

/// The CPU quota of the cgroup the container's pid is in, on the host.
fn case_cpus(d: &Daemon, rt: Runtime) -> String {
    let name = rt.own("cpus");
    if let Err(e) = detached(d, rt, &name, &["--cpus", "0.5"], "sleep 1000") {
        return e + &remove(d, &name);
    }
    let pid = d.inspect(&name, "{{.State.Pid}}");
    let cgroups = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let quota = cgroups
        .lines()
        .find_map(|l| {
            let (_, rest) = l.split_once(':')?;
            let (controllers, path) = rest.split_once(':')?;
            controllers.split(',').any(|c| c == "cpu").then(|| format!("/sys/fs/cgroup/{controllers}{path}"))
        })
        .map(|dir| {
            let read = |f: &str| fs::read_to_string(format!("{dir}/{f}")).unwrap_or_default().trim().to_owned();
            format!("quota {} period {}", read("cpu.cfs_quota_us"), read("cpu.cfs_period_us"))
        })
        .unwrap_or_else(|| format!("(no cpu cgroup for pid {pid:?})"));
    format!("{quota}\n{}", remove(d, &name))
}

/// A server in the container, published on a port of the host's loopback
/// that the test picked, read from the host with Python's urllib. dockerd
/// runs with `--iptables=false`, so its userland proxy (docker-proxy, a host
/// process) connects to the container's address on the test's bridge; the
/// kernel the container runs on must answer there: the host's, in the
/// container's network namespace, under runc; the Sentry under moat, where
/// that namespace no longer holds the address (each is checked).
fn case_publish(d: &Daemon, rt: Runtime) -> String {
    let name = rt.own("publish");
    let port = match free_loopback_port() {
        Ok(port) => port,
        Err(e) => return e,
    };
    let publish = format!("127.0.0.1:{port}:8000");
    let script = "mkdir /www && echo published from the container > /www/index.html && exec httpd -f -p 8000 -h /www";
    let args = network_run_args(rt, "bridge", &["-d", "--name", &name, "-p", &publish], IMAGE, &["sh", "-c", script]);
    let start = d.docker(&strs(&args));
    d.note_container(&name);
    if start.status != 0 {
        return format!("container {name} did not start: exit {}\n{}", start.status, clean(&start.stderr))
            + &remove(d, &name);
    }
    let url = format!("http://127.0.0.1:{port}/index.html");
    let mut fetched = Err(String::new());
    // The server may take a moment to listen.
    let _ = eventually(Duration::from_secs(20), || {
        fetched = fetch_from_host(&url);
        fetched.is_ok()
    });
    let fetched = fetched.unwrap_or_else(|e| format!("(failed: {e})"));
    let ports = d.docker(&["port", &name]);
    let address = d.inspect(&name, "{{.NetworkSettings.IPAddress}}");
    let seen = d.docker(&["exec", &name, "ip", "-o", "-4", "addr", "show", "dev", "eth0"]);
    let sees = !address.is_empty() && seen.stdout.contains(&format!(" {address}/"));
    let pid = d.inspect(&name, "{{.State.Pid}}");
    let holder = match (rt, namespace_holds(&pid, &address)) {
        (_, Err(e)) => e,
        // The same words for different facts: the kernel differs by design.
        (Runtime::Runc, Ok(held)) => format!("the container's kernel holds it: {held}"),
        (Runtime::Moat, Ok(held)) => format!("the container's kernel holds it: {}", !held && sees),
    };
    format!(
        "fetched from the host: {fetched}\ndocker port: exit {} {}the container sees its address on eth0: {sees}\n{holder}\n{}",
        ports.status,
        clean(&ports.stdout).replace(&format!(":{port}"), ":PORT"),
        remove(d, &name)
    )
}

/// Two containers on a network the case makes: the second fetches from the
/// first by its name, which Docker's embedded DNS (127.0.0.11 in each
/// container's namespace) resolves. The network's bridge and subnet
/// (198.19.N.0/24, reserved for benchmarks) are removed with it.
fn case_user_network(d: &Daemon, rt: Runtime) -> String {
    let (net, server) = (rt.own("net"), rt.own("named"));
    let subnet = format!("198.19.{}.0/24", std::process::id() % 250);
    let made = d.docker(&["network", "create", "--driver", "bridge", "--subnet", &subnet, &net]);
    if made.status != 0 {
        return format!("docker network create failed: {}", clean(&made.stderr));
    }
    let script = "mkdir /www && echo served by name > /www/index.html && exec httpd -f -p 8000 -h /www";
    let args = network_run_args(rt, &net, &["-d", "--name", &server], IMAGE, &["sh", "-c", script]);
    let start = d.docker(&strs(&args));
    d.note_container(&server);
    // The server may take a moment to listen.
    let fetch = format!(
        "for i in $(seq 40); do wget -q -O - http://{server}:8000/index.html && exit 0; sleep 0.25; done; \
         nslookup {server} 127.0.0.11 >&2; exit 1"
    );
    let args = network_run_args(rt, &net, &["--rm"], IMAGE, &["sh", "-c", &fetch]);
    let fetched = d.docker(&strs(&args));
    let removed = remove(d, &server);
    // Docker may still be detaching the --rm container's endpoint.
    let mut net_removed = 1;
    let _ = eventually(Duration::from_secs(10), || {
        net_removed = d.docker(&["network", "rm", &net]).status;
        net_removed == 0
    });
    // Failing alike under both runtimes is no pass: a failed fetch names
    // the runtime, so that it differs.
    let fetched = match fetched.stdout.as_str() {
        "served by name\n" => status_and_stdout(&fetched),
        _ => format!("under {}, not fetched by name: {}\n", rt.as_str(), everything(&fetched)),
    };
    format!(
        "server started: exit {}\nfetched by name: {fetched}network removed: exit {}\n{removed}",
        start.status, net_removed
    )
}

/// A TCP port on 127.0.0.1 that nothing listens on now.
fn free_loopback_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("fixture: no free port: {e}"))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| format!("fixture: no free port: {e}"))
}

/// GET `url` with Python's urllib, never through a proxy the environment
/// names (nothing may leave the machine): the body, or what failed.
fn fetch_from_host(url: &str) -> Result<String, String> {
    const FETCH: &str = "import sys, urllib.request\n\
                         opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))\n\
                         sys.stdout.write(opener.open(sys.argv[1], timeout=5).read().decode())\n";
    let out = Command::new("timeout")
        .args(["10", "/usr/bin/python3", "-c", FETCH, url])
        .output()
        .map_err(|e| format!("cannot run python3: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        Err(format!("{url}: {}", stderr.trim_end().lines().last().unwrap_or("no output")))
    }
}

// ---------------------------------------------------------------------------
// moat only: Docker's bridge network reaches the container's namespace.

/// Docker's default bridge network. Docker's network hook (a prestart hook
/// given the pid moat reports) moves the container's end of a veth pair
/// into `/proc/PID/ns/net`, renames it eth0 and gives it an address and
/// routes: that pid must be in the container's network namespace, so that
/// all of it lands there and the host sees only the veth's other end, on
/// the bridge, while the container runs.
fn bridge_network(d: &Daemon) -> Result<(), String> {
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

/// While `name` runs: its pid is in a network namespace of its own, where
/// Docker put eth0; the Sentry has taken eth0's address (the host kernel no
/// longer holds it) and answers for it: the container sees it, and fetches
/// from an HTTP server the test runs on the bridge's own address. The host
/// has only the veth's other end, on the bridge, more than `before`.
fn bridged_container(d: &Daemon, name: &str, before: &HostNetwork) -> Result<(), String> {
    let pid = d.inspect(name, "{{.State.Pid}}");
    let address = d.inspect(name, "{{.NetworkSettings.IPAddress}}");
    let netns = format!("/proc/{pid}/ns/net");
    let theirs = fs::read_link(&netns).map_err(|e| format!("{netns}: {e}"))?;
    let ours = fs::read_link("/proc/self/ns/net").map_err(|e| format!("/proc/self/ns/net: {e}"))?;
    if theirs == ours {
        return Err(format!("{name}'s pid {pid} is in the host's network namespace {ours:?}"));
    }
    let seen = d.docker(&["exec", name, "ip", "-o", "-4", "addr", "show", "dev", "eth0"]);
    if address.is_empty() || !seen.stdout.contains(&format!(" {address}/")) {
        return Err(format!("want eth0 with {name}'s address {address:?} inside the container\n{}", seen.describe()));
    }
    let server = HttpServer::start(&d.bridge.gateway, None)?;
    let url = server.url();
    let fetched = d.docker(&["exec", name, "wget", "-q", "-O", "-", &url]);
    if fetched.stdout != HELLO {
        return Err(format!("want {url} fetched through the Sentry's stack\n{}", fetched.describe()));
    }
    drop(server);
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
