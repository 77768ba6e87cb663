//! Arbitrary ethernet frames arriving on a link of the Sentry's stack: the
//! stack never panics or hangs, keeps its memory bounded, and sends nothing
//! but well-formed frames of its own (its MAC as the source, none longer
//! than the link's MTU allows).
//!
//! One stack serves every input, as one sandbox's stack lives through
//! whatever its link brings: a link (eth0: 10.0.0.2/24 and fd00::2/64,
//! default routes through 10.0.0.1 and fd00::1) whose packet socket is one
//! end of a socketpair(AF_UNIX, SOCK_SEQPACKET), so that each frame written
//! to the other end arrives as from the wire, through the link's own reader
//! thread. On it: a dual-stack TCP listener on port 80, an AF_INET one on
//! 10.0.0.2:8080, a UDP socket on port 53 and a TCP connect from port 40000
//! to 10.0.0.1:443 in progress (made again whenever it ended).
//!
//! Each input is a sequence of frames (`sentry_fuzz::frames_of`). To know
//! that the stack has handled what it was sent, the harness sends an ARP
//! request from a MAC that names it and waits for the stack's reply: frames
//! are taken in order, so the reply means every frame before it was handled
//! (a stack that never answers is a hang). It does so after the last frame,
//! and before a frame whose flags ask the harness to act first: to accept
//! what the listeners took and send on it (`ACT`), or to give the frame the
//! sequence numbers of its connection (`SYNC`), so that inputs get past the
//! handshakes. At the end it resets what it accepted, reads the UDP socket,
//! and checks that the link's addresses and routes are still as given.
#![no_main]
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::net::IpAddr;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use sentry::net::addr::{Endpoint, Family, Ip, Parsed};
use sentry::net::socket::Connect;
use sentry::net::{IfaceInfo, InetSocket, Origin, Proto, Stack, MAX_SOCKETS};
use sentry::Errno;
use sentry_fuzz::*;

/// How long the stack may take to answer the harness's ARP request: far
/// beyond any honest handling of 64 frames, so only a hang reaches it.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);
const OWNER: (u32, u32) = (0, 0);
/// The most connections whose last segment the harness remembers.
const MAX_REMEMBERED: usize = 4096;

/// Two TCP endpoints: (from, to).
type Route = ((IpAddr, u16), (IpAddr, u16));

/// The harness's end of the link, and what the stack sent on it.
struct Wire {
    out: Mutex<File>,
    /// The last ARP request (by number) whose reply came back.
    answered: Mutex<u32>,
    came: Condvar,
    /// The last segment the stack sent on each connection.
    sent: Mutex<HashMap<Route, Segment>>,
}

struct Rig {
    stack: Arc<Stack>,
    wire: Arc<Wire>,
    listeners: [Arc<InetSocket>; 2],
    udp: Arc<InetSocket>,
    connecting: Mutex<Arc<InetSocket>>,
    /// The interfaces as the stack was given them.
    interfaces: Vec<IfaceInfo>,
    /// The number of the last ARP request sent to settle the stack.
    asked: Mutex<u32>,
}

fn v4(ip: std::net::Ipv4Addr, port: u16) -> Endpoint {
    Endpoint { ip: Ip::V4(ip), port }
}

fn rig() -> &'static Rig {
    static RIG: OnceLock<Rig> = OnceLock::new();
    RIG.get_or_init(|| {
        let (stack, theirs) = stack_on_a_wire();
        let interfaces = stack.interfaces();
        let wire = Arc::new(Wire {
            out: Mutex::new(File::from(theirs)),
            answered: Mutex::new(0),
            came: Condvar::new(),
            sent: Mutex::new(HashMap::new()),
        });
        let reading = wire.out.lock().unwrap().try_clone().expect("dup the wire");
        let w = wire.clone();
        std::thread::Builder::new().name("wire".into()).spawn(move || drain(reading, &w)).expect("wire thread");

        let dual = InetSocket::new(stack.clone(), Family::V6, Proto::Tcp, OWNER);
        dual.bind(Endpoint { ip: Ip::V6(std::net::Ipv6Addr::UNSPECIFIED), port: LISTEN_PORT }, true).expect("bind :80");
        dual.listen(4).expect("listen :80");
        let only4 = InetSocket::new(stack.clone(), Family::V4, Proto::Tcp, OWNER);
        only4.bind(v4(OUR_V4, LISTEN_V4_PORT), true).expect("bind 10.0.0.2:8080");
        only4.listen(2).expect("listen :8080");
        let udp = InetSocket::new(stack.clone(), Family::V4, Proto::Udp, OWNER);
        udp.bind(v4(std::net::Ipv4Addr::UNSPECIFIED, UDP_PORT), true).expect("bind udp :53");
        Rig {
            connecting: Mutex::new(connect(&stack)),
            stack,
            wire,
            listeners: [dual, only4],
            udp,
            interfaces,
            asked: Mutex::new(0),
        }
    })
}

/// A connect from CONNECT_FROM to the gateway, left in progress.
fn connect(stack: &Arc<Stack>) -> Arc<InetSocket> {
    let s = InetSocket::new(stack.clone(), Family::V4, Proto::Tcp, OWNER);
    s.setsockopt(abi::net::SOL_SOCKET, abi::net::SO_REUSEADDR, &1i32.to_ne_bytes(), false).expect("SO_REUSEADDR");
    // The port may still be held by the last one's close finishing: then
    // an ephemeral one does as well.
    if s.bind(v4(OUR_V4, CONNECT_FROM), true).is_err() {
        s.bind(v4(OUR_V4, 0), true).expect("bind an ephemeral port");
    }
    let started = s.connect(Parsed::Addr(v4(GATEWAY_V4, CONNECT_TO)), true, &Origin::default());
    assert_eq!(started, Ok(Connect::InProgress), "a non-blocking connect over the link");
    s
}

