//! The host's network state, as far as a container engine could change it:
//! links, addresses, routes, firewall rules and forwarding settings, each as
//! lines that say what a thing is (not its counters), for before and after.
#![allow(dead_code)]

use std::fs;
use std::process::Command;

/// `ip -j ARGS` as JSON objects.
pub fn ip_json(args: &[&str]) -> Vec<serde_json::Value> {
    let out = Command::new("ip").arg("-j").args(args).output().expect("run ip -j");
    serde_json::from_slice(&out.stdout).unwrap_or_default()
}

/// The host's links, addresses and routes, each one line of the fields that
/// say what it is (not counters or carrier state).
#[derive(Debug, PartialEq, Eq)]
pub struct HostNetwork {
    /// `IFINDEX NAME MAC master BRIDGE`.
    pub links: std::collections::BTreeSet<String>,
    /// `NAME FAMILY ADDRESS/PREFIX`.
    pub addresses: std::collections::BTreeSet<String>,
    /// `FAMILY table TABLE TYPE DST via GATEWAY dev NAME`.
    pub routes: std::collections::BTreeSet<String>,
}

impl HostNetwork {
    pub fn now() -> HostNetwork {
        let text = |v: &serde_json::Value, key: &str| v[key].as_str().unwrap_or("-").to_owned();
        let links = ip_json(&["link", "show"])
            .iter()
            .map(|l| {
                format!("{} {} {} master {}", l["ifindex"], text(l, "ifname"), text(l, "address"), text(l, "master"))
            })
            .collect();
        let mut addresses = std::collections::BTreeSet::new();
        for link in ip_json(&["addr", "show"]) {
            for a in link["addr_info"].as_array().into_iter().flatten() {
                addresses.insert(format!(
                    "{} {} {}/{}",
                    text(&link, "ifname"),
                    text(a, "family"),
                    text(a, "local"),
                    a["prefixlen"]
                ));
            }
        }
        let mut routes = std::collections::BTreeSet::new();
        for family in ["-4", "-6"] {
            for r in ip_json(&[family, "route", "show", "table", "all"]) {
                routes.insert(format!(
                    "{family} table {} {} {} via {} dev {}",
                    text(&r, "table"),
                    text(&r, "type"),
                    text(&r, "dst"),
                    text(&r, "gateway"),
                    text(&r, "dev")
                ));
            }
        }
        HostNetwork { links, addresses, routes }
    }

    /// Without the links whose master is `bridge` (veth ends Docker plugs
    /// into it), nor their addresses and routes.
    pub fn without_ports_of(mut self, bridge: &str) -> HostNetwork {
        let ports: Vec<String> = self
            .links
            .iter()
            .filter(|l| l.ends_with(&format!(" master {bridge}")))
            .filter_map(|l| l.split_whitespace().nth(1).map(str::to_owned))
            .collect();
        self.links.retain(|l| !ports.iter().any(|p| l.split_whitespace().nth(1) == Some(p)));
        self.addresses.retain(|a| !ports.iter().any(|p| a.split_whitespace().next() == Some(p)));
        self.routes.retain(|r| !ports.iter().any(|p| r.ends_with(&format!(" dev {p}"))));
        self
    }

    /// The lines only in `self` (`-`) and only in `other` (`+`).
    pub fn difference(&self, other: &HostNetwork) -> String {
        let mut text = String::new();
        for (what, a, b) in [
            ("link", &self.links, &other.links),
            ("address", &self.addresses, &other.addresses),
            ("route", &self.routes, &other.routes),
        ] {
            for gone in a.difference(b) {
                text.push_str(&format!("- {what} {gone}\n"));
            }
            for new in b.difference(a) {
                text.push_str(&format!("+ {what} {new}\n"));
            }
        }
        text
    }
}

/// The host's network and what else a dockerd could change in it: firewall
/// rules and forwarding settings.
#[derive(Debug, PartialEq, Eq)]
pub struct HostState {
    pub network: HostNetwork,
    /// `iptables-save`, `ip6tables-save` and `nft list ruleset`, without
    /// comments and counters.
    pub firewall: Vec<String>,
    /// Forwarding and bridge netfilter sysctls.
    pub sysctls: Vec<String>,
}

impl HostState {
    pub fn now() -> HostState {
        let mut firewall = Vec::new();
        for command in [&["iptables-save"][..], &["ip6tables-save"], &["nft", "list", "ruleset"]] {
            let Ok(out) = Command::new(command[0]).args(&command[1..]).output() else { continue };
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            for line in text.lines().filter(|l| !l.starts_with('#')) {
                // ":INPUT ACCEPT [12:3456]": the counters change with traffic.
                let line = match line.rfind(" [") {
                    Some(i) if line.starts_with(':') => &line[..i],
                    _ => line,
                };
                firewall.push(format!("{}: {line}", command[0]));
            }
        }
        let sysctls = [
            "net/ipv4/ip_forward",
            "net/ipv6/conf/all/forwarding",
            "net/bridge/bridge-nf-call-iptables",
            "net/bridge/bridge-nf-call-ip6tables",
            "net/bridge/bridge-nf-call-arptables",
        ]
        .iter()
        .map(|k| format!("{k} = {}", fs::read_to_string(format!("/proc/sys/{k}")).unwrap_or_default().trim()))
        .collect();
        HostState { network: HostNetwork::now(), firewall, sysctls }
    }

    pub fn difference(&self, other: &HostState) -> String {
        let mut text = self.network.difference(&other.network);
        for (what, a, b) in [("firewall", &self.firewall, &other.firewall), ("sysctl", &self.sysctls, &other.sysctls)] {
            for gone in a.iter().filter(|l| !b.contains(l)) {
                text.push_str(&format!("- {what} {gone}\n"));
            }
            for new in b.iter().filter(|l| !a.contains(l)) {
                text.push_str(&format!("+ {what} {new}\n"));
            }
        }
        text
    }
}

/// Whether the host kernel holds IPv4 `address` on eth0 in the network
/// namespace of host process `pid`: under moat it must not (the Sentry
/// holds it), under runc it must.
pub fn namespace_holds(pid: &str, address: &str) -> Result<bool, String> {
    let netns = format!("--net=/proc/{pid}/ns/net");
    let out = Command::new("nsenter")
        .args([netns.as_str(), "ip", "-o", "-4", "addr", "show", "dev", "eth0"])
        .output()
        .map_err(|e| format!("cannot run nsenter: {e}"))?;
    if !out.status.success() {
        return Err(format!("nsenter {netns} ip addr failed: {}", String::from_utf8_lossy(&out.stderr).trim_end()));
    }
    Ok(!address.is_empty() && String::from_utf8_lossy(&out.stdout).contains(&format!(" {address}/")))
}
