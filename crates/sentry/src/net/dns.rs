//! The sandbox's DNS under an egress policy: a query the policy would not
//! let leave is answered by the stack itself.
//!
//! A UDP datagram to port 53 of an address the policy refuses is taken as a
//! question for the sandbox's resolver. A name no rule allows is answered
//! NXDOMAIN (and audited); an allowed name is asked again, as a fresh query
//! with a new id and only the question, of the resolvers the runtime named,
//! from a socket of the stack's own; the answer's addresses are pinned to the
//! name for their TTL (a name rule then allows them on every port) and the
//! answer goes back to the app as if from the address it asked. Nothing the
//! app put in its query but the question reaches the resolver.
//!
//! Bounded: at most `MAX_PENDING` questions in flight (more are answered
//! SERVFAIL), `MAX_REPLIES` answers queued per socket (older ones dropped, as
//! a full receive queue drops datagrams), `QUERY_TIMEOUT` per question.

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::addr::Endpoint;
use super::Handle;
use crate::waiter::WaitQueue;

pub(super) const DNS_PORT: u16 = 53;
/// Questions forwarded and not yet answered.
const MAX_PENDING: usize = 256;
/// Answers waiting to be received, per socket.
const MAX_REPLIES: usize = 16;
/// How long a forwarded question waits for its answer; then it is dropped
/// and the app's resolver retries, as with a lost datagram.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);
/// Pins last at least this long (a TTL of 0 would allow nothing: the
/// connect comes after the answer) and at most a day.
const MIN_PIN: u32 = 10;
const MAX_PIN: u32 = 86_400;
/// The most compression pointers followed in one name.
const MAX_JUMPS: usize = 16;

const TYPE_A: u16 = 1;
const TYPE_AAAA: u16 = 28;
const CLASS_IN: u16 = 1;
pub(super) const RCODE_SERVFAIL: u8 = 2;
pub(super) const RCODE_NXDOMAIN: u8 = 3;

/// A question as the app asked it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Query {
    pub id: u16,
    /// Recursion desired, copied to the forwarded query and the answer.
    pub rd: bool,
    /// Whether the query had an additional record (EDNS): only then does the
    /// forwarded one advertise EDNS, so that the answer is what the app expects.
    pub edns: bool,
    /// The name, dotted, without a final dot.
    pub name: String,
    /// The question's bytes (name, type, class), as asked.
    pub question: Vec<u8>,
}

/// Parses a standard query with exactly one question; None for anything
/// else (the stack drops it, as a resolver ignores garbage).
pub(super) fn parse_query(b: &[u8]) -> Option<Query> {
    if b.len() < 12 {
        return None;
    }
    let flags = u16::from_be_bytes([b[2], b[3]]);
    let qr = flags & 0x8000 != 0;
    let opcode = (flags >> 11) & 0xf;
    let count = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
    if qr || opcode != 0 || count(4) != 1 {
        return None;
    }
    // Pointers have nothing to point back to in a question.
    let (name, end) = read_name(b, 12, false)?;
    let question_end = end.checked_add(4).filter(|&e| e <= b.len())?;
    Some(Query {
        id: u16::from_be_bytes([b[0], b[1]]),
        rd: flags & 0x0100 != 0,
        edns: count(10) > 0,
        name,
        question: b[12..question_end].to_vec(),
    })
}

/// The name at `off` and the offset after it (after the first pointer, if it
/// jumps). Labels are written as bytes, any byte kept (escaped later where
/// it is shown). None if it runs past the message, loops or is too long.
fn read_name(b: &[u8], mut off: usize, pointers: bool) -> Option<(String, usize)> {
    let mut name = String::new();
    let mut end = None;
    let mut jumps = 0;
    loop {
        let len = *b.get(off)?;
        match len {
            0 => {
                let end = end.unwrap_or(off + 1);
                return (name.len() <= 253).then_some((name, end));
            }
            1..=63 => {
                let label = b.get(off + 1..off + 1 + usize::from(len))?;
                if !name.is_empty() {
                    name.push('.');
                }
                name.extend(label.iter().map(|&c| char::from(c)));
                if name.len() > 253 {
                    return None;
                }
                off += 1 + usize::from(len);
            }
            0xc0..=0xff if pointers => {
                let target = usize::from(u16::from_be_bytes([len, *b.get(off + 1)?]) & 0x3fff);
                jumps += 1;
                if jumps > MAX_JUMPS {
                    return None;
                }
                end.get_or_insert(off + 2);
                off = target;
            }
            _ => return None,
        }
    }
}

