//! A blocking, thread-safe 9P2000.L client over a Unix stream socket: one
//! request in flight at a time, fids allocated (and reused) by the client.
//!
//! The start of every reply is read with `recvmsg`, so that an fd sent with
//! it (an Rdonate's) is received rather than silently closed by the kernel,
//! as a plain `read` would.

use std::io::{self, IoSliceMut, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};

use crate::error::Error;
use crate::server::MIN_MSIZE;
use crate::wire::{
    check_size, Attr, Data, DirEntry, Rmessage, Rstatfs, SetAttr, Tattach, Tclunk, Tdonate, Tfsync, Tgetattr, Tlcreate,
    Tlink, Tlopen, Tmessage, Tmkdir, Tmknod, Tread, Treaddir, Treadlink, Tremove, Trenameat, Tsetattr, Tstatfs,
    Tsymlink, Tunlinkat, Tversion, Twalk, Twrite, IO_HEADER_SIZE, MAX_WALK_NAMES, NOTAG, VERSION_9P2000_L,
};
use crate::{Fid, Qid, NOFID};

/// The tag of every request but Tversion; there is never more than one in flight.
const TAG: u16 = 1;
/// `n_uname` meaning "no numeric user given".
const NONUNAME: u32 = u32::MAX;
const ENOENT: i32 = 2;

/// A 9P2000.L client. All methods take `&self`; requests are serialised.
#[derive(Debug)]
pub struct Client {
    connection: Mutex<Connection>,
    fids: Mutex<FidAllocator>,
    msize: u32,
    round_trips: AtomicU64,
}

#[derive(Debug)]
struct Connection {
    stream: UnixStream,
    /// Set while an exchange is under way; still set afterwards if it failed
    /// half-way, since the stream may then be out of step with the server.
    broken: bool,
}

impl Connection {
    /// Sends `frame` and reads the reply, with the fd that came with it, if
    /// any; counts the exchange in `round_trips` once the request is sent.
    fn exchange(
        &mut self,
        frame: &[u8],
        tag: u16,
        msize: u32,
        round_trips: &AtomicU64,
    ) -> Result<(Rmessage, Option<OwnedFd>), Error> {
        if self.broken {
            return Err(Error::Broken);
        }
        self.broken = true;
        self.stream.write_all(frame)?;
        round_trips.fetch_add(1, Ordering::Relaxed);
        let mut size = [0u8; 4];
        let fd = self.recv_with_fd(&mut size)?;
        let len = u32::from_le_bytes(size);
        check_size(len, msize)?;
        let mut reply = vec![0u8; len as usize];
        reply[..4].copy_from_slice(&size);
        // The server attaches an fd to a frame's first byte, received above;
        // a plain read of the rest drops (closes) any fd a peer adds later.
        self.stream.read_exact(&mut reply[4..])?;
        // The stream is back in step; a bad reply body does not desynchronise it.
        self.broken = false;
        let (got, reply) = Rmessage::decode(&reply, msize)?;
        if got != tag {
            self.broken = true;
            return Err(Error::TagMismatch { expected: tag, got });
        }
        Ok((reply, fd))
    }

    /// Fills `buf` with `recvmsg`, keeping the first fd that arrives with
    /// the bytes (close-on-exec). Room is made for one fd; the kernel closes
    /// any more, and any after the first are closed here.
    fn recv_with_fd(&mut self, buf: &mut [u8]) -> Result<Option<OwnedFd>, Error> {
        let mut kept = None;
        let mut done = 0;
        while done < buf.len() {
            let mut space = [0u8; rustix::cmsg_space!(ScmRights(1))];
            let mut control = RecvAncillaryBuffer::new(&mut space);
            let mut iov = [IoSliceMut::new(&mut buf[done..])];
            let received = match rustix::net::recvmsg(&self.stream, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC) {
                Ok(r) => r.bytes,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(io::Error::from(e).into()),
            };
            for message in control.drain() {
                if let RecvAncillaryMessage::ScmRights(fds) = message {
                    for fd in fds {
                        kept.get_or_insert(fd);
                    }
                }
            }
            if received == 0 {
                return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
            }
            done += received;
        }
        Ok(kept)
    }
}

#[derive(Debug, Default)]
struct FidAllocator {
    next: u32,
    free: Vec<u32>,
}

impl FidAllocator {
    fn alloc(&mut self) -> Result<Fid, Error> {
        if let Some(fid) = self.free.pop() {
            return Ok(Fid(fid));
        }
        if self.next == NOFID.0 {
            return Err(Error::FidsExhausted);
        }
        self.next += 1;
        Ok(Fid(self.next - 1))
    }

