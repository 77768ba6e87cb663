//! Real network programs on the Sentry's loopback, against native Linux:
//! curl fetching from `python3 -m http.server`, a Node `http` server and
//! client, and an asyncio echo server with 50 concurrent clients. Each
//! script runs natively (in a network namespace of its own with only `lo`
//! up, as `moat do`'s default network is) and under `moat do`, and must
//! print the same and exit the same. Every address is loopback.

mod common;

use std::path::Path;

use common::native::differential_in_netns;

/// Runs the shell `script` natively and under moat; compares stdout and
/// status, and checks that the Sentry did not panic.
fn differential_sh(script: &str) {
    differential_in_netns("/bin/sh", &["-c", script]);
}

fn require(program: &str, package: &str) {
    assert!(Path::new(program).exists(), "this test needs {program}: apt-get install {package}");
}

/// curl (Debian's) fetches a file and a 404 from `python3 -m http.server`.
#[test]
fn curl_fetches_from_python_http_server() {
    require("/usr/bin/curl", "curl");
    require("/usr/bin/python3", "python3");
    differential_sh(
        r#"set -e
d=$(mktemp -d)
seq 1 20000 > "$d/numbers.txt"
/usr/bin/python3 -u -m http.server --bind 127.0.0.1 --directory "$d" 0 > "$d/log" 2>/dev/null &
server=$!
while ! grep -q ' port ' "$d/log" 2>/dev/null; do sleep 0.1; done
port=$(sed -n 's/.* port \([0-9]*\).*/\1/p' "$d/log")
curl -sS "http://127.0.0.1:$port/numbers.txt" | md5sum
curl -sS -o /dev/null -w '%{http_code}\n' "http://127.0.0.1:$port/missing"
curl -sS -o /dev/null -w '%{http_code} %{size_download}\n' "http://127.0.0.1:$port/numbers.txt"
kill $server; wait $server 2>/dev/null || true
echo done"#,
    );
}

/// A Node `http` server and client in one program.
#[test]
fn node_http_server_and_client() {
    require("/usr/bin/node", "nodejs");
    differential_sh(
        r#"/usr/bin/node -e '
const http = require("http");
const server = http.createServer((req, res) => {
  res.writeHead(req.url === "/hello" ? 200 : 404, {"content-type": "text/plain"});
  res.end("hello " + req.url + " " + "x".repeat(100000));
});
server.listen(0, "127.0.0.1", async () => {
  const port = server.address().port;
  for (const path of ["/hello", "/other", "/hello"]) {
    await new Promise((done) => http.get({host: "127.0.0.1", port, path}, (res) => {
      let n = 0;
      res.on("data", (c) => n += c.length);
      res.on("end", () => { console.log(path, res.statusCode, n); done(); });
    }));
  }
  server.close(() => console.log("closed"));
});
'"#,
    );
}

/// An asyncio echo server with 50 concurrent clients, each half-closing.
#[test]
fn asyncio_echo_with_50_clients() {
    require("/usr/bin/python3", "python3");
    differential_sh(
        r#"/usr/bin/python3 -c '
import asyncio
async def handle(r, w):
    while data := await r.read(4096):
        w.write(data); await w.drain()
    w.close()
async def client(port, i):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    msg = (f"client {i} " * (20 + i * 30)).encode()
    w.write(msg); await w.drain(); w.write_eof()
    got = await r.read()
    w.close()
    return got == msg
async def main():
    srv = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=128)
    port = srv.sockets[0].getsockname()[1]
    res = await asyncio.gather(*(client(port, i) for i in range(50)))
    print(len(res), all(res))
    srv.close(); await srv.wait_closed()
asyncio.run(main())
'"#,
    );
}

/// The interface ioctls glibc and older tools use on any socket
/// (if_nametoindex, if_indextoname, SIOCGIF{FLAGS,MTU,TXQLEN,HWADDR,CONF}),
/// the address ones on AF_INET sockets only, and `ip -6 addr`, which asks
/// the queue length that way.
#[test]
fn interface_ioctls_answer_as_linux_does() {
    require("/usr/bin/python3", "python3");
    differential_sh(&format!("/usr/bin/python3 -c '{IFREQ_SCRIPT}' && ip -6 addr"));
}

