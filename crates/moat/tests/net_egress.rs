//! `moat do --network sandbox` and its egress policy end to end: allowed
//! hosts are reached, others refused at once (ECONNREFUSED) with one audit
//! line and no packet on the wire, names are allowed through the Sentry's DNS,
//! a policy replaced on SIGUSR1 keeps an open download and refuses what it
//! no longer allows, and the network moat do makes is gone when it ends.
//!
//! Run as root. Each test makes a network namespace of its own, the "test
//! net", joined to the host by a veth pair addressed from 198.19.N.0/24
//! (RFC 2544's benchmarking space, 198.18.0.0/15), with forwarding on the
//! host end of that pair only: test hosts A and B (an HTTP server each) and
//! a DNS server (dnsmasq) live there. A capture on the host end shows what
//! the sandbox sent. Everything is removed when the test ends, however it
//! ends; no packet leaves this machine. The tests run one at a time: the
//! last one counts the links and tables moat do makes.

mod common;
#[path = "engines/host_state.rs"]
mod host_state;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use common::{moat_binary, TIME_LIMIT};
use host_state::{ip_json, HostState};

const PYTHON: &str = "/usr/bin/python3";
const PORT: u16 = 8000;
/// The file the slow download fetches: far more than the sandbox's socket
/// and the server's buffers hold, so that it is still going when paused.
const BIG: usize = 8 << 20;

/// One test at a time: the cleanup test counts moat do's links and tables.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(out.status.success(), "{program} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The test net: a namespace with hosts A (.2), B (.3) and the DNS server
/// (.4) on its end `v0` of a veth pair whose host end has .1.
struct TestNet {
    ns: String,
    veth: String,
    n: u8,
    dir: PathBuf,
    daemons: Vec<Child>,
}

impl TestNet {
    fn new(tag: u8) -> TestNet {
        let pid = std::process::id();
        let taken = run("ip", &["-4", "-o", "addr", "show"]);
        // A /24 of 198.19.0.0/16 no host address is in (another run's).
        let n = (0..=255u8)
            .map(|i| ((pid as u8).wrapping_mul(7)).wrapping_add(tag).wrapping_add(i))
            .find(|n| !taken.contains(&format!(" 198.19.{n}.")))
            .expect("a free /24 of 198.19.0.0/16");
        let net = TestNet {
            ns: format!("moat-t-egress-{pid}-{tag}"),
            veth: format!("mte{pid:x}{tag}"),
            n,
            dir: common::native::scratch(&format!("egress-{tag}")),
            daemons: Vec::new(),
        };
        run("ip", &["netns", "add", &net.ns]);
        run("ip", &["link", "add", &net.veth, "type", "veth", "peer", "name", "v0", "netns", &net.ns]);
        run("ip", &["addr", "add", &format!("{}/24", net.addr(1)), "dev", &net.veth]);
        run("ip", &["link", "set", &net.veth, "up"]);
        for host in [2, 3, 4] {
            run("ip", &["-n", &net.ns, "addr", "add", &format!("{}/24", net.addr(host)), "dev", "v0"]);
        }
        run("ip", &["-n", &net.ns, "link", "set", "v0", "up"]);
        run("ip", &["-n", &net.ns, "link", "set", "lo", "up"]);
        // Replies from the test hosts are forwarded back to the sandbox's
        // link: forwarding on this link only, gone with it.
        fs::write(format!("/proc/sys/net/ipv4/conf/{}/forwarding", net.veth), "1").expect("enable forwarding");
        net
    }

    fn addr(&self, host: u8) -> String {
        format!("198.19.{}.{host}", self.n)
    }

    fn a(&self) -> String {
        self.addr(2)
    }

    fn b(&self) -> String {
        self.addr(3)
    }

    fn dns(&self) -> String {
        self.addr(4)
    }

