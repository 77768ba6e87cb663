//! Egress policy: which destinations outside the sandbox its sockets may
//! reach. Rules allow networks (CIDRs) or domain names, each optionally for
//! some ports and protocols; what no rule allows gets the default verdict
//! (deny, unless the operator says otherwise). A name rule allows the
//! addresses the sandbox's DNS answers pinned for it, while their TTL lasts.
//!
//! Here only the decision and its inputs: the stack asks before any packet
//! leaves, and the audit event says which rule decided.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// At most this many pinned addresses per sandbox: DNS answers are the
/// app's doing, and each pin costs memory.
pub const MAX_PINS: usize = 4096;

/// Names longer than DNS allows are no names.
const MAX_NAME: usize = 253;

/// Why a rule does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Neither an address, a CIDR nor a domain name.
    #[error("{0:?}: not an address, CIDR or domain name (e.g. 10.0.0.0/8, 192.0.2.7:443, example.com, *.example.com:80,443)")]
    Target(String),
    /// The prefix length is out of range for the address family.
    #[error("{0:?}: the prefix length must be at most 32 for IPv4 and 128 for IPv6")]
    Prefix(String),
    /// A port list entry is not a port or range of ports.
    #[error("{0:?}: ports are numbers 1-65535 or ranges LOW-HIGH, separated by commas")]
    Ports(String),
    /// Not tcp, udp or icmp.
    #[error("{0:?}: the protocols are tcp, udp and icmp")]
    Protocol(String),
}

/// What a rule, or the default, says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Deny,
}

/// The transport a packet uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
    Icmp,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Icmp => "icmp",
        }
    }

    pub fn parse(text: &str) -> Result<Protocol, PolicyError> {
        match text.to_ascii_lowercase().as_str() {
            "tcp" => Ok(Protocol::Tcp),
            "udp" => Ok(Protocol::Udp),
            "icmp" => Ok(Protocol::Icmp),
            _ => Err(PolicyError::Protocol(text.to_owned())),
        }
    }
}

/// Where a rule points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A network: an address and how many leading bits must match.
    Net { addr: IpAddr, prefix: u8 },
    /// `example.com` (only that name) or `*.example.com` (its subdomains,
    /// not itself), lower-case, without a final dot.
    Name { name: String, subdomains: bool },
}

impl Target {
    fn contains(&self, addr: IpAddr) -> bool {
        let Target::Net { addr: net, prefix } = self else { return false };
        match (net, addr) {
            (IpAddr::V4(n), IpAddr::V4(a)) => prefix_matches(&n.octets(), &a.octets(), *prefix),
            (IpAddr::V6(n), IpAddr::V6(a)) => prefix_matches(&n.octets(), &a.octets(), *prefix),
            // An IPv4-mapped IPv6 destination is the IPv4 address it maps.
            (IpAddr::V4(n), IpAddr::V6(a)) => {
                a.to_ipv4_mapped().is_some_and(|a| prefix_matches(&n.octets(), &a.octets(), *prefix))
            }
            (IpAddr::V6(_), IpAddr::V4(_)) => false,
        }
    }

    /// Whether the name rule covers `name` (lower-case, no final dot).
    pub fn covers_name(&self, name: &str) -> bool {
        match self {
            Target::Name { name: rule, subdomains: false } => name == rule,
            Target::Name { name: rule, subdomains: true } => {
                name.len() > rule.len() + 1
                    && name.ends_with(rule.as_str())
                    && name.as_bytes()[name.len() - rule.len() - 1] == b'.'
            }
            Target::Net { .. } => false,
        }
    }
}

fn prefix_matches(net: &[u8], addr: &[u8], prefix: u8) -> bool {
    let full = usize::from(prefix / 8);
    let rest = prefix % 8;
    if net[..full] != addr[..full] {
        return false;
    }
    rest == 0 || (net[full] ^ addr[full]) >> (8 - rest) == 0
}

/// An inclusive range of ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    pub low: u16,
    pub high: u16,
}

/// One allow rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub target: Target,
    /// Empty: every port.
    pub ports: Vec<PortRange>,
    /// Empty: every protocol.
    pub protocols: Vec<Protocol>,
}

