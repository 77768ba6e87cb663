//! What the Sentry's network fuzz targets share: the link their stack is
//! given, the input formats, frames and netlink requests built by hand (the
//! seeds), and the checks made on what the stack sends back.
#![forbid(unsafe_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::OwnedFd;
use std::sync::Arc;

use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use sentry::net::policy::Policy;
use sentry::net::{EgressConfig, NetConfig, NetInterface, NetRoute, Stack};

/// The stack's link: its MAC, addresses (with prefixes) and MTU.
pub const OUR_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
pub const OUR_V4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
pub const OUR_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2);
pub const LINK_MTU: u32 = 1500;
/// The gateway of the link's default routes, and the peer the connection
/// in progress goes to.
pub const GATEWAY_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
pub const GATEWAY_V4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
pub const GATEWAY_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);
/// A stack with the link above (eth0, default routes through the gateway,
/// everything allowed out), whose packet socket is one end of a
/// socketpair(AF_UNIX, SOCK_SEQPACKET); the other end, returned with it, is
/// the wire: a frame written there arrives as from the link.
pub fn stack_on_a_wire() -> (Arc<Stack>, OwnedFd) {
    let (ours, theirs) =
        socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC).expect("socketpair");
    let route =
        |dst: IpAddr, gateway: IpAddr| NetRoute { dst, prefix: 0, gateway: Some(gateway), interface: "eth0".into() };
    let config = NetConfig {
        interfaces: vec![NetInterface {
            name: "eth0".into(),
            mac: OUR_MAC,
            mtu: LINK_MTU,
            addrs: vec![(OUR_V4.into(), 24), (OUR_V6.into(), 64)],
            packet_fd: ours,
        }],
        routes: vec![
            route(Ipv4Addr::UNSPECIFIED.into(), GATEWAY_V4.into()),
            route(Ipv6Addr::UNSPECIFIED.into(), GATEWAY_V6.into()),
        ],
        // Everything may leave: the frames target's connect to the gateway must go out.
        egress: EgressConfig { policy: Policy::allow_all(), ..EgressConfig::default() },
    };
    (Stack::with_network(config).expect("a stack with one link"), theirs)
}

/// A dual-stack (AF_INET6, wildcard) listener's port, an AF_INET listener's
/// on `OUR_V4`, the UDP socket's, and the connection in progress: from
/// `CONNECT_FROM` to `GATEWAY_V4`:`CONNECT_TO`.
pub const LISTEN_PORT: u16 = 80;
pub const LISTEN_V4_PORT: u16 = 8080;
pub const UDP_PORT: u16 = 53;
pub const CONNECT_FROM: u16 = 40000;
pub const CONNECT_TO: u16 = 443;

/// The most frames one input feeds the stack.
pub const MAX_FRAMES: usize = 64;
/// A frame's flag: fill in the IPv4 header's and ICMP's checksums, which
/// the stack checks (mutations would otherwise almost never pass them).
pub const FIX_CHECKSUMS: u8 = 0x01;
/// A frame's flag: address it to the stack's MAC.
pub const TO_US: u8 = 0x02;
/// A frame's flag: once the frames before it are handled, give its TCP
/// segment the sequence number the stack expects and acknowledge all the
/// stack sent on that connection (then fill in checksums), so that inputs
/// reach past the handshake whatever initial sequence numbers the stack drew.
pub const SYNC: u8 = 0x04;
/// A frame's flag: before it, the harness accepts what the listeners took,
/// sends on each such connection and reads what came.
pub const ACT: u8 = 0x08;

/// One frame of an input, with what the harness does for it.
#[derive(Debug, Clone)]
pub struct Frame {
    pub bytes: Vec<u8>,
    pub sync: bool,
    pub act: bool,
}

