//! podman on moat behaves as podman on runc: a differential suite (a subset
//! of the Docker one). One podman configuration of the test's own (its own
//! storage, run and temporary directories, containers.conf, network config
//! directory and cgroup parent) runs every case once with `--runtime runc`,
//! the oracle, and once with moat, through a wrapper that records moat's
//! calls so that a podman that silently used runc fails the suite; `uname -r`
//! shows moat's kernel under moat only.
//!
//! Every podman command runs in a network and a mount namespace of the
//! test's own (`Namespaces`): what netavark makes for podman's default
//! network (its bridge, firewall rules, IP forwarding, IPAM database in
//! /run/containers/networks) and podman's network namespaces in /run/netns
//! stay there, and go with them; no packet can leave the machine.

mod common;
#[path = "engines/differential.rs"]
mod differential;
#[path = "engines/host_state.rs"]
mod host_state;
#[path = "engines/http.rs"]
mod http;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{busybox, moat_binary, CgroupParent, TempDir};
use differential::{clean, creates_in, moat_wrapper, run_all, Case, Engine, Runtime};
use host_state::namespace_holds;
use http::HttpServer;

const IMAGE: &str = "localhost/moat-test-busybox:latest";

/// podman's default network, in the test's own network namespace, and the
/// address netavark gives its bridge there.
const SUBNET: &str = "198.18.100.0/24";
const GATEWAY: &str = "198.18.100.1";

/// The limit for one podman command; a hang fails its case.
const COMMAND_LIMIT: Duration = Duration::from_secs(60);

const BUDGET: Duration = Duration::from_secs(300);

/// Where moat differs from runc on purpose, and why.
const DIFFERENCES: &[(&str, &str)] = &[(
    "top",
    "podman top reads /proc in the namespaces of the container's pid, which under moat is the sandbox \
     process: it lists moat's sandbox, Gofers and stubs, while the app's processes live in the Sentry",
)];

const CASES: &[Case<Podman>] = &[
    Case { name: "run: stdout, stderr and exit code", observe: case_exit_code },
    Case { name: "run -i: stdin", observe: case_stdin },
    Case { name: "run -e, -w, --user: environment, directory, ids", observe: case_env_user },
    Case { name: "run -v DIR:DIR", observe: case_volume },
    Case { name: "run --read-only", observe: case_read_only },
    Case { name: "exit codes 127, 126 and 137", observe: case_exit_codes },
    Case { name: "an entrypoint logging through /dev/stdout", observe: case_dev_stdout },
    Case { name: "exec, logs, diff, cp; stop runs the TERM trap", observe: case_detached },
    Case { name: "kill: exit code 137", observe: case_kill },
    Case { name: "top", observe: case_top },
    Case { name: "--network=bridge: fetch from the bridge's address", observe: case_bridge_network },
];

#[test]
fn podman_on_moat_behaves_as_on_runc() {
    let podman = Podman::new();
    podman.import_image();
    let mut failures = Vec::new();
    let release = |rt| podman.run(rt, &["--rm"], &["uname", "-r"]);
    let (runc, moat) = (release(Runtime::Runc), release(Runtime::Moat));
    let is_moat = |out: &Out| out.status == 0 && out.stdout.trim_end().ends_with("-moat");
    if !is_moat(&moat) || is_moat(&runc) || runc.status != 0 {
        failures.push(format!(
            "proof that moat runs the containers: want moat's release (…-moat) under moat only\n{}\n{}",
            runc.describe(),
            moat.describe()
        ));
    }
    failures.extend(run_all(&podman, CASES, DIFFERENCES, "podman test", BUDGET));
    drop(podman);
    if !failures.is_empty() {
        panic!("{} podman case(s) failed:\n\n{}", failures.len(), failures.join("\n\n"));
    }
}

// ---------------------------------------------------------------------------
// The cases.

fn everything(out: &Out) -> String {
    format!("exit {}\nstdout:\n{}stderr:\n{}", out.status, clean(&out.stdout), clean(&out.stderr))
}

