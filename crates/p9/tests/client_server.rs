//! A p9 `Client` talking to `serve` over a socketpair, with an in-memory
//! handler; plus raw hostile frames thrown at the server.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::thread::{self, JoinHandle};

use abi::Errno;
use p9::wire::{
    Data, Rattach, Rclunk, Rlopen, Rmessage, Rmkdir, Rread, Rreaddir, Rreadlink, Runlinkat, Rwalk, Rwrite, Tattach,
    Tclunk, Tgetattr, Tlopen, Tmessage, Tmkdir, Tread, Treaddir, Treadlink, Tunlinkat, Tversion, Twalk, Twrite, NOTAG,
    VERSION_9P2000_L,
};
use p9::{Attr, Client, DirEntry, Error, Fid, Handler, Qid, NOFID, QID_TYPE_DIR, QID_TYPE_SYMLINK};

enum Node {
    Dir(Vec<(Vec<u8>, u64)>),
    File(Vec<u8>),
    Symlink(Vec<u8>),
}

/// A tiny file tree: inode number -> node; inode 1 is the root.
struct MemFs {
    nodes: HashMap<u64, Node>,
    fids: HashMap<Fid, u64>,
    next_ino: u64,
}

impl MemFs {
    fn new() -> MemFs {
        let mut nodes = HashMap::new();
        nodes.insert(1, Node::Dir(vec![(b"hello".to_vec(), 2), (b"sub".to_vec(), 3), (b"link".to_vec(), 5)]));
        nodes.insert(2, Node::File(b"hello, world\n".to_vec()));
        nodes.insert(3, Node::Dir(vec![(b"big".to_vec(), 4)]));
        nodes.insert(4, Node::File((0..20_000u32).map(|i| i as u8).collect()));
        nodes.insert(5, Node::Symlink(b"hello".to_vec()));
        MemFs { nodes, fids: HashMap::new(), next_ino: 6 }
    }

    fn qid(&self, ino: u64) -> Qid {
        let ty = match self.nodes[&ino] {
            Node::Dir(_) => QID_TYPE_DIR,
            Node::Symlink(_) => QID_TYPE_SYMLINK,
            Node::File(_) => 0,
        };
        Qid { ty, version: 0, path: ino }
    }

    fn ino(&self, fid: Fid) -> Result<u64, Errno> {
        self.fids.get(&fid).copied().ok_or(Errno::EBADF)
    }
}

impl Handler for MemFs {
    fn attach(&mut self, t: Tattach) -> Result<Rattach, Errno> {
        self.fids.insert(t.fid, 1);
        Ok(Rattach { qid: self.qid(1) })
    }

    fn walk(&mut self, t: Twalk) -> Result<Rwalk, Errno> {
        let mut ino = self.ino(t.fid)?;
        let mut qids = Vec::new();
        for name in &t.names {
            let next = match &self.nodes[&ino] {
                Node::Dir(entries) => entries.iter().find(|(n, _)| n == name).map(|(_, i)| *i),
                _ => None,
            };
            match next {
                Some(i) => {
                    ino = i;
                    qids.push(self.qid(i));
                }
                None if qids.is_empty() => return Err(Errno::ENOENT),
                None => return Ok(Rwalk { qids }),
            }
        }
        self.fids.insert(t.newfid, ino);
        Ok(Rwalk { qids })
    }

    fn clunk(&mut self, t: Tclunk) -> Result<Rclunk, Errno> {
        self.fids.remove(&t.fid).ok_or(Errno::EBADF)?;
        Ok(Rclunk {})
    }

    fn getattr(&mut self, t: Tgetattr) -> Result<Attr, Errno> {
        let ino = self.ino(t.fid)?;
        let (mode, size) = match &self.nodes[&ino] {
            Node::Dir(e) => (0o040755, e.len() as u64),
            Node::File(d) => (0o100644, d.len() as u64),
            Node::Symlink(s) => (0o120777, s.len() as u64),
        };
        Ok(Attr { valid: p9::getattr::BASIC, qid: self.qid(ino), mode, size, nlink: 1, ..Attr::default() })
    }

