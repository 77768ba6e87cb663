//! Hostile apps against the Sentry's network stack (issue 12): sizes and
//! flags an app chooses, races between its threads, resource exhaustion and
//! confusing semantics. Each probe runs natively (in a network namespace of
//! its own with only `lo` up) and under `moat do --stats`, watched from the
//! host: same output and status as Linux, no panic, no hang, bounded memory.

mod common;
#[path = "common/host_check.rs"]
mod host_check;

use host_check::{run_native, run_watched, SENTRY_RSS_BOUND_KIB, WATCH_LIMIT};

/// Runs `script` with Debian's python3 natively and under moat: both must
/// print the same and end the same, and the Sentry must stay contained.
fn differential_py(script: &str) {
    let native = run_native(
        &["unshare", "-n", "sh", "-c", "ip link set lo up && exec /usr/bin/python3 -c \"$0\"", script],
        WATCH_LIMIT,
    );
    assert!(
        native.status == 0 && !native.stdout.is_empty(),
        "the native run failed; the probe is broken\n{}",
        native.describe()
    );
    let sandboxed = run_watched(&[], &["/usr/bin/python3", "-c", script], WATCH_LIMIT);
    sandboxed.assert_contained(SENTRY_RSS_BOUND_KIB);
    sandboxed.assert_output(native.status, &native.stdout);
}

/// Connect to itself, listen on a connected socket, accept on a non-listener,
/// shutdown twice, sendto on connected TCP, a listener's shutdown waking a
/// thread blocked in accept, shutdown(SHUT_RD) waking recv, 0-length peeks,
/// UDP datagrams at and past the limits, SO_LINGER's odd values, IPV6_V6ONLY
/// after bind, and accept past 1024 descriptors once RLIMIT_NOFILE allows it.
const SEMANTICS: &str = r#"import ctypes, errno, os, socket, struct, threading, time, select
libc = ctypes.CDLL(None, use_errno=True)
def call(name, *args):
    r = getattr(libc, name)(*args)
    return 'ok %d' % r if r >= 0 else errno.errorcode[ctypes.get_errno()]
def err(f):
    try:
        r = f(); return 'ok %r' % (r,)
    except OSError as e:
        return errno.errorcode.get(e.errno, e.errno)
# self connect
s = socket.socket(); s.bind(('127.0.0.1', 0)); p = s.getsockname()[1]
s.settimeout(5)
print('self connect', err(lambda: s.connect(('127.0.0.1', p))))
s.settimeout(None); s.setblocking(False)
print('self send', err(lambda: s.send(b'hi')), err(lambda: s.recv(10)))
print('listen connected', err(lambda: s.listen(1)))
print('accept nonlistener', err(lambda: s.accept()))
print('sendto connected tcp', err(lambda: s.sendto(b'x', ('127.0.0.1', 9))))
print('shutdown', err(lambda: s.shutdown(1)), err(lambda: s.shutdown(1)), err(lambda: s.shutdown(2)))
s.close()
# accept blocked; shutdown from other thread
l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen(5)
res = []
t = threading.Thread(target=lambda: res.append(err(lambda: l.accept()))); t.start()
time.sleep(0.3)
print('shutdown listener', err(lambda: l.shutdown(socket.SHUT_RDWR)))
t.join(10); print('accept after shutdown', res, t.is_alive())
print('connect after listener shutdown', err(lambda: socket.create_connection(l.getsockname(), timeout=5)))
l.close()
l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen(5)
print('shutdown wr listener', err(lambda: l.shutdown(socket.SHUT_WR)), err(lambda: l.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)))
l.close()
# recv blocked, shutdown RD from another thread
l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen(5)
c = socket.create_connection(l.getsockname()); a, _ = l.accept()
res = []
t = threading.Thread(target=lambda: res.append(err(lambda: c.recv(10)))); t.start(); time.sleep(0.3)
print('shutdown rd', err(lambda: c.shutdown(socket.SHUT_RD))); t.join(10); print('recv after shut rd', res, t.is_alive())
# peek 0 length
a.send(b'abc'); time.sleep(0.1)
print('peek0', err(lambda: c.recv(0, socket.MSG_PEEK)), err(lambda: c.recv(10, socket.MSG_PEEK)))
c.close(); a.close(); l.close()
# udp sizes
for fam, host in ((socket.AF_INET, '127.0.0.1'), (socket.AF_INET6, '::1')):
    u = socket.socket(fam, socket.SOCK_DGRAM); u.bind((host, 0)); u.settimeout(3)
    v = socket.socket(fam, socket.SOCK_DGRAM)
    for n in (65507, 65508, 65527, 65528):
        r = err(lambda: v.sendto(b'y' * n, u.getsockname()))
        g = err(lambda: len(u.recv(70000))) if r.startswith('ok') else '-'
        print('udp', fam.name, n, r, g)
    print('udp peek0', err(lambda: v.sendto(b'zz', u.getsockname())), err(lambda: u.recvfrom(0, socket.MSG_PEEK)[0]), err(lambda: u.recv_into(bytearray(0), 0, socket.MSG_PEEK|socket.MSG_TRUNC)))
    u.close(); v.close()
