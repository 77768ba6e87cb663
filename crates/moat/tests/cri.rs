//! Kubernetes' way in: containerd's CRI plugin, driven over its gRPC socket
//! as the kubelet drives it (tests/engines/cri/cri.py), runs the same pod
//! under the runtime handlers `runc` (the oracle) and `moat`; each step's
//! result must be the same, and removing the pod must leave nothing behind.
//!
//! The test's containerd has its own root, state and socket under a
//! temporary directory, and runs in a mount namespace of its own with a
//! tmpfs on /run: its shims' sockets (containerd 1.6 puts them in
//! /run/containerd/s) and every mount it makes stay out of the host's.
//! Pods get a network namespace of their own (namespace mode POD) from a
//! CNI plugin of the test's (tests/engines/cri/cni-plugin.sh) that gives
//! them loopback and a veth pair wholly inside that namespace: containerd
//! 1.6 refuses a POD network namespace without a CNI network, and a NODE
//! one would also put the pod in the host's UTS namespace, hiding the
//! pod's hostname.
//!
//! A second test puts pods on Kubernetes' usual network instead, a CNI
//! bridge (Debian's containernetworking-plugins, on a bridge and subnet of
//! the test's own), and has a pod's container fetch from an HTTP server the
//! test runs on the bridge's address, under runc and under moat.

#[path = "engines/bridge.rs"]
mod bridge;
mod common;
#[path = "engines/host_state.rs"]
mod host_state;
#[path = "engines/http.rs"]
mod http;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use bridge::Bridge;
use common::image::image_archive;
use common::{moat_binary, CgroupParent, Rootfs, TempDir};
use host_state::{namespace_holds, HostState};
use http::{HttpServer, HELLO};

/// The pod's hostname, which each of its containers must report.
const HOSTNAME: &str = "moat-pod-test";

/// The address the test's CNI plugin gives every pod.
const POD_IP: &str = "192.0.2.2";

const BUSYBOX_IMAGE: &str = "registry.moat.test/busybox:1";
const PAUSE_IMAGE: &str = "registry.moat.test/pause:1";

/// How long a pod's state may take to settle (a container to exit, its
/// processes to go) before the test fails; far above any honest run.
const SETTLE: Duration = Duration::from_secs(30);

fn require(path: &str, package: &str) -> PathBuf {
    let found = if path.contains('/') {
        Some(PathBuf::from(path)).filter(|p| p.exists())
    } else {
        std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).map(|d| d.join(path)).find(|p| p.exists()))
    };
    found.unwrap_or_else(|| panic!("this test needs {path}: apt-get install {package} (.ci/run does)"))
}

fn cri_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/engines/cri")
}

/// Polls `probe` every 100 ms until it gives a value; fails the test,
/// saying what it waited for, after SETTLE.
fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + SETTLE;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after {SETTLE:?} waiting for {what}");
        thread::sleep(Duration::from_millis(100));
    }
}

/// The pods' network, as containerd's CNI config gives it.
enum PodNetwork<'a> {
    /// The test's own plugin (cni-plugin.sh): a veth pair wholly inside the
    /// pod's network namespace.
    Enclosed,
    /// Debian's `bridge` and `host-local` plugins, on a bridge of the
    /// test's own in the host's network namespace.
    Bridge(&'a Bridge),
}

/// A containerd of the test's own with the CRI plugin on, stopped (with
/// whatever it left running) when dropped.
struct Containerd {
    child: Child,
    dir: TempDir,
    socket: PathBuf,
    stubs: PathBuf,
}

