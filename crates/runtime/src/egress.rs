//! Egress policy as operators write it — the JSON policy file, `--allow`
//! rules, OCI annotations — checked and turned into the Sentry's `Policy`.
//!
//! A policy file is `{"default": "deny"|"allow", "allow": [RULE...], "deny":
//! [RULE...]}`, every key optional; a RULE is a string in `--allow`'s syntax
//! (`10.0.0.0/8`, `192.0.2.7:443,8000-8100`, `[2001:db8::/32]:53`,
//! `example.com`, `*.example.com:80,443`) or an object `{"to": TARGET,
//! "ports": "80,443", "protocols": ["tcp", "udp", "icmp"]}`. Everything is
//! checked before it reaches a sandbox: an unknown key, a bad rule, more than
//! `MAX_RULES` rules or a file past `MAX_FILE` bytes is an error naming the
//! file (or annotation) and the rule. The same document, with its rules
//! normalized, is what travels to a running sandbox to replace its policy.
//!
//! Also here: the resolvers a sandbox's DNS forwards allowed names to (the
//! `nameserver` lines of a resolv.conf) and the audit log.

use std::collections::HashMap;
use std::io::Read;
use std::net::IpAddr;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use oci_spec::runtime::Spec;
use sentry::net::policy::{PolicyError, Protocol};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bundle::Bundle;
use crate::subcommands::RuntimeFlags;

pub use sentry::net::policy::{Policy, Rule, Verdict};

/// A policy document (file, annotation, request) is at most this many bytes.
pub const MAX_FILE: u64 = 1 << 20;
/// A policy holds at most this many rules, allow and deny together: each is
/// checked on every connection the sandbox makes.
pub const MAX_RULES: usize = 10_000;
/// A resolv.conf is read up to this size; a real one is a few lines.
const MAX_RESOLV_CONF: u64 = 64 << 10;
/// glibc's MAXNS: the resolvers past the third are never asked.
const MAX_RESOLVERS: usize = 3;

/// The OCI annotation giving a container's default verdict (`allow` or `deny`).
pub const ANNOTATION_DEFAULT: &str = "dev.moat.egress.default";
/// The OCI annotation with rules to allow, separated by whitespace.
pub const ANNOTATION_ALLOW: &str = "dev.moat.egress.allow";
/// The OCI annotation with rules to deny, separated by whitespace.
pub const ANNOTATION_DENY: &str = "dev.moat.egress.deny";
/// The OCI annotation holding a whole policy document, inline.
pub const ANNOTATION_POLICY: &str = "dev.moat.egress.policy";
const ANNOTATION_PREFIX: &str = "dev.moat.egress.";

/// Why a policy, a rule or the audit log was refused. Each message names
/// where the policy came from (a file, an annotation, a flag) and the rule.
#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    /// The policy file cannot be opened or read.
    #[error("egress policy {}: cannot read it: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What open or read returned.
        source: std::io::Error,
    },
    /// The policy file is a directory, FIFO or device.
    #[error("egress policy {}: not a regular file", .path.display())]
    NotAFile {
        /// The file.
        path: PathBuf,
    },
    /// The document is past `MAX_FILE`.
    #[error("egress policy {origin}: larger than 1 MiB; use CIDRs and *.domain rules to say it in fewer")]
    TooLarge {
        /// The file or annotation.
        origin: String,
    },
    /// Not JSON, or JSON of another shape (an unknown key, a wrong type).
    #[error(
        "egress policy {origin}: {message} (a policy is {{\"default\": \"deny\", \"allow\": [RULE...], \"deny\": [RULE...]}})"
    )]
    Syntax {
        /// The file or annotation.
        origin: String,
        /// What serde said, with the line and column.
        message: String,
    },
    /// `default` is neither `allow` nor `deny`.
    #[error("egress policy {origin}: default {value:?}: give \"allow\" or \"deny\"")]
    Default {
        /// The file, annotation or flag.
        origin: String,
        /// What was given.
        value: String,
    },
    /// A rule does not parse.
    #[error("egress policy {origin}: {list} rule {number}: {source}")]
    Rule {
        /// The file, annotation or flag.
        origin: String,
        /// `allow` or `deny`.
        list: &'static str,
        /// Its place in the list, from 1.
        number: usize,
        /// Why.
        source: PolicyError,
    },
    /// A rule object has the wrong keys or types.
    #[error("egress policy {origin}: {list} rule {number}: {reason}")]
    RuleShape {
        /// The file or annotation.
        origin: String,
        /// `allow` or `deny`.
        list: &'static str,
        /// Its place in the list, from 1.
        number: usize,
        /// What is wrong.
        reason: String,
    },
    /// More than `MAX_RULES` rules.
    #[error("egress policy {origin}: {count} rules; at most {MAX_RULES} are taken (use CIDRs and *.domain rules)")]
    TooManyRules {
        /// The file, annotation or flags.
        origin: String,
        /// How many there were.
        count: usize,
    },
    /// An annotation under `dev.moat.egress.` that moat does not know: a
    /// typo there would otherwise leave the policy silently other than meant.
    #[error(
        "annotation {key}: unknown (the egress annotations are {ANNOTATION_DEFAULT}, {ANNOTATION_ALLOW}, \
         {ANNOTATION_DENY} and {ANNOTATION_POLICY})"
    )]
    UnknownAnnotation {
        /// The annotation.
        key: String,
    },
    /// The audit log cannot be opened.
    #[error("--audit-log {}: cannot open it for appending: {source}", .path.display())]
    AuditLog {
        /// The file.
        path: PathBuf,
        /// What open returned.
        source: std::io::Error,
    },
}

