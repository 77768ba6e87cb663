//! Arbitrary byte streams fed to `p9::serve` over a socketpair: the server
//! never panics, always returns once the peer hangs up, and sends nothing
//! but well-formed R-messages within the msize in force, each answering its
//! request (same type, or Rlerror) with no more than it asked for: a read
//! no longer than its count, a walk with no more qids than names, a
//! readdir within its count, though the handler returns more of each.
//! Given well-framed requests it answers each exactly once, in order.
//!
//! The input's first byte picks a mode. With bit 7 set the rest is sent as
//! it is. Otherwise the rest is cut into frames, `type[1] len[2] body[len]`,
//! whose size fields the harness writes, so the fuzzer explores requests
//! rather than framing; unless bit 0 is set a Tversion (msize chosen by bits
//! 1-2) and, unless bit 3 is set, a Tattach of fid 0 go first.
#![no_main]
#![forbid(unsafe_code)]

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::thread;

use abi::Errno;
use libfuzzer_sys::fuzz_target;
use p9::server::{MAX_MSIZE, MIN_MSIZE};
use p9::wire::{
    Data, Rattach, Rclunk, Rdonate, Rlopen, Rmessage, Rread, Rreaddir, Rreadlink, Rwalk, Rwrite, Tattach, Tclunk,
    Tdonate, Tgetattr, Tlopen, Tmessage, Tread, Treaddir, Treadlink, Tversion, Twalk, Twrite, HEADER_SIZE, NOTAG,
    READ_REPLY_OVERHEAD, VERSION_9P2000_L,
};
use p9::{Attr, DirEntry, Fid, Handler, Qid, NOFID, QID_TYPE_DIR};

const RAW: u8 = 0x80;
const NO_VERSION: u8 = 0x01;
const NO_ATTACH: u8 = 0x08;
const MSIZES: [u32; 4] = [MIN_MSIZE, 8192, 65536, MAX_MSIZE];
/// Input past this is ignored. The request stream is at most about 2.5
/// times the input (a 7-byte header per 3 bytes), so it stays well within
/// a Unix socket's buffer (about 200 KiB) and can be written whole first.
const MAX_INPUT: usize = 4096;

/// A handler whose answers depend only on the request, and which misbehaves
/// on cue (too much data, too many qids, unencodable names) so that the
/// server's trimming and fallbacks are exercised.
struct Echo;

fn qid(path: u64) -> Qid {
    Qid { ty: QID_TYPE_DIR, version: 0, path }
}

impl Handler for Echo {
    fn attach(&mut self, t: Tattach) -> Result<Rattach, Errno> {
        Ok(Rattach { qid: qid(u64::from(t.fid.0)) })
    }

    fn walk(&mut self, t: Twalk) -> Result<Rwalk, Errno> {
        let mut qids = Vec::new();
        for (i, name) in t.names.iter().enumerate() {
            match name.as_slice() {
                b"missing" if i == 0 => return Err(Errno::ENOENT),
                b"missing" => break,
                // More qids than names: the server must refuse to pass this on.
                b"extra" => qids.extend([qid(0), qid(1)]),
                _ => qids.push(qid(i as u64)),
            }
        }
        Ok(Rwalk { qids })
    }

    fn clunk(&mut self, _t: Tclunk) -> Result<Rclunk, Errno> {
        Ok(Rclunk {})
    }

    fn getattr(&mut self, t: Tgetattr) -> Result<Attr, Errno> {
        Ok(Attr { valid: t.request_mask, qid: qid(u64::from(t.fid.0)), ..Attr::default() })
    }

    fn lopen(&mut self, t: Tlopen) -> Result<Rlopen, Errno> {
        Ok(Rlopen { qid: qid(u64::from(t.fid.0)), iounit: 0 })
    }

    fn read(&mut self, t: Tread) -> Result<Rread, Errno> {
        // One byte more than asked for: the server must trim it.
        let len = (t.count as usize).min(1 << 17) + 1;
        Ok(Rread { data: Data(vec![t.offset as u8; len]) })
    }

    fn write(&mut self, t: Twrite) -> Result<Rwrite, Errno> {
        Ok(Rwrite { count: t.data.0.len() as u32 })
    }

    fn readdir(&mut self, t: Treaddir) -> Result<Rreaddir, Errno> {
        // Entries past `count`: the server must drop them.
        let mut entries = Vec::new();
        let mut used = 0;
        while used <= t.count as usize + 64 && entries.len() < 4096 {
            let n = t.offset.wrapping_add(entries.len() as u64);
            let entry =
                DirEntry { qid: qid(n), offset: n.wrapping_add(1), dtype: 4, name: vec![b'e'; (n % 40) as usize] };
            used += entry.encoded_len();
            entries.push(entry);
        }
        Ok(Rreaddir { entries })
    }

    fn donate(&mut self, t: Tdonate) -> Result<(Rdonate, OwnedFd), Errno> {
        // A real fd, so that the server's SCM_RIGHTS send is exercised.
        let file = File::open("/dev/null").map_err(|_| Errno::EIO)?;
        Ok((Rdonate { qid: qid(u64::from(t.fid.0)) }, file.into()))
    }

    fn readlink(&mut self, t: Treadlink) -> Result<Rreadlink, Errno> {
        // An odd fid gets a target no 9P string can carry.
        let len = if t.fid.0 % 2 == 1 { 70_000 } else { 16 };
        Ok(Rreadlink { target: vec![b't'; len] })
    }
}

fn encode(msg: Tmessage, tag: u16) -> Vec<u8> {
    msg.encode(tag).expect("a fixed request encodes")
}