impl Containerd {
    fn start(network: PodNetwork) -> Containerd {
        let containerd = require("containerd", "containerd");
        require("ctr", "containerd");
        let runc = require("/usr/sbin/runc", "runc");
        require("unshare", "util-linux");
        require("nsenter", "util-linux");
        require("ip", "iproute2");
        let protoc = require("protoc", "protobuf-compiler");
        let python = require("/usr/bin/python3", "python3");
        let probe = Command::new(&python).args(["-c", "import grpc, google.protobuf"]).output().expect("run python3");
        assert!(
            probe.status.success(),
            "the CRI client needs Debian's python3-grpcio and python3-protobuf (.ci/run installs them): {}",
            String::from_utf8_lossy(&probe.stderr)
        );

        let dir = TempDir::new("cri");
        let d = dir.path();
        let stubs = d.join("stubs");
        fs::create_dir(&stubs).expect("mkdir stubs");
        let out = Command::new(protoc)
            .arg("--python_out")
            .arg(&stubs)
            .arg("-I")
            .arg(cri_dir())
            .arg("api.proto")
            .output()
            .expect("run protoc");
        assert!(out.status.success(), "protoc api.proto: {}", String::from_utf8_lossy(&out.stderr));

        for sub in ["cni-bin", "cni-conf", "logs", "shared"] {
            fs::create_dir(d.join(sub)).expect("mkdir");
        }
        let cni_config = match network {
            PodNetwork::Enclosed => {
                for name in ["loopback", "moat-test-net"] {
                    symlink(cri_dir().join("cni-plugin.sh"), d.join("cni-bin").join(name))
                        .expect("link the CNI plugin");
                }
                json!({"cniVersion": "0.4.0", "name": "moat-test", "type": "moat-test-net"})
            }
            PodNetwork::Bridge(bridge) => {
                for name in ["loopback", "bridge", "host-local"] {
                    let plugin = require(&format!("/usr/lib/cni/{name}"), "containernetworking-plugins");
                    symlink(plugin, d.join("cni-bin").join(name)).expect("link the CNI plugin");
                }
                // Not the gateway: the bridge has its address already, and a
                // gateway bridge would turn the host's IP forwarding on. No
                // masquerading (no firewall rule); leases in the test's
                // directory, not /var/lib/cni.
                json!({
                    "cniVersion": "0.4.0", "name": "moat-test-bridge", "type": "bridge",
                    "bridge": bridge.name, "isGateway": false, "ipMasq": false,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": bridge.subnet, "gateway": bridge.gateway}]],
                        "dataDir": d.join("ipam"),
                    },
                })
            }
        };
        fs::write(d.join("cni-conf/10-moat-test.conf"), cni_config.to_string()).expect("write the CNI config");

        let socket = d.join("c.sock");
        let runtime = |name: &str, binary: &Path| {
            format!(
                "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.{name}]\n\
                 runtime_type = \"io.containerd.runc.v2\"\n\
                 [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.{name}.options]\n\
                 BinaryName = \"{binary}\"\nRoot = \"{root}\"\nSystemdCgroup = false\n",
                binary = binary.display(),
                root = d.join("runtime-root").join(name).display(),
            )
        };
        // restrict_oom_score_adj: root here may not lower a process's
        // oom_score_adj, and runc fails on the sandbox's -998 otherwise.
        let config = format!(
            "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\ndisabled_plugins = []\n\
             [grpc]\naddress = \"{socket}\"\n[ttrpc]\naddress = \"{socket}.ttrpc\"\n\
             [plugins.\"io.containerd.internal.v1.opt\"]\npath = \"{d}/opt\"\n\
             [plugins.\"io.containerd.grpc.v1.cri\"]\nsandbox_image = \"{PAUSE_IMAGE}\"\n\
             stream_server_address = \"127.0.0.1\"\nstream_server_port = \"0\"\n\
             enable_selinux = false\nrestrict_oom_score_adj = true\nnetns_mounts_under_state_dir = true\n\
             [plugins.\"io.containerd.grpc.v1.cri\".cni]\nbin_dir = \"{d}/cni-bin\"\nconf_dir = \"{d}/cni-conf\"\n\
             [plugins.\"io.containerd.grpc.v1.cri\".containerd]\nsnapshotter = \"overlayfs\"\n{runc}{moat}",
            d = d.display(),
            socket = socket.display(),
            runc = runtime("runc", &runc),
            moat = runtime("moat", Path::new(moat_binary())),
        );
        fs::write(d.join("config.toml"), config).expect("write config.toml");
        let log = fs::File::create(d.join("containerd.log")).expect("log file");
        let child = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            // libcni caches each pod's CNI result in /var/lib/cni (made if
            // missing): a tmpfs there, or on /var/lib, keeps that off the host.
            .arg(
                r#"mount -t tmpfs tmpfs /run && if [ -d /var/lib/cni ]; then cni=/var/lib/cni; else cni=/var/lib; fi \
                   && mount -t tmpfs tmpfs "$cni" && exec "$0" --config "$1""#,
            )
            .arg(containerd)
            .arg(d.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup"))
            .stderr(log)
            .spawn()
            .expect("start containerd");
        let c = Containerd { child, dir, socket, stubs };
        wait_for("containerd to answer CRI Version", || c.cri("Version", json!({})).ok());
        c
    }

