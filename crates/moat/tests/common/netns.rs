//! Two network namespaces of a test's own joined by a veth pair: a peer
//! and a container's, as an engine's bridge leaves a container's network.
//! No packet leaves them, and both go (with the pair) when the test ends.
//!
//! Included with `#[path]` by the tests that need it (it builds on `common`).
#![allow(dead_code)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The peer's end v0 has 198.18.N.1/24, the container's end eth0
/// 198.18.N.2/24 with a default route through the peer. 198.18.0.0/15 is
/// reserved for benchmarks; N comes from the test's pid.
pub struct Pair {
    pub peer: String,
    pub ctr: String,
    pub n: u32,
    server: Option<std::process::Child>,
}

impl Pair {
    /// `tag` (below 4) tells apart the pairs of one test binary's tests.
    pub fn new(tag: u32) -> Pair {
        let pid = std::process::id();
        let n = 20 + (pid % 50) * 4 + tag;
        let pair =
            Pair { peer: format!("moat-t-peer-{pid}-{tag}"), ctr: format!("moat-t-ctr-{pid}-{tag}"), n, server: None };
        for ns in [&pair.peer, &pair.ctr] {
            ip(&["netns", "add", ns]);
        }
        // Made inside the peer's namespace, its other end moved straight into
        // the container's: the host's own namespace never has either.
        ip(&["-n", &pair.peer, "link", "add", "v0", "type", "veth", "peer", "name", "eth0", "netns", &pair.ctr]);
        ip(&["-n", &pair.peer, "addr", "add", &format!("{}/24", pair.addr(1)), "brd", "+", "dev", "v0"]);
        for (ns, link) in [(&pair.peer, "v0"), (&pair.peer, "lo"), (&pair.ctr, "eth0")] {
            ip(&["-n", ns, "link", "set", link, "up"]);
        }
        pair.address_container();
        pair
    }

    pub fn addr(&self, host: u8) -> String {
        format!("198.18.{}.{host}", self.n)
    }

    pub fn ctr_path(&self) -> String {
        format!("/var/run/netns/{}", self.ctr)
    }

    /// Gives the container's eth0 its address and default route again: moat
    /// takes them from the host kernel when its Sentry takes the link over.
    pub fn address_container(&self) {
        ip(&["-n", &self.ctr, "addr", "flush", "dev", "eth0"]);
        ip(&["-n", &self.ctr, "addr", "add", &format!("{}/24", self.addr(2)), "brd", "+", "dev", "eth0"]);
        ip(&["-n", &self.ctr, "route", "add", "default", "via", &self.addr(1)]);
    }

    /// `python3 -m http.server` on `port` in the peer's namespace serving
    /// `dir`; ready once it answers from the container's namespace.
    pub fn serve(&mut self, dir: &std::path::Path, port: u16) {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.peer, "python3", "-m", "http.server", "--bind", &self.addr(1)])
            .arg(port.to_string())
            .arg("--directory")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start python3 -m http.server");
        self.server = Some(child);
        let url = format!("http://{}:{port}/", self.addr(1));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let probe = Command::new("ip")
                .args(["netns", "exec", &self.ctr, crate::common::busybox().to_str().expect("utf-8"), "wget", "-q"])
                .args(["-O", "/dev/null", &url])
                .status()
                .expect("run busybox wget");
            if probe.success() {
                return;
            }
            assert!(Instant::now() < deadline, "the peer's HTTP server never answered at {url}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        if let Some(mut s) = self.server.take() {
            let _ = s.kill();
            let _ = s.wait();
        }
        // Deleting a namespace deletes the veth end in it, and so the pair.
        for ns in [&self.peer, &self.ctr] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

pub fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(out.status.success(), "ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
}
