//! Writes seed inputs for the fuzz targets in `crates/p9/fuzz`: a frame of
//! every message type, so that a short fuzzing run starts from valid ones.
//!
//! `cargo run -p p9 --example fuzz_seeds -- DIR` fills `DIR/decode_t`,
//! `DIR/decode_r` and `DIR/server_frames`; `fuzz/run-short.sh` runs it.

use std::path::Path;
use std::{env, fs, process};

use p9::wire::{
    Attr, Data, DirEntry, Rattach, Rauth, Rclunk, Rdonate, Rflush, Rfsync, Rgetlock, Rlcreate, Rlerror, Rlink, Rlock,
    Rlopen, Rmessage, Rmkdir, Rmknod, Rread, Rreaddir, Rreadlink, Rremove, Rrename, Rrenameat, Rsetattr, Rstatfs,
    Rsymlink, Runlinkat, Rversion, Rwalk, Rwrite, Rxattrcreate, Rxattrwalk, Tattach, Tauth, Tclunk, Tdonate, Tflush,
    Tfsync, Tgetattr, Tgetlock, Tlcreate, Tlink, Tlock, Tlopen, Tmessage, Tmkdir, Tmknod, Tread, Treaddir, Treadlink,
    Tremove, Trename, Trenameat, Tsetattr, Tstatfs, Tsymlink, Tunlinkat, Tversion, Twalk, Twrite, Txattrcreate,
    Txattrwalk, HEADER_SIZE, NOTAG, VERSION_9P2000_L,
};
use p9::{Fid, Qid, NOFID};

/// One request of every type. Fid 0 is the one `server_frames` attaches
/// before the input's own frames, so these requests reach the handler; new
/// fids are 2, since the server seeds bind 1 (see `server_input`).
fn requests() -> Vec<Tmessage> {
    let name = || b"name".to_vec();
    let version = Tversion { msize: 8192, version: VERSION_9P2000_L.to_vec() };
    vec![
        Tmessage::Version(version),
        Tmessage::Auth(Tauth { afid: Fid(2), uname: name(), aname: Vec::new(), n_uname: 0 }),
        Tmessage::Attach(Tattach { fid: Fid(2), afid: NOFID, uname: name(), aname: Vec::new(), n_uname: 0 }),
        Tmessage::Flush(Tflush { oldtag: 1 }),
        Tmessage::Walk(Twalk { fid: Fid(0), newfid: Fid(2), names: vec![name(), b"extra".to_vec()] }),
        Tmessage::Read(Tread { fid: Fid(0), offset: 0, count: 4096 }),
        Tmessage::Write(Twrite { fid: Fid(0), offset: 0, data: Data(b"data".to_vec()) }),
        Tmessage::Clunk(Tclunk::default()),
        Tmessage::Remove(Tremove::default()),
        Tmessage::Statfs(Tstatfs::default()),
        Tmessage::Lopen(Tlopen::default()),
        Tmessage::Lcreate(Tlcreate { name: name(), ..Tlcreate::default() }),
        Tmessage::Symlink(Tsymlink { name: name(), target: name(), ..Tsymlink::default() }),
        Tmessage::Mknod(Tmknod { name: name(), ..Tmknod::default() }),
        Tmessage::Rename(Trename { name: name(), ..Trename::default() }),
        Tmessage::Readlink(Treadlink::default()),
        Tmessage::Getattr(Tgetattr { fid: Fid(0), request_mask: p9::getattr::ALL }),
        Tmessage::Setattr(Tsetattr::default()),
        Tmessage::Xattrwalk(Txattrwalk { fid: Fid(0), newfid: Fid(2), name: name() }),
        Tmessage::Xattrcreate(Txattrcreate { name: name(), ..Txattrcreate::default() }),
        Tmessage::Readdir(Treaddir { fid: Fid(0), offset: 0, count: 4096 }),
        Tmessage::Fsync(Tfsync::default()),
        Tmessage::Lock(Tlock { client_id: name(), ..Tlock::default() }),
        Tmessage::Getlock(Tgetlock { client_id: name(), ..Tgetlock::default() }),
        Tmessage::Link(Tlink { name: name(), ..Tlink::default() }),
        Tmessage::Mkdir(Tmkdir { name: name(), ..Tmkdir::default() }),
        Tmessage::Renameat(Trenameat { oldname: name(), newname: name(), ..Trenameat::default() }),
        Tmessage::Unlinkat(Tunlinkat { name: name(), ..Tunlinkat::default() }),
        Tmessage::Donate(Tdonate { fid: Fid(0), flags: 0 }),
    ]
}