/// An answer to `q` with `rcode` and no records.
pub(super) fn reply(q: &Query, rcode: u8) -> Vec<u8> {
    let mut m = Vec::with_capacity(12 + q.question.len());
    m.extend_from_slice(&q.id.to_be_bytes());
    // QR, the RD asked, RA.
    let flags = 0x8000 | if q.rd { 0x0100 } else { 0 } | 0x0080 | u16::from(rcode);
    m.extend_from_slice(&flags.to_be_bytes());
    m.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    m.extend_from_slice(&q.question);
    m
}

/// The query forwarded for `q`: id `id`, the question, and EDNS with a
/// 1232-byte payload if the app's had EDNS.
fn forwarded(q: &Query, id: u16) -> Vec<u8> {
    let mut m = Vec::with_capacity(12 + q.question.len() + 11);
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&(if q.rd { 0x0100u16 } else { 0 }).to_be_bytes());
    m.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, u8::from(q.edns)]);
    m.extend_from_slice(&q.question);
    if q.edns {
        m.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
    }
    m
}

/// The A and AAAA addresses of an answer to `q` forwarded with id `id`, and
/// the least of their TTLs; None unless it is that answer (its id, and the
/// same question).
fn answer_addrs(b: &[u8], id: u16, q: &Query) -> Option<(Vec<IpAddr>, u32)> {
    if b.len() < 12 || u16::from_be_bytes([b[0], b[1]]) != id || b[2] & 0x80 == 0 {
        return None;
    }
    if u16::from_be_bytes([b[4], b[5]]) != 1 {
        return None;
    }
    let (name, mut off) = read_name(b, 12, true)?;
    if !name.eq_ignore_ascii_case(&q.name) || b.get(off..off + 4)? != &q.question[q.question.len() - 4..] {
        return None;
    }
    off += 4;
    let (mut addrs, mut ttl) = (Vec::new(), u32::MAX);
    for _ in 0..u16::from_be_bytes([b[6], b[7]]) {
        let (_, at) = read_name(b, off, true)?;
        let head = b.get(at..at + 10)?;
        let (ty, class) = (u16::from_be_bytes([head[0], head[1]]), u16::from_be_bytes([head[2], head[3]]));
        let rttl = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
        let len = usize::from(u16::from_be_bytes([head[8], head[9]]));
        let data = b.get(at + 10..at + 10 + len)?;
        let addr = match (ty, class, len) {
            (TYPE_A, CLASS_IN, 4) => Some(IpAddr::from(<[u8; 4]>::try_from(data).ok()?)),
            (TYPE_AAAA, CLASS_IN, 16) => Some(IpAddr::from(<[u8; 16]>::try_from(data).ok()?)),
            _ => None,
        };
        if let Some(a) = addr {
            addrs.push(a);
            ttl = ttl.min(rttl);
        }
        off = at + 10 + len;
    }
    Some((addrs, ttl.clamp(MIN_PIN, MAX_PIN)))
}

/// A question forwarded and not yet answered.
#[derive(Debug)]
struct Pending {
    /// The forwarded query's id, and where it went.
    id: u16,
    resolver: IpAddr,
    /// The app's socket (and its wait queue), its question, and whom it asked.
    owner: u64,
    wq: Arc<WaitQueue>,
    query: Query,
    asked: Endpoint,
    since: Instant,
}

/// An answer for an app's socket, as if from the address it asked.
pub(super) type Reply = (Vec<u8>, Endpoint);

/// A resolver's answer to a question in flight.
#[derive(Debug)]
pub(super) struct Answer {
    /// The app's socket that asked, and its wait queue.
    pub owner: u64,
    pub wq: Arc<WaitQueue>,
    pub reply: Reply,
    /// The name asked, and the addresses to pin to it for `ttl` seconds.
    pub name: String,
    pub addrs: Vec<IpAddr>,
    pub ttl: u32,
}

/// The DNS state of a stack.
#[derive(Debug, Default)]
pub(super) struct Dns {
    /// The stack's own UDP socket on each interface a resolver is reached by,
    /// and the port it holds.
    pub upstream: BTreeMap<usize, (Handle, u16)>,
    pending: VecDeque<Pending>,
    /// Answers per app socket (its inode number), with its wait queue.
    replies: BTreeMap<u64, (Arc<WaitQueue>, VecDeque<Reply>)>,
    next_id: u16,
    /// Loopback resolvers of the container's network namespace, each with
    /// the socket the runtime connected to it there.
    netns: Vec<(IpAddr, Arc<File>)>,
}

impl Dns {
    pub fn with_netns_resolvers(netns: Vec<(IpAddr, Arc<File>)>) -> Dns {
        Dns { netns, ..Dns::default() }
    }

    /// The socket to the namespace's resolver at `ip`, if there is one.
    pub fn netns_resolver(&self, ip: IpAddr) -> Option<Arc<File>> {
        self.netns.iter().find(|(a, _)| *a == ip).map(|(_, f)| f.clone())
    }

