//! `moat do --network sandbox`: a network namespace of the sandbox's own,
//! joined to the host by a veth pair with NAT, and the egress policy on it.
//!
//! The outer `moat do` (root, in the host's namespaces) checks the policy and
//! opens the audit log before anything is made, then gives the inner one (pid
//! 1 of the sandbox's PID namespace) one end of a socket pair. The inner one
//! makes a network namespace and sends it back over that socket; the outer
//! one makes the veth pair with its peer, `eth0`, straight in that namespace
//! (so the pair lives and dies with it), picks a /30 of 100.64.0.0/10 (RFC
//! 6598) no host interface uses, gives the host end `moat-HEX` the first
//! address, sets forwarding on that one link only and masquerades the /30 in
//! an nftables table of its own, `moat-do-HEX` (see `nat`). It answers with
//! the sandbox's address, gateway, name, resolvers and policy (and the audit
//! log's fd); the inner one addresses `eth0` and hands it to the Sentry
//! (`sandbox::network::take_over`).
//!
//! On SIGUSR1 the outer `moat do` reads its `--egress-policy` file again, adds
//! the `--allow` rules and sends the policy over the same socket; a thread of
//! the inner one, started before the Sentry's seccomp filter and doing
//! nothing but read(2) on that socket (and the stack's own work), applies it.
//!
//! What is made goes when `moat do` ends: the outer one deletes the veth
//! (which takes the sandbox's end with it) and closes the socket that owns
//! the NAT table, which removes it. Killed with SIGKILL, it leaves nothing
//! either: the inner one dies with it (PR_SET_PDEATHSIG), its namespace and
//! veth pair with that, and the kernel removes the table whose socket closed.

use std::io::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::{mpsc, Arc, Mutex};

use nix::sys::signal::{SigSet, Signal};
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use sentry::net::{EgressConfig, NetConfig};
use sentry::Sandbox;
use serde::{Deserialize, Serialize};

use super::nat::Nat;
use super::{DoConfig, DoError};
use crate::egress::{self, EgressError, Policy, PolicyJson, PolicyRules, Rule, Verdict};
use crate::sandbox::network::{take_over, Links, NetworkError};

/// How the sandbox of `moat do` reaches the network.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum NetworkMode {
    /// Loopback only, inside the Sentry.
    #[default]
    None,
    /// A network namespace with a veth pair and NAT to the host, its link
    /// driven by the Sentry's own stack under the egress policy.
    Sandbox,
}

/// `moat do`'s egress flags.
#[derive(Debug, Clone, Default)]
pub struct DoEgress {
    /// `--egress-default`: what no rule covers (deny if not given).
    pub default: Option<Verdict>,
    /// `--egress-policy FILE`, read at start and again on SIGUSR1.
    pub policy_file: Option<PathBuf>,
    /// `--allow RULE`s, added to the file's allow rules.
    pub allow: Vec<Rule>,
    /// `--dns ADDR`s: the resolvers the sandbox's DNS forwards allowed names
    /// to (default: the host's /etc/resolv.conf's, loopback ones left out).
    pub dns: Vec<IpAddr>,
    /// `--audit-log FILE` (default: stderr).
    pub audit_log: Option<PathBuf>,
}

impl DoEgress {
    /// Whether any egress flag is given.
    pub fn any(&self) -> bool {
        self.default.is_some()
            || self.policy_file.is_some()
            || !self.allow.is_empty()
            || !self.dns.is_empty()
            || self.audit_log.is_some()
    }

    /// The policy as the flags say it now: the file's rules (read again on
    /// each call) with the `--allow` rules added; the file's default, else
    /// `--egress-default`, else deny.
    pub fn policy(&self) -> Result<Policy, EgressError> {
        let mut rules = match &self.policy_file {
            Some(path) => PolicyRules::read(path)?,
            None => PolicyRules::default(),
        };
        rules.allow.extend(self.allow.iter().cloned());
        if rules.len() > egress::MAX_RULES {
            let origin = "--egress-policy and --allow".to_owned();
            return Err(EgressError::TooManyRules { origin, count: rules.len() });
        }
        Ok(rules.policy(self.default.unwrap_or(Verdict::Deny)))
    }
}

