//! The sandbox's network stack: smoltcp on a loopback interface (`lo`,
//! 127.0.0.1/8 and ::1/128) and the ethernet links the runtime hands over.
//!
//! Nothing here opens a host socket: every packet an app sends goes through the
//! loopback device back into the same stack, or as a frame onto a link's
//! packet socket (ether.rs). Each interface has its own smoltcp sockets (a
//! socket belongs to the interface its traffic uses; a listener on a wildcard
//! address has listening sockets on each). The stack is polled after every
//! socket operation, by a timer thread (retransmits, TIME_WAIT) and after each
//! frame received, and each poll wakes the wait queues of the sockets whose
//! state it changed.
//!
//! Locking: a socket's own lock (socket.rs) is taken before the stack's lock,
//! never after; the stack lock holds no other Sentry lock except the wait
//! queues it notifies (innermost). App memory is never touched under the stack
//! lock.

pub mod addr;
mod dns;
pub mod egress;
pub mod ether;
pub mod netlink;
pub mod policy;
pub mod socket;

use std::collections::{BTreeMap, VecDeque};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::Duration;

use smoltcp::iface::{Config, Interface, PollResult, SocketHandle, SocketSet};
use smoltcp::phy::{Loopback, Medium};
use smoltcp::socket::{icmp, tcp, udp};
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr, IpListenEndpoint};

use crate::waiter::WaitQueue;
use crate::SysResult;

use addr::{Family, Ip};

pub use egress::{EgressConfig, Origin};
pub use ether::{NetConfig, NetInterface, NetRoute};
pub use netlink::NetlinkSocket;
pub use socket::InetSocket;

/// Bytes of each TCP socket's receive and send buffer. smoltcp's buffers cannot
/// grow, so this is also the most a connection holds in flight each way.
const TCP_BUF: usize = 64 * 1024;
/// A UDP socket's buffers: datagrams queued, and their bytes (room for the
/// largest datagram, and no more than a TCP socket's buffer, so that every
/// socket costs at most 128 KiB).
const UDP_PACKETS: usize = 64;
const UDP_BUF: usize = 64 * 1024;
/// The most smoltcp sockets one stack holds (connections, listeners' pools,
/// sockets closing): with the buffers above, a bound on the stack's memory
/// (1536 × 128 KiB = 192 MiB, under the 256 MiB the
/// adversarial tests allow the whole Sentry). Connections in TIME_WAIT hold no smoltcp socket.
pub const MAX_SOCKETS: usize = 1536;
/// The most not-yet-accepted connections a listener keeps (its pool of
/// listening smoltcp sockets, each of which takes one connection).
pub const MAX_BACKLOG: usize = 64;
/// The ephemeral port range (net.ipv4.ip_local_port_range).
const EPHEMERAL: std::ops::RangeInclusive<u16> = 32768..=60999;
/// How long the timer thread sleeps at most between polls with nothing due,
/// and so how long a dropped stack's thread lingers.
const TIMER_IDLE: Duration = Duration::from_secs(1);
/// How long a closed connection may take to finish its FIN handshake.
const ORPHAN_TIMEOUT: smoltcp::time::Duration = smoltcp::time::Duration::from_secs(60);
/// How long a connection in TIME_WAIT keeps its port (Linux's TCP_TIMEWAIT_LEN).
const TIME_WAIT: Duration = Duration::from_secs(60);
/// How long a connect over a link waits for its next hop to answer ARP or
/// NDP before failing with EHOSTUNREACH (Linux: 3 probes a second apart).
const NEIGHBOR_TIMEOUT: smoltcp::time::Duration = smoltcp::time::Duration::from_secs(3);
/// How long a connect waits for the peer's SYN-ACK once the next hop answered
/// before failing with ETIMEDOUT (Linux's 6 SYN retries: 127 s).
const SYN_TIMEOUT: Duration = Duration::from_secs(127);
/// How long a connection a listener took may stay half-open (SYN received,
/// our SYN-ACK unanswered) before its place in the pool listens again:
/// Linux drops such a request after 5 SYN-ACK retransmissions
/// (tcp_synack_retries), 63 s after the SYN.
const SYN_RECV_TIMEOUT: Duration = Duration::from_secs(63);

/// A smoltcp socket: the interface it belongs to, and its handle there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Handle {
    net: usize,
    h: SocketHandle,
}

/// The loopback interface's place in `Inner::nets`.
const LO: usize = 0;

/// An interface's device.
#[derive(Debug)]
enum Dev {
    Loopback(Loopback),
    Ether(ether::PacketDevice),
}

/// One interface and the smoltcp sockets whose traffic uses it.
struct Net {
    iface: Interface,
    dev: Dev,
    sockets: SocketSet<'static>,
    name: String,
    index: u32,
    mtu: u32,
    /// None for loopback.
    mac: Option<[u8; 6]>,
    /// The namespace's routes through this interface.
    routes: Vec<NetRoute>,
}

impl Net {
    fn poll(&mut self, now: smoltcp::time::Instant) -> PollResult {
        match &mut self.dev {
            Dev::Loopback(d) => self.iface.poll(now, d, &mut self.sockets),
            Dev::Ether(d) => self.iface.poll(now, d, &mut self.sockets),
        }
    }

    /// The interface's traffic so far (zeros for loopback).
    fn counters(&self) -> LinkStats {
        let mut st = LinkStats { name: self.name.clone(), ..LinkStats::default() };
        if let Dev::Ether(d) = &self.dev {
            let c = &d.frames.counters;
            let get = |v: &std::sync::atomic::AtomicU64| v.load(std::sync::atomic::Ordering::Relaxed);
            st.rx_packets = get(&c.rx_packets);
            st.rx_bytes = get(&c.rx_bytes);
            st.tx_packets = get(&c.tx_packets);
            st.tx_bytes = get(&c.tx_bytes);
            st.rx_dropped = get(&c.rx_dropped);
        }
        st
    }

    /// Whether `ip` is on one of this interface's networks.
    fn on_link(&self, ip: IpAddress) -> bool {
        self.iface.ip_addrs().iter().any(|c| c.contains_addr(&ip))
    }

    /// The first address of this interface of `ip`'s family.
    fn addr_like(&self, ip: Ip) -> Option<IpAddress> {
        self.iface.ip_addrs().iter().map(|c| c.address()).find(|a| matches!(Ip::from(*a), x if x.is_v4() == ip.is_v4()))
    }
}

/// A connect over a link, watched until its handshake ends.
#[derive(Debug)]
struct Connecting {
    h: Handle,
    /// The neighbour the SYN goes to: the peer on the link, or a gateway.
    hop: std::net::IpAddr,
    since: std::time::Instant,
    /// The next hop answered ARP or NDP.
    resolved: bool,
}

