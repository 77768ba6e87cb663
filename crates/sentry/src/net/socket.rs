//! Internet sockets (TCP and UDP over IPv4 and IPv6): the open-file side that
//! apps see, with Linux's states, errors and readiness, over smoltcp sockets.
//!
//! As gVisor's netstack sockets, this is a socket layer of its own, not a thin
//! wrapper: binding and port allocation, a listener's pool of listening
//! smoltcp sockets (each takes one connection) standing for the backlog,
//! connect's progress and its error, half-close, and the options programs set.
//! Operations never block: they return EAGAIN and the syscall layer sleeps on
//! `wq`, which the stack wakes on every change.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use abi::io::{POLLRDHUP, POLLRDNORM, POLLWRNORM};
use abi::net::{
    SOL_SOCKET, SO_ACCEPTCONN, SO_BROADCAST, SO_DOMAIN, SO_ERROR, SO_KEEPALIVE, SO_LINGER, SO_PROTOCOL, SO_RCVBUF,
    SO_RCVBUFFORCE, SO_RCVTIMEO_NEW, SO_RCVTIMEO_OLD, SO_REUSEADDR, SO_REUSEPORT, SO_SNDBUF, SO_SNDBUFFORCE,
    SO_SNDTIMEO_NEW, SO_SNDTIMEO_OLD, SO_TYPE,
};
use abi::tty::FIONREAD;
use abi::{AsBytes, Errno, FromBytes};
use smoltcp::socket::tcp::State as TcpState;
use smoltcp::wire::IpListenEndpoint;

use super::addr::{self, Endpoint, Family, Ip};
use super::{dns, read_timeout, timeval_bytes, Handle, Origin, PortUse, Proto, Stack, LO, MAX_BACKLOG};
use crate::mm::{IoDst, IoSrc};
use crate::vfs::{FileOps, IoctlArg, OpenFile, PollMask, Stat};
use crate::waiter::WaitQueue;
use crate::SysResult;

pub const IPPROTO_IP: i32 = 0;
pub const IPPROTO_ICMP: i32 = 1;
pub const IPPROTO_ICMPV6: i32 = 58;
pub const IPPROTO_TCP: i32 = 6;
pub const IPPROTO_UDP: i32 = 17;
pub const IPPROTO_IPV6: i32 = 41;
const TCP_NODELAY: i32 = 1;
const TCP_MAXSEG: i32 = 2;
const TCP_KEEPIDLE: i32 = 4;
const TCP_KEEPINTVL: i32 = 5;
const TCP_KEEPCNT: i32 = 6;
const IP_TOS: i32 = 1;
const IP_TTL: i32 = 2;
const IP_RECVERR: i32 = 11;
const IP_RECVTTL: i32 = 12;
const IPV6_RECVHOPLIMIT: i32 = 51;
const IPV6_V6ONLY: i32 = 26;
const IPV6_RECVERR: i32 = 25;
const SO_BINDTODEVICE: i32 = 25;
/// Interface names are at most this long, with their NUL.
const IFNAMSIZ: usize = 16;
/// The largest UDP payload over IPv4 and IPv6 (65535 less the headers).
const MAX_UDP_V4: usize = 65_507;
const MAX_UDP_V6: usize = 65_527;
/// The most bytes one send or receive moves through a Sentry buffer.
const PIECE: usize = 64 * 1024;
/// Linux's defaults for SO_SNDBUF and SO_RCVBUF (tcp_wmem, tcp_rmem, and the
/// core defaults for UDP), as getsockopt reports them.
const TCP_SNDBUF: i32 = 16_384;
const TCP_RCVBUF: i32 = 131_072;
const UDP_BUF_DEFAULT: i32 = 212_992;
/// SO_LINGER's time after a negative one was set: MAX_SCHEDULE_TIMEOUT / HZ
/// as an int, with the HZ (250) of Debian's kernels.
const LINGER_FOREVER: i32 = (i64::MAX / 250) as i32;

const RDNORM: PollMask = PollMask::from_bits_retain(POLLRDNORM);
const WRNORM: PollMask = PollMask::from_bits_retain(POLLWRNORM);
const RDHUP: PollMask = PollMask::from_bits_retain(POLLRDHUP);

static NEXT_INO: AtomicU64 = AtomicU64::new(0x5000_0000);

/// Options kept per socket.
#[derive(Debug, Clone)]
pub struct Options {
    pub reuseaddr: bool,
    pub nodelay: bool,
    pub keepalive: bool,
    pub v6only: bool,
    pub sndbuf: i32,
    pub rcvbuf: i32,
    pub linger: (i32, i32),
    pub rcvtimeo: Option<Duration>,
    pub sndtimeo: Option<Duration>,
    /// SO_BINDTODEVICE: the interface (its place in the stack, and its name)
    /// the socket's traffic is held to.
    pub device: Option<(usize, String)>,
    /// Options only stored and reported back, by (level, name).
    stored: BTreeMap<(i32, i32), i32>,
}

/// Where a socket stands.
#[derive(Debug)]
enum Conn {
    /// TCP: neither connected nor listening. UDP before it has a smoltcp socket.
    Idle,
    /// Listening: `pool` holds listening smoltcp sockets and the connections
    /// they took that wait for accept, at most `backlog` in all.
    Listening {
        pool: VecDeque<Handle>,
        backlog: usize,
    },
    Connecting(Handle),
    Connected {
        h: Handle,
        peer: Endpoint,
    },
    /// A TCP connection that ended (refused, reset): the smoltcp socket is gone.
    Ended {
        peer: Option<Endpoint>,
    },
    /// A UDP socket: one smoltcp socket on each interface its binding covers
    /// (a datagram leaves by the one its route takes, and arrives on any).
    Udp {
        hs: Vec<Handle>,
        peer: Option<Endpoint>,
    },
}

#[derive(Debug)]
struct State {
    conn: Conn,
    /// The bound address (its ip may be unspecified), once bound.
    local: Option<Endpoint>,
    /// The port this socket holds in the stack's table.
    port_held: Option<u16>,
    /// The pending SO_ERROR.
    error: Option<crate::Error>,
    shut_rd: bool,
    shut_wr: bool,
    /// The peer's FIN was seen: a reset after it is EPIPE, not ECONNRESET.
    peer_fin: bool,
    opts: Options,
}

/// One received message: bytes copied, the datagram's full length, and its sender.
#[derive(Debug, Default)]
pub struct Received {
    pub copied: usize,
    pub msg_len: usize,
    pub truncated: bool,
    pub from: Option<Vec<u8>>,
}

/// An AF_INET or AF_INET6 socket.
#[derive(Debug)]
pub struct InetSocket {
    pub family: Family,
    pub proto: Proto,
    pub ino: u64,
    /// Woken on every change of this socket's readiness.
    pub wq: Arc<WaitQueue>,
    stack: Arc<Stack>,
    st: Mutex<State>,
    owner: (u32, u32),
}

/// What connect(2) got to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connect {
    Done,
    /// The handshake is under way: EINPROGRESS, or wait for `connect_result`.
    InProgress,
}