/// The frames an input for the `frames` target stands for: records of
/// `flags[1] len[2, LE] bytes[len]` (the last one cut short by the input's
/// end), at most `MAX_FRAMES`, with `TO_US` and `FIX_CHECKSUMS` applied.
/// Empty frames are left out: a zero-length read is how the link's reader
/// sees its peer hang up.
pub fn frames_of(input: &[u8]) -> Vec<Frame> {
    let mut out = Vec::new();
    let mut rest = input;
    while let [flags, lo, hi, tail @ ..] = rest {
        if out.len() == MAX_FRAMES {
            break;
        }
        let len = usize::from(u16::from_le_bytes([*lo, *hi])).min(tail.len());
        let mut bytes = tail[..len].to_vec();
        rest = &tail[len..];
        if flags & TO_US != 0 && bytes.len() >= 6 {
            bytes[..6].copy_from_slice(&OUR_MAC);
        }
        if flags & FIX_CHECKSUMS != 0 {
            fix_checksums(&mut bytes);
        }
        if !bytes.is_empty() {
            out.push(Frame { bytes, sync: flags & SYNC != 0, act: flags & ACT != 0 });
        }
    }
    out
}

/// A TCP segment in an ethernet frame: where its header is, its endpoints
/// and what orders it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Offset of the TCP header in the frame.
    pub at: usize,
    pub from: (IpAddr, u16),
    pub to: (IpAddr, u16),
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    /// The sequence space it takes: its payload, and one each for SYN and FIN.
    pub len: u32,
}

/// The TCP segment of an IPv4 or IPv6 (no extension headers) frame, if the
/// frame holds a whole TCP header.
pub fn segment(f: &[u8]) -> Option<Segment> {
    let ether = f.get(12..14)?;
    let (at, end, from, to) = match ether {
        [0x08, 0x00] => {
            let ip = f.get(14..)?;
            let ihl = usize::from(ip.first()? & 0xf) * 4;
            if ihl < 20 || ip.len() < ihl || ip[9] != 6 {
                return None;
            }
            let total = usize::from(u16::from_be_bytes([ip[2], ip[3]])).clamp(ihl, ip.len());
            let addr = |at: usize| IpAddr::from(<[u8; 4]>::try_from(&ip[at..at + 4]).expect("four bytes"));
            (14 + ihl, 14 + total, addr(12), addr(16))
        }
        [0x86, 0xdd] => {
            let ip = f.get(14..54)?;
            if ip[6] != 6 {
                return None;
            }
            let payload = usize::from(u16::from_be_bytes([ip[4], ip[5]])).min(f.len() - 54);
            let addr = |at: usize| IpAddr::from(<[u8; 16]>::try_from(&ip[at..at + 16]).expect("sixteen bytes"));
            (54, 54 + payload, addr(8), addr(24))
        }
        _ => return None,
    };
    let tcp = f.get(at..end)?;
    let offset = usize::from(tcp.get(12)? >> 4) * 4;
    if tcp.len() < 20 || offset < 20 || offset > tcp.len() {
        return None;
    }
    let word = |i: usize| u32::from_be_bytes([tcp[i], tcp[i + 1], tcp[i + 2], tcp[i + 3]]);
    let port = |i: usize| u16::from_be_bytes([tcp[i], tcp[i + 1]]);
    let flags = tcp[13];
    let len = (tcp.len() - offset) as u32 + u32::from(flags & 0x02 != 0) + u32::from(flags & 0x01 != 0);
    Some(Segment { at, from: (from, port(0)), to: (to, port(2)), seq: word(4), ack: word(8), flags, len })
}

/// Gives the segment in `f` the sequence number `last` (the stack's latest
/// segment the other way) expects next and an acknowledgement of all of
/// it, and fills in checksums.
pub fn sync_to(f: &mut [u8], last: &Segment) {
    let Some(s) = segment(f) else { return };
    f[s.at + 4..s.at + 8].copy_from_slice(&last.ack.to_be_bytes());
    f[s.at + 8..s.at + 12].copy_from_slice(&last.seq.wrapping_add(last.len).to_be_bytes());
    fix_checksums(f);
}

