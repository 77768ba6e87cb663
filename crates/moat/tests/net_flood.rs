//! A SYN flood from the wire against a container in the `sandbox` network
//! mode (issue 12, Done-when 4): the peer's namespace sends tens of
//! thousands of SYNs with spoofed sources to a listener in the container,
//! and afterwards the Sentry is alive (the listener answers a real
//! connection and the container ends with the app's status), its memory
//! grew no more than the stack's bounds allow, and the half-open
//! connections the flood left are freed (the container's /proc/net/tcp
//! shows them going away, as Linux drops unanswered SYN-ACKs' requests).
//!
//! The two namespaces and their veth are the test's own (common/netns.rs);
//! the flood never leaves them.

mod common;
#[path = "common/netns.rs"]
mod netns;

use std::fs;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::oci::{busybox_bundle, Runtime};
use common::{unique_name, Rootfs, TempDir};
use netns::Pair;
use serde_json::json;

/// The flooded listener's port, and the port of the container's control
/// listener, which the flood leaves alone.
const PORT: u16 = 8080;
const CONTROL: u16 = 8081;
/// How many SYNs the flood sends.
const SYNS: u32 = 20_000;
/// The app's exit status when told to end.
const APP_STATUS: i32 = 42;

/// The container's app: a listener on PORT (backlog 64) that answers each
/// connection with "pong", and a control listener on CONTROL that answers
/// `tcp` with the container's /proc/net/tcp and `exit` by ending with
/// APP_STATUS.
const APP: &str = r#"import select, socket, sys
l = socket.socket(); l.bind(('0.0.0.0', 8080)); l.listen(64)
c = socket.socket(); c.bind(('0.0.0.0', 8081)); c.listen(4)
print('listening', flush=True)
while True:
    ready, _, _ = select.select([l, c], [], [])
    if l in ready:
        a, _ = l.accept(); a.sendall(b'pong'); a.close()
    if c in ready:
        a, _ = c.accept(); cmd = a.recv(16)
        if cmd == b'tcp':
            a.sendall(open('/proc/net/tcp', 'rb').read())
        elif cmd == b'exit':
            a.close(); sys.exit(42)
        a.close()
"#;

/// SYNs from the peer's namespace to DST:PORT through a raw socket, every
/// one from a random port, a quarter from the peer's own address (its
/// kernel resets the SYN-ACKs), a quarter from absent hosts on the link
/// (nobody answers the Sentry's ARP for them) and half from addresses
/// beyond the gateway (the peer, which does not forward, drops the SYN-ACKs).
const FLOOD: &str = r#"import random, socket, struct, sys
dst, port, peer, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
net = '.'.join(peer.split('.')[:3])
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
def csum(b):
    t = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while t >> 16:
        t = (t & 0xffff) + (t >> 16)
    return ~t & 0xffff
rng = random.Random(12)
d = socket.inet_aton(dst)
for i in range(count):
    src = (peer, '%s.%d' % (net, 100 + i % 100), '203.0.113.%d' % rng.randrange(1, 255))[min(i % 4, 2)]
    sa = socket.inet_aton(src)
    tcp = struct.pack('!HHIIBBHHH', rng.randrange(1024, 65535), port, rng.getrandbits(32), 0, 5 << 4, 0x02, 64240, 0, 0)
    c = csum(sa + d + struct.pack('!BBH', 0, 6, len(tcp)) + tcp)
    tcp = tcp[:16] + struct.pack('!H', c) + tcp[18:]
    s.sendto(struct.pack('!BBHHHBBH4s4s', 0x45, 0, 0, i & 0xffff, 0, 64, 6, 0, sa, d) + tcp, (dst, 0))
print('sent', count)
"#;

/// Connects from the peer's namespace to ADDR:PORT, sends argv[3] (if
/// any) and prints what comes back until the other end closes.
const CLIENT: &str = r#"import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
if len(sys.argv) > 3:
    c.sendall(sys.argv[3].encode())
out = b''
while True:
    d = c.recv(65536)
    if not d:
        break
    out += d
sys.stdout.write(out.decode())
"#;

/// A container deleted (with --force) and its `run` reaped when the test
/// ends, however it ends.
struct Container {
    rt: Runtime,
    id: String,
    run: Option<Child>,
}

impl Drop for Container {
    fn drop(&mut self) {
        if let Some(mut run) = self.run.take() {
            let _ = run.kill();
            let _ = run.wait();
        }
        let _ = self.rt.run(&["delete", "--force", &self.id]);
    }
}

/// Runs python3 with `script` and `args` in the peer's namespace.
fn peer_python(pair: &Pair, script: &str, args: &[&str]) -> std::process::Output {
    Command::new("timeout")
        .args(["60", "ip", "netns", "exec", &pair.peer, "python3", "-c", script])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run python3 in the peer's namespace")
}

/// What the container's control listener answers `cmd` with, or None if it
/// cannot be reached.
fn ask(pair: &Pair, cmd: &str) -> Option<String> {
    let out = peer_python(pair, CLIENT, &[&pair.addr(2), &CONTROL.to_string(), cmd]);
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The connections to local port PORT in /proc/net/tcp's `text` that are
/// in SYN_RECV (state 03): half-open, waiting for the client's ACK.
fn half_open(text: &str) -> usize {
    let local = format!(":{PORT:04X}");
    text.lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && f[1].ends_with(&local) && f[3] == "03"
        })
        .count()
}

/// The peak resident memory (VmHWM) of host process `pid`, in KiB.
fn peak_rss_kib(pid: i64) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("read the sandbox's /proc status");
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM in /proc/PID/status");
    line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("VmHWM in KiB")
}

