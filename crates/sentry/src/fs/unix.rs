//! Unix domain sockets (stream, datagram, seqpacket): endpoints with receive
//! queues, listeners with a backlog, names bound to paths or abstract names.
//!
//! Modelled on Linux's af_unix and gVisor's socket/unix. Every message in a
//! receive queue is charged to its sender until it is read or dropped (the
//! sender's `in_flight`, bounded by its SO_SNDBUF), so a reader that never reads
//! stops its writers, not the Sentry's memory.
//!
//! Locking: an endpoint's state lock is never held while another endpoint's is
//! taken; operations that touch two endpoints (send, connect, shutdown, close)
//! lock them one after the other. Messages, which may own the last reference to
//! other files, are dropped only with no endpoint lock held. The name table,
//! user memory and fd tables are leaf locks, taken (if at all) under one
//! endpoint's lock.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use abi::io::{POLLRDHUP, POLLRDNORM, POLLWRBAND, POLLWRNORM};
use abi::net::{SaFamily, SockaddrUn};
pub use abi::net::{Ucred, SCM_MAX_FD as MAX_RIGHTS, SOMAXCONN};
use abi::tty::FIONREAD;
use abi::{AsBytes, Errno, FromBytes};

use crate::mm::{IoDst, IoSrc};
use crate::vfs::{FileOps, IoctlArg, OpenFile, PollMask, Stat};
use crate::waiter::WaitQueue;
use crate::SysResult;

/// AF_UNIX as a socket address's 16-bit family field holds it.
pub const AF_UNIX: SaFamily = abi::net::AF_UNIX as SaFamily;
/// Linux's default and maximum socket buffer (net.core.wmem_default / wmem_max).
pub const DEFAULT_BUF: usize = 212_992;
const MAX_BUF: usize = DEFAULT_BUF;
const MIN_SNDBUF: usize = 4608;
const MIN_RCVBUF: usize = 2304;
/// Datagrams queued from senders the receiver is not connected to (net.unix.max_dgram_qlen).
const MAX_DGRAM_QLEN: usize = 512;
/// What a message costs its sender beyond its bytes (Linux's skb truesize overhead),
/// so that a full buffer holds as much as it does on Linux.
const MSG_OVERHEAD: usize = 768;
/// The largest piece a stream write is cut into (SKB_MAX_HEAD(0) + UNIX_SKB_FRAGS_SZ).
const MAX_STREAM_CHUNK: usize = 36_544;
/// `sizeof(struct sockaddr_un)`.
pub const SOCKADDR_UN_LEN: usize = std::mem::size_of::<SockaddrUn>();
/// st_dev of socket inodes (Linux's sockfs is an anonymous device too).
const SOCKFS_DEV: u64 = 0x8;

const RDNORM: PollMask = PollMask::from_bits_retain(POLLRDNORM);
const WRNORM: PollMask = PollMask::from_bits_retain(POLLWRNORM);
const WRBAND: PollMask = PollMask::from_bits_retain(POLLWRBAND);
const RDHUP: PollMask = PollMask::from_bits_retain(POLLRDHUP);

static NEXT_INO: AtomicU64 = AtomicU64::new(0x4000_0000);

/// The three socket types AF_UNIX offers (SOCK_RAW is an alias of SOCK_DGRAM).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SockType {
    Stream,
    Dgram,
    SeqPacket,
}

impl SockType {
    /// From the type argument of socket(2) (flags already removed).
    pub fn from_raw(t: i32) -> SysResult<SockType> {
        match t {
            1 => Ok(SockType::Stream),
            2 | 3 => Ok(SockType::Dgram),
            5 => Ok(SockType::SeqPacket),
            _ => Err(errno!(ESOCKTNOSUPPORT)),
        }
    }

    /// The SO_TYPE value.
    pub fn raw(self) -> i32 {
        match self {
            SockType::Stream => 1,
            SockType::Dgram => 2,
            SockType::SeqPacket => 5,
        }
    }

    fn connection_oriented(self) -> bool {
        self != SockType::Dgram
    }
}

/// A socket name as bind(2) gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// A filesystem path, kept as given (relative paths stay relative, as on Linux).
    Path(Vec<u8>),
    /// An abstract name: the bytes after the leading NUL.
    Abstract(Vec<u8>),
}

impl Address {
    /// Parses a `sockaddr_un` of exactly the length the app passed. `Ok(None)` is the
    /// bare family (bind's request to autobind).
    pub fn parse(raw: &[u8]) -> SysResult<Option<Address>> {
        if raw.len() < 2 || raw.len() > SOCKADDR_UN_LEN || SaFamily::read_from_prefix(raw) != Some(AF_UNIX) {
            return Err(errno!(EINVAL));
        }
        let path = &raw[2..];
        match path.first() {
            None => Ok(None),
            Some(0) => Ok(Some(Address::Abstract(path[1..].to_vec()))),
            Some(_) => {
                let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
                Ok(Some(Address::Path(path[..end].to_vec())))
            }
        }
    }

    /// The `sockaddr_un` bytes getsockname and friends report (its length is the
    /// address length).
    pub fn to_sockaddr(&self) -> Vec<u8> {
        let mut out = AF_UNIX.as_bytes().to_vec();
        match self {
            Address::Path(p) => {
                out.extend_from_slice(p);
                out.push(0);
            }
            Address::Abstract(n) => {
                out.push(0);
                out.extend_from_slice(n);
            }
        }
        out
    }
}

/// The name of an unbound socket: just the family.
pub fn unnamed_sockaddr() -> Vec<u8> {
    AF_UNIX.as_bytes().to_vec()
}

/// The credentials SO_PEERCRED / SO_PEERGROUPS report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCred {
    pub ucred: Ucred,
    pub groups: Vec<u32>,
}