    /// One CRI call: the reply, or the error containerd gave. cri.py
    /// bounds the call; timeout(1) bounds cri.py.
    fn cri(&self, method: &str, request: Value) -> Result<Value, String> {
        let out = Command::new("timeout")
            .arg("60")
            .arg("/usr/bin/python3")
            .arg(cri_dir().join("cri.py"))
            .arg(&self.stubs)
            .arg(&self.socket)
            .arg(method)
            .arg(request.to_string())
            .stdin(Stdio::null())
            .output()
            .expect("run cri.py");
        match out.status.code() {
            Some(0) => serde_json::from_slice(&out.stdout)
                .map_err(|e| format!("{method}: reply is not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout))),
            Some(124) => Err(format!("{method}: cri.py hung and was killed after 60 s")),
            _ => Err(format!("{method} {request}: {}", String::from_utf8_lossy(&out.stderr).trim_end())),
        }
    }

    /// A CRI call that must succeed.
    fn call(&self, method: &str, request: Value) -> Value {
        self.cri(method, request).unwrap_or_else(|e| panic!("CRI {e}\n--- containerd log ---\n{}", self.log_tail()))
    }

    fn log_tail(&self) -> String {
        let log = fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().filter(|l| !l.contains("level=info")).collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    fn import(&self, rootfs: &Path, name: &str, config: &str) {
        let archive = image_archive(rootfs, name, config, self.dir.path());
        let out = Command::new("timeout")
            .arg("60")
            .arg("ctr")
            .arg("-a")
            .arg(&self.socket)
            .args(["-n", "k8s.io", "image", "import"])
            .arg(&archive)
            .output()
            .expect("run ctr");
        assert!(out.status.success(), "ctr image import {name}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Host processes (other than containerd itself) whose command line
    /// names the test's directory: shims, runtimes, moat's Sentry and
    /// Gofers, pod processes.
    fn leftover_processes(&self) -> Vec<(u32, String)> {
        let ours = self.dir.path().display().to_string();
        let containerd = self.child.id();
        let mut found = Vec::new();
        for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let cmdline = fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if pid != containerd && cmdline.contains(&ours) {
                found.push((pid, cmdline));
            }
        }
        found
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // A test that failed halfway leaves pods: stop them as the kubelet would.
        if let Ok(list) = self.cri("ListPodSandbox", json!({})) {
            for pod in list["items"].as_array().into_iter().flatten() {
                let id = json!({"pod_sandbox_id": pod["id"]});
                let _ = self.cri("StopPodSandbox", id.clone());
                let _ = self.cri("RemovePodSandbox", id);
            }
        }
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        for (pid, _) in self.leftover_processes() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::SIGKILL);
        }
    }
}

/// The pod's cgroup parent (as the kubelet's `kubepods/...`), one per
/// handler; removed, with anything left below it, when dropped.
/// The lines of a CRI container log (`TIME STREAM F|P TEXT`), as
/// "STREAM TEXT".
fn log_lines(path: &Path) -> Vec<String> {
    let text = fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|line| {
            let fields: Vec<&str> = line.splitn(4, ' ').collect();
            assert!(fields.len() == 4 && fields[2] == "F", "not a full CRI log line in {}: {line:?}", path.display());
            format!("{} {}", fields[1], fields[3])
        })
        .collect()
}

/// What one pod run showed, step by step, to compare across handlers.
#[derive(Debug, PartialEq)]
struct Observed {
    steps: Vec<(&'static str, String)>,
    /// The kernel release a container of the pod printed: the host's under
    /// runc, moat's own under moat (the one difference expected, by design:
    /// the Sentry is the kernel the app sees).
    release: String,
}

/// Runs the test's pod under `handler`, step by step, as the kubelet
/// would; checks that removing it leaves nothing, and says what it saw.
fn run_pod(c: &Containerd, handler: &str) -> Observed {
    let mut steps = Vec::new();
    let cgroup = CgroupParent::new(&format!("moat-cri-test-{handler}"));
    let logs = c.dir.path().join("logs").join(handler);
    let shared = c.dir.path().join("shared").join(handler);
    fs::create_dir(&logs).expect("mkdir logs");
    fs::create_dir(&shared).expect("mkdir shared");
    let pod = json!({
        "metadata": {"name": format!("pod-{handler}"), "uid": format!("uid-{handler}"), "namespace": "default"},
        "hostname": HOSTNAME,
        "log_directory": logs,
        "linux": {"cgroup_parent": cgroup.path()},
    });
    let reply = c.call("RunPodSandbox", json!({"config": pod, "runtime_handler": handler}));
    let pod_id = reply["pod_sandbox_id"].as_str().expect("pod_sandbox_id").to_owned();
    let status = c.call("PodSandboxStatus", json!({"pod_sandbox_id": pod_id}));
    steps.push(("pod state", status["status"]["state"].to_string()));
    steps.push(("pod ip", status["status"]["network"]["ip"].to_string()));

    let container = |name: &str, script: &str| {
        let config = json!({
            "metadata": {"name": name},
            "image": {"image": BUSYBOX_IMAGE},
            "command": ["/bin/sh", "-c"],
            "args": [script],
            "log_path": format!("{name}.log"),
            "mounts": [{"container_path": "/shared", "host_path": shared}],
        });
        let reply =
            c.call("CreateContainer", json!({"pod_sandbox_id": pod_id, "config": config, "sandbox_config": pod}));
        let id = reply["container_id"].as_str().expect("container_id").to_owned();
        c.call("StartContainer", json!({"container_id": id}));
        id
    };
    let exit_of = |id: &str| {
        wait_for(&format!("container {id} to exit"), || {
            let status = c.call("ContainerStatus", json!({"container_id": id}))["status"].clone();
            (status["state"] == "CONTAINER_EXITED").then(|| format!("{} {}", status["exit_code"], status["reason"]))
        })
    };

    // The writer stays up until it is stopped, and says how it was.
    let writer = container(
        "writer",
        "hostname > /shared/writer-hostname; echo note from the writer > /shared/note; \
         trap 'echo writer got TERM; exit 42' TERM; echo writer up; uname -r; sleep 1000 & wait",
    );
    let writer_log = logs.join("writer.log");
    wait_for("the writer's log to show it is up", || (log_lines(&writer_log).len() >= 2).then_some(()));
    let exec = c.call(
        "ExecSync",
        json!({"container_id": writer, "timeout": 30,
               "cmd": ["/bin/sh", "-c", "echo out; echo err >&2; hostname; cat /etc/hostname; exit 3"]}),
    );
    steps.push(("exec in the writer", format!("{} {} {}", exec["exit_code"], exec["stdout"], exec["stderr"])));

    // The reader, a second container in the pod, sees the writer's file
    // and the same hostname, and exits with a status of its own.
    let reader = container("reader", "cat /shared/note; hostname; cat /shared/writer-hostname; exit 7");
    steps.push(("reader's exit", exit_of(&reader)));
    steps.push(("reader's log", log_lines(&logs.join("reader.log")).join("\n")));
    steps.push(("shared note on the host", fs::read_to_string(shared.join("note")).unwrap_or_default()));

    c.call("StopContainer", json!({"container_id": writer, "timeout": 30}));
    steps.push(("writer's exit after StopContainer", exit_of(&writer)));
    let mut lines = log_lines(&writer_log);
    let release = if lines.len() >= 2 { lines.remove(1) } else { String::new() };
    steps.push(("writer's log", lines.join("\n")));

    for id in [&writer, &reader] {
        c.call("RemoveContainer", json!({"container_id": id}));
    }
    c.call("StopPodSandbox", json!({"pod_sandbox_id": pod_id}));
    c.call("RemovePodSandbox", json!({"pod_sandbox_id": pod_id}));
    let left = c.call("ListContainers", json!({"filter": {"pod_sandbox_id": pod_id}}));
    steps.push(("containers left in the pod", left["containers"].to_string()));
    let left = c.call("ListPodSandbox", json!({}));
    steps.push(("pods left", left["items"].to_string()));

    wait_pod_gone(c, handler, &cgroup);
    Observed { steps, release }
}

/// Waits until nothing of the removed `handler` pod outlives it: processes,
/// runtime state, cgroups; then checks containerd still answers.
fn wait_pod_gone(c: &Containerd, handler: &str, cgroup: &CgroupParent) {
    let runtime_state = c.dir.path().join("runtime-root").join(handler).join("k8s.io");
    wait_for(&format!("the {handler} pod's processes, runtime state and cgroups to go"), || {
        let processes = c.leftover_processes();
        let state: Vec<_> = fs::read_dir(&runtime_state).into_iter().flatten().flatten().map(|e| e.path()).collect();
        let cgroups = cgroup.children();
        if processes.is_empty() && state.is_empty() && cgroups.is_empty() {
            return Some(());
        }
        eprintln!("still there: processes {processes:?}, runtime state {state:?}, cgroups {cgroups:?}");
        None
    });
    c.call("Version", json!({}));
}

#[test]
fn a_pod_runs_through_the_cri_on_moat_as_on_runc() {
    let c = Containerd::start(PodNetwork::Enclosed);
    let rootfs = Rootfs::new();
    c.import(rootfs.path(), BUSYBOX_IMAGE, r#"{"Cmd": ["sh"]}"#);
    // The pod's sandbox ("pause") container only has to stay up until killed.
    c.import(rootfs.path(), PAUSE_IMAGE, r#"{"Entrypoint": ["/bin/sleep", "2147483647"]}"#);

    let expected: Vec<(&str, String)> = vec![
        ("pod state", "\"SANDBOX_READY\"".into()),
        ("pod ip", format!("\"{POD_IP}\"")),
        ("exec in the writer", format!("3 \"out\\n{HOSTNAME}\\n{HOSTNAME}\\n\" \"err\\n\"")),
        ("reader's exit", "7 \"Error\"".into()),
        ("reader's log", format!("stdout note from the writer\nstdout {HOSTNAME}\nstdout {HOSTNAME}")),
        ("shared note on the host", "note from the writer\n".into()),
        ("writer's exit after StopContainer", "42 \"Error\"".into()),
        ("writer's log", "stdout writer up\nstdout writer got TERM".into()),
        ("containers left in the pod", "[]".into()),
        ("pods left", "[]".into()),
    ];
    let host_release = fs::read_to_string("/proc/sys/kernel/osrelease").expect("read osrelease");
    let runc = run_pod(&c, "runc");
    assert_eq!(runc.steps, expected, "the pod under runc (the oracle) did not do what the test expects");
    assert_eq!(runc.release, format!("stdout {}", host_release.trim_end()), "runc's container saw another kernel");
    let moat = run_pod(&c, "moat");
    assert_eq!(moat.steps, runc.steps, "the pod under moat differs from the same pod under runc");
    // moat, not runc, ran the pod's containers: they saw the Sentry's kernel.
    assert!(moat.release.ends_with("-moat"), "the container under moat saw kernel {:?}", moat.release);
}

/// Runs a one-container pod on the CNI bridge under `handler`: the container
/// fetches from `server` on the bridge's address, and sees its pod's address
/// on eth0, which the kernel it runs on holds (the host's, in the pod's
/// network namespace, under runc; the Sentry under moat, where that
/// namespace no longer does). Says what it saw, step by step, and the kernel
/// release the container saw.
fn run_bridged_pod(c: &Containerd, handler: &str, bridge: &Bridge, server: &HttpServer) -> Observed {
    let mut steps = Vec::new();
    let cgroup = CgroupParent::new(&format!("moat-cri-bridge-{handler}"));
    let logs = c.dir.path().join("logs").join(handler);
    fs::create_dir(&logs).expect("mkdir logs");
    let pod = json!({
        "metadata": {"name": format!("pod-{handler}"), "uid": format!("uid-{handler}"), "namespace": "default"},
        "hostname": HOSTNAME,
        "log_directory": logs,
        "linux": {"cgroup_parent": cgroup.path()},
    });
    let reply = c.call("RunPodSandbox", json!({"config": pod, "runtime_handler": handler}));
    let pod_id = reply["pod_sandbox_id"].as_str().expect("pod_sandbox_id").to_owned();
    let status = c.call("PodSandboxStatus", json!({"pod_sandbox_id": pod_id}));
    steps.push(("pod state", status["status"]["state"].to_string()));
    let pod_ip = status["status"]["network"]["ip"].as_str().unwrap_or_default().to_owned();
    let prefix = bridge.subnet.trim_end_matches("0/24");
    steps.push(("pod ip in the bridge's subnet", (pod_ip.starts_with(prefix) && pod_ip != bridge.gateway).to_string()));

    let config = json!({
        "metadata": {"name": "fetcher"},
        "image": {"image": BUSYBOX_IMAGE},
        "command": ["/bin/sh", "-c"],
        "args": ["trap 'echo fetcher got TERM; exit 0' TERM; echo fetcher up; sleep 1000 & wait"],
        "log_path": "fetcher.log",
    });
    let reply = c.call("CreateContainer", json!({"pod_sandbox_id": pod_id, "config": config, "sandbox_config": pod}));
    let fetcher = reply["container_id"].as_str().expect("container_id").to_owned();
    c.call("StartContainer", json!({"container_id": fetcher}));
    let log = logs.join("fetcher.log");
    wait_for("the fetcher's log to show it is up", || (!log_lines(&log).is_empty()).then_some(()));
    let exec = |cmd: &[&str]| c.call("ExecSync", json!({"container_id": fetcher, "timeout": 30, "cmd": cmd}));

    let fetched = exec(&["wget", "-q", "-O", "-", &server.url()]);
    steps.push((
        "fetch from the bridge's address",
        format!("{} {} {}", fetched["exit_code"], fetched["stdout"], fetched["stderr"]),
    ));
    let seen = exec(&["ip", "-o", "-4", "addr", "show", "dev", "eth0"]);
    let sees = !pod_ip.is_empty() && seen["stdout"].as_str().unwrap_or_default().contains(&format!(" {pod_ip}/"));
    steps.push(("the container sees the pod's address on eth0", sees.to_string()));
    let verbose = c.call("ContainerStatus", json!({"container_id": fetcher, "verbose": true}));
    let info: Value = serde_json::from_str(verbose["info"]["info"].as_str().unwrap_or("{}")).unwrap_or_default();
    let holder = match (handler, namespace_holds(&info["pid"].to_string(), &pod_ip)) {
        (_, Err(e)) => e,
        // The same words for different facts: the kernel differs by design.
        ("moat", Ok(held)) => (!held && sees).to_string(),
        (_, Ok(held)) => held.to_string(),
    };
    steps.push(("the container's kernel holds the pod's address", holder));
    let release = exec(&["uname", "-r"])["stdout"].as_str().unwrap_or_default().trim_end().to_owned();

    c.call("StopContainer", json!({"container_id": fetcher, "timeout": 30}));
    steps.push(("fetcher's log", log_lines(&log).join("\n")));
    c.call("RemoveContainer", json!({"container_id": fetcher}));
    c.call("StopPodSandbox", json!({"pod_sandbox_id": pod_id}));
    c.call("RemovePodSandbox", json!({"pod_sandbox_id": pod_id}));
    let left = c.call("ListPodSandbox", json!({}));
    steps.push(("pods left", left["items"].to_string()));
    wait_pod_gone(c, handler, &cgroup);
    Observed { steps, release }
}

/// Kubernetes' usual pod network: a CNI bridge (Debian's `bridge` and
/// `host-local` plugins on a bridge and a 198.18.N.0/24 of the test's own,
/// no masquerading, no forwarding). A pod's container fetches from an HTTP
/// server the test runs on the bridge's address, under runc and under moat,
/// with the same result; the host's network, firewall and forwarding are as
/// the test found them afterwards.
#[test]
fn a_pod_on_a_cni_bridge_reaches_the_host_on_moat_as_on_runc() {
    let host_before = HostState::now();
    {
        let bridge = Bridge::create();
        let server = HttpServer::start(&bridge.gateway, None).unwrap_or_else(|e| panic!("fixture: {e}"));
        let c = Containerd::start(PodNetwork::Bridge(&bridge));
        let rootfs = Rootfs::new();
        c.import(rootfs.path(), BUSYBOX_IMAGE, r#"{"Cmd": ["sh"]}"#);
        c.import(rootfs.path(), PAUSE_IMAGE, r#"{"Entrypoint": ["/bin/sleep", "2147483647"]}"#);

        let expected: Vec<(&str, String)> = vec![
            ("pod state", "\"SANDBOX_READY\"".into()),
            ("pod ip in the bridge's subnet", "true".into()),
            ("fetch from the bridge's address", format!("0 {:?} \"\"", HELLO)),
            ("the container sees the pod's address on eth0", "true".into()),
            ("the container's kernel holds the pod's address", "true".into()),
            ("fetcher's log", "stdout fetcher up\nstdout fetcher got TERM".into()),
            ("pods left", "[]".into()),
        ];
        let runc = run_bridged_pod(&c, "runc", &bridge, &server);
        assert_eq!(runc.steps, expected, "the pod under runc (the oracle) did not do what the test expects");
        assert!(!runc.release.ends_with("-moat"), "runc's container saw moat's kernel {:?}", runc.release);
        let moat = run_bridged_pod(&c, "moat", &bridge, &server);
        assert_eq!(moat.steps, runc.steps, "the pod under moat differs from the same pod under runc");
        assert!(moat.release.ends_with("-moat"), "the container under moat saw kernel {:?}", moat.release);
    }
    // The pods' veths may go just after their namespaces do.
    let deadline = Instant::now() + SETTLE;
    let mut host_after = HostState::now();
    while host_after != host_before && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(200));
        host_after = HostState::now();
    }
    assert!(
        host_after == host_before,
        "the host's network is not as the test found it:\n{}",
        host_before.difference(&host_after)
    );
}
