//! Transports: TCP, TLS, WebSocket and secure WebSocket, each turned into the same pair of a
//! frame sink and a frame stream.
//!
//! Stream transports carry length-prefixed frames ([`FrameCodec`]); WebSocket carries one
//! frame per binary message. Both are bounded by `max_frame_bytes` before anything is
//! allocated for a frame. TLS is rustls with the ring provider chosen explicitly.

use std::pin::Pin;
use std::sync::Arc;

use futures_util::{Sink, SinkExt, Stream, StreamExt, future};
use magpie_proto::codec::{CodecError, Outgoing};
use magpie_proto::{Frame, FrameCodec, decode_frame, encode_frame};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, protocol::WebSocketConfig};
use tokio_util::codec::Framed;

use crate::{ClientConfig, ClientError};

/// Frames from the server; `None` when the connection closed cleanly.
pub(crate) type FrameStream = Pin<Box<dyn Stream<Item = Result<Frame, TransportError>> + Send>>;
/// Frames to the server.
pub(crate) type FrameSink = Pin<Box<dyn Sink<Frame, Error = TransportError> + Send>>;

/// Why a transport failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TransportError {
    /// Socket or TLS failure.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Framing failed (oversized or malformed frame).
    #[error("{0}")]
    Codec(#[from] CodecError),
    /// WebSocket failure.
    #[error("websocket: {0}")]
    WebSocket(#[from] tungstenite::Error),
    /// The server sent something that is not a frame.
    #[error("{0}")]
    Unexpected(&'static str),
}

/// The transport a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    Tcp,
    Tls,
    Ws,
    Wss,
}

/// A parsed server URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub(crate) scheme: Scheme,
    /// Host name or IP address (IPv6 without brackets).
    pub(crate) host: String,
    pub(crate) port: u16,
    /// The URL as given (the WebSocket request URL).
    pub(crate) url: String,
}

impl Endpoint {
    /// Parses `tcp://host:port`, `tls://host:port`, `ws://host[:port]/path`,
    /// `wss://host[:port]/path`.
    pub(crate) fn parse(url: &str) -> Result<Self, ClientError> {
        let bad = |why: &str| ClientError::Config(format!("bad server URL {url:?}: {why}"));
        let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("no scheme"))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "tcp" => Scheme::Tcp,
            "tls" => Scheme::Tls,
            "ws" => Scheme::Ws,
            "wss" => Scheme::Wss,
            _ => return Err(bad("scheme must be tcp, tls, ws or wss")),
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.contains('@') {
            return Err(bad("credentials in the URL are not supported"));
        }
        let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
            let (host, after) = bracketed
                .split_once(']')
                .ok_or_else(|| bad("unclosed '['"))?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(|| bad("junk after ']'"))?),
            };
            (host, port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port = match (port, scheme) {
            (Some(p), _) => p.parse::<u16>().map_err(|_| bad("bad port"))?,
            (None, Scheme::Ws) => 80,
            (None, Scheme::Wss) => 443,
            (None, Scheme::Tcp | Scheme::Tls) => return Err(bad("a port is required")),
        };
        if matches!(scheme, Scheme::Tcp | Scheme::Tls) && authority.len() != rest.len() {
            return Err(bad("tcp and tls URLs take no path"));
        }
        Ok(Self {
            scheme,
            host: host.to_owned(),
            port,
            url: url.to_owned(),
        })
    }

    fn is_tls(&self) -> bool {
        matches!(self.scheme, Scheme::Tls | Scheme::Wss)
    }
}

/// Opens connections to one endpoint.
#[derive(Clone)]
pub(crate) struct Connector {
    endpoint: Endpoint,
    tls: Option<Arc<rustls::ClientConfig>>,
    max_frame: usize,
}

impl Connector {
    /// Validates the URL and builds the TLS configuration once.
    pub(crate) fn new(config: &ClientConfig) -> Result<Self, ClientError> {
        let endpoint = Endpoint::parse(&config.url)?;
        let tls = if endpoint.is_tls() {
            Some(tls_config(config)?)
        } else {
            None
        };
        Ok(Self {
            endpoint,
            tls,
            max_frame: config.max_frame_bytes,
        })
    }

