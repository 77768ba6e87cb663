//! moat's fd-donation extension end to end: a `serve` handler donating a
//! host file's fd to a `Client`, the default refusal, stray fds sent with
//! other replies (closed, not leaked), and the round-trip counter.

use std::fs::File;
use std::io::{ErrorKind, IoSlice, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::thread::{self, JoinHandle};

use abi::Errno;
use p9::wire::{
    Attr, Rattach, Rclunk, Rdonate, Rmessage, Rversion, Rwalk, Tattach, Tclunk, Tdonate, Tgetattr, Tmessage, Twalk,
    VERSION_9P2000_L,
};
use p9::{Client, Error, Fid, Handler, Qid, QID_TYPE_DIR, QID_TYPE_FILE};
use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};

const CONTENT: &[u8] = b"donated bytes\n";
const FILE_QID: Qid = Qid { ty: QID_TYPE_FILE, version: 0, path: 2 };

/// A root directory holding one file, `file`, backed by a host file.
struct OneFile {
    host: PathBuf,
    /// fid -> is it the file (not the root)?
    fids: std::collections::HashMap<Fid, bool>,
    /// Whether to implement `donate`, or leave the default.
    donates: bool,
}

impl Handler for OneFile {
    fn attach(&mut self, t: Tattach) -> Result<Rattach, Errno> {
        self.fids.insert(t.fid, false);
        Ok(Rattach { qid: Qid { ty: QID_TYPE_DIR, version: 0, path: 1 } })
    }

    fn walk(&mut self, t: Twalk) -> Result<Rwalk, Errno> {
        let is_file = *self.fids.get(&t.fid).ok_or(Errno::EBADF)?;
        let qids = match (is_file, t.names.as_slice()) {
            (_, []) => vec![],
            (false, [name]) if name == b"file" => vec![FILE_QID],
            _ => return Err(Errno::ENOENT),
        };
        self.fids.insert(t.newfid, is_file || !qids.is_empty());
        Ok(Rwalk { qids })
    }

    fn clunk(&mut self, t: Tclunk) -> Result<Rclunk, Errno> {
        self.fids.remove(&t.fid).ok_or(Errno::EBADF)?;
        Ok(Rclunk {})
    }

    fn getattr(&mut self, t: Tgetattr) -> Result<Attr, Errno> {
        let is_file = *self.fids.get(&t.fid).ok_or(Errno::EBADF)?;
        Ok(Attr { valid: p9::getattr::SIZE, size: if is_file { CONTENT.len() as u64 } else { 0 }, ..Attr::default() })
    }

    fn donate(&mut self, t: Tdonate) -> Result<(Rdonate, OwnedFd), Errno> {
        if !self.donates {
            return Err(Errno::EOPNOTSUPP);
        }
        // The server checked the fid is known before calling us.
        let is_file = *self.fids.get(&t.fid).expect("the server passed on an unknown fid");
        if !is_file {
            return Err(Errno::EISDIR);
        }
        let file = File::open(&self.host).map_err(|_| Errno::EIO)?;
        Ok((Rdonate { qid: FILE_QID }, file.into()))
    }
}

/// A `serve` of `OneFile` and a connected client.
fn start(donates: bool) -> (Client, JoinHandle<Result<(), Error>>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let host = dir.path().join("file");
    std::fs::write(&host, CONTENT).unwrap();
    let (a, b) = UnixStream::pair().unwrap();
    let handler = OneFile { host, fids: Default::default(), donates };
    let server = thread::spawn(move || p9::serve(b, handler));
    (Client::new(a, 8192).unwrap(), server, dir)
}

fn is_cloexec(fd: impl AsFd) -> bool {
    rustix::io::fcntl_getfd(fd).unwrap().contains(rustix::io::FdFlags::CLOEXEC)
}

#[test]
fn a_donated_fd_reads_the_host_file() {
    let (client, server, _dir) = start(true);
    let (root, _) = client.attach("").unwrap();
    let (file, _) = client.walk(root, &[b"file"]).unwrap();
    let (qid, fd) = client.donate(file, 0).unwrap();
    assert_eq!(qid, FILE_QID);
    assert!(is_cloexec(&fd), "a received fd must be close-on-exec");
    let file_fd = File::from(fd);
    let mut buf = [0u8; 64];
    let n = file_fd.read_at(&mut buf, 0).unwrap();
    assert_eq!(&buf[..n], CONTENT);
    let n = file_fd.read_at(&mut buf, 8).unwrap();
    assert_eq!(&buf[..n], &CONTENT[8..]);

    // The handler's refusal comes back as its errno; the server refuses an
    // unknown fid before the handler sees it (it would panic).
    assert_eq!(client.donate(root, 0).unwrap_err().errno(), Errno::EISDIR.0);
    assert_eq!(client.donate(Fid(999), 0).unwrap_err().errno(), Errno::EBADF.0);
    // The fid was not opened by the donation, and the session goes on.
    assert_eq!(client.getattr(file, p9::getattr::SIZE).unwrap().size, CONTENT.len() as u64);
    let (_, again) = client.donate(file, 0).unwrap();
    assert_eq!(File::from(again).read_at(&mut buf, 0).unwrap(), CONTENT.len());
    drop(client);
    server.join().unwrap().unwrap();
}

#[test]
fn the_default_handler_refuses_donation_and_the_session_goes_on() {
    let (client, server, _dir) = start(false);
    let (root, _) = client.attach("").unwrap();
    let (file, _) = client.walk(root, &[b"file"]).unwrap();
    assert!(matches!(client.donate(file, 0), Err(Error::Remote(e)) if e == Errno::EOPNOTSUPP.0));
    assert_eq!(client.getattr(file, p9::getattr::SIZE).unwrap().size, CONTENT.len() as u64);
    client.clunk(file).unwrap();
    drop(client);
    server.join().unwrap().unwrap();
}