/// A policy document as JSON has it: the file's shape, and what a request
/// to replace a running sandbox's policy carries. Rules stay JSON values
/// here; [`PolicyRules::check`] parses them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyJson {
    /// `"allow"` or `"deny"`; absent: the default the operator set elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// Rules whose destinations are allowed.
    #[serde(default)]
    pub allow: Vec<Value>,
    /// Rules whose destinations are refused (unless an allow rule covers them).
    #[serde(default)]
    pub deny: Vec<Value>,
}

/// A checked policy document: its default, if it has one, and its rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyRules {
    /// None: the document leaves the default to the operator's other settings.
    pub default: Option<Verdict>,
    pub allow: Vec<Rule>,
    pub deny: Vec<Rule>,
}

impl PolicyRules {
    /// Reads and checks the policy file at `path`.
    pub fn read(path: &Path) -> Result<PolicyRules, EgressError> {
        let read_error = |source| EgressError::Read { path: path.to_owned(), source };
        // O_NONBLOCK: opening a FIFO must not wait for a writer; it is then
        // refused as not a regular file.
        let file =
            std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path).map_err(read_error)?;
        if !file.metadata().map_err(read_error)?.is_file() {
            return Err(EgressError::NotAFile { path: path.to_owned() });
        }
        let mut bytes = Vec::new();
        file.take(MAX_FILE + 1).read_to_end(&mut bytes).map_err(read_error)?;
        PolicyRules::parse(&bytes, &path.display().to_string())
    }

    /// Parses and checks a policy document; `origin` names it in errors.
    pub fn parse(json: &[u8], origin: &str) -> Result<PolicyRules, EgressError> {
        if json.len() as u64 > MAX_FILE {
            return Err(EgressError::TooLarge { origin: origin.to_owned() });
        }
        let raw: PolicyJson = serde_json::from_slice(json)
            .map_err(|e| EgressError::Syntax { origin: origin.to_owned(), message: e.to_string() })?;
        PolicyRules::check(&raw, origin)
    }

    /// Checks a document's default and rules.
    pub fn check(raw: &PolicyJson, origin: &str) -> Result<PolicyRules, EgressError> {
        let count = raw.allow.len() + raw.deny.len();
        if count > MAX_RULES {
            return Err(EgressError::TooManyRules { origin: origin.to_owned(), count });
        }
        let default = raw.default.as_deref().map(|d| parse_verdict(d, origin)).transpose()?;
        let rules = |list: &'static str, values: &[Value]| {
            values
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    rule_from_json(v).map_err(|e| match e {
                        RuleFault::Parse(source) => {
                            EgressError::Rule { origin: origin.to_owned(), list, number: i + 1, source }
                        }
                        RuleFault::Shape(reason) => {
                            EgressError::RuleShape { origin: origin.to_owned(), list, number: i + 1, reason }
                        }
                    })
                })
                .collect::<Result<Vec<Rule>, EgressError>>()
        };
        Ok(PolicyRules { default, allow: rules("allow", &raw.allow)?, deny: rules("deny", &raw.deny)? })
    }

    /// The document in normalized form: rules as `--allow` strings, objects
    /// only for rules with protocols. It checks back to the same rules.
    pub fn to_json(&self) -> PolicyJson {
        PolicyJson {
            default: self.default.map(|d| verdict_name(d).to_owned()),
            allow: self.allow.iter().map(rule_to_json).collect(),
            deny: self.deny.iter().map(rule_to_json).collect(),
        }
    }

    /// The policy these rules make, with `default` where the document gives none.
    pub fn policy(&self, default: Verdict) -> Policy {
        Policy { default: self.default.unwrap_or(default), allow: self.allow.clone(), deny: self.deny.clone() }
    }

    /// How many rules there are.
    pub fn len(&self) -> usize {
        self.allow.len() + self.deny.len()
    }

    /// Whether there is no rule.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `allow` or `deny`, as flags, files and annotations spell them.
