//! The control socket of a sandbox: how `moat start`, `kill`, `exec`, `ps`
//! and `state` talk to the `moat boot` process of a container.
//!
//! One request per connection: the client sends one JSON line (with file
//! descriptors attached as `SCM_RIGHTS` for `exec`'s stdio), the server
//! answers one JSON line. An `exec` connection stays open and gets a second
//! line, the process's exit, when it ends.

use std::io::{BufRead, BufReader, IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use serde::{Deserialize, Serialize};

/// Longest request line accepted: a request is a few hundred bytes, but
/// an egress policy holds up to `egress::MAX_RULES` rules (a file of at most
/// 1 MiB, which its normalized form does not outgrow by more than its
/// rules' protocol lists).
const MAX_LINE: usize = 4 << 20;
/// Most fds one request may carry (stdin, stdout, stderr).
const MAX_FDS: usize = 3;

/// A request to a sandbox.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Run the container's process (once).
    Start,
    /// What the sandbox is doing.
    State,
    /// Send `signal` to sandbox process `pid` (init if none), or to all.
    Kill { signal: i32, all: bool, pid: Option<i32> },
    /// The sandbox's processes.
    Ps,
    /// Start a process in the running sandbox, with the three fds sent
    /// along as its stdin, stdout and stderr.
    Exec(ExecProcess),
    /// Replace the running sandbox's egress policy: connections made stay,
    /// new ones are judged by this one. Without a default of its own, the
    /// policy keeps the one the container started with.
    EgressPolicy { policy: crate::egress::PolicyJson },
    /// What the sandbox's network moved and refused.
    NetStats,
}

/// A process for `Request::Exec`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExecProcess {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    /// The process's capabilities; None: those the spec gives init.
    #[serde(default)]
    pub capabilities: Option<CapabilityMasks>,
    /// no_new_privs; None: as the spec sets it for init.
    #[serde(default)]
    pub no_new_privileges: Option<bool>,
}

/// Capability sets as bit masks, bit N for capability number N.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct CapabilityMasks {
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub bounding: u64,
    pub ambient: u64,
}

impl From<CapabilityMasks> for sentry::CapSets {
    fn from(m: CapabilityMasks) -> sentry::CapSets {
        sentry::CapSets {
            effective: m.effective,
            permitted: m.permitted,
            inheritable: m.inheritable,
            bounding: m.bounding,
            ambient: m.ambient,
        }
    }
}

/// What the sandbox is doing, as `Request::State` reports it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Waiting for `Start`.
    Created,
    Running,
    /// Init has exited; the sandbox is ending.
    Stopped,
}

/// One sandbox process, for `ps`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Process {
    pub pid: i32,
    pub ppid: i32,
    pub name: String,
    pub args: Vec<String>,
    /// The host process (a stub) that runs it, if any.
    #[serde(default)]
    pub host_pid: Option<i32>,
}

/// One link's traffic, in the names runc's `events --stats` gives
/// `network_interfaces` (the Sentry counts no errors and drops no sent frame).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct InterfaceStats {
    pub name: String,
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

/// A sandbox's answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    Ok,
    State {
        phase: Phase,
    },
    Processes {
        processes: Vec<Process>,
    },
    /// The network's counters: per link, and the stack's TCP connections
    /// made and taken and egress refusals.
    NetStats {
        interfaces: Vec<InterfaceStats>,
        tcp_connects: u64,
        tcp_accepts: u64,
        egress_refusals: u64,
    },
    /// An exec'd process runs with this sandbox pid.
    Started {
        pid: i32,
    },
    /// The exec'd process ended with this wait status.
    Exited {
        status: i32,
    },
    Error {
        message: String,
    },
    /// `start` could not start init (its program did not execute); the
    /// sandbox is ending.
    StartFailed {
        message: String,
    },
}

/// A control-socket exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The sandbox's socket could not be reached.
    #[error("cannot reach the sandbox at {path}: {source}; is the container still there?")]
    Connect { path: String, source: std::io::Error },
    /// Reading or writing the socket failed.
    #[error("control socket: {0}")]
    Io(#[from] std::io::Error),
    /// A message was not what the protocol says.
    #[error("control socket: bad message: {0}")]
    Protocol(String),
    /// The sandbox refused the request.
    #[error("{0}")]
    Refused(String),
    /// `start` could not start init, and the sandbox is ending.
    #[error("{0}")]
    StartFailed(String),
}

/// A client connection carrying one request.
#[derive(Debug)]
pub struct Connection {
    reader: BufReader<UnixStream>,
}

impl Connection {
    /// Sends `request` (with `fds`) to the sandbox listening at `path`.
    pub fn request(path: &Path, request: &Request, fds: &[RawFd]) -> Result<Connection, ControlError> {
        let stream = ShortPath::new(path)
            .and_then(|short| UnixStream::connect(short.path()))
            .map_err(|source| ControlError::Connect { path: path.display().to_string(), source })?;
        let mut line = serde_json::to_vec(request).map_err(|e| ControlError::Protocol(e.to_string()))?;
        line.push(b'\n');
        send_with_fds(&stream, &line, fds)?;
        Ok(Connection { reader: BufReader::new(stream) })
    }