/// The sandbox's /30: the host end has the first address, the sandbox the second.
const PREFIX: u8 = 30;
/// RFC 6598's shared address space, which no one routes on the internet.
const SHARED_SPACE: (Ipv4Addr, u8) = (Ipv4Addr::new(100, 64, 0, 0), 10);
/// Tries at a free name and /30 before giving up.
const ATTEMPTS: usize = 8;
/// The sandbox's end of the pair, in its namespace.
const SANDBOX_LINK: &str = "eth0";
/// The longest message between the two `moat do`s: a policy of
/// `MAX_RULES` rules, re-encoded, fits several times over.
const MAX_FRAME: usize = 16 << 20;

/// What the outer `moat do` tells the inner one.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Message {
    /// The veth pair is there: `eth0`'s address and gateway, and the egress
    /// configuration (the audit log's fd rides along if `audit`).
    Ready {
        address: Ipv4Addr,
        gateway: Ipv4Addr,
        sandbox: String,
        resolvers: Vec<IpAddr>,
        policy: PolicyJson,
        audit: bool,
    },
    /// The network could not be made; the sandbox must not start.
    Failed { message: String },
    /// A new policy, to replace the running one.
    Policy { policy: PolicyJson },
}

/// The normalized document for `policy`, default included.
fn policy_json(policy: &Policy) -> PolicyJson {
    PolicyRules { default: Some(policy.default), allow: policy.allow.clone(), deny: policy.deny.clone() }.to_json()
}

/// The outer `moat do`'s side: what it made, and the socket to the inner one.
#[derive(Debug)]
pub(super) struct Network {
    channel: Arc<UnixStream>,
    /// The inner `moat do`'s end, which it inherits.
    inner_end: OwnedFd,
    made: Arc<Mutex<Made>>,
    ready: Option<Ready>,
}

/// What the outer `moat do` made, under a lock that setup holds while it
/// makes things and teardown takes once to remove them.
#[derive(Debug, Default)]
struct Made {
    /// Set by teardown: nothing more may be made.
    finished: bool,
    /// The host end of the veth pair.
    veth: Option<String>,
    nat: Option<Nat>,
}

/// What the inner `moat do` is told once its link is there.
#[derive(Debug)]
struct Ready {
    sandbox: String,
    resolvers: Vec<IpAddr>,
    policy: Policy,
    audit: Option<OwnedFd>,
}

impl Network {
    /// Checks the policy and opens the audit log (so that a mistake in
    /// either fails before anything is made), and blocks SIGUSR1, which
    /// from now on asks for the policy to be read again.
    pub(super) fn prepare(c: &DoConfig) -> Result<Network, DoError> {
        let policy = c.egress.policy()?;
        let audit = c.egress.audit_log.as_deref().map(egress::open_audit_log).transpose()?;
        let resolvers = if c.egress.dns.is_empty() { egress::host_resolvers() } else { c.egress.dns.clone() };
        let (outer, inner) = UnixStream::pair().map_err(DoError::NetworkChannel)?;
        let inner = OwnedFd::from(inner);
        host::sys::set_cloexec(inner.as_fd(), false).map_err(DoError::NetworkChannel)?;
        SigSet::from(Signal::SIGUSR1).thread_block().map_err(DoError::BlockSignals)?;
        let sandbox = format!("do-{}", std::process::id());
        Ok(Network {
            channel: Arc::new(outer),
            inner_end: inner,
            made: Arc::default(),
            ready: Some(Ready { sandbox, resolvers, policy, audit }),
        })
    }