# linger huge
s = socket.socket()
print('linger', err(lambda: s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 2**31-1))), struct.unpack('ii', s.getsockopt(socket.SOL_SOCKET, socket.SO_LINGER, 8)))
print('linger neg', err(lambda: s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, -5))), struct.unpack('ii', s.getsockopt(socket.SOL_SOCKET, socket.SO_LINGER, 8)))
# v6only after bind
s6 = socket.socket(socket.AF_INET6); s6.bind(('::', 0))
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 5)); s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 0, 7))
print('linger off keeps time', struct.unpack('ii', s.getsockopt(socket.SOL_SOCKET, socket.SO_LINGER, 8)))
print('v6only after bind', err(lambda: s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)), s6.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY))
s6.listen(1); print('v6only after listen', err(lambda: s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)))
s6.close()
u6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); u6.bind(('::', 0))
print('udp v6only after bind', err(lambda: u6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)))
import resource
resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))
l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen(1)
c = socket.create_connection(l.getsockname())
held = [os.open('/dev/null', os.O_RDONLY) for _ in range(1100)]
a, _ = l.accept(); print('accept past 1024 fds', a.fileno() > 1024)
for fd in held: os.close(fd)
print('done')
"#;

/// Sizes and flags the app chooses: iovec counts and lengths past every
/// limit, huge control and name lengths, buffers unmapped part way, vlen huge
/// on sendmmsg and recvmmsg, option lengths huge or negative, MSG_* flags.
const SIZES: &str = r#"import ctypes, errno, mmap, socket, struct
libc = ctypes.CDLL(None, use_errno=True)
libc.sendmsg.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
libc.recvmsg.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
libc.sendmmsg.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
libc.recvmmsg.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_void_p]
libc.setsockopt.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_uint]
libc.getsockopt.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
libc.send.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
libc.recv.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
def r(v):
    return 'ok %d' % v if v >= 0 else errno.errorcode[ctypes.get_errno()]
class iovec(ctypes.Structure):
    _fields_ = [('base', ctypes.c_void_p), ('len', ctypes.c_size_t)]
class msghdr(ctypes.Structure):
    _fields_ = [('name', ctypes.c_void_p), ('namelen', ctypes.c_uint), ('iov', ctypes.c_void_p), ('iovlen', ctypes.c_size_t),
                ('control', ctypes.c_void_p), ('controllen', ctypes.c_size_t), ('flags', ctypes.c_int)]
class mmsghdr(ctypes.Structure):
    _fields_ = [('hdr', msghdr), ('len', ctypes.c_uint)]
buf = ctypes.create_string_buffer(b'hello world', 4096)
def msg(iovs, iovlen=None, ctl=0, ctllen=0, name=0, namelen=0):
    arr = (iovec * max(len(iovs), 1))(*[iovec(ctypes.cast(b, ctypes.c_void_p).value if not isinstance(b, int) else b, n) for b, n in iovs])
    m = msghdr(name, namelen, ctypes.cast(arr, ctypes.c_void_p), len(iovs) if iovlen is None else iovlen, ctl, ctllen, 0)
    m._arr = arr
    return m
