//! Shared by the Gofer's integration tests: a Gofer serving a host
//! directory in a thread, driven over a socketpair by `p9::Client`.
// Each test crate that includes this module uses a different subset of it.
#![allow(dead_code)]

use std::os::unix::net::UnixStream;
use std::path::Path;
use std::thread::{self, JoinHandle};

use p9::{Client, Fid, QID_TYPE_DIR};

pub const EPERM: i32 = 1;
pub const ENOENT: i32 = 2;
pub const EACCES: i32 = 13;
pub const EBADF: i32 = 9;
pub const EBUSY: i32 = 16;
pub const EISDIR: i32 = 21;
pub const ENFILE: i32 = 23;
pub const EINVAL: i32 = 22;
pub const EROFS: i32 = 30;
pub const ELOOP: i32 = 40;

pub const O_RDONLY: u32 = 0;
pub const O_WRONLY: u32 = 1;
pub const O_RDWR: u32 = 2;
pub const O_CREAT: u32 = 0o100;
pub const O_EXCL: u32 = 0o200;
pub const O_TRUNC: u32 = 0o1000;
pub const O_PATH: u32 = 0o10000000;

/// A Gofer serving a directory in a thread, and a client attached to it.
pub struct Session {
    pub client: Client,
    pub root: Fid,
    pub server: JoinHandle<Result<(), gofer::GoferError>>,
}

/// The limits of a Gofer allowed 1024 open files, the usual soft limit.
pub fn limits() -> gofer::FidLimits {
    gofer::FidLimits::for_open_files(1024)
}

impl Session {
    pub fn start(dir: &Path, read_only: bool) -> Session {
        Session::start_with(dir, gofer::Config { read_only, ..gofer::Config::new(limits()) })
    }

    pub fn start_serving(dir: &Path, read_only: bool, only: Option<&'static str>) -> Session {
        let only = only.map(|name| name.as_bytes().to_vec());
        Session::start_with(dir, gofer::Config { read_only, only, ..gofer::Config::new(limits()) })
    }

    pub fn start_with(dir: &Path, config: gofer::Config) -> Session {
        let (a, b) = UnixStream::pair().unwrap();
        let root = dir.to_owned();
        let server = thread::spawn(move || gofer::serve(b, &root, &config));
        let client = Client::new(a, 8192).unwrap();
        let (root, qid) = client.attach("").unwrap();
        assert_eq!(qid.ty, QID_TYPE_DIR);
        Session { client, root, server }
    }

    pub fn walk(&self, path: &[&str]) -> Result<Fid, p9::Error> {
        let names: Vec<&[u8]> = path.iter().map(|n| n.as_bytes()).collect();
        self.client.walk(self.root, &names).map(|(fid, _)| fid)
    }

    pub fn read_all(&self, fid: Fid) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 5000];
        loop {
            let n = self.client.read(fid, out.len() as u64, &mut buf).unwrap();
            out.extend_from_slice(&buf[..n]);
            if n < buf.len() {
                return out;
            }
        }
    }

    pub fn list(&self, path: &[&str], count: u32) -> Vec<String> {
        let dir = self.walk(path).unwrap();
        self.client.lopen(dir, O_RDONLY).unwrap();
        let mut names = Vec::new();
        let mut offset = 0;
        loop {
            let entries = self.client.readdir(dir, offset, count).unwrap();
            let Some(last) = entries.last() else { break };
            offset = last.offset;
            names.extend(entries.iter().map(|e| String::from_utf8(e.name.clone()).unwrap()));
        }
        self.client.clunk(dir).unwrap();
        names.sort();
        names
    }

    pub fn finish(self) {
        drop(self.client);
        self.server.join().unwrap().unwrap();
    }
}