/// Why the runtime's network configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum NetConfigError {
    /// An interface with more addresses than the stack keeps.
    #[error("network interface {name} has {count} addresses; the sandbox's stack takes at most {max}")]
    TooManyAddresses { name: String, count: usize, max: usize },
    /// More routes than the stack keeps.
    #[error("the network namespace has {count} routes through gateways; the sandbox's stack takes at most {max}")]
    TooManyRoutes { count: usize, max: usize },
    /// The thread reading an interface's frames could not start.
    #[error("cannot start the thread reading network interface {name}: {source}")]
    Reader { name: String, source: std::io::Error },
}

/// TCP, UDP, or ICMP echo ("ping") datagrams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
    /// ICMP echo on an AF_INET socket, ICMPv6 echo on an AF_INET6 one: a
    /// datagram socket whose "port" is the echo identifier.
    Ping,
}

impl Proto {
    /// Whether the socket moves datagrams (UDP and ping).
    pub fn is_datagram(self) -> bool {
        self != Proto::Tcp
    }
}

/// One use of a port: a bound socket, or a closed TCP socket still finishing.
#[derive(Debug, Clone)]
struct PortUse {
    /// The socket's inode number: who holds it.
    owner: u64,
    /// None for the unspecified address.
    ip: Option<Ip>,
    family: Family,
    v6only: bool,
    reuse: bool,
    listening: bool,
    /// A closed connection in TIME_WAIT or finishing its close.
    lingering: bool,
}

impl PortUse {
    /// Whether the two cover a common local address.
    fn overlaps(&self, other: &PortUse) -> bool {
        let covers_v4 = |u: &PortUse| u.family == Family::V4 || !u.v6only;
        match (self.ip, other.ip) {
            (None, None) => self.family == other.family || (covers_v4(self) && covers_v4(other)),
            (None, Some(ip)) => covers(self, ip, covers_v4(self)),
            (Some(ip), None) => covers(other, ip, covers_v4(other)),
            (Some(a), Some(b)) => a == b,
        }
    }
}

/// Whether a wildcard binding `u` covers address `ip`.
fn covers(u: &PortUse, ip: Ip, covers_v4: bool) -> bool {
    match ip {
        Ip::V4(_) => covers_v4,
        Ip::V6(_) => u.family == Family::V6,
    }
}

/// Who to wake when a smoltcp socket changes, and what it looked like last.
#[derive(Debug)]
struct Watch {
    wq: Arc<WaitQueue>,
    last: u64,
}

/// What a poll compares to tell that a socket changed.
fn signature(s: &smoltcp::socket::Socket) -> u64 {
    match s {
        smoltcp::socket::Socket::Tcp(t) => {
            (t.state() as u64) | (t.recv_queue() as u64) << 8 | (t.send_queue() as u64) << 32
        }
        smoltcp::socket::Socket::Udp(u) => {
            (u.recv_queue() as u64) | (u.send_queue() as u64) << 32 | (u.can_send() as u64) << 63
        }
        smoltcp::socket::Socket::Icmp(p) => {
            (p.recv_queue() as u64) | (p.send_queue() as u64) << 32 | (p.can_send() as u64) << 63
        }
    }
}

/// The stack's state, under one lock.
struct Inner {
    /// `lo` first, then the links.
    nets: Vec<Net>,
    start: std::time::Instant,
    watch: BTreeMap<Handle, Watch>,
    ports: BTreeMap<(Proto, u16), Vec<PortUse>>,
    /// Closed TCP sockets finishing their close, with the port they hold.
    orphans: Vec<(Handle, u16, u64)>,
    /// Connects over links whose handshake is under way.
    connecting: Vec<Connecting>,
    /// How connects over links failed, when not with a reset.
    connect_errors: BTreeMap<Handle, crate::Error>,
    /// TCP sockets in SYN-RECEIVED, with when a poll first saw them there.
    half_open: BTreeMap<Handle, std::time::Instant>,
    /// Connections in TIME_WAIT, as Linux's timewait minisocks: only their
    /// port (port, owner) stays taken until the deadline; their smoltcp socket
    /// and its buffers are freed, so that closing many connections in a row
    /// does not fill the stack.
    time_wait: VecDeque<(u16, u64, std::time::Instant)>,
    next_ephemeral: u16,
    /// When the timer thread will poll next.
    timer_at: Option<std::time::Instant>,
    /// The egress policy, its pins and its audit.
    egress: egress::Enforcer,
    /// Questions the sandbox's DNS forwarded, and answers for app sockets.
    dns: dns::Dns,
    /// Varies the DNS ids of this stack.
    seed: u16,
    /// The echo reply each ping socket peeked at and has not yet received.
    ping_held: BTreeMap<Handle, (Vec<u8>, addr::Endpoint)>,
    /// TCP connects started and connections accepted, for `--stats`.
    connects: u64,
    accepts: u64,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner").field("sockets", &self.watch.len()).field("orphans", &self.orphans.len()).finish()
    }
}

/// One sandbox's network stack.
#[derive(Debug)]
pub struct Stack {
    inner: Mutex<Inner>,
    /// Wakes the timer thread when a poll is due sooner than it planned.
    timer: Condvar,
}

impl Stack {
    /// A stack with the loopback interface only, and its timer thread.
    pub fn new() -> Arc<Stack> {
        Stack::with_network(NetConfig::default()).expect("a loopback-only stack needs nothing that can fail")
    }