for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
    if kind == socket.SOCK_STREAM:
        l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen(1)
        a = socket.create_connection(l.getsockname()); b, _ = l.accept()
    else:
        a = socket.socket(socket.AF_INET, kind); b = socket.socket(socket.AF_INET, kind)
        b.bind(('127.0.0.1', 0)); a.connect(b.getsockname())
    b.setblocking(False); a.setblocking(False)
    k = kind.name
    print(k, 'iovlen huge', r(libc.sendmsg(a.fileno(), ctypes.byref(msg([(buf, 5)], iovlen=1 << 62)), 0)))
    print(k, 'iovlen 1025', r(libc.sendmsg(a.fileno(), ctypes.byref(msg([(buf, 1)] * 1025)), 0)))
    print(k, 'iov sum past isize', r(libc.sendmsg(a.fileno(), ctypes.byref(msg([(buf, 1 << 62), (buf, 1 << 62)])), 0)))
    print(k, 'iov len huge', r(libc.sendmsg(a.fileno(), ctypes.byref(msg([(buf, (1 << 63) + 5)])), 0)))
    print(k, 'controllen huge', r(libc.sendmsg(a.fileno(), ctypes.byref(msg([(buf, 5)], ctl=ctypes.cast(buf, ctypes.c_void_p).value, ctllen=1 << 62)), 0)))
    print(k, 'namelen huge', r(libc.sendmsg(a.fileno(), ctypes.byref(msg([(buf, 5)], name=ctypes.cast(buf, ctypes.c_void_p).value, namelen=0xffffffff)), 0)))
    print(k, 'unmapped iov', r(libc.sendmsg(a.fileno(), ctypes.byref(msg([(buf, 3), (8, 5)])), 0)))
    print(k, 'drain', r(libc.recv(b.fileno(), buf, 4096, 0)), r(libc.recv(b.fileno(), buf, 4096, 0)))
    print(k, 'send part unmapped', r(libc.send(a.fileno(), 16, 5, 0)))
    # buffer that is mapped for one page then unmapped
    mm = mmap.mmap(-1, 8192); base = ctypes.addressof(ctypes.c_char.from_buffer(mm))
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]; 
    ctypes.memmove(base, b'z' * 4096, 4096)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]; libc.mprotect(base + 4096, 4096, 0)
    print(k, 'send straddling', r(libc.send(a.fileno(), base, 8192, 0)))
    print(k, 'recv after straddle', r(libc.recv(b.fileno(), buf, 4096, 0)))
    libc.send(a.fileno(), buf, 100, 0)
    print(k, 'recv into straddling', r(libc.recv(b.fileno(), base + 4096 - 10, 100, 0)), r(libc.recv(b.fileno(), buf, 4096, 0)))
    # Two entries at the end of a page followed by an inaccessible one: the third faults.
    keep = [msg([(buf, 3)]), msg([(buf, 4)])]
    end = base + 4096 - 2 * ctypes.sizeof(mmsghdr)
    for i, m in enumerate(keep):
        ctypes.memmove(end + i * ctypes.sizeof(mmsghdr), ctypes.byref(mmsghdr(m, 0)), ctypes.sizeof(mmsghdr))
    print(k, 'sendmmsg vlen huge', r(libc.sendmmsg(a.fileno(), end, 0xffffffff, 0)))
    arr = (mmsghdr * 4)()
    for i in range(4): arr[i] = mmsghdr(msg([(ctypes.create_string_buffer(100), 100)]), 0)
    print(k, 'recvmmsg vlen huge', r(libc.recvmmsg(b.fileno(), arr, 0xffffffff, 0, None)))
    print(k, 'recvmsg ctl huge', r(libc.sendmsg(a.fileno(), ctypes.byref(msg([(buf, 5)])), 0)), r(libc.recvmsg(b.fileno(), ctypes.byref(msg([(buf, 5)], ctl=ctypes.cast(buf, ctypes.c_void_p).value, ctllen=1 << 62)), 0)))
    for ln in (0xffffffff, 0x80000000, 1 << 20, 3):
        v = ctypes.c_int(1)
        print(k, 'setsockopt len', hex(ln), r(libc.setsockopt(a.fileno(), 1, socket.SO_KEEPALIVE, ctypes.byref(v), ln)))
        gl = ctypes.c_uint(ln)
        print(k, 'getsockopt len', hex(ln), r(libc.getsockopt(a.fileno(), 1, socket.SO_TYPE, ctypes.byref(v), ctypes.byref(gl))), gl.value)
    for fl in (socket.MSG_PEEK | socket.MSG_TRUNC, socket.MSG_WAITALL | socket.MSG_DONTWAIT, socket.MSG_OOB, 0xffff0000, socket.MSG_ERRQUEUE):
        libc.send(a.fileno(), buf, 4, 0)
        print(k, 'flags', hex(fl), r(libc.recv(b.fileno(), buf, 2, fl)), r(libc.recv(b.fileno(), buf, 100, socket.MSG_DONTWAIT)))
    a.close(); b.close()