    /// `program args` in the test namespace, killed when the test net goes.
    fn daemon(&mut self, program: &str, args: &[&str]) {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns, program])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        self.daemons.push(child);
    }

    /// An HTTP server on `addr`:PORT serving `dir`, answering once this returns.
    fn serve(&mut self, addr: &str, dir: &Path) {
        let dir = dir.to_str().expect("utf-8").to_owned();
        self.daemon(PYTHON, &["-m", "http.server", "--bind", addr, "--directory", &dir, &PORT.to_string()]);
        let deadline = Instant::now() + TIME_LIMIT;
        while std::net::TcpStream::connect((addr, PORT)).is_err() {
            assert!(Instant::now() < deadline, "the test HTTP server on {addr} never answered");
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// dnsmasq on the DNS address: allowed.test is A, other.test is B.
    fn serve_dns(&mut self) {
        let (a, b, dns) = (self.a(), self.b(), self.dns());
        let args = [
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--pid-file=",
            "--no-resolv",
            "--no-hosts",
            &format!("--address=/allowed.test/{a}"),
            &format!("--address=/other.test/{b}"),
            "--port=53",
            &format!("--listen-address={dns}"),
            "--bind-interfaces",
        ];
        self.daemon("dnsmasq", &args);
        let deadline = Instant::now() + TIME_LIMIT;
        loop {
            let answer = Command::new("ip")
                .args(["netns", "exec", &self.ns, PYTHON, "-c", DNS_PROBE, &dns, "allowed.test"])
                .output()
                .expect("run the DNS probe");
            if String::from_utf8_lossy(&answer.stdout).contains(&a) {
                return;
            }
            assert!(Instant::now() < deadline, "dnsmasq never answered on {dns}");
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// A capture of every packet on the host end of the pair, until dropped.
    fn capture(&self) -> Capture {
        let file = self.dir.join(format!("{}.pcap", self.veth));
        let mut child = Command::new("tcpdump")
            // Immediate mode: each packet is written as it comes, none left
            // in the kernel's ring when the capture is stopped.
            .args(["-i", &self.veth, "-n", "--immediate-mode", "-U", "-Z", "root", "-w"])
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run tcpdump (Debian: tcpdump)");
        // tcpdump says it listens once the capture runs.
        let mut stderr = BufReader::new(child.stderr.take().expect("piped"));
        let mut line = String::new();
        while !line.contains("listening on") {
            line.clear();
            let n = stderr.read_line(&mut line).expect("read tcpdump's stderr");
            assert!(n > 0, "tcpdump ended before capturing");
        }
        // Read to its end, so that tcpdump's last words find a reader.
        thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        Capture { child: Some(child), file }
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        for d in &mut self.daemons {
            let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(d.id() as i32), nix::sys::signal::SIGKILL);
            let _ = d.wait();
        }
        // Deleting the namespace deletes v0, and with it the host's end.
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
        let _ = Command::new("ip").args(["link", "del", &self.veth]).stderr(Stdio::null()).status();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

struct Capture {
    child: Option<Child>,
    file: PathBuf,
}

impl Capture {
    /// Ends the capture; the packets that match `filter`, one line each.
    fn packets(&mut self, filter: &str) -> Vec<String> {
        if let Some(mut child) = self.child.take() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::SIGINT);
            let _ = child.wait();
        }
        let out = Command::new("tcpdump").arg("-r").arg(&self.file).args(["-n", filter]).output().expect("tcpdump -r");
        assert!(out.status.success(), "tcpdump -r {}: {}", self.file.display(), String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A `moat do` whose stdout is read line by line as it runs.
struct MoatDo {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr: Receiver<String>,
    seen: Vec<String>,
}

impl MoatDo {
    fn start(args: &[&str]) -> MoatDo {
        let mut child = Command::new(moat_binary())
            .arg("do")
            .args(args)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("LC_ALL", "C")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("start moat do");
        let (tx, lines) = mpsc::channel();
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let (tx, stderr) = mpsc::channel();
        let mut err = child.stderr.take().expect("piped");
        thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut err, &mut text);
            let _ = tx.send(text);
        });
        MoatDo { stdin: child.stdin.take(), child, lines, stderr, seen: Vec::new() }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next line the app prints that starts with `prefix`.
    fn expect(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + TIME_LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if let Some(rest) = line.strip_prefix(prefix) {
                        return rest.trim().to_owned();
                    }
                }
                Err(_) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    let stderr = self.stderr.recv_timeout(Duration::from_secs(5)).unwrap_or_default();
                    panic!("no line {prefix:?} from the sandbox; it printed {:?}; stderr:\n{stderr}", self.seen);
                }
            }
        }
    }

    fn say(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        writeln!(stdin, "{line}").expect("write to the sandbox's stdin");
        stdin.flush().expect("flush");
    }

    fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid() as i32), signal).expect("signal moat do");
    }

    /// Waits for moat do to end; its status (128+N for signal N), and stderr.
    fn finish(mut self) -> (i32, String) {
        drop(self.stdin.take());
        let deadline = Instant::now() + TIME_LIMIT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for moat do") {
                break status;
            }
            assert!(Instant::now() < deadline, "moat do did not end; it printed {:?}", self.seen);
            thread::sleep(Duration::from_millis(20));
        };
        let stderr = self.stderr.recv_timeout(TIME_LIMIT).unwrap_or_default();
        let code = std::os::unix::process::ExitStatusExt::signal(&status)
            .map_or_else(|| status.code().unwrap_or(-1), |s| 128 + s);
        (code, stderr)
    }
}

