//! Shared by the binary's integration tests: spawning `magpie serve` as a real process.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// Kills the server process when the test ends, also when it panics: a leaked server would
/// keep the test's output pipe open.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free loopback port (released before the server binds it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// A server's data directory and fixed addresses, so it can be restarted in place.
pub struct Node {
    /// Data directory.
    pub data: PathBuf,
    /// TCP listener.
    pub tcp: SocketAddr,
    /// WebSocket listener.
    pub ws: SocketAddr,
    /// HTTP listener.
    pub http: SocketAddr,
}

impl Node {
    /// A node with fresh ports, storing its data in `dir`.
    pub fn new(dir: &std::path::Path) -> Self {
        let at = |p| SocketAddr::from(([127, 0, 0, 1], p));
        Self {
            data: dir.join("data"),
            tcp: at(free_port()),
            ws: at(free_port()),
            http: at(free_port()),
        }
    }

    /// Starts `magpie serve --demo` and waits until it reports its listeners.
    pub fn spawn(&self) -> Guard {
        let mut child: Child = Command::new(env!("CARGO_BIN_EXE_magpie"))
            .args(["serve", "--demo", "--data-dir"])
            .arg(&self.data)
            .args(["--listen-tcp", &self.tcp.to_string()])
            .args(["--listen-ws", &self.ws.to_string()])
            .args(["--listen-http", &self.http.to_string()])
            .env("MAGPIE_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn magpie serve");
        let out = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(out)
            .read_line(&mut line)
            .expect("read listening line");
        let guard = Guard(child);
        assert!(
            line.contains("\"listening\""),
            "unexpected first line: {line:?}"
        );
        guard
    }

    /// The TCP URL.
    pub fn tcp_url(&self) -> String {
        format!("tcp://{}", self.tcp)
    }

    /// The WebSocket URL.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/", self.ws)
    }
}

/// Runs the `magpie` binary with `args`; returns (success, stdout, stderr).
pub fn magpie(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_magpie"))
        .args(args)
        .env_remove("MAGPIE_APP_SECRET")
        .env_remove("MAGPIE_TOKEN")
        .output()
        .expect("run magpie");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
