//! 9P2000.L wire format: the T- and R-message enums and a strict
//! little-endian encoder and decoder that never trusts a length field.
//!
//! A frame is `size[4] type[1] tag[2] body`. Every variable-length item
//! (strings, data, walk names, directory entries) is checked against the
//! bytes actually present before anything is allocated, so the largest
//! allocation a decoder makes is bounded by the frame, which the caller has
//! already bounded by the negotiated msize.

use crate::{Fid, Qid};

/// Bytes in `size[4] type[1] tag[2]`.
pub const HEADER_SIZE: usize = 7;
/// Bytes before the payload of an Rread or Rreaddir: header plus `count[4]`.
pub const READ_REPLY_OVERHEAD: u32 = 11;
/// What a client leaves out of msize for the headers of Tread, Twrite and
/// Treaddir counts: Plan 9's and Linux's IOHDRSZ. A Twrite header is 23
/// bytes, but servers such as diod refuse any count above `msize - 24`.
pub const IO_HEADER_SIZE: u32 = 24;
/// The most names (and qids) one Twalk (Rwalk) may carry.
pub const MAX_WALK_NAMES: usize = 16;
/// The tag used by Tversion.
pub const NOTAG: u16 = 0xffff;
/// The protocol version string this crate speaks.
pub const VERSION_9P2000_L: &[u8] = b"9P2000.L";

/// Why a frame could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The frame ended before the message did.
    #[error("9P frame truncated")]
    Truncated,
    /// The size field is below the header size or above the negotiated msize.
    #[error("9P frame size {size} is outside 7..={msize}")]
    BadSize {
        /// The size the frame claims.
        size: u64,
        /// The negotiated maximum.
        msize: u32,
    },
    /// The size field disagrees with the bytes handed to the decoder.
    #[error("9P frame size field {size} but {actual} bytes present")]
    SizeMismatch {
        /// The size the frame claims.
        size: u32,
        /// The bytes present.
        actual: usize,
    },
    /// The type byte names no message this side accepts.
    #[error("unknown 9P message type {0}")]
    UnknownType(u8),
    /// The message was complete before the frame was.
    #[error("{0} unexpected bytes after the 9P message")]
    TrailingBytes(usize),
    /// A walk carried more than 16 names or qids.
    #[error("9P walk of {0} elements exceeds the limit of 16")]
    TooManyWalkElements(usize),
    /// A string longer than a `len[2]` prefix can describe.
    #[error("9P string of {0} bytes exceeds 65535")]
    StringTooLong(usize),
    /// A data block longer than a `count[4]` prefix can describe.
    #[error("9P data of {0} bytes exceeds the 32-bit count")]
    DataTooLong(usize),
}

/// Reads fields from a frame body, failing on any overrun.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if n > self.buf.len() {
            return Err(WireError::Truncated);
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
}

/// A value with a 9P encoding.
pub trait Wire: Sized {
    /// Appends the encoding of `self` to `out`.
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), WireError>;
    /// Reads one value from `r`.
    fn decode(r: &mut Reader<'_>) -> Result<Self, WireError>;
}

macro_rules! wire_int {
    ($($ty:ty),*) => {$(
        impl Wire for $ty {
            fn encode(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
                out.extend_from_slice(&self.to_le_bytes());
                Ok(())
            }
            fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
                Ok(<$ty>::from_le_bytes(r.array()?))
            }
        }
    )*};
}
wire_int!(u8, u16, u32, u64);

impl Wire for Fid {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        self.0.encode(out)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(Fid(u32::decode(r)?))
    }
}

impl Wire for Qid {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        self.ty.encode(out)?;
        self.version.encode(out)?;
        self.path.encode(out)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(Qid { ty: u8::decode(r)?, version: u32::decode(r)?, path: u64::decode(r)? })
    }
}

/// A 9P string, `len[2]` then bytes. 9P2000.L names are bytes, not UTF-8.
impl Wire for Vec<u8> {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        let len = u16::try_from(self.len()).map_err(|_| WireError::StringTooLong(self.len()))?;
        len.encode(out)?;
        out.extend_from_slice(self);
        Ok(())
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let len = u16::decode(r)?;
        Ok(r.take(usize::from(len))?.to_vec())
    }
}

/// Bulk data, `count[4]` then bytes (Twrite, Rread).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Data(pub Vec<u8>);

