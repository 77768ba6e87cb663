//! A Linux bridge of the test's own, for an engine's containers: a name and
//! a /24 of 198.18.0.0/15 no host link or route uses, removed when dropped.
#![allow(dead_code)]

use std::fs;
use std::process::Command;

use crate::host_state::HostNetwork;

/// A bridge (dockerd's default one, a CNI network's) made by the test with an
/// address of a /24 in 198.18.0.0/15 that no host route covers, and deleted
/// when dropped.
pub struct Bridge {
    pub name: String,
    /// Its address, the containers' gateway (198.18.N.1).
    pub gateway: String,
    /// Its network, 198.18.N.0/24.
    pub subnet: String,
}

impl Bridge {
    pub fn create() -> Bridge {
        let seed = std::process::id();
        let taken = HostNetwork::now();
        let free = (0..256u32).map(|n| (seed.wrapping_add(n) & 0xffff, (seed.wrapping_add(n) & 0xff) as u8)).find(
            |(tag, subnet)| {
                let name = format!("moatbr{tag:04x}");
                !taken.links.iter().any(|l| l.split_whitespace().nth(1) == Some(name.as_str()))
                    && !taken
                        .routes
                        .iter()
                        .any(|r| r.contains(&format!(" 198.18.{subnet}.")) || r.contains(" 198.18.0.0/15"))
            },
        );
        let (tag, subnet) = free.expect("fixture: no free bridge name and 198.18.N.0/24 subnet for the engine");
        let bridge = Bridge {
            name: format!("moatbr{tag:04x}"),
            gateway: format!("198.18.{subnet}.1"),
            subnet: format!("198.18.{subnet}.0/24"),
        };
        // A MAC of its own (locally administered): else the bridge takes
        // its lowest port's, and changes with the veths an engine plugs in.
        let mac = format!("02:6d:6f:61:{:02x}:{:02x}", tag >> 8, tag & 0xff);
        ip(&["link", "add", &bridge.name, "address", &mac, "type", "bridge"]);
        // Without IPv6 the bridge gets no link-local address of its own when
        // a port comes up, so it looks the same before and after.
        let _ = fs::write(format!("/proc/sys/net/ipv6/conf/{}/disable_ipv6", bridge.name), "1");
        ip(&["addr", "add", &format!("198.18.{subnet}.1/24"), "dev", &bridge.name]);
        bridge
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.name]).status();
    }
}

/// Runs `ip ARGS`, panicking (a fixture failure) if it fails.
pub fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("fixture: run ip");
    assert!(out.status.success(), "fixture: ip {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
}
