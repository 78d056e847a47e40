//! Frame I/O on the two halves of one connection, without the SDK's machinery.
//!
//! The bench is a client that must stay cheaper than the server it measures, so a
//! connection here is only its two socket halves and two buffers:
//!
//! - [`Writer`] queues frames with [`Writer::push`] and sends everything queued in one
//!   [`Writer::flush`]: a sender whose window just reopened writes its whole batch in one
//!   syscall, and a receiver acknowledges a whole read's worth of pushes at once.
//! - [`Reader::read_into`] returns every complete frame already in the buffer, reading from
//!   the socket only when there is none. It is cancel-safe (it only awaits on a read that
//!   loses nothing when dropped), so the scenario loops can `select!` over it.

use std::io;

use bytes::{Bytes, BytesMut};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use magpie_proto::Frame;
use magpie_proto::codec::{decode_prefixed, encode_frame, encode_prefixed};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// A WebSocket client over a plain TCP stream.
pub type Ws = WebSocketStream<TcpStream>;

/// The receiving half of a connection.
pub enum Reader {
    /// Length-prefixed frames over TCP.
    Tcp {
        /// The socket's read half.
        rd: OwnedReadHalf,
        /// Bytes read but not yet decoded.
        buf: BytesMut,
        /// Bytes to make room for before each read.
        chunk: usize,
        /// Largest frame accepted.
        max_frame: usize,
    },
    /// One frame per binary WebSocket message.
    Ws {
        /// The WebSocket's stream half.
        stream: SplitStream<Ws>,
        /// Largest frame accepted.
        max_frame: usize,
    },
}

/// The sending half of a connection.
pub enum Writer {
    /// Length-prefixed frames over TCP.
    Tcp {
        /// The socket's write half.
        wr: OwnedWriteHalf,
        /// Encoded frames waiting for the next flush.
        buf: BytesMut,
    },
    /// One frame per binary WebSocket message.
    Ws {
        /// The WebSocket's sink half.
        sink: SplitSink<Ws, WsMessage>,
        /// Encoded frames waiting for the next flush.
        queue: Vec<Bytes>,
    },
}

impl Reader {
    /// Appends every frame available to `out`, reading from the socket only if none is
    /// buffered. Returns how many were appended; 0 means the peer closed the connection.
    pub async fn read_into(&mut self, out: &mut Vec<Frame>) -> io::Result<usize> {
        match self {
            Self::Tcp {
                rd,
                buf,
                chunk,
                max_frame,
            } => loop {
                let before = out.len();
                while let Some(f) = decode_prefixed(buf, *max_frame).map_err(io::Error::other)? {
                    out.push(f);
                }
                if out.len() > before {
                    return Ok(out.len() - before);
                }
                if buf.capacity() - buf.len() < *chunk / 4 {
                    buf.reserve(*chunk);
                }
                if rd.read_buf(buf).await? == 0 {
                    return Ok(0);
                }
            },
            Self::Ws { stream, max_frame } => loop {
                match stream.next().await {
                    None => return Ok(0),
                    Some(Err(e)) => return Err(io::Error::other(e)),
                    Some(Ok(WsMessage::Binary(b))) => {
                        let f =
                            magpie_proto::decode_frame(&b, *max_frame).map_err(io::Error::other)?;
                        out.push(f);
                        return Ok(1);
                    }
                    Some(Ok(WsMessage::Close(_))) => return Ok(0),
                    Some(Ok(WsMessage::Text(_))) => {
                        return Err(io::Error::other("server sent a text message"));
                    }
                    // WebSocket pings are answered by tungstenite itself.
                    Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_))) => {}
                }
            },
        }
    }
}

impl Writer {
    /// Queues a frame for the next [`Writer::flush`].
    pub fn push(&mut self, frame: &Frame) {
        match self {
            Self::Tcp { buf, .. } => encode_prefixed(frame, buf),
            Self::Ws { queue, .. } => queue.push(encode_frame(frame)),
        }
    }

    /// Whether frames are waiting to be flushed.
    pub fn is_empty(&self) -> bool {
        match self {
            Self::Tcp { buf, .. } => buf.is_empty(),
            Self::Ws { queue, .. } => queue.is_empty(),
        }
    }

    /// Writes every queued frame.
    pub async fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Tcp { wr, buf } => {
                if !buf.is_empty() {
                    wr.write_all(buf).await?;
                    buf.clear();
                }
                Ok(())
            }
            Self::Ws { sink, queue } => {
                if queue.is_empty() {
                    return Ok(());
                }
                for b in queue.drain(..) {
                    sink.feed(WsMessage::Binary(b))
                        .await
                        .map_err(io::Error::other)?;
                }
                sink.flush().await.map_err(io::Error::other)
            }
        }
    }

    /// Closes the connection politely (WebSocket close frame, TCP FIN).
    pub async fn close(&mut self) {
        match self {
            Self::Tcp { wr, .. } => {
                let _ = wr.shutdown().await;
            }
            Self::Ws { sink, .. } => {
                let _ = sink.close().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use magpie_proto::pb;
    use tokio::net::TcpListener;

    fn ping(i: u64) -> Frame {
        magpie_proto::frame(i, magpie_proto::Body::Ping(pb::Ping { client_time_ms: i }))
    }

    #[tokio::test]
    async fn a_batch_written_at_once_reads_back_in_order() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let (_, wr) = client.into_split();
        let (rd, _keep) = server.into_split();
        let mut writer = Writer::Tcp {
            wr,
            buf: BytesMut::new(),
        };
        // A tiny read step forces frames to straddle reads.
        let mut reader = Reader::Tcp {
            rd,
            buf: BytesMut::new(),
            chunk: 8,
            max_frame: 1024,
        };
        for i in 1..=100 {
            writer.push(&ping(i));
        }
        assert!(!writer.is_empty());
        writer.flush().await.unwrap();
        assert!(writer.is_empty());
        writer.close().await;
        let mut got = Vec::new();
        while reader.read_into(&mut got).await.unwrap() > 0 {}
        let ids: Vec<u64> = got.iter().map(|f| f.request_id).collect();
        assert_eq!(ids, (1..=100).collect::<Vec<_>>());
    }
}
