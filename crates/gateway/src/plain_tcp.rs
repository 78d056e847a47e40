//! Frames over a plain TCP socket, holding no buffer while the connection is idle.
//!
//! `tokio_util::codec::Framed` keeps a read and a write buffer for the life of a connection
//! and puts both halves behind a lock. Most connections are idle most of the time, so here
//! the socket is split into its two owned halves (one shared `Arc`, no lock), the reader
//! takes memory for a read only once the socket is readable and gives it back when every
//! byte read has become a frame, and the writer's buffer lives from the first `feed` to the
//! flush that empties it. An idle connection holds the two halves and nothing else.
//!
//! TLS connections keep `Framed` (rustls holds its own buffers per connection anyway).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, BytesMut};
use futures_util::{Sink, Stream};
use magpie_proto::Frame;
use magpie_proto::codec::{Outgoing, decode_prefixed, encode_prefixed, prefix_encoded};
use tokio::io::AsyncWrite;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::transport::{FrameSink, FrameStream, ReadError};

/// Space taken for one read once the socket is readable: a burst of small frames, or the
/// start of a large one (whose remainder is reserved by the decoder, bounded by the limit).
const READ_CHUNK: usize = 8 * 1024;

/// Bytes buffered by `feed` before it flushes on its own; the connection flushes after
/// each batch anyway, so this only bounds one batch's buffer.
const WRITE_BATCH_BYTES: usize = 16 * 1024;

/// Frames over `sock`, each at most `max_frame` bytes.
pub fn transport(sock: TcpStream, max_frame: usize) -> (FrameStream, FrameSink) {
    let (read, write) = sock.into_split();
    (
        Box::pin(Reader {
            io: read,
            buf: BytesMut::new(),
            max_frame,
            done: false,
        }),
        Box::pin(Writer {
            io: write,
            buf: BytesMut::new(),
        }),
    )
}

struct Reader {
    io: OwnedReadHalf,
    /// Bytes read and not yet a frame; no allocation while empty.
    buf: BytesMut,
    max_frame: usize,
    /// The stream ended (EOF or a framing error): nothing more is read.
    done: bool,
}

impl Reader {
    /// Drops the buffer's allocation once every byte in it has been decoded. (Not keyed on
    /// `capacity()`: a buffer advanced to its end reports none left but still holds its
    /// allocation.)
    fn release_if_empty(&mut self) {
        if self.buf.is_empty() {
            self.buf = BytesMut::new();
        }
    }
}

impl Stream for Reader {
    type Item = Result<Frame, ReadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            match decode_prefixed(&mut this.buf, this.max_frame) {
                Ok(Some(frame)) => {
                    this.release_if_empty();
                    return Poll::Ready(Some(Ok(frame)));
                }
                Ok(None) => {}
                Err(e) => {
                    // Framing is lost: the connection cannot go on.
                    this.done = true;
                    this.buf = BytesMut::new();
                    return Poll::Ready(Some(Err(e.into())));
                }
            }
            // Readiness first, memory second: a connection waiting for its peer holds no
            // read buffer.
            if let Err(e) = ready!(this.io.as_ref().poll_read_ready(cx)) {
                this.done = true;
                return Poll::Ready(Some(Err(ReadError::Io(e.to_string()))));
            }
            if this.buf.capacity() - this.buf.len() < READ_CHUNK {
                this.buf.reserve(READ_CHUNK);
            }
            match this.io.as_ref().try_read_buf(&mut this.buf) {
                Ok(0) => {
                    this.done = true;
                    if this.buf.is_empty() {
                        return Poll::Ready(None);
                    }
                    this.buf = BytesMut::new();
                    return Poll::Ready(Some(Err(ReadError::Io(
                        "connection closed in the middle of a frame".into(),
                    ))));
                }
                Ok(_) => {}
                // Readiness was stale; the next `poll_read_ready` registers for the next.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => this.release_if_empty(),
                Err(e) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(ReadError::Io(e.to_string()))));
                }
            }
        }
    }
}

