//! Netlink route sockets (AF_NETLINK, NETLINK_ROUTE): the link, address and
//! route dumps that `ip`, glibc's getifaddrs and if_nameindex ask for.
//!
//! Requests are parsed with the checks of Linux's netlink_rcv_skb and
//! rtnetlink_rcv_msg (a bad length ends the batch silently, a bad request gets
//! an NLMSG_ERROR) and answered at once from `Stack::interfaces`, the stack's
//! own address list. Answers wait in a per-socket queue bounded by SO_RCVBUF;
//! one that does not fit is dropped and the next receive fails with ENOBUFS, as
//! Linux reports an overrun. Nothing here is sized by the app: a request is
//! bounded by SO_SNDBUF before it is copied, an answer by the interface list.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use abi::io::{POLLRDNORM, POLLWRNORM};
use abi::net::{
    AF_NETLINK, SOCK_DGRAM, SOCK_RAW, SOL_SOCKET, SO_ACCEPTCONN, SO_DOMAIN, SO_ERROR, SO_PASSCRED, SO_PROTOCOL,
    SO_RCVBUF, SO_RCVBUFFORCE, SO_RCVTIMEO_NEW, SO_RCVTIMEO_OLD, SO_SNDBUF, SO_SNDBUFFORCE, SO_SNDTIMEO_NEW,
    SO_SNDTIMEO_OLD, SO_TYPE,
};
use abi::{AsBytes, Errno, FromBytes};

use super::{read_timeout, timeval_bytes, IfaceInfo, Stack};
use crate::mm::{IoDst, IoSrc};
use crate::vfs::{FileOps, OpenFile, PollMask, Stat};
use crate::waiter::WaitQueue;
use crate::SysResult;

pub const NETLINK_ROUTE: i32 = 0;
pub const SOL_NETLINK: i32 = 270;
/// Protocol numbers Linux accepts at all (MAX_LINKS); only NETLINK_ROUTE is served.
const MAX_LINKS: i32 = 32;

const NETLINK_ADD_MEMBERSHIP: i32 = 1;
const NETLINK_DROP_MEMBERSHIP: i32 = 2;
const NETLINK_PKTINFO: i32 = 3;
const NETLINK_BROADCAST_ERROR: i32 = 4;
const NETLINK_NO_ENOBUFS: i32 = 5;
const NETLINK_LISTEN_ALL_NSID: i32 = 8;
const NETLINK_CAP_ACK: i32 = 10;
const NETLINK_EXT_ACK: i32 = 11;
const NETLINK_GET_STRICT_CHK: i32 = 12;
/// The boolean SOL_NETLINK options, kept and reported back.
const FLAG_OPTIONS: [i32; 7] = [
    NETLINK_PKTINFO,
    NETLINK_BROADCAST_ERROR,
    NETLINK_NO_ENOBUFS,
    NETLINK_LISTEN_ALL_NSID,
    NETLINK_CAP_ACK,
    NETLINK_EXT_ACK,
    NETLINK_GET_STRICT_CHK,
];

const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_MIN_TYPE: u16 = 0x10;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_MULTI: u16 = 0x2;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_DUMP_FILTERED: u16 = 0x20;
const NLM_F_CAPPED: u16 = 0x100;

const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const RTM_NEWROUTE: u16 = 24;
const RTM_GETROUTE: u16 = 26;
const RTM_GETNEIGH: u16 = 30;
const RTM_MAX: u16 = 123;

const AF_UNSPEC: u8 = 0;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
const ARPHRD_LOOPBACK: u16 = 772;
const ARPHRD_ETHER: u16 = 1;
/// IFF_UP | IFF_LOOPBACK | IFF_RUNNING | IFF_LOWER_UP.
const LO_FLAGS: u32 = 0x1 | 0x8 | 0x40 | 0x10000;
/// IFF_UP | IFF_BROADCAST | IFF_RUNNING | IFF_MULTICAST | IFF_LOWER_UP: a link that is up.
const ETHER_FLAGS: u32 = 0x1 | 0x2 | 0x40 | 0x1000 | 0x10000;
const IFA_F_PERMANENT: u32 = 0x80;
/// IF_READY: IPv6 is up on the interface.
const IF_READY: u32 = 0x8000_0000;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RT_SCOPE_LINK: u8 = 253;
const RT_SCOPE_HOST: u8 = 254;
const RT_TABLE_MAIN: u8 = 254;
const RT_TABLE_LOCAL: u8 = 255;
const RTPROT_KERNEL: u8 = 2;
/// What `ip route add` and engines' netlink requests mark their routes with.
const RTPROT_BOOT: u8 = 3;
const RTN_UNICAST: u8 = 1;
const RTN_LOCAL: u8 = 2;
const RTN_BROADCAST: u8 = 3;
const IFNAMSIZ: usize = 16;
/// IFLA_IFNAME and IFLA_ALT_IFNAME: the attributes a link is looked up by.
const IFLA_IFNAME: u16 = 3;
const IFLA_ALT_IFNAME: u16 = 53;

/// Linux's net.core.{r,w}mem_default and _max.
const BUF_DEFAULT: i32 = 212_992;
const BUF_MAX: i32 = 212_992;
/// The most answer bytes a socket queues, whatever SO_RCVBUFFORCE asked for.
const QUEUE_CAP: usize = 4 << 20;

static NEXT_INO: AtomicU64 = AtomicU64::new(0x6000_0000);
/// Where the search for a free negative port id goes on (netlink_autobind's rover).
static ROVER: AtomicI32 = AtomicI32::new(-4096);
/// Bound port ids, by (sandbox, port id): unique per sandbox, as per network namespace.
static PORTS: Mutex<BTreeMap<(usize, u32), Weak<NetlinkSocket>>> = Mutex::new(BTreeMap::new());

const RDNORM: PollMask = PollMask::from_bits_retain(POLLRDNORM);
const WRNORM: PollMask = PollMask::from_bits_retain(POLLWRNORM);

fn ports() -> MutexGuard<'static, BTreeMap<(usize, u32), Weak<NetlinkSocket>>> {
    PORTS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Options kept per socket.
#[derive(Debug, Clone)]
pub struct Options {
    pub sndbuf: i32,
    pub rcvbuf: i32,
    pub passcred: bool,
    pub rcvtimeo: Option<Duration>,
    pub sndtimeo: Option<Duration>,
    flags: BTreeMap<i32, bool>,
}

impl Options {
    fn flag(&self, name: i32) -> bool {
        self.flags.get(&name).copied().unwrap_or(false)
    }
}