/// How much the Sentry's memory may grow under a SYN flood, from the
/// stack's bounds (crates/sentry/src/net): its link's queue of at most 512
/// frames of at most 64 KiB + 18 bytes (ether.rs's RX_QUEUE and MAX_FRAME),
/// and a listener's pools, MAX_BACKLOG smoltcp sockets on each of `lo` and
/// eth0, with 64 KiB each way (mod.rs's TCP_BUF) — allocated at listen, but
/// counted in case their pages are first touched by the flood — plus
/// 16 MiB for the allocator's slack. A Sentry that grew past this holds
/// something per SYN.
fn flood_growth_bound_kib() -> u64 {
    let queue = 512 * (65_536 + 18) / 1024;
    let pools = 2 * sentry::net::MAX_BACKLOG as u64 * 2 * 64;
    queue + pools + 16 * 1024
}

#[test]
fn a_syn_flood_from_the_wire_is_survived_and_its_half_open_connections_freed() {
    let rootfs = Rootfs::new();
    // python3 from the host's /usr, read-only (merged /usr: /lib is usr/lib).
    for (link, target) in [("lib", "usr/lib"), ("lib64", "usr/lib64")] {
        std::os::unix::fs::symlink(target, rootfs.host_path(link)).expect("link /lib into the rootfs");
    }
    let pair = Pair::new(0);
    let dir = TempDir::new("net-flood-bundle");
    let rt = Runtime::moat();
    busybox_bundle(rt.root.path(), dir.path(), &rootfs, &["/usr/bin/python3", "-c", APP], |spec| {
        for ns in spec["linux"]["namespaces"].as_array_mut().expect("namespaces") {
            if ns["type"] == "network" {
                ns["path"] = pair.ctr_path().into();
            }
        }
        spec["mounts"]
            .as_array_mut()
            .expect("mounts")
            .push(json!({"destination": "/usr", "type": "bind", "source": "/usr", "options": ["rbind", "ro"]}));
    });
    let out_file = dir.path().join("out");
    let err_file = dir.path().join("err");
    let id = unique_name("net-flood");
    let run = Command::new("timeout")
        .args(["300", &rt.binary, "--root"])
        .arg(rt.root.path())
        .args(["run", "--bundle", dir.path().to_str().expect("utf-8"), &id])
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out_file).expect("output file"))
        .stderr(fs::File::create(&err_file).expect("error file"))
        .spawn()
        .expect("spawn moat run");
    let mut ctr = Container { rt, id, run: Some(run) };
    let logs = || {
        format!(
            "--- app stdout ---\n{}--- moat stderr ---\n{}",
            fs::read_to_string(&out_file).unwrap_or_default(),
            fs::read_to_string(&err_file).unwrap_or_default()
        )
    };

    // Up once its control port answers from the peer.
    let deadline = Instant::now() + Duration::from_secs(60);
    let before = loop {
        if let Some(tcp) = ask(&pair, "tcp") {
            break tcp;
        }
        assert!(Instant::now() < deadline, "the container's listeners never answered the peer\n{}", logs());
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(half_open(&before), 0, "half-open connections before the flood:\n{before}");
    let sandbox = ctr.rt.state(&ctr.id)["pid"].as_i64().expect("the sandbox's pid");
    let rss_before = peak_rss_kib(sandbox);

    let flood = peer_python(&pair, FLOOD, &[&pair.addr(2), &PORT.to_string(), &pair.addr(1), &SYNS.to_string()]);
    assert!(flood.status.success(), "the flood did not run: {}", String::from_utf8_lossy(&flood.stderr));

    // The flood's half-open connections are there, within the listener's
    // backlog (its pool on eth0, where the flood comes in), then go away.
    let during = ask(&pair, "tcp").unwrap_or_else(|| panic!("the control listener died in the flood\n{}", logs()));
    let pending = half_open(&during);
    assert!(
        (1..=sentry::net::MAX_BACKLOG).contains(&pending),
        "{pending} half-open connections after the flood (the backlog is {})\n{during}",
        sentry::net::MAX_BACKLOG
    );
    let deadline = Instant::now() + Duration::from_secs(200);
    loop {
        let now = ask(&pair, "tcp").unwrap_or_else(|| panic!("the control listener stopped answering\n{}", logs()));
        if half_open(&now) == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the flood's half-open connections were never freed:\n{now}\n{}", logs());
        std::thread::sleep(Duration::from_secs(1));
    }

    // Alive: the flooded listener takes a real connection.
    let real = peer_python(&pair, CLIENT, &[&pair.addr(2), &PORT.to_string()]);
    assert_eq!(
        String::from_utf8_lossy(&real.stdout),
        "pong",
        "a real connection after the flood: {}\n{}",
        String::from_utf8_lossy(&real.stderr),
        logs()
    );
    let grown = peak_rss_kib(sandbox).saturating_sub(rss_before);
    assert!(
        grown <= flood_growth_bound_kib(),
        "the sandbox's peak memory grew by {grown} KiB in the flood, past the stack's bound of {} KiB",
        flood_growth_bound_kib()
    );

    // The app ends as it chooses, and moat run says so.
    let _ = ask(&pair, "exit");
    let status = ctr.run.take().expect("run").wait().expect("wait for moat run");
    let logs = logs();
    assert_eq!(status.code(), Some(APP_STATUS), "the container's exit status\n{logs}");
    assert!(logs.starts_with("--- app stdout ---\nlistening\n"), "{logs}");
    assert!(!logs.contains("panicked"), "{logs}");
}