#[test]
fn round_trips_counts_every_exchange() {
    let (client, server, _dir) = start(true);
    assert_eq!(client.round_trips(), 1, "Tversion is an exchange");
    let (root, _) = client.attach("").unwrap();
    assert_eq!(client.round_trips(), 2);
    let (file, _) = client.walk(root, &[b"file"]).unwrap();
    let (_, fd) = client.donate(file, 0).unwrap();
    assert_eq!(client.round_trips(), 4);
    // Reads through the donated fd cost no exchange at all.
    let mut buf = [0u8; 64];
    let fd = File::from(fd);
    for _ in 0..10 {
        fd.read_at(&mut buf, 0).unwrap();
    }
    assert_eq!(client.round_trips(), 4);
    // An exchange answered with an error is still an exchange.
    client.walk(root, &[b"missing"]).unwrap_err();
    assert_eq!(client.round_trips(), 5);
    client.clunk(file).unwrap();
    assert_eq!(client.round_trips(), 6);
    drop(client);
    server.join().unwrap().unwrap();
}

/// Reads one request frame from `stream`.
fn read_request(stream: &mut UnixStream) -> (u16, Tmessage) {
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).unwrap();
    let mut frame = vec![0u8; u32::from_le_bytes(size) as usize];
    frame[..4].copy_from_slice(&size);
    stream.read_exact(&mut frame[4..]).unwrap();
    Tmessage::decode(&frame, 1 << 20).unwrap()
}

/// Sends `frame` with `fd` attached as SCM_RIGHTS to the first `with_fd`
/// bytes, the rest without.
fn send_with_fd(stream: &mut UnixStream, frame: &[u8], with_fd: usize, fd: impl AsFd) {
    let fds = [fd.as_fd()];
    let mut space = [0u8; rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    assert!(control.push(SendAncillaryMessage::ScmRights(&fds)));
    let sent =
        rustix::net::sendmsg(&*stream, &[IoSlice::new(&frame[..with_fd])], &mut control, SendFlags::empty()).unwrap();
    assert_eq!(sent, with_fd);
    stream.write_all(&frame[with_fd..]).unwrap();
}

/// Whether the peer of `probe` has closed its end: the check that an fd
/// carrying it was closed wherever it went, not left open.
fn peer_closed(probe: &mut UnixStream) -> bool {
    probe.set_nonblocking(true).unwrap();
    match probe.read(&mut [0u8; 1]) {
        Ok(0) => true,
        Err(e) if e.kind() == ErrorKind::WouldBlock => false,
        other => panic!("unexpected read on the probe: {other:?}"),
    }
}

#[test]
fn stray_fds_are_closed_and_an_rdonate_needs_one() {
    // A hand-written server: fds with replies that must not carry one, and
    // an Rdonate without one. Each fd it sends is one end of a socketpair
    // whose other end the test keeps, so a leak shows as an open peer.
    let (a, mut b) = UnixStream::pair().unwrap();
    let (mut probe_whole, sent_whole) = UnixStream::pair().unwrap();
    let (mut probe_late, sent_late) = UnixStream::pair().unwrap();
    let server = thread::spawn(move || {
        let (tag, t) = read_request(&mut b);
        assert!(matches!(t, Tmessage::Version(_)));
        let version = Rmessage::Version(Rversion { msize: 8192, version: VERSION_9P2000_L.to_vec() });
        // Even Tversion's reply is read with recvmsg.
        let frame = version.encode(tag).unwrap();
        send_with_fd(&mut b, &frame, frame.len(), &sent_whole);

        let (tag, t) = read_request(&mut b);
        assert!(matches!(t, Tmessage::Clunk(_)));
        let frame = Rmessage::Clunk(Rclunk {}).encode(tag).unwrap();
        send_with_fd(&mut b, &frame, frame.len(), &sent_whole);
        drop(sent_whole);

        // An fd on a later part of the frame, which the client reads plainly.
        let (tag, t) = read_request(&mut b);
        assert!(matches!(t, Tmessage::Clunk(_)));
        let frame = Rmessage::Clunk(Rclunk {}).encode(tag).unwrap();
        b.write_all(&frame[..4]).unwrap();
        send_with_fd(&mut b, &frame[4..], 2, &sent_late);
        drop(sent_late);

        let (tag, t) = read_request(&mut b);
        assert!(matches!(t, Tmessage::Donate(_)));
        b.write_all(&Rmessage::Donate(Rdonate { qid: FILE_QID }).encode(tag).unwrap()).unwrap();

        let (tag, t) = read_request(&mut b);
        assert!(matches!(t, Tmessage::Clunk(_)));
        b.write_all(&Rmessage::Clunk(Rclunk {}).encode(tag).unwrap()).unwrap();
    });

    let client = Client::new(a, 8192).unwrap();
    client.clunk(Fid(1)).unwrap();
    client.clunk(Fid(2)).unwrap();
    // The server drops its copy of an fd before it reads the next request,
    // so after the next reply only a leak in the client could hold the
    // probe's peer open.
    assert!(peer_closed(&mut probe_whole), "an fd sent with Rversion or Rclunk was leaked");
    assert!(matches!(client.donate(Fid(1), 0), Err(Error::Protocol(_))));
    assert!(peer_closed(&mut probe_late), "an fd sent mid-frame was leaked");
    // The stream is still in step.
    client.clunk(Fid(3)).unwrap();
    assert_eq!(client.round_trips(), 5);
    server.join().unwrap();
}
