//! The 9P2000.L server loop: reads and strictly decodes frames, enforces
//! msize and fid rules, and dispatches each request to a `Handler`.
//!
//! The loop owns the protocol rules so that a `Handler` only implements file
//! semantics: Tversion and Tflush never reach it; every fid it is handed has
//! been attached or walked to (unknown fids get EBADF here); a new fid is
//! never one already in use (EINVAL here); read and readdir counts are capped
//! so the reply fits in msize, and replies that would not fit are trimmed or
//! turned into EIO.
//!
//! A reply to moat's Tdonate extension carries the donated fd as
//! `SCM_RIGHTS`, attached to the first byte of its frame; no other reply
//! carries one.

use std::collections::HashSet;
use std::io::{self, IoSlice, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;

use abi::Errno;
use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};

use crate::error::Error;
use crate::wire::{
    check_size, Attr, Rattach, Rauth, Rclunk, Rdonate, Rflush, Rfsync, Rgetlock, Rlcreate, Rlerror, Rlink, Rlock,
    Rlopen, Rmessage, Rmkdir, Rmknod, Rread, Rreaddir, Rreadlink, Rremove, Rrename, Rrenameat, Rsetattr, Rstatfs,
    Rsymlink, Runlinkat, Rversion, Rwalk, Rwrite, Rxattrcreate, Rxattrwalk, Tattach, Tauth, Tclunk, Tdonate, Tfsync,
    Tgetattr, Tgetlock, Tlcreate, Tlink, Tlock, Tlopen, Tmessage, Tmkdir, Tmknod, Tread, Treaddir, Treadlink, Tremove,
    Trename, Trenameat, Tsetattr, Tstatfs, Tsymlink, Tunlinkat, Tversion, Twalk, Twrite, Txattrcreate, Txattrwalk,
    WireError, HEADER_SIZE, READ_REPLY_OVERHEAD, VERSION_9P2000_L,
};
use crate::{Fid, NOFID};

/// The largest msize the server agrees to.
pub const MAX_MSIZE: u32 = (1 << 20) + 4096;
/// The smallest msize either side accepts: room for a full path component
/// walk and a PATH_MAX symlink target.
pub const MIN_MSIZE: u32 = 4096;
/// The most fids one session may hold at once.
pub const MAX_FIDS: usize = 1 << 20;

/// File semantics behind a 9P2000.L server, one method per request type.
///
/// Errors are Linux errnos, sent as Rlerror. Requests a handler does not
/// override fail with EOPNOTSUPP. The server has already checked that every
/// fid named exists and that new fids are free; a handler still looks fids
/// up in its own table and answers EBADF if one is missing.
pub trait Handler {
    /// Binds `t.fid` to the root of tree `t.aname`.
    fn attach(&mut self, t: Tattach) -> Result<Rattach, Errno>;
    /// Walks `t.names` from `t.fid`. Binds `t.newfid` (which may equal
    /// `t.fid`) only if every name was walked; on a partial walk returns the
    /// qids walked so far and leaves `t.newfid` unbound (or unchanged).
    /// An error on the first name is returned as an error.
    fn walk(&mut self, t: Twalk) -> Result<Rwalk, Errno>;
    /// Releases `t.fid`. The server forgets the fid whatever this returns.
    fn clunk(&mut self, t: Tclunk) -> Result<Rclunk, Errno>;
    /// Returns the attributes of `t.fid`.
    fn getattr(&mut self, t: Tgetattr) -> Result<Attr, Errno>;