impl Wire for Data {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        let len = u32::try_from(self.0.len()).map_err(|_| WireError::DataTooLong(self.0.len()))?;
        len.encode(out)?;
        out.extend_from_slice(&self.0);
        Ok(())
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let len = u32::decode(r)?;
        let len = usize::try_from(len).map_err(|_| WireError::Truncated)?;
        Ok(Data(r.take(len)?.to_vec()))
    }
}

fn walk_count(n: usize) -> Result<u16, WireError> {
    if n > MAX_WALK_NAMES {
        return Err(WireError::TooManyWalkElements(n));
    }
    Ok(n as u16)
}

/// Twalk names, `nwname[2]` then that many strings.
impl Wire for Vec<Vec<u8>> {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        walk_count(self.len())?.encode(out)?;
        self.iter().try_for_each(|name| name.encode(out))
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let n = walk_count(usize::from(u16::decode(r)?))?;
        (0..n).map(|_| Vec::<u8>::decode(r)).collect()
    }
}

/// Rwalk qids, `nwqid[2]` then that many qids.
impl Wire for Vec<Qid> {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        walk_count(self.len())?.encode(out)?;
        self.iter().try_for_each(|qid| qid.encode(out))
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let n = walk_count(usize::from(u16::decode(r)?))?;
        (0..n).map(|_| Qid::decode(r)).collect()
    }
}

/// One entry of an Rreaddir: `qid[13] offset[8] type[1] name[s]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DirEntry {
    /// The entry's qid (type and path; version is usually 0).
    pub qid: Qid,
    /// The cookie to pass as the Treaddir offset to continue after this entry.
    pub offset: u64,
    /// The `d_type` value (`DT_DIR`, `DT_REG`, ...).
    pub dtype: u8,
    /// The entry's name.
    pub name: Vec<u8>,
}

impl DirEntry {
    /// Bytes this entry takes in an Rreaddir.
    pub fn encoded_len(&self) -> usize {
        13 + 8 + 1 + 2 + self.name.len()
    }
}

impl Wire for DirEntry {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        self.qid.encode(out)?;
        self.offset.encode(out)?;
        self.dtype.encode(out)?;
        self.name.encode(out)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(DirEntry {
            qid: Qid::decode(r)?,
            offset: u64::decode(r)?,
            dtype: u8::decode(r)?,
            name: Vec::<u8>::decode(r)?,
        })
    }
}

/// Rreaddir payload, `count[4]` then packed entries filling exactly `count` bytes.
impl Wire for Vec<DirEntry> {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        let len: usize = self.iter().map(DirEntry::encoded_len).sum();
        let count = u32::try_from(len).map_err(|_| WireError::DataTooLong(len))?;
        count.encode(out)?;
        self.iter().try_for_each(|e| e.encode(out))
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let count = u32::decode(r)?;
        let count = usize::try_from(count).map_err(|_| WireError::Truncated)?;
        let mut inner = Reader::new(r.take(count)?);
        let mut entries = Vec::new();
        while inner.remaining() > 0 {
            entries.push(DirEntry::decode(&mut inner)?);
        }
        Ok(entries)
    }
}

macro_rules! wire_struct {
    ($($(#[$meta:meta])* $name:ident { $($(#[$fmeta:meta])* $field:ident : $ty:ty),* $(,)? })*) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
        }
        impl Wire for $name {
            #[allow(unused_variables)]
            fn encode(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
                $(self.$field.encode(out)?;)*
                Ok(())
            }
            #[allow(unused_variables)]
            fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
                Ok($name { $($field: <$ty as Wire>::decode(r)?,)* })
            }
        }
    )*};
}

