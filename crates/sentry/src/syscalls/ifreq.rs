//! The interface ioctls Linux answers on any socket (`SIOCGIF*`, `struct
//! ifreq`): glibc's if_nametoindex and if_indextoname, `ifconfig`-style
//! tools and `ip -6 addr` (the queue length) ask them, of the sandbox's own
//! interfaces as the Sentry's stack lists them.

use std::net::IpAddr;

use crate::kernel::CurrentTask;
use crate::net::IfaceInfo;
use crate::SysResult;

pub const SIOCGIFNAME: u64 = 0x8910;
pub const SIOCGIFCONF: u64 = 0x8912;
pub const SIOCGIFFLAGS: u64 = 0x8913;
pub const SIOCGIFADDR: u64 = 0x8915;
pub const SIOCGIFNETMASK: u64 = 0x891b;
pub const SIOCGIFMTU: u64 = 0x8921;
pub const SIOCGIFHWADDR: u64 = 0x8927;
pub const SIOCGIFINDEX: u64 = 0x8933;
pub const SIOCGIFTXQLEN: u64 = 0x8942;

/// `struct ifreq`: a name and a 24-byte union.
const IFREQ: usize = 40;
const IFNAMSIZ: usize = 16;
const AF_INET: u16 = 2;
const ARPHRD_ETHER: u16 = 1;
const ARPHRD_LOOPBACK: u16 = 772;
const IFF_UP: u16 = 0x1;
const IFF_BROADCAST: u16 = 0x2;
const IFF_LOOPBACK: u16 = 0x8;
const IFF_RUNNING: u16 = 0x40;
const IFF_MULTICAST: u16 = 0x1000;
/// The queue length Linux gives a new interface.
const TXQLEN: u32 = 1000;

/// Whether `req` is one of the interface ioctls answered here.
pub fn is_ifreq(req: u64) -> bool {
    [
        SIOCGIFNAME,
        SIOCGIFCONF,
        SIOCGIFFLAGS,
        SIOCGIFADDR,
        SIOCGIFNETMASK,
        SIOCGIFMTU,
        SIOCGIFHWADDR,
        SIOCGIFINDEX,
        SIOCGIFTXQLEN,
    ]
    .contains(&req)
}

/// Answers interface ioctl `req` on a socket, with `arg` the app's `struct
/// ifreq` (or `struct ifconf` for SIOCGIFCONF). Addresses are IPv4's own
/// calls: only an AF_INET socket (`inet4`) answers them, as on Linux.
pub fn ioctl(t: &mut CurrentTask, req: u64, arg: u64, inet4: bool) -> SysResult<u64> {
    if matches!(req, SIOCGIFADDR | SIOCGIFNETMASK) && !inet4 {
        return Err(errno!(ENOTTY));
    }
    let ifaces =
        crate::net::stack_of(std::sync::Arc::as_ptr(&t.k) as usize).map(|s| s.interfaces()).unwrap_or_default();
    if req == SIOCGIFCONF {
        return ifconf(t, &ifaces, arg);
    }
    let mut ifr = [0u8; IFREQ];
    t.read_mem(arg, &mut ifr)?;
    let iface = if req == SIOCGIFNAME {
        let index = u32::from_ne_bytes(ifr[16..20].try_into().unwrap_or_default());
        ifaces.iter().find(|i| i.index == index)
    } else {
        let end = ifr[..IFNAMSIZ].iter().position(|&b| b == 0).unwrap_or(IFNAMSIZ);
        ifaces.iter().find(|i| i.name.as_bytes() == &ifr[..end])
    };
    let iface = iface.ok_or(errno!(ENODEV))?;
    let loopback = iface.name == "lo";
    let union = &mut ifr[16..];
    match req {
        SIOCGIFNAME => {
            ifr[..IFNAMSIZ].fill(0);
            ifr[..iface.name.len()].copy_from_slice(iface.name.as_bytes());
        }
        SIOCGIFINDEX => union[..4].copy_from_slice(&iface.index.to_ne_bytes()),
        SIOCGIFMTU => union[..4].copy_from_slice(&iface.mtu.to_ne_bytes()),
        SIOCGIFTXQLEN => union[..4].copy_from_slice(&TXQLEN.to_ne_bytes()),
        SIOCGIFFLAGS => {
            let kind = if loopback { IFF_LOOPBACK } else { IFF_BROADCAST | IFF_MULTICAST };
            union[..2].copy_from_slice(&(IFF_UP | IFF_RUNNING | kind).to_ne_bytes());
        }
        SIOCGIFHWADDR => {
            // lo's hardware address is all zeros; a link's is its MAC.
            union.fill(0);
            match iface.mac {
                Some(mac) => {
                    union[..2].copy_from_slice(&ARPHRD_ETHER.to_ne_bytes());
                    union[2..8].copy_from_slice(&mac);
                }
                None => union[..2].copy_from_slice(&ARPHRD_LOOPBACK.to_ne_bytes()),
            }
        }
        SIOCGIFADDR | SIOCGIFNETMASK => {
            let (addr, prefix) = first_v4(iface).ok_or(errno!(EADDRNOTAVAIL))?;
            let value = if req == SIOCGIFADDR { addr } else { netmask(prefix) };
            union.fill(0);
            union[..2].copy_from_slice(&AF_INET.to_ne_bytes());
            union[4..8].copy_from_slice(&value);
        }
        _ => return Err(errno!(EINVAL)),
    }
    t.write_mem(arg, &ifr)?;
    Ok(0)
}

fn first_v4(iface: &IfaceInfo) -> Option<([u8; 4], u8)> {
    iface.addrs.iter().find_map(|(a, p)| match a {
        IpAddr::V4(v4) => Some((v4.octets(), *p)),
        IpAddr::V6(_) => None,
    })
}

fn netmask(prefix: u8) -> [u8; 4] {
    (u32::MAX.checked_shl(32 - u32::from(prefix.min(32))).unwrap_or(0)).to_be_bytes()
}

/// SIOCGIFCONF: `struct ifconf { int ifc_len; char *ifc_buf; }`. A null
/// buffer asks only for the length needed; otherwise as many `ifreq`s (one
/// per interface with an IPv4 address) as fit, and the length used.
fn ifconf(t: &mut CurrentTask, ifaces: &[IfaceInfo], arg: u64) -> SysResult<u64> {
    let mut conf = [0u8; 16];
    t.read_mem(arg, &mut conf)?;
    let len = i32::from_ne_bytes(conf[..4].try_into().unwrap_or_default());
    let buf = u64::from_ne_bytes(conf[8..16].try_into().unwrap_or_default());
    let entries: Vec<[u8; IFREQ]> = ifaces
        .iter()
        .filter_map(|iface| {
            let (addr, _) = first_v4(iface)?;
            let mut ifr = [0u8; IFREQ];
            ifr[..iface.name.len()].copy_from_slice(iface.name.as_bytes());
            ifr[16..18].copy_from_slice(&AF_INET.to_ne_bytes());
            ifr[20..24].copy_from_slice(&addr);
            Some(ifr)
        })
        .collect();
    let used = if buf == 0 {
        entries.len() * IFREQ
    } else {
        let room = usize::try_from(len.max(0)).unwrap_or(0) / IFREQ;
        let fit = &entries[..entries.len().min(room)];
        for (i, ifr) in fit.iter().enumerate() {
            t.write_mem(buf + (i * IFREQ) as u64, ifr)?;
        }
        fit.len() * IFREQ
    };
    conf[..4].copy_from_slice(&(used as i32).to_ne_bytes());
    t.write_mem(arg, &conf[..4])?;
    Ok(0)
}