    /// A stack with the loopback interface and the links of `config`, each
    /// with its reader thread, and the timer thread.
    pub fn with_network(mut config: NetConfig) -> Result<Arc<Stack>, NetConfigError> {
        let start = std::time::Instant::now();
        // Initial sequence numbers come from here: apart per sandbox.
        let seed =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
                ^ (std::process::id() as u64) << 32;
        let mut dev = Loopback::new(Medium::Ip);
        let mut lo_config = Config::new(HardwareAddress::Ip);
        lo_config.random_seed = seed;
        let mut iface = Interface::new(lo_config, &mut dev, smoltcp::time::Instant::ZERO);
        iface.update_ip_addrs(|a| {
            a.push(IpCidr::new(Ipv4Addr::LOCALHOST.into(), 8)).expect("room for two addresses");
            a.push(IpCidr::new(Ipv6Addr::LOCALHOST.into(), 128)).expect("room for two addresses");
        });
        // The rest of 127/8 is this host too (Linux answers on all of it):
        // packets to it are taken in, so that a connect there is refused
        // (or finds a listener bound to that very address) rather than lost.
        iface.set_any_ip(true);
        iface.routes_mut().update(|table| {
            let _ = table.push(smoltcp::iface::Route {
                cidr: IpCidr::new(Ipv4Addr::new(127, 0, 0, 0).into(), 8),
                via_router: Ipv4Addr::LOCALHOST.into(),
                preferred_until: None,
                expires_at: None,
            });
        });
        let lo = Net {
            iface,
            dev: Dev::Loopback(dev),
            sockets: SocketSet::new(Vec::new()),
            name: "lo".into(),
            index: 1,
            mtu: 65536,
            mac: None,
            routes: Vec::new(),
        };
        let mut nets = vec![lo];
        let gateways = config.routes.iter().filter(|r| r.gateway.is_some()).count();
        if gateways > smoltcp::config::IFACE_MAX_ROUTE_COUNT {
            return Err(NetConfigError::TooManyRoutes { count: gateways, max: smoltcp::config::IFACE_MAX_ROUTE_COUNT });
        }
        for (i, link) in config.interfaces.into_iter().enumerate() {
            if link.addrs.len() > smoltcp::config::IFACE_MAX_ADDR_COUNT {
                return Err(NetConfigError::TooManyAddresses {
                    name: link.name,
                    count: link.addrs.len(),
                    max: smoltcp::config::IFACE_MAX_ADDR_COUNT,
                });
            }
            let mut dev = ether::PacketDevice::new(link.packet_fd, link.mtu);
            let mut c = Config::new(HardwareAddress::Ethernet(EthernetAddress(link.mac)));
            c.random_seed = seed.rotate_left(8 * (i as u32 + 1));
            let mut iface = Interface::new(c, &mut dev, smoltcp::time::Instant::ZERO);
            iface.update_ip_addrs(|a| {
                for &(ip, plen) in &link.addrs {
                    // Checked against the capacity above.
                    let _ = a.push(IpCidr::new(ip.into(), plen));
                }
            });
            let routes: Vec<NetRoute> = config.routes.iter().filter(|r| r.interface == link.name).cloned().collect();
            iface.routes_mut().update(|table| {
                for r in routes.iter() {
                    let Some(via) = r.gateway else { continue };
                    let cidr = IpCidr::new(r.dst.into(), r.prefix);
                    // Checked against the capacity above.
                    let _ = table.push(smoltcp::iface::Route {
                        cidr,
                        via_router: via.into(),
                        preferred_until: None,
                        expires_at: None,
                    });
                }
            });
            nets.push(Net {
                iface,
                dev: Dev::Ether(dev),
                sockets: SocketSet::new(Vec::new()),
                name: link.name,
                // As in a namespace where lo came first.
                index: i as u32 + 2,
                mtu: link.mtu,
                mac: Some(link.mac),
                routes,
            });
        }
        let netns_resolvers: Vec<(std::net::IpAddr, Arc<std::fs::File>)> =
            std::mem::take(&mut config.egress.netns_resolvers)
                .into_iter()
                .map(|(ip, fd)| (ip, Arc::new(std::fs::File::from(fd))))
                .collect();
        let port_seed = (config_seed(start) % u64::from(EPHEMERAL.end() - EPHEMERAL.start())) as u16;
        let stack = Arc::new(Stack {
            inner: Mutex::new(Inner {
                nets,
                start,
                watch: BTreeMap::new(),
                ports: BTreeMap::new(),
                orphans: Vec::new(),
                connecting: Vec::new(),
                connect_errors: BTreeMap::new(),
                half_open: BTreeMap::new(),
                time_wait: VecDeque::new(),
                next_ephemeral: EPHEMERAL.start() + port_seed,
                timer_at: None,
                egress: egress::Enforcer::new(config.egress),
                dns: dns::Dns::with_netns_resolvers(netns_resolvers),
                seed: seed as u16,
                ping_held: BTreeMap::new(),
                connects: 0,
                accepts: 0,
            }),
            timer: Condvar::new(),
        });
        let weak = Arc::downgrade(&stack);
        for net in &stack.lock().nets {
            if let Dev::Ether(d) = &net.dev {
                d.start_reader(&net.name, weak.clone())
                    .map_err(|source| NetConfigError::Reader { name: net.name.clone(), source })?;
            }
        }
        for (ip, file) in stack.lock().dns.netns_resolvers() {
            let weak = weak.clone();
            std::thread::Builder::new()
                .name("moat-dns".into())
                .spawn(move || dns_reader(ip, &file, &weak))
                .map_err(|source| NetConfigError::Reader { name: format!("the resolver {ip}"), source })?;
        }
        let spawned = std::thread::Builder::new().name("moat-net".into()).spawn(move || timer_thread(weak));
        if let Err(e) = spawned {
            // Without the thread, connections still work; only timers (TIME_WAIT,
            // retransmits, keep-alives) wait for the next socket operation.
            tracing::warn!(error = %e, "network timer thread not started");
        }
        Ok(stack)
    }

    /// Replaces the egress policy while the sandbox runs: connections made
    /// stay, what starts from now on is judged by the new policy, and the
    /// addresses DNS pinned to names stay pinned for their TTL.
    pub fn set_egress_policy(&self, policy: policy::Policy) {
        self.with(|i| i.egress.policy = policy);
    }

    /// What the stack moved over its links and refused.
    pub fn stats(&self) -> NetStats {
        let g = self.lock();
        let links = g.nets.iter().filter(|n| matches!(n.dev, Dev::Ether(_))).map(Net::counters).collect();
        NetStats { links, tcp_connects: g.connects, tcp_accepts: g.accepts, refusals: g.egress.refused() }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the stack, then polls it and wakes whoever it concerns.
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let mut g = self.lock();
        let r = f(&mut g);
        g.poll();
        if let Some(at) = g.next_poll() {
            if g.timer_at.is_none_or(|t| at < t) {
                self.timer.notify_one();
            }
        }
        r
    }
}

/// Reads the answers of a resolver the runtime's socket reaches, until the
/// stack is gone; each goes to the question it answers.
fn dns_reader(ip: std::net::IpAddr, file: &std::fs::File, stack: &Weak<Stack>) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let n = match (&*file).read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            // ECONNREFUSED: the resolver was not there for a question; the
            // app's resolver times out and retries, as with a lost datagram.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => continue,
            Err(e) => {
                tracing::warn!(error = %e, resolver = %ip, "cannot read from the resolver; its answers stop");
                return;
            }
        };
        let Some(stack) = stack.upgrade() else { return };
        stack.with(|i| i.dns_deliver(&buf[..n], ip));
    }
}

fn config_seed(start: std::time::Instant) -> u64 {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    u64::from(t) ^ start.elapsed().as_nanos() as u64
}

/// Polls the stack when its timers are due, until the stack is gone.
fn timer_thread(stack: Weak<Stack>) {
    loop {
        let Some(s) = stack.upgrade() else { return };
        let mut g = s.lock();
        g.poll();
        let wait = g.next_poll().map_or(TIMER_IDLE, |at| at.saturating_duration_since(std::time::Instant::now()));
        let wait = wait.clamp(Duration::from_millis(1), TIMER_IDLE);
        g.timer_at = std::time::Instant::now().checked_add(wait);
        let (g, _) = s.timer.wait_timeout(g, wait).unwrap_or_else(|e| e.into_inner());
        drop(g);
    }
}

impl Inner {
    fn now(&self) -> smoltcp::time::Instant {
        smoltcp::time::Instant::from_micros(self.start.elapsed().as_micros() as i64)
    }