impl Rule {
    /// A rule in the command line's form: `CIDR`, `ADDRESS`, `[IPV6]`,
    /// `NAME` or `*.NAME`, each optionally followed by `:PORTS` (a comma
    /// list of ports and LOW-HIGH ranges). IPv6 with ports needs brackets:
    /// `[2001:db8::/32]:443`.
    pub fn parse(text: &str) -> Result<Rule, PolicyError> {
        let (target, ports) = split_ports(text);
        let ports = match ports {
            Some(list) => parse_ports(list)?,
            None => Vec::new(),
        };
        Ok(Rule { target: parse_target(target)?, ports, protocols: Vec::new() })
    }

    fn allows(&self, port: u16, protocol: Protocol) -> bool {
        (self.ports.is_empty() || self.ports.iter().any(|r| (r.low..=r.high).contains(&port)))
            && (self.protocols.is_empty() || self.protocols.contains(&protocol))
    }
}

/// `TARGET[:PORTS]`: the port list is after the last colon, unless the
/// target is a bare IPv6 address (more than one colon, no brackets).
fn split_ports(text: &str) -> (&str, Option<&str>) {
    if let Some(rest) = text.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((inner, "")) => (inner, None),
            Some((inner, tail)) => (inner, Some(tail.strip_prefix(':').unwrap_or(tail))),
            None => (text, None),
        };
    }
    if text.matches(':').count() > 1 {
        return (text, None);
    }
    match text.rsplit_once(':') {
        Some((target, ports)) => (target, Some(ports)),
        None => (text, None),
    }
}

fn parse_ports(list: &str) -> Result<Vec<PortRange>, PolicyError> {
    let bad = || PolicyError::Ports(list.to_owned());
    let port = |p: &str| p.trim().parse::<u16>().ok().filter(|&p| p != 0).ok_or_else(bad);
    list.split(',')
        .map(|item| match item.split_once('-') {
            Some((low, high)) => {
                let (low, high) = (port(low)?, port(high)?);
                if low > high {
                    return Err(bad());
                }
                Ok(PortRange { low, high })
            }
            None => port(item).map(|p| PortRange { low: p, high: p }),
        })
        .collect()
}

fn parse_target(text: &str) -> Result<Target, PolicyError> {
    let bad = || PolicyError::Target(text.to_owned());
    if let Some((addr, prefix)) = text.split_once('/') {
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| PolicyError::Prefix(text.to_owned()))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(PolicyError::Prefix(text.to_owned()));
        }
        return Ok(Target::Net { addr, prefix });
    }
    if let Ok(addr) = text.parse::<IpAddr>() {
        let prefix = if addr.is_ipv4() { 32 } else { 128 };
        return Ok(Target::Net { addr, prefix });
    }
    let (name, subdomains) = match text.strip_prefix("*.") {
        Some(rest) => (rest, true),
        None => (text, false),
    };
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    // A name has a dot (a bare word is more likely a typo'd address), and
    // a name that parses as a number is an address gone wrong.
    if name.len() > MAX_NAME
        || (!name.contains('.') && !subdomains)
        || !name.split('.').all(label_ok)
        || name.split('.').all(|l| l.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(bad());
    }
    Ok(Target::Name { name, subdomains })
}

/// The policy a sandbox's stack enforces: allow rules win over deny rules,
/// and what neither covers gets the default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub default: Verdict,
    pub allow: Vec<Rule>,
    pub deny: Vec<Rule>,
}

impl Default for Policy {
    /// Default deny, no rule.
    fn default() -> Policy {
        Policy { default: Verdict::Deny, allow: Vec::new(), deny: Vec::new() }
    }
}

impl Policy {
    /// Everything allowed (the OCI runtime's default unless told otherwise).
    pub fn allow_all() -> Policy {
        Policy { default: Verdict::Allow, ..Policy::default() }
    }
}

/// What the policy said about one destination, and which rule said it
/// (`None`: the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision<'a> {
    pub verdict: Verdict,
    pub rule: Option<&'a Rule>,
}

