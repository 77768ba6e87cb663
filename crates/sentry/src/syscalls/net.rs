//! Socket syscalls: socket, socketpair, bind, listen, accept, connect, the
//! send and recv families (with SCM_RIGHTS and SCM_CREDENTIALS), shutdown,
//! names and options, for AF_UNIX (fs/unix.rs) and, over the sandbox's own
//! loopback stack, AF_INET and AF_INET6 TCP and UDP (net/), and AF_NETLINK
//! route sockets (net/netlink.rs).

use std::mem::{offset_of, size_of};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use abi::flags::OpenFlags;
use abi::net::*;
use abi::time::{Timespec, Timeval};
use abi::{AsBytes, Errno, FromBytes};

use crate::auth::capability::{CAP_SETGID, CAP_SETUID, CAP_SYS_ADMIN};
use crate::fs::unix::{self, Address, Endpoint, PeerCred, Received, SockType, UnixSocket};
use crate::kernel::deliver::send_to_task;
use crate::kernel::signal::{SigInfo, SIGPIPE};
use crate::kernel::CurrentTask;
use crate::net::addr::{self as inet_addr, Family, Use};
use crate::net::netlink::{self, NetlinkSocket};
use crate::net::socket::{Connect, InetSocket, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP};
use crate::net::{Origin, Proto};
use crate::vfs::permission::{self, MAY_WRITE};
use crate::vfs::{Follow, NewNode, OpenFile};
use crate::waiter::WaitQueue;
use crate::SysResult;

use super::user_io::{UserBuf, UIO_MAXIOV};

/// The largest control buffer sendmsg accepts (Linux's optmem_max is of this order).
const MAX_CONTROL: usize = 65536;
const MMSGHDR_LEN: u64 = size_of::<MMsgHdr>() as u64;
const CMSGHDR_LEN: usize = size_of::<CmsgHdr>();

/// The open file behind `fd` and its socket endpoint (ENOTSOCK for other files).
fn socket_file(t: &CurrentTask, fd: i32) -> SysResult<(Arc<OpenFile>, Arc<Endpoint>)> {
    let f = t.tg().fds.lock().unwrap().get(fd)?;
    let ep = (*f.ops).as_any_ops().downcast_ref::<UnixSocket>().ok_or(errno!(ENOTSOCK))?.ep.clone();
    Ok((f, ep))
}

/// Whether the caller's descriptor table is at its RLIMIT_NOFILE (which the
/// app may have raised past the default).
fn table_full(t: &CurrentTask) -> bool {
    let fds = t.tg().fds.lock().unwrap();
    fds.fds().count() >= fds.limit as usize
}

/// Tells sandboxes sharing this process apart in the abstract namespace.
fn sandbox_id(t: &CurrentTask) -> usize {
    Arc::as_ptr(&t.k) as usize
}

/// What SO_PEERCRED shows of the calling task (effective ids, as Linux reports).
fn task_peer_cred(t: &CurrentTask) -> PeerCred {
    let c = t.tg().creds.lock().unwrap();
    PeerCred { ucred: Ucred { pid: t.pid(), uid: c.euid, gid: c.egid }, groups: c.groups.clone() }
}

/// The credentials a message carries by default (real ids, as Linux's scm does).
fn task_msg_cred(t: &CurrentTask) -> Ucred {
    let c = t.tg().creds.lock().unwrap();
    Ucred { pid: t.pid(), uid: c.uid, gid: c.gid }
}

fn task_owner(t: &CurrentTask) -> Ucred {
    let c = t.tg().creds.lock().unwrap();
    Ucred { pid: t.pid(), uid: c.euid, gid: c.egid }
}

/// Runs `op` until it stops returning EAGAIN, sleeping on `queues` unless the call is
/// non-blocking. A socket timeout turns into EAGAIN, and a signal then into EINTR
/// (a timed socket call is not restarted, as on Linux).
fn wait<T>(
    t: &CurrentTask,
    nonblock: bool,
    timeout: Option<Duration>,
    queues: &[&WaitQueue],
    mut op: impl FnMut() -> SysResult<T>,
) -> SysResult<T> {
    if nonblock {
        return op();
    }
    let deadline = timeout.and_then(|d| Instant::now().checked_add(d));
    match t.block_on(queues, deadline, op) {
        // The deadline passed (a connection's own ETIMEDOUT stays what it is).
        Err(e) if e == Errno::ETIMEDOUT && deadline.is_some_and(|d| Instant::now() >= d) => Err(errno!(EAGAIN)),
        Err(e) if e.as_restart() == Some(crate::Restart::Sys) && (timeout.is_some()) => Err(errno!(EINTR)),
        r => r,
    }
}

fn install(t: &CurrentTask, f: Arc<OpenFile>, cloexec: bool) -> SysResult<i32> {
    t.tg().fds.lock().unwrap().add(f, cloexec, 0)
}

/// A new open file description (O_RDWR) for an endpoint.
fn open_socket(ep: Arc<Endpoint>, nonblock: bool) -> Arc<OpenFile> {
    let flags = if nonblock { OpenFlags::O_RDWR | OpenFlags::O_NONBLOCK } else { OpenFlags::O_RDWR };
    OpenFile::new(UnixSocket::new(ep), None, flags.bits())
}

/// Validates socket(2)/socketpair(2) arguments: (type, non-blocking, close-on-exec).
fn socket_args(domain: i32, stype: i32, protocol: i32) -> SysResult<(SockType, bool, bool)> {
    let flags = stype & !SOCK_TYPE_MASK;
    if flags & !(SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
        return Err(errno!(EINVAL));
    }
    if !(0..AF_MAX).contains(&domain) {
        return Err(errno!(EAFNOSUPPORT));
    }
    if stype & SOCK_TYPE_MASK >= SOCK_MAX {
        return Err(errno!(EINVAL));
    }
    if domain != AF_UNIX {
        note_unsupported_family(domain);
        return Err(errno!(EAFNOSUPPORT));
    }
    if protocol != 0 && protocol != AF_UNIX {
        return Err(errno!(EPROTONOSUPPORT));
    }
    let kind = SockType::from_raw(stype & SOCK_TYPE_MASK)?;
    Ok((kind, flags & SOCK_NONBLOCK != 0, flags & SOCK_CLOEXEC != 0))
}

/// Logs, once per family, that a program asked for a family moat lacks.
fn note_unsupported_family(domain: i32) {
    static SEEN: AtomicU64 = AtomicU64::new(0);
    let bit = 1u64 << domain;
    if SEEN.fetch_or(bit, Ordering::Relaxed) & bit == 0 {
        let name = match domain {
            AF_INET => "AF_INET",
            AF_INET6 => "AF_INET6",
            AF_NETLINK => "AF_NETLINK",
            _ => "",
        };
        tracing::warn!(domain, name, "socket family not supported; returning EAFNOSUPPORT");
    }
}

pub fn sys_socket(t: &mut CurrentTask, domain: i32, stype: i32, protocol: i32) -> SysResult<u64> {
    if let Some(family) = Family::from_domain(domain) {
        let (proto, nonblock, cloexec) = inet_socket_args(t, family, stype, protocol)?;
        let stack = crate::net::stack_of(sandbox_id(t)).ok_or(errno!(EAFNOSUPPORT))?;
        let owner = task_owner(t);
        let s = InetSocket::new(stack, family, proto, (owner.uid, owner.gid));
        let flags = if nonblock { OpenFlags::O_RDWR | OpenFlags::O_NONBLOCK } else { OpenFlags::O_RDWR };
        return Ok(install(t, OpenFile::new(s, None, flags.bits()), cloexec)? as u64);
    }
    if domain == AF_NETLINK {
        return netlink_socket(t, stype, protocol);
    }
    let (kind, nonblock, cloexec) = socket_args(domain, stype, protocol)?;
    let ep = Endpoint::new(kind, task_owner(t));
    Ok(install(t, open_socket(ep, nonblock), cloexec)? as u64)
}