    fn lopen(&mut self, t: Tlopen) -> Result<Rlopen, Errno> {
        let ino = self.ino(t.fid)?;
        if let Node::Symlink(_) = self.nodes[&ino] {
            return Err(Errno::ELOOP);
        }
        Ok(Rlopen { qid: self.qid(ino), iounit: 0 })
    }

    fn read(&mut self, t: Tread) -> Result<Rread, Errno> {
        match &self.nodes[&self.ino(t.fid)?] {
            Node::File(d) => {
                let start = (t.offset as usize).min(d.len());
                let end = start.saturating_add(t.count as usize).min(d.len());
                Ok(Rread { data: Data(d[start..end].to_vec()) })
            }
            _ => Err(Errno::EISDIR),
        }
    }

    fn write(&mut self, t: Twrite) -> Result<Rwrite, Errno> {
        let ino = self.ino(t.fid)?;
        match self.nodes.get_mut(&ino) {
            Some(Node::File(d)) => {
                let end = t.offset as usize + t.data.0.len();
                if d.len() < end {
                    d.resize(end, 0);
                }
                d[t.offset as usize..end].copy_from_slice(&t.data.0);
                Ok(Rwrite { count: t.data.0.len() as u32 })
            }
            _ => Err(Errno::EISDIR),
        }
    }

    fn readdir(&mut self, t: Treaddir) -> Result<Rreaddir, Errno> {
        let Node::Dir(entries) = &self.nodes[&self.ino(t.fid)?] else {
            return Err(Errno::ENOTDIR);
        };
        let mut out = Vec::new();
        let mut used = 0;
        for (i, (name, ino)) in entries.iter().enumerate().skip(t.offset as usize) {
            let e = DirEntry { qid: self.qid(*ino), offset: i as u64 + 1, dtype: 0, name: name.clone() };
            used += e.encoded_len();
            if used > t.count as usize {
                break;
            }
            out.push(e);
        }
        Ok(Rreaddir { entries: out })
    }

    fn readlink(&mut self, t: Treadlink) -> Result<Rreadlink, Errno> {
        match &self.nodes[&self.ino(t.fid)?] {
            Node::Symlink(target) => Ok(Rreadlink { target: target.clone() }),
            _ => Err(Errno::EINVAL),
        }
    }

    fn mkdir(&mut self, t: Tmkdir) -> Result<Rmkdir, Errno> {
        let dir = self.ino(t.dfid)?;
        let ino = self.next_ino;
        self.next_ino += 1;
        match self.nodes.get_mut(&dir) {
            Some(Node::Dir(entries)) => entries.push((t.name, ino)),
            _ => return Err(Errno::ENOTDIR),
        }
        self.nodes.insert(ino, Node::Dir(Vec::new()));
        Ok(Rmkdir { qid: self.qid(ino) })
    }

    fn unlinkat(&mut self, t: Tunlinkat) -> Result<Runlinkat, Errno> {
        let dir = self.ino(t.dfid)?;
        match self.nodes.get_mut(&dir) {
            Some(Node::Dir(entries)) => {
                let before = entries.len();
                entries.retain(|(n, _)| *n != t.name);
                if entries.len() == before {
                    return Err(Errno::ENOENT);
                }
                Ok(Runlinkat {})
            }
            _ => Err(Errno::ENOTDIR),
        }
    }
}

fn start() -> (Client, JoinHandle<Result<(), Error>>) {
    let (a, b) = UnixStream::pair().unwrap();
    let server = thread::spawn(move || p9::serve(b, MemFs::new()));
    (Client::new(a, 8192).unwrap(), server)
}

