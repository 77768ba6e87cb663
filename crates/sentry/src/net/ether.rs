//! The sandbox's ethernet interfaces: the network namespace's links as the
//! runtime hands them over (`NetConfig`), each a smoltcp device over a packet socket.
//!
//! As runsc's `--network=sandbox`: the runtime, inside the container's network
//! namespace and before the Sentry's seccomp filter, reads each link's name,
//! MAC, MTU, addresses and routes, opens an AF_PACKET socket bound to it, and
//! takes its addresses away from the host kernel, so that this stack is the
//! only one answering on the link. The packet sockets are the only host
//! network handles the Sentry holds; it never opens one itself.
//!
//! A reader thread per interface blocks in read(2) on the socket, queues each
//! frame (at most `RX_QUEUE`; past it frames are dropped, as a NIC's ring
//! drops them) and polls the stack; frames go out with write(2).

use std::collections::{BTreeSet, VecDeque};
use std::fs::File;
use std::io::{Read, Write};
use std::net::IpAddr;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use smoltcp::phy::{Checksum, Device, DeviceCapabilities, Medium};

use super::Stack;

/// What the Sentry gets of the network namespace.
#[derive(Debug, Default)]
pub struct NetConfig {
    pub interfaces: Vec<NetInterface>,
    pub routes: Vec<NetRoute>,
    /// What may leave by the links, and where refusals are recorded.
    pub egress: super::EgressConfig,
}

/// One link of the namespace, other than `lo`.
#[derive(Debug)]
pub struct NetInterface {
    pub name: String,
    pub mac: [u8; 6],
    pub mtu: u32,
    /// Addresses with their prefix lengths.
    pub addrs: Vec<(IpAddr, u8)>,
    /// An AF_PACKET/SOCK_RAW socket bound to the link (ETH_P_ALL).
    pub packet_fd: OwnedFd,
}

/// A route of the namespace's main table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetRoute {
    pub dst: IpAddr,
    pub prefix: u8,
    /// None: on the link itself.
    pub gateway: Option<IpAddr>,
    /// The link's name.
    pub interface: String,
}

/// Frames received and not yet taken by the stack, at most this many.
const RX_QUEUE: usize = 512;
/// The largest frame read: a GSO frame the host did not segment may be up to
/// 64 KiB of IP plus its ethernet and VLAN headers.
const MAX_FRAME: usize = 65_536 + 18;
/// The most neighbours remembered as having answered (ARP or NDP).
const MAX_HEARD: usize = 256;

/// What the reader thread and the stack share.
#[derive(Debug, Default)]
pub(super) struct Frames {
    queue: Mutex<VecDeque<Vec<u8>>>,
    /// Addresses whose owners answered an ARP request or a neighbour
    /// solicitation: a connect whose next hop never did is EHOSTUNREACH.
    heard: Mutex<BTreeSet<IpAddr>>,
    /// Frames and bytes moved, for `--stats` and the interface's counters.
    pub(super) counters: Counters,
}

/// An interface's traffic: frames (and their bytes) received and sent, and
/// received frames dropped because the queue was full.
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub rx_packets: AtomicU64,
    pub rx_bytes: AtomicU64,
    pub tx_packets: AtomicU64,
    pub tx_bytes: AtomicU64,
    pub rx_dropped: AtomicU64,
}

impl Counters {
    fn count(packets: &AtomicU64, bytes: &AtomicU64, n: usize) {
        packets.fetch_add(1, Ordering::Relaxed);
        bytes.fetch_add(n as u64, Ordering::Relaxed);
    }
}

impl Frames {
    fn queue(&self) -> MutexGuard<'_, VecDeque<Vec<u8>>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `ip` answered a neighbour request.
    pub(super) fn heard(&self, ip: IpAddr) -> bool {
        self.heard.lock().unwrap_or_else(|e| e.into_inner()).contains(&ip)
    }

    /// Notes the sender of an ARP reply or the target of a neighbour advertisement.
    fn note_neighbor(&self, f: &[u8]) {
        let ethertype = u16::from_be_bytes([f[12], f[13]]);
        let ip = match ethertype {
            // ARP over ethernet/IPv4, op 2 (reply): the sender's address.
            0x0806 if f.len() >= 42 && f[20..22] == [0, 2] => {
                IpAddr::from(<[u8; 4]>::try_from(&f[28..32]).expect("four bytes"))
            }
            // IPv6, ICMPv6 (58), neighbour advertisement (136): its target.
            0x86dd if f.len() >= 14 + 40 + 24 && f[20] == 58 && f[54] == 136 => {
                IpAddr::from(<[u8; 16]>::try_from(&f[62..78]).expect("sixteen bytes"))
            }
            _ => return,
        };
        let mut heard = self.heard.lock().unwrap_or_else(|e| e.into_inner());
        if heard.len() >= MAX_HEARD {
            heard.clear();
        }
        heard.insert(ip);
    }
}

