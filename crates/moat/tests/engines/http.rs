//! `python3 -m http.server` on an address of a bridge of the test's own (in
//! the host's network namespace or in one of the test's own), serving one
//! file for containers to fetch; killed when dropped.
#![allow(dead_code)]

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::common::TempDir;

/// What the server's one file, hello.txt, holds.
pub const HELLO: &str = "hello over the bridge\n";

/// A running server; killed when dropped.
pub struct HttpServer {
    child: Child,
    /// The port the kernel gave it.
    pub port: u16,
    address: String,
    /// Kept open, so that the server never writes to a closed pipe.
    _stdout: BufReader<ChildStdout>,
    _dir: TempDir,
}

impl HttpServer {
    /// Starts a server bound to `address` on a port the kernel picks, in the
    /// network namespace `netns` (a `/proc/PID/ns/net`) or the test's own,
    /// and waits until it listens.
    pub fn start(address: &str, netns: Option<&Path>) -> Result<HttpServer, String> {
        let dir = TempDir::new("http");
        fs::write(dir.path().join("hello.txt"), HELLO).map_err(|e| format!("cannot write hello.txt: {e}"))?;
        let mut command = match netns {
            Some(netns) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net={}", netns.display())).arg("/usr/bin/python3");
                c
            }
            None => Command::new("/usr/bin/python3"),
        };
        command
            .args(["-u", "-m", "http.server", "--bind", address, "--directory"])
            .arg(dir.path())
            .arg("0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = command.spawn().map_err(|e| format!("cannot start python3 -m http.server: {e}"))?;
        let stdout = child.stdout.take().expect("piped stdout");
        // "Serving HTTP on ADDRESS port PORT (http://…) ...", once it listens.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = tx.send((line, reader));
        });
        let Ok((line, stdout)) = rx.recv_timeout(Duration::from_secs(20)) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("python3 -m http.server on {address} did not say it listens within 20 s"));
        };
        let port = line.split_whitespace().skip_while(|w| *w != "port").nth(1).and_then(|p| p.parse::<u16>().ok());
        let Some(port) = port else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("python3 -m http.server on {address} did not start: it said {line:?}"));
        };
        Ok(HttpServer { child, port, address: address.to_owned(), _stdout: stdout, _dir: dir })
    }

    /// The URL of hello.txt.
    pub fn url(&self) -> String {
        format!("http://{}:{}/hello.txt", self.address, self.port)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