    /// Connects (TCP, then TLS and/or the WebSocket handshake).
    pub(crate) async fn connect(&self) -> Result<(FrameSink, FrameStream), TransportError> {
        let ep = &self.endpoint;
        let tcp = TcpStream::connect((ep.host.as_str(), ep.port)).await?;
        // Chat is latency-bound and frames are small: do not wait to coalesce them.
        tcp.set_nodelay(true)?;
        match ep.scheme {
            Scheme::Tcp => Ok(self.framed(tcp)),
            Scheme::Tls => {
                let tls = self
                    .tls
                    .clone()
                    .ok_or(TransportError::Unexpected("no TLS config"))?;
                let name = ServerName::try_from(ep.host.clone()).map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::InvalidInput, "bad TLS server name")
                })?;
                let stream = tokio_rustls::TlsConnector::from(tls)
                    .connect(name, tcp)
                    .await?;
                Ok(self.framed(stream))
            }
            Scheme::Ws | Scheme::Wss => {
                let connector = match &self.tls {
                    Some(tls) => tokio_tungstenite::Connector::Rustls(tls.clone()),
                    None => tokio_tungstenite::Connector::Plain,
                };
                let (ws, _response) = tokio_tungstenite::client_async_tls_with_config(
                    ep.url.as_str(),
                    tcp,
                    Some(ws_config(self.max_frame)),
                    Some(connector),
                )
                .await?;
                Ok(self.websocket(ws))
            }
        }
    }

    fn framed<S>(&self, io: S) -> (FrameSink, FrameStream)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    {
        let (sink, stream) = Framed::new(io, FrameCodec::new(self.max_frame)).split();
        let sink = sink.with(|f: Frame| future::ready(Ok::<_, TransportError>(Outgoing::Frame(f))));
        let stream = stream.map(|r| r.map_err(TransportError::from));
        (Box::pin(sink), Box::pin(stream))
    }

    fn websocket<S>(&self, ws: tokio_tungstenite::WebSocketStream<S>) -> (FrameSink, FrameStream)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    {
        use tungstenite::Message as Ws;
        let max = self.max_frame;
        let (sink, stream) = ws.split();
        let sink = sink
            .with(|f: Frame| future::ready(Ok::<_, TransportError>(Ws::Binary(encode_frame(&f)))));
        let stream = stream.filter_map(move |m| {
            future::ready(match m {
                Ok(Ws::Binary(b)) => Some(decode_frame(&b, max).map_err(TransportError::from)),
                // Control frames are answered by tungstenite; a close ends the stream.
                Ok(Ws::Ping(_) | Ws::Pong(_) | Ws::Frame(_) | Ws::Close(_)) => None,
                Ok(Ws::Text(_)) => Some(Err(TransportError::Unexpected(
                    "text WebSocket message (frames are binary)",
                ))),
                Err(tungstenite::Error::ConnectionClosed) => None,
                Err(e) => Some(Err(e.into())),
            })
        });
        (Box::pin(sink), Box::pin(stream))
    }
}

/// WebSocket limits: frames are small, so the defaults (64 MiB messages, 128 KiB buffers)
/// are far too generous.
fn ws_config(max_frame: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(max_frame))
        .max_frame_size(Some(max_frame))
        .read_buffer_size(16 * 1024)
        .write_buffer_size(16 * 1024)
        .max_write_buffer_size(max_frame.saturating_mul(4))
}

/// rustls client configuration with the ring provider, the configured roots and (unless
/// disabled) the public web PKI roots.
fn tls_config(config: &ClientConfig) -> Result<Arc<rustls::ClientConfig>, ClientError> {
    let mut roots = rustls::RootCertStore::empty();
    if config.public_roots {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    for der in &config.root_certificates {
        roots
            .add(CertificateDer::from(der.clone()))
            .map_err(|e| ClientError::Config(format!("bad root certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(ClientError::Config("no trusted root certificates".into()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Config(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(tls))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse() {
        let e = Endpoint::parse("tcp://127.0.0.1:7000").unwrap();
        assert_eq!(
            (e.scheme, e.host.as_str(), e.port),
            (Scheme::Tcp, "127.0.0.1", 7000)
        );
        let e = Endpoint::parse("wss://chat.example.com/ws?x=1").unwrap();
        assert_eq!(
            (e.scheme, e.host.as_str(), e.port),
            (Scheme::Wss, "chat.example.com", 443)
        );
        let e = Endpoint::parse("ws://[::1]:8080/ws").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("::1", 8080));
        let e = Endpoint::parse("TLS://[::1]:9").unwrap();
        assert_eq!((e.scheme, e.port), (Scheme::Tls, 9));
    }

    #[test]
    fn bad_urls_are_refused() {
        for url in [
            "",
            "127.0.0.1:7000",
            "http://h:1",
            "tcp://h",
            "tcp://:1",
            "tcp://h:x",
            "tcp://h:70000",
            "tcp://h:1/path",
            "ws://u:p@h/ws",
            "ws://[::1/ws",
        ] {
            assert!(Endpoint::parse(url).is_err(), "{url}");
        }
    }
}
