//! Internet socket addresses: `sockaddr_in` and `sockaddr_in6` parsed from the
//! exact bytes an app passed, and encoded back for the socket's family.
//!
//! An AF_INET6 socket talks to IPv4 peers through v4-mapped addresses
//! (`::ffff:a.b.c.d`): they become plain IPv4 endpoints inside the stack and
//! are mapped again on the way out, as Linux's dual-stack sockets do.

use std::net::{Ipv4Addr, Ipv6Addr};

use abi::net::{AF_INET, AF_INET6, AF_UNSPEC};

use crate::SysResult;

/// `sizeof(struct sockaddr_in)`.
pub const SOCKADDR_IN_LEN: usize = 16;
/// `sizeof(struct sockaddr_in6)`.
pub const SOCKADDR_IN6_LEN: usize = 28;

/// The address family of an internet socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn from_domain(domain: i32) -> Option<Family> {
        match domain {
            AF_INET => Some(Family::V4),
            AF_INET6 => Some(Family::V6),
            _ => None,
        }
    }

    /// The SO_DOMAIN value.
    pub fn domain(self) -> i32 {
        match self {
            Family::V4 => AF_INET,
            Family::V6 => AF_INET6,
        }
    }
}

/// An IP address as the stack sees it: v4-mapped IPv6 addresses are IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Ip {
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

impl Ip {
    pub fn is_unspecified(self) -> bool {
        match self {
            Ip::V4(a) => a.is_unspecified(),
            Ip::V6(a) => a.is_unspecified(),
        }
    }

    /// The stack's own address of this address's kind (the loopback address).
    pub fn loopback_of(self) -> Ip {
        match self {
            Ip::V4(_) => Ip::V4(Ipv4Addr::LOCALHOST),
            Ip::V6(_) => Ip::V6(Ipv6Addr::LOCALHOST),
        }
    }

    pub fn is_v4(self) -> bool {
        matches!(self, Ip::V4(_))
    }
}

impl From<Ip> for smoltcp::wire::IpAddress {
    fn from(ip: Ip) -> Self {
        match ip {
            Ip::V4(a) => smoltcp::wire::IpAddress::Ipv4(a),
            Ip::V6(a) => smoltcp::wire::IpAddress::Ipv6(a),
        }
    }
}

impl From<smoltcp::wire::IpAddress> for Ip {
    fn from(ip: smoltcp::wire::IpAddress) -> Self {
        match ip {
            smoltcp::wire::IpAddress::Ipv4(a) => Ip::V4(a),
            smoltcp::wire::IpAddress::Ipv6(a) => match a.to_ipv4_mapped() {
                Some(v4) => Ip::V4(v4),
                None => Ip::V6(a),
            },
        }
    }
}

/// An address and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    pub ip: Ip,
    pub port: u16,
}

impl From<Endpoint> for smoltcp::wire::IpEndpoint {
    fn from(e: Endpoint) -> Self {
        smoltcp::wire::IpEndpoint::new(e.ip.into(), e.port)
    }
}

impl From<smoltcp::wire::IpEndpoint> for Endpoint {
    fn from(e: smoltcp::wire::IpEndpoint) -> Self {
        Endpoint { ip: e.addr.into(), port: e.port }
    }
}

/// What an app's socket address said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// AF_UNSPEC: connect's request to dissolve an association, or sendto's "no
    /// address" on an AF_INET6 socket.
    Unspec,
    Addr(Endpoint),
}

/// The call an address is given to: Linux checks each one's a little apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    Bind,
    Connect,
    /// connect(2) on a UDP socket: an AF_INET6 one also takes an AF_INET address.
    ConnectDgram,
    SendTo,
}

fn v4(raw: &[u8]) -> SysResult<Endpoint> {
    if raw.len() < SOCKADDR_IN_LEN {
        return Err(errno!(EINVAL));
    }
    let port = u16::from_be_bytes([raw[2], raw[3]]);
    Ok(Endpoint { ip: Ip::V4(Ipv4Addr::new(raw[4], raw[5], raw[6], raw[7])), port })
}

fn v6(raw: &[u8]) -> SysResult<Endpoint> {
    // Linux takes the older 24-byte sockaddr_in6 (without sin6_scope_id).
    if raw.len() < 24 {
        return Err(errno!(EINVAL));
    }
    let port = u16::from_be_bytes([raw[2], raw[3]]);
    let mut b = [0u8; 16];
    b.copy_from_slice(&raw[8..24]);
    let ip = Ipv6Addr::from(b);
    let ip = match ip.to_ipv4_mapped() {
        Some(v4) => Ip::V4(v4),
        None => Ip::V6(ip),
    };
    Ok(Endpoint { ip, port })
}