/// Exit code and stdout: for runs where podman shows the runtime's own
/// error text (which names the runtime).
fn status_and_stdout(out: &Out) -> String {
    format!("exit {}\nstdout:\n{}", out.status, clean(&out.stdout))
}

fn case_exit_code(p: &Podman, rt: Runtime) -> String {
    everything(&p.run(rt, &["--rm"], &["sh", "-c", "echo hi; echo err >&2; exit 3"]))
}

fn case_stdin(p: &Podman, rt: Runtime) -> String {
    everything(&p.run_with_stdin(rt, &["--rm", "-i"], &["sh", "-c", "cat; echo done"], b"piped\nlines\n"))
}

fn case_env_user(p: &Podman, rt: Runtime) -> String {
    let script = "env | grep -v -e '^HOSTNAME=' -e '^container=' | sort; pwd; id; echo x > /f";
    let options = ["--rm", "-e", "FOO=bar baz", "-w", "/tmp", "--user", "65534:65534"];
    everything(&p.run(rt, &options, &["sh", "-c", script]))
}

fn case_volume(p: &Podman, rt: Runtime) -> String {
    let host = p.dir.path().join(rt.own("volume"));
    if let Err(e) = fs::create_dir_all(&host).and_then(|()| fs::write(host.join("in.txt"), "from-host\n")) {
        return format!("fixture: cannot make {}: {e}", host.display());
    }
    let volume = format!("{}:/data", host.display());
    let script = "cat /data/in.txt; echo from-container > /data/out.txt; ls /data";
    let out = p.run(rt, &["--rm", "-v", &volume], &["sh", "-c", script]);
    let written = fs::read_to_string(host.join("out.txt")).unwrap_or_else(|e| format!("(none: {e})"));
    format!("{}host's out.txt: {written}", everything(&out))
}

fn case_read_only(p: &Podman, rt: Runtime) -> String {
    everything(&p.run(rt, &["--rm", "--read-only"], &["sh", "-c", "echo x > /f; echo status=$?"]))
}

fn case_exit_codes(p: &Podman, rt: Runtime) -> String {
    [&["/nonexistent"][..], &["no-such-program"], &["/etc/passwd"], &["sh", "-c", "kill -9 $$"]]
        .iter()
        .map(|command| status_and_stdout(&p.run(rt, &["--rm"], command)))
        .collect::<Vec<_>>()
        .join("\n")
}

fn case_dev_stdout(p: &Podman, rt: Runtime) -> String {
    let script = "echo a > /dev/stdout; echo b > /dev/stderr; ln -s /dev/stdout /tmp/access.log; \
                  echo c >> /tmp/access.log; cat /dev/stdin";
    everything(&p.run_with_stdin(rt, &["--rm", "-i"], &["sh", "-c", script], b"d\n"))
}

fn case_detached(p: &Podman, rt: Runtime) -> String {
    let name = rt.own("detached");
    let script = r#"trap "echo got-term; exit 0" TERM; echo started; sleep 1000 & wait"#;
    let start = p.run(rt, &["-d", "--name", &name], &["sh", "-c", script]);
    if start.status != 0 {
        return format!("{name} did not start\n{}{}", everything(&start), p.remove(&name));
    }
    let n = name.as_str();
    let mut seen = String::new();
    let host = p.dir.path().join(rt.own("cp"));
    let _ = fs::create_dir_all(&host);
    let _ = fs::write(host.join("in.txt"), "copied-in\n");
    seen.push_str(&everything(&p.podman(&["exec", n, "sh", "-c", "echo exec-ok; exit 4"])));
    seen.push_str(&everything(&p.podman(&["exec", "-u", "65534", "-w", "/tmp", n, "sh", "-c", "id -u; pwd"])));
    seen.push_str(&everything(&p.podman(&["exec", n, "sh", "-c", "echo made > /made; rm /etc/group"])));
    let mut diff: Vec<String> = p.podman(&["diff", n]).stdout.lines().map(str::to_owned).collect();
    diff.sort();
    seen.push_str(&format!("diff:\n{}\n", diff.join("\n")));
    let cp_in = p.podman(&["cp", &host.join("in.txt").display().to_string(), &format!("{n}:/tmp/in.txt")]);
    seen.push_str(&format!("cp in: exit {}\n", cp_in.status));
    seen.push_str(&everything(&p.podman(&["exec", n, "cat", "/tmp/in.txt"])));
    let cp_out = p.podman(&["cp", &format!("{n}:/made"), &host.join("out.txt").display().to_string()]);
    let copied = fs::read_to_string(host.join("out.txt")).unwrap_or_else(|e| format!("(none: {e})"));
    seen.push_str(&format!("cp out: exit {}, copied: {copied}", cp_out.status));
    let stop = p.podman(&["stop", "-t", "20", n]);
    seen.push_str(&format!("stop: exit {}\n", stop.status));
    seen.push_str(&everything(&p.podman(&["logs", n])));
    seen.push_str(&format!("state: {}\n", p.podman(&["inspect", "-f", "{{.State.ExitCode}}", n]).stdout.trim()));
    seen + &p.remove(n)
}