    fn next_poll(&mut self) -> Option<std::time::Instant> {
        let now = self.now();
        let d = self.nets.iter_mut().filter_map(|n| n.iface.poll_delay(now, &n.sockets)).min()?;
        std::time::Instant::now().checked_add(Duration::from_micros(d.total_micros()))
    }

    /// Moves packets until the loopback device and the links' queues are
    /// empty, frees finished orphans, and wakes every socket that changed.
    fn poll(&mut self) {
        // Each round delivers what the last one sent; a bound keeps a
        // pathological exchange (or a flood on a link) from holding the lock
        // forever (the timer thread and the next frame pick up the rest).
        let now = self.now();
        for net in &mut self.nets {
            for _ in 0..64 {
                if net.poll(now) == PollResult::None {
                    break;
                }
            }
        }
        self.watch_connects();
        self.expire_half_open();
        self.reap_orphans();
        if !self.dns.upstream.is_empty() {
            self.dns_poll();
        }
        for (n, net) in self.nets.iter().enumerate() {
            for (h, s) in net.sockets.iter() {
                let Some(w) = self.watch.get_mut(&Handle { net: n, h }) else { continue };
                let sig = signature(s);
                if sig != w.last {
                    w.last = sig;
                    w.wq.notify_all();
                }
            }
        }
    }

    /// Follows connects over links: once the next hop answers, the SYN may
    /// take as long as Linux lets it; a connect that ended records why.
    fn watch_connects(&mut self) {
        let mut i = 0;
        while i < self.connecting.len() {
            let c = &mut self.connecting[i];
            let Net { sockets, dev, .. } = &mut self.nets[c.h.net];
            let s = sockets.get_mut::<tcp::Socket>(c.h.h);
            let heard = matches!(dev, Dev::Ether(d) if d.frames.heard(c.hop));
            if !c.resolved && heard {
                c.resolved = true;
                s.set_timeout(Some(smoltcp::time::Duration::from_micros(SYN_TIMEOUT.as_micros() as u64)));
            }
            match s.state() {
                tcp::State::SynSent => {
                    i += 1;
                    continue;
                }
                tcp::State::Closed if !c.resolved => {
                    self.connect_errors.insert(c.h, errno!(EHOSTUNREACH));
                }
                tcp::State::Closed if c.since.elapsed() >= SYN_TIMEOUT => {
                    self.connect_errors.insert(c.h, errno!(ETIMEDOUT));
                }
                tcp::State::Closed => {}
                _ => s.set_timeout(None),
            }
            self.connecting.swap_remove(i);
        }
    }

    /// Puts back to listening the connections a listener took whose
    /// handshake did not finish within SYN_RECV_TIMEOUT (a SYN from a spoofed
    /// address, a client gone): else a SYN flood holds a listener's pool for
    /// good. smoltcp never times them out, and does not always see the
    /// client's RST either: a RST without ACK is taken by the first socket
    /// that accepts it, which may be an idle listening socket of the same pool.
    fn expire_half_open(&mut self) {
        let now = std::time::Instant::now();
        let mut seen = BTreeMap::new();
        for (n, net) in self.nets.iter_mut().enumerate() {
            for (h, s) in net.sockets.iter_mut() {
                let smoltcp::socket::Socket::Tcp(t) = s else { continue };
                if t.state() != tcp::State::SynReceived {
                    continue;
                }
                let h = Handle { net: n, h };
                let since = self.half_open.get(&h).copied().unwrap_or(now);
                if now.duration_since(since) < SYN_RECV_TIMEOUT {
                    seen.insert(h, since);
                    continue;
                }
                // Dropped without a word, as Linux drops the request; a
                // socket that was not a listener's stays closed.
                let listen = t.listen_endpoint();
                t.abort();
                if listen.port != 0 {
                    let _ = t.listen(listen);
                }
            }
        }
        self.half_open = seen;
    }

    fn reap_orphans(&mut self) {
        let mut i = 0;
        while i < self.orphans.len() {
            let (h, port, owner) = self.orphans[i];
            let s = self.tcp(h);
            if s.recv_queue() > 0 && s.state() != tcp::State::Closed {
                // Nobody will read it: data for a closed socket resets the
                // connection, as Linux answers it. (An aborted socket keeps
                // its unread bytes: it is freed below once closed.)
                s.abort();
                i += 1;
                continue;
            }
            match s.state() {
                tcp::State::Closed => {
                    self.orphans.swap_remove(i);
                    self.nets[h.net].sockets.remove(h.h);
                    self.release_port(Proto::Tcp, port, owner);
                }
                tcp::State::TimeWait => {
                    // Our last ACK is out: nothing more will move on this
                    // connection (a retransmitted FIN gets an RST, which ends
                    // the peer's close as well).
                    self.orphans.swap_remove(i);
                    self.nets[h.net].sockets.remove(h.h);
                    let until = std::time::Instant::now() + TIME_WAIT;
                    self.time_wait.push_back((port, owner, until));
                }
                _ => i += 1,
            }
        }
        let now = std::time::Instant::now();
        while let Some(&(port, owner, until)) = self.time_wait.front() {
            if until > now {
                break;
            }
            self.time_wait.pop_front();
            self.release_port(Proto::Tcp, port, owner);
        }
    }

    fn socket_count(&self) -> usize {
        self.nets.iter().map(|n| n.sockets.iter().count()).sum()
    }

    /// A new TCP socket on interface `net`, watched by `wq`.
    fn new_tcp(&mut self, net: usize, wq: &Arc<WaitQueue>, nodelay: bool) -> SysResult<Handle> {
        if self.socket_count() >= MAX_SOCKETS {
            return Err(errno!(ENOBUFS));
        }
        let mut s =
            tcp::Socket::new(tcp::SocketBuffer::new(vec![0u8; TCP_BUF]), tcp::SocketBuffer::new(vec![0u8; TCP_BUF]));
        // On loopback an ACK costs nothing; delaying it only adds latency.
        // On a link smoltcp's default delay (10 ms) halves the ACKs, as Linux's delayed ACK.
        if net == LO {
            s.set_ack_delay(None);
        }
        s.set_nagle_enabled(!nodelay);
        let h = Handle { net, h: self.nets[net].sockets.add(s) };
        self.watch.insert(h, Watch { wq: wq.clone(), last: u64::MAX });
        Ok(h)
    }