#[derive(Debug)]
struct State {
    portid: Option<u32>,
    /// Multicast groups joined (bind's nl_groups and NETLINK_ADD_MEMBERSHIP); no
    /// event is ever sent, as nothing in the stack changes.
    groups: u64,
    /// connect's destination: (port id, group).
    dst: (u32, u32),
    /// Datagrams to receive, each with its sender's port id.
    queue: VecDeque<(u32, Vec<u8>)>,
    queued: usize,
    /// An overrun to report on the next receive.
    overrun: bool,
    opts: Options,
}

/// One received datagram: bytes copied, its full length, its sender's address.
#[derive(Debug, Default)]
pub struct Received {
    pub copied: usize,
    pub msg_len: usize,
    pub from: Vec<u8>,
}

/// An AF_NETLINK socket of protocol NETLINK_ROUTE.
#[derive(Debug)]
pub struct NetlinkSocket {
    pub ino: u64,
    /// SOCK_RAW or SOCK_DGRAM (the same thing for netlink).
    pub kind: i32,
    pub wq: Arc<WaitQueue>,
    stack: Arc<Stack>,
    sandbox: usize,
    /// The opener's thread group id: the first port id autobind tries.
    tgid: i32,
    /// Whether the opener held CAP_NET_ADMIN (Linux checks the opener and the sender).
    opener_admin: bool,
    owner: (u32, u32),
    /// This socket, for the port registry.
    me: Weak<NetlinkSocket>,
    st: Mutex<State>,
}

/// The port id and group of a `sockaddr_nl`, checked as Linux's netlink_bind does.
fn parse_sockaddr(raw: &[u8]) -> SysResult<(u32, u32)> {
    if raw.len() < 12 {
        return Err(errno!(EINVAL));
    }
    let family = u16::read_from_prefix(raw).ok_or(errno!(EINVAL))?;
    if i32::from(family) != AF_NETLINK {
        return Err(errno!(EINVAL));
    }
    let pid = u32::read_from_prefix(&raw[4..]).ok_or(errno!(EINVAL))?;
    let groups = u32::read_from_prefix(&raw[8..]).ok_or(errno!(EINVAL))?;
    Ok((pid, groups))
}

/// A `sockaddr_nl`.
pub fn sockaddr(pid: u32, groups: u32) -> Vec<u8> {
    let mut v = Vec::with_capacity(12);
    v.extend_from_slice(&(AF_NETLINK as u16).to_ne_bytes());
    v.extend_from_slice(&[0, 0]);
    v.extend_from_slice(&pid.to_ne_bytes());
    v.extend_from_slice(&groups.to_ne_bytes());
    v
}

/// socket(2)'s checks for AF_NETLINK, as netlink_create makes them.
pub fn check_args(kind: i32, protocol: i32) -> SysResult<()> {
    if kind != SOCK_RAW && kind != SOCK_DGRAM {
        return Err(errno!(ESOCKTNOSUPPORT));
    }
    if !(0..MAX_LINKS).contains(&protocol) || protocol != NETLINK_ROUTE {
        return Err(errno!(EPROTONOSUPPORT));
    }
    Ok(())
}