fn case_top(p: &Podman, rt: Runtime) -> String {
    let name = rt.own("top");
    let start = p.run(rt, &["-d", "--name", &name], &["sh", "-c", "sleep 1000 & sleep 2000"]);
    if start.status != 0 {
        return format!("{name} did not start\n{}{}", everything(&start), p.remove(&name));
    }
    let top = p.podman(&["top", &name, "args"]);
    let mut rows: Vec<&str> = top.stdout.lines().skip(1).collect();
    rows.sort_unstable();
    format!("exit {}\n{}\n{}", top.status, rows.join("\n"), p.remove(&name))
}

fn case_kill(p: &Podman, rt: Runtime) -> String {
    let name = rt.own("kill");
    let start = p.run(rt, &["-d", "--name", &name], &["sh", "-c", "while :; do sleep 1; done"]);
    if start.status != 0 {
        return format!("{name} did not start\n{}{}", everything(&start), p.remove(&name));
    }
    let kill = p.podman(&["kill", &name]);
    let wait = p.podman(&["wait", &name]);
    format!("kill: exit {}\nwait: {}{}", kill.status, everything(&wait), p.remove(&name))
}

/// podman's default network (netavark's bridge): the container sees its
/// address on eth0, which the kernel it runs on holds (the host's, in the
/// container's network namespace, under runc; the Sentry under moat, where
/// that namespace no longer does), and fetches from an HTTP server the test
/// runs on the bridge's address.
fn case_bridge_network(p: &Podman, rt: Runtime) -> String {
    let name = rt.own("bridge");
    let start = p.run(rt, &["-d", "--name", &name, "--network=bridge"], &["sleep", "1000"]);
    if start.status != 0 {
        return format!("{name} did not start\n{}{}", everything(&start), p.remove(&name));
    }
    let inspect = |format: &str| p.podman(&["inspect", "-f", format, &name]).stdout.trim().to_owned();
    let address = inspect("{{.NetworkSettings.IPAddress}}");
    let seen = p.podman(&["exec", &name, "ip", "-o", "-4", "addr", "show", "dev", "eth0"]);
    let sees = !address.is_empty() && seen.stdout.contains(&format!(" {address}/"));
    let holder = match (rt, namespace_holds(&inspect("{{.State.Pid}}"), &address)) {
        (_, Err(e)) => e,
        // The same words for different facts: the kernel differs by design.
        (Runtime::Runc, Ok(held)) => held.to_string(),
        (Runtime::Moat, Ok(held)) => (!held && sees).to_string(),
    };
    // The bridge exists once a container is on it.
    let fetched = match HttpServer::start(GATEWAY, Some(&p.namespaces.path("net"))) {
        Ok(server) => everything(&p.podman(&["exec", &name, "wget", "-q", "-O", "-", &server.url()])),
        Err(e) => format!("fixture: {e}"),
    };
    format!(
        "address in {SUBNET}: {}\nthe container sees it on eth0: {sees}\nthe container's kernel holds it: {holder}\n\
         fetched from {GATEWAY}: {fetched}{}",
        address.starts_with(SUBNET.trim_end_matches("0/24")) && address != GATEWAY,
        p.remove(&name)
    )
}

