//! Magpie's access layer.
//!
//! - [`config`]: [`GatewayConfig`], timeouts, queue sizes and buffer limits.
//! - [`tls`]: loading a rustls server configuration from PEM files.
//! - [`transport`]: TCP (length-prefixed frames) and WebSocket (one frame per binary
//!   message) turned into one boxed stream of frames and one sink, so a single connection
//!   loop serves both. Plain TCP uses `plain_tcp`, which holds no buffer while the
//!   connection is idle.
//! - [`listener`]: accept loops; [`Gateway`] owns the shared state and the shutdown signal.
//! - [`connection`]: the life of one connection: handshake (the first frame must be
//!   `Hello`, within a deadline), then requests, pushes, acks, heartbeats.
//! - [`preauth`]: the per-IP cap on connections that have not authenticated yet.
//! - `probes`: the per-push metric handles, resolved once per gateway.
//! - [`wire`]: conversions between service values and protobuf frames ([`wire_groups`],
//!   [`wire_rooms`] for groups and live rooms).
//!
//! Architecture invariant: the gateway never decides messaging rules; it parses frames into
//! service calls and turns results into frames. Network input never panics the server: every
//! decode error becomes an error frame and a closed connection.

pub mod config;
pub mod connection;
mod in_flight;
pub mod listener;
mod plain_tcp;
pub mod preauth;
mod probes;
mod requests;
mod requests_rooms;
mod requests_social;
mod room_tracks;
pub mod tls;
pub mod transport;
pub mod wire;
pub mod wire_groups;
pub mod wire_rooms;

pub use config::GatewayConfig;
pub use listener::Gateway;
pub use listener::Protocol;
pub use tls::{TlsError, load_server_config};
