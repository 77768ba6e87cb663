//! Kernel parameters a spec sets (`linux.sysctl`), checked once at boot and
//! shown read-only under /proc/sys. Only the UTS names mean something to the
//! Sentry (kernel.hostname, kernel.domainname set them); every other key is
//! accepted and shown as given (net.* has no network stack to tune).

use std::collections::BTreeMap;

/// The longest UTS name (hostname, domainname), as Linux's __NEW_UTS_LEN.
pub const UTS_NAME_MAX: usize = 64;

/// A sysctl the Sentry cannot take. Each message names the key and what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SysctlError {
    /// A key that is not a dotted name of /proc/sys.
    #[error("sysctl {key:?} {why}; write keys as dotted names, e.g. net.ipv4.ip_unprivileged_port_start")]
    BadKey { key: String, why: &'static str },
    /// Two keys where one would be a directory holding the other.
    #[error("sysctls {outer:?} and {inner:?} clash: {outer:?} cannot be both a file of /proc/sys and the directory holding {inner:?}; drop one")]
    Clash { outer: String, inner: String },
    /// A UTS name longer than a UTS name can be.
    #[error("sysctl {key}: {len} bytes is longer than the {UTS_NAME_MAX} a UTS name holds; shorten it")]
    TooLong { key: String, len: usize },
}

/// The spec's sysctls, by dotted name, valid as paths under /proc/sys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sysctls {
    values: BTreeMap<String, String>,
}

impl Sysctls {
    /// Checks `pairs` (key, value): each key is a dotted name whose
    /// components are neither empty nor hold a `/`, and no key names a
    /// directory of another or of a file /proc/sys has anyway. A key given
    /// twice keeps its last value.
    pub fn parse(pairs: &[(String, String)]) -> Result<Sysctls, SysctlError> {
        Self::parse_with(pairs, &crate::taskfs::proc::sys_file_names())
    }

    /// `parse`, with `builtin` the dotted names of /proc/sys's own files.
    fn parse_with(pairs: &[(String, String)], builtin: &[&str]) -> Result<Sysctls, SysctlError> {
        let mut values = BTreeMap::new();
        for (key, value) in pairs {
            let bad = |why| Err(SysctlError::BadKey { key: key.clone(), why });
            if key.is_empty() {
                return bad("is empty");
            }
            if key.contains('/') {
                return bad("holds a '/'");
            }
            if key.contains('\0') {
                return bad("holds a NUL byte");
            }
            if key.split('.').any(str::is_empty) {
                return bad("has an empty component (a leading, trailing or doubled '.')");
            }
            if (key == "kernel.hostname" || key == "kernel.domainname") && value.len() > UTS_NAME_MAX {
                return Err(SysctlError::TooLong { key: key.clone(), len: value.len() });
            }
            values.insert(key.clone(), value.clone());
        }
        // One name inside another: in sorted order a key is followed by the
        // keys inside it, so neighbours are enough to compare.
        let mut all: Vec<Vec<&str>> = values.keys().map(|k| k.split('.').collect()).collect();
        all.extend(builtin.iter().map(|k| k.split('.').collect()));
        all.sort();
        all.dedup();
        for pair in all.windows(2) {
            if pair[1].starts_with(&pair[0]) {
                return Err(SysctlError::Clash { outer: pair[0].join("."), inner: pair[1].join(".") });
            }
        }
        Ok(Sysctls { values })
    }

    /// The value of `key` (dotted), if the spec set it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// Every (dotted key, value), sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)], builtin: &[&str]) -> Result<Sysctls, SysctlError> {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Sysctls::parse_with(&pairs, builtin)
    }

    #[test]
    fn dockers_defaults_are_taken() {
        let s = parse(
            &[("net.ipv4.ip_unprivileged_port_start", "0"), ("net.ipv4.ping_group_range", "0 2147483647")],
            &["net.core.somaxconn", "kernel.hostname"],
        )
        .unwrap();
        assert_eq!(s.get("net.ipv4.ping_group_range"), Some("0 2147483647"));
        assert_eq!(s.iter().count(), 2);
    }

    #[test]
    fn keys_that_are_not_paths_are_refused() {
        for key in ["", "net/ipv4/x", "net..x", ".net", "net.", "a.\0"] {
            assert!(matches!(parse(&[(key, "1")], &[]), Err(SysctlError::BadKey { .. })), "{key:?} must be refused");
        }
    }

    #[test]
    fn a_key_inside_a_file_is_refused() {
        assert!(matches!(parse(&[("kernel.hostname.x", "1")], &["kernel.hostname"]), Err(SysctlError::Clash { .. })));
        assert!(matches!(parse(&[("a.b", "1"), ("a.b.c", "2")], &[]), Err(SysctlError::Clash { .. })));
        assert!(matches!(parse(&[("kernel", "1")], &["kernel.hostname"]), Err(SysctlError::Clash { .. })));
        // The same name as a built-in file replaces its value; siblings are fine.
        assert!(parse(&[("kernel.hostname", "h"), ("a.b", "1"), ("a.bc", "2")], &["kernel.hostname"]).is_ok());
    }

    #[test]
    fn procs_own_files_are_the_builtins() {
        assert!(Sysctls::parse(&[("kernel.random".into(), "1".into())]).is_err());
        assert!(Sysctls::parse(&[("kernel.pid_max".into(), "99".into())]).is_ok());
    }

    #[test]
    fn uts_names_fit_a_uts_name() {
        let long = "x".repeat(UTS_NAME_MAX + 1);
        assert!(matches!(parse(&[("kernel.domainname", &long)], &[]), Err(SysctlError::TooLong { .. })));
    }
}