const IFREQ_SCRIPT: &str = r#"import socket, fcntl, struct, array
print(socket.if_nametoindex("lo"), socket.if_indextoname(1))
try:
    socket.if_nametoindex("eth9")
except OSError as e:
    print("eth9", e.errno)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
for sock in (s, u):
    print("family", sock.family)
    ifr = struct.pack("16s24x", b"lo")
    print("flags", hex(struct.unpack("16xH22x", fcntl.ioctl(sock, 0x8913, ifr))[0]))
    print("mtu", struct.unpack("16xI20x", fcntl.ioctl(sock, 0x8921, ifr))[0])
    print("txqlen", struct.unpack("16xI20x", fcntl.ioctl(sock, 0x8942, ifr))[0])
    for name, req in (("addr", 0x8915), ("mask", 0x891b)):
        try:
            print(name, socket.inet_ntoa(fcntl.ioctl(sock, req, ifr)[20:24]))
        except OSError as e:
            print(name, "errno", e.errno)
    print("hw", fcntl.ioctl(sock, 0x8927, ifr)[16:24].hex())
buf = array.array("B", b"\0" * 40 * 8)
addr, _ = buf.buffer_info()
res = fcntl.ioctl(s, 0x8912, struct.pack("iL", len(buf), addr))
n = struct.unpack("iL", res)[0]
print("ifconf", n, bytes(buf[:16]).rstrip(b"\0"), socket.inet_ntoa(bytes(buf[20:24])))
"#;

/// Ping sockets (ICMP and ICMPv6 echo on SOCK_DGRAM): Python checks what a
/// malformed request gets, the replies' type, identifier and payload, and
/// that a socket sees only its replies; Debian's `ping` then pings both
/// loopback addresses (its times and the TTL, which moat does not report
/// (no IP_RECVTTL data), are left out of the comparison).
#[test]
fn ping_sockets_and_ping() {
    require("/usr/bin/ping", "iputils-ping");
    let python = r#"
import socket, struct
try:
    open('/proc/sys/net/ipv4/ping_group_range', 'w').write('0 2147483647')
except OSError:
    pass
for fam, proto, addr, typ in ((socket.AF_INET, socket.IPPROTO_ICMP, '127.0.0.1', 8),
                              (socket.AF_INET6, socket.IPPROTO_ICMPV6, '::1', 128)):
    s = socket.socket(fam, socket.SOCK_DGRAM, proto)
    print(s.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE), s.getsockopt(socket.SOL_SOCKET, socket.SO_PROTOCOL))
    for bad in (b'', b'\x08\x00', struct.pack('!BBHHH', typ + 1, 0, 0, 0, 1) + b'x', struct.pack('!BBHHH', typ, 1, 0, 0, 1)):
        try:
            s.sendto(bad, (addr, 0)); print('sent a malformed request')
        except OSError as e:
            print('malformed', e.errno)
    for seq in (1, 2):
        s.sendto(struct.pack('!BBHHH', typ, 0, 0, 0x1234, seq) + b'moat ping payload', (addr, 0))
        data, frm = s.recvfrom(1024)
        ident = s.getsockname()[1]
        print(data[0], data[1], struct.unpack('!H', data[4:6])[0] == ident, struct.unpack('!H', data[6:8])[0], data[8:], frm[:2])
    s.setblocking(False)
    try:
        s.recv(100); print('an extra datagram')
    except BlockingIOError:
        print('only the replies')
try:
    socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMPV6)
except OSError as e:
    print('icmpv6 on AF_INET', e.errno)
"#;
    // Natively, ping sockets need the namespace's ping_group_range opened
    // (a new namespace's is "1 0"), as Docker does for its containers.
    let script = "/usr/bin/python3 -c \"$1\" && echo 0 2147483647 > /proc/sys/net/ipv4/ping_group_range 2>/dev/null; \
                  for a in 127.0.0.1 ::1; do ping -c 3 -i 0.2 $a | sed -e 's/ ttl=[0-9]*//' -e 's/time=.*/time=T/' \
                  -e 's/, time [0-9]*ms//' -e '/^rtt/d'; done";
    differential_in_netns("/bin/sh", &["-c", script, "sh", python]);
}