/// SOL_SOCKET options kept per socket.
#[derive(Debug, Clone)]
pub struct Options {
    pub passcred: bool,
    pub sndbuf: usize,
    pub rcvbuf: usize,
    /// (l_onoff, l_linger).
    pub linger: (i32, i32),
    pub rcvtimeo: Option<Duration>,
    pub sndtimeo: Option<Duration>,
    /// Options that are only stored and reported back (SO_REUSEADDR, SO_KEEPALIVE...).
    pub stored: BTreeMap<i32, i32>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            passcred: false,
            sndbuf: DEFAULT_BUF,
            rcvbuf: DEFAULT_BUF,
            linger: (0, 0),
            rcvtimeo: None,
            sndtimeo: None,
            stored: BTreeMap::new(),
        }
    }
}

impl Options {
    /// SO_SNDBUF as Linux sets it: doubled (for bookkeeping overhead), clamped.
    pub fn set_sndbuf(&mut self, v: i32) {
        self.sndbuf = (v.max(0) as usize).min(MAX_BUF).saturating_mul(2).max(MIN_SNDBUF);
    }

    pub fn set_rcvbuf(&mut self, v: i32) {
        self.rcvbuf = (v.max(0) as usize).min(MAX_BUF).saturating_mul(2).max(MIN_RCVBUF);
    }
}

/// One message in a receive queue. Stream writes become messages too, so that
/// descriptors and credentials stay attached to the bytes they were sent with.
#[derive(Debug)]
struct Message {
    data: Vec<u8>,
    /// Bytes of `data` already read (stream sockets read messages piecemeal).
    read: usize,
    from: Option<Address>,
    rights: Vec<Arc<OpenFile>>,
    cred: Ucred,
    sender: Weak<Endpoint>,
    /// What the message still costs its sender's `in_flight`: unread bytes plus
    /// the per-message overhead.
    charged: usize,
}

impl Message {
    fn unread(&self) -> &[u8] {
        &self.data[self.read..]
    }

    /// Gives `n` bytes of send buffer back to the sender and wakes it.
    fn uncharge(&mut self, n: usize) {
        let n = n.min(self.charged);
        if n == 0 {
            return;
        }
        self.charged -= n;
        if let Some(s) = self.sender.upgrade() {
            s.in_flight.fetch_sub(n, Ordering::Relaxed);
            s.wq.notify_all();
        }
    }
}

impl Drop for Message {
    fn drop(&mut self) {
        self.uncharge(self.charged);
    }
}

/// Drops messages queued on a closing socket. Their descriptors may hold the last
/// reference to other sockets whose queues hold yet others; a chain of any length
/// can be built, so the drops are done in a loop on this thread instead of
/// recursively (Linux defers the fput for the same reason).
fn dispose(msgs: impl IntoIterator<Item = Message>) {
    thread_local! {
        static PENDING: RefCell<Vec<Message>> = const { RefCell::new(Vec::new()) };
        static DRAINING: Cell<bool> = const { Cell::new(false) };
    }
    PENDING.with(|p| p.borrow_mut().extend(msgs));
    if DRAINING.with(|d| d.replace(true)) {
        // An outer call on this thread is draining; it will get to these.
        return;
    }
    while let Some(m) = PENDING.with(|p| p.borrow_mut().pop()) {
        drop(m);
    }
    DRAINING.with(|d| d.set(false));
}

/// Where an endpoint stands in its connection's life.
#[derive(Debug)]
enum Conn {
    Unconnected,
    /// A connect(2) is between its checks and its completion.
    Connecting,
    Listening {
        /// Server-side endpoints of connections not yet accepted.
        backlog: VecDeque<Arc<Endpoint>>,
        max: usize,
    },
    /// The peer (stream, seqpacket) or the default destination (dgram). Kept after
    /// the peer closes, as Linux keeps it, so getpeername still answers.
    Connected(Arc<Endpoint>),
}

#[derive(Debug)]
struct State {
    conn: Conn,
    queue: VecDeque<Message>,
    /// Own SHUT_RD, or the peer's SHUT_WR / close.
    shut_rd: bool,
    /// Own SHUT_WR, or the peer's SHUT_RD / close.
    shut_wr: bool,
    /// The pending SO_ERROR (ECONNRESET when the peer closed with data unread).
    error: Option<Errno>,
    addr: Option<Address>,
    name_key: Option<NameKey>,
    peer_cred: Option<PeerCred>,
    closed: bool,
    opts: Options,
}

/// A socket's protocol state: its receive queue, its connection and its name.
#[derive(Debug)]
pub struct Endpoint {
    pub kind: SockType,
    pub ino: u64,
    /// Woken on every change of this endpoint's readiness.
    pub wq: WaitQueue,
    st: Mutex<State>,
    /// Bytes this endpoint has sent that sit unread in receive queues.
    in_flight: AtomicUsize,
    /// Messages in this endpoint's own receive queue (read without the lock by senders' poll).
    queued: AtomicUsize,
    /// The creator's credentials: stat's owner, and the sender of plain write(2)s.
    owner: Ucred,
}

/// What one receive produced.
#[derive(Debug, Default)]
pub struct Received {
    /// Bytes copied to the app.
    pub copied: usize,
    /// The datagram's full length (dgram, seqpacket); `copied` for streams.
    pub msg_len: usize,
    /// The datagram did not fit (MSG_TRUNC).
    pub truncated: bool,
    pub from: Option<Address>,
    pub rights: Vec<Arc<OpenFile>>,
    /// The sender's credentials, when SO_PASSCRED is on.
    pub cred: Option<Ucred>,
}

