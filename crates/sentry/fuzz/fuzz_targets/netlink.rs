//! Arbitrary bytes sent to a NETLINK_ROUTE socket of the Sentry as one batch
//! of requests, then every answer received: no panic, and what comes back
//! is whole netlink messages addressed to the socket, each answering a
//! request of the batch (its sequence number), errors in Linux's range,
//! and never more than the socket's receive buffer holds.
//!
//! The socket belongs to a stack with a link (eth0, with IPv4 and IPv6
//! addresses and default routes through a gateway) besides `lo`, so that
//! dumps have more than loopback to say. The input's first byte sets the
//! socket up (bits below); with `OPTION` the next 12 bytes are a level, an
//! option name and a value for setsockopt (then read back by getsockopt);
//! with `ADDRESS` the next 12 bytes are a `sockaddr_nl` given to bind, and
//! the batch goes to the kernel's address by sendto rather than by send.
//! The rest is the batch.
#![no_main]
#![forbid(unsafe_code)]

use std::os::fd::OwnedFd;
use std::sync::{Arc, OnceLock};

use abi::net::{SOCK_RAW, SOL_SOCKET, SO_RCVBUF};
use libfuzzer_sys::fuzz_target;
use sentry::net::netlink::{sockaddr, NetlinkSocket, SOL_NETLINK};
use sentry::net::Stack;
use sentry::Errno;
use sentry_fuzz::*;

const STRICT: u8 = 0x01;
const CAP_ACK: u8 = 0x02;
const NO_ENOBUFS: u8 = 0x04;
/// SO_RCVBUF at its least (2304 bytes): dumps overrun it.
const SMALL_RCVBUF: u8 = 0x08;
/// The sender holds CAP_NET_ADMIN.
const ADMIN: u8 = 0x10;
const ADDRESS: u8 = 0x20;
const OPTION: u8 = 0x40;

const NETLINK_CAP_ACK: i32 = 10;
const NETLINK_NO_ENOBUFS: i32 = 5;
const NETLINK_GET_STRICT_CHK: i32 = 12;
/// The most answer bytes a socket queues, whatever SO_RCVBUFFORCE set.
const QUEUE_CAP: usize = 4 << 20;

fn stack() -> &'static Arc<Stack> {
    static STACK: OnceLock<(Arc<Stack>, OwnedFd)> = OnceLock::new();
    let (stack, _wire) = STACK.get_or_init(|| {
        // The wire is never read from: nothing is sent on it.
        stack_on_a_wire()
    });
    stack
}

/// The sequence numbers of the requests in `batch`, walked as the
/// kernel walks a batch (a length that cannot be a message ends it).
fn request_seqs(batch: &[u8]) -> Vec<u32> {
    let mut seqs = Vec::new();
    let mut rest = batch;
    while rest.len() >= 16 {
        let len = u32::from_ne_bytes(rest[..4].try_into().unwrap()) as usize;
        if len < 16 || len > rest.len() {
            break;
        }
        seqs.push(u32::from_ne_bytes(rest[8..12].try_into().unwrap()));
        rest = &rest[len.next_multiple_of(4).min(rest.len())..];
    }
    seqs
}

