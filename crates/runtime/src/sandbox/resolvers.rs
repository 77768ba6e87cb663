//! Resolvers on the container's own loopback, runtime side: a socket to each,
//! made in the container's network namespace for the sandbox's DNS.
//!
//! Docker's embedded DNS (127.0.0.11 on user-defined networks) answers on a
//! port of its own in the container's namespace, behind NAT rules the engine
//! put there; the Sentry's stack, with its own loopback, never passes through
//! them. So, before the Sentry's seccomp filter, a UDP socket is connected to
//! each such nameserver's port 53 here, where the host kernel applies those
//! rules, and handed over (`EgressConfig::netns_resolvers`): the sandbox's DNS
//! forwards the app's questions through it and pins the answers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, UdpSocket};
use std::os::fd::OwnedFd;

/// A connected UDP socket to port 53 of each loopback address among
/// `nameservers`. One that cannot be made is left out with a warning on
/// stderr (the app's questions to it then go unanswered, as on a host whose
/// resolver is down).
pub(super) fn connect_loopback_resolvers(nameservers: &[IpAddr]) -> Vec<(IpAddr, OwnedFd)> {
    let mut out = Vec::new();
    for &ns in nameservers.iter().filter(|a| a.is_loopback()) {
        if out.iter().any(|(a, _)| *a == ns) {
            continue;
        }
        let local: IpAddr = if ns.is_ipv4() { Ipv4Addr::LOCALHOST.into() } else { Ipv6Addr::LOCALHOST.into() };
        let socket = UdpSocket::bind((local, 0)).and_then(|s| s.connect((ns, 53)).map(|()| s));
        match socket {
            Ok(s) => out.push((ns, OwnedFd::from(s))),
            Err(e) => eprintln!("moat: cannot reach the container's resolver {ns} (its DNS will not answer): {e}"),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_nameservers_get_a_socket_once() {
        let ns: Vec<IpAddr> =
            ["127.0.0.11", "192.0.2.53", "127.0.0.11", "127.0.0.53"].iter().map(|a| a.parse().unwrap()).collect();
        let got: Vec<IpAddr> = connect_loopback_resolvers(&ns).into_iter().map(|(a, _)| a).collect();
        assert_eq!(got, [ns[0], ns[3]]);
    }
}
