//! `moat do -- CMD ARGS...`: one command in a fresh sandbox, with no
//! bundle. The flags are parsed here; `runtime::do_command` does the rest.

use std::ffi::OsString;
use std::net::IpAddr;
use std::path::PathBuf;

use runtime::do_command::{parse_size, DoConfig, DoEgress, NetworkMode, Tmpfs, Volume};
use runtime::egress::{DefaultVerdict, Rule};
use runtime::subcommands::DoInPidNamespace;
use sentry::FileAccess;

use crate::commands::oci::Global;

#[derive(Debug, clap::Args)]
pub struct DoArgs {
    /// Directory to use as the root filesystem (default: the host's /).
    #[arg(long)]
    rootfs: Option<PathBuf>,
    /// How the root reaches the host: `exclusive` (writes stay in an
    /// in-memory overlay) or `shared` (writes reach the host directory).
    #[arg(long, value_enum, default_value = "exclusive")]
    file_access: Access,
    /// Most file data the exclusive root's overlay may hold (e.g. 512M, 2G);
    /// writes past it fail with ENOSPC.
    #[arg(long, value_parser = parse_size, default_value = "2G")]
    overlay_size: u64,
    /// Bind-mount host directory HOST at SANDBOX; writes reach the host.
    /// OPTIONS, comma-separated: `ro` (or `rw`), and `suid` to let the
    /// sandbox make set-user-ID and set-group-ID files there (stripped
    /// otherwise). May be repeated.
    #[arg(long = "volume", short = 'v', value_name = "HOST:SANDBOX[:OPTIONS]", value_parser = Volume::parse)]
    volumes: Vec<Volume>,
    /// Mount a fresh tmpfs at PATH, at most SIZE bytes (default 512M). May be repeated.
    #[arg(long = "tmpfs", value_name = "PATH[:SIZE]", value_parser = Tmpfs::parse)]
    tmpfs: Vec<Tmpfs>,
    /// Log every syscall the app makes, with arguments and result, to stderr.
    #[arg(long)]
    strace: bool,
    /// How app code runs and traps to the Sentry: ptrace, or systrap
    /// (seccomp traps handed over shared memory; faster). MOAT_PLATFORM sets
    /// the default.
    #[arg(long, value_name = "NAME", default_value = "ptrace", env = "MOAT_PLATFORM")]
    platform: sentry::PlatformKind,
    /// Print counters (Gofer round trips) on stderr when the sandbox ends.
    #[arg(long)]
    stats: bool,
    /// Set VAR to VALUE in the sandbox; `VAR` alone passes the caller's VAR
    /// on (if it is set). May be repeated.
    #[arg(long = "env", short = 'e', value_name = "VAR[=VALUE]")]
    env: Vec<OsString>,
    /// Read variables from FILE: `VAR=VALUE` lines (`VAR` alone passes the
    /// caller's on), `#` comments and blank lines. May be repeated.
    #[arg(long = "env-file", value_name = "FILE")]
    env_files: Vec<PathBuf>,
    /// Most memory the whole sandbox may use, with no swap (e.g. 512M, 4G;
    /// default: half of the host's RAM). Needs root.
    #[arg(long, value_name = "SIZE")]
    memory: Option<String>,
    /// Most tasks (processes and threads) the app may have (default 1024).
    /// Needs root.
    #[arg(long, value_name = "N")]
    pids: Option<String>,
    /// Most CPUs' worth of time the sandbox may use (e.g. 0.5, 1.5; default:
    /// no limit). Needs root.
    #[arg(long, value_name = "N")]
    cpus: Option<String>,
    /// `none`: loopback only. `sandbox` (needs root): a network namespace
    /// with a veth pair and NAT to the host, reached through the Sentry's
    /// own stack under the egress policy (default deny).
    #[arg(long, value_enum, default_value = "none")]
    network: NetworkMode,
    /// Allow traffic to RULE: an address, CIDR or domain name (`*.NAME` for
    /// its subdomains), optionally `:PORTS` (e.g. 10.0.0.0/8, 192.0.2.7:443,
    /// [2001:db8::/32]:53, example.com:80,443). May be repeated; added to
    /// --egress-policy's allow rules. With --network sandbox.
    #[arg(long = "allow", value_name = "RULE", value_parser = Rule::parse)]
    allow: Vec<Rule>,
    /// The egress policy file (JSON: {"default", "allow", "deny"}), read
    /// again on SIGUSR1 to replace the running sandbox's policy. With
    /// --network sandbox.
    #[arg(long, value_name = "FILE")]
    egress_policy: Option<PathBuf>,
    /// What happens to traffic no rule covers, unless the policy file says
    /// (default: deny). With --network sandbox.
    #[arg(long, value_enum, value_name = "allow|deny")]
    egress_default: Option<DefaultVerdict>,
    /// A resolver the sandbox's DNS asks for allowed names (default: the
    /// host's /etc/resolv.conf nameservers that are not loopback). May be
    /// repeated. With --network sandbox.
    #[arg(long = "dns", value_name = "ADDR")]
    dns: Vec<IpAddr>,
    /// Append refused connections here, one JSON line each (default:
    /// stderr). With --network sandbox.
    #[arg(long, value_name = "FILE")]
    audit_log: Option<PathBuf>,
    /// For the Sentry filter's tests: make a host call outside its allow-list.
    #[arg(long, hide = true)]
    selftest_forbidden_syscall: bool,
    #[command(flatten)]
    inner: DoInPidNamespace,
    /// The command and its arguments.
    #[arg(required = true, last = true)]
    cmd: Vec<OsString>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Access {
    Exclusive,
    Shared,
}

/// Runs `moat do`: the command's exit status, or 125 if moat could not run it.
pub fn run(global: &Global, a: DoArgs) -> i32 {
    if global.runtime.has_egress() {
        // They would be ignored: say where they go instead.
        eprintln!(
            "moat: --egress-default, --egress-policy and --audit-log before `do` are the OCI runtime's; \
             give moat do's own after `do`"
        );
        return 125;
    }
    let config = DoConfig {
        rootfs: a.rootfs,
        file_access: match a.file_access {
            Access::Exclusive => FileAccess::Exclusive,
            Access::Shared => FileAccess::Shared,
        },
        overlay_size: a.overlay_size,
        volumes: a.volumes,
        tmpfs: a.tmpfs,
        strace: a.strace,
        platform: a.platform,
        stats: a.stats,
        env: a.env,
        env_files: a.env_files,
        memory: a.memory,
        pids: a.pids,
        cpus: a.cpus,
        network: a.network,
        egress: DoEgress {
            default: a.egress_default.map(Into::into),
            policy_file: a.egress_policy,
            allow: a.allow,
            dns: a.dns,
            audit_log: a.audit_log,
        },
        selftest_forbidden_syscall: a.selftest_forbidden_syscall,
        inner: a.inner,
        cmd: a.cmd,
    };
    runtime::do_command::run(&config).unwrap_or_else(|e| {
        eprintln!("moat: {}", super::oci::one_line(&e.into()));
        125
    })
}
