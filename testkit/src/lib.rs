//! Test-only helpers for Magpie.
//!
//! - [`server`]: [`TestServer`], a real node started in-process on `127.0.0.1:0` with TCP,
//!   WebSocket, TLS and secure-WebSocket listeners (a certificate generated per run), the
//!   demo app and a second app, and embedded storage in a temporary directory.
//! - [`raw`]: [`RawConn`], a protocol-level connection for sending exactly the bytes a test
//!   wants (garbage, oversized frames, frames before auth).
//! - [`room_client`]: [`room_client::RoomClient`], a protocol-level live-room member that
//!   records every room message with its arrival time.
//! - [`checker`]: [`DeliveryChecker`], which proves every device received every accepted
//!   message exactly once, in `seq` order, without gaps.

pub mod checker;
pub mod http;
pub mod raw;
pub mod recorder;
pub mod rest;
pub mod room_client;
pub mod server;

pub use checker::{DeliveryChecker, Report};
pub use raw::RawConn;
pub use recorder::Recorder;
pub use rest::Rest;
pub use server::{OTHER_APP, OTHER_SECRET, TEST_ADMIN_KEY, TestServer, Transport};

/// Parses an identifier literal in tests.
pub fn id<T: std::str::FromStr>(s: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    s.parse().expect("valid test identifier")
}