#[test]
fn client_and_server_agree() {
    let (client, server) = start();
    assert_eq!(client.msize(), 8192);
    let (root, qid) = client.attach("").unwrap();
    assert_eq!(qid.ty, QID_TYPE_DIR);

    let (file, qids) = client.walk(root, &[b"hello"]).unwrap();
    assert_eq!(qids.len(), 1);
    let attr = client.getattr(file, p9::getattr::ALL).unwrap();
    assert_eq!(attr.size, 13);
    client.lopen(file, 0).unwrap();
    let mut buf = [0u8; 100];
    let n = client.read(file, 0, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"hello, world\n");
    assert_eq!(client.write(file, 7, b"moat!").unwrap(), 5);
    let n = client.read(file, 0, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"hello, moat!\n");
    client.clunk(file).unwrap();

    // A read bigger than msize is split, and comes back whole.
    let (big, _) = client.walk(root, &[b"sub", b"big"]).unwrap();
    client.lopen(big, 0).unwrap();
    let mut data = vec![0u8; 30_000];
    let n = client.read(big, 0, &mut data).unwrap();
    assert_eq!(n, 20_000);
    assert!(data[..n].iter().enumerate().all(|(i, b)| *b == i as u8));
    // Big writes are split too.
    let payload = vec![7u8; 25_000];
    assert_eq!(client.write(big, 0, &payload).unwrap(), 25_000);
    assert_eq!(client.getattr(big, p9::getattr::SIZE).unwrap().size, 25_000);

    // Partial walk: ENOENT, and no fid left behind.
    let err = client.walk(root, &[b"sub", b"missing"]).unwrap_err();
    assert_eq!(err.errno(), 2);
    let err = client.walk(root, &[b"missing"]).unwrap_err();
    assert!(matches!(err, Error::Remote(2)));

    // A clone walk, readlink and readdir with small counts.
    let (clone, qids) = client.walk(root, &[]).unwrap();
    assert!(qids.is_empty());
    let (link, _) = client.walk(clone, &[b"link"]).unwrap();
    assert_eq!(client.readlink(link).unwrap(), b"hello");
    assert_eq!(client.lopen(link, 0).unwrap_err().errno(), Errno::ELOOP.0);
    client.lopen(clone, 0).unwrap();
    let mut names = Vec::new();
    let mut offset = 0;
    loop {
        let entries = client.readdir(clone, offset, 30).unwrap();
        if entries.is_empty() {
            break;
        }
        offset = entries.last().unwrap().offset;
        names.extend(entries.into_iter().map(|e| e.name));
    }
    assert_eq!(names, vec![b"hello".to_vec(), b"sub".to_vec(), b"link".to_vec()]);

    client.mkdir(root, b"new", 0o755, 0).unwrap();
    client.walk(root, &[b"new"]).unwrap();
    client.unlinkat(root, b"new", 0).unwrap();
    assert_eq!(client.unlinkat(root, b"new", 0).unwrap_err().errno(), 2);
    // Requests the handler does not implement.
    assert_eq!(client.statfs(root).unwrap_err().errno(), Errno::EOPNOTSUPP.0);
    // Unknown fids are refused by the server before the handler sees them.
    assert_eq!(client.getattr(Fid(999), 0).unwrap_err().errno(), Errno::EBADF.0);

    drop(client);
    server.join().unwrap().unwrap();
}

#[test]
fn walks_longer_than_sixteen_names_are_split() {
    let (a, b) = UnixStream::pair().unwrap();
    let mut fs = MemFs::new();
    // A chain of 20 nested directories d/d/d/...
    let mut parent = 1;
    for i in 0..20 {
        let ino = 100 + i;
        match fs.nodes.get_mut(&parent) {
            Some(Node::Dir(e)) => e.push((b"d".to_vec(), ino)),
            _ => unreachable!(),
        }
        fs.nodes.insert(ino, Node::Dir(Vec::new()));
        parent = ino;
    }
    let server = thread::spawn(move || p9::serve(b, fs));
    let client = Client::new(a, 8192).unwrap();
    let (root, _) = client.attach("").unwrap();
    let names: Vec<&[u8]> = vec![b"d"; 20];
    let (fid, qids) = client.walk(root, &names).unwrap();
    assert_eq!(qids.len(), 20);
    assert_eq!(qids[19].path, 119);
    let mut too_far = names.clone();
    too_far.push(b"x");
    assert_eq!(client.walk(root, &too_far).unwrap_err().errno(), 2);
    client.clunk(fid).unwrap();
    // Fids are reused after clunk.
    let (again, _) = client.walk(root, &[]).unwrap();
    assert_eq!(again, fid);
    drop(client);
    server.join().unwrap().unwrap();
}