wire_struct! {
    /// Negotiates msize and protocol version; resets the session.
    Tversion { msize: u32, version: Vec<u8> }
    /// Reply to Tversion.
    Rversion { msize: u32, version: Vec<u8> }
    /// Requests an authentication fid.
    Tauth { afid: Fid, uname: Vec<u8>, aname: Vec<u8>, n_uname: u32 }
    /// Reply to Tauth.
    Rauth { aqid: Qid }
    /// Binds `fid` to the root of the tree named `aname`.
    Tattach { fid: Fid, afid: Fid, uname: Vec<u8>, aname: Vec<u8>, n_uname: u32 }
    /// Reply to Tattach.
    Rattach { qid: Qid }
    /// Error reply: a Linux errno.
    Rlerror { ecode: u32 }
    /// Aborts the request with tag `oldtag`.
    Tflush { oldtag: u16 }
    /// Reply to Tflush.
    Rflush {}
    /// Walks `names` from `fid`, binding the result to `newfid`.
    Twalk { fid: Fid, newfid: Fid, names: Vec<Vec<u8>> }
    /// Reply to Twalk: one qid per name walked.
    Rwalk { qids: Vec<Qid> }
    /// Reads `count` bytes at `offset` from an opened fid.
    Tread { fid: Fid, offset: u64, count: u32 }
    /// Reply to Tread.
    Rread { data: Data }
    /// Writes `data` at `offset` to an opened fid.
    Twrite { fid: Fid, offset: u64, data: Data }
    /// Reply to Twrite.
    Rwrite { count: u32 }
    /// Releases `fid`.
    Tclunk { fid: Fid }
    /// Reply to Tclunk.
    Rclunk {}
    /// Removes the file behind `fid` and releases the fid.
    Tremove { fid: Fid }
    /// Reply to Tremove.
    Rremove {}
    /// Asks for file system statistics.
    Tstatfs { fid: Fid }
    /// Reply to Tstatfs.
    Rstatfs {
        fs_type: u32, bsize: u32, blocks: u64, bfree: u64, bavail: u64,
        files: u64, ffree: u64, fsid: u64, namelen: u32,
    }
    /// Opens `fid` for I/O with Linux open flags.
    Tlopen { fid: Fid, flags: u32 }
    /// Reply to Tlopen.
    Rlopen { qid: Qid, iounit: u32 }
    /// moat's fd-donation extension, not standard 9P2000.L: asks the server
    /// to open the file behind `fid` with Linux open `flags` and hand the
    /// host fd over, so that reads and writes (and private mappings, which
    /// copy the file) skip the round trip.
    /// The fid itself stays as it was (not opened).
    Tdonate { fid: Fid, flags: u32 }
    /// Reply to Tdonate (moat's extension). The frame carries exactly one fd,
    /// the opened file, as `SCM_RIGHTS` ancillary data attached to the reply
    /// frame's first byte; `qid` is that file's.
    Rdonate { qid: Qid }
    /// Creates and opens `name` in directory `fid`; `fid` becomes the new file.
    Tlcreate { fid: Fid, name: Vec<u8>, flags: u32, mode: u32, gid: u32 }
    /// Reply to Tlcreate.
    Rlcreate { qid: Qid, iounit: u32 }
    /// Creates symlink `name` -> `target` in directory `dfid`.
    Tsymlink { dfid: Fid, name: Vec<u8>, target: Vec<u8>, gid: u32 }
    /// Reply to Tsymlink.
    Rsymlink { qid: Qid }
    /// Creates a device node, FIFO or socket `name` in directory `dfid`.
    Tmknod { dfid: Fid, name: Vec<u8>, mode: u32, major: u32, minor: u32, gid: u32 }
    /// Reply to Tmknod.
    Rmknod { qid: Qid }
    /// Renames the file behind `fid` to `name` in directory `dfid`.
    Trename { fid: Fid, dfid: Fid, name: Vec<u8> }
    /// Reply to Trename.
    Rrename {}
    /// Reads the target of the symlink behind `fid`.
    Treadlink { fid: Fid }
    /// Reply to Treadlink.
    Rreadlink { target: Vec<u8> }
    /// Asks for the attributes selected by `request_mask` (`GETATTR_*`).
    Tgetattr { fid: Fid, request_mask: u64 }
    /// Sets the attributes selected by `attr.valid` (`SETATTR_*`).
    Tsetattr { fid: Fid, attr: SetAttr }
    /// Reply to Tsetattr.
    Rsetattr {}
    /// Prepares `newfid` to read extended attribute `name` (or the list, if empty).
    Txattrwalk { fid: Fid, newfid: Fid, name: Vec<u8> }
    /// Reply to Txattrwalk.
    Rxattrwalk { size: u64 }
    /// Prepares `fid` to write extended attribute `name`.
    Txattrcreate { fid: Fid, name: Vec<u8>, attr_size: u64, flags: u32 }
    /// Reply to Txattrcreate.
    Rxattrcreate {}
    /// Reads directory entries from an opened directory fid.
    Treaddir { fid: Fid, offset: u64, count: u32 }
    /// Reply to Treaddir.
    Rreaddir { entries: Vec<DirEntry> }
    /// Flushes an opened fid to storage.
    Tfsync { fid: Fid, datasync: u32 }
    /// Reply to Tfsync.
    Rfsync {}
    /// Acquires or releases a POSIX record lock.
    Tlock { fid: Fid, lock_type: u8, flags: u32, start: u64, length: u64, proc_id: u32, client_id: Vec<u8> }
    /// Reply to Tlock: `LOCK_SUCCESS`, `LOCK_BLOCKED`, ...
    Rlock { status: u8 }
    /// Tests for a conflicting POSIX record lock.
    Tgetlock { fid: Fid, lock_type: u8, start: u64, length: u64, proc_id: u32, client_id: Vec<u8> }
    /// Reply to Tgetlock.
    Rgetlock { lock_type: u8, start: u64, length: u64, proc_id: u32, client_id: Vec<u8> }
    /// Creates hard link `name` in directory `dfid` to the file behind `fid`.
    Tlink { dfid: Fid, fid: Fid, name: Vec<u8> }
    /// Reply to Tlink.
    Rlink {}
    /// Creates directory `name` in directory `dfid`.
    Tmkdir { dfid: Fid, name: Vec<u8>, mode: u32, gid: u32 }
    /// Reply to Tmkdir.
    Rmkdir { qid: Qid }
    /// Renames `oldname` in `olddirfid` to `newname` in `newdirfid`.
    Trenameat { olddirfid: Fid, oldname: Vec<u8>, newdirfid: Fid, newname: Vec<u8> }
    /// Reply to Trenameat.
    Rrenameat {}
    /// Removes `name` from directory `dfid`; `flags` may hold `AT_REMOVEDIR`.
    Tunlinkat { dfid: Fid, name: Vec<u8>, flags: u32 }
    /// Reply to Tunlinkat.
    Runlinkat {}
    /// The attributes a Tsetattr carries.
    SetAttr {
        valid: u32, mode: u32, uid: u32, gid: u32, size: u64,
        atime_sec: u64, atime_nsec: u64, mtime_sec: u64, mtime_nsec: u64,
    }
    /// Reply to Tgetattr: every Rgetattr field; `valid` says which are meaningful.
    Attr {
        valid: u64, qid: Qid, mode: u32, uid: u32, gid: u32, nlink: u64, rdev: u64,
        size: u64, blksize: u64, blocks: u64,
        atime_sec: u64, atime_nsec: u64, mtime_sec: u64, mtime_nsec: u64,
        ctime_sec: u64, ctime_nsec: u64, btime_sec: u64, btime_nsec: u64,
        gen: u64, data_version: u64,
    }
}