/// `sin6_scope_id`: the interface an address is meant on, 0 for none (as
/// for the older 24-byte `sockaddr_in6`, which has no such field).
fn scope_id(raw: &[u8]) -> u32 {
    raw.get(24..28).map_or(0, |b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
}

/// Whether an address means nothing without an interface (Linux's
/// __ipv6_addr_needs_scope_id): IPv6 link-local unicast, and interface- or
/// link-local multicast.
fn needs_scope(ip: Ip) -> bool {
    let Ip::V6(a) = ip else { return false };
    let first = a.segments()[0];
    first & 0xffc0 == 0xfe80 || (first & 0xff00 == 0xff00 && matches!(first & 0xf, 1 | 2))
}

/// Parses the `raw` bytes an app passed to bind, connect or sendto on a socket of
/// `family`, with the checks, in the order and with the errors of Linux's
/// inet_bind/inet6_bind, inet_stream_connect and udp(v6)_sendmsg.
pub fn parse(family: Family, raw: &[u8], how: Use) -> SysResult<Parsed> {
    if raw.len() < 2 {
        return Err(errno!(EINVAL));
    }
    let fam = i32::from(u16::from_ne_bytes([raw[0], raw[1]]));
    if matches!(how, Use::Connect | Use::ConnectDgram) && fam == AF_UNSPEC {
        return Ok(Parsed::Unspec);
    }
    match (family, how) {
        (Family::V4, Use::Bind) => {
            let e = v4(raw)?;
            // AF_UNSPEC with INADDR_ANY is taken for old programs.
            match fam {
                AF_INET => Ok(Parsed::Addr(e)),
                AF_UNSPEC if e.ip.is_unspecified() => Ok(Parsed::Addr(e)),
                _ => Err(errno!(EAFNOSUPPORT)),
            }
        }
        (Family::V6, Use::ConnectDgram) if fam == AF_INET => Ok(Parsed::Addr(v4(raw)?)),
        (Family::V4, Use::Connect | Use::ConnectDgram) => {
            let e = v4(raw)?;
            if fam != AF_INET {
                return Err(errno!(EAFNOSUPPORT));
            }
            Ok(Parsed::Addr(e))
        }
        (Family::V4, Use::SendTo) => {
            let e = v4(raw)?;
            match fam {
                AF_INET | AF_UNSPEC => Ok(Parsed::Addr(e)),
                _ => Err(errno!(EAFNOSUPPORT)),
            }
        }
        (Family::V6, Use::Bind | Use::Connect | Use::ConnectDgram) => {
            let e = v6(raw)?;
            if fam != AF_INET6 {
                return Err(errno!(EAFNOSUPPORT));
            }
            // Such an address without its interface is EINVAL (no socket is
            // bound to a device here: SO_BINDTODEVICE is refused); a TCP
            // connect looks at multicast first, which no route reaches.
            let multicast = matches!(e.ip, Ip::V6(a) if a.is_multicast());
            if needs_scope(e.ip) && scope_id(raw) == 0 && !(how == Use::Connect && multicast) {
                return Err(errno!(EINVAL));
            }
            Ok(Parsed::Addr(e))
        }
        (Family::V6, Use::SendTo) => match fam {
            AF_INET6 => Ok(Parsed::Addr(v6(raw)?)),
            AF_INET => Ok(Parsed::Addr(v4(raw)?)),
            AF_UNSPEC => Ok(Parsed::Unspec),
            _ => Err(errno!(EINVAL)),
        },
    }
}

/// The sockaddr a socket of `family` reports for `e` (IPv4 endpoints are
/// v4-mapped on an AF_INET6 socket).
pub fn encode(family: Family, e: Endpoint) -> Vec<u8> {
    let port = e.port.to_be_bytes();
    match family {
        Family::V4 => {
            let ip = match e.ip {
                Ip::V4(a) => a,
                Ip::V6(_) => Ipv4Addr::UNSPECIFIED,
            };
            let mut out = vec![0u8; SOCKADDR_IN_LEN];
            out[..2].copy_from_slice(&(AF_INET as u16).to_ne_bytes());
            out[2..4].copy_from_slice(&port);
            out[4..8].copy_from_slice(&ip.octets());
            out
        }
        Family::V6 => {
            let ip = match e.ip {
                Ip::V4(a) => a.to_ipv6_mapped(),
                Ip::V6(a) => a,
            };
            let mut out = vec![0u8; SOCKADDR_IN6_LEN];
            out[..2].copy_from_slice(&(AF_INET6 as u16).to_ne_bytes());
            out[2..4].copy_from_slice(&port);
            out[8..24].copy_from_slice(&ip.octets());
            out
        }
    }
}

/// The unspecified address of a family, port 0: what an unbound socket reports.
pub fn unspecified(family: Family) -> Endpoint {
    match family {
        Family::V4 => Endpoint { ip: Ip::V4(Ipv4Addr::UNSPECIFIED), port: 0 },
        Family::V6 => Endpoint { ip: Ip::V6(Ipv6Addr::UNSPECIFIED), port: 0 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sin(port: u16, ip: [u8; 4]) -> Vec<u8> {
        encode(Family::V4, Endpoint { ip: Ip::V4(ip.into()), port })
    }

    #[test]
    fn parses_and_encodes_both_families() {
        let raw = sin(8080, [127, 0, 0, 1]);
        let e = Endpoint { ip: Ip::V4(Ipv4Addr::LOCALHOST), port: 8080 };
        assert_eq!(parse(Family::V4, &raw, Use::Connect), Ok(Parsed::Addr(e)));
        let raw6 = encode(Family::V6, e);
        assert_eq!(raw6.len(), SOCKADDR_IN6_LEN);
        assert_eq!(parse(Family::V6, &raw6, Use::Bind), Ok(Parsed::Addr(e)), "v4-mapped comes back as IPv4");
        let lo6 = Endpoint { ip: Ip::V6(Ipv6Addr::LOCALHOST), port: 1 };
        assert_eq!(parse(Family::V6, &encode(Family::V6, lo6)[..24], Use::Connect), Ok(Parsed::Addr(lo6)));
        assert_eq!(parse(Family::V6, &raw, Use::SendTo), Ok(Parsed::Addr(e)), "AF_INET on a v6 socket");
    }

    #[test]
    fn wrong_lengths_and_families_fail_as_on_linux() {
        let raw = sin(1, [127, 0, 0, 1]);
        assert_eq!(parse(Family::V4, &raw[..15], Use::Bind), Err(errno!(EINVAL)));
        assert_eq!(parse(Family::V4, &[], Use::Connect), Err(errno!(EINVAL)));
        assert_eq!(parse(Family::V6, &raw, Use::Bind), Err(errno!(EINVAL)), "16 bytes is short for AF_INET6");
        let mut unix = raw.clone();
        unix[..2].copy_from_slice(&1u16.to_ne_bytes());
        assert_eq!(parse(Family::V4, &unix, Use::Connect), Err(errno!(EAFNOSUPPORT)));
        assert_eq!(parse(Family::V6, &unix, Use::SendTo), Err(errno!(EINVAL)));
        let mut wrong6 = encode(Family::V6, unspecified(Family::V6));
        wrong6[..2].copy_from_slice(&(AF_INET as u16).to_ne_bytes());
        assert_eq!(parse(Family::V6, &wrong6, Use::Bind), Err(errno!(EAFNOSUPPORT)));
        assert_eq!(parse(Family::V6, &[0, 0], Use::Connect), Ok(Parsed::Unspec));
        let mut unspec_any = sin(80, [0, 0, 0, 0]);
        unspec_any[..2].copy_from_slice(&0u16.to_ne_bytes());
        assert!(matches!(parse(Family::V4, &unspec_any, Use::Bind), Ok(Parsed::Addr(_))));
    }

    #[test]
    fn link_scoped_addresses_need_their_interface() {
        let at = |ip: &str, scope: u32| {
            let mut raw = encode(Family::V6, Endpoint { ip: Ip::V6(ip.parse().unwrap()), port: 9 });
            raw[24..28].copy_from_slice(&scope.to_ne_bytes());
            raw
        };
        for how in [Use::Bind, Use::Connect, Use::ConnectDgram] {
            assert_eq!(parse(Family::V6, &at("fe80::1", 0), how), Err(errno!(EINVAL)), "{how:?} link-local");
            assert_eq!(parse(Family::V6, &at("fe80::1", 0)[..24], how), Err(errno!(EINVAL)), "{how:?} no scope field");
            assert!(parse(Family::V6, &at("fe80::1", 1), how).is_ok(), "{how:?} link-local on an interface");
            assert!(parse(Family::V6, &at("ff05::1", 0), how).is_ok(), "{how:?} site-local multicast");
            assert!(parse(Family::V6, &at("::1", 0), how).is_ok(), "{how:?} loopback");
        }
        assert_eq!(parse(Family::V6, &at("ff02::1", 0), Use::Bind), Err(errno!(EINVAL)));
        assert_eq!(parse(Family::V6, &at("ff01::1", 0), Use::ConnectDgram), Err(errno!(EINVAL)));
        assert!(parse(Family::V6, &at("ff02::1", 0), Use::Connect).is_ok(), "TCP: multicast is unreachable first");
        assert!(parse(Family::V6, &at("fe80::1", 0), Use::SendTo).is_ok(), "sendto takes no interface from here");
    }
}