pub fn parse_verdict(text: &str, origin: &str) -> Result<Verdict, EgressError> {
    match text {
        "allow" => Ok(Verdict::Allow),
        "deny" => Ok(Verdict::Deny),
        _ => Err(EgressError::Default { origin: origin.to_owned(), value: text.to_owned() }),
    }
}

/// The word for `v` in files and flags.
pub fn verdict_name(v: Verdict) -> &'static str {
    match v {
        Verdict::Allow => "allow",
        Verdict::Deny => "deny",
    }
}

/// The default verdict as a command-line value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DefaultVerdict {
    /// What no rule covers may leave.
    Allow,
    /// What no rule covers is refused.
    Deny,
}

impl From<DefaultVerdict> for Verdict {
    fn from(d: DefaultVerdict) -> Verdict {
        match d {
            DefaultVerdict::Allow => Verdict::Allow,
            DefaultVerdict::Deny => Verdict::Deny,
        }
    }
}

enum RuleFault {
    Parse(PolicyError),
    Shape(String),
}

const RULE_KEYS: [&str; 3] = ["to", "ports", "protocols"];

fn rule_from_json(v: &Value) -> Result<Rule, RuleFault> {
    let map = match v {
        Value::String(text) => return Rule::parse(text).map_err(RuleFault::Parse),
        Value::Object(map) => map,
        _ => {
            return Err(RuleFault::Shape(
                "a rule is a string (\"10.0.0.0/8:443\") or an object {\"to\", \"ports\", \"protocols\"}".into(),
            ))
        }
    };
    if let Some(key) = map.keys().find(|k| !RULE_KEYS.contains(&k.as_str())) {
        return Err(RuleFault::Shape(format!(
            "unknown key {key:?} (a rule object has \"to\", \"ports\", \"protocols\")"
        )));
    }
    let Some(Value::String(to)) = map.get("to") else {
        return Err(RuleFault::Shape("\"to\" is missing or not a string: give an address, CIDR or domain name".into()));
    };
    if !Rule::parse(to).map_err(RuleFault::Parse)?.ports.is_empty() {
        return Err(RuleFault::Shape(format!("\"to\": {to:?} has ports: give them in \"ports\"")));
    }
    let ports = match map.get("ports") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) => Some(p.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => return Err(RuleFault::Shape("\"ports\" is a string such as \"80,443,8000-8100\"".into())),
    };
    let text = match ports {
        // A bare IPv6 target takes brackets before its ports.
        Some(p) if to.contains(':') && !to.starts_with('[') => format!("[{to}]:{p}"),
        Some(p) => format!("{to}:{p}"),
        None => to.clone(),
    };
    let mut rule = Rule::parse(&text).map_err(RuleFault::Parse)?;
    match map.get("protocols") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            for p in list {
                let Value::String(name) = p else {
                    return Err(RuleFault::Shape("\"protocols\" is a list of \"tcp\", \"udp\", \"icmp\"".into()));
                };
                let protocol = Protocol::parse(name).map_err(RuleFault::Parse)?;
                if !rule.protocols.contains(&protocol) {
                    rule.protocols.push(protocol);
                }
            }
        }
        Some(_) => return Err(RuleFault::Shape("\"protocols\" is a list of \"tcp\", \"udp\", \"icmp\"".into())),
    }
    Ok(rule)
}