/// Reads the header of a complete frame: `(type, tag)`, after checking the
/// size field against the frame length and `msize`.
pub fn decode_header(frame: &[u8], msize: u32) -> Result<(u8, u16), WireError> {
    let mut r = Reader::new(frame);
    let size = u32::decode(&mut r)?;
    check_size(size, msize)?;
    if usize::try_from(size).ok() != Some(frame.len()) {
        return Err(WireError::SizeMismatch { size, actual: frame.len() });
    }
    Ok((u8::decode(&mut r)?, u16::decode(&mut r)?))
}

/// Checks a frame's size field against the header size and `msize`.
pub fn check_size(size: u32, msize: u32) -> Result<(), WireError> {
    if (size as usize) < HEADER_SIZE || size > msize {
        return Err(WireError::BadSize { size: u64::from(size), msize });
    }
    Ok(())
}

fn frame<T: Wire>(ty: u8, tag: u16, body: &T) -> Result<Vec<u8>, WireError> {
    let mut out = vec![0u8; 4];
    out.push(ty);
    out.extend_from_slice(&tag.to_le_bytes());
    body.encode(&mut out)?;
    let size = u32::try_from(out.len()).map_err(|_| WireError::DataTooLong(out.len()))?;
    out[..4].copy_from_slice(&size.to_le_bytes());
    Ok(out)
}

fn finish<T>(r: &Reader<'_>, value: T) -> Result<T, WireError> {
    match r.remaining() {
        0 => Ok(value),
        n => Err(WireError::TrailingBytes(n)),
    }
}

