//! The `sandbox` network mode, runtime side: the container's network
//! namespace is read and its links handed to the Sentry's stack (`NetConfig`).
//!
//! As runsc's `createInterfacesAndRoutesFromNS`: in the namespace, before the
//! Sentry's seccomp filter, each ethernet link that is up (not `lo`) is read
//! over rtnetlink (name, MAC, MTU, addresses), with the main table's routes; a
//! packet socket is bound to it; then its addresses are deleted, which takes
//! their routes with them, so that the host kernel no longer answers for them
//! and the Sentry's stack is the only one on the link. Done at `start`, once
//! the engine's hooks (Docker's, a CNI plugin's) have set the namespace up.
//!
//! `Links` is the same rtnetlink socket put to `moat do --network sandbox`'s
//! use: making its veth pair and giving each end its address and route.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::sys::socket::{self, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType};
use sentry::net::{NetConfig, NetInterface, NetRoute};

/// Why the network namespace could not be handed to the Sentry.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// The rtnetlink socket could not be opened or used.
    #[error("cannot read the container's network namespace over rtnetlink ({step}): {source}")]
    Netlink {
        /// What was being done.
        step: &'static str,
        /// What the kernel said.
        source: nix::errno::Errno,
    },
    /// The kernel's answer did not parse.
    #[error("cannot read the container's network namespace: malformed rtnetlink answer to {step}")]
    Malformed {
        /// The request answered.
        step: &'static str,
    },
    /// The namespace holds more than the sandbox takes.
    #[error("the container's network namespace has more than {max} {what}; the sandbox takes at most that many")]
    TooMany {
        /// Links, addresses or routes.
        what: &'static str,
        /// The most taken.
        max: usize,
    },
    /// The packet socket for a link could not be opened.
    #[error("cannot open a packet socket on network interface {name}: {source}")]
    PacketSocket {
        /// The link.
        name: String,
        /// What socket or bind returned.
        source: std::io::Error,
    },
    /// An address could not be taken from the host kernel.
    #[error("cannot remove address {addr}/{prefix} from network interface {name} (the sandbox's stack takes it over): {source}")]
    RemoveAddress {
        /// The link.
        name: String,
        /// The address.
        addr: IpAddr,
        /// Its prefix length.
        prefix: u8,
        /// What the kernel said.
        source: nix::errno::Errno,
    },
    /// A link, address or route of `moat do`'s own network could not be made.
    #[error("cannot set up the sandbox's network: {step}: {source}")]
    Setup {
        /// What was being made.
        step: String,
        /// What the kernel said.
        source: nix::errno::Errno,
    },
}

const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const RTM_GETADDR: u16 = 22;
const RTM_NEWROUTE: u16 = 24;
const RTM_GETROUTE: u16 = 26;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
const ARPHRD_ETHER: u16 = 1;
const IFF_UP: u32 = 0x1;
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const NLA_F_NESTED: u16 = 0x8000;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_TABLE: u16 = 15;
const RT_TABLE_MAIN: u32 = 254;
const RTN_UNICAST: u8 = 1;
const RTPROT_BOOT: u8 = 3;
const RT_SCOPE_UNIVERSE: u8 = 0;

/// The most links, addresses per link and routes taken (the Sentry's stack
/// keeps at most 8 addresses per interface and 16 routes through gateways).
const MAX_LINKS: usize = 16;
const MAX_ADDRS: usize = 8;
const MAX_ROUTES: usize = 64;
/// The most bytes of one dump read: far beyond any container's namespace.
const MAX_DUMP: usize = 4 << 20;

