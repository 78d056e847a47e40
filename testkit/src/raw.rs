//! A raw protocol connection: exactly the bytes a test wants, no SDK in between.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use magpie_proto::pb::{self, ErrorCode};
use magpie_proto::{Body, Frame, PROTOCOL_VERSION, codec, frame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long [`RawConn::recv`] waits before reporting silence.
pub const RECV_TIMEOUT: Duration = Duration::from_secs(10);

/// What the server did next.
#[derive(Debug, PartialEq)]
// Transient test values, one at a time: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum Next {
    /// A frame arrived.
    Frame(Frame),
    /// The server closed the connection.
    Closed,
    /// Nothing arrived in time.
    Silent,
}

/// A length-prefixed TCP protocol connection.
pub struct RawConn {
    stream: TcpStream,
    buf: BytesMut,
}

impl RawConn {
    /// Connects to a TCP listener.
    pub async fn connect(addr: SocketAddr) -> Self {
        Self {
            stream: TcpStream::connect(addr).await.expect("connect"),
            buf: BytesMut::new(),
        }
    }

    /// Writes a frame with its length prefix.
    pub async fn send(&mut self, f: &Frame) {
        let mut out = BytesMut::new();
        codec::encode_prefixed(f, &mut out);
        self.send_raw(&out).await;
    }

    /// Writes raw bytes (errors are ignored: the server may already have closed).
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes).await;
        let _ = self.stream.flush().await;
    }

    /// The next frame, a close, or silence after `wait`.
    pub async fn next_within(&mut self, wait: Duration) -> Next {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match codec::decode_prefixed(&mut self.buf, usize::MAX >> 1) {
                Ok(Some(f)) => return Next::Frame(f),
                Ok(None) => {}
                Err(e) => panic!("server sent an undecodable frame: {e}"),
            }
            let mut chunk = [0u8; 8192];
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Err(_) => return Next::Silent,
                Ok(Ok(0) | Err(_)) => return Next::Closed,
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// The next frame; panics on close or silence.
    pub async fn recv(&mut self) -> Frame {
        match self.next_within(RECV_TIMEOUT).await {
            Next::Frame(f) => f,
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    /// Skips frames until one that is not a push; panics on close or silence.
    pub async fn recv_reply(&mut self) -> Frame {
        loop {
            let f = self.recv().await;
            if !matches!(f.body, Some(Body::Push(_))) {
                return f;
            }
        }
    }

    /// Asserts the next frame is an error with `code`, then that the server closes.
    pub async fn expect_fatal(&mut self, code: ErrorCode) {
        let f = self.recv().await;
        assert_eq!(error_code(&f), Some(code), "got {f:?}");
        self.expect_closed().await;
    }

    /// Asserts the server closes the connection (frames before the close are skipped).
    pub async fn expect_closed(&mut self) {
        loop {
            match self.next_within(RECV_TIMEOUT).await {
                Next::Closed => return,
                Next::Frame(_) => {}
                Next::Silent => panic!("the server did not close the connection"),
            }
        }
    }

    /// Sends `Hello` with `token` and returns the reply.
    pub async fn hello(&mut self, token: &str) -> Frame {
        self.send(&hello_frame(token)).await;
        self.recv().await
    }

    /// Sends `Hello` and asserts it succeeded.
    pub async fn login(&mut self, token: &str) {
        let f = self.hello(token).await;
        assert!(
            matches!(f.body, Some(Body::HelloOk(_))),
            "login failed: {f:?}"
        );
    }
}

/// A `Hello` frame.
pub fn hello_frame(token: &str) -> Frame {
    frame(
        1,
        Body::Hello(pb::Hello {
            protocol_version: PROTOCOL_VERSION,
            token: token.to_owned(),
            client: "testkit-raw".into(),
        }),
    )
}

/// A text `SendRequest` frame.
pub fn send_frame(request_id: u64, to: &str, client_msg_id: &str, text: &str) -> Frame {
    frame(
        request_id,
        Body::Send(pb::SendRequest {
            client_msg_id: client_msg_id.to_owned(),
            to: Some(pb::send_request::To::User(to.to_owned())),
            content: Some(magpie_proto::convert::text_content(text)),
            ..pb::SendRequest::default()
        }),
    )
}

/// The error code of an error frame.
pub fn error_code(f: &Frame) -> Option<ErrorCode> {
    match &f.body {
        Some(Body::Error(e)) => ErrorCode::try_from(e.code).ok(),
        _ => None,
    }
}