impl Endpoint {
    pub fn new(kind: SockType, owner: Ucred) -> Arc<Endpoint> {
        Arc::new(Endpoint {
            kind,
            ino: NEXT_INO.fetch_add(1, Ordering::Relaxed),
            wq: WaitQueue::default(),
            st: Mutex::new(State {
                conn: Conn::Unconnected,
                queue: VecDeque::new(),
                shut_rd: false,
                shut_wr: false,
                error: None,
                addr: None,
                name_key: None,
                peer_cred: None,
                closed: false,
                opts: Options::default(),
            }),
            in_flight: AtomicUsize::new(0),
            queued: AtomicUsize::new(0),
            owner,
        })
    }

    /// Two endpoints connected to each other (socketpair).
    pub fn pair(kind: SockType, cred: &PeerCred, owner: Ucred) -> (Arc<Endpoint>, Arc<Endpoint>) {
        let a = Endpoint::new(kind, owner);
        let b = Endpoint::new(kind, owner);
        for (x, y) in [(&a, &b), (&b, &a)] {
            let mut s = x.lock();
            s.conn = Conn::Connected(y.clone());
            s.peer_cred = Some(cred.clone());
        }
        (a, b)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.st.lock().unwrap()
    }

    pub fn options(&self) -> Options {
        self.lock().opts.clone()
    }

    pub fn update_options(&self, f: impl FnOnce(&mut Options)) {
        f(&mut self.lock().opts);
        self.wq.notify_all();
    }

    pub fn take_error(&self) -> Option<Errno> {
        self.lock().error.take()
    }

    pub fn is_listening(&self) -> bool {
        matches!(self.lock().conn, Conn::Listening { .. })
    }

    pub fn is_connected(&self) -> bool {
        matches!(self.lock().conn, Conn::Connected(_))
    }

    pub fn peer_cred(&self) -> Option<PeerCred> {
        self.lock().peer_cred.clone()
    }

    pub fn address(&self) -> Option<Address> {
        self.lock().addr.clone()
    }

    /// The connected peer (or default datagram destination).
    pub fn peer(&self) -> Option<Arc<Endpoint>> {
        match &self.lock().conn {
            Conn::Connected(p) => Some(p.clone()),
            _ => None,
        }
    }

    /// Binds to `addr`. For path names `make_node` creates the filesystem node and
    /// returns its identity; it runs only once the socket is known to be unbound.
    pub fn bind(
        self: &Arc<Self>,
        addr: Address,
        sandbox: usize,
        make_node: impl FnOnce(&[u8]) -> SysResult<(u64, u64)>,
    ) -> SysResult<()> {
        let mut s = self.lock();
        if s.addr.is_some() {
            return Err(errno!(EINVAL));
        }
        let key = match &addr {
            Address::Path(path) => {
                let (dev, ino) = make_node(path)?;
                NameKey::Path { dev, ino }
            }
            Address::Abstract(name) => NameKey::Abstract { sandbox, name: name.clone() },
        };
        register(&key, self)?;
        s.addr = Some(addr);
        s.name_key = Some(key);
        Ok(())
    }