/// The bytes to send for `data`, as the module comment describes, and, if
/// the harness framed them, the tags of the requests in the order sent.
fn stream(data: &[u8]) -> (Vec<u8>, Option<Vec<u16>>) {
    let Some((&mode, rest)) = data.split_first() else {
        return (Vec::new(), Some(Vec::new()));
    };
    if mode & RAW != 0 {
        return (rest.to_vec(), None);
    }
    let mut out = Vec::new();
    let mut tags = Vec::new();
    if mode & NO_VERSION == 0 {
        let msize = MSIZES[usize::from((mode >> 1) & 3)];
        out.extend(encode(Tmessage::Version(Tversion { msize, version: VERSION_9P2000_L.to_vec() }), NOTAG));
        tags.push(NOTAG);
        if mode & NO_ATTACH == 0 {
            let attach = Tattach { fid: Fid(0), afid: NOFID, uname: Vec::new(), aname: Vec::new(), n_uname: 0 };
            out.extend(encode(Tmessage::Attach(attach), 0));
            tags.push(0);
        }
    }
    let mut rest = rest;
    let mut tag = 1u16;
    while let [ty, lo, hi, tail @ ..] = rest {
        let len = usize::from(u16::from_le_bytes([*lo, *hi])).min(tail.len());
        let size = (HEADER_SIZE + len) as u32;
        out.extend_from_slice(&size.to_le_bytes());
        out.push(*ty);
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&tail[..len]);
        tags.push(tag);
        rest = &tail[len..];
        tag = tag.wrapping_add(1);
    }
    (out, Some(tags))
}

/// The frames the server reads from `stream`, as it reads them: whole
/// frames only, up to the first whose size field cannot hold a header
/// (after which the server hangs up).
fn request_frames(stream: &[u8]) -> Vec<&[u8]> {
    let mut frames = Vec::new();
    let mut rest = stream;
    while let Some(size) = rest.get(..4).map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize) {
        match rest.get(..size) {
            Some(frame) if size >= HEADER_SIZE => frames.push(frame),
            _ => break,
        }
        rest = &rest[size..];
    }
    frames
}

/// Checks that `replies` is a sequence of whole R-messages, each decoding
/// under the msize in force when it was sent and answering the request
/// in `requests` at its place; returns their tags.
fn check_replies(requests: &[&[u8]], replies: &[u8]) -> Vec<u16> {
    // What the server assumes until a Tversion negotiates one.
    let mut msize = MAX_MSIZE;
    let mut tags = Vec::new();
    let mut rest = replies;
    let mut requests = requests.iter();
    while !rest.is_empty() {
        let size = rest.get(..4).map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]));
        let frame = size.and_then(|size| rest.get(..size as usize));
        let Some(frame) = frame else {
            panic!("server sent a partial frame: {rest:02x?}");
        };
        let request = requests.next().unwrap_or_else(|| panic!("a reply to no request: {frame:02x?}"));
        match Rmessage::decode(frame, msize) {
            Ok((tag, reply)) => {
                check_answer(request, &reply, msize);
                if let Rmessage::Version(v) = &reply {
                    if v.version == VERSION_9P2000_L {
                        msize = v.msize;
                    }
                }
                tags.push(tag);
            }
            Err(e) => panic!("server sent a reply malformed or over msize {msize} ({e}): {frame:02x?}"),
        }
        rest = &rest[frame.len()..];
    }
    tags
}

/// Checks that `reply` answers `request` (its frame) within what it asked
/// for, `Echo` having returned more of everything.
fn check_answer(request: &[u8], reply: &Rmessage, msize: u32) {
    if let Rmessage::Lerror(_) = reply {
        return;
    }
    assert_eq!(reply.message_type(), request[4].wrapping_add(1), "{reply:?} answers a request of type {}", request[4]);
    let Ok((_, request)) = Tmessage::decode(request, MAX_MSIZE) else {
        panic!("a request that does not decode was answered with {reply:?}");
    };
    // What a read or readdir reply may carry at this msize.
    let most = (msize - READ_REPLY_OVERHEAD) as usize;
    match (request, reply) {
        (Tmessage::Read(t), Rmessage::Read(r)) => {
            let allowed = (t.count as usize).min(most);
            assert!(
                r.data.0.len() <= allowed,
                "Rread of {} bytes for count {} (msize {msize})",
                r.data.0.len(),
                t.count
            );
        }
        (Tmessage::Walk(t), Rmessage::Walk(r)) => {
            assert!(r.qids.len() <= t.names.len(), "Rwalk of {} qids for {} names", r.qids.len(), t.names.len());
        }
        (Tmessage::Readdir(t), Rmessage::Readdir(r)) => {
            let used: usize = r.entries.iter().map(DirEntry::encoded_len).sum();
            let allowed = (t.count as usize).min(most);
            assert!(used <= allowed, "Rreaddir of {used} bytes for count {} (msize {msize})", t.count);
        }
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let (request, request_tags) = stream(&data[..data.len().min(MAX_INPUT)]);
    let (mut client, server) = UnixStream::pair().expect("socketpair");
    // The whole request goes in before the server starts, so it cannot hang
    // up half-way through the write; it fits in the socket buffer.
    client.write_all(&request).expect("write the request");
    client.shutdown(Shutdown::Write).expect("shut down the write side");
    let serving = thread::spawn(move || p9::serve(server, Echo));
    let mut replies = Vec::new();
    match client.read_to_end(&mut replies) {
        // A server that hangs up on unread requests resets the connection.
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        result => {
            result.expect("read replies");
        }
    }
    // Either outcome is fine; a panic aborts the process and is the crash.
    let _ = serving.join().expect("server thread");
    let reply_tags = check_replies(&request_frames(&request), &replies);
    if let Some(request_tags) = request_tags {
        assert_eq!(reply_tags, request_tags, "replies do not answer the requests one for one, in order");
    }
});