fn rule_to_json(rule: &Rule) -> Value {
    if rule.protocols.is_empty() {
        return Value::String(rule.to_string());
    }
    let target = Rule { target: rule.target.clone(), ports: Vec::new(), protocols: Vec::new() };
    let mut object = serde_json::Map::new();
    object.insert("to".into(), Value::String(target.to_string()));
    if !rule.ports.is_empty() {
        let ports: Vec<String> = rule
            .ports
            .iter()
            .map(|r| if r.low == r.high { r.low.to_string() } else { format!("{}-{}", r.low, r.high) })
            .collect();
        object.insert("ports".into(), Value::String(ports.join(",")));
    }
    object.insert("protocols".into(), rule.protocols.iter().map(|p| Value::String(p.name().into())).collect());
    Value::Object(object)
}

/// Rules separated by whitespace (an annotation's value); `origin` and
/// `list` name them in errors.
pub fn parse_rule_list(text: &str, origin: &str, list: &'static str) -> Result<Vec<Rule>, EgressError> {
    let rules = text
        .split_whitespace()
        .enumerate()
        .map(|(i, r)| {
            Rule::parse(r).map_err(|source| EgressError::Rule {
                origin: origin.to_owned(),
                list,
                number: i + 1,
                source,
            })
        })
        .collect::<Result<Vec<Rule>, EgressError>>()?;
    if rules.len() > MAX_RULES {
        return Err(EgressError::TooManyRules { origin: origin.to_owned(), count: rules.len() });
    }
    Ok(rules)
}

/// A container's policy from its annotations, the runtime's global policy
/// file and its global default, in that precedence. The default verdict is
/// the first given of `dev.moat.egress.default`, the policy annotation's
/// `default`, the global file's `default` and `global_default`. The rules
/// are those of the container's annotations (`.policy`, `.allow`, `.deny`
/// together) if it has any, else the global file's.
pub fn container_policy(
    annotations: &HashMap<String, String>,
    global_default: Verdict,
    global_file: Option<&PolicyRules>,
) -> Result<Policy, EgressError> {
    if let Some(key) = annotations
        .keys()
        .filter(|k| k.starts_with(ANNOTATION_PREFIX))
        .find(|k| ![ANNOTATION_DEFAULT, ANNOTATION_ALLOW, ANNOTATION_DENY, ANNOTATION_POLICY].contains(&k.as_str()))
    {
        return Err(EgressError::UnknownAnnotation { key: key.clone() });
    }
    let origin = |key: &str| format!("annotation {key}");
    let document = annotations
        .get(ANNOTATION_POLICY)
        .map(|json| PolicyRules::parse(json.as_bytes(), &origin(ANNOTATION_POLICY)))
        .transpose()?;
    let listed =
        |key: &str, list| annotations.get(key).map(|text| parse_rule_list(text, &origin(key), list)).transpose();
    let (allow, deny) = (listed(ANNOTATION_ALLOW, "allow")?, listed(ANNOTATION_DENY, "deny")?);
    let annotated_default = annotations
        .get(ANNOTATION_DEFAULT)
        .map(|d| parse_verdict(d.trim(), &origin(ANNOTATION_DEFAULT)))
        .transpose()?;
    let default = annotated_default
        .or(document.as_ref().and_then(|d| d.default))
        .or(global_file.and_then(|f| f.default))
        .unwrap_or(global_default);
    if document.is_none() && allow.is_none() && deny.is_none() {
        let (allow, deny) = global_file.map(|f| (f.allow.clone(), f.deny.clone())).unwrap_or_default();
        return Ok(Policy { default, allow, deny });
    }
    let mut rules = document.unwrap_or_default();
    rules.allow.extend(allow.unwrap_or_default());
    rules.deny.extend(deny.unwrap_or_default());
    if rules.len() > MAX_RULES {
        return Err(EgressError::TooManyRules { origin: "annotations dev.moat.egress.*".into(), count: rules.len() });
    }
    Ok(Policy { default, allow: rules.allow, deny: rules.deny })
}