impl Policy {
    /// The verdict for `protocol` traffic to `addr`:`port`: the first allow
    /// rule that reaches it (a network rule containing the address, or a name
    /// rule covering a name DNS pinned to the address), else the first such
    /// deny rule, else the default.
    pub fn decide(&self, addr: IpAddr, port: u16, protocol: Protocol, pins: &Pins, now: Instant) -> Decision<'_> {
        let names = pins.names_of(addr, now);
        let reaches = |rule: &&Rule| {
            let hit = match rule.target {
                Target::Net { .. } => rule.target.contains(addr),
                Target::Name { .. } => names.iter().any(|n| rule.target.covers_name(n)),
            };
            hit && rule.allows(port, protocol)
        };
        if let Some(rule) = self.allow.iter().find(reaches) {
            return Decision { verdict: Verdict::Allow, rule: Some(rule) };
        }
        if let Some(rule) = self.deny.iter().find(reaches) {
            return Decision { verdict: Verdict::Deny, rule: Some(rule) };
        }
        Decision { verdict: self.default, rule: None }
    }

    /// Whether any rule names a domain: then every DNS question goes
    /// through the sandbox's DNS, even one to a resolver the policy allows.
    pub fn has_names(&self) -> bool {
        self.allow.iter().chain(&self.deny).any(|r| matches!(r.target, Target::Name { .. }))
    }

    /// Whether the sandbox's DNS may resolve `name` (any case, final dot or
    /// not): allowed when an allow rule covers it, refused when a deny rule
    /// does, else as the default says.
    pub fn decide_name(&self, name: &str) -> Decision<'_> {
        let name = normal_name(name);
        if let Some(rule) = self.allow.iter().find(|r| r.target.covers_name(&name)) {
            return Decision { verdict: Verdict::Allow, rule: Some(rule) };
        }
        if let Some(rule) = self.deny.iter().find(|r| r.target.covers_name(&name)) {
            return Decision { verdict: Verdict::Deny, rule: Some(rule) };
        }
        Decision { verdict: self.default, rule: None }
    }
}

/// A name as rules compare it: lower-case, without a final dot.
fn normal_name(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

impl std::fmt::Display for Rule {
    /// The command line's form (`TARGET[:PORTS]`), with the protocols after
    /// a slash when the rule names some: `10.0.0.0/8:443/tcp`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let bracket = !self.ports.is_empty() && matches!(self.target, Target::Net { addr: IpAddr::V6(_), .. });
        if bracket {
            f.write_str("[")?;
        }
        match &self.target {
            Target::Net { addr, prefix } if *prefix == if addr.is_ipv4() { 32 } else { 128 } => write!(f, "{addr}")?,
            Target::Net { addr, prefix } => write!(f, "{addr}/{prefix}")?,
            Target::Name { name, subdomains: true } => write!(f, "*.{name}")?,
            Target::Name { name, subdomains: false } => f.write_str(name)?,
        }
        if bracket {
            f.write_str("]")?;
        }
        for (i, r) in self.ports.iter().enumerate() {
            f.write_str(if i == 0 { ":" } else { "," })?;
            if r.low == r.high {
                write!(f, "{}", r.low)?;
            } else {
                write!(f, "{}-{}", r.low, r.high)?;
            }
        }
        for (i, p) in self.protocols.iter().enumerate() {
            f.write_str(if i == 0 { "/" } else { "," })?;
            f.write_str(p.name())?;
        }
        Ok(())
    }
}

/// The names DNS answered with each address, while their TTL lasts: a name
/// rule allows an address pinned to a name it covers. Keyed by name, not
/// by rule, so that pins outlive a policy replaced while the sandbox runs.
/// Bounded: past `MAX_PINS` the pin that expires first goes.
#[derive(Debug, Default)]
pub struct Pins {
    by_addr: HashMap<IpAddr, Vec<(String, Instant)>>,
    count: usize,
}

impl Pins {
    /// Pins `addrs` to `name` for `ttl` from `now`.
    pub fn pin(&mut self, name: &str, addrs: &[IpAddr], ttl: Duration, now: Instant) {
        let name = normal_name(name);
        let until = now + ttl;
        for &addr in addrs {
            let entry = self.by_addr.entry(unmapped(addr)).or_default();
            match entry.iter_mut().find(|(n, _)| *n == name) {
                Some((_, expiry)) => *expiry = (*expiry).max(until),
                None => {
                    entry.push((name.clone(), until));
                    self.count += 1;
                }
            }
        }
        self.bound(now);
    }