    fn new_udp(&mut self, net: usize, wq: &Arc<WaitQueue>) -> SysResult<Handle> {
        if self.socket_count() >= MAX_SOCKETS {
            return Err(errno!(ENOBUFS));
        }
        let buf = || udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; UDP_PACKETS], vec![0u8; UDP_BUF]);
        let h = Handle { net, h: self.nets[net].sockets.add(udp::Socket::new(buf(), buf())) };
        self.watch.insert(h, Watch { wq: wq.clone(), last: u64::MAX });
        Ok(h)
    }

    /// A new ICMP echo socket on interface `net`, watched by `wq`.
    fn new_ping(&mut self, net: usize, wq: &Arc<WaitQueue>) -> SysResult<Handle> {
        if self.socket_count() >= MAX_SOCKETS {
            return Err(errno!(ENOBUFS));
        }
        let buf = || icmp::PacketBuffer::new(vec![icmp::PacketMetadata::EMPTY; UDP_PACKETS], vec![0u8; UDP_BUF]);
        let h = Handle { net, h: self.nets[net].sockets.add(icmp::Socket::new(buf(), buf())) };
        self.watch.insert(h, Watch { wq: wq.clone(), last: u64::MAX });
        Ok(h)
    }

    /// A new datagram socket (UDP or ping) on `net`, bound to `ep` (a ping
    /// socket to its port, the echo identifier).
    fn new_datagram(
        &mut self,
        proto: Proto,
        net: usize,
        wq: &Arc<WaitQueue>,
        ep: IpListenEndpoint,
    ) -> SysResult<Handle> {
        let h = if proto == Proto::Ping { self.new_ping(net, wq)? } else { self.new_udp(net, wq)? };
        let bound = match proto {
            Proto::Ping => self.ping(h).bind(icmp::Endpoint::Ident(ep.port)).is_ok(),
            _ => self.udp(h).bind(ep).is_ok(),
        };
        if !bound {
            self.free(h);
            return Err(errno!(EINVAL));
        }
        Ok(h)
    }

    /// The next datagram `h` received (left queued) and its sender: a ping
    /// socket's echo replies only (smoltcp gives it the echo requests with
    /// its identifier too, which the interface answers itself; they are dropped).
    fn datagram_peek(&mut self, proto: Proto, h: Handle) -> Option<(Vec<u8>, addr::Endpoint)> {
        if proto != Proto::Ping {
            let (data, meta) = self.udp(h).peek().ok()?;
            return Some((data.to_vec(), addr::Endpoint::from(meta.endpoint)));
        }
        // smoltcp's ICMP sockets cannot peek: the next reply is taken out
        // and held here until it is received.
        if let Some((data, from)) = self.ping_held.get(&h) {
            return Some((data.clone(), *from));
        }
        let s = self.ping(h);
        loop {
            let (data, from) = s.recv().ok()?;
            // Type 0 is an ICMP echo reply, 129 an ICMPv6 one.
            if matches!(data.first(), Some(0 | 129)) {
                let got = (data.to_vec(), addr::Endpoint { ip: from.into(), port: 0 });
                self.ping_held.insert(h, got.clone());
                return Some(got);
            }
        }
    }

    /// Drops the datagram `datagram_peek` returned.
    fn datagram_drop(&mut self, proto: Proto, h: Handle) {
        match proto {
            Proto::Ping => drop(self.ping_held.remove(&h)),
            _ => drop(self.udp(h).recv()),
        }
    }

    /// Whether `h` has a datagram to receive, and room to send.
    fn datagram_ready(&mut self, proto: Proto, h: Handle) -> (bool, bool) {
        match proto {
            // Echo requests are dropped on the way: readable only with a reply.
            Proto::Ping => (self.datagram_peek(proto, h).is_some(), self.ping(h).can_send()),
            _ => {
                let s = self.udp(h);
                (s.can_recv(), s.can_send())
            }
        }
    }

    /// Whether `h` has room for a datagram of `len` bytes.
    fn datagram_room(&mut self, proto: Proto, h: Handle, len: usize) -> bool {
        match proto {
            Proto::Ping => {
                let s = self.ping(h);
                s.can_send() && s.payload_send_capacity() - s.send_queue() >= len
            }
            _ => {
                let s = self.udp(h);
                s.can_send() && s.payload_send_capacity() - s.send_queue() >= len
            }
        }
    }

    /// Queues a datagram for `dest` on `h`.
    fn datagram_send(&mut self, proto: Proto, h: Handle, data: &[u8], dest: addr::Endpoint) -> SysResult<()> {
        let r = match proto {
            Proto::Ping => self.ping(h).send_slice(data, dest.ip.into()).map_err(|e| match e {
                icmp::SendError::BufferFull => errno!(EAGAIN),
                icmp::SendError::Unaddressable => errno!(ENETUNREACH),
            }),
            _ => self.udp(h).send_slice(data, smoltcp::wire::IpEndpoint::from(dest)).map_err(|e| match e {
                udp::SendError::BufferFull => errno!(EAGAIN),
                udp::SendError::Unaddressable => errno!(ENETUNREACH),
            }),
        };
        r
    }

    fn ping(&mut self, h: Handle) -> &mut icmp::Socket<'static> {
        self.nets[h.net].sockets.get_mut::<icmp::Socket>(h.h)
    }

    /// Stops watching `h` and frees it now.
    fn free(&mut self, h: Handle) {
        self.watch.remove(&h);
        self.ping_held.remove(&h);
        self.forget_connect(h);
        self.nets[h.net].sockets.remove(h.h);
    }

    fn forget_connect(&mut self, h: Handle) {
        self.connecting.retain(|c| c.h != h);
        self.connect_errors.remove(&h);
    }

    /// Why a connect over a link ended, if not with a reset.
    fn take_connect_error(&mut self, h: Handle) -> Option<crate::Error> {
        self.connect_errors.remove(&h)
    }

    /// Hands a closing TCP socket over to the stack, which frees it (and the
    /// port its owner held) once its close has finished.
    fn orphan(&mut self, h: Handle, port: u16, owner: u64) {
        self.watch.remove(&h);
        self.forget_connect(h);
        // Freed by the next poll's reap once closed: an aborted socket still has
        // its RST to send.
        self.tcp(h).set_timeout(Some(ORPHAN_TIMEOUT));
        if let Some(uses) = self.ports.get_mut(&(Proto::Tcp, port)) {
            for u in uses.iter_mut().filter(|u| u.owner == owner) {
                u.lingering = true;
                u.listening = false;
            }
        }
        self.orphans.push((h, port, owner));
    }

    fn tcp(&mut self, h: Handle) -> &mut tcp::Socket<'static> {
        self.nets[h.net].sockets.get_mut::<tcp::Socket>(h.h)
    }

    fn udp(&mut self, h: Handle) -> &mut udp::Socket<'static> {
        self.nets[h.net].sockets.get_mut::<udp::Socket>(h.h)
    }

    /// The interface traffic to `ip` leaves by, as Linux's routing would
    /// choose it: loopback addresses by `lo`; others by the link they are on,
    /// else the link of the longest route covering them. None: unreachable.
    /// (A link's own address is reached by `lo` on Linux; here it is not yet
    /// reachable from inside the sandbox: issue 12.)
    fn net_for(&self, ip: Ip) -> Option<usize> {
        // All of 127/8 is loopback, as on Linux: nothing to it may leave by a
        // link. Only 127.0.0.1 has sockets: a connect to the rest is refused,
        // and a DNS question there (Docker's 127.0.0.11) goes to the
        // sandbox's DNS.
        if ip == ip.loopback_of() || matches!(ip, Ip::V4(a) if a.is_loopback()) {
            return Some(LO);
        }
        let a: IpAddress = ip.into();
        if self.nets.iter().any(|n| n.iface.has_ip_addr(a)) {
            return None;
        }
        if let Some(n) = (1..self.nets.len()).find(|&n| self.nets[n].on_link(a)) {
            return Some(n);
        }
        (1..self.nets.len())
            .flat_map(|n| self.nets[n].routes.iter().map(move |r| (n, r)))
            .filter(|(_, r)| r.gateway.is_some() && IpCidr::new(r.dst.into(), r.prefix).contains_addr(&a))
            .max_by_key(|(_, r)| r.prefix)
            .map(|(n, _)| n)
    }

    /// The neighbour a packet to `ip` over link `net` goes to first.
    fn next_hop(&self, net: usize, ip: Ip) -> std::net::IpAddr {
        let a: IpAddress = ip.into();
        let n = &self.nets[net];
        if n.on_link(a) {
            return std_ip(a);
        }
        n.routes
            .iter()
            .filter(|r| IpCidr::new(r.dst.into(), r.prefix).contains_addr(&a))
            .max_by_key(|r| r.prefix)
            .and_then(|r| r.gateway)
            .unwrap_or(std_ip(a))
    }

    /// The interfaces a socket bound to `ip` (None: a wildcard) of `family`
    /// takes traffic on: those with an address it covers.
    fn nets_for_bind(&self, ip: Option<Ip>, family: Family, v6only: bool) -> Vec<usize> {
        match ip {
            Some(ip) if ip == ip.loopback_of() => vec![LO],
            Some(ip) => {
                let a: IpAddress = ip.into();
                (0..self.nets.len()).filter(|&n| self.nets[n].iface.has_ip_addr(a)).collect()
            }
            None => (0..self.nets.len())
                .filter(|&n| {
                    self.nets[n].iface.ip_addrs().iter().any(|c| match Ip::from(c.address()) {
                        Ip::V4(_) => family == Family::V4 || !v6only,
                        Ip::V6(_) => family == Family::V6,
                    })
                })
                .collect(),
        }
    }

    /// The interface called `name`.
    fn net_named(&self, name: &str) -> Option<usize> {
        self.nets.iter().position(|n| n.name == name)
    }

    /// Whether `ip` is an address of this stack.
    fn is_local(&self, ip: Ip) -> bool {
        ip == ip.loopback_of() || self.nets.iter().any(|n| n.iface.has_ip_addr(IpAddress::from(ip)))
    }

    /// The smoltcp listen endpoint on interface `net` for a local binding: a
    /// wildcard means the interface's address of the binding's family (any
    /// address, for a dual-stack AF_INET6 socket).
    fn listen_endpoint(&self, net: usize, l: addr::Endpoint, family: Family, v6only: bool) -> IpListenEndpoint {
        let addr = if !l.ip.is_unspecified() {
            Some(l.ip.into())
        } else if family == Family::V4 || v6only {
            self.nets[net].addr_like(l.ip)
        } else {
            None
        };
        IpListenEndpoint { addr, port: l.port }
    }

    /// Starts a TCP connect on `h` (a socket of the interface `remote` is
    /// reached by); a connect over a link is watched for its neighbour.
    fn connect_tcp(&mut self, h: Handle, remote: addr::Endpoint, local: IpListenEndpoint) -> SysResult<()> {
        let net = &mut self.nets[h.net];
        let cx = net.iface.context();
        let s = net.sockets.get_mut::<tcp::Socket>(h.h);
        if s.connect(cx, remote, local).is_err() {
            return Err(errno!(EADDRNOTAVAIL));
        }
        self.connects += 1;
        if h.net != LO {
            s.set_timeout(Some(NEIGHBOR_TIMEOUT));
            let hop = self.next_hop(h.net, remote.ip);
            self.connecting.push(Connecting { h, hop, since: std::time::Instant::now(), resolved: false });
        }
        Ok(())
    }

    /// Takes `port` (0: a free ephemeral one) for `u`, with Linux's rules: two
    /// uses of one port may share an address only if both set SO_REUSEADDR and
    /// (for TCP) neither listens; a closing connection yields to SO_REUSEADDR.
    fn take_port(&mut self, proto: Proto, port: u16, u: PortUse) -> SysResult<u16> {
        if port != 0 {
            let uses = self.ports.entry((proto, port)).or_default();
            let clash = uses.iter().any(|o| {
                o.overlaps(&u)
                    && !(u.reuse && o.lingering)
                    && !(u.reuse && o.reuse && !(proto == Proto::Tcp && (o.listening || u.listening)))
            });
            if clash {
                return Err(errno!(EADDRINUSE));
            }
            uses.push(u);
            return Ok(port);
        }
        // A free port if there is one; else one held only by closed
        // connections in TIME_WAIT, which Linux reuses on loopback too
        // (tcp_tw_reuse): their smoltcp sockets are gone, so nothing mixes up.
        let span = u32::from(EPHEMERAL.end() - EPHEMERAL.start()) + 1;
        for only_free in [true, false] {
            for _ in 0..span {
                let p = self.next_ephemeral;
                self.next_ephemeral = if p >= *EPHEMERAL.end() { *EPHEMERAL.start() } else { p + 1 };
                let uses = self.ports.entry((proto, p)).or_default();
                if uses.is_empty() || (!only_free && uses.iter().all(|o| o.lingering)) {
                    uses.push(u);
                    return Ok(p);
                }
            }
        }
        Err(errno!(EADDRINUSE))
    }

    fn release_port(&mut self, proto: Proto, port: u16, owner: u64) {
        if let Some(uses) = self.ports.get_mut(&(proto, port)) {
            uses.retain(|u| u.owner != owner);
            if uses.is_empty() {
                self.ports.remove(&(proto, port));
            }
        }
    }

    /// The socket of `owner` on `port` stops listening (it stays bound).
    fn stop_listening(&mut self, port: u16, owner: u64) {
        if let Some(uses) = self.ports.get_mut(&(Proto::Tcp, port)) {
            uses.iter_mut().filter(|u| u.owner == owner).for_each(|u| u.listening = false);
        }
    }

    fn set_listening(&mut self, port: u16, owner: u64) -> SysResult<()> {
        let uses = self.ports.get_mut(&(Proto::Tcp, port)).ok_or(errno!(EINVAL))?;
        let Some(mine) = uses.iter().position(|u| u.owner == owner) else { return Err(errno!(EINVAL)) };
        let me = uses[mine].clone();
        if uses.iter().any(|o| o.owner != owner && o.listening && o.overlaps(&me)) {
            return Err(errno!(EADDRINUSE));
        }
        uses[mine].listening = true;
        Ok(())
    }

    /// Whether `proto` traffic to `dest` may leave by a link; a refusal is
    /// audited as coming from `who`.
    fn egress_allows(&mut self, dest: addr::Endpoint, proto: Proto, who: &Origin) -> bool {
        let protocol = match proto {
            Proto::Tcp => policy::Protocol::Tcp,
            Proto::Udp => policy::Protocol::Udp,
            Proto::Ping => policy::Protocol::Icmp,
        };
        self.egress.check(std_ip(dest.ip.into()), dest.port, protocol, who) == policy::Verdict::Allow
    }

    /// Whether the policy refuses UDP to `dest`, without auditing: a refused
    /// datagram to port 53 is a question for the sandbox's DNS instead.
    fn egress_refuses_quietly(&self, dest: addr::Endpoint) -> bool {
        let d = self.egress.policy.decide(
            std_ip(dest.ip.into()),
            dest.port,
            policy::Protocol::Udp,
            &self.egress.pins,
            std::time::Instant::now(),
        );
        d.verdict == policy::Verdict::Deny
    }

    /// Whether `dest` (on loopback) is a DNS server that nothing in the
    /// sandbox serves while the sandbox has resolvers to ask.
    fn dns_unserved(&self, dest: addr::Endpoint) -> bool {
        (!self.egress.resolvers.is_empty() || self.dns.netns_resolver(std_ip(dest.ip.into())).is_some())
            && !self
                .ports
                .get(&(Proto::Udp, dest.port))
                .is_some_and(|uses| uses.iter().any(|u| u.ip.is_none_or(|ip| ip == dest.ip)))
    }

    /// A DNS question the app sent to `asked` (an address the policy refuses,
    /// an unserved loopback one, or any while rules name domains): answered
    /// NXDOMAIN if the policy refuses the name; else forwarded to the
    /// container's loopback resolver at `asked`, to `asked` itself if the
    /// policy lets it be reached, else to the first resolver the runtime
    /// named (SERVFAIL if there is none, or it cannot be reached). Garbage is
    /// dropped, as a resolver drops it.
    fn dns_ask(&mut self, owner: u64, wq: &Arc<WaitQueue>, data: &[u8], asked: addr::Endpoint, who: &Origin) {
        let Some(q) = dns::parse_query(data) else { return };
        if self.egress.check_name(&q.name, who) == policy::Verdict::Deny {
            let r = dns::reply(&q, dns::RCODE_NXDOMAIN);
            self.dns.answer(owner, wq, (r, asked));
            return;
        }
        // A loopback resolver of the container's namespace (Docker's
        // embedded DNS) through the runtime's socket; else the first resolver
        // through the stack.
        let asked_ip = std_ip(asked.ip.into());
        let forwarded = if let Some(file) = self.dns.netns_resolver(asked_ip) {
            self.dns.forward((owner, wq), q.clone(), asked, asked_ip, self.seed).and_then(|bytes| {
                let sent = (&*file).write(&bytes).ok();
                if sent.is_none() {
                    self.dns.cancel_last();
                }
                sent.map(drop)
            })
        } else {
            // The resolver the app asked, if the policy lets it be reached;
            // else the first the runtime named.
            let asked_ok = !asked_ip.is_loopback() && !self.egress_refuses_quietly(asked);
            let resolver = if asked_ok { Some(asked_ip) } else { self.egress.resolvers.first().copied() };
            resolver.and_then(|resolver| {
                let (h, _) = self.dns_upstream(resolver)?;
                let bytes = self.dns.forward((owner, wq), q.clone(), asked, resolver, self.seed)?;
                let to = smoltcp::wire::IpEndpoint::new(resolver.into(), dns::DNS_PORT);
                let sent = self.udp(h).send_slice(&bytes, to).ok();
                if sent.is_none() {
                    self.dns.cancel_last();
                }
                sent
            })
        };
        if forwarded.is_none() {
            let r = dns::reply(&q, dns::RCODE_SERVFAIL);
            self.dns.answer(owner, wq, (r, asked));
        }
    }

    /// The stack's own socket towards `resolver` (made on first use, on the
    /// interface that reaches it, from its address there).
    fn dns_upstream(&mut self, resolver: std::net::IpAddr) -> Option<(Handle, u16)> {
        let ip = Ip::from(IpAddress::from(resolver));
        let net = self.net_for(ip).filter(|&n| n != LO)?;
        if let Some(&up) = self.dns.upstream.get(&net) {
            return Some(up);
        }
        let local = self.nets[net].addr_like(ip)?;
        let family = if ip.is_v4() { Family::V4 } else { Family::V6 };
        let u = PortUse {
            owner: DNS_OWNER,
            ip: Some(local.into()),
            family,
            v6only: true,
            reuse: false,
            listening: false,
            lingering: false,
        };
        let port = self.take_port(Proto::Udp, 0, u).ok()?;
        let h = match self.new_udp(net, &Arc::new(WaitQueue::default())) {
            Ok(h) => h,
            Err(_) => {
                self.release_port(Proto::Udp, port, DNS_OWNER);
                return None;
            }
        };
        if self.udp(h).bind(IpListenEndpoint { addr: Some(local), port }).is_err() {
            self.free(h);
            self.release_port(Proto::Udp, port, DNS_OWNER);
            return None;
        }
        self.dns.upstream.insert(net, (h, port));
        Some((h, port))
    }

    /// Takes the resolvers' answers: each pins its addresses to the name
    /// asked and goes to the app's socket that asked.
    fn dns_poll(&mut self) {
        let ups: Vec<Handle> = self.dns.upstream.values().map(|&(h, _)| h).collect();
        for h in ups {
            while let Ok((data, meta)) = self.udp(h).recv() {
                let (data, from) = (data.to_vec(), std_ip(meta.endpoint.addr));
                if meta.endpoint.port != dns::DNS_PORT {
                    continue;
                }
                self.dns_deliver(&data, from);
            }
        }
    }

    /// A resolver's answer: pins its addresses to the name asked and goes to
    /// the app's socket that asked; anything else is dropped.
    fn dns_deliver(&mut self, data: &[u8], from: std::net::IpAddr) {
        let Some(a) = self.dns.take_answer(data, from) else { return };
        let now = std::time::Instant::now();
        self.egress.pins.pin(&a.name, &a.addrs, Duration::from_secs(u64::from(a.ttl)), now);
        self.dns.answer(a.owner, &a.wq, a.reply);
    }
}

