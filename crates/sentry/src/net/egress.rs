//! Egress enforcement: the policy a sandbox's stack holds, the addresses its
//! DNS pinned, and the audit line every refusal writes.
//!
//! The stack asks here before a connection or datagram leaves by a link
//! (loopback is never asked): a refusal is immediate for the app (the caller
//! turns it into ECONNREFUSED or EPERM) and recorded as one JSON line on the
//! audit fd the runtime opened, or the Sentry's stderr. Lines are rate
//! limited, so that an app refusing itself in a loop cannot fill a disk:
//! past `AUDIT_BURST` lines in a second, refusals are counted and the count
//! is written with the next line that passes.

use std::fmt::Write as _;
use std::fs::File;
use std::io::Write;
use std::net::IpAddr;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant, SystemTime};

use super::policy::{Decision, Pins, Policy, Protocol, Verdict};

/// At most this many audit lines a second; the rest are counted.
const AUDIT_BURST: u32 = 200;

/// What the runtime gives the stack about egress.
#[derive(Debug, Default)]
pub struct EgressConfig {
    pub policy: Policy,
    /// Where refusals are written (opened for append by the runtime); None:
    /// the Sentry's stderr.
    pub audit: Option<OwnedFd>,
    /// The sandbox's name in audit lines (the container id, or `do-PID`).
    pub sandbox: String,
    /// The resolvers the sandbox's DNS forwards queries for allowed names to
    /// (through the stack, over the links).
    pub resolvers: Vec<IpAddr>,
    /// Resolvers on the container's own loopback (Docker's embedded DNS at
    /// 127.0.0.11, behind the engine's NAT rules in that namespace), each
    /// with a UDP socket the runtime connected to its port 53 there before
    /// the Sentry's seccomp filter: a question the app sends to one is
    /// forwarded through that socket (read and write only).
    pub netns_resolvers: Vec<(IpAddr, OwnedFd)>,
}

/// The process a socket call came from, for the audit line.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    /// The process id in the sandbox.
    pub pid: i32,
    /// Its command name (`comm`); empty where the call has no task at hand
    /// (write(2) on a socket), and then the audit line's process is null.
    pub comm: Vec<u8>,
}

/// What is refused or allowed: a destination, or a name the DNS was asked.
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    Addr { addr: IpAddr, port: u16, protocol: Protocol },
    Name(&'a str),
}

/// The stack's egress state, under a lock of its own taken after the
/// stack's (DNS answers pin under it) or a socket's, never before them.
#[derive(Debug)]
pub(super) struct Enforcer {
    pub(super) policy: Policy,
    pub(super) pins: Pins,
    pub(super) resolvers: Vec<IpAddr>,
    audit: Option<File>,
    sandbox: String,
    /// The current second's lines, and refusals not written since.
    window: (Instant, u32),
    suppressed: u64,
    refused: u64,
}

impl Enforcer {
    pub(super) fn new(c: EgressConfig) -> Enforcer {
        Enforcer {
            policy: c.policy,
            pins: Pins::default(),
            resolvers: c.resolvers,
            audit: c.audit.map(File::from),
            sandbox: c.sandbox,
            window: (Instant::now(), 0),
            suppressed: 0,
            refused: 0,
        }
    }

    /// Whether traffic to the destination may leave; a refusal is audited.
    pub(super) fn check(&mut self, addr: IpAddr, port: u16, protocol: Protocol, who: &Origin) -> Verdict {
        let d = self.policy.decide(addr, port, protocol, &self.pins, Instant::now());
        let verdict = d.verdict;
        if verdict == Verdict::Deny {
            let line = audit_line(&self.sandbox, who, Subject::Addr { addr, port, protocol }, d);
            self.record(line);
        }
        verdict
    }

    /// Whether the sandbox's DNS may resolve `name`; a refusal is audited.
    pub(super) fn check_name(&mut self, name: &str, who: &Origin) -> Verdict {
        let d = self.policy.decide_name(name);
        let verdict = d.verdict;
        if verdict == Verdict::Deny {
            let line = audit_line(&self.sandbox, who, Subject::Name(name), d);
            self.record(line);
        }
        verdict
    }

    /// How many refusals there were.
    pub(super) fn refused(&self) -> u64 {
        self.refused
    }