/// The input that stands for `frames`, each with `flags`.
pub fn input_of(frames: &[Vec<u8>], flags: u8) -> Vec<u8> {
    let mut out = Vec::new();
    for f in frames {
        out.push(flags);
        out.extend_from_slice(&(f.len() as u16).to_le_bytes());
        out.extend_from_slice(f);
    }
    out
}

/// The one's-complement sum of `data` (RFC 1071), folded, not negated.
fn sum(mut acc: u32, data: &[u8]) -> u32 {
    for pair in data.chunks(2) {
        let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
        acc += u32::from(word);
    }
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc
}

fn checksum(acc: u32, data: &[u8]) -> [u8; 2] {
    (!(sum(acc, data) as u16)).to_be_bytes()
}

/// Fills in the checksums of an ethernet frame's IPv4 header, and of the
/// ICMP, ICMPv6, TCP or UDP inside it, as far as the frame's bytes go.
/// Whatever the bytes, it only writes inside them.
pub fn fix_checksums(f: &mut [u8]) {
    if f.len() < 14 {
        return;
    }
    match [f[12], f[13]] {
        [0x08, 0x00] => fix_ipv4(&mut f[14..]),
        [0x86, 0xdd] => fix_ipv6(&mut f[14..]),
        _ => {}
    }
}

fn fix_ipv4(p: &mut [u8]) {
    let Some(&vihl) = p.first() else { return };
    let ihl = usize::from(vihl & 0xf) * 4;
    if ihl < 20 || p.len() < ihl {
        return;
    }
    p[10..12].fill(0);
    let c = checksum(0, &p[..ihl]);
    p[10..12].copy_from_slice(&c);
    let total = usize::from(u16::from_be_bytes([p[2], p[3]])).clamp(ihl, p.len());
    let (proto, src, dst) = (p[9], [p[12], p[13], p[14], p[15]], [p[16], p[17], p[18], p[19]]);
    let body = &mut p[ihl..total];
    let mut pseudo = sum(0, &src);
    pseudo = sum(pseudo, &dst);
    pseudo = sum(pseudo, &[0, proto]);
    pseudo = sum(pseudo, &(body.len() as u16).to_be_bytes());
    match proto {
        // ICMP: no pseudo-header.
        1 => fix_at(body, 2, 0),
        6 => fix_at(body, 16, pseudo),
        17 => fix_at(body, 6, pseudo),
        _ => {}
    }
}

fn fix_ipv6(p: &mut [u8]) {
    if p.len() < 40 {
        return;
    }
    let payload = usize::from(u16::from_be_bytes([p[4], p[5]])).min(p.len() - 40);
    let next = p[6];
    let mut pseudo = sum(0, &p[8..40]);
    pseudo = sum(pseudo, &(payload as u32).to_be_bytes());
    pseudo = sum(pseudo, &[0, 0, 0, next]);
    let body = &mut p[40..40 + payload];
    match next {
        58 => fix_at(body, 2, pseudo),
        6 => fix_at(body, 16, pseudo),
        17 => fix_at(body, 6, pseudo),
        _ => {}
    }
}

/// Writes the checksum of `body` (with `pseudo` summed in) at `at`, if the
/// field fits.
fn fix_at(body: &mut [u8], at: usize, pseudo: u32) {
    if body.len() < at + 2 {
        return;
    }
    body[at..at + 2].fill(0);
    let c = checksum(pseudo, body);
    body[at..at + 2].copy_from_slice(&c);
}

