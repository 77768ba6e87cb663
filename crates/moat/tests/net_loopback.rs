//! Differential tests of the Sentry's network stack on loopback: each Python
//! script runs natively (in a network namespace of its own with only `lo` up,
//! as `moat do`'s default network is) and under `moat do`, and must print the
//! same and exit the same. Nothing leaves the machine: every address is loopback.

mod common;

use common::native::differential_in_netns;

/// Runs `script` with Debian's python3 natively and under moat; compares stdout
/// and status, and checks the Sentry did not panic.
fn differential_py(script: &str) {
    differential_in_netns("/usr/bin/python3", &["-c", script]);
}

/// `python3 -m http.server` on 127.0.0.1, fetched with urllib in the same sandbox.
const HTTP_SERVER: &str = r#"import os, subprocess, sys, tempfile, urllib.request
d = tempfile.mkdtemp()
with open(os.path.join(d, 'hello.txt'), 'w') as f:
    f.write('hello from the sandbox\n' * 100)
srv = subprocess.Popen([sys.executable, '-u', '-m', 'http.server', '--bind', '127.0.0.1', '--directory', d, '0'],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
line = srv.stdout.readline()
port = int(line.split(' port ')[1].split()[0])
for i in range(3):
    with urllib.request.urlopen(f'http://127.0.0.1:{port}/hello.txt') as r:
        body = r.read()
        print(r.status, len(body), body[:22])
try:
    urllib.request.urlopen(f'http://127.0.0.1:{port}/missing')
except urllib.error.HTTPError as e:
    print('missing', e.code)
srv.terminate(); srv.wait()
print('done')
"#;

/// An asyncio TCP echo server with 25 concurrent clients, each half-closing.
const ECHO_25: &str = r#"import asyncio
async def handle(r, w):
    while data := await r.read(4096):
        w.write(data); await w.drain()
    w.close()
async def client(port, i):
    r, w = await asyncio.open_connection('127.0.0.1', port)
    msg = (f'client {i} ' * (50 + i * 40)).encode()
    w.write(msg); await w.drain(); w.write_eof()
    got = await r.read()
    w.close()
    return len(got), got == msg
async def main():
    srv = await asyncio.start_server(handle, '127.0.0.1', 0, backlog=100)
    port = srv.sockets[0].getsockname()[1]
    res = await asyncio.gather(*(client(port, i) for i in range(25)))
    print(res)
    srv.close(); await srv.wait_closed()
asyncio.run(main())
"#;

/// UDP echo over 127.0.0.1 and ::1, TCP over ::1, and a dual-stack listener
/// reached over IPv4.
const UDP_AND_V6: &str = r#"import socket, threading
for fam, host in ((socket.AF_INET, '127.0.0.1'), (socket.AF_INET6, '::1')):
    srv = socket.socket(fam, socket.SOCK_DGRAM); srv.bind((host, 0))
    def echo():
        for _ in range(5):
            data, addr = srv.recvfrom(65536); srv.sendto(data.upper(), addr)
    t = threading.Thread(target=echo); t.start()
    c = socket.socket(fam, socket.SOCK_DGRAM)
    for i in range(5):
        c.sendto(b'ping %d' % i * (i + 1), srv.getsockname())
        data, addr = c.recvfrom(65536)
        print(fam.name, data, addr == srv.getsockname())
    t.join(); c.close(); srv.close()
# TCP over ::1, and a v6 dual-stack listener reached over IPv4.
l = socket.socket(socket.AF_INET6, socket.SOCK_STREAM); l.bind(('::1', 0)); l.listen()
c = socket.create_connection(('::1', l.getsockname()[1])); s, peer = l.accept()
c.sendall(b'over v6'); print(s.recv(100), peer[0], s.getsockname()[0] == '::1')
print(l.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY))
c.close(); s.close(); l.close()
d = socket.socket(socket.AF_INET6, socket.SOCK_STREAM); d.bind(('::', 0)); d.listen()
c = socket.create_connection(('127.0.0.1', d.getsockname()[1])); s, peer = d.accept()
print('dual', peer[0], s.getsockname()[0])
c.close(); s.close(); d.close()
"#;

