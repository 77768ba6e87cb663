//! Unix domain sockets: Debian's python3 and a C probe run natively and under
//! `moat do`, and must give the same stdout and exit status.

mod common;

use common::native::{differential, probe, scratch};

const PYTHON: &str = "/usr/bin/python3";

fn python(script: &str) {
    differential(&[PYTHON, "-c", script]);
}

#[test]
fn socketpair_stream_send_recv_shutdown() {
    python(SOCKETPAIR);
}

#[test]
fn asyncio_unix_server_and_clients_on_a_path() {
    python(ASYNCIO);
}

#[test]
fn datagram_and_seqpacket_keep_message_boundaries() {
    python(DGRAM);
}

#[test]
fn scm_rights_passes_a_pipe_and_scm_credentials_names_the_sender() {
    python(RIGHTS);
}

#[test]
fn abstract_names_bind_connect_and_autobind() {
    python(ABSTRACT);
}

#[test]
fn so_peercred_and_socket_options() {
    python(PEERCRED);
}

#[test]
fn c_probe_fd_passing_seqpacket_errors() {
    differential(&[probe("unix_sockets").to_str().expect("utf-8 path")]);
}

#[test]
fn python_multiprocessing_manager_forkserver_and_listener() {
    // forkserver re-imports the main module by path, so the script needs a file the
    // sandbox can see.
    let script = scratch("unix-sockets").join("mp.py");
    std::fs::write(&script, MULTIPROCESSING).expect("write script");
    differential(&[PYTHON, script.to_str().expect("utf-8 path")]);
    let _ = std::fs::remove_file(script);
}

const SOCKETPAIR: &str = r#"import os, socket, threading
a, b = socket.socketpair()
print(a.family == socket.AF_UNIX, a.type == socket.SOCK_STREAM)
a.sendall(b'hello world')
print(b.recv(100))
b.send(b'x' * 10)
print(len(a.recv(5)), len(a.recv(100)))
b.setblocking(False)
try:
    b.recv(10)
except BlockingIOError:
    print('EAGAIN')
b.setblocking(True)
a.send(b'peeked')
print(b.recv(3, socket.MSG_PEEK), b.recv(100))
big = os.urandom(1 << 20)
t = threading.Thread(target=a.sendall, args=(big,))
t.start()
got = bytearray()
while len(got) < len(big):
    got += b.recv(65536)
t.join()
print('1 MiB through a blocking writer:', got == big)
with a.makefile('wb') as wf, b.makefile('rb') as rf:
    wf.write(b'line one\nline two\n'); wf.flush()
    print(rf.readline(), rf.readline())
a.shutdown(socket.SHUT_WR)
print('eof', b.recv(10))
b.sendall(b'still open the other way')
print(a.recv(100))
a.close()
print(b.recv(10))
try:
    b.send(b'x')
except BrokenPipeError as e:
    print('EPIPE', e.errno)
print(os.fstat(b.fileno()).st_mode & 0o170000 == 0o140000)"#;

const ASYNCIO: &str = r#"import asyncio, os, shutil, tempfile
d = tempfile.mkdtemp()
path = os.path.join(d, 'srv.sock')
async def handle(r, w):
    while True:
        line = await r.readline()
        if not line:
            break
        if line.startswith(b'BIG '):
            line = await r.readexactly(int(line[4:]))
        w.write(line.upper())
        await w.drain()
    w.close()
    await w.wait_closed()
async def main():
    srv = await asyncio.start_unix_server(handle, path)
    print('sockname', srv.sockets[0].getsockname() == path)
    out = []
    for i in range(3):
        r, w = await asyncio.open_unix_connection(path)
        for j in range(3):
            w.write(f'client {i} line {j}\n'.encode())
            await w.drain()
            out.append((await r.readline()).decode().strip())
        w.close()
        await w.wait_closed()
    print(out)
    big = bytes(range(97, 123)) * 40000
    r, w = await asyncio.open_unix_connection(path)
    w.write(b'BIG %d\n' % len(big) + big)
    await w.drain()
    got = await r.readexactly(len(big))
    print('big', len(got), got == big.upper())
    w.close(); await w.wait_closed()
    srv.close(); await srv.wait_closed()
asyncio.run(main())
shutil.rmtree(d)
print('done')"#;

const DGRAM: &str = r#"import socket
a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
for m in (b'one', b'', b'three' * 10, b'4'):
    a.send(m)
print([b.recv(1000) for _ in range(4)])
a.send(b'truncated message')
data, anc, flags, addr = b.recvmsg(5)
print(data, flags & socket.MSG_TRUNC != 0)
a.send(b'peek')
print(b.recv(100, socket.MSG_PEEK), b.recv(100))
b.setblocking(False)
try:
    b.recv(10)
except BlockingIOError:
    print('EAGAIN')
print(a.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE) == socket.SOCK_DGRAM)
a.close()
try:
    b.send(b'x')
except ConnectionRefusedError:
    print('ECONNREFUSED')
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
print(s.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE) == socket.SOCK_SEQPACKET)
p, q = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
p.send(b'abc'); p.send(b'defgh')
print(q.recv(2), q.recv(100))
p.shutdown(socket.SHUT_WR)
print(q.recv(100))"#;