/// A raw connection for sending hand-made frames.
struct Raw {
    stream: UnixStream,
    server: JoinHandle<Result<(), Error>>,
}

impl Raw {
    fn new() -> Raw {
        let (a, b) = UnixStream::pair().unwrap();
        let server = thread::spawn(move || p9::serve(b, MemFs::new()));
        Raw { stream: a, server }
    }

    fn send(&mut self, frame: &[u8]) {
        self.stream.write_all(frame).unwrap();
    }

    fn recv(&mut self) -> (u16, Rmessage) {
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).unwrap();
        let mut frame = vec![0u8; u32::from_le_bytes(size) as usize];
        frame[..4].copy_from_slice(&size);
        self.stream.read_exact(&mut frame[4..]).unwrap();
        Rmessage::decode(&frame, 1 << 21).unwrap()
    }

    fn call(&mut self, tag: u16, t: Tmessage) -> Rmessage {
        self.send(&t.encode(tag).unwrap());
        let (got, r) = self.recv();
        assert_eq!(got, tag);
        r
    }

    fn version(&mut self) {
        let r = self.call(NOTAG, Tmessage::Version(Tversion { msize: 8192, version: VERSION_9P2000_L.to_vec() }));
        assert!(matches!(r, Rmessage::Version(v) if v.msize == 8192));
    }
}

fn errno_of(r: Rmessage) -> i32 {
    match r {
        Rmessage::Lerror(e) => e.ecode as i32,
        other => panic!("expected Rlerror, got {other:?}"),
    }
}

#[test]
fn server_refuses_hostile_frames() {
    let mut raw = Raw::new();
    let attach =
        |fid| Tmessage::Attach(Tattach { fid: Fid(fid), afid: NOFID, uname: vec![], aname: vec![], n_uname: 0 });

    // Nothing but Tversion before Tversion.
    assert_eq!(errno_of(raw.call(1, attach(1))), Errno::EPROTO.0);
    raw.version();
    assert!(matches!(raw.call(1, attach(1)), Rmessage::Attach(_)));
    // Attaching to a fid in use, or to NOFID.
    assert_eq!(errno_of(raw.call(2, attach(1))), Errno::EINVAL.0);
    assert_eq!(errno_of(raw.call(2, attach(u32::MAX))), Errno::EINVAL.0);
    // Walking to a newfid in use.
    assert!(matches!(raw.call(3, attach(2)), Rmessage::Attach(_)));
    let walk = Tmessage::Walk(Twalk { fid: Fid(1), newfid: Fid(2), names: vec![] });
    assert_eq!(errno_of(raw.call(4, walk)), Errno::EINVAL.0);
    // Unknown fid.
    let clunk = Tmessage::Clunk(Tclunk { fid: Fid(77) });
    assert_eq!(errno_of(raw.call(5, clunk)), Errno::EBADF.0);

    // Unknown message type: header readable, so Rlerror(EINVAL) with its tag.
    raw.send(&[7, 0, 0, 0, 250, 9, 0]);
    let (tag, r) = raw.recv();
    assert_eq!((tag, errno_of(r)), (9, Errno::EINVAL.0));

    // A string length past the end of the frame.
    let mut frame =
        Tmessage::Walk(Twalk { fid: Fid(1), newfid: Fid(3), names: vec![b"ab".to_vec()] }).encode(10).unwrap();
    frame[17..19].copy_from_slice(&500u16.to_le_bytes());
    raw.send(&frame);
    let (tag, r) = raw.recv();
    assert_eq!((tag, errno_of(r)), (10, Errno::EINVAL.0));

    // Trailing garbage.
    let mut frame = Tmessage::Clunk(Tclunk { fid: Fid(2) }).encode(11).unwrap();
    frame.extend_from_slice(&[1, 2, 3]);
    let len = frame.len() as u32;
    frame[..4].copy_from_slice(&len.to_le_bytes());
    raw.send(&frame);
    let (tag, r) = raw.recv();
    assert_eq!((tag, errno_of(r)), (11, Errno::EINVAL.0));

    // A frame above msize is skipped without being buffered, then refused.
    let big = Tmessage::Write(Twrite { fid: Fid(1), offset: 0, data: Data(vec![0; 10_000]) }).encode(12).unwrap();
    raw.send(&big);
    let (tag, r) = raw.recv();
    assert_eq!((tag, errno_of(r)), (12, Errno::EINVAL.0));

    // A read count far beyond msize is capped, not allocated.
    let walked = raw.call(13, Tmessage::Walk(Twalk { fid: Fid(1), newfid: Fid(5), names: vec![b"hello".to_vec()] }));
    assert!(matches!(walked, Rmessage::Walk(_)));
    assert!(matches!(raw.call(14, Tmessage::Lopen(Tlopen { fid: Fid(5), flags: 0 })), Rmessage::Lopen(_)));
    let read = raw.call(15, Tmessage::Read(Tread { fid: Fid(5), offset: 0, count: u32::MAX }));
    assert!(matches!(read, Rmessage::Read(r) if r.data.0 == b"hello, world\n"));
    let rd = raw.call(16, Tmessage::Readdir(Treaddir { fid: Fid(1), offset: 0, count: u32::MAX }));
    assert!(matches!(rd, Rmessage::Readdir(r) if r.entries.len() == 3));
    assert!(matches!(raw.call(17, Tmessage::Readlink(Treadlink { fid: Fid(5) })), Rmessage::Lerror(_)));
    assert!(matches!(
        raw.call(18, Tmessage::Unlinkat(Tunlinkat { dfid: Fid(1), name: b"x".to_vec(), flags: 0 })),
        Rmessage::Lerror(_)
    ));
    assert!(matches!(
        raw.call(19, Tmessage::Mkdir(Tmkdir { dfid: Fid(1), name: b"x".to_vec(), mode: 0, gid: 0 })),
        Rmessage::Mkdir(_)
    ));

    // A size field below the header size cannot be answered: the server hangs up.
    raw.send(&[3, 0, 0, 0]);
    let mut rest = Vec::new();
    raw.stream.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    assert!(raw.server.join().unwrap().is_err());
}