/// Connects to a closed port (blocking and not), then a peer's close: EOF,
/// POLLRDHUP, EPIPE.
const REFUSED_AND_CLOSE: &str = r#"import errno, select, socket
l = socket.socket(); l.bind(('127.0.0.1', 0)); port = l.getsockname()[1]; l.close()
c = socket.socket()
try:
    c.connect(('127.0.0.1', port))
except OSError as e:
    print('blocking', errno.errorcode[e.errno])
c.close()
c = socket.socket(); c.setblocking(False)
print('nonblocking', errno.errorcode[c.connect_ex(('127.0.0.1', port))])
p = select.poll(); p.register(c, select.POLLOUT)
ev = p.poll(10000)
print('polled', bool(ev[0][1] & select.POLLOUT), bool(ev[0][1] & select.POLLERR))
print('SO_ERROR', errno.errorcode[c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)])
print('again', c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))
c.close()
# Peer closes: EOF, POLLIN|POLLRDHUP; writes after the peer is gone give EPIPE.
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); l.bind(('127.0.0.1', 0)); l.listen(1)
c = socket.create_connection(l.getsockname()); s, _ = l.accept()
c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
print('nodelay', c.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY), 'reuse', l.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR))
s.sendall(b'bye'); s.close()
p = select.poll(); p.register(c, select.POLLIN | select.POLLRDHUP); p.poll(10000)
print('recv', c.recv(10), c.recv(10))
try:
    for _ in range(100):
        c.send(b'x' * 1000)
    print('no error')
except OSError as e:
    print('send', errno.errorcode[e.errno])
c.close(); l.close()
"#;

/// Bad socket addresses of every length and family on bind, connect and
/// sendto; bad socket(2), option and call arguments; 2000 sockets bound and
/// closed, and 500 held at once on distinct ports.
const HOSTILE: &str = r#"import ctypes, errno, os, socket, struct
libc = ctypes.CDLL(None, use_errno=True)
def call(name, *args):
    r = getattr(libc, name)(*args)
    return 'ok' if r >= 0 else errno.errorcode[ctypes.get_errno()]
def sin(fam, port=0, ip=b'\x7f\x00\x00\x01'):
    return struct.pack('=H', fam) + struct.pack('!H', port) + ip + b'\0' * 8
def sin6(fam, port=0, ip=b'\0' * 15 + b'\1'):
    return struct.pack('=H', fam) + struct.pack('!H', port) + b'\0' * 4 + ip + b'\0' * 4
cases = []
for fam in (socket.AF_INET, socket.AF_INET6):
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        for name, raw in (('in', sin(socket.AF_INET)), ('in6', sin6(socket.AF_INET6)), ('unix', sin(socket.AF_UNIX)),
                          ('unspec', sin(socket.AF_UNSPEC, ip=b'\0' * 4)), ('bogus', sin(0x7777)), ('big', b'\2\0' + b'\0' * 200)):
            for ln in (0, 1, 2, 8, 15, 16, 23, 24, 27, 28, 128, 129, -1):
                for op in ('bind', 'connect', 'sendto'):
                    s = socket.socket(fam, kind | socket.SOCK_NONBLOCK)
                    buf = ctypes.create_string_buffer(raw, max(len(raw), 256))
                    if op == 'sendto':
                        r = call('sendto', s.fileno(), b'x', 1, 0x4000, buf, ctypes.c_int(ln))
                    else:
                        r = call(op, s.fileno(), buf, ctypes.c_int(ln))
                    cases.append(f'{fam.name} {kind.name} {op} {name} {ln}: {r}')
                    s.close()
print('\n'.join(cases))
for dom, ty, proto in ((2, 1, 17), (2, 2, 6), (2, 5, 0), (10, 4, 0), (2, 1, 300), (2, 1, -1), (2, 0x7fff1, 0), (10, 2, 99)):
    print('socket', dom, ty, proto, call('socket', dom, ty, proto))
print('socketpair', call('socketpair', 2, 1, 0, ctypes.create_string_buffer(8)))
s = socket.socket()
for level, opt in ((6, 1), (0, 1), (41, 26), (1, 2), (6, 999), (1, 999), (999, 1), (0, 999)):
    v = ctypes.c_int(1)
    print('setsockopt', level, opt, call('setsockopt', s.fileno(), level, opt, ctypes.byref(v), 4),
          call('setsockopt', s.fileno(), level, opt, ctypes.byref(v), 2))