    /// The fd the inner `moat do` inherits.
    pub(super) fn inner_fd(&self) -> RawFd {
        self.inner_end.as_raw_fd()
    }

    /// Starts the thread that makes the network once the inner `moat do`
    /// sends its namespace, then sends it the policy again on each SIGUSR1.
    pub(super) fn start(&mut self, flags: DoEgress) {
        let (channel, made) = (Arc::clone(&self.channel), Arc::clone(&self.made));
        let Some(ready) = self.ready.take() else { return };
        let spawned = std::thread::Builder::new()
            .name("moat-do-network".into())
            .spawn(move || serve_inner(&channel, &made, ready, &flags));
        if spawned.is_err() {
            // The inner moat do then reads the end of the socket and fails.
            let _ = self.channel.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Removes what was made. Called once the inner `moat do` has ended.
    pub(super) fn finish(self) {
        // Wakes the thread if it still waits for the inner moat do.
        let _ = self.channel.shutdown(std::net::Shutdown::Both);
        let mut made = self.made.lock().unwrap_or_else(|e| e.into_inner());
        made.finished = true;
        if let Some(name) = made.veth.take() {
            let deleted = Links::open().and_then(|links| match links.index(&name)? {
                Some(index) => links.delete(index, &name),
                // Gone with the sandbox's namespace already.
                None => Ok(()),
            });
            if let Err(e) = deleted {
                eprintln!("moat: cannot remove the sandbox's veth {name}: {e}");
            }
        }
        // Closing its owner socket removes the table.
        made.nat.take();
    }
}

/// The outer `moat do`'s thread: makes the network for the inner one, then
/// forwards policies on SIGUSR1 until the inner one is gone.
fn serve_inner(channel: &UnixStream, made: &Mutex<Made>, ready: Ready, flags: &DoEgress) {
    // End of file: the inner moat do ended (or teardown began) first.
    let Ok(Some(netns)) = receive_fd(channel) else { return };
    let addresses = {
        let mut made = made.lock().unwrap_or_else(|e| e.into_inner());
        if made.finished {
            return;
        }
        make(&mut made, netns.as_fd())
    };
    drop(netns);
    let message = match addresses {
        Ok((gateway, address)) => Message::Ready {
            address,
            gateway,
            sandbox: ready.sandbox,
            resolvers: ready.resolvers,
            policy: policy_json(&ready.policy),
            audit: ready.audit.is_some(),
        },
        Err(e) => {
            let _ = send(channel, &Message::Failed { message: e }, None);
            return;
        }
    };
    if send(channel, &message, ready.audit.as_ref().map(AsFd::as_fd)).is_err() {
        return;
    }
    drop(ready.audit);
    let usr1 = SigSet::from(Signal::SIGUSR1);
    while usr1.wait().is_ok() {
        match flags.policy() {
            Ok(policy) => {
                if send(channel, &Message::Policy { policy: policy_json(&policy) }, None).is_err() {
                    return;
                }
            }
            Err(e) => {
                let _ = writeln!(io::stderr(), "moat: SIGUSR1: the egress policy stays as it was: {e}");
            }
        }
    }
}

/// Makes the veth pair into `netns`, its /30 and the NAT; returns the host
/// end's address (the sandbox's gateway) and the sandbox's. Records what it
/// makes in `made` as it goes, so that teardown removes it even if a later
/// step fails.
fn make(made: &mut Made, netns: BorrowedFd<'_>) -> Result<(Ipv4Addr, Ipv4Addr), String> {
    let links = Links::open().map_err(|e| e.to_string())?;
    for _ in 0..ATTEMPTS {
        let hex = random_u32();
        let name = format!("moat-{hex:08x}");
        let taken = links.ipv4_addresses().map_err(|e| e.to_string())?;
        let Some(net) = free_net(&taken) else {
            return Err(format!(
                "no /{PREFIX} of {}/{} is free of the host's addresses for the sandbox's link",
                SHARED_SPACE.0, SHARED_SPACE.1
            ));
        };
        match links.add_veth(&name, SANDBOX_LINK, netns) {
            Ok(()) => made.veth = Some(name.clone()),
            // Another moat do's name: pick again.
            Err(NetworkError::Setup { source: nix::errno::Errno::EEXIST, .. }) => continue,
            Err(e) => return Err(e.to_string()),
        }
        let index = links.index(&name).map_err(|e| e.to_string())?.ok_or_else(|| format!("{name} vanished"))?;
        let (gateway, address) = (host_of(net, 1), host_of(net, 2));
        links.add_address(index, &name, gateway, PREFIX).map_err(|e| e.to_string())?;
        // Another moat do may have picked the same /30 meanwhile: the one
        // that sees the other gives it up and picks again.
        let now = links.ipv4_addresses().map_err(|e| e.to_string())?;
        if now.iter().any(|&(i, a, p)| i != index && overlaps((a, p), (net, PREFIX))) {
            links.delete(index, &name).map_err(|e| e.to_string())?;
            made.veth = None;
            continue;
        }
        // Forwarding on this link alone: what the sandbox sends may then be
        // routed on; the host's other settings stay as they are.
        let sysctl = format!("/proc/sys/net/ipv4/conf/{name}/forwarding");
        std::fs::write(&sysctl, "1").map_err(|e| format!("cannot enable forwarding on {name} ({sysctl}): {e}"))?;
        links.set_up(index, &name).map_err(|e| e.to_string())?;
        made.nat = Some(Nat::masquerade(&format!("moat-do-{hex:08x}"), net, PREFIX).map_err(|e| e.to_string())?);
        return Ok((gateway, address));
    }
    Err(format!("no free veth name and /{PREFIX} found after {ATTEMPTS} tries"))
}

fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    if host::sys::getrandom(&mut b).is_err() {
        // Uniqueness is checked anyway; the pid and time only spread the tries.
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        return std::process::id().rotate_left(16) ^ nanos;
    }
    u32::from_ne_bytes(b)
}

/// A random /30 of the shared space that overlaps no address's network in
/// `taken`, if one is found in a few tries.
fn free_net(taken: &[(u32, Ipv4Addr, u8)]) -> Option<Ipv4Addr> {
    let base = u32::from(SHARED_SPACE.0);
    let count = 1u32 << (u32::from(PREFIX) - u32::from(SHARED_SPACE.1));
    (0..64)
        .map(|_| Ipv4Addr::from(base + (random_u32() % count) * 4))
        .find(|&net| !taken.iter().any(|&(_, addr, prefix)| overlaps((addr, prefix), (net, PREFIX))))
}

/// Whether two networks share an address.
fn overlaps((a, pa): (Ipv4Addr, u8), (b, pb): (Ipv4Addr, u8)) -> bool {
    let p = u32::from(pa.min(pb));
    let mask = if p == 0 { 0 } else { u32::MAX << (32 - p) };
    u32::from(a) & mask == u32::from(b) & mask
}

fn host_of(net: Ipv4Addr, n: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(net) + n)
}