    /// Sets up an authentication fid; unsupported by default.
    fn auth(&mut self, _t: Tauth) -> Result<Rauth, Errno> {
        Err(Errno::EOPNOTSUPP)
    }
    /// Removes the file and releases the fid (the server forgets it either way).
    fn remove(&mut self, _t: Tremove) -> Result<Rremove, Errno> {
        Err(Errno::EOPNOTSUPP)
    }
    /// File system statistics.
    fn statfs(&mut self, _t: Tstatfs) -> Result<Rstatfs, Errno> {
        Err(Errno::EOPNOTSUPP)
    }
    /// Opens a fid for I/O.
    fn lopen(&mut self, _t: Tlopen) -> Result<Rlopen, Errno> {
        Err(Errno::EOPNOTSUPP)
    }
    /// Creates and opens a file; the fid becomes the new file.
    fn lcreate(&mut self, _t: Tlcreate) -> Result<Rlcreate, Errno> {
        Err(Errno::EOPNOTSUPP)
    }
    /// Creates a symlink.
    fn symlink(&mut self, _t: Tsymlink) -> Result<Rsymlink, Errno> {
        Err(Errno::EOPNOTSUPP)
    }
    /// Creates a special file.
    fn mknod(&mut self, _t: Tmknod) -> Result<Rmknod, Errno> {
        Err(Errno::EOPNOTSUPP)
    }
    /// Renames the file behind a fid.
    fn rename(&mut self, _t: Trename) -> Result<Rrename, Errno> {
        Err(Errno::EOPNOTSUPP)
    }
    /// Reads a symlink.
    fn readlink(&mut self, _t: Treadlink) -> Result<Rreadlink, Errno> {
        Err(Errno::EOPNOTSUPP)
    }
    /// Sets attributes.
    fn setattr(&mut self, _t: Tsetattr) -> Result<Rsetattr, Errno> {
        Err(Errno::EOPNOTSUPP)
    }
    /// Binds `t.newfid` to an extended attribute (the server records the new fid).
    fn xattrwalk(&mut self, _t: Txattrwalk) -> Result<Rxattrwalk, Errno> {
        Err(Errno::EOPNOTSUPP)
    }
    /// Prepares a fid for writing an extended attribute.
    fn xattrcreate(&mut self, _t: Txattrcreate) -> Result<Rxattrcreate, Errno> {
        Err(Errno::EOPNOTSUPP)
    }
    /// Reads at most `t.count` bytes; `t.count` is already capped to fit msize.
    fn read(&mut self, _t: Tread) -> Result<Rread, Errno> {
        Err(Errno::EOPNOTSUPP)
    }
    /// Writes data.
    fn write(&mut self, _t: Twrite) -> Result<Rwrite, Errno> {
        Err(Errno::EOPNOTSUPP)
    }
    /// Returns entries encoding to at most `t.count` bytes (already capped to
    /// fit msize); entries past that are dropped by the server.
    fn readdir(&mut self, _t: Treaddir) -> Result<Rreaddir, Errno> {
        Err(Errno::EOPNOTSUPP)
    }
    /// Flushes to storage.
    fn fsync(&mut self, _t: Tfsync) -> Result<Rfsync, Errno> {
        Err(Errno::EOPNOTSUPP)
    }
    /// Takes or releases a POSIX lock.
    fn lock(&mut self, _t: Tlock) -> Result<Rlock, Errno> {
        Err(Errno::EOPNOTSUPP)
    }
    /// Tests for a POSIX lock.
    fn getlock(&mut self, _t: Tgetlock) -> Result<Rgetlock, Errno> {
        Err(Errno::EOPNOTSUPP)
    }
    /// Creates a hard link.
    fn link(&mut self, _t: Tlink) -> Result<Rlink, Errno> {
        Err(Errno::EOPNOTSUPP)
    }
    /// Creates a directory.
    fn mkdir(&mut self, _t: Tmkdir) -> Result<Rmkdir, Errno> {
        Err(Errno::EOPNOTSUPP)
    }
    /// Renames a directory entry.
    fn renameat(&mut self, _t: Trenameat) -> Result<Rrenameat, Errno> {
        Err(Errno::EOPNOTSUPP)
    }
    /// Removes a directory entry.
    fn unlinkat(&mut self, _t: Tunlinkat) -> Result<Runlinkat, Errno> {
        Err(Errno::EOPNOTSUPP)
    }
    /// moat's extension: opens the file behind `t.fid` with `t.flags` and
    /// returns it, to be sent with the reply as `SCM_RIGHTS`. The fid is
    /// left as it was. Servers that do not donate answer EOPNOTSUPP.
    fn donate(&mut self, _t: Tdonate) -> Result<(Rdonate, OwnedFd), Errno> {
        Err(Errno::EOPNOTSUPP)
    }
}