fn ether(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An ARP frame over ethernet: `op` 1 (request) or 2 (reply).
pub fn arp(op: u16, sha: [u8; 6], spa: Ipv4Addr, tha: [u8; 6], tpa: Ipv4Addr) -> Vec<u8> {
    let mut a = vec![0, 1, 8, 0, 6, 4];
    a.extend_from_slice(&op.to_be_bytes());
    a.extend_from_slice(&sha);
    a.extend_from_slice(&spa.octets());
    a.extend_from_slice(&tha);
    a.extend_from_slice(&tpa.octets());
    let dst = if op == 1 { [0xff; 6] } else { tha };
    ether(dst, sha, 0x0806, &a)
}

/// The ARP request the harness asks the stack after each input, from a MAC
/// that names the round: its reply shows that every frame before it was
/// taken (the link's frames are handled in order).
pub fn sentinel_mac(round: u32) -> [u8; 6] {
    let r = round.to_be_bytes();
    [0x02, 0x5e, r[0], r[1], r[2], r[3]]
}

pub fn sentinel(round: u32) -> Vec<u8> {
    arp(1, sentinel_mac(round), Ipv4Addr::new(10, 0, 0, 9), [0; 6], OUR_V4)
}

/// Whether `f` is the stack's ARP reply to `sentinel(round)`.
pub fn is_sentinel_reply(f: &[u8], round: u32) -> bool {
    f.len() >= 42 && f[12..14] == [0x08, 0x06] && f[20..22] == [0, 2] && f[32..38] == sentinel_mac(round)
}

/// A TCP segment with no options but `options`, inside IPv4 or IPv6.
pub struct Tcp<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    /// FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10.
    pub flags: u8,
    pub options: &'a [u8],
    pub payload: &'a [u8],
}

impl Tcp<'_> {
    fn bytes(&self) -> Vec<u8> {
        let off = 20 + self.options.len().next_multiple_of(4);
        let mut t = Vec::with_capacity(off + self.payload.len());
        t.extend_from_slice(&self.src_port.to_be_bytes());
        t.extend_from_slice(&self.dst_port.to_be_bytes());
        t.extend_from_slice(&self.seq.to_be_bytes());
        t.extend_from_slice(&self.ack.to_be_bytes());
        t.push(((off / 4) as u8) << 4);
        t.push(self.flags);
        t.extend_from_slice(&64240u16.to_be_bytes());
        t.extend_from_slice(&[0; 4]);
        t.extend_from_slice(self.options);
        t.resize(off, 0);
        t.extend_from_slice(self.payload);
        t
    }
}

/// An IPv4 packet of protocol `proto` from `src` to `dst` in an ethernet
/// frame from the gateway to us, checksums filled in.
pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, body: &[u8]) -> Vec<u8> {
    let mut p = vec![0x45, 0];
    p.extend_from_slice(&((20 + body.len()) as u16).to_be_bytes());
    p.extend_from_slice(&[0x12, 0x34, 0x40, 0, 64, proto, 0, 0]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(body);
    let mut f = ether(OUR_MAC, GATEWAY_MAC, 0x0800, &p);
    fix_checksums(&mut f);
    f
}

/// An IPv6 packet with next header `next` from `src` to `dst`, in an
/// ethernet frame to `dst_mac`, checksums filled in.
pub fn ipv6(dst_mac: [u8; 6], src: Ipv6Addr, dst: Ipv6Addr, next: u8, body: &[u8]) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&(body.len() as u16).to_be_bytes());
    p.extend_from_slice(&[next, 255]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(body);
    let mut f = ether(dst_mac, GATEWAY_MAC, 0x86dd, &p);
    fix_checksums(&mut f);
    f
}