    /// The names `addr` is pinned to now.
    pub fn names_of(&self, addr: IpAddr, now: Instant) -> Vec<&str> {
        self.by_addr
            .get(&unmapped(addr))
            .map(|pins| pins.iter().filter(|(_, e)| *e > now).map(|(n, _)| n.as_str()).collect())
            .unwrap_or_default()
    }

    /// How many pins there are (expired ones included until `bound` drops them).
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Drops expired pins; past `MAX_PINS`, the ones that expire first.
    fn bound(&mut self, now: Instant) {
        if self.count <= MAX_PINS {
            return;
        }
        for pins in self.by_addr.values_mut() {
            pins.retain(|(_, e)| *e > now);
        }
        self.by_addr.retain(|_, pins| !pins.is_empty());
        self.count = self.by_addr.values().map(Vec::len).sum();
        while self.count > MAX_PINS {
            let Some((addr, index)) = self
                .by_addr
                .iter()
                .flat_map(|(a, pins)| pins.iter().enumerate().map(move |(i, (_, e))| (*e, *a, i)))
                .min()
                .map(|(_, a, i)| (a, i))
            else {
                break;
            };
            if let Some(pins) = self.by_addr.get_mut(&addr) {
                pins.remove(index);
                if pins.is_empty() {
                    self.by_addr.remove(&addr);
                }
            }
            self.count -= 1;
        }
    }
}