/// Serves 9P2000.L on `stream` with `handler` until the peer closes the
/// connection (then returns `Ok`). Returns an error on a transport failure
/// or a frame whose header cannot be read (size field below 7 bytes).
pub fn serve(stream: UnixStream, handler: impl Handler) -> Result<(), Error> {
    Session { handler, msize: MAX_MSIZE, versioned: false, fids: HashSet::new() }.run(stream)
}

struct Session<H> {
    handler: H,
    /// The negotiated msize; `MAX_MSIZE` until Tversion.
    msize: u32,
    versioned: bool,
    fids: HashSet<Fid>,
}

/// Whether an I/O error just means the peer has gone.
fn peer_closed(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::UnexpectedEof | io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset)
}

/// Fills `buf`; `Ok(false)` if the peer closed the connection first.
fn read_or_closed(stream: &mut UnixStream, buf: &mut [u8]) -> Result<bool, Error> {
    match stream.read_exact(buf) {
        Ok(()) => Ok(true),
        Err(e) if peer_closed(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

fn lerror(errno: Errno) -> Rmessage {
    Rmessage::Lerror(Rlerror { ecode: errno.0 as u32 })
}

impl<H: Handler> Session<H> {
    fn run(mut self, mut stream: UnixStream) -> Result<(), Error> {
        loop {
            let mut header = [0u8; HEADER_SIZE];
            if !read_or_closed(&mut stream, &mut header[..4])? {
                return Ok(());
            }
            let size = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
            if (size as usize) < HEADER_SIZE {
                // No header to answer: the stream cannot be trusted further.
                return Err(WireError::BadSize { size: u64::from(size), msize: self.msize }.into());
            }
            if !read_or_closed(&mut stream, &mut header[4..])? {
                return Ok(());
            }
            let tag = u16::from_le_bytes([header[5], header[6]]);
            if check_size(size, self.msize).is_err() {
                // Skip the oversized body without buffering it, then refuse it.
                let body = u64::from(size) - HEADER_SIZE as u64;
                let skipped = io::copy(&mut (&stream).take(body), &mut io::sink())?;
                if skipped != body {
                    return Ok(());
                }
                self.reply(&mut stream, tag, lerror(Errno::EINVAL))?;
                continue;
            }
            let mut frame = vec![0u8; size as usize];
            frame[..HEADER_SIZE].copy_from_slice(&header);
            if !read_or_closed(&mut stream, &mut frame[HEADER_SIZE..])? {
                return Ok(());
            }
            let reply = match Tmessage::decode(&frame, self.msize) {
                Ok((_, request)) => self.dispatch(request).unwrap_or_else(|e| (lerror(e), None)),
                Err(_) => (lerror(Errno::EINVAL), None),
            };
            match reply {
                (reply, None) => self.reply(&mut stream, tag, reply)?,
                (reply, Some(fd)) => self.reply_with_fd(&mut stream, tag, reply, fd)?,
            }
        }
    }

    /// The frame of `reply`, or of Rlerror(EIO) if `reply` cannot be sent
    /// whole (a handler bug, or a name the wire cannot carry), rather than a
    /// broken stream.
    fn encode(&self, tag: u16, reply: &Rmessage) -> Result<Vec<u8>, Error> {
        match reply.encode(tag) {
            Ok(f) if f.len() <= self.msize as usize => Ok(f),
            _ => Ok(lerror(Errno::EIO).encode(tag)?),
        }
    }

    fn reply(&self, stream: &mut UnixStream, tag: u16, reply: Rmessage) -> Result<(), Error> {
        let frame = self.encode(tag, &reply)?;
        write_frame(stream, &frame)
    }

    /// Sends `reply` with `fd` attached to its first byte as `SCM_RIGHTS`;
    /// our copy of `fd` is closed once it is on its way.
    fn reply_with_fd(&self, stream: &mut UnixStream, tag: u16, reply: Rmessage, fd: OwnedFd) -> Result<(), Error> {
        let frame = self.encode(tag, &reply)?;
        let fds = [fd.as_fd()];
        let mut space = [0u8; rustix::cmsg_space!(ScmRights(1))];
        let sent = loop {
            let mut control = SendAncillaryBuffer::new(&mut space);
            if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
                return Err(Error::Protocol("no room for SCM_RIGHTS in the control buffer"));
            }
            match rustix::net::sendmsg(&*stream, &[IoSlice::new(&frame)], &mut control, SendFlags::NOSIGNAL) {
                Ok(sent) => break sent,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => {
                    let e = io::Error::from(e);
                    if peer_closed(&e) {
                        return Ok(());
                    }
                    // Nothing was sent (too many fds in flight, say): the
                    // stream is still in step, so answer with the error.
                    let errno = Errno(e.raw_os_error().unwrap_or(Errno::EIO.0));
                    return self.reply(stream, tag, lerror(errno));
                }
            }
        };
        // The fd went with the first byte; a short send leaves only bytes.
        write_frame(stream, &frame[sent..])
    }

    fn known(&self, fid: Fid) -> Result<(), Errno> {
        if self.fids.contains(&fid) {
            Ok(())
        } else {
            Err(Errno::EBADF)
        }
    }

    fn unused(&self, fid: Fid) -> Result<(), Errno> {
        if fid == NOFID || self.fids.contains(&fid) {
            Err(Errno::EINVAL)
        } else if self.fids.len() >= MAX_FIDS {
            Err(Errno::ENFILE)
        } else {
            Ok(())
        }
    }

    fn version(&mut self, t: Tversion) -> Result<Rmessage, Errno> {
        // Tversion starts a new session: every fid is released.
        for fid in std::mem::take(&mut self.fids) {
            let _ = self.handler.clunk(Tclunk { fid });
        }
        if t.version != VERSION_9P2000_L {
            self.versioned = false;
            return Ok(Rmessage::Version(Rversion { msize: t.msize, version: b"unknown".to_vec() }));
        }
        if t.msize < MIN_MSIZE {
            return Err(Errno::EINVAL);
        }
        self.msize = t.msize.min(MAX_MSIZE);
        self.versioned = true;
        Ok(Rmessage::Version(Rversion { msize: self.msize, version: VERSION_9P2000_L.to_vec() }))
    }

    /// The reply to `request`, and the fd to send with it (Rdonate only).
    fn dispatch(&mut self, request: Tmessage) -> Result<(Rmessage, Option<OwnedFd>), Errno> {
        if !self.versioned && !matches!(request, Tmessage::Version(_)) {
            return Err(Errno::EPROTO);
        }
        let max_count = self.msize - READ_REPLY_OVERHEAD;
        let reply = match request {
            Tmessage::Version(t) => self.version(t)?,
            Tmessage::Donate(t) => {
                self.known(t.fid)?;
                let (r, fd) = self.handler.donate(t)?;
                return Ok((Rmessage::Donate(r), Some(fd)));
            }
            // Requests are answered in order, so the flushed one is already done.
            Tmessage::Flush(_) => Rmessage::Flush(Rflush {}),
            Tmessage::Auth(t) => {
                self.unused(t.afid)?;
                let afid = t.afid;
                let r = self.handler.auth(t)?;
                self.fids.insert(afid);
                Rmessage::Auth(r)
            }
            Tmessage::Attach(t) => {
                self.unused(t.fid)?;
                if t.afid != NOFID {
                    self.known(t.afid)?;
                }
                let fid = t.fid;
                let r = self.handler.attach(t)?;
                self.fids.insert(fid);
                Rmessage::Attach(r)
            }
            Tmessage::Walk(t) => {
                self.known(t.fid)?;
                if t.newfid != t.fid {
                    self.unused(t.newfid)?;
                }
                let (newfid, wanted) = (t.newfid, t.names.len());
                let r = self.handler.walk(t)?;
                if r.qids.len() > wanted {
                    return Err(Errno::EIO);
                }
                if r.qids.len() == wanted {
                    self.fids.insert(newfid);
                }
                Rmessage::Walk(r)
            }
            Tmessage::Clunk(t) => {
                self.known(t.fid)?;
                self.fids.remove(&t.fid);
                Rmessage::Clunk(self.handler.clunk(t)?)
            }
            Tmessage::Remove(t) => {
                self.known(t.fid)?;
                self.fids.remove(&t.fid);
                Rmessage::Remove(self.handler.remove(t)?)
            }
            Tmessage::Xattrwalk(t) => {
                self.known(t.fid)?;
                self.unused(t.newfid)?;
                let newfid = t.newfid;
                let r = self.handler.xattrwalk(t)?;
                self.fids.insert(newfid);
                Rmessage::Xattrwalk(r)
            }
            Tmessage::Read(mut t) => {
                self.known(t.fid)?;
                t.count = t.count.min(max_count);
                let count = t.count as usize;
                let mut r = self.handler.read(t)?;
                r.data.0.truncate(count);
                Rmessage::Read(r)
            }
            Tmessage::Readdir(mut t) => {
                self.known(t.fid)?;
                t.count = t.count.min(max_count);
                let count = t.count as usize;
                let mut r = self.handler.readdir(t)?;
                let mut used = 0;
                let fit = r
                    .entries
                    .iter()
                    .take_while(|e| {
                        used += e.encoded_len();
                        used <= count
                    })
                    .count();
                r.entries.truncate(fit);
                Rmessage::Readdir(r)
            }
            Tmessage::Write(t) => {
                self.known(t.fid)?;
                Rmessage::Write(self.handler.write(t)?)
            }
            Tmessage::Statfs(t) => {
                self.known(t.fid)?;
                Rmessage::Statfs(self.handler.statfs(t)?)
            }
            Tmessage::Lopen(t) => {
                self.known(t.fid)?;
                Rmessage::Lopen(self.handler.lopen(t)?)
            }
            Tmessage::Lcreate(t) => {
                self.known(t.fid)?;
                Rmessage::Lcreate(self.handler.lcreate(t)?)
            }
            Tmessage::Readlink(t) => {
                self.known(t.fid)?;
                Rmessage::Readlink(self.handler.readlink(t)?)
            }
            Tmessage::Getattr(t) => {
                self.known(t.fid)?;
                Rmessage::Getattr(self.handler.getattr(t)?)
            }
            Tmessage::Setattr(t) => {
                self.known(t.fid)?;
                Rmessage::Setattr(self.handler.setattr(t)?)
            }
            Tmessage::Xattrcreate(t) => {
                self.known(t.fid)?;
                Rmessage::Xattrcreate(self.handler.xattrcreate(t)?)
            }
            Tmessage::Fsync(t) => {
                self.known(t.fid)?;
                Rmessage::Fsync(self.handler.fsync(t)?)
            }
            Tmessage::Lock(t) => {
                self.known(t.fid)?;
                Rmessage::Lock(self.handler.lock(t)?)
            }
            Tmessage::Getlock(t) => {
                self.known(t.fid)?;
                Rmessage::Getlock(self.handler.getlock(t)?)
            }
            Tmessage::Symlink(t) => {
                self.known(t.dfid)?;
                Rmessage::Symlink(self.handler.symlink(t)?)
            }
            Tmessage::Mknod(t) => {
                self.known(t.dfid)?;
                Rmessage::Mknod(self.handler.mknod(t)?)
            }
            Tmessage::Mkdir(t) => {
                self.known(t.dfid)?;
                Rmessage::Mkdir(self.handler.mkdir(t)?)
            }
            Tmessage::Unlinkat(t) => {
                self.known(t.dfid)?;
                Rmessage::Unlinkat(self.handler.unlinkat(t)?)
            }
            Tmessage::Rename(t) => {
                self.known(t.fid)?;
                self.known(t.dfid)?;
                Rmessage::Rename(self.handler.rename(t)?)
            }
            Tmessage::Link(t) => {
                self.known(t.dfid)?;
                self.known(t.fid)?;
                Rmessage::Link(self.handler.link(t)?)
            }
            Tmessage::Renameat(t) => {
                self.known(t.olddirfid)?;
                self.known(t.newdirfid)?;
                Rmessage::Renameat(self.handler.renameat(t)?)
            }
        };
        Ok((reply, None))
    }
}

/// Writes all of `frame`; a peer that has gone is not an error.
fn write_frame(stream: &mut UnixStream, frame: &[u8]) -> Result<(), Error> {
    match stream.write_all(frame) {
        Err(e) if !peer_closed(&e) => Err(e.into()),
        _ => Ok(()),
    }
}