print('getsockopt', call('getsockopt', s.fileno(), 1, 3, None, ctypes.byref(ctypes.c_int(-1))))
print('listen unbound', call('listen', s.fileno(), -5), 'again', call('listen', s.fileno(), 1 << 30))
print('recv on listener', call('recv', s.fileno(), ctypes.create_string_buffer(4), 4, 0x40))
print('shutdown', call('shutdown', s.fileno(), 7), call('shutdown', socket.socket().fileno(), 1))
print('accept flags', call('accept4', s.fileno(), None, None, 0x1234))
print('huge recv', call('recv', socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK).fileno(), ctypes.create_string_buffer(4), 1 << 40, 0))
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
print('udp too big', call('sendto', u.fileno(), ctypes.create_string_buffer(70000), 70000, 0, ctypes.create_string_buffer(sin(2, 9), 16), 16))
print('udp port 0', call('sendto', u.fileno(), b'x', 1, 0, ctypes.create_string_buffer(sin(2, 0), 16), 16))
print('udp unreachable', call('sendto', u.fileno(), b'x', 1, 0, ctypes.create_string_buffer(sin(2, 9, b'\x0a\0\0\1'), 16), 16))
s.close()
n = 0
for i in range(2000):
    t = socket.socket(socket.AF_INET6 if i % 2 else socket.AF_INET, socket.SOCK_STREAM if i % 3 else socket.SOCK_DGRAM)
    t.bind(('::1' if i % 2 else '127.0.0.1', 0))
    if i % 3:
        t.listen(1)
    t.close(); n += 1
held = [socket.socket() for _ in range(500)]
for h in held:
    h.bind(('127.0.0.1', 0))
print('sockets', n, len({h.getsockname()[1] for h in held}))
"#;

#[test]
fn http_server_fetched_with_urllib() {
    differential_py(HTTP_SERVER);
}

#[test]
fn asyncio_echo_with_25_concurrent_clients() {
    differential_py(ECHO_25);
}

#[test]
fn udp_echo_and_ipv6_loopback() {
    differential_py(UDP_AND_V6);
}

#[test]
fn closed_port_is_refused_and_peer_close_is_seen() {
    differential_py(REFUSED_AND_CLOSE);
}

#[test]
fn hostile_addresses_and_many_sockets() {
    differential_py(HOSTILE);
}

/// `--stats` counts the TCP connections the stack made and took: one
/// connect and one accept here, on loopback, with nothing over a link.
#[test]
fn stats_count_connections() {
    let script = "import socket\nl = socket.create_server(('127.0.0.1', 0))\n\
                  c = socket.create_connection(l.getsockname())\ns, _ = l.accept()\nprint('ok')";
    let out = std::process::Command::new(common::moat_binary())
        .args(["do", "--stats", "--", "/usr/bin/python3", "-c", script])
        .output()
        .expect("moat do runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n", "{stderr}");
    let line = stderr.lines().find(|l| l.starts_with("moat: stats:")).unwrap_or_else(|| panic!("no stats: {stderr}"));
    for (field, want) in
        [("tcp_connects", "1"), ("tcp_accepts", "1"), ("net_tx_packets", "0"), ("egress_refusals", "0")]
    {
        let got = line.split_whitespace().find_map(|f| f.strip_prefix(&format!("{field}=")));
        assert_eq!(got, Some(want), "{field} in {line}");
    }
}

/// SO_BINDTODEVICE as Linux has it: an interface of the namespace holds the
/// socket (and getsockopt names it), an unknown one is ENODEV, an empty name
/// lets go; a socket held to `lo` still reaches 127.0.0.1.
#[test]
fn bind_to_device() {
    differential_py(
        r#"import socket
l = socket.create_server(('127.0.0.1', 0))
s = socket.socket()
for dev in (b'lo', b'nosuchdev0', b'lo\0junk', b''):
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, dev); print(dev, 'ok')
    except OSError as e:
        print(dev, e.errno)
    print(s.getsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, 16))
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b'lo')
s.connect(l.getsockname()); print('connected')
"#,
    );
}