/// A container's egress configuration: its policy (`container_policy`
/// over the runtime's `--egress-default` and `--egress-policy`), the
/// runtime's `--audit-log`, its resolvers, and its id as the sandbox's name;
/// and its resolv.conf, open, for `start` to read again.
pub(crate) fn container_egress(
    flags: &RuntimeFlags,
    bundle: &Bundle,
    id: &str,
) -> Result<(sentry::net::EgressConfig, Option<std::fs::File>), EgressError> {
    let file = flags.egress_policy.as_deref().map(PolicyRules::read).transpose()?;
    let annotations = bundle.spec.annotations().clone().unwrap_or_default();
    let default = flags.egress_default.map_or(Verdict::Allow, Verdict::from);
    let policy = container_policy(&annotations, default, file.as_ref())?;
    let audit = flags.audit_log.as_deref().map(open_audit_log).transpose()?;
    let resolv_conf = container_resolv_conf(&bundle.spec, &bundle.dir, &bundle.rootfs);
    let resolvers = resolv_conf.as_ref().and_then(read_resolv_conf).map_or_else(Vec::new, |text| nameservers(&text));
    let config =
        sentry::net::EgressConfig { policy, audit, sandbox: id.to_owned(), resolvers, netns_resolvers: Vec::new() };
    Ok((config, resolv_conf))
}

/// Opens the audit log for appending (created 0600 if missing), as every
/// sandbox writing to it does: one write(2) per line.
pub fn open_audit_log(path: &Path) -> Result<OwnedFd, EgressError> {
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
        .map(OwnedFd::from)
        .map_err(|source| EgressError::AuditLog { path: path.to_owned(), source })
}

/// The resolvers of a resolv.conf: its `nameserver` addresses, in order,
/// without loopback ones (a resolver on the host's loopback is not
/// reachable from a sandbox, whose loopback is its own) and at most three.
pub fn nameservers(resolv_conf: &str) -> Vec<IpAddr> {
    nameserver_lines(resolv_conf).filter(|addr| !addr.is_loopback()).take(MAX_RESOLVERS).collect()
}

/// The loopback `nameserver` addresses of a container's resolv.conf (Docker's
/// embedded DNS, 127.0.0.11): reached through a socket the runtime makes in
/// the container's network namespace (`sandbox::resolvers`), at most three.
pub fn loopback_nameservers(resolv_conf: &str) -> Vec<IpAddr> {
    nameserver_lines(resolv_conf).filter(|addr| addr.is_loopback()).take(MAX_RESOLVERS).collect()
}

fn nameserver_lines(resolv_conf: &str) -> impl Iterator<Item = IpAddr> + '_ {
    resolv_conf
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("nameserver")).then(|| words.next()).flatten()
        })
        .filter_map(|addr| addr.parse::<IpAddr>().ok())
        .filter(|addr| !addr.is_unspecified())
}

/// The resolvers of the host's /etc/resolv.conf (none if it cannot be read).
pub fn host_resolvers() -> Vec<IpAddr> {
    let file = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open("/etc/resolv.conf");
    let file = file.ok().filter(|f| f.metadata().is_ok_and(|m| m.is_file()));
    file.as_ref().and_then(read_resolv_conf).map_or_else(Vec::new, |text| nameservers(&text))
}

/// The resolvers of a container: the `nameserver` lines of the file the
/// spec mounts at /etc/resolv.conf (one its engine wrote on the host), else
/// of the root filesystem's own /etc/resolv.conf, which is the image's and
/// so is opened inside the root without following any symlink. Each only if
/// it is a regular file; none if neither is.
pub fn container_resolvers(spec: &Spec, bundle_dir: &Path, rootfs: &Path) -> Vec<IpAddr> {
    container_resolv_conf(spec, bundle_dir, rootfs)
        .as_ref()
        .and_then(read_resolv_conf)
        .map_or_else(Vec::new, |text| nameservers(&text))
}

/// A container's resolv.conf, found as `container_resolvers` says, open to
/// be read now and again later (engines rewrite it in place: it is
/// bind-mounted into the container).
fn container_resolv_conf(spec: &Spec, bundle_dir: &Path, rootfs: &Path) -> Option<std::fs::File> {
    let mounted = spec.mounts().iter().flatten().rev().find(|m| m.destination() == Path::new("/etc/resolv.conf"));
    let file = match mounted.and_then(|m| m.source().clone()) {
        Some(source) => std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
            .open(bundle_dir.join(source))
            .ok(),
        None => open_in_root(rootfs, "etc/resolv.conf"),
    };
    file.filter(|f| f.metadata().is_ok_and(|m| m.is_file()))
}