// ---------------------------------------------------------------------------
// podman of the test's own.

/// A process holding a network namespace (with loopback up) and a mount
/// namespace (with a tmpfs on /run) of the test's own, for podman and all it
/// runs; killed when dropped, after which the namespaces go with the last
/// process in them.
struct Namespaces {
    holder: Child,
}

impl Namespaces {
    fn new() -> Namespaces {
        let mut command = Command::new("unshare");
        command
            .args(["--mount", "--net", "--propagation", "private", "sh", "-c"])
            .arg("mount -t tmpfs tmpfs /run && ip link set lo up && echo ready && exec sleep 2147483647")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Gone with the test, should it die without dropping this.
        host::sys::die_with_parent(&mut command, nix::sys::signal::Signal::SIGKILL as i32);
        let mut holder = command.spawn().expect("fixture: run unshare (util-linux)");
        let mut line = String::new();
        let _ = BufReader::new(holder.stdout.take().expect("piped stdout")).read_line(&mut line);
        if line.trim() != "ready" {
            let _ = holder.kill();
            let out = holder.wait_with_output().expect("fixture: wait for unshare");
            panic!("fixture: cannot make the test's namespaces: {}", String::from_utf8_lossy(&out.stderr));
        }
        Namespaces { holder }
    }

    /// `/proc/PID/ns/KIND` of the holder.
    fn path(&self, kind: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/{kind}", self.holder.id()))
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

struct Out {
    command: String,
    status: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn describe(&self) -> String {
        format!(
            "command: {}\nexit status: {}\nstdout: {}\nstderr: {}",
            self.command, self.status, self.stdout, self.stderr
        )
    }
}

struct Podman {
    namespaces: Namespaces,
    dir: TempDir,
    conf: PathBuf,
    wrapper: PathBuf,
    calls: PathBuf,
    /// Where the containers' cgroups go; dropped (removed) last.
    cgroup_parent: CgroupParent,
}

impl Podman {
    fn new() -> Podman {
        assert!(
            Command::new("podman").arg("--version").output().is_ok_and(|o| o.status.success()),
            "fixture: podman is missing: apt-get install podman (.ci/run does)"
        );
        let dir = TempDir::new("podman");
        let (wrapper, calls) = moat_wrapper(dir.path(), moat_binary());
        let conf = dir.path().join("containers.conf");
        // This machine's root may not raise podman's default open-files
        // limit; conmon stays in the test's own cgroup (no-conmon).
        let config = format!(
            "[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\nnetns = \"none\"\n\
             cgroups = \"no-conmon\"\n[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n\
             [network]\nnetwork_backend = \"netavark\"\nnetwork_config_dir = \"{}\"\ndefault_subnet = \"{SUBNET}\"\n",
            dir.path().join("networks").display()
        );
        fs::write(&conf, config).expect("fixture: write containers.conf");
        Podman {
            namespaces: Namespaces::new(),
            dir,
            conf,
            wrapper,
            calls,
            cgroup_parent: CgroupParent::new("moat-test-podman"),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let d = self.dir.path();
        let mut command = Command::new("timeout");
        command
            .args(["-k", "5", &COMMAND_LIMIT.as_secs().to_string(), "nsenter"])
            .arg(format!("--mount={}", self.namespaces.path("mnt").display()))
            .arg(format!("--net={}", self.namespaces.path("net").display()))
            .arg("podman")
            .env("CONTAINERS_CONF", &self.conf)
            .arg("--root")
            .arg(d.join("root"))
            .arg("--runroot")
            .arg(d.join("run"))
            .arg("--tmpdir")
            .arg(d.join("tmp"))
            .args(["--storage-driver", "vfs", "--events-backend", "file"])
            .args(args);
        command
    }

    fn output(&self, args: &[&str], stdin: Option<&[u8]>) -> Out {
        let mut command = self.command(args);
        command.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let shown = format!("podman {}", args.join(" "));
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) => return Out { command: shown, status: -1, stdout: String::new(), stderr: e.to_string() },
        };
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            let _ = pipe.write_all(input);
        }
        let out = child.wait_with_output().expect("fixture: wait for podman");
        Out {
            command: shown,
            status: out.status.code().unwrap_or(128),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn podman(&self, args: &[&str]) -> Out {
        self.output(args, None)
    }

    fn run_args(&self, rt: Runtime, options: &[&str], command: &[&str]) -> Vec<String> {
        let runtime = match rt {
            Runtime::Runc => "runc".to_owned(),
            Runtime::Moat => self.wrapper.display().to_string(),
        };
        let mut args: Vec<String> = vec!["--runtime".into(), runtime, "run".into()];
        args.extend(options.iter().map(|s| (*s).to_owned()));
        args.push(format!("--cgroup-parent={}", self.cgroup_parent.path()));
        args.push(IMAGE.to_owned());
        args.extend(command.iter().map(|s| (*s).to_owned()));
        args
    }

    fn run(&self, rt: Runtime, options: &[&str], command: &[&str]) -> Out {
        let args = self.run_args(rt, options, command);
        self.podman(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    fn run_with_stdin(&self, rt: Runtime, options: &[&str], command: &[&str], stdin: &[u8]) -> Out {
        let args = self.run_args(rt, options, command);
        self.output(&args.iter().map(String::as_str).collect::<Vec<_>>(), Some(stdin))
    }

    fn remove(&self, name: &str) -> String {
        let out = self.podman(&["rm", "-f", name]);
        if out.status == 0 {
            String::new()
        } else {
            format!("podman rm -f failed: {}\n", clean(&out.stderr))
        }
    }

    /// A busybox image from the host's static busybox, with root and nobody.
    fn import_image(&self) {
        let rootfs = self.dir.path().join("rootfs");
        for sub in ["bin", "etc", "proc", "sys", "dev", "tmp", "root"] {
            fs::create_dir_all(rootfs.join(sub)).expect("fixture: make the image's rootfs");
        }
        fs::copy(busybox(), rootfs.join("bin/busybox")).expect("fixture: copy busybox");
        let install = Command::new("chroot").arg(&rootfs).args(["/bin/busybox", "--install", "-s", "/bin"]).status();
        assert!(install.is_ok_and(|s| s.success()), "fixture: busybox --install -s failed");
        let passwd = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n";
        fs::write(rootfs.join("etc/passwd"), passwd).expect("fixture: write passwd");
        fs::write(rootfs.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").expect("fixture: write group");
        let chmod = Command::new("chmod").arg("1777").arg(rootfs.join("tmp")).status();
        assert!(chmod.is_ok_and(|s| s.success()), "fixture: chmod 1777 tmp failed");
        let tar = self.dir.path().join("rootfs.tar");
        let status = Command::new("tar").arg("-C").arg(&rootfs).arg("-cf").arg(&tar).arg(".").status();
        assert!(status.is_ok_and(|s| s.success()), "fixture: tar of the rootfs failed");
        let tar = tar.display().to_string();
        let out = self.podman(&["import", "--change", "CMD=/bin/sh", "--change", "ENV=PATH=/bin", &tar, IMAGE]);
        assert_eq!(out.status, 0, "fixture: podman import failed:\n{}", out.describe());
    }
}

impl Engine for Podman {
    fn moat_creates(&self) -> usize {
        creates_in(&self.calls)
    }

    fn log_mark(&self) -> u64 {
        0
    }

    fn diagnostics(&self, _mark: u64) -> String {
        String::new()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.podman(&["rm", "-af", "-t", "0"]);
        // Containers' and storage's mounts below the test's directory.
        let _ = self.podman(&["system", "reset", "--force"]);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
            let ours: Vec<&str> = mountinfo
                .lines()
                .filter_map(|l| l.split(' ').nth(4))
                .filter(|m| Path::new(m).starts_with(self.dir.path()))
                .collect();
            if ours.is_empty() || Instant::now() > deadline {
                for m in ours {
                    let _ = Command::new("umount").args(["-l", m]).status();
                }
                break;
            }
            thread::sleep(Duration::from_millis(100));
        }
    }
}