    /// Binds to a fresh abstract name of five hex digits, as Linux's autobind does.
    /// With `only_if_unbound`, a bound socket is left alone; otherwise it is EINVAL.
    pub fn autobind(self: &Arc<Self>, sandbox: usize, only_if_unbound: bool) -> SysResult<()> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let mut s = self.lock();
        if s.addr.is_some() {
            return if only_if_unbound { Ok(()) } else { Err(errno!(EINVAL)) };
        }
        for _ in 0..=0xfffff {
            let n = NEXT.fetch_add(1, Ordering::Relaxed) & 0xfffff;
            let name = format!("{n:05x}").into_bytes();
            let key = NameKey::Abstract { sandbox, name: name.clone() };
            if register(&key, self).is_ok() {
                s.addr = Some(Address::Abstract(name));
                s.name_key = Some(key);
                return Ok(());
            }
        }
        Err(errno!(ENOSPC))
    }

    /// listen(2): `cred` becomes what connecting peers see as SO_PEERCRED.
    pub fn listen(&self, backlog: i32, cred: PeerCred) -> SysResult<()> {
        if self.kind == SockType::Dgram {
            return Err(errno!(EOPNOTSUPP));
        }
        let max = if backlog < 0 || backlog as usize > SOMAXCONN { SOMAXCONN } else { backlog as usize };
        let mut s = self.lock();
        if s.addr.is_none() {
            return Err(errno!(EINVAL));
        }
        match &mut s.conn {
            Conn::Listening { max: m, .. } => *m = max,
            Conn::Unconnected => s.conn = Conn::Listening { backlog: VecDeque::new(), max },
            _ => return Err(errno!(EINVAL)),
        }
        s.peer_cred = Some(cred);
        drop(s);
        self.wq.notify_all();
        Ok(())
    }

    /// First half of a stream/seqpacket connect: claims the socket for connecting.
    pub fn begin_connect(&self) -> SysResult<()> {
        let mut s = self.lock();
        match s.conn {
            Conn::Unconnected => {
                s.conn = Conn::Connecting;
                Ok(())
            }
            Conn::Connected(_) => Err(errno!(EISCONN)),
            Conn::Connecting => Err(errno!(EALREADY)),
            Conn::Listening { .. } => Err(errno!(EINVAL)),
        }
    }

    /// Undoes `begin_connect` after a failed attempt.
    pub fn abort_connect(&self) {
        let mut s = self.lock();
        if matches!(s.conn, Conn::Connecting) {
            s.conn = Conn::Unconnected;
        }
    }

    /// Queues a connection on `listener`; EAGAIN while its backlog is full. `cred` is
    /// the connecting task's, for the server side's SO_PEERCRED.
    pub fn try_connect(self: &Arc<Self>, listener: &Arc<Endpoint>, cred: &PeerCred) -> SysResult<()> {
        if listener.kind != self.kind {
            return Err(errno!(EPROTOTYPE));
        }
        let (server, listener_cred) = {
            let mut l = listener.lock();
            if l.closed || l.shut_rd {
                return Err(errno!(ECONNREFUSED));
            }
            let l_addr = l.addr.clone();
            let l_cred = l.peer_cred.clone();
            let passcred = l.opts.passcred;
            let Conn::Listening { backlog, max } = &mut l.conn else { return Err(errno!(ECONNREFUSED)) };
            if backlog.len() > *max {
                return Err(errno!(EAGAIN));
            }
            let server = Endpoint::new(self.kind, listener.owner);
            {
                let mut n = server.lock();
                n.conn = Conn::Connected(self.clone());
                n.addr = l_addr;
                n.peer_cred = Some(cred.clone());
                n.opts.passcred = passcred;
            }
            backlog.push_back(server.clone());
            (server, l_cred)
        };
        listener.wq.notify_all();
        let mut s = self.lock();
        s.conn = Conn::Connected(server);
        s.peer_cred = listener_cred;
        Ok(())
    }

    /// Whether a connect to this socket could be queued (now or once there is room).
    pub fn accepts_connections(&self) -> bool {
        let s = self.lock();
        !s.closed && !s.shut_rd && matches!(s.conn, Conn::Listening { .. })
    }

    /// Takes the oldest pending connection; EAGAIN if there is none.
    pub fn accept(&self) -> SysResult<Arc<Endpoint>> {
        if self.kind == SockType::Dgram {
            return Err(errno!(EOPNOTSUPP));
        }
        let mut s = self.lock();
        let Conn::Listening { backlog, .. } = &mut s.conn else { return Err(errno!(EINVAL)) };
        let n = backlog.pop_front().ok_or(errno!(EAGAIN))?;
        drop(s);
        self.wq.notify_all();
        Ok(n)
    }

    /// Datagram connect: sets (or with `None`, clears) the default destination.
    pub fn connect_dgram(self: &Arc<Self>, to: Option<&Arc<Endpoint>>) -> SysResult<()> {
        if let Some(to) = to {
            if to.kind != self.kind {
                return Err(errno!(EPROTOTYPE));
            }
            let t = to.lock();
            if t.closed {
                return Err(errno!(ECONNREFUSED));
            }
            if let Conn::Connected(p) = &t.conn {
                if !Arc::ptr_eq(p, self) {
                    return Err(errno!(EPERM));
                }
            }
        }
        let old = {
            let mut s = self.lock();
            std::mem::replace(&mut s.conn, to.map_or(Conn::Unconnected, |t| Conn::Connected(t.clone())))
        };
        drop(old);
        self.wq.notify_all();
        Ok(())
    }

    /// Sends up to `remaining` bytes of a stream, one message's worth: `fill(n)` supplies
    /// the bytes. `rights` go with the first message that makes it into the queue.
    /// `in_progress` is set once this send has queued bytes or slept: then, as in
    /// Linux's sock_alloc_send_pskb, a pending error (ECONNRESET) is reported and
    /// cleared before EPIPE.
    pub fn send_stream(
        self: &Arc<Self>,
        remaining: usize,
        in_progress: bool,
        rights: &mut Vec<Arc<OpenFile>>,
        cred: Ucred,
        fill: &mut dyn FnMut(usize) -> SysResult<Vec<u8>>,
    ) -> SysResult<usize> {
        let (peer, sndbuf, from) = {
            let mut s = self.lock();
            let Conn::Connected(peer) = &s.conn else { return Err(errno!(ENOTCONN)) };
            let peer = peer.clone();
            if !in_progress && s.shut_wr {
                return Err(errno!(EPIPE));
            }
            if remaining == 0 {
                return Ok(0);
            }
            if let Some(e) = s.error.take() {
                return Err(e.into());
            }
            if s.shut_wr {
                return Err(errno!(EPIPE));
            }
            (peer, s.opts.sndbuf, s.addr.clone())
        };
        if self.in_flight.load(Ordering::Relaxed) >= sndbuf {
            return Err(errno!(EAGAIN));
        }
        // Keep two messages in the pipe, as Linux does.
        let n = remaining.min((sndbuf / 2).saturating_sub(64).clamp(1, MAX_STREAM_CHUNK));
        let data = fill(n)?;
        let n = data.len();
        {
            let mut p = peer.lock();
            if p.closed || p.shut_rd {
                return Err(errno!(EPIPE));
            }
            let charged = n + MSG_OVERHEAD;
            self.in_flight.fetch_add(charged, Ordering::Relaxed);
            let msg = Message {
                data,
                read: 0,
                from,
                rights: std::mem::take(rights),
                cred,
                sender: Arc::downgrade(self),
                charged,
            };
            p.queue.push_back(msg);
            peer.queued.fetch_add(1, Ordering::Relaxed);
        }
        peer.wq.notify_all();
        Ok(n)
    }

    /// The largest datagram this socket may send.
    pub fn max_datagram(&self) -> usize {
        self.lock().opts.sndbuf.saturating_sub(32)
    }

    /// Sends one datagram (dgram: to `to` or the default destination; seqpacket: to
    /// the peer). EAGAIN when the send buffer or the receiver's queue is full.
    pub fn send_datagram(
        self: &Arc<Self>,
        data: &[u8],
        to: Option<&Arc<Endpoint>>,
        rights: &[Arc<OpenFile>],
        cred: Ucred,
    ) -> SysResult<usize> {
        let seqpacket = self.kind == SockType::SeqPacket;
        let (target, is_default, sndbuf, from) = {
            let mut s = self.lock();
            if seqpacket {
                if let Some(e) = s.error.take() {
                    return Err(e.into());
                }
            }
            let (target, is_default) = match (&s.conn, to) {
                (_, Some(d)) if !seqpacket => ((*d).clone(), false),
                (Conn::Connected(p), _) => (p.clone(), true),
                _ => return Err(errno!(ENOTCONN)),
            };
            if seqpacket && s.shut_wr {
                return Err(errno!(EPIPE));
            }
            (target, is_default, s.opts.sndbuf, s.addr.clone())
        };
        if data.len() > sndbuf.saturating_sub(32) {
            return Err(errno!(EMSGSIZE));
        }
        if self.in_flight.load(Ordering::Relaxed) >= sndbuf {
            return Err(errno!(EAGAIN));
        }
        {
            let mut t = target.lock();
            if t.closed {
                drop(t);
                if seqpacket {
                    return Err(errno!(EPIPE));
                }
                if is_default {
                    let old = {
                        let mut s = self.lock();
                        match &s.conn {
                            Conn::Connected(p) if Arc::ptr_eq(p, &target) => {
                                Some(std::mem::replace(&mut s.conn, Conn::Unconnected))
                            }
                            _ => None,
                        }
                    };
                    drop(old);
                }
                return Err(errno!(ECONNREFUSED));
            }
            let mutual = matches!(&t.conn, Conn::Connected(p) if Arc::ptr_eq(p, self));
            if !seqpacket && !mutual && matches!(t.conn, Conn::Connected(_)) {
                return Err(errno!(EPERM));
            }
            if t.shut_rd {
                return Err(errno!(EPIPE));
            }
            if !mutual && !Arc::ptr_eq(&target, self) && t.queue.len() >= MAX_DGRAM_QLEN {
                return Err(errno!(EAGAIN));
            }
            let charged = data.len() + MSG_OVERHEAD;
            self.in_flight.fetch_add(charged, Ordering::Relaxed);
            t.queue.push_back(Message {
                data: data.to_vec(),
                read: 0,
                from,
                rights: rights.to_vec(),
                cred,
                sender: Arc::downgrade(self),
                charged,
            });
            target.queued.fetch_add(1, Ordering::Relaxed);
        }
        target.wq.notify_all();
        Ok(data.len())
    }

    /// Receives into the app through `sink(offset, bytes)`, which runs under this
    /// endpoint's lock. EAGAIN when nothing is there yet; `Ok` with nothing copied
    /// at end of stream. With `peek` nothing is consumed (descriptors are duplicated).
    pub fn recv(
        &self,
        len: usize,
        peek: bool,
        sink: &mut dyn FnMut(usize, &[u8]) -> SysResult<()>,
    ) -> SysResult<Received> {
        let mut spent = Vec::new();
        let r = {
            let mut s = self.lock();
            let r = match self.kind {
                SockType::Stream => Self::recv_stream(&mut s, len, peek, sink, &mut spent),
                _ => Self::recv_datagram(&mut s, self.kind, len, peek, sink, &mut spent),
            };
            self.queued.store(s.queue.len(), Ordering::Relaxed);
            r
        };
        if !spent.is_empty() {
            // Room in the queue: wake senders blocked on this receiver.
            self.wq.notify_all();
        }
        drop(spent);
        r
    }

    fn recv_stream(
        s: &mut State,
        len: usize,
        peek: bool,
        sink: &mut dyn FnMut(usize, &[u8]) -> SysResult<()>,
        spent: &mut Vec<Message>,
    ) -> SysResult<Received> {
        if !matches!(s.conn, Conn::Connected(_)) {
            return Err(errno!(EINVAL));
        }
        if s.queue.is_empty() {
            if let Some(e) = s.error.take() {
                return Err(e.into());
            }
            return if s.shut_rd { Ok(Received::default()) } else { Err(errno!(EAGAIN)) };
        }
        let passcred = s.opts.passcred;
        let mut r = Received { from: s.queue[0].from.clone(), ..Default::default() };
        let mut idx = 0;
        while r.copied < len && idx < s.queue.len() {
            let m = &mut s.queue[idx];
            if passcred {
                match r.cred {
                    // Never glue bytes from different writers together.
                    Some(c) if c != m.cred => break,
                    Some(_) => {}
                    None => r.cred = Some(m.cred),
                }
            }
            let n = (len - r.copied).min(m.unread().len());
            if let Err(e) = sink(r.copied, &m.unread()[..n]) {
                if r.copied == 0 {
                    return Err(e);
                }
                break;
            }
            r.copied += n;
            let had_rights = !m.rights.is_empty();
            if peek {
                r.rights.extend(m.rights.iter().cloned());
                idx += 1;
            } else {
                m.read += n;
                m.uncharge(n);
                r.rights.append(&mut m.rights);
                if m.unread().is_empty() {
                    spent.extend(s.queue.pop_front());
                }
            }
            // Descriptors arrive with the bytes they were sent with, never later ones.
            if had_rights {
                break;
            }
        }
        r.msg_len = r.copied;
        Ok(r)
    }

    fn recv_datagram(
        s: &mut State,
        kind: SockType,
        len: usize,
        peek: bool,
        sink: &mut dyn FnMut(usize, &[u8]) -> SysResult<()>,
        spent: &mut Vec<Message>,
    ) -> SysResult<Received> {
        if kind == SockType::SeqPacket && !matches!(s.conn, Conn::Connected(_)) {
            return Err(errno!(ENOTCONN));
        }
        let passcred = s.opts.passcred;
        let Some(m) = s.queue.front_mut() else {
            if let Some(e) = s.error.take() {
                return Err(e.into());
            }
            return if s.shut_rd { Ok(Received::default()) } else { Err(errno!(EAGAIN)) };
        };
        let n = len.min(m.data.len());
        sink(0, &m.data[..n])?;
        let mut r = Received {
            copied: n,
            msg_len: m.data.len(),
            truncated: m.data.len() > len,
            from: m.from.clone(),
            rights: Vec::new(),
            cred: passcred.then_some(m.cred),
        };
        if peek {
            r.rights = m.rights.clone();
        } else {
            r.rights = std::mem::take(&mut m.rights);
            spent.extend(s.queue.pop_front());
        }
        Ok(r)
    }

    /// shutdown(2). On connection-oriented sockets the peer sees the mirror image.
    pub fn shutdown(&self, rd: bool, wr: bool) {
        let peer = {
            let mut s = self.lock();
            s.shut_rd |= rd;
            s.shut_wr |= wr;
            match &s.conn {
                Conn::Connected(p) if self.kind.connection_oriented() => Some(p.clone()),
                _ => None,
            }
        };
        self.wq.notify_all();
        if let Some(p) = peer {
            {
                let mut ps = p.lock();
                ps.shut_rd |= wr;
                ps.shut_wr |= rd;
            }
            p.wq.notify_all();
        }
    }

    /// Tears the endpoint down: the last descriptor went away, or (`embryo`) the
    /// listener holding an unaccepted connection did.
    pub fn close(&self, embryo: bool) {
        let (conn, queue, key) = {
            let mut s = self.lock();
            if s.closed {
                return;
            }
            s.closed = true;
            s.shut_rd = true;
            s.shut_wr = true;
            let conn = std::mem::replace(&mut s.conn, Conn::Unconnected);
            (conn, std::mem::take(&mut s.queue), s.name_key.take())
        };
        self.queued.store(0, Ordering::Relaxed);
        if let Some(key) = key {
            unregister(&key, self);
        }
        match conn {
            Conn::Connected(peer) if self.kind.connection_oriented() => {
                {
                    let mut p = peer.lock();
                    p.shut_rd = true;
                    p.shut_wr = true;
                    if !queue.is_empty() || embryo {
                        p.error = Some(Errno::ECONNRESET);
                    }
                }
                peer.wq.notify_all();
            }
            Conn::Listening { backlog, .. } => {
                for n in backlog {
                    n.close(true);
                }
            }
            _ => {}
        }
        dispose(queue);
        self.wq.notify_all();
    }

    /// Readiness, as Linux's unix_poll / unix_dgram_poll compute it.
    pub fn poll(&self) -> PollMask {
        let s = self.lock();
        let mut m = PollMask::empty();
        if s.error.is_some() {
            m |= PollMask::ERR;
        }
        if s.shut_rd && s.shut_wr {
            m |= PollMask::HUP;
        }
        if s.shut_rd {
            m |= RDHUP | PollMask::IN | RDNORM;
        }
        let pending = match &s.conn {
            Conn::Listening { backlog, .. } => !backlog.is_empty(),
            _ => !s.queue.is_empty(),
        };
        if pending {
            m |= PollMask::IN | RDNORM;
        }
        let unconnected = matches!(s.conn, Conn::Unconnected | Conn::Connecting);
        if self.kind.connection_oriented() && unconnected {
            m |= PollMask::HUP;
            if self.kind == SockType::SeqPacket && matches!(s.conn, Conn::Connecting) {
                return m;
            }
        }
        let mut writable = !matches!(s.conn, Conn::Listening { .. })
            && self.in_flight.load(Ordering::Relaxed).saturating_mul(4) <= s.opts.sndbuf;
        if writable && self.kind == SockType::Dgram {
            if let Conn::Connected(p) = &s.conn {
                writable = p.queued.load(Ordering::Relaxed) < MAX_DGRAM_QLEN;
            }
        }
        if writable {
            m |= PollMask::OUT | WRNORM | WRBAND;
        }
        m
    }

    /// FIONREAD: unread bytes (stream, seqpacket) or the size of the next datagram;
    /// EINVAL on a listening socket.
    pub fn readable_bytes(&self) -> SysResult<usize> {
        let s = self.lock();
        match (&s.conn, self.kind) {
            (Conn::Listening { .. }, _) => Err(errno!(EINVAL)),
            (_, SockType::Dgram) => Ok(s.queue.front().map_or(0, |m| m.data.len())),
            _ => Ok(s.queue.iter().map(|m| m.unread().len()).sum()),
        }
    }
}

