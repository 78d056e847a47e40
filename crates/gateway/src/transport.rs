//! Transports as one stream of frames and one sink.
//!
//! TCP and TLS byte streams carry length-prefixed frames ([`magpie_proto::FrameCodec`]);
//! WebSocket carries one frame per binary message. Both are boxed into the same
//! [`FrameStream`] / [`FrameSink`] pair so that the connection loop is written once. The
//! per-connection cost of the box is one allocation, paid once per connection.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use magpie_proto::codec::Outgoing;
use magpie_proto::{CodecError, Frame, FrameCodec, decode_frame, encode_frame};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_util::codec::Framed;

/// Why reading a frame failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The frame is larger than allowed.
    #[error("frame too large: {0}")]
    TooLarge(String),
    /// The bytes are not a frame (bad protobuf, text message on WebSocket, ...).
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// The connection failed.
    #[error("transport: {0}")]
    Io(String),
}

impl From<CodecError> for ReadError {
    fn from(e: CodecError) -> Self {
        match e {
            CodecError::TooLarge { .. } => Self::TooLarge(e.to_string()),
            CodecError::Malformed(_) => Self::Malformed(e.to_string()),
            CodecError::Io(e) => Self::Io(e.to_string()),
        }
    }
}

/// Incoming frames.
pub type FrameStream = Pin<Box<dyn Stream<Item = Result<Frame, ReadError>> + Send>>;
/// Outgoing frames.
pub type FrameSink = Pin<Box<dyn Sink<Outgoing, Error = io::Error> + Send>>;

/// Initial read and write buffers of a stream connection. Small, because most connections
/// are idle most of the time; they grow (bounded by the frame limit) only when needed.
const STREAM_BUFFER_CAPACITY: usize = 512;

/// Bytes the write buffer may hold before a `feed` forces a flush. `Framed::with_capacity`
/// would set this to the initial capacity (512), flushing every few frames and defeating
/// the batching of pushes and acks into one write; the buffer still starts small.
const STREAM_WRITE_BATCH_BYTES: usize = 16 * 1024;

/// Frames over a byte stream (TCP or TLS).
pub fn stream_transport<S>(io: S, max_frame: usize) -> (FrameStream, FrameSink)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let mut framed = Framed::with_capacity(io, FrameCodec::new(max_frame), STREAM_BUFFER_CAPACITY);
    framed.set_backpressure_boundary(STREAM_WRITE_BATCH_BYTES);
    let (sink, stream) = framed.split();
    let stream = stream.map(|r| r.map_err(ReadError::from));
    let sink = sink.sink_map_err(|e| match e {
        CodecError::Io(e) => e,
        other => io::Error::other(other.to_string()),
    });
    (Box::pin(stream), Box::pin(sink))
}

/// Frames over an established WebSocket.
pub fn ws_transport<S>(ws: WebSocketStream<S>, max_frame: usize) -> (FrameStream, FrameSink)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sink, stream) = ws.split();
    let stream = stream.filter_map(move |m| async move {
        match m {
            Ok(WsMessage::Binary(b)) => Some(decode_frame(&b, max_frame).map_err(ReadError::from)),
            Ok(WsMessage::Text(_)) => Some(Err(ReadError::Malformed(
                "text messages are not frames; send binary".into(),
            ))),
            // Pings are answered by tungstenite itself; close ends the stream next.
            Ok(WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_)) => None,
            Ok(WsMessage::Close(_)) => None,
            Err(tokio_tungstenite::tungstenite::Error::Capacity(e)) => {
                Some(Err(ReadError::TooLarge(e.to_string())))
            }
            Err(e) => Some(Err(ReadError::Io(e.to_string()))),
        }
    });
    (Box::pin(stream), Box::pin(WsSink(sink)))
}

/// Frames into WebSocket binary messages. Written out rather than `SinkExt::with`, whose
/// adapter keeps room for a pending conversion future holding a whole `Outgoing` (about
/// 800 bytes) in every connection's boxed sink; the conversion is synchronous anyway.
struct WsSink<S>(S);

impl<S> Sink<Outgoing> for WsSink<S>
where
    S: Sink<WsMessage, Error = tokio_tungstenite::tungstenite::Error> + Unpin,
{
    type Error = io::Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_ready(cx).map_err(ws_error)
    }

    fn start_send(mut self: Pin<&mut Self>, item: Outgoing) -> io::Result<()> {
        let bytes: Bytes = match item {
            Outgoing::Frame(f) => encode_frame(&f),
            Outgoing::Encoded(b) => b,
        };
        Pin::new(&mut self.0)
            .start_send(WsMessage::Binary(bytes))
            .map_err(ws_error)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx).map_err(ws_error)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_close(cx).map_err(ws_error)
    }
}

fn ws_error(e: tokio_tungstenite::tungstenite::Error) -> io::Error {
    io::Error::other(e.to_string())
}
