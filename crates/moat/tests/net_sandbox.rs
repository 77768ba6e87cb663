//! The `sandbox` network mode end to end: an OCI container on moat reaches a
//! peer over its network namespace's veth through the Sentry's own stack, is
//! reached from it, and sees its interface as the namespace had it.
//!
//! Each test makes two network namespaces of its own (the peer's and the
//! container's) joined by a veth pair addressed from 198.18.N.0/24 (reserved
//! for benchmarks; N from the test's pid), removed whatever happens; no
//! packet leaves them, and the host's links, addresses and routes stay as
//! they were. runc runs the same bundle in the same namespaces first: the
//! host kernel is the oracle.

mod common;
#[path = "engines/host_state.rs"]
mod host_state;
#[path = "common/netns.rs"]
mod netns;

use std::fs;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::oci::Runtime;
use common::{unique_name, Rootfs, TempDir};
use host_state::HostNetwork;
use netns::Pair;
use serde_json::Value;

const PORT: u16 = 8000;

/// A container deleted (with --force) when the test ends, however it ends.
struct Container<'a> {
    rt: &'a Runtime,
    id: String,
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        let _ = self.rt.run(&["delete", "--force", &self.id]);
    }
}

/// A bundle at `dir` over `rootfs` running `script` in the namespace `netns`.
fn bundle(rt: &Runtime, dir: &TempDir, rootfs: &Rootfs, script: &str, netns: &str) -> String {
    let path = dir.path().to_str().expect("utf-8").to_owned();
    let out = rt.run(&["spec", "--bundle", &path]);
    assert_eq!(out.status, 0, "{} spec: {}", rt.name, out.describe());
    let config = dir.path().join("config.json");
    let mut spec: Value = serde_json::from_str(&fs::read_to_string(&config).expect("read")).expect("json");
    spec["root"]["path"] = rootfs.path().to_str().expect("utf-8").into();
    spec["process"]["terminal"] = false.into();
    spec["process"]["args"] = serde_json::json!(["/bin/sh", "-c", script]);
    for ns in spec["linux"]["namespaces"].as_array_mut().expect("namespaces") {
        if ns["type"] == "network" {
            ns["path"] = netns.into();
        }
    }
    fs::write(&config, serde_json::to_vec_pretty(&spec).expect("json")).expect("write config.json");
    path
}

/// The container fetches a file from the peer, sees eth0 with its address
/// and the default route, and a closed port on the peer refuses it: the same
/// output under runc and under moat.
#[test]
fn a_container_fetches_from_a_peer_and_sees_its_link_as_under_runc() {
    let before = HostNetwork::now();
    let rootfs = Rootfs::new();
    let mut pair = Pair::new(0);
    let www = TempDir::new("net-sandbox-www");
    let body = format!("served from the peer's namespace {}\n", pair.n);
    fs::write(www.path().join("file"), &body).expect("write the served file");
    pair.serve(www.path(), PORT);
    let peer = pair.addr(1);
    let script = format!(
        "wget -q -O - http://{peer}:{PORT}/file; echo wget=$?; ip addr | grep 'scope global'; ip route | grep default; \
         wget -q -O - http://{peer}:1/ 2>&1; echo closed=$?; \
         sed -n 's/^ *eth0: *//p' /proc/net/dev | awk '{{print \"eth0 counted its bytes both ways:\", ($1 > 0 && $9 > 0)}}'"
    );
    let mut outputs = Vec::new();
    for rt in &Runtime::both() {
        pair.address_container();
        let dir = TempDir::new("net-sandbox-bundle");
        let path = bundle(rt, &dir, &rootfs, &script, &pair.ctr_path());
        let c = Container { rt, id: unique_name("net-fetch") };
        let out = rt.run(&["run", "--bundle", &path, &c.id]);
        assert_eq!(out.status, 0, "{}: {}", rt.name, out.describe());
        outputs.push((rt.name, out.stdout));
    }
    let (runc, moat) = (&outputs[0].1, &outputs[1].1);
    assert!(runc.starts_with(&format!("{body}wget=0\n")), "runc did not fetch the file: {runc}");
    assert!(runc.contains(&format!("inet {}/24 brd {}", pair.addr(2), pair.addr(255))), "runc's eth0: {runc}");
    assert!(runc.contains("Connection refused"), "runc's connect to a closed port: {runc}");
    assert_eq!(moat, runc, "moat's container saw the network otherwise than runc's");
    drop(pair);
    let after = HostNetwork::now();
    assert_eq!(before, after, "the host's network changed:\n{}", before.difference(&after));
}

/// A listener in the container (busybox nc) takes a connection from the
/// peer's namespace, and both ends read what the other wrote.
#[test]
fn a_listener_in_the_container_is_reached_from_the_peer() {
    let rootfs = Rootfs::new();
    let pair = Pair::new(1);
    let target = pair.addr(2);
    for rt in &Runtime::both() {
        pair.address_container();
        let dir = TempDir::new("net-sandbox-listen");
        let path = bundle(rt, &dir, &rootfs, "echo pong | nc -l -p 8080", &pair.ctr_path());
        let c = Container { rt, id: unique_name("net-listen") };
        let out_file = dir.path().join("out");
        let running = rt
            .command(&["run", "--bundle", &path, &c.id])
            .stdout(fs::File::create(&out_file).expect("output file"))
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn run");
        // Until the listener is up the connection is refused: try again.
        let deadline = Instant::now() + Duration::from_secs(30);
        let answer = loop {
            let out = Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "echo ping | ip netns exec {} {} nc -w 3 {target} 8080",
                    pair.peer,
                    common::busybox().display()
                ))
                .output()
                .expect("run nc in the peer's namespace");
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            if text.contains("pong") || Instant::now() > deadline {
                break text;
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        let status = running.wait_with_output().expect("wait for run").status;
        let inside = fs::read_to_string(&out_file).unwrap_or_default();
        assert_eq!(answer.trim(), "pong", "{}: what the peer read from the container's listener", rt.name);
        assert_eq!((status.code(), inside.trim()), (Some(0), "ping"), "{}: what the listener read", rt.name);
    }
}

/// A connect to an address on the link where no host answers ARP fails with
/// EHOSTUNREACH once the neighbour lookup gives up ("No route to host"),
/// never hangs. (Linux 6.18 here keeps sending SYNs and says ETIMEDOUT after
/// 127 s: runc is not run, for that alone would take over two minutes.)
#[test]
fn a_connect_to_an_absent_host_fails_with_no_route_to_host() {
    let rootfs = Rootfs::new();
    let pair = Pair::new(2);
    let rt = Runtime::moat();
    let dir = TempDir::new("net-sandbox-absent");
    let script = format!("nc {} 80 </dev/null; echo status=$?", pair.addr(99));
    let path = bundle(&rt, &dir, &rootfs, &script, &pair.ctr_path());
    let c = Container { rt: &rt, id: unique_name("net-absent") };
    let out = rt.run(&["run", "--bundle", &path, &c.id]);
    assert_eq!(out.status, 0, "{}", out.describe());
    assert!(out.stdout.contains("status=1"), "{}", out.describe());
    assert!(out.stderr.contains("No route to host"), "{}", out.describe());
}