/// Identity of a bound name in the sandbox-wide table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum NameKey {
    /// A path name is the (st_dev, st_ino) of the node bind created, so renames and
    /// hard links keep working and an unlinked name is gone.
    Path { dev: u64, ino: u64 },
    /// Abstract names are per sandbox (`sandbox` tells kernels in one process apart).
    Abstract { sandbox: usize, name: Vec<u8> },
}

/// Bound names. This belongs in the Kernel; it lives here so the socket layer stays
/// self-contained, and the sandbox id in abstract keys keeps sandboxes apart.
static NAMES: Mutex<BTreeMap<NameKey, Weak<Endpoint>>> = Mutex::new(BTreeMap::new());

fn register(key: &NameKey, ep: &Arc<Endpoint>) -> SysResult<()> {
    let mut names = NAMES.lock().unwrap();
    if names.get(key).is_some_and(|w| w.strong_count() > 0) {
        return Err(errno!(EADDRINUSE));
    }
    names.insert(key.clone(), Arc::downgrade(ep));
    Ok(())
}

fn unregister(key: &NameKey, ep: &Endpoint) {
    let mut names = NAMES.lock().unwrap();
    if names.get(key).is_some_and(|w| std::ptr::eq(w.as_ptr(), ep)) {
        names.remove(key);
    }
}