/// An IPv4-mapped IPv6 address is the IPv4 address it maps.
fn unmapped(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn policy(rules: &[&str]) -> Policy {
        Policy { allow: rules.iter().map(|r| Rule::parse(r).unwrap()).collect(), ..Policy::default() }
    }

    #[test]
    fn rules_parse_as_the_command_line_writes_them() {
        assert_eq!(Rule::parse("10.0.0.0/8").unwrap().target, Target::Net { addr: ip("10.0.0.0"), prefix: 8 });
        let r = Rule::parse("192.0.2.7:443,8000-8100").unwrap();
        assert_eq!(r.target, Target::Net { addr: ip("192.0.2.7"), prefix: 32 });
        assert_eq!(r.ports, [PortRange { low: 443, high: 443 }, PortRange { low: 8000, high: 8100 }]);
        assert_eq!(Rule::parse("2001:db8::1").unwrap().target, Target::Net { addr: ip("2001:db8::1"), prefix: 128 });
        let r = Rule::parse("[2001:db8::/32]:53").unwrap();
        assert_eq!(r.target, Target::Net { addr: ip("2001:db8::"), prefix: 32 });
        assert_eq!(r.ports, [PortRange { low: 53, high: 53 }]);
        assert_eq!(
            Rule::parse("*.Example.COM.:443").unwrap().target,
            Target::Name { name: "example.com".into(), subdomains: true }
        );
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "example",
            "1.2.3",
            "a..b",
            "-a.com",
            "x.com:0",
            "x.com:9-8",
            "x.com:70000",
            "x.com:",
            "ex ample.com",
        ] {
            assert!(Rule::parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn networks_match_by_prefix_and_ports_and_protocols_narrow() {
        let p = policy(&["10.1.0.0/16:80,443", "192.0.2.0/25"]);
        let pins = Pins::default();
        let now = Instant::now();
        let d = |a: &str, port| p.decide(ip(a), port, Protocol::Tcp, &pins, now);
        assert_eq!(d("10.1.255.3", 443), Decision { verdict: Verdict::Allow, rule: Some(&p.allow[0]) });
        assert_eq!(d("10.1.255.3", 22), Decision { verdict: Verdict::Deny, rule: None });
        assert_eq!(d("10.2.0.1", 443).verdict, Verdict::Deny);
        assert_eq!(d("192.0.2.127", 9).rule, Some(&p.allow[1]));
        assert_eq!(d("192.0.2.128", 9).verdict, Verdict::Deny);
        assert_eq!(d("::ffff:192.0.2.1", 9).rule, Some(&p.allow[1]), "an IPv4-mapped address is its IPv4 address");
        let mut udp_only = policy(&["198.51.100.0/24"]);
        udp_only.allow[0].protocols = vec![Protocol::Udp];
        assert_eq!(udp_only.decide(ip("198.51.100.1"), 53, Protocol::Tcp, &pins, now).verdict, Verdict::Deny);
        assert_eq!(udp_only.decide(ip("198.51.100.1"), 53, Protocol::Udp, &pins, now).verdict, Verdict::Allow);
        let open = Policy::allow_all();
        assert_eq!(
            open.decide(ip("203.0.113.9"), 1, Protocol::Tcp, &pins, now),
            Decision { verdict: Verdict::Allow, rule: None }
        );
    }

    #[test]
    fn allow_wins_over_deny_and_deny_over_an_open_default() {
        let mut p = policy(&["10.1.2.3"]);
        p.deny = vec![Rule::parse("10.0.0.0/8").unwrap()];
        p.default = Verdict::Allow;
        let (pins, now) = (Pins::default(), Instant::now());
        assert_eq!(p.decide(ip("10.1.2.3"), 80, Protocol::Tcp, &pins, now).verdict, Verdict::Allow);
        let d = p.decide(ip("10.9.9.9"), 80, Protocol::Tcp, &pins, now);
        assert_eq!(d, Decision { verdict: Verdict::Deny, rule: Some(&p.deny[0]) });
        assert_eq!(p.decide(ip("192.0.2.1"), 80, Protocol::Tcp, &pins, now).verdict, Verdict::Allow);
    }

    #[test]
    fn rules_print_as_they_parse() {
        for text in ["10.0.0.0/8", "192.0.2.7:443,8000-8100", "2001:db8::1", "[2001:db8::/32]:53", "*.example.com:80"] {
            assert_eq!(Rule::parse(text).unwrap().to_string(), text);
        }
        let mut r = Rule::parse("192.0.2.0/24:53").unwrap();
        r.protocols = vec![Protocol::Udp, Protocol::Tcp];
        assert_eq!(r.to_string(), "192.0.2.0/24:53/udp,tcp");
    }

    #[test]
    fn names_allow_only_what_dns_pinned_and_only_until_the_ttl() {
        let p = policy(&["allowed.test:80", "*.cdn.test"]);
        assert_eq!(p.decide_name("Allowed.TEST.").rule, Some(&p.allow[0]));
        assert_eq!(p.decide_name("a.b.cdn.test").rule, Some(&p.allow[1]));
        assert_eq!(p.decide_name("cdn.test").verdict, Verdict::Deny, "*.cdn.test does not cover cdn.test");
        assert_eq!(p.decide_name("xcdn.test").verdict, Verdict::Deny);
        assert_eq!(p.decide_name("other.test"), Decision { verdict: Verdict::Deny, rule: None });
        let now = Instant::now();
        let mut pins = Pins::default();
        assert_eq!(p.decide(ip("192.0.2.10"), 80, Protocol::Tcp, &pins, now).verdict, Verdict::Deny);
        pins.pin("allowed.test.", &[ip("192.0.2.10")], Duration::from_secs(30), now);
        assert_eq!(p.decide(ip("192.0.2.10"), 80, Protocol::Tcp, &pins, now).rule, Some(&p.allow[0]));
        assert_eq!(p.decide(ip("192.0.2.10"), 81, Protocol::Tcp, &pins, now).verdict, Verdict::Deny);
        let later = now + Duration::from_secs(31);
        assert_eq!(p.decide(ip("192.0.2.10"), 80, Protocol::Tcp, &pins, later).verdict, Verdict::Deny);
        // A policy replaced while the pins last: its rules see them too.
        let replaced = policy(&["*.test:81"]);
        assert_eq!(replaced.decide(ip("192.0.2.10"), 81, Protocol::Tcp, &pins, now).verdict, Verdict::Allow);
    }

    #[test]
    fn pins_stay_bounded() {
        let now = Instant::now();
        let mut pins = Pins::default();
        for i in 0..(MAX_PINS as u32 + 500) {
            let addr = IpAddr::from((0x0a00_0000 + i).to_be_bytes());
            pins.pin("a.test", &[addr], Duration::from_secs(u64::from(i) + 1), now);
        }
        assert_eq!(pins.len(), MAX_PINS);
        // The ones that would expire first went.
        assert!(pins.names_of(IpAddr::from(0x0a00_0000u32.to_be_bytes()), now).is_empty());
        let last = IpAddr::from((0x0a00_0000 + MAX_PINS as u32 + 499).to_be_bytes());
        assert_eq!(pins.names_of(last, now), ["a.test"]);
    }
}
