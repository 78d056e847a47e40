//! The server under test: a loopback address and a transport.
//!
//! The load generator may only ever point at this machine: a `--server` whose host is not
//! in `127.0.0.0/8` (or `localhost`) is refused here, before any socket is opened, so a typo
//! cannot turn a benchmark into traffic towards someone else's host.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use serde::{Deserialize, Serialize};

/// Which framing the bench speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// Length-prefixed frames over TCP.
    Tcp,
    /// One frame per binary WebSocket message.
    Ws,
}

impl Transport {
    /// The name used on the command line and in the JSON output.
    pub fn name(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Ws => "ws",
        }
    }

    /// Parses `tcp` or `ws`.
    pub fn parse(s: &str) -> Result<Self, TargetError> {
        match s {
            "tcp" => Ok(Self::Tcp),
            "ws" => Ok(Self::Ws),
            other => Err(TargetError(format!(
                "unknown transport {other:?}: use tcp or ws"
            ))),
        }
    }

    /// The default server URL for this transport (the defaults of `magpie serve`).
    pub fn default_url(self) -> &'static str {
        match self {
            Self::Tcp => "tcp://127.0.0.1:7700",
            Self::Ws => "ws://127.0.0.1:7701",
        }
    }
}

/// Why a server URL was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetError(String);

impl TargetError {
    /// An error with this explanation.
    pub(crate) fn new(why: String) -> Self {
        Self(why)
    }
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TargetError {}

/// A validated loopback server address with its transport.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// The server's address (always IPv4 loopback).
    pub addr: SocketAddrV4,
    /// The transport to speak.
    pub transport: Transport,
}

impl Target {
    /// Parses `tcp://HOST:PORT` or `ws://HOST:PORT[/path]`. `transport`, when given, must
    /// agree with the scheme; with neither a URL nor a transport, TCP on the default port.
    pub fn parse(url: Option<&str>, transport: Option<Transport>) -> Result<Self, TargetError> {
        let url = match (url, transport) {
            (Some(u), _) => u,
            (None, Some(t)) => t.default_url(),
            (None, None) => Transport::Tcp.default_url(),
        };
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| TargetError(format!("{url:?} is not a URL: use tcp://HOST:PORT")))?;
        let from_scheme = match scheme {
            "tcp" => Transport::Tcp,
            "ws" => Transport::Ws,
            other => {
                return Err(TargetError(format!(
                    "scheme {other}:// is not supported by the bench: use tcp:// or ws://"
                )));
            }
        };
        if let Some(t) = transport
            && t != from_scheme
        {
            return Err(TargetError(format!(
                "--transport {} disagrees with the server URL {url}",
                t.name()
            )));
        }
        let authority = rest.split('/').next().unwrap_or_default();
        let (host, port) = authority
            .rsplit_once(':')
            .ok_or_else(|| TargetError(format!("{url:?} has no port")))?;
        let port: u16 = port
            .parse()
            .map_err(|_| TargetError(format!("{url:?} has a bad port")))?;
        let ip = loopback_ip(host)?;
        Ok(Self {
            addr: SocketAddrV4::new(ip, port),
            transport: from_scheme,
        })
    }

    /// The socket address to connect to.
    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::V4(self.addr)
    }

    /// The URL, for the JSON output and the WebSocket request.
    pub fn url(&self) -> String {
        match self.transport {
            Transport::Tcp => format!("tcp://{}", self.addr),
            Transport::Ws => format!("ws://{}/", self.addr),
        }
    }
}

/// The IPv4 loopback address `host` names, or an error for anything off this machine.
pub(crate) fn loopback_ip(host: &str) -> Result<Ipv4Addr, TargetError> {
    if host.eq_ignore_ascii_case("localhost") {
        return Ok(Ipv4Addr::LOCALHOST);
    }
    match host.parse::<Ipv4Addr>() {
        Ok(ip) if ip.is_loopback() => Ok(ip),
        _ => Err(TargetError(format!(
            "refusing server host {host:?}: the bench only targets loopback (127.0.0.0/8 or localhost)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_urls_are_accepted() {
        let t = Target::parse(Some("tcp://127.0.0.1:7700"), None).unwrap();
        assert_eq!(t.transport, Transport::Tcp);
        assert_eq!(t.addr.port(), 7700);
        let w = Target::parse(Some("ws://localhost:9/x"), Some(Transport::Ws)).unwrap();
        assert_eq!(w.transport, Transport::Ws);
        assert_eq!(*w.addr.ip(), Ipv4Addr::LOCALHOST);
        let other = Target::parse(Some("tcp://127.3.4.5:1"), None).unwrap();
        assert_eq!(*other.addr.ip(), Ipv4Addr::new(127, 3, 4, 5));
    }

    #[test]
    fn defaults_follow_the_transport() {
        assert_eq!(
            Target::parse(None, Some(Transport::Ws)).unwrap().url(),
            "ws://127.0.0.1:7701/"
        );
        assert_eq!(
            Target::parse(None, None).unwrap().url(),
            "tcp://127.0.0.1:7700"
        );
    }

    #[test]
    fn anything_off_loopback_is_refused() {
        for url in [
            "tcp://10.0.0.1:7700",
            "tcp://192.168.1.2:7700",
            "tcp://8.8.8.8:53",
            "tcp://example.com:7700",
            "ws://[::1]:7701",
            "tcp://0.0.0.0:7700",
        ] {
            assert!(Target::parse(Some(url), None).is_err(), "{url} accepted");
        }
    }

    #[test]
    fn scheme_and_transport_must_agree() {
        assert!(Target::parse(Some("tcp://127.0.0.1:1"), Some(Transport::Ws)).is_err());
        assert!(Target::parse(Some("tls://127.0.0.1:1"), None).is_err());
        assert!(Target::parse(Some("127.0.0.1:1"), None).is_err());
    }
}