impl InetSocket {
    /// A new socket; `owner` is (uid, gid) for stat.
    pub fn new(stack: Arc<Stack>, family: Family, proto: Proto, owner: (u32, u32)) -> Arc<InetSocket> {
        let (sndbuf, rcvbuf) = match proto {
            Proto::Tcp => (TCP_SNDBUF, TCP_RCVBUF),
            Proto::Udp | Proto::Ping => (UDP_BUF_DEFAULT, UDP_BUF_DEFAULT),
        };
        Arc::new(InetSocket {
            family,
            proto,
            ino: NEXT_INO.fetch_add(1, Ordering::Relaxed),
            wq: Arc::new(WaitQueue::default()),
            stack,
            st: Mutex::new(State {
                conn: Conn::Idle,
                local: None,
                port_held: None,
                error: None,
                shut_rd: false,
                shut_wr: false,
                peer_fin: false,
                opts: Options {
                    reuseaddr: false,
                    nodelay: false,
                    keepalive: false,
                    v6only: false,
                    sndbuf,
                    rcvbuf,
                    linger: (0, 0),
                    rcvtimeo: None,
                    sndtimeo: None,
                    device: None,
                    stored: BTreeMap::new(),
                },
            }),
            owner,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn options(&self) -> Options {
        self.lock().opts.clone()
    }

    /// Whether `ip` is an address of this stack that a socket of this family may use.
    fn local_ip_ok(&self, ip: Ip, v6only: bool) -> SysResult<()> {
        if ip.is_v4() && self.family == Family::V6 && v6only {
            return Err(errno!(EINVAL));
        }
        if ip.is_unspecified() || self.stack.with(|i| i.is_local(ip)) {
            Ok(())
        } else {
            Err(errno!(EADDRNOTAVAIL))
        }
    }

    fn port_use(&self, st: &State, ip: Option<Ip>) -> PortUse {
        PortUse {
            owner: self.ino,
            ip: ip.filter(|i| !i.is_unspecified()),
            family: self.family,
            v6only: st.opts.v6only,
            reuse: st.opts.reuseaddr,
            listening: false,
            lingering: false,
        }
    }

    /// bind(2). `may_bind_low`: the caller holds CAP_NET_BIND_SERVICE.
    pub fn bind(&self, e: Endpoint, may_bind_low: bool) -> SysResult<()> {
        let mut st = self.lock();
        self.local_ip_ok(e.ip, st.opts.v6only)?;
        // A ping socket's port is its echo identifier: any will do.
        if e.port != 0 && e.port < 1024 && !may_bind_low && self.proto != Proto::Ping {
            return Err(errno!(EACCES));
        }
        if st.local.is_some() || !matches!(st.conn, Conn::Idle) {
            return Err(errno!(EINVAL));
        }
        // A socket bound to one IPv6 address takes IPv6 only, as Linux's inet6_bind sets.
        let v6only_before = st.opts.v6only;
        if matches!(e.ip, Ip::V6(a) if !a.is_unspecified()) {
            st.opts.v6only = true;
        }
        let u = self.port_use(&st, Some(e.ip));
        let proto = self.proto;
        let port = match self.stack.with(|i| i.take_port(proto, e.port, u)) {
            Ok(p) => p,
            Err(err) => {
                st.opts.v6only = v6only_before;
                return Err(err);
            }
        };
        st.local = Some(Endpoint { ip: e.ip, port });
        st.port_held = Some(port);
        if self.proto.is_datagram() {
            if let Err(e) = self.udp_open(&mut st) {
                self.stack.with(|i| i.release_port(proto, port, self.ino));
                st.local = None;
                st.port_held = None;
                return Err(e);
            }
        }
        Ok(())
    }

    /// Binds to an ephemeral port on the unspecified address if not bound yet.
    fn autobind(&self, st: &mut State) -> SysResult<Endpoint> {
        if let Some(l) = st.local {
            return Ok(l);
        }
        let u = self.port_use(st, None);
        let proto = self.proto;
        let port = self.stack.with(|i| i.take_port(proto, 0, u))?;
        let l = Endpoint { ip: addr::unspecified(self.family).ip, port };
        st.local = Some(l);
        st.port_held = Some(port);
        Ok(l)
    }

    /// Makes the UDP socket's smoltcp sockets, one on each interface its
    /// binding covers, on first use; returns them.
    fn udp_open(&self, st: &mut State) -> SysResult<Vec<Handle>> {
        if let Conn::Udp { hs, .. } = &st.conn {
            return Ok(hs.clone());
        }
        let l = self.autobind(st)?;
        let (wq, family, v6only, proto) = (self.wq.clone(), self.family, st.opts.v6only, self.proto);
        let device = st.opts.device.as_ref().map(|(d, _)| *d);
        let hs = self.stack.with(|i| -> SysResult<Vec<Handle>> {
            let bound = (!l.ip.is_unspecified()).then_some(l.ip);
            let mut hs = Vec::new();
            for net in i.nets_for_bind(bound, family, v6only).into_iter().filter(|n| device.is_none_or(|d| d == *n)) {
                let ep = i.listen_endpoint(net, l, family, v6only);
                let made = i.new_datagram(proto, net, &wq, ep);
                match made {
                    Ok(h) => hs.push(h),
                    Err(e) => {
                        hs.into_iter().for_each(|h| i.free(h));
                        return Err(e);
                    }
                }
            }
            Ok(hs)
        })?;
        st.conn = Conn::Udp { hs: hs.clone(), peer: None };
        Ok(hs)
    }

    /// listen(2).
    pub fn listen(&self, backlog: i32) -> SysResult<()> {
        if self.proto != Proto::Tcp {
            return Err(errno!(EOPNOTSUPP));
        }
        let backlog = if backlog < 0 { MAX_BACKLOG } else { (backlog as usize).clamp(1, MAX_BACKLOG) };
        let mut st = self.lock();
        match &mut st.conn {
            Conn::Listening { backlog: b, .. } => {
                *b = backlog;
            }
            Conn::Idle | Conn::Ended { .. } => {
                let l = self.autobind(&mut st)?;
                let ino = self.ino;
                self.stack.with(|i| i.set_listening(l.port, ino))?;
                st.conn = Conn::Listening { pool: VecDeque::new(), backlog };
            }
            _ => return Err(errno!(EINVAL)),
        }
        self.refill(&mut st)
    }

    /// Tops the listener's pool up to its backlog with listening sockets, and
    /// puts back to listening those whose handshake failed.
    /// Each interface the binding covers has its own listening sockets, up to
    /// the backlog: a wildcard listener takes connections on `lo` and on the links.
    fn refill(&self, st: &mut State) -> SysResult<()> {
        let (Some(l), v6only, nodelay) = (st.local, st.opts.v6only, st.opts.nodelay) else {
            return Err(errno!(EINVAL));
        };
        let device = st.opts.device.as_ref().map(|(d, _)| *d);
        let Conn::Listening { pool, backlog } = &mut st.conn else { return Ok(()) };
        let (wq, family) = (self.wq.clone(), self.family);
        self.stack.with(|i| {
            let bound = (!l.ip.is_unspecified()).then_some(l.ip);
            for net in i.nets_for_bind(bound, family, v6only).into_iter().filter(|n| device.is_none_or(|d| d == *n)) {
                let ep = i.listen_endpoint(net, l, family, v6only);
                for &h in pool.iter().filter(|h| h.net == net) {
                    let s = i.tcp(h);
                    if s.state() == TcpState::Closed {
                        // Listening on an endpoint that listened before cannot fail.
                        let _ = s.listen(ep);
                    }
                }
                while pool.iter().filter(|h| h.net == net).count() < *backlog {
                    let Ok(h) = i.new_tcp(net, &wq, nodelay) else { break };
                    if i.tcp(h).listen(ep).is_err() {
                        i.free(h);
                        break;
                    }
                    pool.push_back(h);
                }
            }
        });
        if pool.is_empty() {
            return Err(errno!(ENOBUFS));
        }
        Ok(())
    }

    /// accept(2): the next established connection, or EAGAIN.
    pub fn accept(&self) -> SysResult<(Arc<InetSocket>, Endpoint)> {
        let mut st = self.lock();
        if !matches!(st.conn, Conn::Listening { .. }) {
            return Err(errno!(EINVAL));
        }
        let child = InetSocket::new(self.stack.clone(), self.family, self.proto, self.owner);
        {
            let mut cst = child.lock();
            cst.opts = st.opts.clone();
            cst.opts.v6only = st.opts.v6only;
        }
        let Conn::Listening { pool, .. } = &mut st.conn else { unreachable!("checked above") };
        let cwq = child.wq.clone();
        let got = self.stack.with(|i| {
            let pos = pool.iter().position(|&h| {
                !matches!(i.tcp(h).state(), TcpState::Listen | TcpState::SynReceived | TcpState::Closed)
            })?;
            let h = pool.remove(pos)?;
            let s = i.tcp(h);
            let (local, peer) = (s.local_endpoint()?, s.remote_endpoint()?);
            if let Some(w) = i.watch.get_mut(&h) {
                w.wq = cwq;
                w.last = u64::MAX;
            }
            i.accepts += 1;
            Some((h, Endpoint::from(local), Endpoint::from(peer)))
        });
        let Some((h, local, peer)) = got else { return Err(errno!(EAGAIN)) };
        {
            let mut cst = child.lock();
            cst.conn = Conn::Connected { h, peer };
            cst.local = Some(local);
        }
        self.refill(&mut st)?;
        Ok((child, peer))
    }

    /// connect(2) for TCP and UDP. `Err(EALREADY)` while a connect is under way.
    /// A non-blocking TCP connect is always in progress when it returns, as on
    /// Linux: how it ended shows in poll and SO_ERROR.
    ///
    /// A destination beyond the sandbox that the egress policy refuses fails
    /// at once (ECONNREFUSED for TCP, EPERM for UDP, except a UDP socket
    /// connected to port 53, whose questions the sandbox's DNS answers), and
    /// the refusal is audited as coming from `who`.
    pub fn connect(&self, target: addr::Parsed, nonblock: bool, who: &Origin) -> SysResult<Connect> {
        let mut st = self.lock();
        let e = match target {
            addr::Parsed::Unspec => return self.disconnect(&mut st),
            addr::Parsed::Addr(e) => e,
        };
        let (remote, net) = self.route(&st, e)?;
        if net != LO {
            let proto = self.proto;
            let refused = self.stack.with(|i| {
                if proto == Proto::Udp && remote.port == dns::DNS_PORT {
                    false
                } else {
                    !i.egress_allows(remote, proto, who)
                }
            });
            if refused {
                return Err(if proto == Proto::Tcp { errno!(ECONNREFUSED) } else { errno!(EPERM) });
            }
        }
        if self.proto.is_datagram() {
            self.udp_open(&mut st)?;
            if let Conn::Udp { peer, .. } = &mut st.conn {
                *peer = Some(remote);
            }
            return Ok(Connect::Done);
        }
        match st.conn {
            Conn::Idle | Conn::Ended { .. } => {}
            Conn::Connecting(_) => return Err(errno!(EALREADY)),
            _ => return Err(errno!(EISCONN)),
        }
        // No ephemeral port left is EADDRNOTAVAIL for connect, as on Linux.
        let l = self.autobind(&mut st).map_err(|e| if e == Errno::EADDRINUSE { errno!(EADDRNOTAVAIL) } else { e })?;
        if remote.port == 0 {
            // Linux sends the SYN, and port 0's RST refuses it.
            st.conn = Conn::Ended { peer: None };
            st.error = Some(errno!(ECONNREFUSED));
            self.wq.notify_all();
            return if nonblock {
                Ok(Connect::InProgress)
            } else {
                Err(st.error.take().unwrap_or(errno!(ECONNREFUSED)))
            };
        }
        let local = IpListenEndpoint { addr: (!l.ip.is_unspecified()).then(|| l.ip.into()), port: l.port };
        let (wq, nodelay, keepalive, family, v6only) =
            (self.wq.clone(), st.opts.nodelay, st.opts.keepalive, self.family, st.opts.v6only);
        let h = self.stack.with(|i| -> SysResult<Handle> {
            // A socket bound to an address of another interface cannot reach this one.
            if local.addr.is_some() && !i.nets_for_bind(Some(l.ip), family, v6only).contains(&net) {
                return Err(errno!(ENETUNREACH));
            }
            let h = i.new_tcp(net, &wq, nodelay)?;
            if keepalive {
                i.tcp(h).set_keep_alive(Some(smoltcp::time::Duration::from_secs(7200)));
            }
            if let Err(e) = i.connect_tcp(h, remote, local) {
                i.free(h);
                return Err(e);
            }
            Ok(h)
        })?;
        st.error = None;
        st.conn = Conn::Connecting(h);
        self.refresh(&mut st);
        if nonblock {
            return Ok(Connect::InProgress);
        }
        match st.conn {
            Conn::Connected { .. } => Ok(Connect::Done),
            Conn::Ended { .. } => Err(st.error.take().unwrap_or(errno!(ECONNREFUSED))),
            _ => Ok(Connect::InProgress),
        }
    }

    /// How a connect under way ended: EAGAIN while it has not.
    pub fn connect_result(&self) -> SysResult<()> {
        let mut st = self.lock();
        self.refresh(&mut st);
        match st.conn {
            Conn::Connecting(_) => Err(errno!(EAGAIN)),
            Conn::Connected { .. } => Ok(()),
            _ => Err(st.error.take().unwrap_or(errno!(ECONNREFUSED))),
        }
    }

    /// The remote endpoint for a destination and the interface it is reached
    /// by, or why it cannot be: the unspecified address means this host, as on Linux.
    fn route(&self, st: &State, e: Endpoint) -> SysResult<(Endpoint, usize)> {
        let ip = if e.ip.is_unspecified() { e.ip.loopback_of() } else { e.ip };
        if ip.is_v4() && self.family == Family::V6 && st.opts.v6only {
            return Err(errno!(ENETUNREACH));
        }
        if let Some(l) = st.local {
            if !l.ip.is_unspecified() && l.ip.is_v4() != ip.is_v4() {
                return Err(errno!(EAFNOSUPPORT));
            }
        }
        let net = self.stack.with(|i| i.net_for(ip)).ok_or(errno!(ENETUNREACH))?;
        // A socket held to one interface reaches only what that one does.
        if st.opts.device.as_ref().is_some_and(|(dev, _)| *dev != net) {
            return Err(errno!(ENETUNREACH));
        }
        Ok((Endpoint { ip, port: e.port }, net))
    }

    fn disconnect(&self, st: &mut State) -> SysResult<Connect> {
        match std::mem::replace(&mut st.conn, Conn::Idle) {
            Conn::Udp { hs, .. } => st.conn = Conn::Udp { hs, peer: None },
            Conn::Connected { h, .. } | Conn::Connecting(h) => {
                let (port, ino) = (st.local.map_or(0, |l| l.port), self.ino);
                self.stack.with(|i| {
                    i.tcp(h).abort();
                    i.orphan(h, port, ino);
                });
                st.port_held = None;
                st.local = None;
            }
            other => st.conn = other,
        }
        self.wq.notify_all();
        Ok(Connect::Done)
    }

    /// Moves a connect under way, or a connection, to where smoltcp says it is.
    fn refresh(&self, st: &mut State) {
        let h = match st.conn {
            Conn::Connecting(h) | Conn::Connected { h, .. } => h,
            _ => return,
        };
        let (state, peer) = self.stack.with(|i| {
            let s = i.tcp(h);
            (s.state(), s.remote_endpoint())
        });
        match (&st.conn, state) {
            (Conn::Connecting(_), TcpState::SynSent | TcpState::SynReceived) => {}
            (Conn::Connecting(_), TcpState::Closed) => {
                // Refused (a reset), unless a connect over a link timed out.
                let why = self.stack.with(|i| i.take_connect_error(h));
                st.error = Some(why.unwrap_or(errno!(ECONNREFUSED)));
                self.end(st, h, None);
            }
            (Conn::Connecting(_), _) => {
                let peer = peer.map(Endpoint::from).unwrap_or(addr::unspecified(self.family));
                let local = self.stack.with(|i| i.tcp(h).local_endpoint());
                if let Some(l) = local {
                    st.local = Some(Endpoint { ip: l.addr.into(), port: l.port });
                }
                st.conn = Conn::Connected { h, peer };
            }
            (Conn::Connected { peer, .. }, TcpState::Closed) if !st.shut_wr => {
                // Closed without our FIN: the peer reset the connection (after
                // its own FIN, Linux's tcp_reset says EPIPE).
                let peer = Some(*peer);
                st.error = Some(if st.peer_fin { errno!(EPIPE) } else { errno!(ECONNRESET) });
                self.end(st, h, peer);
            }
            (Conn::Connected { .. }, TcpState::CloseWait | TcpState::LastAck) => st.peer_fin = true,
            _ => {}
        }
    }

    /// The connection is over: frees its smoltcp socket (the port stays held).
    fn end(&self, st: &mut State, h: Handle, peer: Option<Endpoint>) {
        self.stack.with(|i| i.free(h));
        st.conn = Conn::Ended { peer };
        st.shut_rd = true;
        st.shut_wr = true;
        self.wq.notify_all();
    }

    /// Sends up to `len` bytes (TCP) taken from `fill(offset, n)`; EAGAIN when
    /// the send buffer is full. UDP sends one datagram to `to` or the peer.
    /// A datagram the egress policy refuses is EPERM, audited as from `who`.
    pub fn send(
        &self,
        len: usize,
        to: Option<addr::Parsed>,
        fill: &mut dyn FnMut(usize, usize) -> SysResult<Vec<u8>>,
        who: &Origin,
    ) -> SysResult<usize> {
        match self.proto {
            Proto::Tcp => self.send_stream(len, fill),
            Proto::Udp | Proto::Ping => self.send_datagram(len, to, fill, who),
        }
    }

    fn send_stream(&self, len: usize, fill: &mut dyn FnMut(usize, usize) -> SysResult<Vec<u8>>) -> SysResult<usize> {
        let mut st = self.lock();
        self.refresh(&mut st);
        if let Some(e) = st.error.take() {
            return Err(e);
        }
        let h = match st.conn {
            Conn::Connected { h, .. } => h,
            Conn::Connecting(_) => return Err(errno!(EAGAIN)),
            _ => return Err(errno!(EPIPE)),
        };
        if st.shut_wr {
            return Err(errno!(EPIPE));
        }
        let room = self.stack.with(|i| {
            let s = i.tcp(h);
            s.may_send().then(|| s.send_capacity() - s.send_queue())
        });
        let Some(room) = room else { return Err(errno!(EPIPE)) };
        if len == 0 {
            return Ok(0);
        }
        if room == 0 {
            return Err(errno!(EAGAIN));
        }
        // The app's bytes are copied with no stack lock held; only this thread
        // (under the socket lock) adds to the send buffer, so the room stays.
        let data = fill(0, len.min(room).min(PIECE))?;
        Ok(self.stack.with(|i| i.tcp(h).send_slice(&data).unwrap_or(0)))
    }

    fn send_datagram(
        &self,
        len: usize,
        to: Option<addr::Parsed>,
        fill: &mut dyn FnMut(usize, usize) -> SysResult<Vec<u8>>,
        who: &Origin,
    ) -> SysResult<usize> {
        let mut st = self.lock();
        if st.shut_wr {
            return Err(errno!(EPIPE));
        }
        let target = match to {
            // A ping socket's destination has no port (it is ignored).
            Some(addr::Parsed::Addr(e)) => {
                if e.port == 0 && self.proto == Proto::Udp {
                    return Err(errno!(EINVAL));
                }
                e
            }
            _ => match st.conn {
                Conn::Udp { peer: Some(p), .. } => p,
                _ => return Err(errno!(EDESTADDRREQ)),
            },
        };
        let (dest, net) = self.route(&st, target)?;
        let proto = self.proto;
        let max = if dest.ip.is_v4() { MAX_UDP_V4 } else { MAX_UDP_V6 };
        if len > max {
            return Err(errno!(EMSGSIZE));
        }
        let hs = self.udp_open(&mut st)?;
        // The socket's smoltcp socket on the interface the datagram leaves by:
        // none when it is bound to an address of another (Linux: EINVAL).
        let h = *hs.iter().find(|h| h.net == net).ok_or(errno!(EINVAL))?;
        // Some(true): a question for the sandbox's DNS, which answers on this
        // socket; Some(false): refused by the egress policy.
        let diverted = self.stack.with(|i| {
            if proto == Proto::Ping {
                return (net != LO && !i.egress_allows(dest, proto, who)).then_some(false);
            }
            if net == LO {
                // A resolver on loopback that nothing in the sandbox serves
                // (systemd-resolved's 127.0.0.53 in the host's resolv.conf):
                // the sandbox's DNS answers in its place.
                return (dest.port == dns::DNS_PORT && i.dns_unserved(dest)).then_some(true);
            }
            // A question to a resolver the policy refuses, or to any while
            // rules name domains (their allow or deny must hold for it).
            if dest.port == dns::DNS_PORT && (i.egress_refuses_quietly(dest) || i.egress.policy.has_names()) {
                return Some(true);
            }
            (!i.egress_allows(dest, Proto::Udp, who)).then_some(false)
        });
        match diverted {
            Some(true) => {
                let data = fill(0, len)?;
                let (ino, wq) = (self.ino, self.wq.clone());
                self.stack.with(|i| i.dns_ask(ino, &wq, &data, dest, who));
                return Ok(data.len());
            }
            Some(false) => return Err(errno!(EPERM)),
            None => {}
        }
        if !self.stack.with(|i| i.datagram_room(proto, h, len)) {
            return Err(errno!(EAGAIN));
        }
        let mut data = fill(0, len)?;
        if proto == Proto::Ping {
            let ident = st.local.map_or(0, |l| l.port);
            echo_request(&mut data, dest.ip.is_v4(), ident)?;
        }
        self.stack.with(|i| i.datagram_send(proto, h, &data, dest))?;
        Ok(data.len())
    }

    /// Receives up to `len` bytes into `out(offset, bytes)`; EAGAIN when nothing
    /// is there; `copied == 0` at end of stream.
    pub fn recv(
        &self,
        len: usize,
        peek: bool,
        out: &mut dyn FnMut(usize, &[u8]) -> SysResult<()>,
    ) -> SysResult<Received> {
        match self.proto {
            Proto::Tcp => self.recv_stream(len, peek, out),
            Proto::Udp | Proto::Ping => self.recv_datagram(len, peek, out),
        }
    }

    fn recv_stream(
        &self,
        len: usize,
        peek: bool,
        out: &mut dyn FnMut(usize, &[u8]) -> SysResult<()>,
    ) -> SysResult<Received> {
        let mut st = self.lock();
        self.refresh(&mut st);
        let h = match st.conn {
            Conn::Connected { h, .. } => h,
            Conn::Connecting(_) => return Err(errno!(EAGAIN)),
            Conn::Ended { peer: Some(_) } => {
                return st.error.take().map_or(Ok(Received::default()), Err);
            }
            _ => return Err(st.error.take().unwrap_or(errno!(ENOTCONN))),
        };
        let want = len.min(PIECE);
        let (buf, open) = self.stack.with(|i| {
            let s = i.tcp(h);
            let mut buf = vec![0u8; want.min(s.recv_queue())];
            let n = s.peek_slice(&mut buf).unwrap_or(0);
            buf.truncate(n);
            (buf, s.may_recv())
        });
        if buf.is_empty() {
            if len == 0 || st.shut_rd || !open {
                return Ok(Received::default());
            }
            return Err(errno!(EAGAIN));
        }
        out(0, &buf)?;
        if !peek {
            self.stack.with(|i| {
                let s = i.tcp(h);
                let mut left = buf.len();
                while left > 0 {
                    let took = s.recv(|b| {
                        let k = b.len().min(left);
                        (k, k)
                    });
                    match took {
                        Ok(k) if k > 0 => left -= k,
                        _ => break,
                    }
                }
            });
        }
        Ok(Received { copied: buf.len(), msg_len: buf.len(), truncated: false, from: None })
    }

    fn recv_datagram(
        &self,
        len: usize,
        peek: bool,
        out: &mut dyn FnMut(usize, &[u8]) -> SysResult<()>,
    ) -> SysResult<Received> {
        let mut st = self.lock();
        let (hs, peer) = match &st.conn {
            Conn::Udp { hs, peer } => (hs.clone(), *peer),
            // An unbound UDP socket has nothing to receive yet: it waits (Linux binds it on send).
            _ => {
                return if st.shut_rd { Ok(Received::default()) } else { Err(errno!(EAGAIN)) };
            }
        };
        let (ino, proto) = (self.ino, self.proto);
        // A connected socket takes datagrams from its peer only (a ping
        // socket's replies come from port 0).
        let from_peer =
            |from: Endpoint| peer.is_none_or(|p| p.ip == from.ip && (proto == Proto::Ping || p.port == from.port));
        // The sandbox's DNS answers first, then each interface's datagrams.
        let got = self.stack.with(|i| {
            if let Some((reply, from)) = i.dns.next_reply(ino, true) {
                let n = reply.len().min(len);
                return Some((reply[..n].to_vec(), reply.len(), from, None));
            }
            for &h in &hs {
                while let Some((data, from)) = i.datagram_peek(proto, h) {
                    if !from_peer(from) {
                        i.datagram_drop(proto, h);
                        continue;
                    }
                    let n = data.len().min(len);
                    return Some((data[..n].to_vec(), data.len(), from, Some(h)));
                }
            }
            None
        });
        let Some((data, full, from, h)) = got else {
            return if st.shut_rd { Ok(Received::default()) } else { Err(errno!(EAGAIN)) };
        };
        let copied = out(0, &data);
        // A datagram that could not be copied out is dropped all the same,
        // as udp_recvmsg does: a bad buffer must not wedge the queue.
        if !peek {
            self.stack.with(|i| match h {
                Some(h) => i.datagram_drop(proto, h),
                None => drop(i.dns.next_reply(ino, false)),
            });
        }
        copied?;
        st.error = None;
        Ok(Received {
            copied: data.len(),
            msg_len: full,
            truncated: full > data.len(),
            from: Some(addr::encode(self.family, from)),
        })
    }

    /// shutdown(2): SHUT_RD (0), SHUT_WR (1), SHUT_RDWR (2).
    pub fn shutdown(&self, how: i32) -> SysResult<()> {
        if !(0..=2).contains(&how) {
            return Err(errno!(EINVAL));
        }
        let mut st = self.lock();
        self.refresh(&mut st);
        match st.conn {
            Conn::Connected { h, .. } | Conn::Connecting(h) => {
                // A connection whose close has finished both ways is TCP_CLOSE
                // to Linux (its TIME_WAIT is a socket of its own): ENOTCONN.
                let state = self.stack.with(|i| i.tcp(h).state());
                if matches!(state, TcpState::Closed | TcpState::TimeWait) {
                    return Err(errno!(ENOTCONN));
                }
                if how != 0 && !st.shut_wr {
                    st.shut_wr = true;
                    self.stack.with(|i| i.tcp(h).close());
                }
            }
            // Shutting a listener's receive side stops it listening, as
            // Linux's tcp_disconnect: pending connections are reset, and a
            // thread blocked in accept wakes with EINVAL.
            Conn::Listening { .. } if how != 1 => {
                let Conn::Listening { pool, .. } = std::mem::replace(&mut st.conn, Conn::Idle) else {
                    unreachable!("matched above")
                };
                let (port, ino) = (st.port_held.unwrap_or(0), self.ino);
                self.stack.with(|i| {
                    for h in pool {
                        i.tcp(h).abort();
                        i.orphan(h, 0, ino);
                    }
                    i.stop_listening(port, ino);
                });
                self.wq.notify_all();
                return Ok(());
            }
            Conn::Listening { .. } => return Ok(()),
            Conn::Udp { peer: Some(_), .. } => {
                if how != 0 {
                    st.shut_wr = true;
                }
            }
            _ => return Err(errno!(ENOTCONN)),
        }
        if how != 1 {
            st.shut_rd = true;
        }
        self.wq.notify_all();
        Ok(())
    }

    /// getsockname's address.
    pub fn local_address(&self) -> Vec<u8> {
        let st = self.lock();
        addr::encode(self.family, st.local.unwrap_or(addr::unspecified(self.family)))
    }

    /// getpeername's address (ENOTCONN when there is no peer).
    pub fn peer_address(&self) -> SysResult<Vec<u8>> {
        let mut st = self.lock();
        self.refresh(&mut st);
        match st.conn {
            Conn::Connected { peer, .. } | Conn::Udp { peer: Some(peer), .. } => Ok(addr::encode(self.family, peer)),
            _ => Err(errno!(ENOTCONN)),
        }
    }

    /// Readiness, as Linux's tcp_poll and udp_poll report it.
    pub fn poll_mask(&self) -> PollMask {
        let mut st = self.lock();
        self.refresh(&mut st);
        let mut m = PollMask::empty();
        if st.error.is_some() {
            m |= PollMask::ERR;
        }
        let readable = PollMask::IN | RDNORM;
        let writable = PollMask::OUT | WRNORM;
        match st.conn {
            Conn::Idle => {
                m |= if self.proto == Proto::Tcp { PollMask::HUP | writable } else { writable };
            }
            Conn::Listening { ref pool, .. } => {
                let ready = self.stack.with(|i| {
                    pool.iter().any(|&h| {
                        !matches!(i.tcp(h).state(), TcpState::Listen | TcpState::SynReceived | TcpState::Closed)
                    })
                });
                if ready {
                    m |= readable;
                }
            }
            Conn::Connecting(_) => {}
            Conn::Ended { .. } => m |= PollMask::HUP | RDHUP | readable | writable,
            Conn::Connected { h, .. } => {
                let (queued, may_recv, room, may_send, used) = self.stack.with(|i| {
                    let s = i.tcp(h);
                    (s.recv_queue(), s.may_recv(), s.send_capacity() - s.send_queue(), s.may_send(), s.send_queue())
                });
                let rd_done = st.shut_rd || !may_recv;
                if queued > 0 || rd_done {
                    m |= readable;
                }
                if !may_recv {
                    m |= RDHUP;
                }
                if rd_done && (st.shut_wr || !may_send) {
                    m |= PollMask::HUP;
                }
                // Writable when at least a third of the buffer is free, as sk_stream_is_writeable.
                if st.shut_wr || !may_send || (room > 0 && room >= used / 2) {
                    m |= writable;
                }
            }
            Conn::Udp { ref hs, .. } => {
                let (ino, proto) = (self.ino, self.proto);
                let (can_recv, can_send) = self.stack.with(|i| {
                    let dns = i.dns.has_reply(ino);
                    hs.iter().fold((dns, false), |(r, w), &h| {
                        let (can_recv, can_send) = i.datagram_ready(proto, h);
                        (r || can_recv, w || can_send)
                    })
                });
                if can_recv || st.shut_rd {
                    m |= readable;
                }
                if can_send {
                    m |= writable;
                }
                if st.shut_rd && st.shut_wr {
                    m |= PollMask::HUP;
                }
            }
        }
        m
    }

    /// FIONREAD: unread bytes (TCP) or the next datagram's size (UDP).
    pub fn readable_bytes(&self) -> SysResult<usize> {
        let st = self.lock();
        match st.conn {
            Conn::Listening { .. } => Err(errno!(EINVAL)),
            Conn::Connected { h, .. } => Ok(self.stack.with(|i| i.tcp(h).recv_queue())),
            Conn::Udp { ref hs, .. } => Ok(self.stack.with(|i| {
                if let Some((reply, _)) = i.dns.next_reply(self.ino, true) {
                    return reply.len();
                }
                hs.iter().find_map(|&h| i.datagram_peek(self.proto, h).map(|(d, _)| d.len())).unwrap_or(0)
            })),
            _ => Ok(0),
        }
    }

    /// Closes the socket: a connection is closed with a FIN (or reset when
    /// data was left unread, or SO_LINGER with a zero timeout), and finishes
    /// in the stack; a listener resets the connections it had not handed out.
    pub fn close(&self) {
        let mut st = self.lock();
        let conn = std::mem::replace(&mut st.conn, Conn::Ended { peer: None });
        let port = st.port_held.take();
        let (proto, ino, linger_zero) = (self.proto, self.ino, st.opts.linger == (1, 0));
        self.stack.with(|i| {
            match conn {
                Conn::Listening { pool, .. } => {
                    for h in pool {
                        i.tcp(h).abort();
                        i.orphan(h, 0, ino);
                    }
                }
                Conn::Connected { h, .. } | Conn::Connecting(h) => {
                    let s = i.tcp(h);
                    if s.recv_queue() > 0 || linger_zero {
                        s.abort();
                    } else {
                        s.close();
                    }
                    // The port goes back once the close has finished.
                    i.orphan(h, port.unwrap_or(0), ino);
                    return;
                }
                Conn::Udp { hs, .. } => {
                    hs.into_iter().for_each(|h| i.free(h));
                    i.dns.forget(ino);
                }
                Conn::Idle | Conn::Ended { .. } => {}
            }
            if let Some(p) = port {
                i.release_port(proto, p, ino);
            }
        });
        self.wq.notify_all();
    }

    /// getsockopt(2): the option's bytes.
    pub fn getsockopt(&self, level: i32, name: i32) -> SysResult<Vec<u8>> {
        let mut st = self.lock();
        let int = |v: i32| v.as_bytes().to_vec();
        let o = &st.opts;
        let v = match (level, name) {
            (SOL_SOCKET, SO_TYPE) => int(if self.proto == Proto::Tcp { 1 } else { 2 }),
            (SOL_SOCKET, SO_DOMAIN) => int(self.family.domain()),
            (SOL_SOCKET, SO_PROTOCOL) => int(match (self.proto, self.family) {
                (Proto::Tcp, _) => IPPROTO_TCP,
                (Proto::Udp, _) => IPPROTO_UDP,
                (Proto::Ping, Family::V4) => IPPROTO_ICMP,
                (Proto::Ping, Family::V6) => IPPROTO_ICMPV6,
            }),
            (SOL_SOCKET, SO_ACCEPTCONN) => int(matches!(st.conn, Conn::Listening { .. }) as i32),
            (SOL_SOCKET, SO_REUSEADDR) => int(o.reuseaddr as i32),
            (SOL_SOCKET, SO_KEEPALIVE) => int(o.keepalive as i32),
            (SOL_SOCKET, SO_SNDBUF) => int(o.sndbuf),
            (SOL_SOCKET, SO_RCVBUF) => int(o.rcvbuf),
            (SOL_SOCKET, SO_LINGER) => abi::net::Linger { onoff: o.linger.0, linger: o.linger.1 }.as_bytes().to_vec(),
            (SOL_SOCKET, SO_RCVTIMEO_OLD | SO_RCVTIMEO_NEW) => timeval_bytes(o.rcvtimeo),
            (SOL_SOCKET, SO_SNDTIMEO_OLD | SO_SNDTIMEO_NEW) => timeval_bytes(o.sndtimeo),
            // The name with its NUL; nothing when the socket is held to none.
            (SOL_SOCKET, SO_BINDTODEVICE) => match &o.device {
                Some((_, name)) => [name.as_bytes(), &[0]].concat(),
                None => Vec::new(),
            },
            (SOL_SOCKET, SO_ERROR) => {
                drop(st);
                let mut st = self.lock();
                self.refresh(&mut st);
                return Ok(int(st.error.take().map_or(0, |e| e.errno().0)));
            }
            (IPPROTO_TCP, TCP_NODELAY) if self.proto == Proto::Tcp => int(o.nodelay as i32),
            (IPPROTO_TCP, TCP_MAXSEG) if self.proto == Proto::Tcp => int(536),
            (IPPROTO_IPV6, IPV6_V6ONLY) if self.family == Family::V6 => int(o.v6only as i32),
            (IPPROTO_IP, IP_TTL) if self.family == Family::V4 => int(64),
            key => match (stored_default(self.proto, self.family, key), o.stored.get(&key)) {
                (Some(_), Some(&v)) => int(v),
                (Some(d), None) => int(d),
                (None, _) => return Err(errno!(ENOPROTOOPT)),
            },
        };
        st.error = st.error.take();
        Ok(v)
    }

    /// setsockopt(2) with the option's bytes (at most the first 64 the app gave).
    /// `net_raw`: the caller holds CAP_NET_RAW (to move a socket already held
    /// to an interface to another, as Linux asks).
    pub fn setsockopt(&self, level: i32, name: i32, val: &[u8], net_raw: bool) -> SysResult<()> {
        if (level, name) == (SOL_SOCKET, SO_BINDTODEVICE) {
            return self.bind_to_device(val, net_raw);
        }
        // Socket and TCP options want a whole int before anything else is
        // looked at; IP options take a single byte too, as on Linux.
        let tcp_level = level == IPPROTO_TCP && self.proto == Proto::Tcp;
        if (level == SOL_SOCKET || tcp_level) && val.len() < 4 {
            return Err(errno!(EINVAL));
        }
        let int = || match val.len() {
            0 => Err(errno!(EINVAL)),
            1..=3 if level == IPPROTO_IP => Ok(i32::from(val[0])),
            _ => i32::read_from_prefix(val).ok_or(errno!(EINVAL)),
        };
        let mut st = self.lock();
        match (level, name) {
            (SOL_SOCKET, SO_REUSEADDR) => st.opts.reuseaddr = int()? != 0,
            (SOL_SOCKET, SO_KEEPALIVE) => {
                let on = int()? != 0;
                st.opts.keepalive = on;
                if let Conn::Connected { h, .. } = st.conn {
                    let every = on.then(|| smoltcp::time::Duration::from_secs(7200));
                    self.stack.with(|i| i.tcp(h).set_keep_alive(every));
                }
            }
            // Linux doubles the value for its bookkeeping; smoltcp's buffers keep their size.
            (SOL_SOCKET, SO_SNDBUF | SO_SNDBUFFORCE) => {
                st.opts.sndbuf = int()?.clamp(2304, 212_992).saturating_mul(2);
            }
            (SOL_SOCKET, SO_RCVBUF | SO_RCVBUFFORCE) => {
                st.opts.rcvbuf = int()?.clamp(1152, 212_992).saturating_mul(2);
            }
            (SOL_SOCKET, SO_LINGER) => {
                let l = abi::net::Linger::read_from_prefix(val).ok_or(errno!(EINVAL))?;
                // As sock_setsockopt: turning lingering off keeps the time; a
                // negative time is a huge unsigned one, which Linux caps at
                // MAX_SCHEDULE_TIMEOUT and reports back divided by HZ.
                let time = if l.onoff == 0 {
                    st.opts.linger.1
                } else if l.linger < 0 {
                    LINGER_FOREVER
                } else {
                    l.linger
                };
                st.opts.linger = ((l.onoff != 0) as i32, time);
            }
            (SOL_SOCKET, SO_RCVTIMEO_OLD | SO_RCVTIMEO_NEW) => st.opts.rcvtimeo = read_timeout(val)?,
            (SOL_SOCKET, SO_SNDTIMEO_OLD | SO_SNDTIMEO_NEW) => st.opts.sndtimeo = read_timeout(val)?,
            (IPPROTO_TCP, TCP_NODELAY) if self.proto == Proto::Tcp => {
                let on = int()? != 0;
                st.opts.nodelay = on;
                if let Conn::Connected { h, .. } = st.conn {
                    self.stack.with(|i| i.tcp(h).set_nagle_enabled(!on));
                }
            }
            (IPPROTO_IPV6, IPV6_V6ONLY) if self.family == Family::V6 => {
                let on = int()? != 0;
                if st.local.is_some() {
                    return Err(errno!(EINVAL));
                }
                st.opts.v6only = on;
            }
            key => {
                if stored_default(self.proto, self.family, key).is_none() {
                    return Err(errno!(ENOPROTOOPT));
                }
                let v = int()?;
                st.opts.stored.insert(key, v);
            }
        }
        Ok(())
    }
}

impl InetSocket {
    /// SO_BINDTODEVICE: holds the socket to the named interface (at most
    /// IFNAMSIZ - 1 bytes are read, up to a NUL); an empty name lets it go.
    /// An unknown name is ENODEV; a socket held already may move only with
    /// CAP_NET_RAW (EPERM), as Linux's sock_bindtoindex.
    fn bind_to_device(&self, val: &[u8], net_raw: bool) -> SysResult<()> {
        let val = &val[..val.len().min(IFNAMSIZ - 1)];
        let name = &val[..val.iter().position(|&b| b == 0).unwrap_or(val.len())];
        let mut st = self.lock();
        if st.opts.device.is_some() && !net_raw {
            return Err(errno!(EPERM));
        }
        if name.is_empty() {
            st.opts.device = None;
            return Ok(());
        }
        let name = String::from_utf8_lossy(name).into_owned();
        let net = self.stack.with(|i| i.net_named(&name)).ok_or(errno!(ENODEV))?;
        st.opts.device = Some((net, name));
        Ok(())
    }
}

/// Checks that a ping socket's datagram is an echo request (ICMP type 8, or
/// ICMPv6 type 128, code 0, at least its 8-byte header: EINVAL otherwise, as
/// Linux's ping_common_sendmsg) and puts the socket's identifier in it; the
/// checksum is the stack's to compute.
fn echo_request(data: &mut [u8], v4: bool, ident: u16) -> SysResult<()> {
    let want = if v4 { 8 } else { 128 };
    if data.len() < 8 || data[0] != want || data[1] != 0 {
        return Err(errno!(EINVAL));
    }
    data[4..6].copy_from_slice(&ident.to_be_bytes());
    Ok(())
}

/// Options that are only kept and reported back, with their defaults.
fn stored_default(proto: Proto, family: Family, key: (i32, i32)) -> Option<i32> {
    match key {
        (SOL_SOCKET, SO_REUSEPORT | SO_BROADCAST) => Some(0),
        (IPPROTO_TCP, TCP_KEEPIDLE) if proto == Proto::Tcp => Some(7200),
        (IPPROTO_TCP, TCP_KEEPINTVL) if proto == Proto::Tcp => Some(75),
        (IPPROTO_TCP, TCP_KEEPCNT) if proto == Proto::Tcp => Some(9),
        (IPPROTO_IP, IP_TOS) if family == Family::V4 => Some(0),
        // Extended errors: the stack queues no ICMP errors, so the error
        // queue these ask for stays empty (recv with MSG_ERRQUEUE: EAGAIN).
        (IPPROTO_IP, IP_RECVERR) if family == Family::V4 => Some(0),
        (IPPROTO_IPV6, IPV6_RECVERR) if family == Family::V6 => Some(0),
        // Asking for the received TTL or hop limit: kept and reported, but no
        // IP_TTL/IPV6_HOPLIMIT control message comes with a datagram (smoltcp
        // does not say what a packet's was): `ping` prints no TTL (issue 12).
        (IPPROTO_IP, IP_RECVTTL) if family == Family::V4 => Some(0),
        (IPPROTO_IPV6, IPV6_RECVHOPLIMIT) if family == Family::V6 => Some(0),
        _ => None,
    }
}

impl FileOps for InetSocket {
    fn read(&self, _f: &OpenFile, dst: &mut dyn IoDst, _off: u64) -> SysResult<usize> {
        let len = dst.space();
        let r = self.recv(len, false, &mut |off, d| match dst.copy_out(off, d)? {
            n if n == d.len() => Ok(()),
            _ => Err(errno!(EFAULT)),
        })?;
        Ok(r.copied)
    }

    /// write(2) is send with no flags (the syscall layer raises SIGPIPE on EPIPE).
    fn write(&self, _f: &OpenFile, src: &dyn IoSrc, _off: u64) -> SysResult<usize> {
        let len = src.size();
        if self.proto.is_datagram() && len > MAX_UDP_V6 {
            return Err(errno!(EMSGSIZE));
        }
        // No task here: the audit line names the process by pid alone.
        let who = Origin { pid: crate::auth::current().0, comm: Vec::new() };
        self.send(len, None, &mut |off, n| src.gather(off, n), &who)
    }

    fn seekable(&self) -> bool {
        false
    }

    fn ioctl(&self, _f: &OpenFile, req: u64, arg: &mut IoctlArg) -> SysResult<u64> {
        match req {
            FIONREAD => {
                let n = self.readable_bytes()?.min(i32::MAX as usize) as i32;
                arg.buf = n.as_bytes().to_vec();
                Ok(0)
            }
            _ => Err(errno!(ENOTTY)),
        }
    }

    fn poll(&self) -> PollMask {
        self.poll_mask()
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.wq)
    }

    fn stat(&self) -> SysResult<Stat> {
        Ok(super::socket_stat(self.ino, self.owner))
    }

    fn release(&self, _f: &OpenFile) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use abi::Errno;
    use std::net::Ipv4Addr;

    fn lo(port: u16) -> Endpoint {
        Endpoint { ip: Ip::V4(Ipv4Addr::LOCALHOST), port }
    }

    fn send_all(s: &InetSocket, data: &[u8]) -> usize {
        s.send(data.len(), None, &mut |off, n| Ok(data[off..off + n].to_vec()), &Origin::default()).unwrap()
    }

    fn recv_vec(s: &InetSocket, len: usize) -> SysResult<Vec<u8>> {
        let mut out = Vec::new();
        s.recv(len, false, &mut |_, d| {
            out.extend_from_slice(d);
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn tcp_connects_accepts_and_moves_bytes_both_ways() {
        let stack = Stack::new();
        let l = InetSocket::new(stack.clone(), Family::V4, Proto::Tcp, (0, 0));
        l.bind(lo(0), true).unwrap();
        l.listen(4).unwrap();
        let port = u16::from_be_bytes(l.local_address()[2..4].try_into().unwrap());
        assert!(port >= 32768, "an ephemeral port: {port}");
        assert_eq!(l.accept().unwrap_err(), Errno::EAGAIN);
        let c = InetSocket::new(stack.clone(), Family::V4, Proto::Tcp, (0, 0));
        assert_eq!(c.connect(addr::Parsed::Addr(lo(port)), false, &Origin::default()), Ok(Connect::Done));
        assert!(l.poll_mask().contains(PollMask::IN));
        let (s, peer) = l.accept().unwrap();
        assert_eq!(peer.ip, Ip::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(send_all(&c, b"ping"), 4);
        assert_eq!(recv_vec(&s, 100).unwrap(), b"ping");
        assert_eq!(send_all(&s, b"pong"), 4);
        assert_eq!(recv_vec(&c, 2).unwrap(), b"po");
        assert_eq!(recv_vec(&c, 100).unwrap(), b"ng");
        assert_eq!(recv_vec(&c, 100).unwrap_err(), Errno::EAGAIN);
        c.shutdown(1).unwrap();
        assert_eq!(recv_vec(&s, 100).unwrap(), b"", "FIN reads as end of stream");
        assert!(s.poll_mask().contains(RDHUP));
        s.close();
        c.close();
        l.close();
    }

    #[test]
    fn connect_to_a_closed_port_is_refused() {
        let stack = Stack::new();
        let c = InetSocket::new(stack, Family::V4, Proto::Tcp, (0, 0));
        assert_eq!(c.connect(addr::Parsed::Addr(lo(9)), false, &Origin::default()), Err(errno!(ECONNREFUSED)));
        let far = Endpoint { ip: Ip::V4(Ipv4Addr::new(10, 0, 0, 1)), port: 80 };
        assert_eq!(c.connect(addr::Parsed::Addr(far), false, &Origin::default()), Err(errno!(ENETUNREACH)));
    }

    #[test]
    fn ports_clash_unless_reused() {
        let stack = Stack::new();
        let a = InetSocket::new(stack.clone(), Family::V4, Proto::Tcp, (0, 0));
        a.bind(lo(40000), true).unwrap();
        let b = InetSocket::new(stack.clone(), Family::V6, Proto::Tcp, (0, 0));
        let any6 = addr::unspecified(Family::V6);
        assert_eq!(b.bind(Endpoint { port: 40000, ..any6 }, true), Err(errno!(EADDRINUSE)), "dual stack");
        b.setsockopt(IPPROTO_IPV6, IPV6_V6ONLY, &1i32.to_ne_bytes(), false).unwrap();
        b.bind(Endpoint { port: 40000, ..any6 }, true).unwrap();
        let c = InetSocket::new(stack.clone(), Family::V4, Proto::Tcp, (0, 0));
        assert_eq!(c.bind(lo(80), false), Err(errno!(EACCES)));
        assert_eq!(
            c.bind(Endpoint { ip: Ip::V4(Ipv4Addr::new(10, 1, 1, 1)), port: 1 }, true),
            Err(errno!(EADDRNOTAVAIL))
        );
        a.close();
        c.bind(lo(40000), true).unwrap();
    }

    #[test]
    fn udp_datagrams_keep_boundaries_and_senders() {
        let stack = Stack::new();
        let a = InetSocket::new(stack.clone(), Family::V4, Proto::Udp, (0, 0));
        let b = InetSocket::new(stack.clone(), Family::V4, Proto::Udp, (0, 0));
        a.bind(lo(0), true).unwrap();
        let port = u16::from_be_bytes(a.local_address()[2..4].try_into().unwrap());
        let to = Some(addr::Parsed::Addr(lo(port)));
        b.send(5, to, &mut |_, _| Ok(b"hello".to_vec()), &Origin::default()).unwrap();
        b.send(3, to, &mut |_, _| Ok(b"abc".to_vec()), &Origin::default()).unwrap();
        let mut got = Vec::new();
        let r = a
            .recv(2, false, &mut |_, d| {
                got.extend_from_slice(d);
                Ok(())
            })
            .unwrap();
        assert_eq!((got.as_slice(), r.msg_len, r.truncated), (&b"he"[..], 5, true));
        assert_eq!(r.from.unwrap()[..4], b.local_address()[..4], "the sender's port");
        assert_eq!(recv_vec(&a, 10).unwrap(), b"abc");
        assert_eq!(b.send(0, None, &mut |_, _| Ok(Vec::new()), &Origin::default()), Err(errno!(EDESTADDRREQ)));
        assert_eq!(
            b.send(70_000, to, &mut |_, _| unreachable!("bounded first"), &Origin::default()),
            Err(errno!(EMSGSIZE))
        );
    }
}