impl Drop for MoatDo {
    /// A test that fails halfway ends its moat do with SIGTERM, which removes
    /// what it made; SIGKILL (and its cgroup removed here) only if it hangs.
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::SIGTERM);
        let deadline = Instant::now() + TIME_LIMIT;
        while self.child.try_wait().ok().flatten().is_none() {
            if Instant::now() >= deadline {
                let _ = nix::sys::signal::killpg(pid, nix::sys::signal::SIGKILL);
                let _ = self.child.wait();
                remove_cgroups_of(self.child.id());
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// `probe SERVER NAME`: asks SERVER for NAME's A records over UDP and prints
/// `RCODE ADDR...`. In the sandbox the Sentry answers it (the server is no
/// allowed destination); in the test net, dnsmasq does.
const DNS_PROBE: &str = r#"
import socket, struct, sys

def query(server, name):
    q = struct.pack(">HHHHHH", 0x5151, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0" + struct.pack(">HH", 1, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(20)
    s.sendto(q, (server, 53))
    data, _ = s.recvfrom(4096)
    assert data[:2] == q[:2], "another query's answer"
    rcode, answers = data[3] & 0xF, struct.unpack(">H", data[6:8])[0]
    i = 12
    while data[i]:
        i += data[i] + 1
    i += 5
    addrs = []
    for _ in range(answers):
        if data[i] & 0xC0 == 0xC0:
            i += 2
        else:
            while data[i]:
                i += data[i] + 1
            i += 1
        kind, _, _, length = struct.unpack(">HHIH", data[i:i + 10])
        i += 10
        if kind == 1:
            addrs.append(socket.inet_ntoa(data[i:i + 4]))
        i += length
    return rcode, addrs

if __name__ == "__main__":
    rcode, addrs = query(sys.argv[1], sys.argv[2])
    print(rcode, *addrs)
"#;

/// Fetches A's page, then connects to B: `A: BODY`, `B: ERRNO`.
const FETCH: &str = r#"
import errno, socket, sys, urllib.request
a, b, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
print("A:", urllib.request.urlopen(f"http://{a}:{port}/page", timeout=30).read().decode().strip(), flush=True)
s = socket.socket()
try:
    s.connect((b, port))
    print("B: connected", flush=True)
except OSError as e:
    print("B:", errno.errorcode.get(e.errno, e.errno), flush=True)
"#;

/// Resolves names through the DNS server given (the Sentry answers), fetches
/// by name, and connects to B by its address.
const BY_NAME: &str = r#"
import errno, socket, sys, urllib.request
sys.path.insert(0, sys.argv[1])
from dns_probe import query
server, b, port = sys.argv[2], sys.argv[3], int(sys.argv[4])
real = socket.getaddrinfo
def getaddrinfo(host, port, *args, **kwargs):
    if not host.endswith(".test"):
        return real(host, port, *args, **kwargs)
    rcode, addrs = query(server, host)
    if rcode or not addrs:
        raise socket.gaierror(socket.EAI_NONAME, f"{host}: rcode {rcode}")
    return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (addrs[0], port))]
socket.getaddrinfo = getaddrinfo
rcode, addrs = query(server, "allowed.test")
print("allowed.test:", rcode, *addrs, flush=True)
print("fetch:", urllib.request.urlopen(f"http://allowed.test:{port}/page", timeout=30).read().decode().strip(), flush=True)
rcode, addrs = query(server, "other.test")
print("other.test:", rcode, *addrs, flush=True)
s = socket.socket()
try:
    s.connect((b, port))
    print("B: connected", flush=True)
except OSError as e:
    print("B:", errno.errorcode.get(e.errno, e.errno), flush=True)
"#;

/// Starts a download from A and stops reading it; once told (a line on
/// stdin), connects to A again until refused, then reads the download to its
/// end: `downloading`, `new connection: ERRNO`, `download: LENGTH SHA256`.
const SLOW_DOWNLOAD: &str = r#"
import errno, hashlib, socket, sys, time
a, port = sys.argv[1], int(sys.argv[2])
s = socket.create_connection((a, port), timeout=60)
s.sendall(f"GET /big HTTP/1.0\r\nHost: {a}\r\n\r\n".encode())
got = b""
while len(got) < 1 << 20:
    chunk = s.recv(65536)
    if not chunk:
        break
    got += chunk
print("downloading", len(got), flush=True)
sys.stdin.readline()
# The policy is replaced by the outer moat do on SIGUSR1, a moment after the
# test sends it: until then A is still allowed.
for _ in range(600):
    t = socket.socket()
    try:
        t.connect((a, port))
        t.close()
        time.sleep(0.05)
    except OSError as e:
        print("new connection:", errno.errorcode.get(e.errno, e.errno), flush=True)
        break
else:
    print("new connection: never refused", flush=True)
while True:
    chunk = s.recv(1 << 16)
    if not chunk:
        break
    got += chunk
head, _, body = got.partition(b"\r\n\r\n")
print("download:", len(body), hashlib.sha256(body).hexdigest(), flush=True)
"#;

/// The test's scripts, where the sandbox (whose /tmp is its own) sees them.
fn scripts(net: &TestNet) -> PathBuf {
    let dir = net.dir.join("scripts");
    fs::create_dir_all(&dir).expect("mkdir scripts");
    for (name, text) in
        [("dns_probe.py", DNS_PROBE), ("fetch.py", FETCH), ("by_name.py", BY_NAME), ("slow.py", SLOW_DOWNLOAD)]
    {
        fs::write(dir.join(name), text).expect("write a script");
    }
    dir
}

/// Pages on A and B (`page` says which host it is), and A's big file.
fn www(net: &TestNet) -> (PathBuf, PathBuf) {
    let (a, b) = (net.dir.join("www-a"), net.dir.join("www-b"));
    for (dir, name) in [(&a, "A"), (&b, "B")] {
        fs::create_dir_all(dir).expect("mkdir www");
        fs::write(dir.join("page"), format!("host {name}\n")).expect("write page");
    }
    let big: Vec<u8> = (0..BIG).map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0]).collect();
    fs::write(a.join("big"), big).expect("write the big file");
    (a, b)
}

