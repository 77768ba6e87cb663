//! Differential tests of netlink route sockets and /proc/net: `ip`, Python's
//! if_nameindex/getaddrinfo and /proc/net read natively (in a network namespace
//! of their own with only `lo` up) and under `moat do` must print the same.

mod common;

use std::process::Command;

use common::native::{moat, run};

/// Runs `sh -c script` natively in a fresh network namespace with `lo` up and
/// under `moat do`; returns (native stdout, moat stdout) after checking both
/// succeeded and the Sentry did not panic.
fn both(script: &str) -> (String, String) {
    let native = run(Command::new("timeout").args([
        "120",
        "unshare",
        "-n",
        "sh",
        "-c",
        "ip link set lo up && exec sh -c \"$0\"",
        script,
    ]));
    let sandboxed = run(Command::new("timeout").args(["120", moat(), "do", "--", "/bin/sh", "-c", script]));
    let stderr = String::from_utf8_lossy(&sandboxed.stderr);
    assert!(native.status.success(), "native run failed: {native:?}");
    assert!(!native.stdout.is_empty(), "native run printed nothing; the case is broken");
    assert!(!stderr.contains("panicked"), "the Sentry panicked:\n{stderr}");
    assert_eq!(native.status.code(), sandboxed.status.code(), "exit status differs; moat stderr:\n{stderr}");
    (String::from_utf8_lossy(&native.stdout).into_owned(), String::from_utf8_lossy(&sandboxed.stdout).into_owned())
}

fn differential(script: &str) {
    let (native, sandboxed) = both(script);
    assert_eq!(native, sandboxed, "moat differs from native for {script}");
}

/// `ip -6 addr` is left out: for an IPv6 link dump (no IFLA_TXQLEN) `ip` asks
/// SIOCGIFTXQLEN of an AF_INET socket, an ioctl internet sockets lack (issue 12).
#[test]
fn ip_shows_the_loopback_interface_as_linux_does() {
    differential("ip addr; ip -d addr; ip -4 addr; ip link; ip -d link show lo; ip link show dev lo; ip -6 route");
}

#[test]
fn ip_route_shows_the_local_table() {
    differential(
        "ip route; ip -6 route; ip route show table all; ip -6 route show table all; ip route show table local",
    );
}

#[test]
fn glibc_reads_interfaces_over_netlink() {
    differential(
        r#"exec /usr/bin/python3 -c '
import ctypes, socket
print(socket.if_nameindex())
print(socket.getaddrinfo("localhost", 80))
print(socket.getaddrinfo("localhost", 80, flags=socket.AI_ADDRCONFIG))
print(socket.getaddrinfo("127.0.0.1", 80, flags=socket.AI_ADDRCONFIG))
class ifaddrs(ctypes.Structure):
    pass
ifaddrs._fields_ = [("next", ctypes.POINTER(ifaddrs)), ("name", ctypes.c_char_p), ("flags", ctypes.c_uint),
                    ("addr", ctypes.c_void_p), ("netmask", ctypes.c_void_p), ("broad", ctypes.c_void_p), ("data", ctypes.c_void_p)]
libc = ctypes.CDLL(None)
p = ctypes.POINTER(ifaddrs)()
assert libc.getifaddrs(ctypes.byref(p)) == 0
seen = []
while p:
    family = ctypes.cast(p.contents.addr, ctypes.POINTER(ctypes.c_ushort))[0] if p.contents.addr else None
    seen.append((p.contents.name, hex(p.contents.flags), family))
    p = p.contents.next
print(seen)
'"#,
    );
}

