//! The sandbox's network stack: smoltcp on a loopback interface (`lo`,
//! 127.0.0.1/8 and ::1/128), driven by the Sentry, with moat's own sockets over it.
//!
//! Nothing here opens a host socket: every packet an app sends goes through the
//! loopback device back into the same stack. The stack is polled after every
//! socket operation and by a timer thread (retransmits, TIME_WAIT), and each
//! poll wakes the wait queues of the sockets whose state it changed.
//!
//! Locking: a socket's own lock (socket.rs) is taken before the stack's lock,
//! never after; the stack lock holds no other Sentry lock except the wait
//! queues it notifies (innermost). App memory is never touched under the stack
//! lock.

pub mod addr;
pub mod netlink;
pub mod policy;
pub mod socket;

use std::collections::{BTreeMap, VecDeque};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::Duration;

use smoltcp::iface::{Config, Interface, PollResult, SocketHandle, SocketSet};
use smoltcp::phy::{Loopback, Medium};
use smoltcp::socket::{tcp, udp};
use smoltcp::wire::{HardwareAddress, IpCidr};

use crate::waiter::WaitQueue;
use crate::SysResult;

use addr::{Family, Ip};

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

/// TCP or UDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
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
    }
}

/// The stack's state, under one lock.
struct Inner {
    iface: Interface,
    dev: Loopback,
    sockets: SocketSet<'static>,
    start: std::time::Instant,
    watch: BTreeMap<SocketHandle, Watch>,
    ports: BTreeMap<(Proto, u16), Vec<PortUse>>,
    /// Closed TCP sockets finishing their close, with the port they hold.
    orphans: Vec<(SocketHandle, u16, u64)>,
    /// Connections in TIME_WAIT, as Linux's timewait minisocks: only their
    /// port (port, owner) stays taken until the deadline; their smoltcp socket
    /// and its buffers are freed, so that closing many connections in a row
    /// does not fill the stack.
    time_wait: VecDeque<(u16, u64, std::time::Instant)>,
    next_ephemeral: u16,
    /// When the timer thread will poll next.
    timer_at: Option<std::time::Instant>,
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
    /// A stack with the loopback interface up, and its timer thread.
    pub fn new() -> Arc<Stack> {
        let mut dev = Loopback::new(Medium::Ip);
        let start = std::time::Instant::now();
        let mut config = Config::new(HardwareAddress::Ip);
        // Initial sequence numbers come from here: not secret on loopback, but apart per sandbox.
        config.random_seed =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
                ^ (std::process::id() as u64) << 32;
        let mut iface = Interface::new(config, &mut dev, smoltcp::time::Instant::ZERO);
        iface.update_ip_addrs(|a| {
            a.push(IpCidr::new(Ipv4Addr::LOCALHOST.into(), 8)).expect("room for two addresses");
            a.push(IpCidr::new(Ipv6Addr::LOCALHOST.into(), 128)).expect("room for two addresses");
        });
        let seed = (config_seed(start) % u64::from(EPHEMERAL.end() - EPHEMERAL.start())) as u16;
        let stack = Arc::new(Stack {
            inner: Mutex::new(Inner {
                iface,
                dev,
                sockets: SocketSet::new(Vec::new()),
                start,
                watch: BTreeMap::new(),
                ports: BTreeMap::new(),
                orphans: Vec::new(),
                time_wait: VecDeque::new(),
                next_ephemeral: EPHEMERAL.start() + seed,
                timer_at: None,
            }),
            timer: Condvar::new(),
        });
        let weak = Arc::downgrade(&stack);
        let spawned = std::thread::Builder::new().name("moat-net".into()).spawn(move || timer_thread(weak));
        if let Err(e) = spawned {
            // Without the thread, connections still work; only timers (TIME_WAIT,
            // retransmits, keep-alives) wait for the next socket operation.
            tracing::warn!(error = %e, "network timer thread not started");
        }
        stack
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
        let d = self.iface.poll_delay(now, &self.sockets)?;
        std::time::Instant::now().checked_add(Duration::from_micros(d.total_micros()))
    }

    /// Moves packets until the loopback device is empty, frees finished
    /// orphans, and wakes every socket that changed.
    fn poll(&mut self) {
        // Each round delivers what the last one sent; a bound keeps a
        // pathological exchange from holding the lock forever (the timer
        // thread picks up the rest).
        for _ in 0..64 {
            let now = self.now();
            let changed = self.iface.poll(now, &mut self.dev, &mut self.sockets);
            if changed == PollResult::None {
                break;
            }
        }
        self.reap_orphans();
        for (h, s) in self.sockets.iter() {
            let Some(w) = self.watch.get_mut(&h) else { continue };
            let sig = signature(s);
            if sig != w.last {
                w.last = sig;
                w.wq.notify_all();
            }
        }
    }

