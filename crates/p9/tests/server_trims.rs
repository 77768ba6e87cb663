//! The server keeps a handler's replies within what the client asked for
//! and the negotiated msize: it trims a read to its count, drops directory
//! entries past a readdir's count, and refuses a walk answered with more
//! qids than names, whatever the handler returns.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::thread::{self, JoinHandle};

use abi::Errno;
use p9::wire::{
    Data, Rattach, Rclunk, Rmessage, Rread, Rreaddir, Rwalk, Tattach, Tclunk, Tgetattr, Tmessage, Tread, Treaddir,
    Tversion, Twalk, NOTAG, READ_REPLY_OVERHEAD, VERSION_9P2000_L,
};
use p9::{Attr, DirEntry, Error, Fid, Handler, Qid, NOFID};

/// Over-returns everything: more data than asked for, a qid more than
/// names, entries well past the count.
struct Greedy;

/// Bytes each of `Greedy`'s directory entries takes.
const ENTRY_LEN: usize = 13 + 8 + 1 + 2 + 10;

impl Handler for Greedy {
    fn attach(&mut self, _t: Tattach) -> Result<Rattach, Errno> {
        Ok(Rattach { qid: Qid::default() })
    }

    fn walk(&mut self, t: Twalk) -> Result<Rwalk, Errno> {
        Ok(Rwalk { qids: vec![Qid::default(); t.names.len() + 1] })
    }

    fn clunk(&mut self, _t: Tclunk) -> Result<Rclunk, Errno> {
        Ok(Rclunk {})
    }

    fn getattr(&mut self, _t: Tgetattr) -> Result<Attr, Errno> {
        Ok(Attr::default())
    }

    fn read(&mut self, t: Tread) -> Result<Rread, Errno> {
        Ok(Rread { data: Data((0..t.count as usize + 100).map(|i| i as u8).collect()) })
    }

    fn readdir(&mut self, t: Treaddir) -> Result<Rreaddir, Errno> {
        let n = t.count as usize / ENTRY_LEN + 50;
        let entries = (0..n as u64)
            .map(|i| DirEntry { qid: Qid::default(), offset: i + 1, dtype: 8, name: format!("{i:010}").into_bytes() })
            .collect();
        Ok(Rreaddir { entries })
    }
}

/// A connection to a `Greedy` server, speaking raw frames.
struct Raw {
    stream: UnixStream,
    msize: u32,
    server: JoinHandle<Result<(), Error>>,
}

impl Raw {
    fn new(msize: u32) -> Raw {
        let (a, b) = UnixStream::pair().unwrap();
        let server = thread::spawn(move || p9::serve(b, Greedy));
        let mut raw = Raw { stream: a, msize: p9::server::MAX_MSIZE, server };
        let version = Tversion { msize, version: VERSION_9P2000_L.to_vec() };
        match raw.call(NOTAG, Tmessage::Version(version)) {
            Rmessage::Version(v) => raw.msize = v.msize,
            other => panic!("Tversion answered {other:?}"),
        }
        assert_eq!(raw.msize, msize);
        let attach = Tattach { fid: Fid(0), afid: NOFID, uname: vec![], aname: vec![], n_uname: 0 };
        assert!(matches!(raw.call(1, Tmessage::Attach(attach)), Rmessage::Attach(_)));
        raw
    }

    /// Sends `t` and decodes its reply under the negotiated msize.
    fn call(&mut self, tag: u16, t: Tmessage) -> Rmessage {
        self.stream.write_all(&t.encode(tag).unwrap()).unwrap();
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).unwrap();
        let mut frame = vec![0u8; u32::from_le_bytes(size) as usize];
        frame[..4].copy_from_slice(&size);
        self.stream.read_exact(&mut frame[4..]).unwrap();
        let (got, reply) = Rmessage::decode(&frame, self.msize).unwrap_or_else(|e| {
            panic!("a reply of {} bytes does not decode under msize {}: {e}", frame.len(), self.msize)
        });
        assert_eq!(got, tag);
        reply
    }

    fn finish(self) {
        drop(self.stream);
        self.server.join().unwrap().unwrap();
    }
}

#[test]
fn reads_are_trimmed_to_their_count_and_the_msize() {
    for msize in [4096, 8192, 65536] {
        let mut raw = Raw::new(msize);
        let biggest = msize - READ_REPLY_OVERHEAD;
        for count in [0, 1, 10, 4000, biggest - 1, biggest, biggest + 1, u32::MAX] {
            let read = Tmessage::Read(Tread { fid: Fid(0), offset: 0, count });
            let Rmessage::Read(r) = raw.call(2, read) else { panic!("Tread failed") };
            let wanted = count.min(biggest) as usize;
            assert_eq!(r.data.0.len(), wanted, "msize {msize}, count {count}");
            assert!(r.data.0.iter().enumerate().all(|(i, b)| *b == i as u8), "the kept bytes are the first ones");
        }
        raw.finish();
    }
}

#[test]
fn readdirs_keep_the_entries_that_fit_their_count() {
    for msize in [4096, 8192] {
        let mut raw = Raw::new(msize);
        let biggest = msize - READ_REPLY_OVERHEAD;
        for count in [0, ENTRY_LEN as u32 - 1, ENTRY_LEN as u32, 1000, biggest, u32::MAX] {
            let readdir = Tmessage::Readdir(Treaddir { fid: Fid(0), offset: 0, count });
            let Rmessage::Readdir(r) = raw.call(2, readdir) else { panic!("Treaddir failed") };
            let fit = count.min(biggest) as usize / ENTRY_LEN;
            assert_eq!(r.entries.len(), fit, "msize {msize}, count {count}");
            let used: usize = r.entries.iter().map(DirEntry::encoded_len).sum();
            assert!(used <= count as usize);
            assert_eq!(r.entries.first().map(|e| e.offset), (fit > 0).then_some(1), "the kept entries are the first");
        }
        raw.finish();
    }
}

#[test]
fn a_walk_answered_with_more_qids_than_names_is_refused() {
    let mut raw = Raw::new(8192);
    for names in [vec![], vec![b"a".to_vec()], vec![b"a".to_vec(); 16]] {
        let walk = Tmessage::Walk(Twalk { fid: Fid(0), newfid: Fid(1), names });
        match raw.call(2, walk) {
            Rmessage::Lerror(e) => assert_eq!(e.ecode, Errno::EIO.0 as u32),
            other => panic!("an over-long Rwalk was passed on: {other:?}"),
        }
        // ... and binds no fid.
        match raw.call(3, Tmessage::Clunk(Tclunk { fid: Fid(1) })) {
            Rmessage::Lerror(e) => assert_eq!(e.ecode, Errno::EBADF.0 as u32),
            other => panic!("the refused walk bound its newfid: {other:?}"),
        }
    }
    raw.finish();
}