/// Reads the namespace this process is in, opens a packet socket on each of
/// its links and takes their addresses from the host kernel. A namespace with
/// only `lo` gives an empty configuration (loopback only). `egress` is what
/// the stack enforces on traffic leaving by those links.
pub(crate) fn take_over(egress: sentry::net::EgressConfig) -> Result<NetConfig, NetworkError> {
    let nl = Netlink::open()?;
    let mut links = Vec::new();
    for m in nl.dump(RTM_GETLINK, &[0; 16], "RTM_GETLINK")? {
        if m.body.len() < 16 {
            return Err(NetworkError::Malformed { step: "RTM_GETLINK" });
        }
        let kind = u16::from_ne_bytes([m.body[2], m.body[3]]);
        let index = i32::from_ne_bytes(m.body[4..8].try_into().expect("four bytes"));
        let flags = u32::from_ne_bytes(m.body[8..12].try_into().expect("four bytes"));
        // Only ethernet links that are up: `lo` is the Sentry's own, and
        // tunnels' fallback devices (sit0, tunl0) carry nothing.
        if kind != ARPHRD_ETHER || flags & IFF_UP == 0 || index <= 0 {
            continue;
        }
        let (mut name, mut mac, mut mtu) = (None, None, 1500);
        for (ty, val) in attrs(&m.body[16..]).ok_or(NetworkError::Malformed { step: "RTM_GETLINK" })? {
            match ty {
                IFLA_IFNAME => {
                    name = Some(String::from_utf8_lossy(val.split(|&b| b == 0).next().unwrap_or(val)).into_owned())
                }
                IFLA_ADDRESS => mac = <[u8; 6]>::try_from(val).ok(),
                IFLA_MTU if val.len() == 4 => mtu = u32::from_ne_bytes(val.try_into().expect("four bytes")),
                _ => {}
            }
        }
        let (Some(name), Some(mac)) = (name, mac) else { continue };
        if links.len() == MAX_LINKS {
            return Err(NetworkError::TooMany { what: "links", max: MAX_LINKS });
        }
        links.push((index as u32, name, mac, mtu, Vec::<(IpAddr, u8)>::new()));
    }
    for m in nl.dump(RTM_GETADDR, &[0; 8], "RTM_GETADDR")? {
        if m.body.len() < 8 {
            return Err(NetworkError::Malformed { step: "RTM_GETADDR" });
        }
        let (family, prefix) = (m.body[0], m.body[1]);
        let index = u32::from_ne_bytes(m.body[4..8].try_into().expect("four bytes"));
        let Some(link) = links.iter_mut().find(|l| l.0 == index) else { continue };
        let (mut local, mut address) = (None, None);
        for (ty, val) in attrs(&m.body[8..]).ok_or(NetworkError::Malformed { step: "RTM_GETADDR" })? {
            match ty {
                IFA_LOCAL => local = ip(family, val),
                IFA_ADDRESS => address = ip(family, val),
                _ => {}
            }
        }
        // IFA_LOCAL is the interface's own address (IFA_ADDRESS the peer's, on
        // a point-to-point link); IPv6 has IFA_ADDRESS alone.
        let Some(addr) = local.or(address) else { continue };
        if link.4.len() == MAX_ADDRS {
            return Err(NetworkError::TooMany { what: "addresses on a link", max: MAX_ADDRS });
        }
        link.4.push((addr, prefix));
    }
    let mut routes = Vec::new();
    for m in nl.dump(RTM_GETROUTE, &[0; 12], "RTM_GETROUTE")? {
        if m.body.len() < 12 {
            return Err(NetworkError::Malformed { step: "RTM_GETROUTE" });
        }
        let (family, prefix, table, kind) = (m.body[0], m.body[1], u32::from(m.body[4]), m.body[7]);
        let (mut dst, mut gateway, mut oif, mut table) = (None, None, None, table);
        for (ty, val) in attrs(&m.body[12..]).ok_or(NetworkError::Malformed { step: "RTM_GETROUTE" })? {
            match ty {
                RTA_DST => dst = ip(family, val),
                RTA_GATEWAY => gateway = ip(family, val),
                RTA_OIF if val.len() == 4 => oif = Some(u32::from_ne_bytes(val.try_into().expect("four bytes"))),
                RTA_TABLE if val.len() == 4 => table = u32::from_ne_bytes(val.try_into().expect("four bytes")),
                _ => {}
            }
        }
        if table != RT_TABLE_MAIN || kind != RTN_UNICAST {
            continue;
        }
        let Some(link) = oif.and_then(|i| links.iter().find(|l| l.0 == i)) else { continue };
        let dst = match (dst, family) {
            (Some(d), _) => d,
            (None, AF_INET) => IpAddr::from([0u8; 4]),
            (None, AF_INET6) => IpAddr::from([0u8; 16]),
            _ => continue,
        };
        if routes.len() == MAX_ROUTES {
            return Err(NetworkError::TooMany { what: "routes", max: MAX_ROUTES });
        }
        routes.push(NetRoute { dst, prefix, gateway, interface: link.1.clone() });
    }
    let mut interfaces = Vec::new();
    for (index, name, mac, mtu, addrs) in links {
        let packet_fd: OwnedFd = host::packet::open_bound(index)
            .map_err(|source| NetworkError::PacketSocket { name: name.clone(), source })?;
        for &(addr, prefix) in &addrs {
            match nl.delete_address(index, addr, prefix) {
                // Deleting a primary IPv4 address deletes its secondaries too.
                Ok(()) | Err(nix::errno::Errno::EADDRNOTAVAIL) => {}
                Err(source) => return Err(NetworkError::RemoveAddress { name, addr, prefix, source }),
            }
        }
        interfaces.push(NetInterface { name, mac, mtu, addrs, packet_fd });
    }
    Ok(NetConfig { interfaces, routes, egress })
}