/// Checks one datagram of answers: whole, aligned messages of the kinds
/// the socket answers with, to `portid`, each for a request in `seqs`.
fn check_datagram(d: &[u8], portid: u32, seqs: &[u32]) {
    assert!(!d.is_empty(), "an empty answer");
    let mut rest = d;
    while !rest.is_empty() {
        assert!(rest.len() >= 16, "a partial message header at the end of an answer: {d:02x?}");
        let len = u32::from_ne_bytes(rest[..4].try_into().unwrap()) as usize;
        let ty = u16::from_ne_bytes(rest[4..6].try_into().unwrap());
        let seq = u32::from_ne_bytes(rest[8..12].try_into().unwrap());
        let pid = u32::from_ne_bytes(rest[12..16].try_into().unwrap());
        assert!(len >= 16 && len <= rest.len(), "a message of length {len} in {} bytes: {d:02x?}", rest.len());
        assert_eq!(pid, portid, "an answer to another port id");
        assert!(seqs.contains(&seq), "an answer with sequence number {seq}, which no request had ({seqs:?})");
        match ty {
            NLMSG_ERROR | NLMSG_DONE => {
                assert!(len >= 20, "NLMSG_ERROR or NLMSG_DONE without its error code");
                let code = i32::from_ne_bytes(rest[16..20].try_into().unwrap());
                assert!((-4095..=0).contains(&code), "error code {code} in an answer");
            }
            RTM_NEWLINK | RTM_NEWADDR | RTM_NEWROUTE => {}
            _ => panic!("an answer of type {ty}: {d:02x?}"),
        }
        rest = &rest[len.next_multiple_of(4).min(rest.len())..];
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&setup, rest)) = input.split_first() else { return };
    let s = NetlinkSocket::new(stack().clone(), 1, SOCK_RAW, 4242, true, (0, 0));
    let admin = setup & ADMIN != 0;
    for (bit, option) in
        [(STRICT, NETLINK_GET_STRICT_CHK), (CAP_ACK, NETLINK_CAP_ACK), (NO_ENOBUFS, NETLINK_NO_ENOBUFS)]
    {
        if setup & bit != 0 {
            s.setsockopt(SOL_NETLINK, option, &1i32.to_ne_bytes(), admin).expect("a netlink flag option");
        }
    }
    if setup & SMALL_RCVBUF != 0 {
        s.setsockopt(SOL_SOCKET, SO_RCVBUF, &1i32.to_ne_bytes(), admin).expect("SO_RCVBUF");
    }
    let rest = match rest.split_at_checked(12) {
        Some((opt, rest)) if setup & OPTION != 0 => {
            let int = |at: usize| i32::from_ne_bytes(opt[at..at + 4].try_into().unwrap());
            // Refused or not, nothing may break.
            let _ = s.setsockopt(int(0), int(4), &opt[8..], admin);
            let _ = s.getsockopt(int(0), int(4), 4);
            rest
        }
        _ => rest,
    };
    let int_option = |level, name| {
        let v = s.getsockopt(level, name, 4).expect("a buffer size");
        i32::from_ne_bytes(v[..4].try_into().unwrap()).max(0) as usize
    };
    let rcvbuf = int_option(SOL_SOCKET, SO_RCVBUF).min(QUEUE_CAP);
    let no_enobufs = int_option(SOL_NETLINK, NETLINK_NO_ENOBUFS) != 0;
    let (batch, to) = match rest.split_at_checked(12) {
        Some((addr, batch)) if setup & ADDRESS != 0 => {
            // A bad address is refused; what matters is that nothing breaks.
            let _ = s.bind(addr);
            (batch, Some(sockaddr(0, 0)))
        }
        _ => (rest, None),
    };
    let max_send = s.max_send();
    match s.send(batch, to.as_deref(), admin) {
        Ok(n) => assert_eq!(n, batch.len(), "a send takes the whole batch"),
        Err(e) if batch.is_empty() => assert_eq!(e, Errno::ENODATA, "an empty send"),
        Err(e) if batch.len() > max_send => assert_eq!(e, Errno::EMSGSIZE, "a batch past SO_SNDBUF"),
        Err(e) => panic!("a batch of {} bytes was refused: {e}", batch.len()),
    }
    let portid = u32::from_ne_bytes(s.local_address()[4..8].try_into().unwrap());
    let seqs = request_seqs(batch);
    let mut total = 0;
    loop {
        let mut got = Vec::new();
        match s.recv(1 << 20, false, &mut |d| {
            got.extend_from_slice(d);
            Ok(())
        }) {
            Ok(r) => {
                assert_eq!((r.copied, r.msg_len), (got.len(), got.len()), "a datagram received whole");
                check_datagram(&got, portid, &seqs);
                total += got.len();
            }
            Err(e) if e == Errno::ENOBUFS => assert!(!no_enobufs, "ENOBUFS with NETLINK_NO_ENOBUFS"),
            Err(e) => {
                assert_eq!(e, Errno::EAGAIN, "receiving answers");
                break;
            }
        }
    }
    assert!(total <= rcvbuf, "{total} bytes of answers queued on a socket whose receive buffer is {rcvbuf}");
    s.close();
});
