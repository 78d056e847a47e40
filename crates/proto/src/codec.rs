//! The frame codec, as pure functions over buffers.
//!
//! Stream transports prefix each frame with its length (4 bytes, big-endian). The decoder
//! reads the prefix, refuses a length above the limit *before* reserving memory for it, and
//! returns `Ok(None)` while the frame is incomplete (a short buffer is not an error). Protobuf
//! decoding uses prost, whose recursion limit (100) bounds nesting; our schema nests at most
//! four levels, so anything deeper is garbage and is refused.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use prost::Message;

use crate::pb::Frame;

/// Length of the frame length prefix on stream transports.
pub const PREFIX_LEN: usize = 4;

/// Why bytes could not be decoded into a frame.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The announced or actual frame length exceeds the limit.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// The announced length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The bytes are not a valid protobuf `Frame`.
    #[error("malformed frame: {0}")]
    Malformed(#[from] prost::DecodeError),
    /// An I/O error from the underlying transport (only through the tokio-util traits).
    #[error("transport: {0}")]
    Io(#[from] std::io::Error),
}

/// Decodes one whole frame (a WebSocket binary message, or the payload after the prefix).
pub fn decode_frame(bytes: &[u8], max: usize) -> Result<Frame, CodecError> {
    if bytes.len() > max {
        return Err(CodecError::TooLarge {
            len: bytes.len(),
            max,
        });
    }
    Ok(Frame::decode(bytes)?)
}

/// Encodes a frame without a prefix (for WebSocket).
pub fn encode_frame(frame: &Frame) -> Bytes {
    frame.encode_to_vec().into()
}

/// Appends a length-prefixed frame to `dst` (for stream transports).
pub fn encode_prefixed(frame: &Frame, dst: &mut BytesMut) {
    let len = frame.encoded_len();
    dst.reserve(PREFIX_LEN + len);
    // Invariant: frames we build are far below 4 GiB (every field is bounded by limits).
    dst.put_u32(u32::try_from(len).expect("frame below 4 GiB"));
    // Invariant: we just reserved enough capacity, and encoding into a BytesMut cannot fail
    // for lack of space.
    frame.encode(dst).expect("capacity reserved");
}

/// Wraps already-encoded frame bytes (e.g. a push encoded once for many recipients) with
/// a length prefix.
pub fn prefix_encoded(payload: &[u8], dst: &mut BytesMut) {
    dst.reserve(PREFIX_LEN + payload.len());
    // Invariant: payloads are encoded frames, bounded far below 4 GiB.
    dst.put_u32(u32::try_from(payload.len()).expect("frame below 4 GiB"));
    dst.put_slice(payload);
}

/// Tries to take one length-prefixed frame off the front of `src`.
///
/// Returns `Ok(None)` when more bytes are needed. On error the stream is unusable (framing is
/// lost) and the caller should close it.
pub fn decode_prefixed(src: &mut BytesMut, max: usize) -> Result<Option<Frame>, CodecError> {
    match split_prefixed(src, max)? {
        Some(payload) => Ok(Some(Frame::decode(payload)?)),
        None => Ok(None),
    }
}

/// Like [`decode_prefixed`] but returns the raw payload without decoding it.
pub fn split_prefixed(src: &mut BytesMut, max: usize) -> Result<Option<BytesMut>, CodecError> {
    if src.len() < PREFIX_LEN {
        return Ok(None);
    }
    let mut prefix = [0u8; PREFIX_LEN];
    prefix.copy_from_slice(&src[..PREFIX_LEN]);
    let len = u32::from_be_bytes(prefix) as usize;
    if len > max {
        return Err(CodecError::TooLarge { len, max });
    }
    if src.len() < PREFIX_LEN + len {
        // Reserve only what this (bounded) frame still needs.
        src.reserve(PREFIX_LEN + len - src.len());
        return Ok(None);
    }
    src.advance(PREFIX_LEN);
    Ok(Some(src.split_to(len)))
}

/// Outgoing data for [`FrameCodec`]: a frame to encode, or bytes already encoded once and
/// shared between many connections.
// A value lives for one `feed` call and is never stored in bulk, so the size difference
// costs nothing; boxing the frame would cost an allocation per reply.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Outgoing {
    /// A frame to encode.
    Frame(Frame),
    /// An encoded frame (without prefix).
    Encoded(Bytes),
}