/// The inner `moat do`'s side, once its link is the Sentry's: the socket
/// over which policies come, and what was read of it past the first message.
#[derive(Debug)]
pub(super) struct Updates {
    frames: Frames,
}

/// Makes the sandbox's network namespace and, with the outer `moat do`
/// over the inherited socket `fd`, its link; returns the Sentry's network
/// configuration and the socket policy updates come on.
pub(super) fn join(fd: RawFd) -> Result<(NetConfig, Updates), DoError> {
    let channel = UnixStream::from(host::sys::take_inherited_fd(fd).map_err(DoError::NetworkChannel)?);
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).map_err(DoError::NewNetwork)?;
    let netns = std::fs::File::open("/proc/self/ns/net").map_err(DoError::NetworkChannel)?;
    send_fd(&channel, netns.as_fd()).map_err(DoError::NetworkChannel)?;
    drop(netns);
    let mut frames = Frames { channel, buf: Vec::new() };
    let (message, audit) = frames.next(true).map_err(DoError::NetworkChannel)?;
    let (address, gateway, sandbox, resolvers, policy) = match message {
        Message::Ready { address, gateway, sandbox, resolvers, policy, audit: _ } => {
            (address, gateway, sandbox, resolvers, policy)
        }
        Message::Failed { message } => return Err(DoError::NetworkSetup(message)),
        Message::Policy { .. } => {
            return Err(DoError::NetworkChannel(io::Error::other("a policy came before the network was ready")))
        }
    };
    let links = Links::open()?;
    // IPv4 only (the NAT is): no link-local IPv6 address for the Sentry to take.
    let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{SANDBOX_LINK}/disable_ipv6"), "1");
    let index = links.index(SANDBOX_LINK)?.ok_or_else(|| DoError::NetworkSetup(format!("no {SANDBOX_LINK}")))?;
    links.set_up(index, SANDBOX_LINK)?;
    links.add_address(index, SANDBOX_LINK, address, PREFIX)?;
    links.add_default_route(index, gateway)?;
    let rules = PolicyRules::check(&policy, "sent by the outer moat do")?;
    let config =
        EgressConfig { policy: rules.policy(Verdict::Deny), audit, sandbox, resolvers, netns_resolvers: Vec::new() };
    Ok((take_over(config)?, Updates { frames }))
}