/// A smoltcp device over one packet socket.
#[derive(Debug)]
pub(super) struct PacketDevice {
    pub(super) frames: Arc<Frames>,
    out: Arc<File>,
    mtu: usize,
}

impl PacketDevice {
    pub(super) fn new(fd: OwnedFd, mtu: u32) -> PacketDevice {
        PacketDevice { frames: Arc::default(), out: Arc::new(File::from(fd)), mtu: mtu as usize }
    }

    /// Starts the thread that reads frames for `stack` until it is gone.
    pub(super) fn start_reader(&self, name: &str, stack: Weak<Stack>) -> std::io::Result<()> {
        let (file, frames) = (self.out.clone(), self.frames.clone());
        let thread = format!("moat-net-{name}");
        std::thread::Builder::new().name(thread).spawn(move || reader(&file, &frames, &stack)).map(drop)
    }
}

fn reader(file: &File, frames: &Frames, stack: &Weak<Stack>) {
    let mut buf = vec![0u8; MAX_FRAME];
    loop {
        let n = match (&*file).read(&mut buf) {
            // End of file: the link's other end is gone (a packet socket
            // never reads an empty frame). Reading again would return at
            // once, forever.
            Ok(0) => {
                tracing::warn!("the network interface's packet socket reached its end; it stops receiving");
                return;
            }
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read from the network interface; it stops receiving");
                return;
            }
        };
        let Some(stack) = stack.upgrade() else { return };
        // Shorter than an ethernet header: nothing a stack could take.
        if n < 14 {
            continue;
        }
        frames.note_neighbor(&buf[..n]);
        {
            let mut q = frames.queue();
            if q.len() >= RX_QUEUE {
                frames.counters.rx_dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            Counters::count(&frames.counters.rx_packets, &frames.counters.rx_bytes, n);
            q.push_back(buf[..n].to_vec());
        }
        stack.with(|_| ());
    }
}

#[derive(Debug)]
pub(super) struct Rx(Vec<u8>);

#[derive(Debug)]
pub(super) struct Tx<'a>(&'a File, &'a Counters);

impl smoltcp::phy::RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl smoltcp::phy::TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = vec![0u8; len];
        let r = f(&mut frame);
        // A frame the host does not take is lost, as on a wire: TCP resends.
        let mut out = self.0;
        if out.write(&frame).is_ok() {
            Counters::count(&self.1.tx_packets, &self.1.tx_bytes, len);
        }
        r
    }
}

impl Device for PacketDevice {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx<'a>;

    fn receive(&mut self, _now: smoltcp::time::Instant) -> Option<(Rx, Tx<'_>)> {
        let frame = self.frames.queue().pop_front()?;
        Some((Rx(frame), Tx(&self.out, &self.frames.counters)))
    }

    fn transmit(&mut self, _now: smoltcp::time::Instant) -> Option<Tx<'_>> {
        Some(Tx(&self.out, &self.frames.counters))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = self.mtu + 14;
        // TCP and UDP checksums of frames from the host's own stack (a veth
        // peer, a bridge) are left for hardware to fill in (CHECKSUM_PARTIAL)
        // and read as wrong here: they are not checked, as runsc does not on
        // such links. Ours are always computed; IP and ICMP ones always checked.
        caps.checksum.tcp = Checksum::Tx;
        caps.checksum.udp = Checksum::Tx;
        caps
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;
    use std::time::{Duration, Instant};

    /// The threads of this process named `name`.
    fn threads_named(name: &str) -> usize {
        let tasks = std::fs::read_dir("/proc/self/task").expect("read /proc/self/task");
        tasks
            .flatten()
            .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim_end() == name))
            .count()
    }

    /// A link whose other end hangs up: its reader thread ends instead of
    /// spinning on reads that return nothing, while the stack lives on.
    #[test]
    fn a_link_whose_peer_hangs_up_stops_its_reader() {
        let (ours, theirs) = UnixStream::pair().expect("socketpair");
        let link = NetInterface {
            name: "hup0".into(),
            mac: [2, 0, 0, 0, 0, 1],
            mtu: 1500,
            addrs: vec![(IpAddr::from([10, 9, 0, 2]), 24)],
            packet_fd: ours.into(),
        };
        let stack =
            Stack::with_network(NetConfig { interfaces: vec![link], routes: Vec::new(), egress: Default::default() })
                .expect("a stack");
        // Deadlines only bound the waits: the thread names itself as it
        // starts, and ends as soon as it reads the end.
        let wait_for = |count: usize, what: &str| {
            let deadline = Instant::now() + Duration::from_secs(30);
            while threads_named("moat-net-hup0") != count {
                assert!(Instant::now() < deadline, "{what}");
                std::thread::sleep(Duration::from_millis(10));
            }
        };
        wait_for(1, "the link's reader never started");
        drop(theirs);
        wait_for(0, "the link's reader still runs after its peer hung up");
        assert_eq!(stack.interfaces().len(), 2, "the stack lives on with lo and the link");
    }
}
