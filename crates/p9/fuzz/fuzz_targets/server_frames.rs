//! Arbitrary byte streams fed to `p9::serve` over a socketpair: the server
//! never panics, always returns once the peer hangs up, and sends nothing
//! but well-formed R-messages; given well-framed requests it answers each
//! exactly once, in order.
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
    VERSION_9P2000_L,
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

/// Checks that `replies` is a sequence of whole, decodable R-messages, and
/// returns their tags.
fn check_replies(replies: &[u8]) -> Vec<u16> {
    let mut tags = Vec::new();
    let mut rest = replies;
    while !rest.is_empty() {
        let size = rest.get(..4).map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]));
        let frame = size.and_then(|size| rest.get(..size as usize));
        let Some(frame) = frame else {
            panic!("server sent a partial frame: {rest:02x?}");
        };
        match Rmessage::decode(frame, MAX_MSIZE) {
            Ok((tag, _)) => tags.push(tag),
            Err(e) => panic!("server sent a malformed reply ({e}): {frame:02x?}"),
        }
        rest = &rest[frame.len()..];
    }
    tags
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
    let reply_tags = check_replies(&replies);
    if let Some(request_tags) = request_tags {
        assert_eq!(reply_tags, request_tags, "replies do not answer the requests one for one, in order");
    }
});