    fn reap_orphans(&mut self) {
        let mut i = 0;
        while i < self.orphans.len() {
            let (h, port, owner) = self.orphans[i];
            let s = self.sockets.get_mut::<tcp::Socket>(h);
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
                    self.sockets.remove(h);
                    self.release_port(Proto::Tcp, port, owner);
                }
                tcp::State::TimeWait => {
                    // Our last ACK is out: nothing more will move on this
                    // connection (a retransmitted FIN gets an RST, which ends
                    // the peer's close as well).
                    self.orphans.swap_remove(i);
                    self.sockets.remove(h);
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
        self.sockets.iter().count()
    }

    /// A new TCP socket watched by `wq`.
    fn new_tcp(&mut self, wq: &Arc<WaitQueue>, nodelay: bool) -> SysResult<SocketHandle> {
        if self.socket_count() >= MAX_SOCKETS {
            return Err(errno!(ENOBUFS));
        }
        let mut s =
            tcp::Socket::new(tcp::SocketBuffer::new(vec![0u8; TCP_BUF]), tcp::SocketBuffer::new(vec![0u8; TCP_BUF]));
        // On loopback an ACK costs nothing; delaying it only adds latency.
        s.set_ack_delay(None);
        s.set_nagle_enabled(!nodelay);
        let h = self.sockets.add(s);
        self.watch.insert(h, Watch { wq: wq.clone(), last: u64::MAX });
        Ok(h)
    }

    fn new_udp(&mut self, wq: &Arc<WaitQueue>) -> SysResult<SocketHandle> {
        if self.socket_count() >= MAX_SOCKETS {
            return Err(errno!(ENOBUFS));
        }
        let buf = || udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; UDP_PACKETS], vec![0u8; UDP_BUF]);
        let h = self.sockets.add(udp::Socket::new(buf(), buf()));
        self.watch.insert(h, Watch { wq: wq.clone(), last: u64::MAX });
        Ok(h)
    }

    /// Stops watching `h` and frees it now.
    fn free(&mut self, h: SocketHandle) {
        self.watch.remove(&h);
        self.sockets.remove(h);
    }

    /// Hands a closing TCP socket over to the stack, which frees it (and the
    /// port its owner held) once its close has finished.
    fn orphan(&mut self, h: SocketHandle, port: u16, owner: u64) {
        self.watch.remove(&h);
        // Freed by the next poll's reap once closed: an aborted socket still has
        // its RST to send.
        self.sockets.get_mut::<tcp::Socket>(h).set_timeout(Some(ORPHAN_TIMEOUT));
        if let Some(uses) = self.ports.get_mut(&(Proto::Tcp, port)) {
            for u in uses.iter_mut().filter(|u| u.owner == owner) {
                u.lingering = true;
                u.listening = false;
            }
        }
        self.orphans.push((h, port, owner));
    }

    fn tcp(&mut self, h: SocketHandle) -> &mut tcp::Socket<'static> {
        self.sockets.get_mut::<tcp::Socket>(h)
    }

    fn udp(&mut self, h: SocketHandle) -> &mut udp::Socket<'static> {
        self.sockets.get_mut::<udp::Socket>(h)
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
}

/// An interface as netlink and /proc/net show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfaceInfo {
    /// ifindex: `lo` is 1, as in a fresh network namespace.
    pub index: u32,
    pub name: &'static str,
    pub mtu: u32,
    /// Addresses with their prefix lengths, IPv4 first.
    pub addrs: Vec<(std::net::IpAddr, u8)>,
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
        let mut addrs: Vec<(std::net::IpAddr, u8)> =
            g.iface.ip_addrs().iter().map(|c| (std_ip(c.address()), c.prefix_len())).collect();
        addrs.sort_by_key(|(a, _)| a.is_ipv6());
        vec![IfaceInfo { index: 1, name: "lo", mtu: 65536, addrs }]
    }

    /// Every TCP connection the stack holds, closing ones included; listening
    /// smoltcp sockets (a listener's pool) are not connections.
    pub fn tcp_connections(&self) -> Vec<TcpConn> {
        let g = self.lock();
        g.sockets
            .iter()
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