/// Whether the container is a Kubernetes pod's sandbox ("pause") container,
/// by the annotation its CRI runtime gives it (containerd's or CRI-O's). It
/// never uses the network, and must leave the pod's namespace to the pod's
/// app containers: each is a sandbox of its own, and the first to start
/// takes the addresses, which the host kernel must still hold then.
pub(super) fn is_pod_sandbox(spec: &oci_spec::runtime::Spec) -> bool {
    let annotations = spec.annotations().as_ref();
    let is = |key: &str| annotations.and_then(|a| a.get(key)).is_some_and(|kind| kind == "sandbox");
    is("io.kubernetes.cri.container-type") || is("io.kubernetes.cri-o.ContainerType")
}

/// An rtnetlink socket of the calling thread's network namespace, for the
/// links `moat do --network sandbox` makes: each change is acked, and a
/// refusal is an error naming what was being made.
#[derive(Debug)]
pub(crate) struct Links {
    nl: Netlink,
}

impl Links {
    pub(crate) fn open() -> Result<Links, NetworkError> {
        Ok(Links { nl: Netlink::open()? })
    }

    /// A veth pair: `name` here, its peer `peer` made straight in the
    /// network namespace `peer_netns` (so the pair lives and dies with it).
    pub(crate) fn add_veth(&self, name: &str, peer: &str, peer_netns: BorrowedFd<'_>) -> Result<(), NetworkError> {
        let mut body = ifinfomsg(0, 0, 0);
        put_str(&mut body, IFLA_IFNAME, name);
        nest(&mut body, IFLA_LINKINFO, |b| {
            put(b, IFLA_INFO_KIND, b"veth");
            nest(b, IFLA_INFO_DATA, |b| {
                nest(b, VETH_INFO_PEER, |b| {
                    b.extend_from_slice(&ifinfomsg(0, 0, 0));
                    put_str(b, IFLA_IFNAME, peer);
                    put(b, IFLA_NET_NS_FD, &peer_netns.as_raw_fd().to_ne_bytes());
                })
            })
        });
        self.change(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &body, || format!("making the veth pair {name}"))
    }