impl NetlinkSocket {
    /// A new socket of sandbox `sandbox`, opened by thread group `tgid`.
    pub fn new(
        stack: Arc<Stack>,
        sandbox: usize,
        kind: i32,
        tgid: i32,
        opener_admin: bool,
        owner: (u32, u32),
    ) -> Arc<NetlinkSocket> {
        Arc::new_cyclic(|me| NetlinkSocket {
            me: me.clone(),
            ino: NEXT_INO.fetch_add(1, Ordering::Relaxed),
            kind,
            wq: Arc::new(WaitQueue::default()),
            stack,
            sandbox,
            tgid,
            opener_admin,
            owner,
            st: Mutex::new(State {
                portid: None,
                groups: 0,
                dst: (0, 0),
                queue: VecDeque::new(),
                queued: 0,
                overrun: false,
                opts: Options {
                    sndbuf: BUF_DEFAULT,
                    rcvbuf: BUF_DEFAULT,
                    passcred: false,
                    rcvtimeo: None,
                    sndtimeo: None,
                    flags: BTreeMap::new(),
                },
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn options(&self) -> Options {
        self.lock().opts.clone()
    }

    /// Takes a port id: `want`, or (0) the thread group id, else a free negative one.
    fn take_port(&self, st: &mut State, want: u32) -> SysResult<u32> {
        let mut all = ports();
        all.retain(|_, w| w.strong_count() > 0);
        let id = if want != 0 {
            if all.contains_key(&(self.sandbox, want)) {
                return Err(errno!(EADDRINUSE));
            }
            want
        } else {
            let mut id = self.tgid as u32;
            // Linux searches downwards from a random negative start; collisions are
            // rare, and the loop ends: there are 2^31 - 4097 candidates.
            while all.contains_key(&(self.sandbox, id)) {
                let r = ROVER.fetch_sub(1, Ordering::Relaxed);
                if r >= -4096 {
                    ROVER.store(i32::MIN + (pseudo_random() % (i32::MAX as u32 - 4097)) as i32, Ordering::Relaxed);
                    continue;
                }
                id = r as u32;
            }
            id
        };
        all.insert((self.sandbox, id), self.me.clone());
        st.portid = Some(id);
        Ok(id)
    }

    fn autobind(&self, st: &mut State) -> SysResult<u32> {
        match st.portid {
            Some(id) => Ok(id),
            None => self.take_port(st, 0),
        }
    }

    /// bind(2) with a `sockaddr_nl`. A bound socket (autobound by a send
    /// too) takes only its own port id again, not 0, as netlink_bind.
    pub fn bind(&self, raw: &[u8]) -> SysResult<()> {
        let (pid, groups) = parse_sockaddr(raw)?;
        let mut st = self.lock();
        match st.portid {
            Some(id) if pid != id => return Err(errno!(EINVAL)),
            Some(_) => {}
            None => {
                self.take_port(&mut st, pid)?;
            }
        }
        st.groups = (st.groups & !0xffff_ffff) | u64::from(groups);
        Ok(())
    }

    /// connect(2): sets the default destination (AF_UNSPEC clears it).
    pub fn connect(&self, raw: &[u8], admin: bool) -> SysResult<()> {
        if raw.len() < 2 {
            return Err(errno!(EINVAL));
        }
        if u16::read_from_prefix(raw) == Some(u16::from(AF_UNSPEC)) {
            self.lock().dst = (0, 0);
            return Ok(());
        }
        let (pid, group) = parse_sockaddr(raw)?;
        if group != 0 && !admin {
            return Err(errno!(EPERM));
        }
        let mut st = self.lock();
        self.autobind(&mut st)?;
        st.dst = (pid, group);
        Ok(())
    }

    /// getsockname's address (port id 0 until bound).
    pub fn local_address(&self) -> Vec<u8> {
        let st = self.lock();
        sockaddr(st.portid.unwrap_or(0), st.groups as u32)
    }

    /// getpeername's address: the connected destination (the kernel by default).
    pub fn peer_address(&self) -> Vec<u8> {
        let st = self.lock();
        sockaddr(st.dst.0, st.dst.1)
    }

    /// The most bytes one send takes (Linux: sk_sndbuf - 32), checked before copying.
    pub fn max_send(&self) -> usize {
        (self.lock().opts.sndbuf.max(0) as usize).saturating_sub(32)
    }

    /// Sends one batch of requests to `to` (a `sockaddr_nl`) or, when there
    /// is none or it is empty (sendto's address length 0), the connected
    /// destination. `admin`: the sender holds CAP_NET_ADMIN.
    pub fn send(&self, data: &[u8], to: Option<&[u8]>, admin: bool) -> SysResult<usize> {
        let admin = admin && self.opener_admin;
        if data.is_empty() {
            // Linux's netlink_sendmsg has nothing to build a message from.
            return Err(errno!(ENODATA));
        }
        let (me, dst, ctx_flags) = {
            let mut st = self.lock();
            let dst = match to {
                Some(raw) if !raw.is_empty() => parse_sockaddr(raw)?,
                _ => st.dst,
            };
            if (dst.0 != 0 || dst.1 != 0) && !admin {
                return Err(errno!(EPERM));
            }
            if data.len() > (st.opts.sndbuf.max(0) as usize).saturating_sub(32) {
                return Err(errno!(EMSGSIZE));
            }
            let me = self.autobind(&mut st)?;
            (me, dst, (st.opts.flag(NETLINK_GET_STRICT_CHK), st.opts.flag(NETLINK_CAP_ACK)))
        };
        if dst.1 != 0 && dst.0 == 0 {
            // A multicast send from an app: nobody listens to app groups here.
            return Ok(data.len());
        }
        if dst.0 != 0 {
            let peer = ports().get(&(self.sandbox, dst.0)).and_then(Weak::upgrade);
            let peer = peer.ok_or(errno!(ECONNREFUSED))?;
            peer.deliver(me, vec![data.to_vec()]);
            return Ok(data.len());
        }
        let ctx = Ctx { portid: me, admin, strict: ctx_flags.0, cap_ack: ctx_flags.1, ifaces: self.stack.interfaces() };
        self.deliver(0, respond(data, &ctx));
        Ok(data.len())
    }

    /// Queues datagrams from `from`; one that would pass SO_RCVBUF is dropped and
    /// an overrun recorded (unless NETLINK_NO_ENOBUFS).
    fn deliver(&self, from: u32, msgs: Vec<Vec<u8>>) {
        let mut st = self.lock();
        let cap = (st.opts.rcvbuf.max(0) as usize).min(QUEUE_CAP);
        for m in msgs {
            if st.queued + m.len() > cap {
                if !st.opts.flag(NETLINK_NO_ENOBUFS) {
                    st.overrun = true;
                }
                continue;
            }
            st.queued += m.len();
            st.queue.push_back((from, m));
        }
        drop(st);
        self.wq.notify_all();
    }

    /// Receives the next datagram into `out` (at most `len` bytes); EAGAIN when
    /// none is queued, ENOBUFS once after an overrun.
    pub fn recv(&self, len: usize, peek: bool, out: &mut dyn FnMut(&[u8]) -> SysResult<()>) -> SysResult<Received> {
        let mut st = self.lock();
        if st.overrun {
            st.overrun = false;
            return Err(errno!(ENOBUFS));
        }
        let Some((from, data)) = st.queue.front() else { return Err(errno!(EAGAIN)) };
        let n = data.len().min(len);
        out(&data[..n])?;
        let r = Received { copied: n, msg_len: data.len(), from: sockaddr(*from, 0) };
        if !peek {
            if let Some((_, d)) = st.queue.pop_front() {
                st.queued -= d.len();
            }
        }
        Ok(r)
    }

    pub fn poll_mask(&self) -> PollMask {
        let st = self.lock();
        let mut m = PollMask::OUT | WRNORM;
        if !st.queue.is_empty() {
            m |= PollMask::IN | RDNORM;
        }
        if st.overrun {
            m |= PollMask::ERR;
        }
        m
    }

    /// getsockopt(2): the option's bytes (SOL_SOCKET and SOL_NETLINK).
    pub fn getsockopt(&self, level: i32, name: i32, len: usize) -> SysResult<Vec<u8>> {
        let mut st = self.lock();
        let int = |v: i32| v.as_bytes().to_vec();
        let o = &st.opts;
        Ok(match (level, name) {
            (SOL_SOCKET, SO_TYPE) => int(self.kind),
            (SOL_SOCKET, SO_DOMAIN) => int(AF_NETLINK),
            (SOL_SOCKET, SO_PROTOCOL) => int(NETLINK_ROUTE),
            (SOL_SOCKET, SO_ACCEPTCONN) => int(0),
            (SOL_SOCKET, SO_SNDBUF) => int(o.sndbuf),
            (SOL_SOCKET, SO_RCVBUF) => int(o.rcvbuf),
            (SOL_SOCKET, SO_PASSCRED) => int(o.passcred as i32),
            (SOL_SOCKET, SO_RCVTIMEO_OLD | SO_RCVTIMEO_NEW) => timeval_bytes(o.rcvtimeo),
            (SOL_SOCKET, SO_SNDTIMEO_OLD | SO_SNDTIMEO_NEW) => timeval_bytes(o.sndtimeo),
            (SOL_SOCKET, SO_ERROR) => {
                let e = std::mem::take(&mut st.overrun);
                int(if e { Errno::ENOBUFS.0 } else { 0 })
            }
            (SOL_NETLINK, n) if FLAG_OPTIONS.contains(&n) => {
                if len < 4 {
                    return Err(errno!(EINVAL));
                }
                int(o.flag(n) as i32)
            }
            _ => return Err(errno!(ENOPROTOOPT)),
        })
    }

    /// setsockopt(2) with the option's bytes. `admin`: the caller holds CAP_NET_ADMIN.
    pub fn setsockopt(&self, level: i32, name: i32, val: &[u8], admin: bool) -> SysResult<()> {
        let mut st = self.lock();
        match level {
            SOL_SOCKET => {
                let int = || i32::read_from_prefix(val).ok_or(errno!(EINVAL));
                match name {
                    SO_SNDBUF => st.opts.sndbuf = int()?.clamp(2304 / 2, BUF_MAX).saturating_mul(2),
                    SO_RCVBUF => st.opts.rcvbuf = int()?.clamp(2304 / 2, BUF_MAX).saturating_mul(2),
                    SO_SNDBUFFORCE | SO_RCVBUFFORCE if !admin => return Err(errno!(EPERM)),
                    SO_SNDBUFFORCE => st.opts.sndbuf = int()?.max(2304 / 2).saturating_mul(2),
                    SO_RCVBUFFORCE => st.opts.rcvbuf = int()?.max(2304 / 2).saturating_mul(2),
                    SO_PASSCRED => st.opts.passcred = int()? != 0,
                    SO_RCVTIMEO_OLD | SO_RCVTIMEO_NEW => st.opts.rcvtimeo = read_timeout(val)?,
                    SO_SNDTIMEO_OLD | SO_SNDTIMEO_NEW => st.opts.sndtimeo = read_timeout(val)?,
                    _ => return Err(errno!(ENOPROTOOPT)),
                }
            }
            SOL_NETLINK => {
                // Linux reads an int when there is room for one, and 0 otherwise.
                let v = i32::read_from_prefix(val).unwrap_or(0);
                match name {
                    NETLINK_ADD_MEMBERSHIP | NETLINK_DROP_MEMBERSHIP => {
                        if !(1..=64).contains(&v) {
                            return Err(errno!(EINVAL));
                        }
                        let bit = 1u64 << (v - 1);
                        if name == NETLINK_ADD_MEMBERSHIP {
                            st.groups |= bit;
                        } else {
                            st.groups &= !bit;
                        }
                    }
                    n if FLAG_OPTIONS.contains(&n) => {
                        st.opts.flags.insert(n, v != 0);
                    }
                    _ => return Err(errno!(ENOPROTOOPT)),
                }
            }
            _ => return Err(errno!(ENOPROTOOPT)),
        }
        Ok(())
    }

    /// Gives the port id back.
    pub fn close(&self) {
        let mut st = self.lock();
        if let Some(id) = st.portid.take() {
            let mut all = ports();
            if all.get(&(self.sandbox, id)).is_some_and(|w| std::ptr::eq(w.as_ptr(), self)) {
                all.remove(&(self.sandbox, id));
            }
        }
        st.queue.clear();
        st.queued = 0;
    }
}

fn pseudo_random() -> u32 {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    t ^ std::process::id().rotate_left(16)
}

impl FileOps for NetlinkSocket {
    fn read(&self, _f: &OpenFile, dst: &mut dyn IoDst, _off: u64) -> SysResult<usize> {
        let len = dst.space();
        let r = self.recv(len, false, &mut |d| match dst.copy_out(0, d)? {
            n if n == d.len() => Ok(()),
            _ => Err(errno!(EFAULT)),
        })?;
        Ok(r.copied)
    }

    /// write(2) sends to the connected destination with the opener's rights.
    fn write(&self, _f: &OpenFile, src: &dyn IoSrc, _off: u64) -> SysResult<usize> {
        let len = src.size();
        if len > self.max_send() {
            return Err(errno!(EMSGSIZE));
        }
        let data = src.gather(0, len)?;
        self.send(&data, None, self.opener_admin)
    }

    fn seekable(&self) -> bool {
        false
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

/// What a batch of requests is answered with.
#[derive(Debug)]
pub struct Ctx {
    /// The sender's port id (answers carry it).
    pub portid: u32,
    /// The sender may change the network (CAP_NET_ADMIN).
    pub admin: bool,
    /// NETLINK_GET_STRICT_CHK.
    pub strict: bool,
    /// NETLINK_CAP_ACK: errors carry only the request's header.
    pub cap_ack: bool,
    pub ifaces: Vec<IfaceInfo>,
}

/// A request's header.
#[derive(Debug, Clone, Copy)]
struct Hdr {
    len: u32,
    ty: u16,
    flags: u16,
    seq: u32,
}

/// Answers a batch of requests as Linux's netlink_rcv_skb walks one: the
/// datagrams to queue. Never fails and never panics, whatever the bytes.
pub fn respond(buf: &[u8], ctx: &Ctx) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut off = 0;
    while buf.len() - off >= NLMSG_HDRLEN {
        let rest = &buf[off..];
        let h = Hdr {
            len: u32::read_from_prefix(rest).unwrap_or(0),
            ty: u16::read_from_prefix(&rest[4..]).unwrap_or(0),
            flags: u16::read_from_prefix(&rest[6..]).unwrap_or(0),
            seq: u32::read_from_prefix(&rest[8..]).unwrap_or(0),
        };
        let len = h.len as usize;
        if len < NLMSG_HDRLEN || len > rest.len() {
            break;
        }
        let msg = &rest[..len];
        let mut err = None;
        let mut dumped = false;
        if h.flags & NLM_F_REQUEST != 0 && h.ty >= NLMSG_MIN_TYPE {
            match handle(h, &msg[NLMSG_HDRLEN..], ctx) {
                Ok(Answer::None) => {}
                Ok(Answer::One(m)) => out.push(m),
                Ok(Answer::Dump(ms)) => {
                    out.extend(ms);
                    dumped = true;
                }
                Err(e) => err = Some(e),
            }
        }
        // A started dump is never acked, even when asked (netlink_dump_start).
        if err.is_some() || (h.flags & NLM_F_ACK != 0 && !dumped) {
            out.push(ack(h, msg, err, ctx));
        }
        off += align(len).min(rest.len());
    }
    out
}

enum Answer {
    None,
    One(Vec<u8>),
    Dump(Vec<Vec<u8>>),
}

fn align(n: usize) -> usize {
    (n + 3) & !3
}

/// One message: header, then `body`, padded to 4 bytes.
fn message(ty: u16, flags: u16, seq: u32, pid: u32, body: &[u8]) -> Vec<u8> {
    let len = NLMSG_HDRLEN + body.len();
    let mut m = Vec::with_capacity(align(len));
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&ty.to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&pid.to_ne_bytes());
    m.extend_from_slice(body);
    m.resize(align(len), 0);
    m
}

/// NLMSG_ERROR: the error (0 for an ack) and the request, whole for an error
/// unless NETLINK_CAP_ACK, its header only for an ack.
fn ack(h: Hdr, msg: &[u8], err: Option<Errno>, ctx: &Ctx) -> Vec<u8> {
    let code = err.map_or(0, |e| -e.0);
    let capped = err.is_none() || ctx.cap_ack;
    let mut body = code.to_ne_bytes().to_vec();
    body.extend_from_slice(if capped { &msg[..NLMSG_HDRLEN] } else { msg });
    message(NLMSG_ERROR, if capped { NLM_F_CAPPED } else { 0 }, h.seq, ctx.portid, &body)
}

/// The end of a dump, with its error (0 when it went well).
fn done(h: Hdr, ctx: &Ctx, err: i32) -> Vec<u8> {
    message(NLMSG_DONE, NLM_F_MULTI, h.seq, ctx.portid, &err.to_ne_bytes())
}

fn handle(h: Hdr, body: &[u8], ctx: &Ctx) -> Result<Answer, Errno> {
    if h.ty > RTM_MAX {
        return Err(Errno::EOPNOTSUPP);
    }
    // Every rtnetlink message has at least its family byte; shorter ones are ignored.
    let Some(&family) = body.first() else { return Ok(Answer::None) };
    let is_get = (h.ty - RTM_NEWLINK) & 3 == 2;
    if !is_get {
        // Changing the network needs CAP_NET_ADMIN; with it, the loopback
        // stack still has nothing to change.
        return Err(if ctx.admin { Errno::EOPNOTSUPP } else { Errno::EPERM });
    }
    if h.flags & NLM_F_DUMP != 0 {
        return dump(h, family, body, ctx).map(Answer::Dump);
    }
    match h.ty {
        RTM_GETLINK => get_link(h, body, ctx).map(Answer::One),
        _ => Err(Errno::EOPNOTSUPP),
    }
}

/// A dump: its messages in one datagram, then NLMSG_DONE in another, as Linux
/// sends them for a short dump.
fn dump(h: Hdr, family: u8, body: &[u8], ctx: &Ctx) -> Result<Vec<Vec<u8>>, Errno> {
    let (hdr_len, ty) = match h.ty {
        RTM_GETLINK => (16, RTM_NEWLINK),
        RTM_GETADDR => (8, RTM_NEWADDR),
        RTM_GETROUTE => (12, RTM_NEWROUTE),
        RTM_GETNEIGH => (12, 0),
        _ => return Err(Errno::EOPNOTSUPP),
    };
    if ctx.strict && body.len() < hdr_len {
        // A strict dump request with a short header ends at once, with the error in DONE.
        return Ok(vec![done(h, ctx, -Errno::EINVAL.0)]);
    }
    let mut flags = NLM_F_MULTI;
    let bodies: Vec<Vec<u8>> = match h.ty {
        // An IPv6 link dump is answered by IPv6's own handler, with its attributes only.
        RTM_GETLINK if family == AF_INET6 => ctx.ifaces.iter().map(inet6_link_body).collect(),
        RTM_GETLINK => ctx.ifaces.iter().map(link_body).collect(),
        RTM_GETADDR => ctx.ifaces.iter().flat_map(|i| addr_bodies(i, family)).collect(),
        RTM_GETROUTE => {
            if ctx.strict {
                flags |= NLM_F_DUMP_FILTERED;
            }
            route_bodies(&ctx.ifaces, family)
        }
        // The loopback interface has no neighbours.
        _ => Vec::new(),
    };
    let mut all = Vec::new();
    for b in &bodies {
        all.extend(message(ty, flags, h.seq, ctx.portid, b));
    }
    let mut out = Vec::new();
    if !all.is_empty() {
        out.push(all);
    }
    out.push(done(h, ctx, 0));
    Ok(out)
}

/// RTM_GETLINK for one interface, by ifi_index or by IFLA_IFNAME.
fn get_link(h: Hdr, body: &[u8], ctx: &Ctx) -> Result<Vec<u8>, Errno> {
    if body.len() < 16 {
        return Err(Errno::EINVAL);
    }
    let index = i32::read_from_prefix(&body[4..]).unwrap_or(0);
    let mut name = None;
    for (ty, val) in attrs(&body[16..])? {
        if ty == IFLA_IFNAME || ty == IFLA_ALT_IFNAME {
            let s = val.split(|&b| b == 0).next().unwrap_or_default();
            if s.len() >= IFNAMSIZ && ty == IFLA_IFNAME {
                return Err(Errno::ERANGE);
            }
            name = Some(s);
        }
    }
    let found = if index > 0 {
        ctx.ifaces.iter().find(|i| i.index == index as u32)
    } else if let Some(n) = name {
        ctx.ifaces.iter().find(|i| i.name.as_bytes() == n)
    } else {
        return Err(Errno::EINVAL);
    };
    let i = found.ok_or(Errno::ENODEV)?;
    Ok(message(RTM_NEWLINK, 0, h.seq, ctx.portid, &link_body(i)))
}

/// The attributes of a request, each checked to lie within it (nla_len at
/// least 4, and no further than the message's end).
fn attrs(mut b: &[u8]) -> Result<Vec<(u16, &[u8])>, Errno> {
    let mut v = Vec::new();
    while b.len() >= 4 {
        let len = u16::read_from_prefix(b).unwrap_or(0) as usize;
        let ty = u16::read_from_prefix(&b[2..]).unwrap_or(0) & 0x3fff;
        if len < 4 || len > b.len() {
            return Err(Errno::EINVAL);
        }
        v.push((ty, &b[4..len]));
        b = &b[align(len).min(b.len())..];
    }
    Ok(v)
}

/// Appends one attribute, padded.
fn put(out: &mut Vec<u8>, ty: u16, data: &[u8]) {
    out.extend_from_slice(&((4 + data.len()) as u16).to_ne_bytes());
    out.extend_from_slice(&ty.to_ne_bytes());
    out.extend_from_slice(data);
    out.resize(align(out.len()), 0);
}

fn put_u32(out: &mut Vec<u8>, ty: u16, v: u32) {
    put(out, ty, &v.to_ne_bytes());
}

/// The `struct ifinfomsg` of `i` for a dump of `family`, and its IFLA_IFNAME.
fn link_head(i: &IfaceInfo, family: u8, capacity: usize) -> Vec<u8> {
    let mut b = Vec::with_capacity(capacity);
    b.extend_from_slice(&[family, 0]);
    b.extend_from_slice(&link_type(i).to_ne_bytes());
    b.extend_from_slice(&(i.index as i32).to_ne_bytes());
    b.extend_from_slice(&link_flags(i).to_ne_bytes());
    b.extend_from_slice(&0u32.to_ne_bytes());
    let mut name = i.name.as_bytes().to_vec();
    name.push(0);
    put(&mut b, IFLA_IFNAME, &name);
    b
}

/// An RTM_NEWLINK body for `i`, with the attributes Linux gives `lo` (its
/// counters are zero: the loopback device does not count packets).
fn link_body(i: &IfaceInfo) -> Vec<u8> {
    let mut b = link_head(i, AF_UNSPEC, 1024);
    put_u32(&mut b, 13, 1000); // IFLA_TXQLEN
    put(&mut b, 16, &[oper_state(i)]); // IFLA_OPERSTATE
    put(&mut b, 17, &[0]); // IFLA_LINKMODE
    put_u32(&mut b, 4, i.mtu); // IFLA_MTU
    put_u32(&mut b, 50, 0); // IFLA_MIN_MTU
    put_u32(&mut b, 51, 0); // IFLA_MAX_MTU
    put_u32(&mut b, 27, 0); // IFLA_GROUP
    put_u32(&mut b, 30, 0); // IFLA_PROMISCUITY
    put_u32(&mut b, 61, 0); // IFLA_ALLMULTI
    put_u32(&mut b, 31, 1); // IFLA_NUM_TX_QUEUES
    put_u32(&mut b, 40, 65535); // IFLA_GSO_MAX_SEGS
    put_u32(&mut b, 41, 65536); // IFLA_GSO_MAX_SIZE
    put_u32(&mut b, 58, 65536); // IFLA_GRO_MAX_SIZE
    put_u32(&mut b, 63, 65536); // IFLA_GSO_IPV4_MAX_SIZE
    put_u32(&mut b, 64, 65536); // IFLA_GRO_IPV4_MAX_SIZE
    put_u32(&mut b, 59, 524_280); // IFLA_TSO_MAX_SIZE
    put_u32(&mut b, 60, 65535); // IFLA_TSO_MAX_SEGS
    put_u32(&mut b, 32, 1); // IFLA_NUM_RX_QUEUES
    put(&mut b, 33, &[1]); // IFLA_CARRIER
    put_u32(&mut b, 35, 0); // IFLA_CARRIER_CHANGES
    put_u32(&mut b, 47, 0); // IFLA_CARRIER_UP_COUNT
    put_u32(&mut b, 48, 0); // IFLA_CARRIER_DOWN_COUNT
    put(&mut b, 39, &[0]); // IFLA_PROTO_DOWN
    put(&mut b, 1, &i.mac.unwrap_or_default()); // IFLA_ADDRESS
    put(&mut b, 2, &if i.mac.is_some() { [0xff; 6] } else { [0; 6] }); // IFLA_BROADCAST
                                                                       // rtnl_link_stats64 and rtnl_link_stats: rx/tx packets, rx/tx bytes,
                                                                       // rx/tx errors, rx/tx dropped first; the rest stays 0.
    let c = &i.counters;
    let first = [c.rx_packets, c.tx_packets, c.rx_bytes, c.tx_bytes, 0, 0, c.rx_dropped, 0];
    let mut stats64 = [0u8; 200];
    let mut stats32 = [0u8; 96];
    for (k, v) in first.iter().enumerate() {
        stats64[k * 8..k * 8 + 8].copy_from_slice(&v.to_ne_bytes());
        stats32[k * 4..k * 4 + 4].copy_from_slice(&(*v as u32).to_ne_bytes());
    }
    put(&mut b, 23, &stats64); // IFLA_STATS64
    put(&mut b, 7, &stats32); // IFLA_STATS
    let mut xdp = Vec::new();
    put(&mut xdp, 2, &[0]); // IFLA_XDP_ATTACHED: XDP_ATTACHED_NONE
    put(&mut b, 43, &xdp); // IFLA_XDP: nested, without NLA_F_NESTED, as Linux puts it
    put(&mut b, 6, b"noqueue\0"); // IFLA_QDISC
    let mut inet6 = Vec::new();
    put_u32(&mut inet6, 1, IF_READY); // IFLA_INET6_FLAGS
    put(&mut inet6, 8, &[0]); // IFLA_INET6_ADDR_GEN_MODE: EUI64
    let mut spec = Vec::new();
    put(&mut spec, u16::from(AF_INET6), &inet6);
    put(&mut b, 26, &spec); // IFLA_AF_SPEC
    put(&mut b, 14, &[0; 32]); // IFLA_MAP
    b
}

/// ARPHRD_LOOPBACK for `lo`, ARPHRD_ETHER for a link.
fn link_type(i: &IfaceInfo) -> u16 {
    if i.mac.is_some() {
        ARPHRD_ETHER
    } else {
        ARPHRD_LOOPBACK
    }
}

fn link_flags(i: &IfaceInfo) -> u32 {
    if i.mac.is_some() {
        ETHER_FLAGS
    } else {
        LO_FLAGS
    }
}

/// IF_OPER_UP for a link, IF_OPER_UNKNOWN for `lo` (as Linux has it).
fn oper_state(i: &IfaceInfo) -> u8 {
    if i.mac.is_some() {
        6
    } else {
        0
    }
}

/// What inet6_fill_ifinfo says of `i` for an AF_INET6 link dump.
fn inet6_link_body(i: &IfaceInfo) -> Vec<u8> {
    let mut b = link_head(i, AF_INET6, 128);
    put(&mut b, 1, &i.mac.unwrap_or_default()); // IFLA_ADDRESS
    put_u32(&mut b, 4, i.mtu); // IFLA_MTU
    put(&mut b, 16, &[oper_state(i)]); // IFLA_OPERSTATE
    let mut info = Vec::new();
    put_u32(&mut info, 1, IF_READY); // IFLA_INET6_FLAGS
    put(&mut info, 8, &[0]); // IFLA_INET6_ADDR_GEN_MODE
    put(&mut b, 12, &info); // IFLA_PROTINFO
    b
}

/// RTM_NEWADDR bodies for `i`'s addresses of `family` (AF_UNSPEC: all).
fn addr_bodies(i: &IfaceInfo, family: u8) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for &(a, plen) in &i.addrs {
        let (fam, bytes) = match a {
            std::net::IpAddr::V4(v) => (AF_INET, v.octets().to_vec()),
            std::net::IpAddr::V6(v) => (AF_INET6, v.octets().to_vec()),
        };
        if family != AF_UNSPEC && family != fam {
            continue;
        }
        let scope = match a {
            _ if i.mac.is_none() => RT_SCOPE_HOST,
            std::net::IpAddr::V6(v) if v.segments()[0] & 0xffc0 == 0xfe80 => RT_SCOPE_LINK,
            _ => RT_SCOPE_UNIVERSE,
        };
        let mut b = vec![fam, plen, IFA_F_PERMANENT as u8, scope];
        b.extend_from_slice(&i.index.to_ne_bytes());
        // Permanent addresses made when the sandbox (and its uptime) began.
        let cache: Vec<u8> = [u32::MAX, u32::MAX, 0, 0].iter().flat_map(|v| v.to_ne_bytes()).collect();
        put(&mut b, 1, &bytes); // IFA_ADDRESS
        if fam == AF_INET {
            put(&mut b, 2, &bytes); // IFA_LOCAL
            if i.mac.is_some() && plen < 31 {
                let bits = u32::from_be_bytes(bytes[..4].try_into().expect("four bytes"));
                put(&mut b, 4, &(bits | (u32::MAX >> plen)).to_be_bytes()); // IFA_BROADCAST
            }
            let mut label = i.name.as_bytes().to_vec();
            label.push(0);
            put(&mut b, 3, &label); // IFA_LABEL
            put_u32(&mut b, 8, IFA_F_PERMANENT); // IFA_FLAGS
            put(&mut b, 6, &cache); // IFA_CACHEINFO
        } else {
            put(&mut b, 6, &cache);
            put_u32(&mut b, 8, IFA_F_PERMANENT);
            if i.mac.is_none() {
                put(&mut b, 11, &[1]); // IFA_PROTO: IFAPROT_KERNEL_LO
            }
        }
        out.push(b);
    }
    out
}

/// RTM_NEWROUTE bodies: the main table (the routes the namespace had
/// through its links), then what Linux puts in its local table for each
/// address, IPv4 first, in its dump order.
fn route_bodies(ifaces: &[IfaceInfo], family: u8) -> Vec<Vec<u8>> {
    let mut out = main_route_bodies(ifaces, family);
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    for i in ifaces {
        for &(a, plen) in &i.addrs {
            match a {
                std::net::IpAddr::V4(ip) => {
                    let bits = u32::from(ip);
                    let mask = if plen == 0 { 0 } else { u32::MAX << (32 - u32::from(plen.min(32))) };
                    // Only on loopback is the whole prefix local (127.0.0.0/8).
                    if plen < 32 && i.mac.is_none() {
                        v4.push((bits & mask, plen, RT_SCOPE_HOST, RTN_LOCAL, ip, i.index));
                    }
                    v4.push((bits, 32, RT_SCOPE_HOST, RTN_LOCAL, ip, i.index));
                    if plen < 31 {
                        v4.push((bits | !mask, 32, RT_SCOPE_LINK, RTN_BROADCAST, ip, i.index));
                    }
                }
                std::net::IpAddr::V6(ip) => v6.push((ip, i.index)),
            }
        }
    }
    v4.sort_by_key(|r| (r.0, r.1));
    if family == AF_UNSPEC || family == AF_INET {
        for (dst, plen, scope, ty, src, oif) in v4 {
            let mut b = vec![AF_INET, plen, 0, 0, RT_TABLE_LOCAL, RTPROT_KERNEL, scope, ty, 0, 0, 0, 0];
            put_u32(&mut b, 15, u32::from(RT_TABLE_LOCAL)); // RTA_TABLE
            put(&mut b, 1, &dst.to_be_bytes()); // RTA_DST
            put(&mut b, 7, &src.octets()); // RTA_PREFSRC
            put_u32(&mut b, 4, oif); // RTA_OIF
            out.push(b);
        }
    }
    if family == AF_UNSPEC || family == AF_INET6 {
        for (dst, oif) in v6 {
            let mut b = vec![AF_INET6, 128, 0, 0, RT_TABLE_LOCAL, RTPROT_KERNEL, RT_SCOPE_UNIVERSE, RTN_LOCAL];
            b.extend_from_slice(&[0; 4]);
            put_u32(&mut b, 15, u32::from(RT_TABLE_LOCAL));
            put(&mut b, 1, &dst.octets());
            put_u32(&mut b, 6, 0); // RTA_PRIORITY
            put_u32(&mut b, 4, oif);
            put(&mut b, 12, &[0; 32]); // RTA_CACHEINFO
            put(&mut b, 20, &[0]); // RTA_PREF: medium
            out.push(b);
        }
    }
    out
}

/// The main table's routes: each link's routes as the namespace had them
/// (the prefix route of an address is the kernel's, with that address as
/// its source).
fn main_route_bodies(ifaces: &[IfaceInfo], family: u8) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for want in [AF_INET, AF_INET6] {
        if family != AF_UNSPEC && family != want {
            continue;
        }
        for i in ifaces {
            for r in &i.routes {
                let (fam, dst) = match r.dst {
                    std::net::IpAddr::V4(v) => (AF_INET, v.octets().to_vec()),
                    std::net::IpAddr::V6(v) => (AF_INET6, v.octets().to_vec()),
                };
                if fam != want {
                    continue;
                }
                let src = i.addrs.iter().find(|&&(a, plen)| plen == r.prefix && same_prefix(a, r.dst, plen));
                let (proto, scope) = match (r.gateway, src) {
                    (None, Some(_)) => (RTPROT_KERNEL, RT_SCOPE_LINK),
                    (None, None) => (RTPROT_BOOT, RT_SCOPE_LINK),
                    (Some(_), _) => (RTPROT_BOOT, RT_SCOPE_UNIVERSE),
                };
                let mut b = vec![fam, r.prefix, 0, 0, RT_TABLE_MAIN, proto, scope, RTN_UNICAST, 0, 0, 0, 0];
                put_u32(&mut b, 15, u32::from(RT_TABLE_MAIN)); // RTA_TABLE
                if r.prefix > 0 {
                    put(&mut b, 1, &dst); // RTA_DST
                }
                if let (None, Some((std::net::IpAddr::V4(a), _))) = (r.gateway, src) {
                    put(&mut b, 7, &a.octets()); // RTA_PREFSRC
                }
                match r.gateway {
                    Some(std::net::IpAddr::V4(g)) => put(&mut b, 5, &g.octets()), // RTA_GATEWAY
                    Some(std::net::IpAddr::V6(g)) => put(&mut b, 5, &g.octets()),
                    None => {}
                }
                put_u32(&mut b, 4, i.index); // RTA_OIF
                out.push(b);
            }
        }
    }
    out
}

/// Whether `a` and `b` agree in their first `plen` bits.
fn same_prefix(a: std::net::IpAddr, b: std::net::IpAddr, plen: u8) -> bool {
    let bits = |ip: std::net::IpAddr| match ip {
        std::net::IpAddr::V4(v) => u128::from(u32::from(v)) << 96,
        std::net::IpAddr::V6(v) => u128::from(v),
    };
    let mask = if plen == 0 { 0 } else { u128::MAX << (128 - u32::from(plen.min(128))) };
    a.is_ipv4() == b.is_ipv4() && bits(a) & mask == bits(b) & mask
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    fn ctx() -> Ctx {
        Ctx {
            portid: 42,
            admin: false,
            strict: false,
            cap_ack: false,
            ifaces: vec![IfaceInfo {
                index: 1,
                name: "lo".into(),
                mtu: 65536,
                mac: None,
                routes: Vec::new(),
                addrs: vec![(IpAddr::V4(Ipv4Addr::LOCALHOST), 8), (IpAddr::V6(Ipv6Addr::LOCALHOST), 128)],
                counters: Default::default(),
            }],
        }
    }

    fn req(ty: u16, flags: u16, seq: u32, body: &[u8]) -> Vec<u8> {
        message(ty, flags, seq, 0, body)
    }

    /// (type, flags, seq, pid, error code for NLMSG_ERROR) of every message answered.
    fn headers(out: &[Vec<u8>]) -> Vec<(u16, u16, u32, u32, i32)> {
        let mut v = Vec::new();
        for d in out {
            let mut off = 0;
            while off + 16 <= d.len() {
                let len = u32::read_from_prefix(&d[off..]).unwrap() as usize;
                let ty = u16::read_from_prefix(&d[off + 4..]).unwrap();
                let code = if ty == NLMSG_ERROR { i32::read_from_prefix(&d[off + 16..]).unwrap() } else { 0 };
                v.push((
                    ty,
                    u16::read_from_prefix(&d[off + 6..]).unwrap(),
                    u32::read_from_prefix(&d[off + 8..]).unwrap(),
                    u32::read_from_prefix(&d[off + 12..]).unwrap(),
                    code,
                ));
                off += align(len);
            }
        }
        v
    }

    #[test]
    fn dumps_end_with_done_and_echo_seq_and_pid() {
        let out = respond(&req(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, 9, &[AF_INET; 12]), &ctx());
        let h = headers(&out);
        assert_eq!(h.len(), 4, "three IPv4 local-table routes and DONE");
        assert!(h[..3]
            .iter()
            .all(|&(ty, fl, seq, pid, _)| ty == RTM_NEWROUTE && fl == NLM_F_MULTI && seq == 9 && pid == 42));
        assert_eq!(h[3].0, NLMSG_DONE);
        let addrs = headers(&respond(&req(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, 1, &[AF_INET6]), &ctx()));
        assert_eq!(addrs.iter().filter(|h| h.0 == RTM_NEWADDR).count(), 1);
    }

    #[test]
    fn errors_and_acks_are_linuxs() {
        let c = ctx();
        let one = |ty, flags, body: &[u8]| headers(&respond(&req(ty, flags, 5, body), &c));
        let mut link = vec![0u8; 16];
        link[4] = 1;
        assert_eq!(
            one(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK, &link).iter().map(|h| (h.0, h.4)).collect::<Vec<_>>(),
            [(RTM_NEWLINK, 0), (NLMSG_ERROR, 0)]
        );
        link[4] = 9;
        assert_eq!(one(RTM_GETLINK, NLM_F_REQUEST, &link)[0].4, -Errno::ENODEV.0);
        link[4] = 0;
        assert_eq!(one(RTM_GETLINK, NLM_F_REQUEST, &link)[0].4, -Errno::EINVAL.0);
        assert_eq!(one(RTM_NEWADDR, NLM_F_REQUEST, &[0; 8])[0].4, -Errno::EPERM.0);
        assert_eq!(one(200, NLM_F_REQUEST, &[0; 8])[0].4, -Errno::EOPNOTSUPP.0);
        assert_eq!(one(15, NLM_F_REQUEST | NLM_F_ACK, &[0; 8])[0], (NLMSG_ERROR, NLM_F_CAPPED, 5, 42, 0));
        assert!(one(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, &[]).is_empty(), "no family byte: ignored");
        // A bad attribute length is EINVAL.
        let mut named = vec![0u8; 16];
        named.extend_from_slice(&[40, 0, 3, 0, b'l', b'o', 0, 0]);
        assert_eq!(one(RTM_GETLINK, NLM_F_REQUEST, &named)[0].4, -Errno::EINVAL.0);
    }

    #[test]
    fn bad_lengths_end_the_batch_silently() {
        let c = ctx();
        let mut overlong = req(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 1, &[0; 16]);
        overlong[0] = 200;
        assert!(respond(&overlong, &c).is_empty());
        let mut short = req(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 1, &[0; 16]);
        short[0] = 8;
        assert!(respond(&short, &c).is_empty());
        assert!(respond(&[0x10, 0, 0], &c).is_empty());
    }

    /// Random and mutated requests: whatever the bytes, an answer comes back
    /// without a panic, and no answer is larger than what a request can ask for.
    #[test]
    fn hostile_bytes_never_panic() {
        let c = ctx();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let valid = [
            req(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 1, &[0; 16]),
            req(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, 1, &[0; 8]),
            req(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, 1, &[0; 12]),
            req(
                RTM_GETLINK,
                NLM_F_REQUEST,
                1,
                &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 3, 0, b'l', b'o', 0, 0],
            ),
        ];
        for round in 0..20_000 {
            let mut buf = if round % 2 == 0 {
                let len = (next() % 300) as usize;
                (0..len).map(|_| next() as u8).collect::<Vec<u8>>()
            } else {
                let mut b = valid[(next() % valid.len() as u64) as usize].clone();
                for _ in 0..(next() % 6) {
                    let i = (next() as usize) % b.len();
                    b[i] = next() as u8;
                }
                if next() % 4 == 0 {
                    b.truncate((next() as usize) % (b.len() + 1));
                }
                b
            };
            if round % 7 == 0 {
                buf.extend(valid[0].clone());
            }
            let c = Ctx { strict: round % 3 == 0, cap_ack: round % 5 == 0, admin: round % 2 == 0, ..ctx() };
            let out = respond(&buf, &c);
            let total: usize = out.iter().map(Vec::len).sum();
            assert!(total <= (buf.len() / 16 + 1) * 4096, "answer of {total} bytes to {} bytes", buf.len());
        }
        let _ = c;
    }
}