fn audit_lines(path: &Path) -> Vec<serde_json::Value> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("audit line {l:?} is not JSON: {e}")))
        .collect()
}

#[test]
fn an_allowed_host_is_reached_and_another_refused_at_once_with_an_audit_line_and_no_packet() {
    let _serial = serial();
    let mut net = TestNet::new(0);
    let (www_a, www_b) = www(&net);
    net.serve(&net.a(), &www_a);
    net.serve(&net.b(), &www_b);
    let scripts = scripts(&net);
    let audit = net.dir.join("audit.log");
    let mut capture = net.capture();
    let (a, b) = (net.a(), net.b());
    let script = scripts.join("fetch.py");
    let mut moat = MoatDo::start(&[
        "--network",
        "sandbox",
        "--allow",
        &a,
        "--audit-log",
        audit.to_str().expect("utf-8"),
        "--",
        PYTHON,
        script.to_str().expect("utf-8"),
        &a,
        &b,
        &PORT.to_string(),
    ]);
    assert_eq!(moat.expect("A:"), "host A");
    assert_eq!(moat.expect("B:"), "ECONNREFUSED", "a connect to B, which no rule allows");
    let pid = moat.pid();
    let (status, stderr) = moat.finish();
    assert_eq!(status, 0, "moat do: {stderr}");
    assert!(!stderr.contains("\"verdict\""), "with --audit-log, nothing is audited on stderr: {stderr}");

    let lines = audit_lines(&audit);
    assert_eq!(lines.len(), 1, "one audit line, for B: {lines:?}");
    let line = &lines[0];
    assert_eq!(line["sandbox"], format!("do-{pid}"));
    assert_eq!(line["process"], "python3");
    assert!(line["pid"].as_i64().is_some_and(|p| p > 0), "{line}");
    assert_eq!(line["destination"], b.as_str());
    assert_eq!(line["port"], PORT);
    assert_eq!(line["protocol"], "tcp");
    assert_eq!(line["rule"], serde_json::Value::Null, "the default refused it");
    assert_eq!(line["verdict"], "deny");
    assert!(line["time"].as_str().is_some_and(|t| t.ends_with('Z') && t.len() > 20), "{line}");

    assert!(!capture.packets(&format!("dst host {a}")).is_empty(), "the capture saw nothing of A's fetch");
    let to_b = capture.packets(&format!("dst host {b}"));
    assert!(to_b.is_empty(), "packets reached B's wire: {to_b:?}");
}