/// [`tokio_util::codec`] adapter over the functions above, for stream transports.
#[derive(Debug, Clone)]
pub struct FrameCodec {
    max: usize,
}

impl FrameCodec {
    /// A codec accepting frames of at most `max` bytes.
    pub fn new(max: usize) -> Self {
        Self { max }
    }
}

impl tokio_util::codec::Decoder for FrameCodec {
    type Item = Frame;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, CodecError> {
        decode_prefixed(src, self.max)
    }
}

impl tokio_util::codec::Encoder<Outgoing> for FrameCodec {
    type Error = CodecError;

    fn encode(&mut self, item: Outgoing, dst: &mut BytesMut) -> Result<(), CodecError> {
        match item {
            Outgoing::Frame(f) => encode_prefixed(&f, dst),
            Outgoing::Encoded(b) => prefix_encoded(&b, dst),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb;
    use crate::pb::frame::Body;
    use proptest::prelude::*;

    fn sample(i: u64, text: &str) -> Frame {
        crate::frame(
            i,
            Body::Send(pb::SendRequest {
                client_msg_id: format!("c{i}"),
                to: Some(pb::send_request::To::User("bob".into())),
                content: Some(pb::Content {
                    r#type: pb::ContentType::Text as i32,
                    body: Bytes::copy_from_slice(text.as_bytes()),
                    metadata: Default::default(),
                }),
                ..pb::SendRequest::default()
            }),
        )
    }

    #[test]
    fn short_buffer_is_not_an_error() {
        let mut buf = BytesMut::new();
        encode_prefixed(&sample(1, "hello"), &mut buf);
        let whole = buf.clone();
        for cut in 0..whole.len() {
            let mut part = BytesMut::from(&whole[..cut]);
            assert!(decode_prefixed(&mut part, 1024).unwrap().is_none());
        }
    }

    #[test]
    fn oversized_prefix_is_refused_before_allocating() {
        let mut buf = BytesMut::from(&u32::MAX.to_be_bytes()[..]);
        let cap = buf.capacity();
        assert!(matches!(
            decode_prefixed(&mut buf, 1024),
            Err(CodecError::TooLarge { .. })
        ));
        assert_eq!(buf.capacity(), cap);
    }

    #[test]
    fn deep_nesting_is_refused() {
        // A field-2 (hello) length-delimited record nested inside itself 200 times.
        let mut payload: Vec<u8> = Vec::new();
        for _ in 0..200 {
            let mut outer = vec![0x12];
            let mut len = payload.len();
            loop {
                let b = (len & 0x7f) as u8;
                len >>= 7;
                if len == 0 {
                    outer.push(b);
                    break;
                }
                outer.push(b | 0x80);
            }
            outer.extend_from_slice(&payload);
            payload = outer;
        }
        assert!(decode_frame(&payload, usize::MAX).is_err());
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = decode_frame(&bytes, 1024);
            let mut buf = BytesMut::from(&bytes[..]);
            while let Ok(Some(_)) = decode_prefixed(&mut buf, 1024) {}
        }

        #[test]
        fn rechunked_stream_decodes_identically(
            texts in proptest::collection::vec(".{0,200}", 1..20),
            cuts in proptest::collection::vec(1usize..64, 1..200),
        ) {
            let frames: Vec<Frame> =
                texts.iter().enumerate().map(|(i, t)| sample(i as u64 + 1, t)).collect();
            let mut wire = BytesMut::new();
            for f in &frames {
                encode_prefixed(f, &mut wire);
            }
            let wire = wire.freeze();
            let mut out = Vec::new();
            let mut buf = BytesMut::new();
            let mut pos = 0;
            let mut cuts = cuts.into_iter().cycle();
            while pos < wire.len() {
                let n = cuts.next().unwrap().min(wire.len() - pos);
                buf.extend_from_slice(&wire[pos..pos + n]);
                pos += n;
                while let Some(f) = decode_prefixed(&mut buf, DEFAULT_TEST_MAX).unwrap() {
                    out.push(f);
                }
            }
            prop_assert!(buf.is_empty());
            prop_assert_eq!(out, frames);
        }
    }

    const DEFAULT_TEST_MAX: usize = crate::DEFAULT_MAX_FRAME;
}