/// The text of an open resolv.conf from its start, up to `MAX_RESOLV_CONF` bytes.
pub(crate) fn read_resolv_conf(file: &std::fs::File) -> Option<String> {
    let mut bytes = vec![0u8; MAX_RESOLV_CONF as usize];
    let mut len = 0;
    while len < bytes.len() {
        match std::os::unix::fs::FileExt::read_at(file, &mut bytes[len..], len as u64) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    bytes.truncate(len);
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// `path` under `rootfs`, resolved with no symlink at all (none of the
/// image's can lead the host anywhere).
fn open_in_root(rootfs: &Path, path: &str) -> Option<std::fs::File> {
    let root = std::fs::File::open(rootfs).ok()?;
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOCTTY | OFlag::O_NONBLOCK)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_SYMLINKS | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = nix::fcntl::openat2(std::os::fd::AsRawFd::as_raw_fd(&root), path, how).ok()?;
    // The fd openat2 just returned is ours alone.
    Some(std::fs::File::from(host::sys::take_inherited_fd(fd).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(json: &str) -> Result<PolicyRules, EgressError> {
        PolicyRules::parse(json.as_bytes(), "/etc/moat/p.json")
    }

    fn error(json: &str) -> String {
        rules(json).expect_err(json).to_string()
    }

    #[test]
    fn a_policy_file_takes_rule_strings_and_objects() {
        let p = rules(
            r#"{"default": "deny",
                "allow": ["10.0.0.0/8", "192.0.2.7:443,8000-8100", "[2001:db8::/32]:53", "example.com",
                          "*.example.com:80,443",
                          {"to": "198.51.100.0/24", "ports": "53", "protocols": ["udp", "tcp"]},
                          {"to": "2001:db8::1", "ports": 443},
                          {"to": "api.test"}],
                "deny": ["10.9.0.0/16"]}"#,
        )
        .unwrap();
        assert_eq!(p.default, Some(Verdict::Deny));
        let shown: Vec<String> = p.allow.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "10.0.0.0/8",
                "192.0.2.7:443,8000-8100",
                "[2001:db8::/32]:53",
                "example.com",
                "*.example.com:80,443",
                "198.51.100.0/24:53/udp,tcp",
                "[2001:db8::1]:443",
                "api.test"
            ]
        );
        assert_eq!(p.deny, [Rule::parse("10.9.0.0/16").unwrap()]);
        let policy = p.policy(Verdict::Allow);
        assert_eq!(policy.default, Verdict::Deny, "the file's default wins over the one given elsewhere");
        assert_eq!(rules("{}").unwrap().policy(Verdict::Allow).default, Verdict::Allow);
    }

    #[test]
    fn the_normalized_document_checks_back_to_the_same_rules() {
        let p = rules(
            r#"{"allow": ["*.Example.COM.:443", {"to": "198.51.100.0/24", "ports": "53,1-2", "protocols": ["udp"]},
                          {"to": "2001:db8::/32", "protocols": ["icmp"]}], "deny": ["192.0.2.1"]}"#,
        )
        .unwrap();
        let wire = serde_json::to_vec(&p.to_json()).unwrap();
        assert_eq!(PolicyRules::parse(&wire, "wire").unwrap(), p);
        assert!(!String::from_utf8(wire).unwrap().contains("default"), "no default: none is sent");
    }

    #[test]
    fn bad_documents_name_the_file_the_rule_and_what_is_wrong() {
        let e = error(r#"{"default": "deny", "alow": []}"#);
        assert!(e.starts_with("egress policy /etc/moat/p.json: unknown field `alow`"), "{e}");
        let e = error(r#"{"default": "maybe"}"#);
        assert_eq!(e, r#"egress policy /etc/moat/p.json: default "maybe": give "allow" or "deny""#);
        let e = error(r#"{"allow": ["10.0.0.0/8", "10.0.0.0/33"]}"#);
        assert!(
            e.starts_with(r#"egress policy /etc/moat/p.json: allow rule 2: "10.0.0.0/33": the prefix length"#),
            "{e}"
        );
        let e = error(r#"{"deny": [{"to": "example.com", "port": "80"}]}"#);
        assert!(e.contains("deny rule 1: unknown key \"port\""), "{e}");
        let e = error(r#"{"allow": [{"to": "example.com", "protocols": ["sctp"]}]}"#);
        assert!(e.contains("allow rule 1: \"sctp\": the protocols are tcp, udp and icmp"), "{e}");
        let e = error(r#"{"allow": [{"to": "example.com:80"}]}"#);
        assert!(e.contains("has ports: give them in \"ports\""), "{e}");
        let e = error(r#"{"allow": [{"ports": "80"}]}"#);
        assert!(e.contains("\"to\" is missing"), "{e}");
        let e = error(r#"{"allow": [{"to": "x.test", "ports": "0"}]}"#);
        assert!(e.contains("ports are numbers 1-65535"), "{e}");
        let e = error(r#"{"allow": [42]}"#);
        assert!(e.contains("allow rule 1: a rule is a string"), "{e}");
        let e = error(r#"{"allow": "10.0.0.0/8"}"#);
        assert!(e.contains("invalid type: string"), "{e}");
        let e = error("{\"allow\": [\"10.0.0.0/8\",");
        assert!(e.contains("EOF while parsing"), "{e}");
    }

    #[test]
    fn documents_and_rule_counts_are_bounded() {
        let many: Vec<String> = (0..=MAX_RULES).map(|i| format!("\"10.{}.{}.0/24\"", i / 256, i % 256)).collect();
        let e = error(&format!("{{\"allow\": [{}]}}", many.join(",")));
        assert!(e.contains("10001 rules; at most 10000"), "{e}");
        let fits = format!("{{\"allow\": [{}]}}", many[1..].join(","));
        assert_eq!(rules(&fits).unwrap().len(), MAX_RULES);
        let big = format!("{{\"allow\": [\"a.test\"]{}}}", " ".repeat(MAX_FILE as usize));
        assert!(error(&big).contains("larger than 1 MiB"));
        let words = vec!["a.test"; MAX_RULES + 1].join(" ");
        assert!(parse_rule_list(&words, "annotation x", "allow").is_err());
    }

    #[test]
    fn files_are_read_bounded_and_only_if_regular() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.json");
        std::fs::write(&path, r#"{"allow": ["192.0.2.1:80"]}"#).unwrap();
        assert_eq!(PolicyRules::read(&path).unwrap().allow, [Rule::parse("192.0.2.1:80").unwrap()]);
        let e = PolicyRules::read(dir.path()).unwrap_err().to_string();
        assert!(e.ends_with("not a regular file"), "{e}");
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert!(PolicyRules::read(&fifo).unwrap_err().to_string().ends_with("not a regular file"));
        let e = PolicyRules::read(&dir.path().join("missing")).unwrap_err().to_string();
        assert!(e.starts_with(&format!("egress policy {}: cannot read it", dir.path().join("missing").display())));
        std::fs::write(&path, vec![b' '; MAX_FILE as usize + 1]).unwrap();
        assert!(PolicyRules::read(&path).unwrap_err().to_string().contains("larger than 1 MiB"));
    }

    fn annotations(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn annotations_win_over_the_global_file_which_wins_over_the_global_default() {
        let file = rules(r#"{"default": "deny", "allow": ["10.0.0.0/8"]}"#).unwrap();
        let none = annotations(&[("org.other", "x")]);
        assert_eq!(container_policy(&none, Verdict::Allow, None).unwrap(), Policy::allow_all());
        let p = container_policy(&none, Verdict::Allow, Some(&file)).unwrap();
        assert_eq!((p.default, p.allow.len()), (Verdict::Deny, 1));
        let a = annotations(&[(ANNOTATION_ALLOW, " a.test\n192.0.2.0/24:443 "), (ANNOTATION_DENY, "192.0.2.9")]);
        let p = container_policy(&a, Verdict::Allow, Some(&file)).unwrap();
        assert_eq!(p.default, Verdict::Deny, "the file's default, as the annotations give none");
        assert_eq!(p.allow, [Rule::parse("a.test").unwrap(), Rule::parse("192.0.2.0/24:443").unwrap()]);
        assert_eq!(p.deny, [Rule::parse("192.0.2.9").unwrap()]);
        let a = annotations(&[
            (ANNOTATION_DEFAULT, "allow"),
            (ANNOTATION_POLICY, r#"{"default": "deny", "allow": ["b.test"]}"#),
            (ANNOTATION_ALLOW, "c.test"),
        ]);
        let p = container_policy(&a, Verdict::Deny, Some(&file)).unwrap();
        assert_eq!(p.default, Verdict::Allow);
        assert_eq!(p.allow, [Rule::parse("b.test").unwrap(), Rule::parse("c.test").unwrap()]);
        let a = annotations(&[(ANNOTATION_POLICY, r#"{"default": "deny"}"#)]);
        assert_eq!(container_policy(&a, Verdict::Allow, Some(&file)).unwrap(), Policy::default());
    }

    #[test]
    fn bad_annotations_are_named() {
        let e = container_policy(&annotations(&[("dev.moat.egress.alow", "a.test")]), Verdict::Allow, None);
        assert!(e.unwrap_err().to_string().starts_with("annotation dev.moat.egress.alow: unknown"));
        let e = container_policy(&annotations(&[(ANNOTATION_DENY, "a.test b..test")]), Verdict::Allow, None);
        assert!(e.unwrap_err().to_string().starts_with("egress policy annotation dev.moat.egress.deny: deny rule 2:"));
        let e = container_policy(&annotations(&[(ANNOTATION_DEFAULT, "open")]), Verdict::Allow, None);
        assert!(e.unwrap_err().to_string().contains("default \"open\""));
        let e = container_policy(&annotations(&[(ANNOTATION_POLICY, "{")]), Verdict::Allow, None);
        assert!(e.unwrap_err().to_string().starts_with("egress policy annotation dev.moat.egress.policy: EOF"));
    }

    #[test]
    fn nameservers_skip_loopback_and_stop_at_three() {
        let conf = "# generated\nnameserver 127.0.0.53\nnameserver\t10.0.0.2 # office\nsearch x.test\n\
                    nameserver ::1\nnameserver fe80::1%eth0\nnameserver 2001:db8::53\nnameserver 0.0.0.0\n\
                    nameserver 192.0.2.53\nnameserver 192.0.2.54\n";
        let want: Vec<IpAddr> = ["10.0.0.2", "2001:db8::53", "192.0.2.53"].iter().map(|a| a.parse().unwrap()).collect();
        assert_eq!(nameservers(conf), want);
        let want: Vec<IpAddr> = ["127.0.0.53", "::1"].iter().map(|a| a.parse().unwrap()).collect();
        assert_eq!(loopback_nameservers(conf), want);
    }

    #[test]
    fn a_containers_resolvers_come_from_its_mount_else_its_root_without_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("rootfs");
        std::fs::create_dir_all(rootfs.join("etc")).unwrap();
        std::fs::write(rootfs.join("etc/resolv.conf"), "nameserver 192.0.2.1\n").unwrap();
        std::fs::write(dir.path().join("engine-resolv.conf"), "nameserver 192.0.2.2\n").unwrap();
        let spec_with = |mounts: serde_json::Value| -> Spec {
            serde_json::from_value(serde_json::json!({"ociVersion": "1.0.2", "mounts": mounts})).unwrap()
        };
        let plain = spec_with(serde_json::json!([]));
        assert_eq!(container_resolvers(&plain, dir.path(), &rootfs), [IpAddr::from([192, 0, 2, 1])]);
        let mounted = spec_with(serde_json::json!([{"destination": "/etc/resolv.conf", "type": "bind",
            "source": "engine-resolv.conf", "options": ["rbind", "ro"]}]));
        assert_eq!(container_resolvers(&mounted, dir.path(), &rootfs), [IpAddr::from([192, 0, 2, 2])]);
        // The image's file as a symlink to the host's: not followed.
        std::fs::remove_file(rootfs.join("etc/resolv.conf")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("engine-resolv.conf"), rootfs.join("etc/resolv.conf")).unwrap();
        assert!(container_resolvers(&plain, dir.path(), &rootfs).is_empty());
    }

    #[test]
    fn the_audit_log_is_created_private_and_appended_to() {
        use std::io::Write;
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        std::fs::File::from(open_audit_log(&path).unwrap()).write_all(b"one\n").unwrap();
        std::fs::File::from(open_audit_log(&path).unwrap()).write_all(b"two\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\ntwo\n");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let e = open_audit_log(&dir.path().join("no/such/dir")).unwrap_err().to_string();
        assert!(e.starts_with("--audit-log "), "{e}");
    }
}