#[test]
fn names_are_allowed_through_the_sandboxes_dns_and_other_names_and_addresses_refused() {
    let _serial = serial();
    let mut net = TestNet::new(1);
    let (www_a, www_b) = www(&net);
    net.serve(&net.a(), &www_a);
    net.serve(&net.b(), &www_b);
    net.serve_dns();
    let scripts = scripts(&net);
    let audit = net.dir.join("audit.log");
    let mut capture = net.capture();
    let (a, b, dns) = (net.a(), net.b(), net.dns());
    let script = scripts.join("by_name.py");
    let mut moat = MoatDo::start(&[
        "--network",
        "sandbox",
        "--dns",
        &dns,
        "--allow",
        "allowed.test",
        "--audit-log",
        audit.to_str().expect("utf-8"),
        "--",
        PYTHON,
        script.to_str().expect("utf-8"),
        scripts.to_str().expect("utf-8"),
        &dns,
        &b,
        &PORT.to_string(),
    ]);
    assert_eq!(moat.expect("allowed.test:"), format!("0 {a}"), "allowed.test resolves to A");
    assert_eq!(moat.expect("fetch:"), "host A", "A, pinned to allowed.test, is reached by name");
    assert_eq!(moat.expect("other.test:"), "3", "other.test is NXDOMAIN");
    assert_eq!(moat.expect("B:"), "ECONNREFUSED", "other.test's address is refused");
    let (status, stderr) = moat.finish();
    assert_eq!(status, 0, "moat do: {stderr}");

    let lines = audit_lines(&audit);
    let named = lines.iter().filter(|l| l["name"] == "other.test" && l["protocol"] == "dns").count();
    assert_eq!(named, 1, "one audit line for the refused name: {lines:?}");
    let to_b = lines.iter().filter(|l| l["destination"] == b.as_str() && l["port"] == PORT).count();
    assert_eq!(to_b, 1, "one audit line for B's address: {lines:?}");
    assert!(!capture.packets(&format!("dst host {dns} and udp port 53")).is_empty(), "no query reached dnsmasq");
    let packets = capture.packets(&format!("dst host {b}"));
    assert!(packets.is_empty(), "packets reached B's wire: {packets:?}");
}