const RIGHTS: &str = r#"import os, socket, array
a, b = socket.socketpair()
r, w = os.pipe()
os.write(w, b'through the pipe')
socket.send_fds(a, [b'fds'], [r, w])
msg, fds, flags, addr = socket.recv_fds(b, 100, 4)
print(msg, len(fds), flags)
print(os.read(fds[0], 100))
os.write(fds[1], b'and back')
print(os.read(r, 100))
print(all(os.get_inheritable(f) is False for f in fds))
# MSG_CTRUNC: room for one fd only.
socket.send_fds(a, [b'x'], [r, w, r])
msg, anc, flags, addr = b.recvmsg(10, socket.CMSG_LEN(4))
print(msg, flags & socket.MSG_CTRUNC != 0, len(anc), len(anc[0][2]) if anc else 0)
# A fork'd child receives a descriptor from its parent.
pid = os.fork()
if pid == 0:
    msg, fds, _, _ = socket.recv_fds(b, 10, 1)
    os.write(fds[0], b'child says hi')
    os._exit(0)
socket.send_fds(a, [b'!'], [w])
os.waitpid(pid, 0)
print(os.read(r, 100))
# SO_PASSCRED and SCM_CREDENTIALS.
b.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
a.send(b'cred')
msg, anc, flags, addr = b.recvmsg(10, socket.CMSG_SPACE(12))
import struct
pid_, uid, gid = struct.unpack('iII', anc[0][2])
print(msg, anc[0][0] == socket.SOL_SOCKET, anc[0][1] == socket.SCM_CREDENTIALS, pid_ == os.getpid(), uid == os.getuid(), gid == os.getgid())"#;

const ABSTRACT: &str = r#"import os, socket, threading, random
name = '\0moat-test-%d-%d' % (os.getpid(), random.randrange(1 << 30))
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(name)
srv.listen(4)
print(srv.getsockname() == name.encode(), srv.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
seen = []
def serve():
    c, addr = srv.accept()
    seen.append(addr)
    c.sendall(c.recv(100)[::-1])
    c.close()
t = threading.Thread(target=serve); t.start()
cl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
cl.connect(name)
print(cl.getpeername() == name.encode(), repr(cl.getsockname()))
cl.sendall(b'abstract')
t.join()
print('accepted from', repr(seen[0]))
print(cl.recv(100), cl.recv(100))
busy = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    busy.bind(name)
except OSError as e:
    print('EADDRINUSE', e.errno == 98)
srv.close()
try:
    socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).connect(name)
except ConnectionRefusedError:
    print('ECONNREFUSED')
auto = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
auto.bind('')
n = auto.getsockname()
print('autobind', len(n), n[:1] == b'\0')
peer = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
peer.sendto(b'to autobound', n)
print(auto.recvfrom(100))"#;

const PEERCRED: &str = r#"import os, socket, struct, tempfile, shutil
a, b = socket.socketpair()
pid, uid, gid = struct.unpack('iII', b.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
print('socketpair', pid == os.getpid(), uid == os.geteuid(), gid == os.getegid())
d = tempfile.mkdtemp()
path = os.path.join(d, 's')
srv = socket.socket(socket.AF_UNIX)
srv.bind(path); srv.listen(1)
child = os.fork()
if child == 0:
    c = socket.socket(socket.AF_UNIX)
    c.connect(path)
    pid, _, _ = struct.unpack('iII', c.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
    c.sendall(b'server is my parent: %d' % (pid == os.getppid()))
    c.close()
    os._exit(0)
conn, _ = srv.accept()
pid, _, _ = struct.unpack('iII', conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
print('peer is the child', pid == child)
print(conn.recv(100))
os.waitpid(child, 0)
print(conn.recv(100))
for opt in (socket.SO_REUSEADDR, socket.SO_KEEPALIVE):
    conn.setsockopt(socket.SOL_SOCKET, opt, 1)
    print(opt, conn.getsockopt(socket.SOL_SOCKET, opt))
conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 5))
print(struct.unpack('ii', conn.getsockopt(socket.SOL_SOCKET, socket.SO_LINGER, 8)))
conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
print(conn.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF), conn.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))
print(conn.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN) == socket.AF_UNIX, srv.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
srv.close(); conn.close()
shutil.rmtree(d)"#;

const MULTIPROCESSING: &str = r#"import multiprocessing as mp
def sq(x):
    return x * x
if __name__ == '__main__':
    with mp.Manager() as m:
        d = m.dict(); l = m.list(range(5))
        d['a'] = 1; l.append(9)
        print(dict(d), list(l))
    ctx = mp.get_context('forkserver')
    with ctx.Pool(2) as p:
        print(p.map(sq, range(10)))
    from multiprocessing.connection import Listener, Client
    import threading
    with Listener(family='AF_UNIX', authkey=b'k') as lst:
        def cl():
            with Client(lst.address, family='AF_UNIX', authkey=b'k') as c:
                c.send(['hello', 42])
        t = threading.Thread(target=cl); t.start()
        with lst.accept() as conn:
            print(conn.recv())
        t.join()"#;