/// The owner the sandbox's DNS holds its upstream ports as (no socket's inode).
const DNS_OWNER: u64 = u64::MAX;

/// What a stack moved over each link, the TCP connections it made and took
/// (on every interface), and the egress policy's refusals.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct NetStats {
    pub links: Vec<LinkStats>,
    pub tcp_connects: u64,
    pub tcp_accepts: u64,
    pub refusals: u64,
}

/// One link's frames and their bytes each way, and received frames dropped
/// for a full queue.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LinkStats {
    pub name: String,
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub rx_dropped: u64,
}

impl NetStats {
    /// The links' counters added up.
    pub fn total(&self) -> LinkStats {
        self.links.iter().fold(LinkStats::default(), |t, l| LinkStats {
            name: String::new(),
            rx_packets: t.rx_packets + l.rx_packets,
            rx_bytes: t.rx_bytes + l.rx_bytes,
            tx_packets: t.tx_packets + l.tx_packets,
            tx_bytes: t.tx_bytes + l.tx_bytes,
            rx_dropped: t.rx_dropped + l.rx_dropped,
        })
    }
}

/// An interface as netlink and /proc/net show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfaceInfo {
    /// ifindex: `lo` is 1, as in a fresh network namespace; links follow.
    pub index: u32,
    pub name: String,
    pub mtu: u32,
    /// The link's MAC; None for loopback.
    pub mac: Option<[u8; 6]>,
    /// Addresses with their prefix lengths, IPv4 first.
    pub addrs: Vec<(std::net::IpAddr, u8)>,
    /// The routes through it the namespace had (its main table's).
    pub routes: Vec<NetRoute>,
    /// A link's traffic; zeros for loopback (smoltcp's loopback device
    /// counts nothing).
    pub counters: LinkStats,
}