#[test]
fn truncated_frame_then_close_is_a_clean_end() {
    let mut raw = Raw::new();
    raw.version();
    raw.send(&[100, 0, 0, 0, 120, 1, 0, 1]);
    raw.stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    raw.stream.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    raw.server.join().unwrap().unwrap();
}

#[test]
fn bad_version_is_refused() {
    let mut raw = Raw::new();
    let r = raw.call(NOTAG, Tmessage::Version(Tversion { msize: 8192, version: b"9P2000.u".to_vec() }));
    assert!(matches!(r, Rmessage::Version(v) if v.version == b"unknown"));
    let r = raw.call(NOTAG, Tmessage::Version(Tversion { msize: 100, version: VERSION_9P2000_L.to_vec() }));
    assert_eq!(errno_of(r), Errno::EINVAL.0);
    drop(raw.stream);
    raw.server.join().unwrap().unwrap();

    // A client refuses a server that does not speak 9P2000.L.
    let (a, mut b) = UnixStream::pair().unwrap();
    let fake = thread::spawn(move || {
        let mut req = [0u8; 21];
        b.read_exact(&mut req).unwrap();
        let reply = Rmessage::Version(p9::wire::Rversion { msize: 8192, version: b"9P2000".to_vec() });
        b.write_all(&reply.encode(NOTAG).unwrap()).unwrap();
    });
    assert!(matches!(Client::new(a, 8192), Err(Error::Version { .. })));
    fake.join().unwrap();
}

#[test]
fn one_client_serves_many_threads() {
    let (client, server) = start();
    let client = std::sync::Arc::new(client);
    let (root, _) = client.attach("").unwrap();
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let client = client.clone();
            thread::spawn(move || {
                for _ in 0..50 {
                    let (fid, _) = client.walk(root, &[b"hello"]).unwrap();
                    client.lopen(fid, 0).unwrap();
                    let mut buf = [0u8; 64];
                    let n = client.read(fid, 0, &mut buf).unwrap();
                    assert_eq!(&buf[..n], b"hello, world\n");
                    client.clunk(fid).unwrap();
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    drop(client);
    server.join().unwrap().unwrap();
}