pub fn sys_socketpair(t: &mut CurrentTask, domain: i32, stype: i32, protocol: i32, sv: u64) -> SysResult<u64> {
    if let Some(family) = Family::from_domain(domain) {
        inet_socket_args(t, family, stype, protocol)?;
        return Err(errno!(EOPNOTSUPP));
    }
    if domain == AF_NETLINK {
        netlink::check_args(stype & SOCK_TYPE_MASK, protocol)?;
        return Err(errno!(EOPNOTSUPP));
    }
    let (kind, nonblock, cloexec) = socket_args(domain, stype, protocol)?;
    let (a, b) = Endpoint::pair(kind, &task_peer_cred(t), task_owner(t));
    let (fa, fb) = (open_socket(a, nonblock), open_socket(b, nonblock));
    let (x, y) = {
        let mut fds = t.tg().fds.lock().unwrap();
        let x = fds.add(fa, cloexec, 0)?;
        match fds.add(fb, cloexec, 0) {
            Ok(y) => (x, y),
            Err(e) => {
                let undone = fds.remove(x);
                drop(fds);
                drop(undone);
                return Err(e);
            }
        }
    };
    if let Err(e) = t.write_obj(sv, &[x, y]) {
        let undone = {
            let mut fds = t.tg().fds.lock().unwrap();
            (fds.remove(x), fds.remove(y))
        };
        drop(undone);
        return Err(e);
    }
    Ok(0)
}

/// Copies in a socket address of `len` bytes.
fn read_sockaddr(t: &CurrentTask, ptr: u64, len: u32) -> SysResult<Vec<u8>> {
    // `sizeof(struct sockaddr_storage)` bounds every address.
    if !(0..=SOCKADDR_STORAGE_LEN as i32).contains(&(len as i32)) {
        return Err(errno!(EINVAL));
    }
    t.read_vec(ptr, len as usize)
}

/// Copies in a sendmsg's msg_name: as copy_msghdr_from_user, a length past
/// `sizeof(struct sockaddr_storage)` is cut to it (a negative one is EINVAL).
fn read_msg_name(t: &CurrentTask, ptr: u64, len: u32) -> SysResult<Vec<u8>> {
    read_sockaddr(t, ptr, if len as i32 > SOCKADDR_STORAGE_LEN as i32 { SOCKADDR_STORAGE_LEN as u32 } else { len })
}

/// Copies out an address the way Linux's move_addr_to_user does: as much as fits,
/// and the full length into `*len_ptr`.
fn write_sockaddr(t: &CurrentTask, ptr: u64, len_ptr: u64, addr: &[u8]) -> SysResult<()> {
    let ulen = t.read_u32(len_ptr)? as i32;
    if ulen < 0 {
        return Err(errno!(EINVAL));
    }
    let n = (ulen as usize).min(addr.len());
    if n > 0 {
        t.write_mem(ptr, &addr[..n])?;
    }
    t.write_obj(len_ptr, &(addr.len() as u32))
}

fn sockaddr_of(addr: Option<Address>) -> Vec<u8> {
    addr.map_or_else(unix::unnamed_sockaddr, |a| a.to_sockaddr())
}

/// The socket bound to `addr`, which must be of type `kind`.
fn resolve(t: &CurrentTask, addr: &Address, kind: SockType) -> SysResult<Arc<Endpoint>> {
    let ep = match addr {
        Address::Path(path) => {
            let fs = t.tg().fs.lock().unwrap().clone();
            let who = t.creds();
            let d = t.k.vfs.walk_as(&who, &fs.root, &fs.cwd, path, Follow::Yes)?;
            // Connecting to (or sending to) a socket is writing to its node.
            permission::may(&who, &*d.inode, MAY_WRITE)?;
            let st = d.inode.stat()?;
            unix::find_path(st.dev, st.ino).ok_or(errno!(ECONNREFUSED))?
        }
        Address::Abstract(name) => unix::find_abstract(sandbox_id(t), name).ok_or(errno!(ECONNREFUSED))?,
    };
    if ep.kind != kind {
        return Err(errno!(EPROTOTYPE));
    }
    Ok(ep)
}

/// The directory a socket path would be created in and the new name; EADDRINUSE if
/// the name exists (Linux checks this before whether the socket is bound already).
fn socket_node_parent(t: &CurrentTask, path: &[u8]) -> SysResult<(Arc<crate::vfs::Dentry>, Vec<u8>)> {
    let fs = t.tg().fs.lock().unwrap().clone();
    let who = t.creds();
    let (dir, name) = t.k.vfs.walk_parent_as(&who, &fs.root, &fs.cwd, path)?;
    if name.is_empty() || name == b"." || name == b".." || t.k.vfs.step(&fs.root, &dir, &name).is_ok() {
        return Err(errno!(EADDRINUSE));
    }
    permission::may_change_entries(&who, &*dir.inode)?;
    Ok((dir, name))
}

/// Creates the filesystem node of a path-bound socket; its (st_dev, st_ino) names
/// the socket from then on.
///
/// The VFS has no socket node kind yet, so the node is an empty regular file (mode
/// 0777 & ~umask, like Linux's socket inodes): stat shows S_IFREG, not S_IFSOCK.
fn make_socket_node(t: &CurrentTask, path: &[u8]) -> SysResult<(u64, u64)> {
    let (dir, name) = socket_node_parent(t, path)?;
    let umask = t.tg().fs.lock().unwrap().umask;
    let inode = dir.inode.create(&name, NewNode::File { mode: 0o777 & !umask }).map_err(|e| {
        if e == Errno::EEXIST {
            errno!(EADDRINUSE)
        } else {
            e
        }
    })?;
    super::fs::own_new_file(&t.creds(), &*dir.inode, &*inode);
    let st = inode.stat()?;
    Ok((st.dev, st.ino))
}

pub fn sys_bind(t: &mut CurrentTask, fd: i32, addr: u64, len: u32) -> SysResult<u64> {
    if let Some((_f, s)) = inet_file(t, fd)? {
        let raw = read_sockaddr(t, addr, len)?;
        let inet_addr::Parsed::Addr(e) = inet_addr::parse(s.family, &raw, Use::Bind)? else {
            return Err(errno!(EAFNOSUPPORT));
        };
        s.bind(e, t.creds().has(CAP_NET_BIND_SERVICE))?;
        return Ok(0);
    }
    if let Some((_f, s)) = netlink_file(t, fd)? {
        s.bind(&read_sockaddr(t, addr, len)?)?;
        return Ok(0);
    }
    let (_f, ep) = socket_file(t, fd)?;
    let raw = read_sockaddr(t, addr, len)?;
    let sandbox = sandbox_id(t);
    match Address::parse(&raw)? {
        None => ep.autobind(sandbox, false)?,
        Some(a) => {
            if let Address::Path(path) = &a {
                socket_node_parent(t, path)?;
            }
            ep.bind(a, sandbox, |path| make_socket_node(t, path))?
        }
    }
    Ok(0)
}

pub fn sys_listen(t: &mut CurrentTask, fd: i32, backlog: i32) -> SysResult<u64> {
    if let Some((_f, s)) = inet_file(t, fd)? {
        s.listen(backlog)?;
        return Ok(0);
    }
    if netlink_file(t, fd)?.is_some() {
        return Err(errno!(EOPNOTSUPP));
    }
    let (_f, ep) = socket_file(t, fd)?;
    ep.listen(backlog, task_peer_cred(t))?;
    Ok(0)
}