/// A TCP connection (not a listening socket) as /proc/net/tcp shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpConn {
    pub local: std::net::SocketAddr,
    pub remote: std::net::SocketAddr,
    /// Linux's state number (1 ESTABLISHED … 11 CLOSING).
    pub state: u8,
    /// Bytes waiting to be sent and to be read.
    pub tx_queue: usize,
    pub rx_queue: usize,
}

impl Stack {
    /// The stack's interfaces, read from smoltcp's own address list (the one
    /// source of what exists).
    pub fn interfaces(&self) -> Vec<IfaceInfo> {
        let g = self.lock();
        g.nets
            .iter()
            .map(|n| {
                let mut addrs: Vec<(std::net::IpAddr, u8)> =
                    n.iface.ip_addrs().iter().map(|c| (std_ip(c.address()), c.prefix_len())).collect();
                addrs.sort_by_key(|(a, _)| a.is_ipv6());
                IfaceInfo {
                    index: n.index,
                    name: n.name.clone(),
                    mtu: n.mtu,
                    mac: n.mac,
                    addrs,
                    routes: n.routes.clone(),
                    counters: n.counters(),
                }
            })
            .collect()
    }

    /// Every TCP connection the stack holds, closing ones included; listening
    /// smoltcp sockets (a listener's pool) are not connections.
    pub fn tcp_connections(&self) -> Vec<TcpConn> {
        let g = self.lock();
        g.nets
            .iter()
            .flat_map(|n| n.sockets.iter())
            .filter_map(|(_, s)| match s {
                smoltcp::socket::Socket::Tcp(t) => {
                    let state = linux_tcp_state(t.state())?;
                    let (l, r) = (t.local_endpoint()?, t.remote_endpoint()?);
                    let addr = |e: smoltcp::wire::IpEndpoint| std::net::SocketAddr::new(std_ip(e.addr), e.port);
                    Some(TcpConn {
                        local: addr(l),
                        remote: addr(r),
                        state,
                        tx_queue: t.send_queue(),
                        rx_queue: t.recv_queue(),
                    })
                }
                _ => None,
            })
            .collect()
    }
}