fn find(key: &NameKey) -> Option<Arc<Endpoint>> {
    NAMES.lock().unwrap().get(key).and_then(Weak::upgrade)
}

/// The socket bound to the filesystem node (st_dev, st_ino), if any.
pub fn find_path(dev: u64, ino: u64) -> Option<Arc<Endpoint>> {
    find(&NameKey::Path { dev, ino })
}

/// The socket bound to an abstract name in `sandbox`, if any.
pub fn find_abstract(sandbox: usize, name: &[u8]) -> Option<Arc<Endpoint>> {
    find(&NameKey::Abstract { sandbox, name: name.to_vec() })
}

/// An open Unix socket: the file side of an endpoint.
#[derive(Debug)]
pub struct UnixSocket {
    pub ep: Arc<Endpoint>,
}

impl UnixSocket {
    pub fn new(ep: Arc<Endpoint>) -> Arc<UnixSocket> {
        Arc::new(UnixSocket { ep })
    }
}

impl FileOps for UnixSocket {
    /// read(2) is recv with no flags: descriptors that arrive are closed.
    fn read(&self, _f: &OpenFile, dst: &mut dyn IoDst, _off: u64) -> SysResult<usize> {
        let len = dst.space();
        if len == 0 && self.ep.kind == SockType::Stream {
            return Ok(0);
        }
        let r = self.ep.recv(len, false, &mut |off, d| match dst.copy_out(off, d)? {
            n if n == d.len() => Ok(()),
            _ => Err(errno!(EFAULT)),
        })?;
        Ok(r.copied)
    }