macro_rules! message_enum {
    ($(#[$meta:meta])* $enum:ident { $($variant:ident($payload:ident) = $id:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum $enum {
            $(
                #[allow(missing_docs)]
                $variant($payload),
            )*
        }

        impl $enum {
            /// The message's type byte.
            pub fn message_type(&self) -> u8 {
                match self { $(Self::$variant(_) => $id,)* }
            }

            /// Encodes a whole frame with `tag`.
            pub fn encode(&self, tag: u16) -> Result<Vec<u8>, WireError> {
                match self { $(Self::$variant(body) => frame($id, tag, body),)* }
            }

            /// Decodes a whole frame (size field included) strictly:
            /// the size must match `frame.len()` and be at most `msize`,
            /// the type must be known and no bytes may be left over.
            /// Returns the tag and the message.
            pub fn decode(frame: &[u8], msize: u32) -> Result<(u16, Self), WireError> {
                let (ty, tag) = decode_header(frame, msize)?;
                let mut r = Reader::new(&frame[HEADER_SIZE..]);
                let msg = match ty {
                    $($id => Self::$variant($payload::decode(&mut r)?),)*
                    other => return Err(WireError::UnknownType(other)),
                };
                finish(&r, (tag, msg))
            }
        }
    };
}

message_enum! {
    /// A request (client to server).
    Tmessage {
        Statfs(Tstatfs) = 8,
        Lopen(Tlopen) = 12,
        Lcreate(Tlcreate) = 14,
        Symlink(Tsymlink) = 16,
        Mknod(Tmknod) = 18,
        Rename(Trename) = 20,
        Readlink(Treadlink) = 22,
        Getattr(Tgetattr) = 24,
        Setattr(Tsetattr) = 26,
        Xattrwalk(Txattrwalk) = 30,
        Xattrcreate(Txattrcreate) = 32,
        Readdir(Treaddir) = 40,
        Fsync(Tfsync) = 50,
        Lock(Tlock) = 52,
        Getlock(Tgetlock) = 54,
        Link(Tlink) = 70,
        Mkdir(Tmkdir) = 72,
        Renameat(Trenameat) = 74,
        Unlinkat(Tunlinkat) = 76,
        Version(Tversion) = 100,
        Auth(Tauth) = 102,
        Attach(Tattach) = 104,
        Flush(Tflush) = 108,
        Walk(Twalk) = 110,
        Read(Tread) = 116,
        Write(Twrite) = 118,
        Clunk(Tclunk) = 120,
        Remove(Tremove) = 122,
        // moat's extension, above every standard 9P2000.L type.
        Donate(Tdonate) = 200,
    }
}

