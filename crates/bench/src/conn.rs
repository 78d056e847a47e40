//! Opening an authenticated connection: dial from a loopback source address, upgrade to
//! WebSocket if asked, send `Hello`, wait for `HelloOk`.
//!
//! Why choose the source address: one source IP has about 28,000 ephemeral ports towards
//! one server port, and the connections of the previous run linger in TIME_WAIT for a
//! minute. Spreading connections round-robin over `127.X.Y.1 ..= 127.X.Y.K` multiplies
//! the ports available by K, and also spreads the server's per-IP cap on connections still
//! in their handshake (`max_preauth_per_ip`, 256 by default) over K addresses. `X.Y` is
//! picked at random per run, so a run does not search for free ports among the tens of
//! thousands of TIME_WAIT sockets its predecessor left on the same addresses (measured:
//! letting the kernel pick ports for 19,000 connections cost the bench 6.7 s of system
//! time; spread over 16 fresh addresses, 0.8 s).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::BytesMut;
use futures_util::StreamExt;
use magpie_proto::pb::{self, Hello};
use magpie_proto::{Body, DEFAULT_MAX_FRAME, Frame, PROTOCOL_VERSION, frame};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::frames::{Reader, Writer};
use crate::target::{Target, Transport};

/// An authenticated connection, split into its halves.
pub struct Conn {
    /// Frames from the server.
    pub reader: Reader,
    /// Frames to the server.
    pub writer: Writer,
    /// How often to ping, from the server's `HelloOk` (half its heartbeat interval, so a
    /// late timer never gets the connection closed for silence).
    pub ping_every: Duration,
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct Dialer {
    /// The server.
    pub target: Target,
    /// How many loopback source addresses to spread connections over (0: let the kernel
    /// choose).
    pub source_ips: u8,
    /// The middle octets `X.Y` of the source addresses `127.X.Y.n`.
    pub source_net: [u8; 2],
    /// Read buffer growth step per connection: small for idle connections, larger for
    /// connections that stream messages.
    pub read_chunk: usize,
    /// Time allowed for connect + handshake.
    pub timeout: Duration,
}

/// The smallest ping period the bench uses, whatever the server announces.
const MIN_PING: Duration = Duration::from_millis(200);

impl Dialer {
    /// Opens connection number `index` (which picks its source address) and authenticates
    /// with `token`.
    pub async fn open(&self, index: u64, token: &str) -> anyhow::Result<Conn> {
        tokio::time::timeout(self.timeout, self.open_inner(index, token))
            .await
            .context("connect and handshake timed out")?
    }

    async fn open_inner(&self, index: u64, token: &str) -> anyhow::Result<Conn> {
        let stream = self.dial(index).await?;
        stream.set_nodelay(true)?;
        let (mut reader, mut writer) = match self.target.transport {
            Transport::Tcp => {
                let (rd, wr) = stream.into_split();
                (
                    Reader::Tcp {
                        rd,
                        buf: BytesMut::with_capacity(self.read_chunk),
                        chunk: self.read_chunk,
                        max_frame: DEFAULT_MAX_FRAME,
                    },
                    Writer::Tcp {
                        wr,
                        buf: BytesMut::new(),
                    },
                )
            }
            Transport::Ws => {
                // tungstenite's default read buffer is 128 KiB per connection: far too much
                // for thousands of idle connections in one bench process.
                // Writes are buffered (the buffer grows only as far as a batch needs) and
                // sent by `Writer::flush`, so a batch of frames costs one syscall.
                let config = WebSocketConfig::default()
                    .read_buffer_size(self.read_chunk.max(1024))
                    .write_buffer_size(64 * 1024)
                    .max_message_size(Some(DEFAULT_MAX_FRAME))
                    .max_frame_size(Some(DEFAULT_MAX_FRAME));
                let (ws, _) = tokio_tungstenite::client_async_with_config(
                    self.target.url(),
                    stream,
                    Some(config),
                )
                .await
                .context("WebSocket upgrade")?;
                let (sink, stream) = ws.split();
                (
                    Reader::Ws {
                        stream,
                        max_frame: DEFAULT_MAX_FRAME,
                    },
                    Writer::Ws {
                        sink,
                        queue: Vec::new(),
                    },
                )
            }
        };
        let ping_every = handshake(&mut reader, &mut writer, token).await?;
        Ok(Conn {
            reader,
            writer,
            ping_every,
        })
    }

    async fn dial(&self, index: u64) -> anyhow::Result<TcpStream> {
        let to = self.target.socket_addr();
        if self.source_ips == 0 {
            return Ok(TcpStream::connect(to).await?);
        }
        let last = u64::from(self.source_ips);
        // n in 1 ..= K; `index % last` < 255, so the octet fits.
        let octet = u8::try_from(1 + index % last).unwrap_or(1);
        let [x, y] = self.source_net;
        let source = Ipv4Addr::new(127, x, y, octet);
        let socket = TcpSocket::new_v4()?;
        // Lets a new connection reuse a local port whose old connection is in TIME_WAIT.
        socket.set_reuseaddr(true)?;
        socket
            .bind(SocketAddr::from((source, 0)))
            .with_context(|| format!("binding source address {source}"))?;
        Ok(socket.connect(to).await?)
    }
}

/// Sends `Hello` and waits for `HelloOk`; returns the ping period.
async fn handshake(
    reader: &mut Reader,
    writer: &mut Writer,
    token: &str,
) -> anyhow::Result<Duration> {
    writer.push(&frame(
        1,
        Body::Hello(Hello {
            protocol_version: PROTOCOL_VERSION,
            token: token.to_owned(),
            client: concat!("magpie-bench/", env!("CARGO_PKG_VERSION")).to_owned(),
        }),
    ));
    writer.flush().await?;
    let mut frames: Vec<Frame> = Vec::with_capacity(1);
    if reader.read_into(&mut frames).await? == 0 {
        bail!("the server closed the connection during the handshake");
    }
    // A fresh bench user has nothing waiting, so HelloOk is the only frame at this point.
    match frames.into_iter().next().and_then(|f| f.body) {
        Some(Body::HelloOk(ok)) => {
            let heartbeat = Duration::from_millis(u64::from(ok.heartbeat_interval_ms));
            Ok((heartbeat / 2).max(MIN_PING))
        }
        Some(Body::Error(pb::Error { code, message, .. })) => {
            bail!("handshake refused: code {code}: {message}")
        }
        other => bail!("unexpected frame during the handshake: {other:?}"),
    }
}

/// A `Ping` frame.
pub fn ping(request_id: u64) -> Frame {
    frame(request_id, Body::Ping(pb::Ping { client_time_ms: 0 }))
}