impl Updates {
    /// Starts the thread that applies the policies the outer `moat do`
    /// sends to the sandbox it is then given. It holds no capability, and
    /// is running before this returns: once the Sentry's seccomp filter is
    /// on, it makes only read(2) and the stack's own calls.
    pub(super) fn start(mut self) -> Result<mpsc::Sender<Arc<Sandbox>>, DoError> {
        let (sandbox_tx, sandbox_rx) = mpsc::channel::<Arc<Sandbox>>();
        let (dropped_tx, dropped_rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("moat-egress".into())
            .spawn(move || {
                let dropped = host::sys::drop_thread_capabilities();
                let failed = dropped.is_err();
                let _ = dropped_tx.send(dropped);
                if failed {
                    return;
                }
                let Ok(sandbox) = sandbox_rx.recv() else { return };
                while let Ok((message, _)) = self.frames.next(false) {
                    let Message::Policy { policy } = message else { continue };
                    match PolicyRules::check(&policy, "sent on SIGUSR1") {
                        Ok(rules) => sandbox.set_egress_policy(rules.policy(Verdict::Deny)),
                        Err(e) => {
                            let _ = writeln!(io::stderr(), "moat: the egress policy stays as it was: {e}");
                        }
                    }
                }
            })
            .map_err(DoError::NetworkChannel)?;
        match dropped_rx.recv() {
            Ok(Ok(())) => Ok(sandbox_tx),
            Ok(Err(e)) => Err(DoError::NetworkChannel(e)),
            Err(_) => Err(DoError::NetworkChannel(io::Error::other("the policy thread ended at once"))),
        }
    }
}

/// Length-prefixed JSON messages read from a stream socket, keeping what
/// was read past one message for the next.
#[derive(Debug)]
struct Frames {
    channel: UnixStream,
    buf: Vec<u8>,
}

impl Frames {
    /// The next message, and the fd that came with its first bytes if
    /// `with_fd` (read with recvmsg; otherwise only read(2)).
    fn next(&mut self, with_fd: bool) -> io::Result<(Message, Option<OwnedFd>)> {
        let mut fd = None;
        let mut chunk = vec![0u8; 64 << 10];
        loop {
            if let Some(len) = self.buf.get(..4).map(|l| u32::from_le_bytes(l.try_into().expect("four bytes")) as usize)
            {
                if len > MAX_FRAME {
                    return Err(io::Error::other(format!("a message of {len} bytes (at most {MAX_FRAME})")));
                }
                if self.buf.len() >= 4 + len {
                    let message = serde_json::from_slice(&self.buf[4..4 + len]).map_err(io::Error::other)?;
                    self.buf.drain(..4 + len);
                    return Ok((message, fd));
                }
            }
            let n = if with_fd && fd.is_none() {
                let (n, received) = recv_with_fd(&self.channel, &mut chunk)?;
                fd = received;
                n
            } else {
                host::sys::read(self.channel.as_fd(), &mut chunk)?
            };
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// Sends `message` as one frame, with `fd` on its first byte.
fn send(channel: &UnixStream, message: &Message, fd: Option<BorrowedFd<'_>>) -> io::Result<()> {
    let json = serde_json::to_vec(message).map_err(io::Error::other)?;
    let mut frame = (json.len() as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(&json);
    let fds = fd.map(|f| [f.as_raw_fd()]);
    let rights = fds.as_ref().map(|f| ControlMessage::ScmRights(f));
    let cmsgs: Vec<ControlMessage<'_>> = rights.into_iter().collect();
    let mut sent =
        sendmsg::<()>(channel.as_raw_fd(), &[io::IoSlice::new(&frame)], &cmsgs, MsgFlags::MSG_NOSIGNAL, None)?;
    while sent < frame.len() {
        sent += nix::sys::socket::send(channel.as_raw_fd(), &frame[sent..], MsgFlags::MSG_NOSIGNAL)?;
    }
    Ok(())
}

/// Sends one byte carrying `fd`.
fn send_fd(channel: &UnixStream, fd: BorrowedFd<'_>) -> io::Result<()> {
    let fds = [fd.as_raw_fd()];
    sendmsg::<()>(
        channel.as_raw_fd(),
        &[io::IoSlice::new(&[0])],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )?;
    Ok(())
}

/// The fd sent with one byte; None at end of file.
fn receive_fd(channel: &UnixStream) -> io::Result<Option<OwnedFd>> {
    let mut byte = [0u8; 1];
    match recv_with_fd(channel, &mut byte)? {
        (0, _) => Ok(None),
        (_, Some(fd)) => Ok(Some(fd)),
        (_, None) => Err(io::Error::other("the inner moat do sent no network namespace")),
    }
}

/// recvmsg into `buf`; the bytes read and the first fd that came with them.
fn recv_with_fd(channel: &UnixStream, buf: &mut [u8]) -> io::Result<(usize, Option<OwnedFd>)> {
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [io::IoSliceMut::new(buf)];
    let msg = recvmsg::<()>(channel.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)?;
    let mut first = None;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for fd in fds {
                // Just installed by the kernel for us: ours to own (or close).
                let fd = host::sys::take_inherited_fd(fd)?;
                first.get_or_insert(fd);
            }
        }
    }
    Ok((msg.bytes, first))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(a: [u8; 4], p: u8) -> (Ipv4Addr, u8) {
        (Ipv4Addr::from(a), p)
    }

    #[test]
    fn networks_overlap_when_the_shorter_prefix_covers_the_other() {
        assert!(overlaps(net([100, 64, 1, 6], 30), net([100, 64, 1, 4], 30)));
        assert!(!overlaps(net([100, 64, 1, 8], 30), net([100, 64, 1, 4], 30)));
        assert!(overlaps(net([100, 100, 0, 1], 10), net([100, 64, 1, 4], 30)), "a /10 on a host link covers all");
        assert!(overlaps(net([100, 64, 1, 5], 32), net([100, 64, 1, 4], 30)));
        assert!(!overlaps(net([192, 0, 2, 2], 24), net([100, 64, 1, 4], 30)));
    }

    #[test]
    fn the_net_is_a_slash_30_of_the_shared_space_that_no_host_address_is_in() {
        let host = [(2, Ipv4Addr::new(192, 0, 2, 2), 24), (1, Ipv4Addr::LOCALHOST, 8)];
        for _ in 0..100 {
            let n = free_net(&host).expect("a free /30");
            assert!(overlaps((n, PREFIX), SHARED_SPACE) && u32::from(n) % 4 == 0, "{n}");
        }
        assert_eq!(free_net(&[(3, Ipv4Addr::new(100, 64, 0, 1), 10)]), None);
    }

    #[test]
    fn the_flags_make_the_policy_and_the_file_is_read_each_time() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.json");
        std::fs::write(&file, r#"{"allow": ["192.0.2.1:80"], "deny": ["10.0.0.0/8"]}"#).unwrap();
        let mut flags = DoEgress {
            policy_file: Some(file.clone()),
            allow: vec![Rule::parse("a.test").unwrap()],
            ..DoEgress::default()
        };
        let p = flags.policy().unwrap();
        assert_eq!(p.default, Verdict::Deny, "moat do denies by default");
        assert_eq!(p.allow, [Rule::parse("192.0.2.1:80").unwrap(), Rule::parse("a.test").unwrap()]);
        assert_eq!(p.deny.len(), 1);
        flags.default = Some(Verdict::Allow);
        std::fs::write(&file, r#"{"allow": []}"#).unwrap();
        let p = flags.policy().unwrap();
        assert_eq!((p.default, p.allow.len(), p.deny.len()), (Verdict::Allow, 1, 0));
        std::fs::write(&file, r#"{"default": "deny", "allow": ["b.test"]}"#).unwrap();
        assert_eq!(flags.policy().unwrap().default, Verdict::Deny, "the file's default wins");
        std::fs::write(&file, "{").unwrap();
        assert!(flags.policy().unwrap_err().to_string().starts_with(&format!("egress policy {}", file.display())));
    }

    #[test]
    fn messages_cross_the_socket_whole_with_their_fd() {
        let (a, b) = UnixStream::pair().unwrap();
        let policy = Policy { allow: vec![Rule::parse("a.test:443").unwrap()], ..Policy::default() };
        let audit = tempfile::tempfile().unwrap();
        let ready = Message::Ready {
            address: Ipv4Addr::new(100, 64, 0, 2),
            gateway: Ipv4Addr::new(100, 64, 0, 1),
            sandbox: "do-1".into(),
            resolvers: vec![IpAddr::from([192, 0, 2, 53])],
            policy: policy_json(&policy),
            audit: true,
        };
        send(&a, &ready, Some(audit.as_fd())).unwrap();
        // A second message right behind the first, in the same read.
        send(&a, &Message::Policy { policy: policy_json(&Policy::allow_all()) }, None).unwrap();
        let mut frames = Frames { channel: b, buf: Vec::new() };
        let (first, fd) = frames.next(true).unwrap();
        assert!(fd.is_some(), "the audit fd came along");
        let Message::Ready { policy: sent, sandbox, .. } = first else { panic!("{first:?}") };
        assert_eq!(
            (PolicyRules::check(&sent, "t").unwrap().policy(Verdict::Allow), sandbox.as_str()),
            (policy, "do-1")
        );
        let (second, _) = frames.next(false).unwrap();
        let Message::Policy { policy: open } = second else { panic!("{second:?}") };
        assert_eq!(PolicyRules::check(&open, "t").unwrap().policy(Verdict::Deny), Policy::allow_all());
        drop(a);
        assert_eq!(frames.next(false).unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn an_oversized_frame_is_refused_before_it_is_read() {
        let (mut a, b) = UnixStream::pair().unwrap();
        a.write_all(&(MAX_FRAME as u32 + 1).to_le_bytes()).unwrap();
        let mut frames = Frames { channel: b, buf: Vec::new() };
        assert!(frames.next(false).unwrap_err().to_string().contains("at most"));
    }
}