    fn release(&mut self, fid: Fid) {
        self.free.push(fid.0);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves nothing half-updated that the
    // `broken` flag does not already cover.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Sends a request and unwraps the expected reply variant.
macro_rules! call {
    ($client:expr, $t:ident($body:expr) => $r:ident) => {
        match $client.rpc(Tmessage::$t($body))? {
            Rmessage::$r(reply) => reply,
            _ => return Err(Error::Protocol("reply variant does not match request")),
        }
    };
}

impl Client {
    /// Negotiates 9P2000.L with at most `msize` bytes per message.
    pub fn new(stream: UnixStream, msize: u32) -> Result<Client, Error> {
        let mut connection = Connection { stream, broken: false };
        let round_trips = AtomicU64::new(0);
        let request = Tmessage::Version(Tversion { msize, version: VERSION_9P2000_L.to_vec() });
        let (reply, _) = connection.exchange(&request.encode(NOTAG)?, NOTAG, msize, &round_trips)?;
        let negotiated = match reply {
            Rmessage::Version(r) if r.version == VERSION_9P2000_L && (MIN_MSIZE..=msize).contains(&r.msize) => r.msize,
            Rmessage::Version(r) => {
                return Err(Error::Version {
                    version: String::from_utf8_lossy(&r.version).into_owned(),
                    msize: r.msize,
                })
            }
            Rmessage::Lerror(e) => return Err(Error::Remote(e.ecode as i32)),
            other => return Err(Error::UnexpectedReply { expected: 101, got: other.message_type() }),
        };
        Ok(Client {
            connection: Mutex::new(connection),
            fids: Mutex::new(FidAllocator::default()),
            msize: negotiated,
            round_trips,
        })
    }

    /// The negotiated maximum message size.
    pub fn msize(&self) -> u32 {
        self.msize
    }

    /// How many request/reply exchanges this client has made so far,
    /// Tversion included. This is what moat's `--stats` reports, and what the
    /// file benchmark uses to show that cached operations (and I/O through a
    /// donated fd) cost no round trip.
    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    fn rpc(&self, request: Tmessage) -> Result<Rmessage, Error> {
        // Only an Rdonate may bring an fd; any other is closed here.
        self.rpc_with_fd(request).map(|(reply, _)| reply)
    }

    fn rpc_with_fd(&self, request: Tmessage) -> Result<(Rmessage, Option<OwnedFd>), Error> {
        let expected = request.message_type() + 1;
        let frame = request.encode(TAG)?;
        check_size(frame.len().try_into().unwrap_or(u32::MAX), self.msize)?;
        let (reply, fd) = lock(&self.connection).exchange(&frame, TAG, self.msize, &self.round_trips)?;
        match reply {
            Rmessage::Lerror(e) => Err(Error::Remote(e.ecode as i32)),
            r if r.message_type() == expected => Ok((r, fd)),
            r => Err(Error::UnexpectedReply { expected, got: r.message_type() }),
        }
    }

    fn alloc_fid(&self) -> Result<Fid, Error> {
        lock(&self.fids).alloc()
    }

    fn release_fid(&self, fid: Fid) {
        lock(&self.fids).release(fid);
    }

    /// Attaches to the tree `aname` without naming a user, returning a new
    /// fid for its root. Enough for the Gofer, which serves as one user.
    pub fn attach(&self, aname: &str) -> Result<(Fid, Qid), Error> {
        self.attach_as(aname, NONUNAME)
    }

    /// Attaches to the tree `aname` as numeric user `uid`, as Linux's v9fs
    /// does; servers that check users (diod) refuse an attach without one.
    pub fn attach_as(&self, aname: &str, uid: u32) -> Result<(Fid, Qid), Error> {
        let fid = self.alloc_fid()?;
        let request = Tattach { fid, afid: NOFID, uname: Vec::new(), aname: aname.as_bytes().to_vec(), n_uname: uid };
        match self.rpc(Tmessage::Attach(request)) {
            Ok(Rmessage::Attach(r)) => Ok((fid, r.qid)),
            Ok(_) => {
                self.release_fid(fid);
                Err(Error::Protocol("reply variant does not match request"))
            }
            Err(e) => {
                self.release_fid(fid);
                Err(e)
            }
        }
    }

    /// Walks `names` from `fid` into a new fid; no names clones `fid`.
    /// Walks longer than 16 names are split. A walk that stops short fails
    /// with `Remote(ENOENT)` and leaves no new fid behind.
    pub fn walk(&self, fid: Fid, names: &[&[u8]]) -> Result<(Fid, Vec<Qid>), Error> {
        let newfid = self.alloc_fid()?;
        let mut qids = Vec::with_capacity(names.len());
        let mut from = fid;
        let mut chunks: Vec<&[&[u8]]> = names.chunks(MAX_WALK_NAMES).collect();
        if chunks.is_empty() {
            chunks.push(&[]);
        }
        for chunk in chunks {
            let request = Twalk { fid: from, newfid, names: chunk.iter().map(|n| n.to_vec()).collect() };
            let result = match self.rpc(Tmessage::Walk(request)) {
                Ok(Rmessage::Walk(r)) if r.qids.len() == chunk.len() => Ok(r.qids),
                Ok(Rmessage::Walk(r)) if r.qids.len() < chunk.len() => Err(Error::Remote(ENOENT)),
                Ok(_) => Err(Error::Protocol("Rwalk returned more qids than names")),
                Err(e) => Err(e),
            };
            match result {
                Ok(chunk_qids) => qids.extend(chunk_qids),
                Err(e) => {
                    // The first step binds newfid only on success; later
                    // steps walk newfid onto itself, leaving it bound.
                    if from == newfid {
                        let _ = self.clunk(newfid);
                    } else {
                        self.release_fid(newfid);
                    }
                    return Err(e);
                }
            }
            from = newfid;
        }
        Ok((newfid, qids))
    }

    /// Returns the attributes selected by `mask` (`getattr::*`).
    pub fn getattr(&self, fid: Fid, mask: u64) -> Result<Attr, Error> {
        Ok(call!(self, Getattr(Tgetattr { fid, request_mask: mask }) => Getattr))
    }

    /// Sets the attributes selected by `attr.valid` (`setattr::*`).
    pub fn setattr(&self, fid: Fid, attr: &SetAttr) -> Result<(), Error> {
        call!(self, Setattr(Tsetattr { fid, attr: attr.clone() }) => Setattr);
        Ok(())
    }

    /// Opens `fid` for I/O with Linux open flags; returns its qid and iounit.
    pub fn lopen(&self, fid: Fid, flags: u32) -> Result<(Qid, u32), Error> {
        let r = call!(self, Lopen(Tlopen { fid, flags }) => Lopen);
        Ok((r.qid, r.iounit))
    }

    /// moat's fd-donation extension: asks the server to open the file `fid`
    /// with Linux open `flags` and hand over the host fd (close-on-exec), so
    /// that reads and writes go straight to the host file. `fid` itself
    /// is not opened. Servers other than moat's Gofer answer with an error.
    pub fn donate(&self, fid: Fid, flags: u32) -> Result<(Qid, OwnedFd), Error> {
        match self.rpc_with_fd(Tmessage::Donate(Tdonate { fid, flags }))? {
            (Rmessage::Donate(r), Some(fd)) => {
                // Only regular files are donated: anything else (a FIFO, a
                // socket, a directory to walk from) is the server lying.
                let file = std::fs::File::from(fd);
                match file.metadata() {
                    Ok(m) if m.is_file() => Ok((r.qid, OwnedFd::from(file))),
                    _ => Err(Error::Protocol("Rdonate carried an fd that is not a regular file")),
                }
            }
            (Rmessage::Donate(_), None) => Err(Error::Protocol("Rdonate arrived without an fd")),
            _ => Err(Error::Protocol("reply variant does not match request")),
        }
    }

    /// Creates `name` in directory `fid` and opens it; `fid` becomes the new file.
    pub fn lcreate(&self, fid: Fid, name: &[u8], flags: u32, mode: u32, gid: u32) -> Result<(Qid, u32), Error> {
        let request = Tlcreate { fid, name: name.to_vec(), flags, mode, gid };
        let r = call!(self, Lcreate(request) => Lcreate);
        Ok((r.qid, r.iounit))
    }

    /// Reads into `buf` from `offset`, in as many requests as msize needs.
    /// Returns fewer bytes than `buf.len()` only at end of file (or on a
    /// short read from the server).
    pub fn read(&self, fid: Fid, offset: u64, buf: &mut [u8]) -> Result<usize, Error> {
        let max = (self.msize - IO_HEADER_SIZE) as usize;
        let mut done = 0;
        while done < buf.len() {
            let want = (buf.len() - done).min(max);
            let request = Tread { fid, offset: offset.saturating_add(done as u64), count: want as u32 };
            let data = call!(self, Read(request) => Read).data.0;
            if data.len() > want {
                return Err(Error::Protocol("Rread returned more bytes than asked for"));
            }
            buf[done..done + data.len()].copy_from_slice(&data);
            done += data.len();
            if data.len() < want {
                break;
            }
        }
        Ok(done)
    }

    /// Writes `data` at `offset`, in as many requests as msize needs.
    /// Returns fewer bytes than `data.len()` only if the server wrote short.
    pub fn write(&self, fid: Fid, offset: u64, data: &[u8]) -> Result<usize, Error> {
        let max = (self.msize - IO_HEADER_SIZE) as usize;
        let mut done = 0;
        while done < data.len() {
            let chunk = &data[done..data.len().min(done + max)];
            let request = Twrite { fid, offset: offset.saturating_add(done as u64), data: Data(chunk.to_vec()) };
            let count = call!(self, Write(request) => Write).count as usize;
            if count > chunk.len() {
                return Err(Error::Protocol("Rwrite claims more bytes than sent"));
            }
            done += count;
            if count < chunk.len() {
                break;
            }
        }
        Ok(done)
    }

    /// Reads directory entries starting at cookie `offset` (0 for the start),
    /// at most `count` bytes' worth (capped by msize). Empty at the end.
    pub fn readdir(&self, fid: Fid, offset: u64, count: u32) -> Result<Vec<DirEntry>, Error> {
        let count = count.min(self.msize - IO_HEADER_SIZE);
        Ok(call!(self, Readdir(Treaddir { fid, offset, count }) => Readdir).entries)
    }

    /// Returns the target of the symlink `fid`.
    pub fn readlink(&self, fid: Fid) -> Result<Vec<u8>, Error> {
        Ok(call!(self, Readlink(Treadlink { fid }) => Readlink).target)
    }

    /// Creates directory `name` in `dfid`.
    pub fn mkdir(&self, dfid: Fid, name: &[u8], mode: u32, gid: u32) -> Result<Qid, Error> {
        let request = Tmkdir { dfid, name: name.to_vec(), mode, gid };
        Ok(call!(self, Mkdir(request) => Mkdir).qid)
    }

    /// Creates symlink `name` -> `target` in `dfid`.
    pub fn symlink(&self, dfid: Fid, name: &[u8], target: &[u8], gid: u32) -> Result<Qid, Error> {
        let request = Tsymlink { dfid, name: name.to_vec(), target: target.to_vec(), gid };
        Ok(call!(self, Symlink(request) => Symlink).qid)
    }

    /// Creates a special file `name` in `dfid`.
    pub fn mknod(&self, dfid: Fid, name: &[u8], mode: u32, major: u32, minor: u32, gid: u32) -> Result<Qid, Error> {
        let request = Tmknod { dfid, name: name.to_vec(), mode, major, minor, gid };
        Ok(call!(self, Mknod(request) => Mknod).qid)
    }

    /// Creates hard link `name` in `dfid` to the file `fid`.
    pub fn link(&self, dfid: Fid, fid: Fid, name: &[u8]) -> Result<(), Error> {
        call!(self, Link(Tlink { dfid, fid, name: name.to_vec() }) => Link);
        Ok(())
    }

    /// Renames `oldname` in `olddirfid` to `newname` in `newdirfid`.
    pub fn renameat(&self, olddirfid: Fid, oldname: &[u8], newdirfid: Fid, newname: &[u8]) -> Result<(), Error> {
        let request = Trenameat { olddirfid, oldname: oldname.to_vec(), newdirfid, newname: newname.to_vec() };
        call!(self, Renameat(request) => Renameat);
        Ok(())
    }

    /// Removes `name` from `dfid`; `flags` may be `AT_REMOVEDIR`.
    pub fn unlinkat(&self, dfid: Fid, name: &[u8], flags: u32) -> Result<(), Error> {
        call!(self, Unlinkat(Tunlinkat { dfid, name: name.to_vec(), flags }) => Unlinkat);
        Ok(())
    }

    /// Returns file system statistics for the file system holding `fid`.
    pub fn statfs(&self, fid: Fid) -> Result<Rstatfs, Error> {
        Ok(call!(self, Statfs(Tstatfs { fid }) => Statfs))
    }

    /// Flushes the opened `fid` to storage (data only if `datasync`).
    pub fn fsync(&self, fid: Fid, datasync: bool) -> Result<(), Error> {
        call!(self, Fsync(Tfsync { fid, datasync: u32::from(datasync) }) => Fsync);
        Ok(())
    }

    /// Releases `fid`. The fid is free for reuse even if the server errs.
    pub fn clunk(&self, fid: Fid) -> Result<(), Error> {
        let result = self.rpc(Tmessage::Clunk(Tclunk { fid }));
        self.release_fid(fid);
        result.map(drop)
    }

    /// Removes the file `fid` and releases the fid (even if removal fails).
    pub fn remove(&self, fid: Fid) -> Result<(), Error> {
        let result = self.rpc(Tmessage::Remove(Tremove { fid }));
        self.release_fid(fid);
        result.map(drop)
    }
}