    /// write(2) is send with no flags (the syscall layer raises SIGPIPE on EPIPE).
    /// FileOps does not see the task, so SCM_CREDENTIALS name the calling process
    /// with the socket creator's uid and gid.
    fn write(&self, _f: &OpenFile, src: &dyn IoSrc, _off: u64) -> SysResult<usize> {
        let (pid, _) = crate::auth::current();
        let cred = Ucred { pid, ..self.ep.owner };
        match self.ep.kind {
            SockType::Stream => {
                let mut off = 0;
                self.ep.send_stream(src.size(), false, &mut Vec::new(), cred, &mut |n| {
                    let chunk = src.gather(off, n)?;
                    off += chunk.len();
                    Ok(chunk)
                })
            }
            _ => {
                // Bounded before the datagram is copied out of the app.
                if src.size() > self.ep.max_datagram() {
                    return Err(errno!(EMSGSIZE));
                }
                self.ep.send_datagram(&src.gather(0, src.size())?, None, &[], cred)
            }
        }
    }

    fn seekable(&self) -> bool {
        false
    }

    fn ioctl(&self, _f: &OpenFile, req: u64, arg: &mut IoctlArg) -> SysResult<u64> {
        match req {
            FIONREAD => {
                let n = self.ep.readable_bytes()?.min(i32::MAX as usize) as i32;
                arg.buf = n.as_bytes().to_vec();
                Ok(0)
            }
            _ => Err(errno!(ENOTTY)),
        }
    }