/// A deny rule by name holds under an open default too: every DNS question
/// goes through the sandbox's DNS while rules name domains, so other.test is
/// NXDOMAIN (and audited) though the resolver itself may be reached, and
/// allowed.test is asked of that resolver as the app asked.
#[test]
fn a_name_denied_under_an_open_default_is_not_resolved() {
    let _serial = serial();
    let mut net = TestNet::new(4);
    net.serve_dns();
    let scripts = scripts(&net);
    let audit = net.dir.join("audit.log");
    let policy = net.dir.join("policy.json");
    fs::write(&policy, r#"{"default": "allow", "deny": ["other.test"]}"#).expect("write the policy");
    let (a, dns) = (net.a(), net.dns());
    let probe = "import sys; sys.path.insert(0, sys.argv[1]); from dns_probe import query\n\
                 for name in ('allowed.test', 'other.test'):\n    rcode, addrs = query(sys.argv[2], name); print(name + ':', rcode, *addrs, flush=True)";
    let mut moat = MoatDo::start(&[
        "--network",
        "sandbox",
        "--egress-policy",
        policy.to_str().expect("utf-8"),
        "--audit-log",
        audit.to_str().expect("utf-8"),
        "--",
        PYTHON,
        "-c",
        probe,
        scripts.to_str().expect("utf-8"),
        &dns,
    ]);
    assert_eq!(moat.expect("allowed.test:"), format!("0 {a}"), "allowed.test resolves through the resolver asked");
    assert_eq!(moat.expect("other.test:"), "3", "other.test is NXDOMAIN");
    let (status, stderr) = moat.finish();
    assert_eq!(status, 0, "moat do: {stderr}");
    let lines = audit_lines(&audit);
    let named = lines.iter().filter(|l| l["name"] == "other.test" && l["rule"] == "other.test").count();
    assert_eq!(named, 1, "one audit line for the denied name, naming its rule: {lines:?}");
}

#[test]
fn a_policy_replaced_on_sigusr1_keeps_a_download_and_refuses_new_connections() {
    let _serial = serial();
    let mut net = TestNet::new(2);
    let (www_a, _) = www(&net);
    net.serve(&net.a(), &www_a);
    let scripts = scripts(&net);
    let a = net.a();
    let policy = net.dir.join("policy.json");
    fs::write(&policy, format!(r#"{{"default": "deny", "allow": ["{a}:{PORT}"]}}"#)).expect("write the policy");
    let script = scripts.join("slow.py");
    let mut moat = MoatDo::start(&[
        "--network",
        "sandbox",
        "--egress-policy",
        policy.to_str().expect("utf-8"),
        "--",
        PYTHON,
        script.to_str().expect("utf-8"),
        &a,
        &PORT.to_string(),
    ]);
    moat.expect("downloading");
    // Replaced whole, so that the outer moat do never reads half a file.
    let next = net.dir.join("policy.json.new");
    fs::write(&next, r#"{"default": "deny", "allow": []}"#).expect("write the new policy");
    fs::rename(&next, &policy).expect("replace the policy");
    moat.signal(nix::sys::signal::Signal::SIGUSR1);
    moat.say("updated");
    assert_eq!(moat.expect("new connection:"), "ECONNREFUSED", "A is no longer allowed");
    let download = moat.expect("download:");
    let sum = run("sha256sum", &[www_a.join("big").to_str().expect("utf-8")]);
    let want = format!("{BIG} {}", sum.split_whitespace().next().expect("a sum"));
    assert_eq!(download, want, "the download that was running is whole");
    let (status, stderr) = moat.finish();
    assert_eq!(status, 0, "moat do: {stderr}");
    assert!(stderr.contains(&format!(r#""destination":"{a}","port":{PORT},"protocol":"tcp","rule":null"#)), "{stderr}");
}

/// moat do's links (`moat-HEX`) and nftables tables (`moat-do-HEX`).
fn made_by_moat_do() -> (Vec<String>, Vec<String>) {
    let links = ip_json(&["link", "show"])
        .iter()
        .filter_map(|l| l["ifname"].as_str().filter(|n| n.starts_with("moat-")).map(str::to_owned))
        .collect();
    let tables = run("nft", &["list", "tables", "ip"])
        .lines()
        .filter_map(|l| l.strip_prefix("table ip moat-do-").map(|hex| format!("moat-do-{hex}")))
        .collect();
    (links, tables)
}

/// The cgroups a killed `moat do` (pid `pid`) left, removed.
fn remove_cgroups_of(pid: u32) {
    let deadline = Instant::now() + TIME_LIMIT;
    for hierarchy in fs::read_dir("/sys/fs/cgroup").into_iter().flatten().flatten() {
        let parent = hierarchy.path().join("moat");
        for entry in fs::read_dir(&parent).into_iter().flatten().flatten() {
            if entry.file_name().to_string_lossy().starts_with(&format!("do-{pid}-")) {
                // Empty once the sandbox's processes, killed with it, are reaped.
                while fs::remove_dir(entry.path()).is_err() && Instant::now() < deadline {
                    thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }
}

#[test]
fn the_network_goes_when_moat_do_ends_by_a_signal_and_when_killed() {
    let _serial = serial();
    let before = HostState::now();
    let (links, tables) = made_by_moat_do();
    let wait_for_stdin = "import sys; print('ready', flush=True); sys.stdin.readline()";
    for signal in [nix::sys::signal::Signal::SIGTERM, nix::sys::signal::Signal::SIGKILL] {
        let mut moat = MoatDo::start(&["--network", "sandbox", "--", PYTHON, "-c", wait_for_stdin]);
        moat.expect("ready");
        let (now_links, now_tables) = made_by_moat_do();
        let new_links: Vec<&String> = now_links.iter().filter(|l| !links.contains(l)).collect();
        let new_tables: Vec<&String> = now_tables.iter().filter(|t| !tables.contains(t)).collect();
        assert_eq!(new_links.len(), 1, "one veth for the sandbox: {now_links:?}");
        assert_eq!(new_tables.len(), 1, "one NAT table for the sandbox: {now_tables:?}");
        assert_eq!(new_tables[0].strip_prefix("moat-do-"), new_links[0].strip_prefix("moat-"), "named alike");
        let forwarding = fs::read_to_string(format!("/proc/sys/net/ipv4/conf/{}/forwarding", new_links[0]));
        assert_eq!(forwarding.expect("the veth's sysctl").trim(), "1", "forwarding on moat do's own veth");
        let pid = moat.pid();
        moat.signal(signal);
        let (status, _) = moat.finish();
        assert_eq!(status, 128 + signal as i32);
        if signal == nix::sys::signal::Signal::SIGTERM {
            // Removed before moat do ends.
            assert_eq!(made_by_moat_do(), (links.clone(), tables.clone()), "left after {signal}");
        } else {
            // The sandbox's namespace, and the veth with it, go once its
            // processes are reaped; the table goes with moat do's socket.
            let deadline = Instant::now() + TIME_LIMIT;
            while made_by_moat_do() != (links.clone(), tables.clone()) {
                assert!(Instant::now() < deadline, "left after SIGKILL: {:?}", made_by_moat_do());
                thread::sleep(Duration::from_millis(50));
            }
            remove_cgroups_of(pid);
        }
    }
    // Nothing left for the next one to trip over.
    let mut moat = MoatDo::start(&["--network", "sandbox", "--", PYTHON, "-c", "print('ran')"]);
    assert_eq!(moat.expect("ran"), "");
    assert_eq!(moat.finish().0, 0);
    let after = HostState::now();
    assert_eq!(before, after, "the host changed:\n{}", before.difference(&after));
}

#[test]
fn egress_flags_without_the_sandbox_network_are_refused() {
    let out = common::run_moat(&["do", "--allow", "192.0.2.1", "--", "/bin/true"]);
    assert_eq!(out.status, 125, "{}", out.describe());
    assert!(out.stderr.contains("apply to --network sandbox"), "{}", out.describe());
    let out = common::run_moat(&["do", "--network", "sandbox", "--allow", "192.0.2.1:0", "--", "/bin/true"]);
    assert_eq!(out.status, 125, "{}", out.describe());
    assert!(out.stderr.contains("ports are numbers"), "{}", out.describe());
    let out =
        common::run_moat(&["do", "--network", "sandbox", "--egress-policy", "/nonexistent.json", "--", "/bin/true"]);
    assert_eq!(out.status, 125, "{}", out.describe());
    assert!(out.stderr.contains("egress policy /nonexistent.json: cannot read it"), "{}", out.describe());
}

/// A container's network namespace joined to the test net: its `eth0` has
/// 198.18.N.2/24 and a default route through the test net's end `v1`
/// (198.18.N.1/24), which reaches A and B, addresses of the test net itself.
struct ContainerNs {
    ns: String,
}

impl ContainerNs {
    fn new(net: &TestNet) -> ContainerNs {
        let c = ContainerNs { ns: format!("{}-ctr", net.ns) };
        run("ip", &["netns", "add", &c.ns]);
        run("ip", &["-n", &net.ns, "link", "add", "v1", "type", "veth", "peer", "name", "eth0", "netns", &c.ns]);
        let (gateway, own) = (format!("198.18.{}.1", net.n), format!("198.18.{}.2", net.n));
        run("ip", &["-n", &net.ns, "addr", "add", &format!("{gateway}/24"), "dev", "v1"]);
        run("ip", &["-n", &net.ns, "link", "set", "v1", "up"]);
        run("ip", &["-n", &c.ns, "addr", "add", &format!("{own}/24"), "dev", "eth0"]);
        run("ip", &["-n", &c.ns, "link", "set", "eth0", "up"]);
        run("ip", &["-n", &c.ns, "route", "add", "default", "via", &gateway]);
        c
    }

    fn path(&self) -> String {
        format!("/var/run/netns/{}", self.ns)
    }
}

impl Drop for ContainerNs {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

/// `moat --root ROOT ARGS...` (global flags first), bounded by timeout(1).
fn moat_oci(root: &Path, args: &[&str]) -> std::process::Output {
    Command::new("timeout")
        .arg("60")
        .arg(moat_binary())
        .arg("--root")
        .arg(root)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run moat")
}

/// `moat --root ROOT FLAGS... create --bundle BUNDLE ID` with its output
/// (and the container's stdio) going to `console`: a pipe would stay open,
/// held by the container, after create returns. Whether it succeeded.
fn create(root: &Path, flags: &[&str], bundle: &Path, id: &str, console: &Path) -> bool {
    let file = fs::File::create(console).expect("console file");
    Command::new("timeout")
        .arg("60")
        .arg(moat_binary())
        .arg("--root")
        .arg(root)
        .args(flags)
        .args(["create", "--bundle", bundle.to_str().expect("utf-8"), id])
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("dup"))
        .stderr(file)
        .status()
        .expect("run moat create")
        .success()
}

/// A container deleted when the test ends, however it ends.
struct Container<'a> {
    root: &'a Path,
    id: String,
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        let _ = moat_oci(self.root, &["delete", "--force", &self.id]);
    }
}

#[test]
fn a_containers_annotations_and_the_runtimes_flags_make_its_policy_and_update_replaces_it() {
    let _serial = serial();
    let mut net = TestNet::new(3);
    let (www_a, www_b) = www(&net);
    net.serve(&net.a(), &www_a);
    net.serve(&net.b(), &www_b);
    let ctr = ContainerNs::new(&net);
    let (a, b) = (net.a(), net.b());
    let rootfs = common::Rootfs::new();
    let root = net.dir.join("state");
    let bundle = net.dir.join("bundle");
    let audit = net.dir.join("audit.log");
    common::oci::busybox_bundle(&root, &bundle, &rootfs, &["/bin/sh", "-c", "sleep 1000"], |spec| {
        for ns in spec["linux"]["namespaces"].as_array_mut().expect("namespaces") {
            if ns["type"] == "network" {
                ns["path"] = ctr.path().into();
            }
        }
        spec["annotations"] = serde_json::json!({"dev.moat.egress.allow": format!("{a}:{PORT} 192.0.2.0/24")});
    });
    let id = common::unique_name("egress");
    let console = net.dir.join("console");
    let flags = ["--egress-default", "deny", "--audit-log", audit.to_str().expect("utf-8")];
    let created = create(&root, &flags, &bundle, &id, &console);
    let container = Container { root: &root, id: id.clone() };
    assert!(created, "create: {}", fs::read_to_string(&console).unwrap_or_default());
    let started = moat_oci(&root, &["start", &id]);
    assert!(started.status.success(), "start: {}", String::from_utf8_lossy(&started.stderr));
    let fetch = |host: &str| {
        let out = moat_oci(&root, &["exec", &id, "/bin/wget", "-q", "-O", "-", &format!("http://{host}:{PORT}/page")]);
        (String::from_utf8_lossy(&out.stdout).trim().to_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    };

    assert_eq!(fetch(&a).0, "host A", "the annotation allows A");
    let (page, error) = fetch(&b);
    assert!(page.is_empty() && error.contains("Connection refused"), "B, by the runtime's default: {page} {error}");
    let lines = audit_lines(&audit);
    assert_eq!(lines.len(), 1, "one audit line, for B: {lines:?}");
    assert_eq!((lines[0]["sandbox"].as_str(), lines[0]["destination"].as_str()), (Some(id.as_str()), Some(b.as_str())));
    // `events --stats` has the network's counters: eth0 carried the fetch,
    // the stack made connections, and refused one.
    let events = moat_oci(&root, &["events", "--stats", &id]);
    let record: serde_json::Value = serde_json::from_slice(&events.stdout).unwrap_or_else(|e| {
        panic!(
            "events --stats: {e}: {}{}",
            String::from_utf8_lossy(&events.stdout),
            String::from_utf8_lossy(&events.stderr)
        )
    });
    let data = &record["data"];
    let eth0 = &data["network_interfaces"][0];
    assert_eq!(eth0["name"], "eth0", "events --stats: {record}");
    for counter in ["rx_packets", "rx_bytes", "tx_packets", "tx_bytes"] {
        assert!(eth0[counter].as_u64().is_some_and(|n| n > 0), "{counter} after a fetch: {record}");
    }
    assert!(data["network"]["tcp_connects"].as_u64().is_some_and(|n| n >= 1), "tcp_connects: {record}");
    assert_eq!(data["network"]["egress_refusals"], 1, "one refusal so far: {record}");

    // A new policy from `moat update`: B only. Open connections would stay;
    // new ones to A are refused, B's allowed, and the default stays deny.
    let policy = net.dir.join("policy.json");
    fs::write(&policy, format!(r#"{{"allow": ["{b}"]}}"#)).expect("write the policy");
    let updated = moat_oci(&root, &["update", "--egress-policy", policy.to_str().expect("utf-8"), &id]);
    assert!(updated.status.success(), "update: {}", String::from_utf8_lossy(&updated.stderr));
    let (page, error) = fetch(&a);
    assert!(page.is_empty() && error.contains("Connection refused"), "A, after the update: {page} {error}");
    assert_eq!(fetch(&b).0, "host B", "B, allowed by the update");
    let lines = audit_lines(&audit);
    assert_eq!(lines.len(), 2, "a second audit line, for A: {lines:?}");
    assert_eq!(lines[1]["destination"], a.as_str());

    fs::write(&policy, r#"{"allow": ["a..b"]}"#).expect("write a bad policy");
    let refused = moat_oci(&root, &["update", "--egress-policy", policy.to_str().expect("utf-8"), &id]);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && said.contains("allow rule 1: \"a..b\""), "a bad policy: {said}");
    assert_eq!(fetch(&b).0, "host B", "a refused update leaves the policy as it was");
    drop(container);
}

#[test]
fn a_bad_annotation_fails_create_with_its_name() {
    let dir = common::TempDir::new("egress-bad");
    let rootfs = common::Rootfs::new();
    let root = dir.path().join("state");
    let bundle = dir.path().join("bundle");
    common::oci::busybox_bundle(&root, &bundle, &rootfs, &["/bin/true"], |spec| {
        spec["annotations"] = serde_json::json!({"dev.moat.egress.allow": "10.0.0.0/8 10.0.0.0/33"});
    });
    let id = common::unique_name("egress-bad");
    let console = dir.path().join("console");
    let created = create(&root, &[], &bundle, &id, &console);
    let _container = Container { root: &root, id };
    let said = fs::read_to_string(&console).unwrap_or_default();
    assert!(!created, "create took a bad rule: {said}");
    assert!(said.contains("annotation dev.moat.egress.allow: allow rule 2: \"10.0.0.0/33\""), "{said}");
}