    pub fn netns_resolvers(&self) -> Vec<(IpAddr, Arc<File>)> {
        self.netns.clone()
    }

    /// Queues an answer for socket `owner` and wakes it.
    pub fn answer(&mut self, owner: u64, wq: &Arc<WaitQueue>, reply: Reply) {
        let (_, q) = self.replies.entry(owner).or_insert_with(|| (wq.clone(), VecDeque::new()));
        if q.len() == MAX_REPLIES {
            q.pop_front();
        }
        q.push_back(reply);
        wq.notify_all();
    }

    /// Records a question forwarded to `resolver`; returns the forwarded
    /// query's bytes, or None when too many are in flight.
    pub fn forward(
        &mut self,
        owner: (u64, &Arc<WaitQueue>),
        query: Query,
        asked: Endpoint,
        resolver: IpAddr,
        seed: u16,
    ) -> Option<Vec<u8>> {
        let now = Instant::now();
        self.pending.retain(|p| now.duration_since(p.since) < QUERY_TIMEOUT);
        if self.pending.len() >= MAX_PENDING {
            return None;
        }
        // Ids follow a sequence offset by the stack's seed, and never repeat
        // among the questions in flight.
        let mut id = self.next_id.wrapping_add(seed);
        while self.pending.iter().any(|p| p.id == id) {
            self.next_id = self.next_id.wrapping_add(1);
            id = self.next_id.wrapping_add(seed);
        }
        self.next_id = self.next_id.wrapping_add(1);
        let bytes = forwarded(&query, id);
        let (owner, wq) = (owner.0, owner.1.clone());
        self.pending.push_back(Pending { id, resolver, owner, wq, query, asked, since: now });
        Some(bytes)
    }

    /// Takes back the question `forward` recorded last (it could not be sent).
    pub fn cancel_last(&mut self) {
        self.pending.pop_back();
    }

    /// Takes an answer a resolver sent. None if no question in flight matches.
    pub fn take_answer(&mut self, data: &[u8], from: IpAddr) -> Option<Answer> {
        let i = self
            .pending
            .iter()
            .position(|p| p.resolver == from && data.len() >= 2 && u16::from_be_bytes([data[0], data[1]]) == p.id)?;
        let (addrs, ttl) = answer_addrs(data, self.pending[i].id, &self.pending[i].query)?;
        let p = self.pending.remove(i)?;
        let mut reply = data.to_vec();
        reply[..2].copy_from_slice(&p.query.id.to_be_bytes());
        Some(Answer { owner: p.owner, wq: p.wq, reply: (reply, p.asked), name: p.query.name, addrs, ttl })
    }

    /// The next answer for `owner` (left queued if `peek`).
    pub fn next_reply(&mut self, owner: u64, peek: bool) -> Option<Reply> {
        let (_, q) = self.replies.get_mut(&owner)?;
        let r = if peek { q.front().cloned() } else { q.pop_front() };
        if q.is_empty() && !peek {
            self.replies.remove(&owner);
        }
        r
    }

    pub fn has_reply(&self, owner: u64) -> bool {
        self.replies.get(&owner).is_some_and(|(_, q)| !q.is_empty())
    }

    /// The socket closed: its answers and questions go.
    pub fn forget(&mut self, owner: u64) {
        self.replies.remove(&owner);
        self.pending.retain(|p| p.owner != owner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query for `name` as glibc sends it (A, IN, RD; EDNS if asked).
    fn query(id: u16, name: &str, edns: bool) -> Vec<u8> {
        let mut m = id.to_be_bytes().to_vec();
        m.extend_from_slice(&[1, 0, 0, 1, 0, 0, 0, 0, 0, u8::from(edns)]);
        for label in name.split('.') {
            m.push(label.len() as u8);
            m.extend_from_slice(label.as_bytes());
        }
        m.extend_from_slice(&[0, 0, 1, 0, 1]);
        if edns {
            m.extend_from_slice(&[0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0]);
        }
        m
    }

    #[test]
    fn queries_parse_and_are_answered_with_their_question() {
        let q = parse_query(&query(0x1234, "Allowed.test", true)).unwrap();
        assert_eq!((q.id, q.rd, q.edns, q.name.as_str()), (0x1234, true, true, "Allowed.test"));
        let r = reply(&q, RCODE_NXDOMAIN);
        assert_eq!(&r[..4], &[0x12, 0x34, 0x81, 0x83]);
        assert_eq!(&r[12..], &q.question[..]);
        let f = forwarded(&q, 7);
        assert_eq!(&f[..2], &[0, 7]);
        assert_eq!(f.len(), 12 + q.question.len() + 11, "the app's EDNS record is replaced by the stack's");
        for bad in [
            vec![0u8; 11],
            {
                let mut a = query(1, "a.test", false);
                a[2] |= 0x80; // an answer, not a question
                a
            },
            {
                let mut a = query(1, "a.test", false);
                a[5] = 2; // two questions
                a
            },
            {
                let mut a = query(1, "a.test", false);
                a[12] = 0xc0; // a pointer in a question
                a
            },
            query(1, "a.test", false)[..18].to_vec(),
        ] {
            assert_eq!(parse_query(&bad), None, "{bad:?}");
        }
    }

    /// An answer to `q` forwarded as `id`: `addrs` as A records, after a CNAME.
    fn answer(q: &Query, id: u16, addrs: &[[u8; 4]], ttl: u32) -> Vec<u8> {
        let mut m = id.to_be_bytes().to_vec();
        m.extend_from_slice(&[0x81, 0x80, 0, 1, 0, addrs.len() as u8 + 1, 0, 0, 0, 0]);
        m.extend_from_slice(&q.question);
        // CNAME: pointer to the question's name, rdata another name.
        m.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 4, 1, b'x', 0xc0, 12]);
        for a in addrs {
            m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
            m.extend_from_slice(&ttl.to_be_bytes());
            m.extend_from_slice(&[0, 4]);
            m.extend_from_slice(a);
        }
        m
    }