message_enum! {
    /// A reply (server to client).
    Rmessage {
        Lerror(Rlerror) = 7,
        Statfs(Rstatfs) = 9,
        Lopen(Rlopen) = 13,
        Lcreate(Rlcreate) = 15,
        Symlink(Rsymlink) = 17,
        Mknod(Rmknod) = 19,
        Rename(Rrename) = 21,
        Readlink(Rreadlink) = 23,
        Getattr(Attr) = 25,
        Setattr(Rsetattr) = 27,
        Xattrwalk(Rxattrwalk) = 31,
        Xattrcreate(Rxattrcreate) = 33,
        Readdir(Rreaddir) = 41,
        Fsync(Rfsync) = 51,
        Lock(Rlock) = 53,
        Getlock(Rgetlock) = 55,
        Link(Rlink) = 71,
        Mkdir(Rmkdir) = 73,
        Renameat(Rrenameat) = 75,
        Unlinkat(Runlinkat) = 77,
        Version(Rversion) = 101,
        Auth(Rauth) = 103,
        Attach(Rattach) = 105,
        Flush(Rflush) = 109,
        Walk(Rwalk) = 111,
        Read(Rread) = 117,
        Write(Rwrite) = 119,
        Clunk(Rclunk) = 121,
        Remove(Rremove) = 123,
        // moat's extension; its frame carries an fd (see `Rdonate`).
        Donate(Rdonate) = 201,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSIZE: u32 = 1 << 16;

    fn qid(n: u64) -> Qid {
        Qid { ty: 0x80, version: 7, path: n }
    }

    fn all_tmessages() -> Vec<Tmessage> {
        let n = || b"name".to_vec();
        vec![
            Tmessage::Statfs(Tstatfs { fid: Fid(1) }),
            Tmessage::Lopen(Tlopen { fid: Fid(1), flags: 2 }),
            Tmessage::Lcreate(Tlcreate { fid: Fid(1), name: n(), flags: 0o101, mode: 0o644, gid: 5 }),
            Tmessage::Symlink(Tsymlink { dfid: Fid(1), name: n(), target: b"/t".to_vec(), gid: 3 }),
            Tmessage::Mknod(Tmknod { dfid: Fid(1), name: n(), mode: 0o10644, major: 1, minor: 2, gid: 3 }),
            Tmessage::Rename(Trename { fid: Fid(1), dfid: Fid(2), name: n() }),
            Tmessage::Readlink(Treadlink { fid: Fid(1) }),
            Tmessage::Getattr(Tgetattr { fid: Fid(1), request_mask: 0x3fff }),
            Tmessage::Setattr(Tsetattr {
                fid: Fid(1),
                attr: SetAttr {
                    valid: 0x1ff,
                    mode: 1,
                    uid: 2,
                    gid: 3,
                    size: 4,
                    atime_sec: 5,
                    atime_nsec: 6,
                    mtime_sec: 7,
                    mtime_nsec: 8,
                },
            }),
            Tmessage::Xattrwalk(Txattrwalk { fid: Fid(1), newfid: Fid(2), name: n() }),
            Tmessage::Xattrcreate(Txattrcreate { fid: Fid(1), name: n(), attr_size: 9, flags: 1 }),
            Tmessage::Readdir(Treaddir { fid: Fid(1), offset: 99, count: 4096 }),
            Tmessage::Fsync(Tfsync { fid: Fid(1), datasync: 1 }),
            Tmessage::Lock(Tlock {
                fid: Fid(1),
                lock_type: 1,
                flags: 2,
                start: 3,
                length: 4,
                proc_id: 5,
                client_id: n(),
            }),
            Tmessage::Getlock(Tgetlock { fid: Fid(1), lock_type: 1, start: 3, length: 4, proc_id: 5, client_id: n() }),
            Tmessage::Link(Tlink { dfid: Fid(1), fid: Fid(2), name: n() }),
            Tmessage::Mkdir(Tmkdir { dfid: Fid(1), name: n(), mode: 0o755, gid: 0 }),
            Tmessage::Renameat(Trenameat {
                olddirfid: Fid(1),
                oldname: n(),
                newdirfid: Fid(2),
                newname: b"x".to_vec(),
            }),
            Tmessage::Unlinkat(Tunlinkat { dfid: Fid(1), name: n(), flags: 0x200 }),
            Tmessage::Version(Tversion { msize: 8192, version: VERSION_9P2000_L.to_vec() }),
            Tmessage::Auth(Tauth { afid: Fid(1), uname: n(), aname: n(), n_uname: 0 }),
            Tmessage::Attach(Tattach {
                fid: Fid(1),
                afid: Fid(u32::MAX),
                uname: n(),
                aname: Vec::new(),
                n_uname: 1000,
            }),
            Tmessage::Flush(Tflush { oldtag: 3 }),
            Tmessage::Walk(Twalk { fid: Fid(1), newfid: Fid(2), names: vec![n(), b"b".to_vec()] }),
            Tmessage::Read(Tread { fid: Fid(1), offset: 10, count: 100 }),
            Tmessage::Write(Twrite { fid: Fid(1), offset: 10, data: Data(b"hello".to_vec()) }),
            Tmessage::Clunk(Tclunk { fid: Fid(1) }),
            Tmessage::Remove(Tremove { fid: Fid(1) }),
            Tmessage::Donate(Tdonate { fid: Fid(1), flags: 2 }),
        ]
    }

    fn all_rmessages() -> Vec<Rmessage> {
        let entry = |i: u64| DirEntry { qid: qid(i), offset: i + 1, dtype: 4, name: format!("e{i}").into_bytes() };
        vec![
            Rmessage::Lerror(Rlerror { ecode: 2 }),
            Rmessage::Statfs(Rstatfs {
                fs_type: 1,
                bsize: 2,
                blocks: 3,
                bfree: 4,
                bavail: 5,
                files: 6,
                ffree: 7,
                fsid: 8,
                namelen: 255,
            }),
            Rmessage::Lopen(Rlopen { qid: qid(1), iounit: 0 }),
            Rmessage::Lcreate(Rlcreate { qid: qid(2), iounit: 4096 }),
            Rmessage::Symlink(Rsymlink { qid: qid(3) }),
            Rmessage::Mknod(Rmknod { qid: qid(4) }),
            Rmessage::Rename(Rrename {}),
            Rmessage::Readlink(Rreadlink { target: b"../x".to_vec() }),
            Rmessage::Getattr(Attr {
                valid: 0x7ff,
                qid: qid(5),
                mode: 0o40755,
                uid: 1,
                gid: 2,
                nlink: 3,
                rdev: 4,
                size: 5,
                blksize: 6,
                blocks: 7,
                atime_sec: 8,
                atime_nsec: 9,
                mtime_sec: 10,
                mtime_nsec: 11,
                ctime_sec: 12,
                ctime_nsec: 13,
                btime_sec: 14,
                btime_nsec: 15,
                gen: 16,
                data_version: 17,
            }),
            Rmessage::Setattr(Rsetattr {}),
            Rmessage::Xattrwalk(Rxattrwalk { size: 12 }),
            Rmessage::Xattrcreate(Rxattrcreate {}),
            Rmessage::Readdir(Rreaddir { entries: vec![entry(1), entry(2), entry(3)] }),
            Rmessage::Fsync(Rfsync {}),
            Rmessage::Lock(Rlock { status: 0 }),
            Rmessage::Getlock(Rgetlock { lock_type: 2, start: 0, length: 0, proc_id: 1, client_id: b"c".to_vec() }),
            Rmessage::Link(Rlink {}),
            Rmessage::Mkdir(Rmkdir { qid: qid(6) }),
            Rmessage::Renameat(Rrenameat {}),
            Rmessage::Unlinkat(Runlinkat {}),
            Rmessage::Version(Rversion { msize: 8192, version: VERSION_9P2000_L.to_vec() }),
            Rmessage::Auth(Rauth { aqid: qid(7) }),
            Rmessage::Attach(Rattach { qid: qid(8) }),
            Rmessage::Flush(Rflush {}),
            Rmessage::Walk(Rwalk { qids: vec![qid(9), qid(10)] }),
            Rmessage::Read(Rread { data: Data(vec![1, 2, 3]) }),
            Rmessage::Write(Rwrite { count: 3 }),
            Rmessage::Clunk(Rclunk {}),
            Rmessage::Remove(Rremove {}),
            Rmessage::Donate(Rdonate { qid: qid(11) }),
        ]
    }

    #[test]
    fn every_tmessage_round_trips() {
        let msgs = all_tmessages();
        assert_eq!(msgs.len(), 29);
        for msg in msgs {
            let frame = msg.encode(42).unwrap();
            assert_eq!(frame[4], msg.message_type());
            let (tag, back) = Tmessage::decode(&frame, MSIZE).unwrap();
            assert_eq!((tag, &back), (42, &msg));
        }
    }

    #[test]
    fn every_rmessage_round_trips() {
        let msgs = all_rmessages();
        assert_eq!(msgs.len(), 30);
        for msg in msgs {
            let frame = msg.encode(7).unwrap();
            let (tag, back) = Rmessage::decode(&frame, MSIZE).unwrap();
            assert_eq!((tag, &back), (7, &msg));
        }
    }

    #[test]
    fn known_byte_layout() {
        let frame =
            Tmessage::Walk(Twalk { fid: Fid(1), newfid: Fid(2), names: vec![b"ab".to_vec()] }).encode(0x0102).unwrap();
        let expected = [21, 0, 0, 0, 110, 2, 1, 1, 0, 0, 0, 2, 0, 0, 0, 1, 0, 2, 0, b'a', b'b'];
        assert_eq!(frame, expected);
        // The extension pair: `fid[4] flags[4]` and `qid[13]`, like Tlopen's start.
        let frame = Tmessage::Donate(Tdonate { fid: Fid(1), flags: 2 }).encode(3).unwrap();
        assert_eq!(frame, [15, 0, 0, 0, 200, 3, 0, 1, 0, 0, 0, 2, 0, 0, 0]);
        let frame = Rmessage::Donate(Rdonate { qid: Qid { ty: 0, version: 1, path: 2 } }).encode(3).unwrap();
        assert_eq!(frame, [20, 0, 0, 0, 201, 3, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn every_truncation_is_rejected() {
        for msg in all_tmessages() {
            let frame = msg.encode(1).unwrap();
            for cut in 0..frame.len() {
                let mut short = frame[..cut].to_vec();
                if short.len() >= 4 {
                    // Keep the size field honest so the body parser is what fails.
                    let len = short.len() as u32;
                    short[..4].copy_from_slice(&len.to_le_bytes());
                }
                assert!(Tmessage::decode(&short, MSIZE).is_err(), "{msg:?} cut at {cut}");
            }
        }
        for msg in all_rmessages() {
            let frame = msg.encode(1).unwrap();
            for cut in 0..frame.len() {
                assert!(Rmessage::decode(&frame[..cut], MSIZE).is_err());
            }
        }
    }

    #[test]
    fn hostile_frames_are_rejected() {
        let good = Tmessage::Clunk(Tclunk { fid: Fid(1) }).encode(1).unwrap();

        let mut huge = good.clone();
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(Tmessage::decode(&huge, MSIZE), Err(WireError::BadSize { .. })));

        let mut tiny = good.clone();
        tiny[..4].copy_from_slice(&3u32.to_le_bytes());
        assert!(matches!(Tmessage::decode(&tiny, MSIZE), Err(WireError::BadSize { .. })));

        let mut unknown = good.clone();
        unknown[4] = 250;
        assert_eq!(Tmessage::decode(&unknown, MSIZE), Err(WireError::UnknownType(250)));

        // An R-message type is unknown to the T decoder.
        let mut reply_type = good.clone();
        reply_type[4] = 121;
        assert_eq!(Tmessage::decode(&reply_type, MSIZE), Err(WireError::UnknownType(121)));

        let mut trailing = good.clone();
        trailing.push(0);
        let len = trailing.len() as u32;
        trailing[..4].copy_from_slice(&len.to_le_bytes());
        assert_eq!(Tmessage::decode(&trailing, MSIZE), Err(WireError::TrailingBytes(1)));

        // A frame larger than msize is refused even if well formed.
        let write = Tmessage::Write(Twrite { fid: Fid(1), offset: 0, data: Data(vec![0; 200]) }).encode(1).unwrap();
        assert!(matches!(Tmessage::decode(&write, 100), Err(WireError::BadSize { .. })));

        // A string whose length runs past the end of the frame.
        let mut walk =
            Tmessage::Walk(Twalk { fid: Fid(1), newfid: Fid(2), names: vec![b"ab".to_vec()] }).encode(1).unwrap();
        walk[17..19].copy_from_slice(&0xffffu16.to_le_bytes());
        assert_eq!(Tmessage::decode(&walk, MSIZE), Err(WireError::Truncated));

        // Too many walk names.
        let mut walk = Tmessage::Walk(Twalk { fid: Fid(1), newfid: Fid(2), names: vec![] }).encode(1).unwrap();
        walk[15..17].copy_from_slice(&17u16.to_le_bytes());
        walk.extend_from_slice(&[0u8; 34]);
        let len = walk.len() as u32;
        walk[..4].copy_from_slice(&len.to_le_bytes());
        assert_eq!(Tmessage::decode(&walk, MSIZE), Err(WireError::TooManyWalkElements(17)));

        // A data count far larger than the frame.
        let mut write = Tmessage::Write(Twrite { fid: Fid(1), offset: 0, data: Data(vec![1]) }).encode(1).unwrap();
        write[19..23].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(Tmessage::decode(&write, MSIZE), Err(WireError::Truncated));

        // A readdir count covering half an entry.
        let mut rd = Rmessage::Readdir(Rreaddir {
            entries: vec![DirEntry { qid: qid(1), offset: 1, dtype: 8, name: b"x".to_vec() }],
        })
        .encode(1)
        .unwrap();
        rd[7..11].copy_from_slice(&10u32.to_le_bytes());
        assert!(Rmessage::decode(&rd, MSIZE).is_err());

        // Size field disagreeing with the bytes handed over.
        let mut lying = good;
        lying.push(0);
        assert!(matches!(Tmessage::decode(&lying, MSIZE), Err(WireError::SizeMismatch { .. })));
    }

    #[test]
    fn encoder_refuses_what_the_wire_cannot_carry() {
        let long = vec![b'a'; 70_000];
        let msg = Tmessage::Mkdir(Tmkdir { dfid: Fid(1), name: long, mode: 0, gid: 0 });
        assert_eq!(msg.encode(1), Err(WireError::StringTooLong(70_000)));
        let names = vec![b"a".to_vec(); 17];
        let msg = Tmessage::Walk(Twalk { fid: Fid(1), newfid: Fid(2), names });
        assert_eq!(msg.encode(1), Err(WireError::TooManyWalkElements(17)));
    }

    #[test]
    fn garbage_never_panics() {
        // A cheap deterministic fuzz: mutate valid frames byte by byte.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let frames: Vec<Vec<u8>> = all_tmessages()
            .iter()
            .map(|m| m.encode(1).unwrap())
            .chain(all_rmessages().iter().map(|m| m.encode(1).unwrap()))
            .collect();
        for _ in 0..20_000 {
            let mut f = frames[(next() as usize) % frames.len()].clone();
            for _ in 0..(next() % 4 + 1) {
                let i = (next() as usize) % f.len();
                f[i] = next() as u8;
            }
            let _ = Tmessage::decode(&f, MSIZE);
            let _ = Rmessage::decode(&f, MSIZE);
        }
    }
}