/// A UDP datagram's bytes (checksum left for `fix_checksums`).
pub fn udp(src_port: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = Vec::with_capacity(8 + payload.len());
    u.extend_from_slice(&src_port.to_be_bytes());
    u.extend_from_slice(&dst_port.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

/// ICMPv6 neighbour discovery: a solicitation (135) for `target` to its
/// solicited-node group, or an advertisement (136) of it to us, with the
/// gateway's link-layer address.
pub fn ndp(ty: u8, target: Ipv6Addr) -> Vec<u8> {
    let mut m = vec![ty, 0, 0, 0];
    // An advertisement is solicited and overrides (flags R=0 S=1 O=1).
    m.extend_from_slice(&if ty == 136 { [0x60, 0, 0, 0] } else { [0; 4] });
    m.extend_from_slice(&target.octets());
    // Source (1) or target (2) link-layer address option, 8 bytes.
    m.extend_from_slice(&[if ty == 136 { 2 } else { 1 }, 1]);
    m.extend_from_slice(&GATEWAY_MAC);
    if ty == 135 {
        let t = target.octets();
        let group = Ipv6Addr::from([0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, t[13], t[14], t[15]]);
        ipv6([0x33, 0x33, 0xff, t[13], t[14], t[15]], GATEWAY_V6, group, 58, &m)
    } else {
        ipv6(OUR_MAC, GATEWAY_V6, OUR_V6, 58, &m)
    }
}

/// Seeds for the `frames` target, by name: the frames a link of a stack
/// like the harness's sees in ordinary use.
pub fn frame_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let mss = [2, 4, 0x05, 0xb4];
    let syn =
        |dport| Tcp { src_port: 51000, dst_port: dport, seq: 1000, ack: 0, flags: 0x02, options: &mss, payload: &[] };
    let syn_v4 = ipv4(GATEWAY_V4, OUR_V4, 6, &syn(LISTEN_PORT).bytes());
    let syn_v4_8080 = ipv4(GATEWAY_V4, OUR_V4, 6, &syn(LISTEN_V4_PORT).bytes());
    let syn_v6 = ipv6(OUR_MAC, GATEWAY_V6, OUR_V6, 6, &syn(LISTEN_PORT).bytes());
    // What the peer of the connection in progress might send: a SYN-ACK.
    let synack =
        Tcp { src_port: CONNECT_TO, dst_port: CONNECT_FROM, seq: 7, ack: 1, flags: 0x12, options: &mss, payload: &[] };
    let synack = ipv4(GATEWAY_V4, OUR_V4, 6, &synack.bytes());
    let arp_reply = arp(2, GATEWAY_MAC, GATEWAY_V4, OUR_MAC, OUR_V4);
    let arp_request = arp(1, GATEWAY_MAC, GATEWAY_V4, [0; 6], OUR_V4);
    let udp_v4 = ipv4(GATEWAY_V4, OUR_V4, 17, &udp(5353, UDP_PORT, b"a datagram"));
    let udp_v6 = ipv6(OUR_MAC, GATEWAY_V6, OUR_V6, 17, &udp(5353, UDP_PORT, b"a datagram"));
    let ping = ipv4(GATEWAY_V4, OUR_V4, 1, &[8, 0, 0, 0, 0, 1, 0, 1, b'p', b'i', b'n', b'g']);
    let ns = ndp(135, OUR_V6);
    let na = ndp(136, GATEWAY_V6);
    let honest = FIX_CHECKSUMS;
    // A client's whole exchange with the listener on :80: the handshake,
    // a request (and the harness's answer, with ACT), and its close.
    let to_80 = |flags: u8, payload: &[u8]| {
        let t = Tcp { src_port: 51001, dst_port: LISTEN_PORT, seq: 0, ack: 0, flags, options: &[], payload };
        ipv4(GATEWAY_V4, OUR_V4, 6, &t.bytes())
    };
    let mut exchange = input_of(&[arp(2, GATEWAY_MAC, GATEWAY_V4, OUR_MAC, OUR_V4), to_80(0x02, &[])], honest);
    exchange.extend(input_of(&[to_80(0x10, &[])], honest | SYNC));
    exchange.extend(input_of(&[to_80(0x18, b"GET / HTTP/1.0\r\n\r\n")], honest | SYNC | ACT));
    exchange.extend(input_of(&[to_80(0x10, &[]), to_80(0x11, &[])], honest | SYNC));
    // The peer of the connection in progress answers it, sends and resets.
    let from_443 = |flags: u8, payload: &[u8]| {
        let t = Tcp { src_port: CONNECT_TO, dst_port: CONNECT_FROM, seq: 0, ack: 0, flags, options: &mss, payload };
        ipv4(GATEWAY_V4, OUR_V4, 6, &t.bytes())
    };
    let client = input_of(&[from_443(0x12, &[]), from_443(0x18, b"hello"), from_443(0x14, &[])], honest | SYNC);
    vec![
        ("tcp-exchange-v4", exchange),
        ("tcp-connect-completes", client),
        ("arp-reply", input_of(std::slice::from_ref(&arp_reply), 0)),
        ("arp-request", input_of(&[arp_request], 0)),
        ("tcp-syn-v4", input_of(&[arp_reply.clone(), syn_v4], honest)),
        ("tcp-syn-v4-8080", input_of(&[syn_v4_8080], honest)),
        ("tcp-syn-v6", input_of(&[na.clone(), syn_v6], honest)),
        ("tcp-synack-to-connect", input_of(&[arp_reply, synack], honest)),
        ("udp-v4", input_of(&[udp_v4], honest)),
        ("udp-v6", input_of(&[udp_v6], honest)),
        ("icmp-echo", input_of(&[ping], honest)),
        ("ndp-solicit", input_of(&[ns], honest)),
        ("ndp-advert", input_of(&[na], honest)),
    ]
}

pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const RTM_NEWLINK: u16 = 16;
pub const RTM_GETLINK: u16 = 18;
pub const RTM_NEWADDR: u16 = 20;
pub const RTM_GETADDR: u16 = 22;
pub const RTM_NEWROUTE: u16 = 24;
pub const RTM_GETROUTE: u16 = 26;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;

/// A netlink message: header, then `body`, padded to 4 bytes.
pub fn nlmsg(ty: u16, flags: u16, seq: u32, body: &[u8]) -> Vec<u8> {
    let len = 16 + body.len();
    let mut m = Vec::with_capacity(len.next_multiple_of(4));
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&ty.to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(body);
    m.resize(len.next_multiple_of(4), 0);
    m
}

/// The input byte that starts every `netlink` input: which options the
/// socket gets before the batch is sent (see the target).
pub const NETLINK_PLAIN: u8 = 0;

/// Seeds for the `netlink` target: the requests `ip` and glibc send.
pub fn netlink_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let dump = NLM_F_REQUEST | NLM_F_DUMP;
    let ifinfo = [0u8; 16];
    let mut by_name = ifinfo.to_vec();
    by_name.extend_from_slice(&[9, 0, 3, 0, b'e', b't', b'h', b'0', 0, 0, 0, 0]);
    let mut by_index = ifinfo.to_vec();
    by_index[4] = 2;
    let with = |msgs: &[Vec<u8>]| {
        let mut v = vec![NETLINK_PLAIN];
        msgs.iter().for_each(|m| v.extend_from_slice(m));
        v
    };
    vec![
        ("getlink-dump", with(&[nlmsg(RTM_GETLINK, dump, 1, &ifinfo)])),
        ("getlink-by-name", with(&[nlmsg(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK, 2, &by_name)])),
        ("getlink-by-index", with(&[nlmsg(RTM_GETLINK, NLM_F_REQUEST, 3, &by_index)])),
        ("getaddr-dump", with(&[nlmsg(RTM_GETADDR, dump, 4, &[0; 8])])),
        ("getaddr-v6-dump", with(&[nlmsg(RTM_GETADDR, dump, 5, &[10, 0, 0, 0, 0, 0, 0, 0])])),
        ("getroute-dump", with(&[nlmsg(RTM_GETROUTE, dump, 6, &[2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])])),
        ("getifaddrs", with(&[nlmsg(RTM_GETLINK, dump, 7, &[0; 16]), nlmsg(RTM_GETADDR, dump, 8, &[0; 8])])),
    ]
}