struct Writer {
    io: OwnedWriteHalf,
    /// Encoded frames not yet written; no allocation between flushes.
    buf: BytesMut,
}

impl Writer {
    fn poll_write_all(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.buf.is_empty() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.buf))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.buf.advance(n);
        }
        // Even at zero remaining capacity the advanced buffer holds its allocation.
        self.buf = BytesMut::new();
        Poll::Ready(Ok(()))
    }
}

impl Sink<Outgoing> for Writer {
    type Error = io::Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.buf.len() >= WRITE_BATCH_BYTES {
            ready!(this.poll_write_all(cx))?;
        }
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, item: Outgoing) -> io::Result<()> {
        let this = self.get_mut();
        match item {
            Outgoing::Frame(f) => encode_prefixed(&f, &mut this.buf),
            Outgoing::Encoded(b) => prefix_encoded(&b, &mut this.buf),
        }
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_write_all(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_write_all(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests fail loudly on unexpected errors

    use super::*;
    use futures_util::{SinkExt, StreamExt};
    use magpie_proto::pb::{self, frame::Body};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn ping(i: u64) -> Frame {
        magpie_proto::frame(i, Body::Ping(pb::Ping { client_time_ms: i }))
    }

    fn prefixed(f: &Frame) -> Vec<u8> {
        let mut b = BytesMut::new();
        encode_prefixed(f, &mut b);
        b.to_vec()
    }

    async fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (c, s) = tokio::join!(TcpStream::connect(addr), l.accept());
        (c.unwrap(), s.unwrap().0)
    }

    #[tokio::test]
    async fn frames_cut_at_every_byte_arrive_whole_and_in_order() {
        let (mut client, server) = pair().await;
        let (mut frames, _sink) = transport(server, 1 << 20);
        let bytes: Vec<u8> = (0..50).flat_map(|i| prefixed(&ping(i))).collect();
        let writer = tokio::spawn(async move {
            for b in bytes {
                client.write_all(&[b]).await.unwrap();
                client.flush().await.unwrap();
            }
            client
        });
        for i in 0..50 {
            assert_eq!(frames.next().await.unwrap().unwrap(), ping(i));
        }
        drop(writer.await.unwrap());
        assert!(
            frames.next().await.is_none(),
            "a clean close ends the stream"
        );
    }

    #[tokio::test]
    async fn a_close_mid_frame_and_an_oversized_prefix_are_errors() {
        let (mut client, server) = pair().await;
        let (mut frames, _sink) = transport(server, 1 << 20);
        let whole = prefixed(&ping(1));
        client.write_all(&whole[..whole.len() - 1]).await.unwrap();
        drop(client);
        assert!(matches!(frames.next().await, Some(Err(ReadError::Io(_)))));
        assert!(frames.next().await.is_none());

        let (mut client, server) = pair().await;
        let (mut frames, _sink) = transport(server, 16);
        client.write_all(&1_000_000u32.to_be_bytes()).await.unwrap();
        assert!(matches!(
            frames.next().await,
            Some(Err(ReadError::TooLarge(_)))
        ));
        assert!(
            frames.next().await.is_none(),
            "nothing is read after framing is lost"
        );
    }

    #[tokio::test]
    async fn fed_frames_leave_in_order_on_flush() {
        let (mut client, server) = pair().await;
        let (_frames, mut sink) = transport(server, 1 << 20);
        for i in 0..1000 {
            sink.feed(Outgoing::Frame(ping(i))).await.unwrap();
        }
        sink.feed(Outgoing::Encoded(magpie_proto::encode_frame(&ping(1000))))
            .await
            .unwrap();
        sink.flush().await.unwrap();
        sink.close().await.unwrap();
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        let want: Vec<u8> = (0..=1000).flat_map(|i| prefixed(&ping(i))).collect();
        assert_eq!(got, want);
    }
}