pub fn sys_connect(t: &mut CurrentTask, fd: i32, addr: u64, len: u32) -> SysResult<u64> {
    if let Some((f, s)) = inet_file(t, fd)? {
        let raw = read_sockaddr(t, addr, len)?;
        let how = if s.proto.is_datagram() { Use::ConnectDgram } else { Use::Connect };
        let target = inet_addr::parse(s.family, &raw, how)?;
        let timeout = s.options().sndtimeo;
        let wait_done = |t: &CurrentTask| wait(t, false, timeout, &[&s.wq], || s.connect_result()).map(|_| 0);
        return match s.connect(target, f.nonblocking(), &origin(t)) {
            Ok(Connect::Done) => Ok(0),
            Ok(Connect::InProgress) if f.nonblocking() => Err(errno!(EINPROGRESS)),
            Ok(Connect::InProgress) => wait_done(t),
            Err(e) if e == Errno::EALREADY && !f.nonblocking() => wait_done(t),
            Err(e) => Err(e),
        };
    }
    if let Some((_f, s)) = netlink_file(t, fd)? {
        s.connect(&read_sockaddr(t, addr, len)?, t.creds().has(CAP_NET_ADMIN))?;
        return Ok(0);
    }
    let (f, ep) = socket_file(t, fd)?;
    let raw = read_sockaddr(t, addr, len)?;
    if ep.kind == SockType::Dgram && SaFamily::read_from_prefix(&raw) == Some(AF_UNSPEC as SaFamily) {
        ep.connect_dgram(None)?;
        return Ok(0);
    }
    let target = Address::parse(&raw)?.ok_or(errno!(EINVAL))?;
    if ep.options().passcred {
        ep.autobind(sandbox_id(t), true)?;
    }
    let target = resolve(t, &target, ep.kind)?;
    if ep.kind == SockType::Dgram {
        ep.connect_dgram(Some(&target))?;
        return Ok(0);
    }
    if let Err(e) = ep.begin_connect() {
        // Linux looks at the listener before at this socket's own state.
        return Err(if target.accepts_connections() { e } else { errno!(ECONNREFUSED) });
    }
    let cred = task_peer_cred(t);
    let timeout = ep.options().sndtimeo;
    let r = wait(t, f.nonblocking(), timeout, &[&target.wq], || ep.try_connect(&target, &cred));
    if r.is_err() {
        ep.abort_connect();
    }
    r.map(|_| 0)
}

pub fn sys_accept4(t: &mut CurrentTask, fd: i32, addr: u64, len_ptr: u64, flags: u32) -> SysResult<u64> {
    if flags as i32 & !(SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
        return Err(errno!(EINVAL));
    }
    if let Some((f, s)) = inet_file(t, fd)? {
        return inet_accept(t, &f, &s, addr, len_ptr, flags);
    }
    if netlink_file(t, fd)?.is_some() {
        return Err(errno!(EOPNOTSUPP));
    }
    let (f, ep) = socket_file(t, fd)?;
    // Fail before taking a connection off the queue that could not be handed out.
    if table_full(t) {
        return Err(errno!(EMFILE));
    }
    let timeout = ep.options().rcvtimeo;
    let conn = wait(t, f.nonblocking(), timeout, &[&ep.wq], || ep.accept())?;
    let peer_addr = conn.peer().and_then(|p| p.address());
    let file = open_socket(conn, flags as i32 & SOCK_NONBLOCK != 0);
    let newfd = install(t, file, flags as i32 & SOCK_CLOEXEC != 0)?;
    if addr != 0 {
        if let Err(e) = write_sockaddr(t, addr, len_ptr, &sockaddr_of(peer_addr)) {
            let undone = t.tg().fds.lock().unwrap().remove(newfd);
            drop(undone);
            return Err(e);
        }
    }
    Ok(newfd as u64)
}

pub fn sys_shutdown(t: &mut CurrentTask, fd: i32, how: i32) -> SysResult<u64> {
    if let Some((_f, s)) = inet_file(t, fd)? {
        s.shutdown(how)?;
        return Ok(0);
    }
    if netlink_file(t, fd)?.is_some() {
        return Err(errno!(EOPNOTSUPP));
    }
    let (_f, ep) = socket_file(t, fd)?;
    match how {
        0 => ep.shutdown(true, false),
        1 => ep.shutdown(false, true),
        2 => ep.shutdown(true, true),
        _ => return Err(errno!(EINVAL)),
    }
    Ok(0)
}

pub fn sys_getsockname(t: &mut CurrentTask, fd: i32, addr: u64, len_ptr: u64) -> SysResult<u64> {
    if let Some((_f, s)) = inet_file(t, fd)? {
        write_sockaddr(t, addr, len_ptr, &s.local_address())?;
        return Ok(0);
    }
    if let Some((_f, s)) = netlink_file(t, fd)? {
        write_sockaddr(t, addr, len_ptr, &s.local_address())?;
        return Ok(0);
    }
    let (_f, ep) = socket_file(t, fd)?;
    write_sockaddr(t, addr, len_ptr, &sockaddr_of(ep.address()))?;
    Ok(0)
}

pub fn sys_getpeername(t: &mut CurrentTask, fd: i32, addr: u64, len_ptr: u64) -> SysResult<u64> {
    if let Some((_f, s)) = inet_file(t, fd)? {
        write_sockaddr(t, addr, len_ptr, &s.peer_address()?)?;
        return Ok(0);
    }
    if let Some((_f, s)) = netlink_file(t, fd)? {
        write_sockaddr(t, addr, len_ptr, &s.peer_address())?;
        return Ok(0);
    }
    let (_f, ep) = socket_file(t, fd)?;
    let peer = ep.peer().ok_or(errno!(ENOTCONN))?;
    write_sockaddr(t, addr, len_ptr, &sockaddr_of(peer.address()))?;
    Ok(0)
}

/// Ancillary data a sender attached.
#[derive(Debug, Default)]
struct Control {
    rights: Vec<Arc<OpenFile>>,
    cred: Option<Ucred>,
}

/// Parses sendmsg's control buffer: SCM_RIGHTS (descriptors, resolved now) and
/// SCM_CREDENTIALS (checked against the sender's own ids).
fn parse_control(t: &CurrentTask, ptr: u64, len: usize) -> SysResult<Control> {
    let mut ctl = Control::default();
    if len == 0 {
        return Ok(ctl);
    }
    if len > MAX_CONTROL {
        return Err(errno!(ENOBUFS));
    }
    let buf = t.read_vec(ptr, len)?;
    let mut off = 0;
    while off + CMSGHDR_LEN <= len {
        let h = CmsgHdr::read_from_prefix(&buf[off..]).expect("the loop leaves room for a header");
        if h.len < CMSGHDR_LEN as u64 || h.len > (len - off) as u64 {
            return Err(errno!(EINVAL));
        }
        let cmsg_len = h.len as usize;
        let data = &buf[off + CMSGHDR_LEN..off + cmsg_len];
        if h.level == SOL_SOCKET {
            match h.kind {
                SCM_RIGHTS => {
                    let n = data.len() / 4;
                    if ctl.rights.len() + n > SCM_MAX_FD {
                        return Err(errno!(EINVAL));
                    }
                    let fds = t.tg().fds.lock().unwrap();
                    for c in data.chunks_exact(4) {
                        ctl.rights.push(fds.get(i32::read_from(c).expect("4 bytes"))?);
                    }
                }
                SCM_CREDENTIALS => {
                    let want = Ucred::read_from(data).ok_or(errno!(EINVAL))?;
                    check_creds(t, want)?;
                    ctl.cred = Some(want);
                }
                _ => return Err(errno!(EINVAL)),
            }
        }
        off += cmsg_align(cmsg_len);
    }
    Ok(ctl)
}

/// A sender may claim only its own pid and one of its own ids, unless it
/// holds CAP_SYS_ADMIN (any pid), CAP_SETUID (any uid) or CAP_SETGID (any gid).
fn check_creds(t: &CurrentTask, want: Ucred) -> SysResult<()> {
    let c = t.tg().creds.lock().unwrap();
    let pid_ok = want.pid == t.pid() || c.has(CAP_SYS_ADMIN);
    let uid_ok = [c.uid, c.euid, c.suid].contains(&want.uid) || c.has(CAP_SETUID);
    let gid_ok = [c.gid, c.egid, c.sgid].contains(&want.gid) || c.has(CAP_SETGID);
    if pid_ok && uid_ok && gid_ok {
        Ok(())
    } else {
        Err(errno!(EPERM))
    }
}