    /// The next reply; a `Reply::Error` becomes `ControlError::Refused`, a
    /// `Reply::StartFailed` `ControlError::StartFailed`.
    pub fn reply(&mut self) -> Result<Reply, ControlError> {
        let mut line = String::new();
        let n = (&mut self.reader).take(MAX_LINE as u64).read_line(&mut line)?;
        if n == 0 {
            return Err(ControlError::Protocol("the sandbox closed the connection without a reply".into()));
        }
        match serde_json::from_str(&line).map_err(|e| ControlError::Protocol(e.to_string()))? {
            Reply::Error { message } => Err(ControlError::Refused(message)),
            Reply::StartFailed { message } => Err(ControlError::StartFailed(message)),
            reply => Ok(reply),
        }
    }
}

/// A socket path short enough for `sockaddr_un` (108 bytes): long paths
/// (Docker's state directories reach 111) are reached through an open fd
/// of their directory, `/proc/self/fd/N/NAME`.
#[derive(Debug)]
pub struct ShortPath {
    _dir: Option<std::fs::File>,
    path: std::path::PathBuf,
}

impl ShortPath {
    pub fn new(path: &Path) -> std::io::Result<ShortPath> {
        const SUN_PATH_MAX: usize = 107;
        if path.as_os_str().len() <= SUN_PATH_MAX {
            return Ok(ShortPath { _dir: None, path: path.to_owned() });
        }
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(std::io::Error::other("not a socket path"));
        };
        let dir = std::fs::File::open(dir)?;
        let short = Path::new("/proc/self/fd").join(dir.as_raw_fd().to_string()).join(name);
        Ok(ShortPath { _dir: Some(dir), path: short })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// How long a one-reply exchange may take: a sandbox that does not answer
/// in this time (stuck, or frozen) is reported, not waited for forever.
const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Replaces the egress policy of the sandbox listening at `path` with
/// `rules` (checked again by the sandbox, which trusts no client).
pub fn replace_egress_policy(path: &Path, rules: &crate::egress::PolicyRules) -> Result<(), ControlError> {
    match call(path, &Request::EgressPolicy { policy: rules.to_json() })? {
        Reply::Ok => Ok(()),
        reply => Err(ControlError::Protocol(format!("unexpected reply to an egress policy: {reply:?}"))),
    }
}

/// One request, for a one-reply exchange.
pub fn call(path: &Path, request: &Request) -> Result<Reply, ControlError> {
    call_within(path, request, CALL_TIMEOUT)
}

/// One request, for a one-reply exchange that fails (with `Io`, timed out)
/// if the sandbox has not answered within `timeout`.
pub fn call_within(path: &Path, request: &Request, timeout: std::time::Duration) -> Result<Reply, ControlError> {
    let mut connection = Connection::request(path, request, &[])?;
    connection.reader.get_ref().set_read_timeout(Some(timeout))?;
    connection.reply()
}

fn send_with_fds(stream: &UnixStream, data: &[u8], fds: &[RawFd]) -> Result<(), ControlError> {
    let iov = [IoSlice::new(data)];
    let cmsg = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage<'_>] = if fds.is_empty() { &[] } else { &cmsg };
    let sent = sendmsg::<()>(stream.as_raw_fd(), &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None)
        .map_err(|e| ControlError::Io(e.into()))?;
    if sent < data.len() {
        (&mut &*stream).write_all(&data[sent..])?;
    }
    Ok(())
}

/// The server side of one connection: the request and the fds it carried.
#[derive(Debug)]
pub struct Incoming {
    pub request: Request,
    pub fds: Vec<OwnedFd>,
    stream: UnixStream,
}

impl Incoming {
    /// Reads one request from an accepted connection.
    pub fn read(stream: UnixStream) -> Result<Incoming, ControlError> {
        let mut line = Vec::new();
        let mut fds = Vec::new();
        let mut chunk = [0u8; 4096];
        // The fds ride on the first segment; later reads only finish the line.
        while !line.ends_with(b"\n") {
            if line.len() > MAX_LINE {
                return Err(ControlError::Protocol("request too long".into()));
            }
            let mut cmsg_space = nix::cmsg_space!([RawFd; MAX_FDS]);
            let mut iov = [IoSliceMut::new(&mut chunk)];
            let msg = recvmsg::<()>(stream.as_raw_fd(), &mut iov, Some(&mut cmsg_space), MsgFlags::MSG_CMSG_CLOEXEC)
                .map_err(|e| ControlError::Io(e.into()))?;
            for c in msg.cmsgs().map_err(|e| ControlError::Io(e.into()))? {
                if let ControlMessageOwned::ScmRights(received) = c {
                    for fd in received {
                        // The kernel just installed `fd` for us: ours to own
                        // (and, past the most a request carries, to close).
                        let fd = host::sys::take_inherited_fd(fd)?;
                        if fds.len() < MAX_FDS {
                            fds.push(fd);
                        }
                    }
                }
            }
            let n = msg.bytes;
            if n == 0 {
                return Err(ControlError::Protocol("the client closed the connection mid-request".into()));
            }
            line.extend_from_slice(&chunk[..n]);
        }
        let request = serde_json::from_slice(&line).map_err(|e| ControlError::Protocol(e.to_string()))?;
        Ok(Incoming { request, fds, stream })
    }

    /// Another handle on the connection, to see the client hang up.
    pub fn try_clone_stream(&self) -> std::io::Result<UnixStream> {
        self.stream.try_clone()
    }

    /// Sends a reply; the connection stays open for another (exec's exit).
    pub fn answer(&mut self, reply: &Reply) -> Result<(), ControlError> {
        let mut line = serde_json::to_vec(reply).map_err(|e| ControlError::Protocol(e.to_string()))?;
        line.push(b'\n');
        self.stream.write_all(&line)?;
        Ok(())
    }
}