/// One reply of every type.
fn replies() -> Vec<Rmessage> {
    let qid = Qid { ty: p9::QID_TYPE_DIR, version: 1, path: 2 };
    let entry = DirEntry { qid, offset: 1, dtype: 4, name: b"entry".to_vec() };
    vec![
        Rmessage::Lerror(Rlerror { ecode: 2 }),
        Rmessage::Statfs(Rstatfs::default()),
        Rmessage::Lopen(Rlopen::default()),
        Rmessage::Lcreate(Rlcreate::default()),
        Rmessage::Symlink(Rsymlink::default()),
        Rmessage::Mknod(Rmknod::default()),
        Rmessage::Rename(Rrename {}),
        Rmessage::Readlink(Rreadlink { target: b"target".to_vec() }),
        Rmessage::Getattr(Attr::default()),
        Rmessage::Setattr(Rsetattr {}),
        Rmessage::Xattrwalk(Rxattrwalk::default()),
        Rmessage::Xattrcreate(Rxattrcreate {}),
        Rmessage::Readdir(Rreaddir { entries: vec![entry.clone(), entry] }),
        Rmessage::Fsync(Rfsync {}),
        Rmessage::Lock(Rlock::default()),
        Rmessage::Getlock(Rgetlock { client_id: b"id".to_vec(), ..Rgetlock::default() }),
        Rmessage::Link(Rlink {}),
        Rmessage::Mkdir(Rmkdir::default()),
        Rmessage::Renameat(Rrenameat {}),
        Rmessage::Unlinkat(Runlinkat {}),
        Rmessage::Version(Rversion { msize: 8192, version: VERSION_9P2000_L.to_vec() }),
        Rmessage::Auth(Rauth::default()),
        Rmessage::Attach(Rattach { qid }),
        Rmessage::Flush(Rflush {}),
        Rmessage::Walk(Rwalk { qids: vec![qid, qid] }),
        Rmessage::Read(Rread { data: Data(b"data".to_vec()) }),
        Rmessage::Write(Rwrite::default()),
        Rmessage::Clunk(Rclunk {}),
        Rmessage::Remove(Rremove {}),
        Rmessage::Donate(Rdonate { qid }),
    ]
}

/// A `server_frames` input: mode 0 (Tversion and Tattach of fid 0 first),
/// a walk binding fid 1 too (so a one-byte change moves `frame` onto a
/// second live fid), then `frame`; each as `type[1] len[2] body[len]`.
fn server_input(frame: &[u8]) -> Vec<u8> {
    let clone = Tmessage::Walk(Twalk { fid: Fid(0), newfid: Fid(1), names: Vec::new() });
    let mut input = vec![0];
    for frame in [&clone.encode(1).expect("Twalk encodes")[..], frame] {
        let body = &frame[HEADER_SIZE..];
        let len = u16::try_from(body.len()).expect("seed bodies are small");
        input.push(frame[4]);
        input.extend_from_slice(&len.to_le_bytes());
        input.extend_from_slice(body);
    }
    input
}

/// Writes each `(name, input)` to `dir/name`.
fn write_all(dir: &Path, inputs: impl IntoIterator<Item = (String, Vec<u8>)>) {
    fs::create_dir_all(dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    for (name, input) in inputs {
        let path = dir.join(name);
        fs::write(&path, input).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }
}

fn main() {
    let Some(out) = env::args_os().nth(1) else {
        eprintln!("usage: fuzz_seeds DIR");
        process::exit(2);
    };
    let out = Path::new(&out);
    let requests: Vec<Vec<u8>> = requests().iter().map(|m| m.encode(1).expect("seed requests encode")).collect();
    let replies = replies().iter().map(|m| m.encode(1).expect("seed replies encode")).collect::<Vec<_>>();
    let named = |frame: &Vec<u8>| format!("type-{}", frame[4]);
    write_all(&out.join("decode_t"), requests.iter().map(|f| (named(f), f.clone())));
    write_all(&out.join("decode_r"), replies.iter().map(|f| (named(f), f.clone())));
    write_all(&out.join("server_frames"), requests.iter().map(|f| (named(f), server_input(f))));
    // A raw-mode input (bit 7 of the mode byte): a bare Tversion.
    let version = Tmessage::Version(Tversion { msize: 4096, version: VERSION_9P2000_L.to_vec() });
    let raw = [&[0x80][..], &version.encode(NOTAG).expect("Tversion encodes")].concat();
    write_all(&out.join("server_frames"), [("raw-version".to_string(), raw)]);
}