fn std_ip(a: smoltcp::wire::IpAddress) -> std::net::IpAddr {
    match Ip::from(a) {
        Ip::V4(a) => a.into(),
        Ip::V6(a) => a.into(),
    }
}

/// Linux's number for a TCP state (include/net/tcp_states.h); None for the
/// states /proc/net/tcp shows no connection in.
fn linux_tcp_state(s: tcp::State) -> Option<u8> {
    Some(match s {
        tcp::State::Established => 1,
        tcp::State::SynSent => 2,
        tcp::State::SynReceived => 3,
        tcp::State::FinWait1 => 4,
        tcp::State::FinWait2 => 5,
        tcp::State::TimeWait => 6,
        tcp::State::CloseWait => 8,
        tcp::State::LastAck => 9,
        tcp::State::Closing => 11,
        tcp::State::Closed | tcp::State::Listen => return None,
    })
}

/// The stacks of the sandboxes in this process, by sandbox id (the Kernel's
/// address, as the abstract Unix namespace tells sandboxes apart).
static STACKS: Mutex<BTreeMap<usize, Weak<Stack>>> = Mutex::new(BTreeMap::new());

/// Makes `stack` the network of sandbox `id`; the caller keeps it alive.
pub fn install(id: usize, stack: &Arc<Stack>) {
    let mut all = STACKS.lock().unwrap_or_else(|e| e.into_inner());
    all.retain(|_, w| w.strong_count() > 0);
    all.insert(id, Arc::downgrade(stack));
}

/// The network of sandbox `id`, if it has one.
pub fn stack_of(id: usize) -> Option<Arc<Stack>> {
    STACKS.lock().unwrap_or_else(|e| e.into_inner()).get(&id).and_then(Weak::upgrade)
}

/// A socket's stat, for every family of the stack: an inode of the
/// anonymous sockfs device, as Linux's, owned by its creator.
fn socket_stat(ino: u64, owner: (u32, u32)) -> crate::vfs::Stat {
    crate::vfs::Stat {
        dev: SOCKFS_DEV,
        ino,
        mode: 0o140777,
        nlink: 1,
        uid: owner.0,
        gid: owner.1,
        blksize: 4096,
        ..Default::default()
    }
}

/// st_dev of socket inodes (an anonymous device, as Linux's sockfs).
const SOCKFS_DEV: u64 = 0x8;

/// SO_RCVTIMEO/SO_SNDTIMEO as getsockopt shows them: a `struct timeval`
/// (zero for none). One form for every socket family.
pub fn timeval_bytes(d: Option<Duration>) -> Vec<u8> {
    use abi::AsBytes;
    let d = d.unwrap_or_default();
    abi::time::Timeval { sec: d.as_secs() as i64, usec: i64::from(d.subsec_micros()) }.as_bytes().to_vec()
}

/// A timeval socket timeout as setsockopt takes it: zero means none; a
/// negative one returns at once; microseconds out of range are EDOM.
pub fn read_timeout(val: &[u8]) -> SysResult<Option<Duration>> {
    use abi::FromBytes;
    let abi::time::Timeval { sec, usec } = abi::time::Timeval::read_from_prefix(val).ok_or(errno!(EINVAL))?;
    if !(0..1_000_000).contains(&usec) {
        return Err(errno!(EDOM));
    }
    if sec < 0 {
        return Ok(Some(Duration::ZERO));
    }
    if sec == 0 && usec == 0 {
        return Ok(None);
    }
    Ok(Some(Duration::new(sec as u64, usec as u32 * 1000)))
}