    #[test]
    fn answers_match_their_question_and_pin_for_the_ttl() {
        let mut dns = Dns::default();
        let q = parse_query(&query(0xbeef, "allowed.test", false)).unwrap();
        let asked = Endpoint { ip: super::super::addr::Ip::V4([10, 0, 0, 53].into()), port: 53 };
        let resolver: IpAddr = "192.0.2.53".parse().unwrap();
        let wq = Arc::new(WaitQueue::default());
        let fwd = dns.forward((9, &wq), q.clone(), asked, resolver, 0x4000).unwrap();
        let id = u16::from_be_bytes([fwd[0], fwd[1]]);
        let good = answer(&q, id, &[[192, 0, 2, 10], [192, 0, 2, 11]], 0);
        // From another address, or with another id: not the answer.
        assert!(dns.take_answer(&good, "192.0.2.54".parse().unwrap()).is_none());
        assert!(dns.take_answer(&answer(&q, id ^ 1, &[[1, 2, 3, 4]], 60), resolver).is_none());
        let other = parse_query(&query(0xbeef, "other.test", false)).unwrap();
        assert!(dns.take_answer(&answer(&other, id, &[[1, 2, 3, 4]], 60), resolver).is_none());
        let Answer { owner, reply: (bytes, from), name, addrs, ttl, .. } = dns.take_answer(&good, resolver).unwrap();
        assert_eq!((owner, from, name.as_str(), ttl), (9, asked, "allowed.test", MIN_PIN));
        assert_eq!(addrs, ["192.0.2.10".parse::<IpAddr>().unwrap(), "192.0.2.11".parse().unwrap()]);
        assert_eq!(&bytes[..2], &[0xbe, 0xef], "the app gets its own id back");
        assert!(dns.take_answer(&good, resolver).is_none(), "an answer is taken once");
    }

    #[test]
    fn hostile_answers_and_floods_stay_bounded() {
        let mut dns = Dns::default();
        let q = parse_query(&query(1, "a.test", false)).unwrap();
        let asked = Endpoint { ip: super::super::addr::Ip::V4([10, 0, 0, 53].into()), port: 53 };
        let resolver: IpAddr = "192.0.2.53".parse().unwrap();
        let wq = Arc::new(WaitQueue::default());
        for _ in 0..MAX_PENDING {
            assert!(dns.forward((1, &wq), q.clone(), asked, resolver, 0).is_some());
        }
        assert!(dns.forward((1, &wq), q.clone(), asked, resolver, 0).is_none(), "past the bound: SERVFAIL");
        // A pointer loop, a pointer past the end, a truncated record: no answer, no panic.
        let mut looped = answer(&q, 0, &[[1, 1, 1, 1]], 5);
        let at = looped.len() - 16;
        looped[at..at + 2].copy_from_slice(&[0xc0, at as u8]);
        assert!(dns.take_answer(&looped, resolver).is_none());
        let mut every = answer(&q, 1, &[[1, 1, 1, 1]], 5);
        for cut in 0..every.len() {
            let _ = dns.take_answer(&every[..cut], resolver);
        }
        for i in 12..every.len() {
            every[i] ^= 0xff;
            let _ = dns.take_answer(&every, resolver);
            every[i] ^= 0xff;
        }
        for i in 0..100u8 {
            dns.answer(5, &wq, (vec![i], asked));
        }
        assert_eq!(dns.next_reply(5, false).unwrap().0, [100 - MAX_REPLIES as u8]);
        dns.forget(5);
        assert!(!dns.has_reply(5));
    }
}
