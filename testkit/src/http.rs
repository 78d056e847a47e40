//! A minimal HTTP/1.1 GET for tests of the health and metrics endpoints (test code only;
//! the server side is axum).

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// GETs `path`; returns the status code and the body. Panics if there is no answer.
pub async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    try_get(addr, path).await.expect("an HTTP response")
}

/// GETs `path`; `None` if the listener is gone or closed without answering.
pub async fn try_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).await.ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.ok()?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some((status, body))
}