/// The shared body of send, sendto and sendmsg.
fn send_common(
    t: &CurrentTask,
    f: &OpenFile,
    ep: &Arc<Endpoint>,
    buf: &UserBuf,
    to: Option<Vec<u8>>,
    ctl: Control,
    flags: u32,
) -> SysResult<usize> {
    if flags & MSG_OOB != 0 {
        return Err(errno!(EOPNOTSUPP));
    }
    let nonblock = f.nonblocking() || flags & MSG_DONTWAIT != 0;
    let opts = ep.options();
    let cred = ctl.cred.unwrap_or_else(|| task_msg_cred(t));
    match ep.kind {
        SockType::Stream => {
            if to.is_some() {
                return Err(if ep.is_connected() { errno!(EISCONN) } else { errno!(EOPNOTSUPP) });
            }
            let mut rights = ctl.rights;
            let mut sent = 0;
            loop {
                let mut in_progress = sent > 0;
                let r = wait(t, nonblock, opts.sndtimeo, &[&ep.wq], || {
                    let r = ep
                        .send_stream(buf.len - sent, in_progress, &mut rights, cred, &mut |n| buf.copy_in(t, sent, n));
                    in_progress = true;
                    r
                });
                match r {
                    Ok(n) => {
                        sent += n;
                        if sent >= buf.len {
                            return Ok(sent);
                        }
                    }
                    Err(_) if sent > 0 => return Ok(sent),
                    Err(e) if e == Errno::EPIPE => {
                        if flags & MSG_NOSIGNAL == 0 {
                            send_to_task(&t.task, SigInfo::kernel(SIGPIPE));
                        }
                        return Err(errno!(EPIPE));
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        SockType::Dgram | SockType::SeqPacket => {
            // Seqpacket sockets are connected: an address is ignored, as on Linux.
            let target = match to {
                Some(raw) if ep.kind == SockType::Dgram => {
                    let addr = Address::parse(&raw)?.ok_or(errno!(EINVAL))?;
                    Some(resolve(t, &addr, ep.kind)?)
                }
                _ => None,
            };
            if opts.passcred {
                ep.autobind(sandbox_id(t), true)?;
            }
            if buf.len > ep.max_datagram() {
                return Err(errno!(EMSGSIZE));
            }
            let data = buf.copy_in(t, 0, buf.len)?;
            let dest = target.clone().or_else(|| ep.peer());
            let mut queues = vec![&ep.wq];
            if let Some(d) = &dest {
                queues.push(&d.wq);
            }
            wait(t, nonblock, opts.sndtimeo, &queues, || ep.send_datagram(&data, target.as_ref(), &ctl.rights, cred))
        }
    }
}

pub fn sys_sendto(
    t: &mut CurrentTask,
    fd: i32,
    buf: u64,
    len: usize,
    flags: u32,
    addr: u64,
    addr_len: u32,
) -> SysResult<u64> {
    let to = if addr != 0 { Some(read_sockaddr(t, addr, addr_len)?) } else { None };
    if let Some((f, s)) = inet_file(t, fd)? {
        return Ok(inet_send(t, &f, &s, &UserBuf::flat(buf, len)?, to, flags)? as u64);
    }
    if let Some((_f, s)) = netlink_file(t, fd)? {
        return Ok(netlink_send(t, &s, &UserBuf::flat(buf, len)?, to)? as u64);
    }
    let (f, ep) = socket_file(t, fd)?;
    let n = send_common(t, &f, &ep, &UserBuf::flat(buf, len)?, to, Control::default(), flags)?;
    Ok(n as u64)
}

fn sendmsg_one(t: &CurrentTask, f: &OpenFile, ep: &Arc<Endpoint>, msg: u64, flags: u32) -> SysResult<usize> {
    let hdr: MsgHdr = t.read_obj(msg)?;
    let (name, name_len) = (hdr.name, hdr.namelen);
    let buf = UserBuf::iovec(t, hdr.iov, hdr.iovlen.min(usize::MAX as u64) as usize, Errno::EMSGSIZE)?;
    let (ctl_ptr, ctl_len) = (hdr.control, hdr.controllen);
    if ctl_len > i32::MAX as u64 {
        return Err(errno!(ENOBUFS));
    }
    let to = if name != 0 && name_len != 0 { Some(read_msg_name(t, name, name_len)?) } else { None };
    let ctl = parse_control(t, ctl_ptr, ctl_len as usize)?;
    send_common(t, f, ep, &buf, to, ctl, flags)
}

pub fn sys_sendmsg(t: &mut CurrentTask, fd: i32, msg: u64, flags: u32) -> SysResult<u64> {
    if let Some((f, s)) = inet_file(t, fd)? {
        return Ok(inet_sendmsg_one(t, &f, &s, msg, flags)? as u64);
    }
    if let Some((_f, s)) = netlink_file(t, fd)? {
        return Ok(netlink_sendmsg_one(t, &s, msg)? as u64);
    }
    let (f, ep) = socket_file(t, fd)?;
    Ok(sendmsg_one(t, &f, &ep, msg, flags)? as u64)
}

pub fn sys_sendmmsg(t: &mut CurrentTask, fd: i32, vec: u64, vlen: u32, flags: u32) -> SysResult<u64> {
    let inet = inet_file(t, fd)?;
    let nl = if inet.is_none() { netlink_file(t, fd)? } else { None };
    let unix = if inet.is_none() && nl.is_none() { Some(socket_file(t, fd)?) } else { None };
    let one = |t: &mut CurrentTask, entry: u64| match (&inet, &nl, &unix) {
        (Some((f, s)), _, _) => inet_sendmsg_one(t, f, s, entry, flags),
        (_, Some((_, s)), _) => netlink_sendmsg_one(t, s, entry),
        (_, _, Some((f, ep))) => sendmsg_one(t, f, ep, entry, flags),
        _ => Err(errno!(ENOTSOCK)),
    };
    let mut done = 0u64;
    for i in 0..(vlen as u64).min(UIO_MAXIOV as u64) {
        let entry = vec.wrapping_add(i * MMSGHDR_LEN);
        match one(t, entry) {
            Ok(n) => {
                t.write_obj(entry.wrapping_add(offset_of!(MMsgHdr, len) as u64), &(n as u32))?;
                done += 1;
            }
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok(done)
}

/// The shared body of recv, recvfrom and recvmsg: returns the syscall's result and
/// what arrived.
fn recv_common(
    t: &CurrentTask,
    f: &OpenFile,
    ep: &Arc<Endpoint>,
    buf: &UserBuf,
    flags: u32,
) -> SysResult<(usize, Received)> {
    if flags & MSG_OOB != 0 {
        return Err(if ep.kind == SockType::Stream { errno!(EINVAL) } else { errno!(EOPNOTSUPP) });
    }
    let peek = flags & MSG_PEEK != 0;
    let nonblock = f.nonblocking() || flags & MSG_DONTWAIT != 0;
    let timeout = ep.options().rcvtimeo;
    if ep.kind != SockType::Stream {
        let r =
            wait(t, nonblock, timeout, &[&ep.wq], || ep.recv(buf.len, peek, &mut |off, d| buf.copy_out(t, off, d)))?;
        let ret = if flags & MSG_TRUNC != 0 { r.msg_len } else { r.copied };
        return Ok((ret, r));
    }
    if buf.len == 0 {
        return Ok((0, Received::default()));
    }
    let waitall = flags & MSG_WAITALL != 0 && !peek;
    let mut total = Received::default();
    loop {
        let base = total.copied;
        let r = wait(t, nonblock, timeout, &[&ep.wq], || {
            ep.recv(buf.len - base, peek, &mut |off, d| buf.copy_out(t, base + off, d))
        });
        let r = match r {
            Ok(r) => r,
            Err(_) if total.copied > 0 => break,
            Err(e) => return Err(e),
        };
        if base == 0 {
            total.from = r.from;
            total.cred = r.cred;
        } else if r.cred != total.cred {
            break;
        }
        total.copied += r.copied;
        let stop = r.copied == 0 || !r.rights.is_empty();
        total.rights.extend(r.rights);
        if !waitall || stop || total.copied >= buf.len {
            break;
        }
    }
    total.msg_len = total.copied;
    Ok((total.copied, total))
}

pub fn sys_recvfrom(
    t: &mut CurrentTask,
    fd: i32,
    buf: u64,
    len: usize,
    flags: u32,
    addr: u64,
    len_ptr: u64,
) -> SysResult<u64> {
    if let Some((f, s)) = inet_file(t, fd)? {
        let (n, r) = inet_recv(t, &f, &s, &UserBuf::flat(buf, len)?, flags)?;
        if addr != 0 {
            write_sockaddr(t, addr, len_ptr, &r.from.unwrap_or_default())?;
        }
        return Ok(n as u64);
    }
    if let Some((f, s)) = netlink_file(t, fd)? {
        let (n, r) = netlink_recv(t, &f, &s, &UserBuf::flat(buf, len)?, flags)?;
        if addr != 0 {
            write_sockaddr(t, addr, len_ptr, &r.from)?;
        }
        return Ok(n as u64);
    }
    let (f, ep) = socket_file(t, fd)?;
    let (n, r) = recv_common(t, &f, &ep, &UserBuf::flat(buf, len)?, flags)?;
    let from = r.from.map(|a| a.to_sockaddr()).unwrap_or_default();
    // Descriptors sent to a plain recv are closed here, with no lock held.
    drop(r.rights);
    if addr != 0 {
        write_sockaddr(t, addr, len_ptr, &from)?;
    }
    Ok(n as u64)
}

/// Appends one control message the way Linux's put_cmsg does: truncated (and
/// MSG_CTRUNC) when the buffer is short.
fn put_cmsg(out: &mut Vec<u8>, cap: usize, kind: i32, data: &[u8], ctrunc: &mut bool) {
    let room = cap - out.len();
    if room < CMSGHDR_LEN {
        *ctrunc = true;
        return;
    }
    let full = CMSGHDR_LEN + data.len();
    let len = full.min(room);
    if len < full {
        *ctrunc = true;
    }
    let start = out.len();
    out.extend_from_slice(CmsgHdr { len: len as u64, level: SOL_SOCKET, kind }.as_bytes());
    out.extend_from_slice(&data[..len - CMSGHDR_LEN]);
    out.resize(start + cmsg_align(full).min(room), 0);
}

/// Builds recvmsg's control data (credentials, then descriptors installed in the
/// caller's table) and writes it to `ptr`. Returns (bytes used, MSG_CTRUNC).
fn deliver_control(
    t: &CurrentTask,
    ptr: u64,
    cap: usize,
    cred: Option<Ucred>,
    rights: Vec<Arc<OpenFile>>,
    cloexec: bool,
) -> SysResult<(usize, bool)> {
    let mut out = Vec::new();
    let mut ctrunc = false;
    if let Some(c) = cred {
        put_cmsg(&mut out, cap, SCM_CREDENTIALS, c.as_bytes(), &mut ctrunc);
    }
    let mut installed = Vec::new();
    if !rights.is_empty() {
        let room = cap - out.len();
        let fit = if room > CMSGHDR_LEN { (room - CMSGHDR_LEN) / 4 } else { 0 };
        {
            let mut fds = t.tg().fds.lock().unwrap();
            for f in rights.iter().take(fit) {
                match fds.add(f.clone(), cloexec, 0) {
                    Ok(fd) => installed.push(fd),
                    Err(_) => break,
                }
            }
        }
        if installed.len() < rights.len() {
            ctrunc = true;
        }
        if !installed.is_empty() {
            put_cmsg(&mut out, cap, SCM_RIGHTS, installed.as_bytes(), &mut ctrunc);
        }
    }
    // Descriptors that did not fit are closed here, with no lock held.
    drop(rights);
    if !out.is_empty() {
        if let Err(e) = t.write_mem(ptr, &out) {
            let undone: Vec<_> = {
                let mut fds = t.tg().fds.lock().unwrap();
                installed.iter().filter_map(|&fd| fds.remove(fd).ok()).collect()
            };
            drop(undone);
            return Err(e);
        }
    }
    Ok((out.len(), ctrunc))
}

fn recvmsg_one(t: &CurrentTask, f: &OpenFile, ep: &Arc<Endpoint>, msg: u64, flags: u32) -> SysResult<usize> {
    let hdr: MsgHdr = t.read_obj(msg)?;
    let (name, name_len) = (hdr.name, hdr.namelen as i32);
    if name_len < 0 {
        return Err(errno!(EINVAL));
    }
    let buf = UserBuf::iovec(t, hdr.iov, hdr.iovlen.min(usize::MAX as u64) as usize, Errno::EMSGSIZE)?;
    let (ctl_ptr, ctl_len) = (hdr.control, hdr.controllen.min(MAX_CONTROL as u64) as usize);
    let (n, r) = recv_common(t, f, ep, &buf, flags)?;
    let mut out_flags = flags & MSG_CMSG_CLOEXEC;
    if r.truncated {
        out_flags |= MSG_TRUNC;
    }
    let (used, ctrunc) = deliver_control(t, ctl_ptr, ctl_len, r.cred, r.rights, flags & MSG_CMSG_CLOEXEC != 0)?;
    if ctrunc {
        out_flags |= MSG_CTRUNC;
    }
    if name != 0 {
        let from = r.from.map(|a| a.to_sockaddr()).unwrap_or_default();
        let n = (name_len as usize).min(from.len());
        if n > 0 {
            t.write_mem(name, &from[..n])?;
        }
        t.write_obj(msg.wrapping_add(offset_of!(MsgHdr, namelen) as u64), &(from.len() as u32))?;
    }
    t.write_obj(msg.wrapping_add(offset_of!(MsgHdr, controllen) as u64), &(used as u64))?;
    t.write_obj(msg.wrapping_add(offset_of!(MsgHdr, flags) as u64), &out_flags)?;
    Ok(n)
}

pub fn sys_recvmsg(t: &mut CurrentTask, fd: i32, msg: u64, flags: u32) -> SysResult<u64> {
    if let Some((f, s)) = inet_file(t, fd)? {
        return Ok(inet_recvmsg_one(t, &f, &s, msg, flags)? as u64);
    }
    if let Some((f, s)) = netlink_file(t, fd)? {
        return Ok(netlink_recvmsg_one(t, &f, &s, msg, flags)? as u64);
    }
    let (f, ep) = socket_file(t, fd)?;
    Ok(recvmsg_one(t, &f, &ep, msg, flags)? as u64)
}

/// recvmmsg: like Linux, the timeout is checked only between messages.
pub fn sys_recvmmsg(t: &mut CurrentTask, fd: i32, vec: u64, vlen: u32, flags: u32, timeout: u64) -> SysResult<u64> {
    let inet = inet_file(t, fd)?;
    let nl = if inet.is_none() { netlink_file(t, fd)? } else { None };
    let unix = if inet.is_none() && nl.is_none() { Some(socket_file(t, fd)?) } else { None };
    let one = |t: &CurrentTask, entry: u64, fl: u32| match (&inet, &nl, &unix) {
        (Some((f, s)), _, _) => inet_recvmsg_one(t, f, s, entry, fl),
        (_, Some((f, s)), _) => netlink_recvmsg_one(t, f, s, entry, fl),
        (_, _, Some((f, ep))) => recvmsg_one(t, f, ep, entry, fl),
        _ => Err(errno!(ENOTSOCK)),
    };
    let deadline = if timeout == 0 {
        None
    } else {
        let ts: Timespec = t.read_obj(timeout)?;
        Instant::now().checked_add(ts.duration().ok_or(errno!(EINVAL))?)
    };
    let mut done = 0u64;
    for i in 0..(vlen as u64).min(UIO_MAXIOV as u64) {
        let entry = vec.wrapping_add(i * MMSGHDR_LEN);
        let fl = if done > 0 && flags & MSG_WAITFORONE != 0 { flags | MSG_DONTWAIT } else { flags };
        match one(t, entry, fl & !MSG_WAITFORONE) {
            Ok(n) => {
                t.write_obj(entry.wrapping_add(offset_of!(MMsgHdr, len) as u64), &(n as u32))?;
                done += 1;
            }
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
    }
    Ok(done)
}

/// Options that are only stored: booleans report 0 or 1.
fn stored_option_default(name: i32) -> Option<i32> {
    match name {
        SO_DEBUG | SO_REUSEADDR | SO_DONTROUTE | SO_BROADCAST | SO_KEEPALIVE | SO_OOBINLINE | SO_NO_CHECK
        | SO_REUSEPORT | SO_PASSSEC | SO_PRIORITY | SO_BSDCOMPAT => Some(0),
        SO_RCVLOWAT => Some(1),
        _ => None,
    }
}

pub fn sys_getsockopt(t: &mut CurrentTask, fd: i32, level: i32, name: i32, val: u64, len_ptr: u64) -> SysResult<u64> {
    // The stack's sockets answer with the option's bytes; the app gets as
    // many as its length allows, and that length back.
    let answer = |t: &mut CurrentTask, bytes: SysResult<Vec<u8>>, len: usize| -> SysResult<u64> {
        let bytes = bytes?;
        let n = len.min(bytes.len());
        if n > 0 {
            t.write_mem(val, &bytes[..n])?;
        }
        t.write_obj(len_ptr, &(n as u32))?;
        Ok(0)
    };
    let inet = inet_file(t, fd)?;
    let nl = if inet.is_none() { netlink_file(t, fd)? } else { None };
    if inet.is_some() || nl.is_some() {
        let len = t.read_u32(len_ptr)? as i32;
        if len < 0 {
            return Err(errno!(EINVAL));
        }
        let len = len as usize;
        let bytes = match (&inet, &nl) {
            (Some((_, s)), _) => s.getsockopt(level, name),
            (_, Some((_, s))) => s.getsockopt(level, name, len),
            _ => Err(errno!(ENOTSOCK)),
        };
        return answer(t, bytes, len);
    }
    let (_f, ep) = socket_file(t, fd)?;
    if level != SOL_SOCKET {
        return Err(errno!(EOPNOTSUPP));
    }
    let len = t.read_u32(len_ptr)? as i32;
    if len < 0 {
        return Err(errno!(EINVAL));
    }
    let o = ep.options();
    let int = |v: i32| v.as_bytes().to_vec();
    let bytes = match name {
        SO_TYPE => int(ep.kind.raw()),
        SO_ERROR => int(ep.take_error().map_or(0, |e| e.0)),
        SO_DOMAIN => int(AF_UNIX),
        SO_PROTOCOL => int(0),
        SO_ACCEPTCONN => int(ep.is_listening() as i32),
        SO_SNDBUF => int(o.sndbuf as i32),
        SO_RCVBUF => int(o.rcvbuf as i32),
        SO_PASSCRED => int(o.passcred as i32),
        SO_SNDLOWAT => int(1),
        SO_PEERCRED => ep.peer_cred().map_or(Ucred::NONE, |p| p.ucred).as_bytes().to_vec(),
        SO_PEERGROUPS => {
            let groups = ep.peer_cred().ok_or(errno!(ENODATA))?.groups;
            let want = groups.len() * 4;
            if (len as usize) < want {
                t.write_obj(len_ptr, &(want as u32))?;
                return Err(errno!(ERANGE));
            }
            groups.as_bytes().to_vec()
        }
        SO_LINGER => Linger { onoff: o.linger.0, linger: o.linger.1 }.as_bytes().to_vec(),
        SO_RCVTIMEO_OLD | SO_RCVTIMEO_NEW => crate::net::timeval_bytes(o.rcvtimeo),
        SO_SNDTIMEO_OLD | SO_SNDTIMEO_NEW => crate::net::timeval_bytes(o.sndtimeo),
        n => match stored_option_default(n) {
            Some(default) => int(o.stored.get(&n).copied().unwrap_or(default)),
            None => return Err(errno!(ENOPROTOOPT)),
        },
    };
    let n = (len as usize).min(bytes.len());
    if n > 0 {
        t.write_mem(val, &bytes[..n])?;
    }
    t.write_obj(len_ptr, &(n as u32))?;
    Ok(0)
}

/// A timeval socket timeout from the app's `val` (`len` bytes), read as
/// every socket family reads it.
fn read_timeout(t: &CurrentTask, val: u64, len: usize) -> SysResult<Option<Duration>> {
    if len < size_of::<Timeval>() {
        return Err(errno!(EINVAL));
    }
    let v: Timeval = t.read_obj(val)?;
    crate::net::read_timeout(v.as_bytes())
}

pub fn sys_setsockopt(t: &mut CurrentTask, fd: i32, level: i32, name: i32, val: u64, len: u32) -> SysResult<u64> {
    if let Some((_f, s)) = inet_file(t, fd)? {
        if (len as i32) < 0 {
            return Err(errno!(EINVAL));
        }
        // No option is longer than this; the rest of a longer value is ignored, as on Linux.
        let bytes = t.read_vec(val, (len as usize).min(MAX_OPTION))?;
        s.setsockopt(level, name, &bytes, t.creds().has(CAP_NET_RAW))?;
        return Ok(0);
    }
    if let Some((_f, s)) = netlink_file(t, fd)? {
        if (len as i32) < 0 {
            return Err(errno!(EINVAL));
        }
        let bytes = t.read_vec(val, (len as usize).min(MAX_OPTION))?;
        s.setsockopt(level, name, &bytes, t.creds().has(CAP_NET_ADMIN))?;
        return Ok(0);
    }
    let (_f, ep) = socket_file(t, fd)?;
    if level != SOL_SOCKET {
        return Err(errno!(EOPNOTSUPP));
    }
    let len = len as i32;
    if len < 0 {
        return Err(errno!(EINVAL));
    }
    let len = len as usize;
    let read_int = || -> SysResult<i32> {
        if len < 4 {
            return Err(errno!(EINVAL));
        }
        Ok(t.read_u32(val)? as i32)
    };
    match name {
        SO_SNDBUF | SO_SNDBUFFORCE => {
            let v = read_int()?;
            ep.update_options(|o| o.set_sndbuf(v));
        }
        SO_RCVBUF | SO_RCVBUFFORCE => {
            let v = read_int()?;
            ep.update_options(|o| o.set_rcvbuf(v));
        }
        SO_PASSCRED => {
            let v = read_int()?;
            ep.update_options(|o| o.passcred = v != 0);
        }
        SO_LINGER => {
            if len < size_of::<Linger>() {
                return Err(errno!(EINVAL));
            }
            let l: Linger = t.read_obj(val)?;
            ep.update_options(|o| o.linger = ((l.onoff != 0) as i32, l.linger.max(0)));
        }
        SO_RCVTIMEO_OLD | SO_RCVTIMEO_NEW => {
            let d = read_timeout(t, val, len)?;
            ep.update_options(|o| o.rcvtimeo = d);
        }
        SO_SNDTIMEO_OLD | SO_SNDTIMEO_NEW => {
            let d = read_timeout(t, val, len)?;
            ep.update_options(|o| o.sndtimeo = d);
        }
        SO_PRIORITY | SO_RCVLOWAT => {
            let v = read_int()?.max(0);
            ep.update_options(|o| {
                o.stored.insert(name, v);
            });
        }
        n if stored_option_default(n).is_some() => {
            let v = (read_int()? != 0) as i32;
            ep.update_options(|o| {
                o.stored.insert(n, v);
            });
        }
        _ => return Err(errno!(ENOPROTOOPT)),
    }
    Ok(0)
}

/// CAP_NET_BIND_SERVICE: binding ports below 1024.
const CAP_NET_BIND_SERVICE: u32 = 10;
/// CAP_NET_ADMIN: changing the network, netlink sends to other sockets.
const CAP_NET_ADMIN: u32 = 12;
/// CAP_NET_RAW: raw sockets, moving a socket from the interface it is held to.
const CAP_NET_RAW: u32 = 13;
/// recv's flag for the socket's error queue.
const MSG_ERRQUEUE: u32 = 0x2000;
/// The most bytes of an option value setsockopt reads.
const MAX_OPTION: usize = 64;

/// The open file behind `fd` and its internet socket; `None` for other files
/// (EBADF for no file).
fn inet_file(t: &CurrentTask, fd: i32) -> SysResult<Option<(Arc<OpenFile>, Arc<InetSocket>)>> {
    let f = t.tg().fds.lock().unwrap().get(fd)?;
    let Ok(s) = f.ops.clone().into_any_arc().downcast::<InetSocket>() else { return Ok(None) };
    Ok(Some((f, s)))
}

/// Validates socket(2)'s type and protocol for AF_INET and AF_INET6, with
/// inet_create's errors: (protocol, non-blocking, close-on-exec).
fn inet_socket_args(t: &CurrentTask, family: Family, stype: i32, protocol: i32) -> SysResult<(Proto, bool, bool)> {
    let flags = stype & !SOCK_TYPE_MASK;
    if flags & !(SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
        return Err(errno!(EINVAL));
    }
    let kind = stype & SOCK_TYPE_MASK;
    if kind >= SOCK_MAX || !(0..256).contains(&protocol) {
        return Err(errno!(EINVAL));
    }
    let proto = match (kind, protocol) {
        (SOCK_STREAM, 0 | IPPROTO_TCP) => Proto::Tcp,
        (SOCK_DGRAM, 0 | IPPROTO_UDP) => Proto::Udp,
        // Ping sockets for everyone, as Docker's default ping_group_range
        // (0 2147483647) and gVisor have them.
        (SOCK_DGRAM, IPPROTO_ICMP) if family == Family::V4 => Proto::Ping,
        (SOCK_DGRAM, IPPROTO_ICMPV6) if family == Family::V6 => Proto::Ping,
        (SOCK_RAW, _) if !t.creds().has(CAP_NET_RAW) => return Err(errno!(EPERM)),
        // Raw sockets are not built yet (issue 12).
        (SOCK_STREAM | SOCK_DGRAM | SOCK_RAW, _) => return Err(errno!(EPROTONOSUPPORT)),
        _ => return Err(errno!(ESOCKTNOSUPPORT)),
    };
    Ok((proto, flags & SOCK_NONBLOCK != 0, flags & SOCK_CLOEXEC != 0))
}

fn inet_accept(
    t: &CurrentTask,
    f: &OpenFile,
    s: &Arc<InetSocket>,
    addr: u64,
    len_ptr: u64,
    flags: u32,
) -> SysResult<u64> {
    // Fail before taking a connection off the queue that could not be handed out.
    if table_full(t) {
        return Err(errno!(EMFILE));
    }
    let timeout = s.options().rcvtimeo;
    let (conn, peer) = wait(t, f.nonblocking(), timeout, &[&s.wq], || s.accept())?;
    let oflags =
        if flags as i32 & SOCK_NONBLOCK != 0 { OpenFlags::O_RDWR | OpenFlags::O_NONBLOCK } else { OpenFlags::O_RDWR };
    let family = conn.family;
    let newfd = install(t, OpenFile::new(conn, None, oflags.bits()), flags as i32 & SOCK_CLOEXEC != 0)?;
    if addr != 0 {
        if let Err(e) = write_sockaddr(t, addr, len_ptr, &inet_addr::encode(family, peer)) {
            let undone = t.tg().fds.lock().unwrap().remove(newfd);
            drop(undone);
            return Err(e);
        }
    }
    Ok(newfd as u64)
}

/// The calling process, as an egress refusal's audit line names it.
fn origin(t: &CurrentTask) -> Origin {
    Origin { pid: t.pid(), comm: t.tg().comm.lock().unwrap().clone() }
}

/// The shared body of send, sendto and sendmsg on an internet socket. A stream
/// send takes everything unless non-blocking; SIGPIPE goes with EPIPE unless
/// MSG_NOSIGNAL.
fn inet_send(
    t: &CurrentTask,
    f: &OpenFile,
    s: &InetSocket,
    buf: &UserBuf,
    to: Option<Vec<u8>>,
    flags: u32,
) -> SysResult<usize> {
    if flags & MSG_OOB != 0 {
        return Err(errno!(EOPNOTSUPP));
    }
    let nonblock = f.nonblocking() || flags & MSG_DONTWAIT != 0;
    let timeout = s.options().sndtimeo;
    let r = match s.proto {
        Proto::Udp | Proto::Ping => {
            let to = match to {
                Some(raw) => match inet_addr::parse(s.family, &raw, Use::SendTo)? {
                    inet_addr::Parsed::Unspec => None,
                    p => Some(p),
                },
                None => None,
            };
            // Bounded before anything is copied out of the app.
            if buf.len > u16::MAX as usize {
                return Err(errno!(EMSGSIZE));
            }
            let who = origin(t);
            wait(t, nonblock, timeout, &[&s.wq], || s.send(buf.len, to, &mut |off, n| buf.copy_in(t, off, n), &who))
        }
        // A stream socket ignores the address, as Linux's TCP does.
        Proto::Tcp => {
            let mut sent = 0;
            loop {
                let r = wait(t, nonblock, timeout, &[&s.wq], || {
                    s.send(buf.len - sent, None, &mut |off, n| buf.copy_in(t, sent + off, n), &Origin::default())
                });
                match r {
                    Ok(n) => {
                        sent += n;
                        if n == 0 || sent >= buf.len {
                            break Ok(sent);
                        }
                    }
                    Err(_) if sent > 0 => break Ok(sent),
                    Err(e) => break Err(e),
                }
            }
        }
    };
    if let Err(e) = &r {
        if e.errno() == Errno::EPIPE && flags & MSG_NOSIGNAL == 0 {
            send_to_task(&t.task, SigInfo::kernel(SIGPIPE));
        }
    }
    r
}

fn inet_sendmsg_one(t: &CurrentTask, f: &OpenFile, s: &InetSocket, msg: u64, flags: u32) -> SysResult<usize> {
    let hdr: MsgHdr = t.read_obj(msg)?;
    let buf = UserBuf::iovec(t, hdr.iov, hdr.iovlen.min(usize::MAX as u64) as usize, Errno::EMSGSIZE)?;
    if hdr.controllen > MAX_CONTROL as u64 {
        return Err(errno!(ENOBUFS));
    }
    let to = if hdr.name != 0 && hdr.namelen != 0 { Some(read_msg_name(t, hdr.name, hdr.namelen)?) } else { None };
    inet_send(t, f, s, &buf, to, flags)
}

/// The shared body of recv, recvfrom and recvmsg on an internet socket.
fn inet_recv(
    t: &CurrentTask,
    f: &OpenFile,
    s: &InetSocket,
    buf: &UserBuf,
    flags: u32,
) -> SysResult<(usize, crate::net::socket::Received)> {
    // UDP ignores MSG_OOB on receive, as udp_recvmsg does; TCP has no urgent data here.
    if flags & MSG_OOB != 0 && s.proto == Proto::Tcp {
        return Err(errno!(EINVAL));
    }
    // No ICMP or timestamping errors are ever queued: the error queue is empty.
    if flags & MSG_ERRQUEUE != 0 {
        return Err(errno!(EAGAIN));
    }
    let peek = flags & MSG_PEEK != 0;
    let nonblock = f.nonblocking() || flags & MSG_DONTWAIT != 0;
    let timeout = s.options().rcvtimeo;
    if s.proto.is_datagram() {
        let r = wait(t, nonblock, timeout, &[&s.wq], || s.recv(buf.len, peek, &mut |off, d| buf.copy_out(t, off, d)))?;
        let n = if flags & MSG_TRUNC != 0 { r.msg_len } else { r.copied };
        return Ok((n, r));
    }
    let waitall = flags & MSG_WAITALL != 0 && !peek;
    let mut total = 0;
    loop {
        let base = total;
        let r = wait(t, nonblock, timeout, &[&s.wq], || {
            s.recv(buf.len - base, peek, &mut |off, d| buf.copy_out(t, base + off, d))
        });
        match r {
            Ok(r) => {
                total += r.copied;
                if !waitall || r.copied == 0 || total >= buf.len {
                    break;
                }
            }
            Err(_) if total > 0 => break,
            Err(e) => return Err(e),
        }
    }
    Ok((total, crate::net::socket::Received { copied: total, msg_len: total, ..Default::default() }))
}

fn inet_recvmsg_one(t: &CurrentTask, f: &OpenFile, s: &InetSocket, msg: u64, flags: u32) -> SysResult<usize> {
    let hdr: MsgHdr = t.read_obj(msg)?;
    let (name, name_len) = (hdr.name, hdr.namelen as i32);
    if name_len < 0 {
        return Err(errno!(EINVAL));
    }
    let buf = UserBuf::iovec(t, hdr.iov, hdr.iovlen.min(usize::MAX as u64) as usize, Errno::EMSGSIZE)?;
    let (n, r) = inet_recv(t, f, s, &buf, flags)?;
    let mut out_flags = flags & MSG_CMSG_CLOEXEC;
    if r.truncated {
        out_flags |= MSG_TRUNC;
    }
    if name != 0 {
        let from = r.from.unwrap_or_default();
        let k = (name_len as usize).min(from.len());
        if k > 0 {
            t.write_mem(name, &from[..k])?;
        }
        t.write_obj(msg.wrapping_add(offset_of!(MsgHdr, namelen) as u64), &(from.len() as u32))?;
    }
    t.write_obj(msg.wrapping_add(offset_of!(MsgHdr, controllen) as u64), &0u64)?;
    t.write_obj(msg.wrapping_add(offset_of!(MsgHdr, flags) as u64), &out_flags)?;
    Ok(n)
}

/// socket(AF_NETLINK, …): a route socket of the sandbox's stack.
fn netlink_socket(t: &CurrentTask, stype: i32, protocol: i32) -> SysResult<u64> {
    let flags = stype & !SOCK_TYPE_MASK;
    if flags & !(SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
        return Err(errno!(EINVAL));
    }
    netlink::check_args(stype & SOCK_TYPE_MASK, protocol)?;
    let stack = crate::net::stack_of(sandbox_id(t)).ok_or(errno!(EAFNOSUPPORT))?;
    let owner = task_owner(t);
    let s = NetlinkSocket::new(
        stack,
        sandbox_id(t),
        stype & SOCK_TYPE_MASK,
        t.pid(),
        t.creds().has(CAP_NET_ADMIN),
        (owner.uid, owner.gid),
    );
    let nonblock = flags & SOCK_NONBLOCK != 0;
    let oflags = if nonblock { OpenFlags::O_RDWR | OpenFlags::O_NONBLOCK } else { OpenFlags::O_RDWR };
    Ok(install(t, OpenFile::new(s, None, oflags.bits()), flags & SOCK_CLOEXEC != 0)? as u64)
}

/// The open file behind `fd` and its netlink socket; `None` for other files.
fn netlink_file(t: &CurrentTask, fd: i32) -> SysResult<Option<(Arc<OpenFile>, Arc<NetlinkSocket>)>> {
    let f = t.tg().fds.lock().unwrap().get(fd)?;
    let Ok(s) = f.ops.clone().into_any_arc().downcast::<NetlinkSocket>() else { return Ok(None) };
    Ok(Some((f, s)))
}

/// Sends one batch of netlink requests; its length is bounded by SO_SNDBUF
/// before anything is copied, as Linux's netlink_sendmsg does.
fn netlink_send(t: &CurrentTask, s: &NetlinkSocket, buf: &UserBuf, to: Option<Vec<u8>>) -> SysResult<usize> {
    if buf.len > s.max_send() {
        return Err(errno!(EMSGSIZE));
    }
    let data = buf.copy_in(t, 0, buf.len)?;
    s.send(&data, to.as_deref(), t.creds().has(CAP_NET_ADMIN))
}

fn netlink_sendmsg_one(t: &CurrentTask, s: &NetlinkSocket, msg: u64) -> SysResult<usize> {
    let hdr: MsgHdr = t.read_obj(msg)?;
    let buf = UserBuf::iovec(t, hdr.iov, hdr.iovlen.min(usize::MAX as u64) as usize, Errno::EMSGSIZE)?;
    if hdr.controllen > MAX_CONTROL as u64 {
        return Err(errno!(ENOBUFS));
    }
    let to = if hdr.name != 0 && hdr.namelen != 0 { Some(read_msg_name(t, hdr.name, hdr.namelen)?) } else { None };
    netlink_send(t, s, &buf, to)
}

/// Receives one netlink datagram: MSG_PEEK leaves it queued, MSG_TRUNC returns
/// its full length (glibc and `ip` peek with an empty buffer to size theirs).
fn netlink_recv(
    t: &CurrentTask,
    f: &OpenFile,
    s: &NetlinkSocket,
    buf: &UserBuf,
    flags: u32,
) -> SysResult<(usize, netlink::Received)> {
    if flags & MSG_OOB != 0 {
        return Err(errno!(EOPNOTSUPP));
    }
    let peek = flags & MSG_PEEK != 0;
    let nonblock = f.nonblocking() || flags & MSG_DONTWAIT != 0;
    let timeout = s.options().rcvtimeo;
    let r = wait(t, nonblock, timeout, &[&s.wq], || s.recv(buf.len, peek, &mut |d| buf.copy_out(t, 0, d)))?;
    let n = if flags & MSG_TRUNC != 0 { r.msg_len } else { r.copied };
    Ok((n, r))
}

fn netlink_recvmsg_one(t: &CurrentTask, f: &OpenFile, s: &NetlinkSocket, msg: u64, flags: u32) -> SysResult<usize> {
    let hdr: MsgHdr = t.read_obj(msg)?;
    let (name, name_len) = (hdr.name, hdr.namelen as i32);
    if name_len < 0 {
        return Err(errno!(EINVAL));
    }
    let buf = UserBuf::iovec(t, hdr.iov, hdr.iovlen.min(usize::MAX as u64) as usize, Errno::EMSGSIZE)?;
    let (n, r) = netlink_recv(t, f, s, &buf, flags)?;
    let mut out_flags = flags & MSG_CMSG_CLOEXEC;
    if r.msg_len > r.copied {
        out_flags |= MSG_TRUNC;
    }
    if name != 0 {
        let k = (name_len as usize).min(r.from.len());
        if k > 0 {
            t.write_mem(name, &r.from[..k])?;
        }
        t.write_obj(msg.wrapping_add(offset_of!(MsgHdr, namelen) as u64), &(r.from.len() as u32))?;
    }
    t.write_obj(msg.wrapping_add(offset_of!(MsgHdr, controllen) as u64), &0u64)?;
    t.write_obj(msg.wrapping_add(offset_of!(MsgHdr, flags) as u64), &out_flags)?;
    Ok(n)
}