    fn poll(&self) -> PollMask {
        self.ep.poll()
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.ep.wq)
    }

    fn stat(&self) -> SysResult<Stat> {
        Ok(Stat {
            dev: SOCKFS_DEV,
            ino: self.ep.ino,
            mode: 0o140777,
            nlink: 1,
            uid: self.ep.owner.uid,
            gid: self.ep.owner.gid,
            blksize: 4096,
            ..Default::default()
        })
    }

    fn release(&self, _f: &OpenFile) {
        self.ep.close(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWNER: Ucred = Ucred { pid: 1, uid: 0, gid: 0 };

    fn cred() -> PeerCred {
        PeerCred { ucred: Ucred { pid: 1, uid: 0, gid: 0 }, groups: Vec::new() }
    }

    fn recv_all(ep: &Endpoint, len: usize) -> SysResult<(Vec<u8>, Received)> {
        let mut out = vec![0u8; len];
        let r = ep.recv(len, false, &mut |off, d| {
            out[off..off + d.len()].copy_from_slice(d);
            Ok(())
        })?;
        out.truncate(r.copied);
        Ok((out, r))
    }

    fn send_bytes(ep: &Arc<Endpoint>, data: &[u8]) -> SysResult<usize> {
        let ucred = cred().ucred;
        match ep.kind {
            SockType::Stream => {
                ep.send_stream(data.len(), false, &mut Vec::new(), ucred, &mut |n| Ok(data[..n].to_vec()))
            }
            _ => ep.send_datagram(data, None, &[], ucred),
        }
    }

    #[test]
    fn address_parse_and_encode_round_trip() {
        let mut raw = AF_UNIX.to_ne_bytes().to_vec();
        assert_eq!(Address::parse(&raw), Ok(None));
        raw.extend_from_slice(b"/tmp/s\0junk");
        let a = Address::parse(&raw).unwrap().unwrap();
        assert_eq!(a, Address::Path(b"/tmp/s".to_vec()));
        assert_eq!(a.to_sockaddr().len(), 2 + 6 + 1);
        let abs = Address::parse(&[1, 0, 0, b'x', 0, b'y']).unwrap().unwrap();
        assert_eq!(abs, Address::Abstract(b"x\0y".to_vec()));
        assert_eq!(abs.to_sockaddr(), vec![1, 0, 0, b'x', 0, b'y']);
        assert_eq!(Address::parse(&[2, 0, b'a']), Err(errno!(EINVAL)));
        assert_eq!(Address::parse(&[1]), Err(errno!(EINVAL)));
        assert_eq!(Address::parse(&[1u8; 111]), Err(errno!(EINVAL)));
    }

    #[test]
    fn datagrams_keep_boundaries_and_truncate() {
        let (a, b) = Endpoint::pair(SockType::Dgram, &cred(), OWNER);
        send_bytes(&a, b"hello").unwrap();
        send_bytes(&a, b"").unwrap();
        send_bytes(&a, b"world!").unwrap();
        assert_eq!(recv_all(&b, 100).unwrap().0, b"hello");
        assert_eq!(recv_all(&b, 100).unwrap().1.msg_len, 0);
        let (d, r) = recv_all(&b, 3).unwrap();
        assert_eq!((d.as_slice(), r.msg_len, r.truncated), (&b"wor"[..], 6, true));
        assert_eq!(recv_all(&b, 3).unwrap_err(), Errno::EAGAIN);
        assert_eq!(a.in_flight.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn stream_eof_reset_and_epipe() {
        let (a, b) = Endpoint::pair(SockType::Stream, &cred(), OWNER);
        send_bytes(&a, b"abc").unwrap();
        send_bytes(&a, b"def").unwrap();
        assert_eq!(recv_all(&b, 4).unwrap().0, b"abcd");
        assert_eq!(recv_all(&b, 10).unwrap().0, b"ef");
        send_bytes(&b, b"unread").unwrap();
        a.close(false);
        assert_eq!(recv_all(&b, 10).unwrap_err(), Errno::ECONNRESET);
        assert_eq!(recv_all(&b, 10).unwrap().1.copied, 0);
        assert_eq!(send_bytes(&b, b"x").unwrap_err(), Errno::EPIPE);
        assert!(b.poll().contains(PollMask::HUP | PollMask::IN));
        assert_eq!(b.in_flight.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn stream_writer_blocks_when_its_buffer_is_full() {
        let (a, b) = Endpoint::pair(SockType::Stream, &cred(), OWNER);
        let big = vec![7u8; DEFAULT_BUF];
        let mut sent = 0;
        loop {
            match send_bytes(&a, &big) {
                Ok(n) => sent += n,
                Err(e) => {
                    assert_eq!(e, Errno::EAGAIN);
                    break;
                }
            }
        }
        // Linux holds 219264 bytes in a fresh socket's buffer.
        assert_eq!(sent, 6 * MAX_STREAM_CHUNK);
        assert!(!a.poll().contains(PollMask::OUT));
        let (d, _) = recv_all(&b, sent).unwrap();
        assert_eq!(d.len(), sent);
        assert!(a.poll().contains(PollMask::OUT));
    }

    #[test]
    fn listen_connect_accept() {
        let l = Endpoint::new(SockType::Stream, OWNER);
        let c = Endpoint::new(SockType::Stream, OWNER);
        assert_eq!(l.listen(0, cred()), Err(errno!(EINVAL)), "unbound listen");
        l.autobind(7, false).unwrap();
        assert_eq!(l.autobind(7, false), Err(errno!(EINVAL)));
        l.listen(0, cred()).unwrap();
        let Some(Address::Abstract(name)) = l.address() else { panic!("autobind gave no abstract name") };
        assert_eq!(name.len(), 5);
        assert!(Arc::ptr_eq(&find_abstract(7, &name).unwrap(), &l));
        c.begin_connect().unwrap();
        c.try_connect(&l, &cred()).unwrap();
        let c2 = Endpoint::new(SockType::Stream, OWNER);
        c2.begin_connect().unwrap();
        assert_eq!(c2.try_connect(&l, &cred()), Err(errno!(EAGAIN)), "backlog 0 holds one");
        assert!(l.poll().contains(PollMask::IN));
        let s = l.accept().unwrap();
        assert_eq!(l.accept().unwrap_err(), Errno::EAGAIN);
        send_bytes(&c, b"ping").unwrap();
        assert_eq!(recv_all(&s, 10).unwrap().0, b"ping");
        let dg = Endpoint::new(SockType::Dgram, OWNER);
        assert_eq!(dg.connect_dgram(Some(&l)), Err(errno!(EPROTOTYPE)));
        l.close(false);
        assert!(find_abstract(7, &name).is_none());
    }

    #[test]
    fn closing_listener_resets_pending_connections() {
        let l = Endpoint::new(SockType::SeqPacket, OWNER);
        l.autobind(8, false).unwrap();
        l.listen(5, cred()).unwrap();
        let c = Endpoint::new(SockType::SeqPacket, OWNER);
        c.begin_connect().unwrap();
        c.try_connect(&l, &cred()).unwrap();
        l.close(false);
        assert_eq!(recv_all(&c, 10).unwrap_err(), Errno::ECONNRESET);
        assert_eq!(recv_all(&c, 10).unwrap().1.copied, 0);
    }

    #[test]
    fn closing_a_long_chain_of_sockets_in_flight_does_not_recurse() {
        // Socket i+1 waits in socket i's queue and nothing else holds it: closing
        // socket 0 releases the whole chain.
        let ucred = cred().ucred;
        let (p0, mut prev_q) = Endpoint::pair(SockType::Stream, &cred(), OWNER);
        let head = OpenFile::new(UnixSocket::new(p0), None, 2);
        for _ in 0..100_000 {
            let (p, q) = Endpoint::pair(SockType::Stream, &cred(), OWNER);
            let mut rights = vec![OpenFile::new(UnixSocket::new(p), None, 2)];
            prev_q.send_stream(1, false, &mut rights, ucred, &mut |_| Ok(vec![0])).unwrap();
            prev_q.close(false);
            prev_q = q;
        }
        prev_q.close(false);
        drop(head);
    }

    #[test]
    fn fionread_counts_per_type() {
        let (a, b) = Endpoint::pair(SockType::SeqPacket, &cred(), OWNER);
        send_bytes(&a, b"abc").unwrap();
        send_bytes(&a, b"de").unwrap();
        assert_eq!(b.readable_bytes(), Ok(5));
        let (c, d) = Endpoint::pair(SockType::Dgram, &cred(), OWNER);
        send_bytes(&c, b"abc").unwrap();
        send_bytes(&c, b"de").unwrap();
        assert_eq!(d.readable_bytes(), Ok(3));
        let l = Endpoint::new(SockType::Stream, OWNER);
        l.autobind(9, false).unwrap();
        l.listen(1, cred()).unwrap();
        assert_eq!(l.readable_bytes(), Err(errno!(EINVAL)));
    }

    #[test]
    fn datagram_to_closed_peer_is_refused_then_unconnected() {
        let (a, b) = Endpoint::pair(SockType::Dgram, &cred(), OWNER);
        b.close(false);
        assert_eq!(send_bytes(&a, b"x"), Err(errno!(ECONNREFUSED)));
        assert_eq!(send_bytes(&a, b"x"), Err(errno!(ENOTCONN)));
    }
}