/// Reads what the stack sends on the link, checks each frame, remembers
/// the last segment of each connection and notes the ARP requests answered.
fn drain(mut wire: File, w: &Wire) {
    let mut buf = vec![0u8; 1 << 17];
    loop {
        let n = match wire.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let f = &buf[..n];
        assert!(n >= 14, "the stack sent a frame of {n} bytes: {f:02x?}");
        assert!(n <= LINK_MTU as usize + 14, "the stack sent a frame of {n} bytes over an MTU of {LINK_MTU}");
        assert_eq!(f[6..12], OUR_MAC, "the stack sent a frame from another MAC: {f:02x?}");
        if let Some(s) = segment(f) {
            let mut sent = w.sent.lock().unwrap();
            if sent.len() >= MAX_REMEMBERED {
                sent.clear();
            }
            sent.insert((s.from, s.to), s);
        }
        let mut answered = w.answered.lock().unwrap();
        if is_sentinel_reply(f, answered.wrapping_add(1)) {
            *answered = answered.wrapping_add(1);
            w.came.notify_all();
        }
    }
}

fn send(w: &Wire, frame: &[u8]) {
    let sent = w.out.lock().unwrap().write(frame).expect("write a frame to the link");
    assert_eq!(sent, frame.len(), "a frame is one record");
}

/// Returns once the stack has handled every frame sent so far.
fn settle(r: &Rig) {
    let mut asked = r.asked.lock().unwrap();
    *asked = asked.wrapping_add(1);
    send(&r.wire, &sentinel(*asked));
    let deadline = Instant::now() + ANSWER_WITHIN;
    let mut answered = r.wire.answered.lock().unwrap();
    while *answered != *asked {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "the stack did not answer an ARP request within {ANSWER_WITHIN:?} (a hang)");
        answered = r.wire.came.wait_timeout(answered, left).unwrap().0;
    }
}

/// Resets a connection the harness made or accepted.
fn reset(conn: &InetSocket) {
    conn.setsockopt(abi::net::SOL_SOCKET, abi::net::SO_LINGER, &[1, 0, 0, 0, 0, 0, 0, 0], false).expect("SO_LINGER");
    conn.close();
}

/// Accepts what the listeners took into `conns`; on each connection (and
/// the connect) reads what came and sends a little.
fn act(r: &Rig, conns: &mut Vec<Arc<InetSocket>>) {
    for l in &r.listeners {
        loop {
            match l.accept() {
                Ok((conn, _)) => conns.push(conn),
                Err(e) => {
                    assert_eq!(e, Errno::EAGAIN, "accept on a listener");
                    break;
                }
            }
        }
    }
    let c = r.connecting.lock().unwrap().clone();
    for conn in conns.iter().chain(Some(&c)) {
        let mut sink = |_: usize, _: &[u8]| Ok(());
        let _ = conn.recv(4096, false, &mut sink);
        let _ = conn.send(3000, None, &mut |_, n| Ok(vec![b'r'; n]), &Origin::default());
        let _ = conn.poll_mask();
    }
}

/// Resets what the listeners took; reads the UDP socket dry; starts the
/// connect again if it ended.
fn tend(r: &Rig, conns: &mut Vec<Arc<InetSocket>>) {
    act(r, conns);
    conns.drain(..).for_each(|c| reset(&c));
    for l in &r.listeners {
        let _ = l.poll_mask();
    }
    let mut sink = |_: usize, _: &[u8]| Ok(());
    while r.udp.recv(70_000, false, &mut sink).is_ok() {}
    let mut c = r.connecting.lock().unwrap();
    if !matches!(c.connect_result(), Err(e) if e == Errno::EAGAIN) {
        reset(&c);
        *c = connect(&r.stack);
    }
}

fuzz_target!(|input: &[u8]| {
    let r = rig();
    let mut conns = Vec::new();
    tend(r, &mut conns);
    // The next hop of the connection in progress answers, so that its SYN
    // is out and frames for it find it waiting for the SYN-ACK.
    send(&r.wire, &arp(2, GATEWAY_MAC, GATEWAY_V4, OUR_MAC, OUR_V4));
    for mut frame in frames_of(input) {
        if frame.act || frame.sync {
            settle(r);
        }
        if frame.act {
            act(r, &mut conns);
            settle(r);
        }
        if frame.sync {
            let last = segment(&frame.bytes).and_then(|s| r.wire.sent.lock().unwrap().get(&(s.to, s.from)).copied());
            if let Some(last) = last {
                sync_to(&mut frame.bytes, &last);
            }
        }
        send(&r.wire, &frame.bytes);
    }
    settle(r);
    tend(r, &mut conns);
    // Frames count in the link's counters, and change nothing else of it.
    let uncounted = |ifaces: Vec<IfaceInfo>| -> Vec<IfaceInfo> {
        ifaces.into_iter().map(|i| IfaceInfo { counters: Default::default(), ..i }).collect()
    };
    assert_eq!(
        uncounted(r.stack.interfaces()),
        uncounted(r.interfaces.clone()),
        "frames changed the stack's interfaces"
    );
    let conns = r.stack.tcp_connections().len();
    assert!(conns <= MAX_SOCKETS, "{conns} TCP connections, past the stack's bound of {MAX_SOCKETS}");
});