print('done')
"#;

/// 10,000 connections closed with unread data (orphans that reset), 3,000
/// that end in TIME_WAIT, a flood of non-blocking connects to a listener that
/// never accepts, then idle: no ENOBUFS, ports reused, nothing left behind.
const CHURN: &str = r#"import errno, socket, time, os, resource
def err(f):
    try:
        f(); return 'ok'
    except OSError as e:
        return errno.errorcode.get(e.errno, e.errno)
# orphans: connect, send, close without reading, many times
l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen(64)
fails = {}
for i in range(10000):
    try:
        c = socket.create_connection(l.getsockname()); a, _ = l.accept()
        c.send(b'x' * 100); c.close(); a.close()
    except OSError as e:
        k = errno.errorcode[e.errno]; fails[k] = fails.get(k, 0) + 1
print('orphans', fails)
# The client closes last: its side goes through TIME_WAIT.
fails = {}
for i in range(3000):
    try:
        c = socket.create_connection(l.getsockname()); a, _ = l.accept()
        c.send(b'y' * 100); a.recv(100); a.close(); c.recv(1); c.close()
    except OSError as e:
        k = errno.errorcode[e.errno]; fails[k] = fails.get(k, 0) + 1
print('time wait', fails)
l.close()
# SYN flood: nonblocking connects to a listener that never accepts
l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen(8)
socks = []; res = {}
for i in range(900):
    s = socket.socket(); s.setblocking(False)
    r = err(lambda: s.connect(l.getsockname())); res[r] = res.get(r, 0) + 1; socks.append(s)
print('flood connect', sorted(res))
for s in socks: s.close()
l.close()
t0 = os.times()
time.sleep(3)
t1 = os.times()
print('idle ok')
"#;

/// 2040 UDP sockets each sent three 42,000-byte datagrams: the stack refuses
/// sockets past MAX_SOCKETS (ENOBUFS, where Linux has no such limit) and
/// each socket keeps at most 64 KiB, so the Sentry's memory stays bounded.
const UDP_FILL: &str = r#"import errno, resource, socket
resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('127.0.0.1', 0))
socks, why = [], None
for i in range(2040):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(('127.0.0.1', 0))
    except OSError as e:
        why = errno.errorcode[e.errno]; u.close(); break
    socks.append(u)
data = b'q' * 42000
for u in socks:
    for _ in range(3):
        s.sendto(data, u.getsockname())
print('bound', len(socks), why)
"#;

#[test]
fn confusing_semantics_match_linux() {
    differential_py(SEMANTICS);
}

#[test]
fn hostile_sizes_and_flags_match_linux() {
    differential_py(SIZES);
}

#[test]
fn orphans_time_wait_and_syn_flood_are_freed() {
    differential_py(CHURN);
}

#[test]
fn many_full_udp_sockets_keep_the_sentry_bounded() {
    let run = run_watched(&[], &["/usr/bin/python3", "-c", UDP_FILL], WATCH_LIMIT);
    run.assert_contained(SENTRY_RSS_BOUND_KIB);
    assert!(
        run.output.status == 0 && run.output.stdout.starts_with("bound "),
        "the probe did not get through its sockets\n{}",
        run.describe()
    );
}