    fn record(&mut self, mut line: String) {
        self.refused += 1;
        let now = Instant::now();
        if now.duration_since(self.window.0) >= Duration::from_secs(1) {
            self.window = (now, 0);
        }
        if self.window.1 >= AUDIT_BURST {
            self.suppressed += 1;
            return;
        }
        self.window.1 += 1;
        if self.suppressed > 0 {
            // Said on the line that passes, so that no line is lost unsaid.
            line.insert_str(line.len() - 2, &format!(",\"suppressed_before\":{}", self.suppressed));
            self.suppressed = 0;
        }
        // One write(2) per line: lines of sandboxes sharing a file do not mix.
        let written = match &mut self.audit {
            Some(f) => f.write_all(line.as_bytes()),
            None => std::io::stderr().write_all(line.as_bytes()),
        };
        if let Err(e) = written {
            tracing::warn!(error = %e, "cannot write an egress audit line");
        }
    }
}

/// One audit event as a JSON line:
/// `{"time","sandbox","pid","process","destination","port","protocol","rule","verdict"}`,
/// with `"name"` in place of destination and port for a DNS query
/// (protocol `dns`); `rule` is null when the default decided.
pub fn audit_line(sandbox: &str, who: &Origin, what: Subject<'_>, d: Decision<'_>) -> String {
    let mut s = String::with_capacity(256);
    s.push_str("{\"time\":");
    json_str(&mut s, &abi::time::format_rfc3339(SystemTime::now()));
    s.push_str(",\"sandbox\":");
    json_str(&mut s, sandbox);
    let _ = write!(s, ",\"pid\":{},\"process\":", who.pid);
    if who.comm.is_empty() {
        s.push_str("null");
    } else {
        json_str(&mut s, &String::from_utf8_lossy(&who.comm));
    }
    match what {
        Subject::Addr { addr, port, protocol } => {
            let _ = write!(s, ",\"destination\":\"{addr}\",\"port\":{port},\"protocol\":\"{}\"", protocol.name());
        }
        Subject::Name(name) => {
            s.push_str(",\"name\":");
            json_str(&mut s, name);
            s.push_str(",\"protocol\":\"dns\"");
        }
    }
    s.push_str(",\"rule\":");
    match d.rule {
        Some(r) => json_str(&mut s, &r.to_string()),
        None => s.push_str("null"),
    }
    let verdict = if d.verdict == Verdict::Allow { "allow" } else { "deny" };
    let _ = writeln!(s, ",\"verdict\":\"{verdict}\"}}");
    s
}

/// `text` as a JSON string: names come from the app's DNS queries and may
/// hold any byte, so everything outside printable ASCII is escaped.
fn json_str(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            c => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::policy::Rule;

    #[test]
    fn audit_lines_are_one_json_object_each_whatever_the_name() {
        let who = Origin { pid: 7, comm: b"cu\"rl\n".to_vec() };
        let rule = Rule::parse("10.0.0.0/8:443").unwrap();
        let d = Decision { verdict: Verdict::Deny, rule: Some(&rule) };
        let addr = "10.1.2.3".parse().unwrap();
        let line = audit_line("ctr", &who, Subject::Addr { addr, port: 80, protocol: Protocol::Tcp }, d);
        assert!(line.ends_with("}\n") && line.matches('\n').count() == 1, "{line}");
        assert!(line.contains(r#""sandbox":"ctr","pid":7,"process":"cu\"rl\u000a""#), "{line}");
        assert!(
            line.contains(
                r#""destination":"10.1.2.3","port":80,"protocol":"tcp","rule":"10.0.0.0/8:443","verdict":"deny"}"#
            ),
            "{line}"
        );
        let d = Decision { verdict: Verdict::Deny, rule: None };
        let line = audit_line("ctr", &who, Subject::Name("a\u{7f}\u{1F600}.test"), d);
        assert!(line.contains(r#""name":"a\u007f\ud83d\ude00.test","protocol":"dns","rule":null"#), "{line}");
    }

    #[test]
    fn refusals_past_the_burst_are_counted_not_written() {
        let (r, w) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut e = Enforcer::new(EgressConfig {
            audit: Some(OwnedFd::from(w)),
            sandbox: "s".into(),
            ..EgressConfig::default()
        });
        let addr = "192.0.2.1".parse().unwrap();
        for _ in 0..AUDIT_BURST + 5 {
            assert_eq!(e.check(addr, 1, Protocol::Udp, &Origin::default()), Verdict::Deny);
        }
        assert_eq!(e.refused(), u64::from(AUDIT_BURST) + 5);
        e.window.0 -= Duration::from_secs(2);
        e.check(addr, 2, Protocol::Udp, &Origin::default());
        drop(e);
        let mut text = String::new();
        std::io::Read::read_to_string(&mut { r }, &mut text).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), AUDIT_BURST as usize + 1);
        assert!(lines.last().unwrap().contains("\"suppressed_before\":5"), "{}", lines.last().unwrap());
    }
}
