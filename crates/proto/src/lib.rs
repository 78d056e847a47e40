//! Magpie's wire protocol.
//!
//! - [`pb`]: the protobuf types generated from `proto/magpie.proto` (prost, compiled by protox
//!   at build time: no system `protoc`).
//! - [`codec`]: the sans-I/O frame codec: length-delimited frames for byte streams (TCP, TLS),
//!   single-frame decoding for message transports (WebSocket). Limits are checked before
//!   anything is allocated.
//! - [`convert`]: conversions between wire types and the domain types of `magpie-types`.
//!
//! This is the only wire format: every transport carries the same [`pb::Frame`].

pub mod codec;
pub mod convert;

/// Types generated from `proto/magpie.proto`.
#[allow(missing_docs, clippy::all)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/magpie.v1.rs"));
}

pub use codec::{CodecError, FrameCodec, decode_frame, encode_frame};
pub use pb::{Frame, frame::Body};

/// The protocol version this crate speaks; sent in `Hello` and `HelloOk`.
pub const PROTOCOL_VERSION: u32 = 1;

/// Default largest frame accepted, in bytes (the length prefix excluded).
pub const DEFAULT_MAX_FRAME: usize = 256 * 1024;

/// Shorthand: a frame answering `request_id` with `body`.
pub fn frame(request_id: u64, body: Body) -> Frame {
    Frame {
        request_id,
        body: Some(body),
    }
}

/// Shorthand: an error frame.
pub fn error_frame(request_id: u64, code: pb::ErrorCode, message: impl Into<String>) -> Frame {
    frame(
        request_id,
        Body::Error(pb::Error {
            code: code as i32,
            message: message.into(),
            retry_after_ms: 0,
        }),
    )
}

/// Shorthand: an error frame telling the client when a retry can succeed.
pub fn error_frame_retry(
    request_id: u64,
    code: pb::ErrorCode,
    message: impl Into<String>,
    retry_after_ms: u64,
) -> Frame {
    frame(
        request_id,
        Body::Error(pb::Error {
            code: code as i32,
            message: message.into(),
            retry_after_ms,
        }),
    )
}