    /// The index of link `name`, if there is one.
    pub(crate) fn index(&self, name: &str) -> Result<Option<u32>, NetworkError> {
        let mut body = ifinfomsg(0, 0, 0);
        put_str(&mut body, IFLA_IFNAME, name);
        self.nl.send(RTM_GETLINK, NLM_F_ACK, &body, "RTM_GETLINK")?;
        match self.nl.answer("RTM_GETLINK") {
            Ok(answer) => {
                let link = answer.iter().find(|m| m.ty == RTM_NEWLINK && m.body.len() >= 16);
                Ok(link.map(|m| u32::from_ne_bytes(m.body[4..8].try_into().expect("four bytes"))))
            }
            Err(NetworkError::Netlink { source: nix::errno::Errno::ENODEV, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sets link `index` up.
    pub(crate) fn set_up(&self, index: u32, name: &str) -> Result<(), NetworkError> {
        let body = ifinfomsg(index, IFF_UP, IFF_UP);
        self.change(RTM_NEWLINK, 0, &body, || format!("setting {name} up"))
    }

    /// Deletes link `index` (a veth's peer goes with it).
    pub(crate) fn delete(&self, index: u32, name: &str) -> Result<(), NetworkError> {
        self.change(RTM_DELLINK, 0, &ifinfomsg(index, 0, 0), || format!("deleting {name}"))
    }

    /// Gives link `index` the address `addr/prefix`.
    pub(crate) fn add_address(&self, index: u32, name: &str, addr: Ipv4Addr, prefix: u8) -> Result<(), NetworkError> {
        let mut body = vec![AF_INET, prefix, 0, 0];
        body.extend_from_slice(&index.to_ne_bytes());
        put(&mut body, IFA_LOCAL, &addr.octets());
        put(&mut body, IFA_ADDRESS, &addr.octets());
        self.change(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &body, || format!("adding {addr}/{prefix} to {name}"))
    }

    /// A default route through `gateway` on link `index`.
    pub(crate) fn add_default_route(&self, index: u32, gateway: Ipv4Addr) -> Result<(), NetworkError> {
        let mut body = vec![AF_INET, 0, 0, 0, RT_TABLE_MAIN as u8, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST];
        body.extend_from_slice(&0u32.to_ne_bytes());
        put(&mut body, RTA_GATEWAY, &gateway.octets());
        put(&mut body, RTA_OIF, &index.to_ne_bytes());
        self.change(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, &body, || format!("adding a default route via {gateway}"))
    }

    /// Every IPv4 address of the namespace: its link's index, the address
    /// and its prefix length.
    pub(crate) fn ipv4_addresses(&self) -> Result<Vec<(u32, Ipv4Addr, u8)>, NetworkError> {
        let mut out = Vec::new();
        for m in self.nl.dump(RTM_GETADDR, &[AF_INET, 0, 0, 0, 0, 0, 0, 0], "RTM_GETADDR")? {
            if m.body.len() < 8 || m.body[0] != AF_INET {
                continue;
            }
            let index = u32::from_ne_bytes(m.body[4..8].try_into().expect("four bytes"));
            let attributes = attrs(&m.body[8..]).ok_or(NetworkError::Malformed { step: "RTM_GETADDR" })?;
            let local = attributes
                .iter()
                .find(|(ty, _)| *ty == IFA_LOCAL)
                .or(attributes.iter().find(|(ty, _)| *ty == IFA_ADDRESS));
            if let Some(addr) = local.and_then(|(_, v)| <[u8; 4]>::try_from(*v).ok()) {
                out.push((index, Ipv4Addr::from(addr), m.body[1]));
            }
        }
        Ok(out)
    }

    fn change(&self, ty: u16, flags: u16, body: &[u8], what: impl Fn() -> String) -> Result<(), NetworkError> {
        let failed = |e: NetworkError| match e {
            NetworkError::Netlink { source, .. } => NetworkError::Setup { step: what(), source },
            e => e,
        };
        self.nl.send(ty, flags | NLM_F_ACK, body, "change").map_err(failed)?;
        self.nl.answer("change").map(drop).map_err(failed)
    }
}

/// An `ifinfomsg` for link `index` (0: none yet) with `flags` of `change` set.
fn ifinfomsg(index: u32, flags: u32, change: u32) -> Vec<u8> {
    let mut m = vec![0u8; 4];
    m.extend_from_slice(&index.to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&change.to_ne_bytes());
    m
}

/// Appends the netlink attribute `ty` holding `val`, padded to four bytes
/// (rtnetlink's here, nfnetlink's in `moat do`'s NAT table).
pub(crate) fn put(b: &mut Vec<u8>, ty: u16, val: &[u8]) {
    b.extend_from_slice(&((4 + val.len()) as u16).to_ne_bytes());
    b.extend_from_slice(&ty.to_ne_bytes());
    b.extend_from_slice(val);
    b.resize((b.len() + 3) & !3, 0);
}

/// Appends a string attribute, NUL-terminated as the kernel wants it.
pub(crate) fn put_str(b: &mut Vec<u8>, ty: u16, s: &str) {
    let mut val = s.as_bytes().to_vec();
    val.push(0);
    put(b, ty, &val);
}

/// Appends the nested attribute `ty` whose contents `inner` writes.
pub(crate) fn nest(b: &mut Vec<u8>, ty: u16, inner: impl FnOnce(&mut Vec<u8>)) {
    let start = b.len();
    b.extend_from_slice(&[0; 4]);
    inner(b);
    let len = (b.len() - start) as u16;
    b[start..start + 2].copy_from_slice(&len.to_ne_bytes());
    b[start + 2..start + 4].copy_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
}

/// An address attribute of `family`.
fn ip(family: u8, val: &[u8]) -> Option<IpAddr> {
    match family {
        AF_INET => <[u8; 4]>::try_from(val).ok().map(IpAddr::from),
        AF_INET6 => <[u8; 16]>::try_from(val).ok().map(IpAddr::from),
        _ => None,
    }
}

/// One message of an answer.
struct Message {
    ty: u16,
    body: Vec<u8>,
}

/// The attributes of a message body, each within it; None if one is not.
fn attrs(mut b: &[u8]) -> Option<Vec<(u16, &[u8])>> {
    let mut v = Vec::new();
    while b.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([b[0], b[1]]));
        let ty = u16::from_ne_bytes([b[2], b[3]]) & 0x3fff;
        if len < 4 || len > b.len() {
            return None;
        }
        v.push((ty, &b[4..len]));
        b = &b[((len + 3) & !3).min(b.len())..];
    }
    Some(v)
}

/// A NETLINK_ROUTE socket.
#[derive(Debug)]
struct Netlink {
    fd: OwnedFd,
}

impl Netlink {
    fn open() -> Result<Netlink, NetworkError> {
        let fd =
            socket::socket(AddressFamily::Netlink, SockType::Raw, SockFlag::SOCK_CLOEXEC, SockProtocol::NetlinkRoute)
                .map_err(|source| NetworkError::Netlink { step: "socket", source })?;
        socket::bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &NetlinkAddr::new(0, 0))
            .map_err(|source| NetworkError::Netlink { step: "bind", source })?;
        Ok(Netlink { fd })
    }

    fn send(&self, ty: u16, flags: u16, body: &[u8], step: &'static str) -> Result<(), NetworkError> {
        let len = NLMSG_HDRLEN + body.len();
        let mut m = Vec::with_capacity(len);
        m.extend_from_slice(&(len as u32).to_ne_bytes());
        m.extend_from_slice(&ty.to_ne_bytes());
        m.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        m.extend_from_slice(&1u32.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(body);
        let fd = std::os::fd::AsRawFd::as_raw_fd(&self.fd.as_fd());
        socket::send(fd, &m, MsgFlags::empty()).map_err(|source| NetworkError::Netlink { step, source })?;
        Ok(())
    }

    /// The messages answering one request, up to NLMSG_DONE (a dump) or the
    /// first NLMSG_ERROR (an ack); an error in either fails.
    fn answer(&self, step: &'static str) -> Result<Vec<Message>, NetworkError> {
        let fd = std::os::fd::AsRawFd::as_raw_fd(&self.fd.as_fd());
        let mut buf = vec![0u8; 64 * 1024];
        let (mut out, mut total) = (Vec::new(), 0);
        loop {
            let n = socket::recv(fd, &mut buf, MsgFlags::empty())
                .map_err(|source| NetworkError::Netlink { step, source })?;
            total += n;
            if total > MAX_DUMP {
                return Err(NetworkError::TooMany { what: "bytes of rtnetlink answers", max: MAX_DUMP });
            }
            let mut b = &buf[..n];
            while b.len() >= NLMSG_HDRLEN {
                let len = u32::from_ne_bytes(b[..4].try_into().expect("four bytes")) as usize;
                let ty = u16::from_ne_bytes([b[4], b[5]]);
                if len < NLMSG_HDRLEN || len > b.len() {
                    return Err(NetworkError::Malformed { step });
                }
                let body = &b[NLMSG_HDRLEN..len];
                match ty {
                    NLMSG_DONE => return Ok(out),
                    NLMSG_ERROR => {
                        let code = body.get(..4).map_or(0, |c| i32::from_ne_bytes(c.try_into().expect("four bytes")));
                        if code < 0 {
                            return Err(NetworkError::Netlink { step, source: nix::errno::Errno::from_raw(-code) });
                        }
                        return Ok(out);
                    }
                    _ => out.push(Message { ty, body: body.to_vec() }),
                }
                b = &b[((len + 3) & !3).min(b.len())..];
            }
        }
    }

    fn dump(&self, ty: u16, header: &[u8], step: &'static str) -> Result<Vec<Message>, NetworkError> {
        self.send(ty, NLM_F_DUMP, header, step)?;
        let all = self.answer(step)?;
        // Only the answers' own type (RTM_NEW*: the request's type less 2).
        Ok(all.into_iter().filter(|m| m.ty == ty - 2).collect())
    }

    /// RTM_DELADDR of `addr/prefix` on link `index`, acked.
    fn delete_address(&self, index: u32, addr: IpAddr, prefix: u8) -> Result<(), nix::errno::Errno> {
        let (family, bytes) = match addr {
            IpAddr::V4(a) => (AF_INET, a.octets().to_vec()),
            IpAddr::V6(a) => (AF_INET6, a.octets().to_vec()),
        };
        let mut body = vec![family, prefix, 0, 0];
        body.extend_from_slice(&index.to_ne_bytes());
        let mut put = |ty: u16| {
            body.extend_from_slice(&((4 + bytes.len()) as u16).to_ne_bytes());
            body.extend_from_slice(&ty.to_ne_bytes());
            body.extend_from_slice(&bytes);
        };
        if family == AF_INET {
            put(IFA_LOCAL);
        }
        put(IFA_ADDRESS);
        let fail = |e: NetworkError| match e {
            NetworkError::Netlink { source, .. } => source,
            _ => nix::errno::Errno::EPROTO,
        };
        self.send(RTM_DELADDR, NLM_F_ACK, &body, "RTM_DELADDR").map_err(fail)?;
        self.answer("RTM_DELADDR").map_err(fail).map(drop)
    }
}