/// The counters of /proc/net/dev vary with what ran; the layout must not.
#[test]
fn proc_net_dev_if_inet6_and_route() {
    let (native, sandboxed) = both("cat /proc/net/dev /proc/net/if_inet6 /proc/net/route");
    let zero = |s: &str| {
        s.lines()
            .map(|l| match l.split_once(':') {
                Some((name, counters)) if name.trim() == "lo" && !l.contains("face") => {
                    let widths: Vec<usize> =
                        counters.split_inclusive(|c: char| c.is_ascii_digit()).map(str::len).collect();
                    format!("{name}:{}", widths.len())
                }
                _ => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(zero(&native), zero(&sandboxed));
    assert!(native.contains("    lo:"), "{native}");
}

/// A listener and a connection show in /proc/net/tcp with Linux's states; the
/// fields that differ by run (slot, inode, pointer, timers) are left out.
#[test]
fn proc_net_tcp_shows_listeners_and_connections() {
    let (native, sandboxed) = both(
        r#"exec /usr/bin/python3 -c '
import socket
s = socket.socket(); s.bind(("127.0.0.1", 8080)); s.listen()
s6 = socket.socket(socket.AF_INET6); s6.bind(("::1", 8081)); s6.listen()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 5353))
c = socket.create_connection(("127.0.0.1", 8080)); a, _ = s.accept()
port = "%04X" % c.getsockname()[1]
for f in ["tcp", "tcp6", "udp", "udp6"]:
    lines = open("/proc/net/" + f).read().splitlines()
    print(f, lines[0].strip())
    rows = sorted(" ".join(l.split()[1:5] + l.split()[7:8]).replace(port, "EPHEMERAL") for l in lines[1:])
    print("\n".join(rows))
'"#,
    );
    assert_eq!(native, sandboxed);
    assert!(native.contains("0100007F:1F90 00000000:0000 0A"), "{native}");
}

/// Hostile requests: each batch of raw bytes is sent on a fresh socket and the
/// answers' (type, flags without ACK_TLVS, errno) must match Linux's, with no panic.
#[test]
fn malformed_netlink_requests_get_linuxs_answers() {
    differential(
        r#"exec /usr/bin/python3 -c '
import socket, struct
def hdr(ln, ty, fl, seq=7):
    return struct.pack("IHHII", ln, ty, fl, seq, 0)
def answers(raw, strict=False):
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK, 0)
    s.bind((0, 0))
    if strict:
        s.setsockopt(270, 12, 1)
    try:
        s.send(raw)
    except OSError as e:
        return "send: " + str(e.errno)
    out = []
    while True:
        try:
            d = s.recv(65536)
        except BlockingIOError:
            break
        off = 0
        while off + 16 <= len(d):
            ln, ty, fl, seq, pid = struct.unpack_from("IHHII", d, off)
            err = struct.unpack_from("i", d, off + 16)[0] if ty in (2, 3) else None
            out.append((ty, fl & ~0x200, seq, pid == s.getsockname()[0], err))
            off += (ln + 3) & ~3
    return out
link = struct.pack("BBHiII", 0, 0, 0, 1, 0, 0)
cases = [
    ("empty", b""),
    ("short header", b"\x10\x00\x00"),
    ("len below header", hdr(8, 18, 5) + bytes(16)),
    ("len past end", hdr(100, 18, 0x301) + bytes(16)),
    ("zero len", hdr(0, 18, 5) + bytes(16)),
    ("no family byte", hdr(16, 18, 0x301)),
    ("not a request", hdr(32, 18, 4) + link),
    ("control type", hdr(24, 15, 5) + bytes(8)),
    ("unknown type", hdr(24, 200, 5) + bytes(8)),
    ("newaddr", hdr(24, 20, 5) + bytes(8)),
    ("getlink short body", hdr(17, 18, 5) + bytes(4)),
    ("getlink index 9", hdr(32, 18, 5) + struct.pack("BBHiII", 0, 0, 0, 9, 0, 0)),
    ("getlink index 0", hdr(32, 18, 5) + bytes(16)),
    ("getlink by name", hdr(40, 18, 5) + bytes(16) + struct.pack("HH", 7, 3) + b"lo\0\0"),
    ("getlink no such name", hdr(40, 18, 5) + bytes(16) + struct.pack("HH", 8, 3) + b"xyz\0"),
    ("attr too short", hdr(36, 18, 5) + bytes(16) + struct.pack("HH", 2, 3)),
    ("attr past end", hdr(40, 18, 5) + bytes(16) + struct.pack("HH", 40, 3) + b"lo\0\0"),
    ("dump with ack", hdr(32, 18, 0x305) + bytes(16)),
    ("neigh dump", hdr(28, 30, 0x301) + bytes(12)),
    ("unaligned pair", hdr(17, 18, 5) + bytes(4) + hdr(32, 18, 5, 8) + link),
    ("garbage", bytes(range(256)) * 3),
]
for name, raw in cases:
    print(name, answers(raw))
print("strict short dump", answers(hdr(17, 18, 0x301) + bytes(4), strict=True))
print("strict route dump", answers(hdr(28, 26, 0x301) + bytes([2]) + bytes(11), strict=True))
s = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 0)
print("dgram ok", s.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE))
for proto in (31, 32, -1):
    try:
        socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, proto).close()
        print(proto, "ok")
    except OSError as e:
        print(proto, e.errno)
try:
    socket.socket(socket.AF_NETLINK, socket.SOCK_STREAM, 0)
except OSError as e:
    print("stream", e.errno)
'"#,
    );
}
