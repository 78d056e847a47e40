//! Magpie's Rust client SDK.
//!
//! A [`Client`] keeps one connection to a Magpie server (TCP, TLS, WebSocket or secure
//! WebSocket, all carrying the same protobuf frames) and gives the application:
//!
//! - **sends that are stored exactly once**: [`Client::send`] resolves only with the server's
//!   ack; lost connections and transient errors are retried under the same client message
//!   id, which the server deduplicates;
//! - **ordered, exactly-once delivery**: per conversation, [`Event::Message`] arrives for each
//!   `seq` once, in order, without gaps — pushes, duplicates, gaps (filled by pulls) and the
//!   application's own sends all go through one rule;
//! - **reconnect and sync**: exponential backoff with jitter; after every (re)connect the
//!   client lists the conversations and pulls what it missed, then emits
//!   [`Event::SyncComplete`].
//!
//! # Example
//!
//! ```no_run
//! use magpie_client::{Client, ClientConfig, Event};
//! use magpie_types::UserId;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = ClientConfig::new("tcp://127.0.0.1:7000", "<a JWT for alice>");
//! let (client, mut events) = Client::connect(config).await?;
//!
//! let bob = UserId::new("bob")?;
//! let ack = client.send_text(&bob, "hello").await?;
//! println!("stored as seq {} of {}", ack.seq, ack.conversation);
//!
//! while let Some(event) = events.recv().await {
//!     match event {
//!         Event::Message(m) => println!("{} #{} {}: {:?}", m.conversation, m.seq, m.from, m.text()),
//!         Event::SyncComplete => println!("caught up"),
//!         Event::Error(e) => eprintln!("fatal: {e}"),
//!         _ => {}
//!     }
//! }
//! client.close().await;
//! # Ok(())
//! # }
//! ```
//!
//! # Module map
//!
//! - [`config`]: [`ClientConfig`], tokens ([`TokenSource`], [`TokenProvider`]), [`Backoff`].
//! - `client`: the handles, [`Client`] (commands) and [`Events`] (the event stream).
//! - [`event`]: what the application receives: [`Event`], [`Message`], [`SendAck`],
//!   [`ConnectionState`], [`SessionInfo`], [`ConversationInfo`], [`HistoryPage`].
//! - [`error`]: [`ClientError`] and the server's [`ErrorCode`].
//! - `driver`: the connection task, the one owner of the socket (a `select!` loop);
//!   `driver::inbound` handles the server's frames, `driver::io` the loop's plumbing.
//! - `handshake`: one connection attempt (token, connect, `Hello` → `HelloOk`).
//! - `transport`: URL parsing, TCP / TLS (rustls, ring) / WebSocket, all as frame
//!   sink + stream.
//! - `order`: the ordering rule, sans-I/O, with a model-based property test.
//! - `sync`: the post-connect sync (conversation list, then pulls), sans-I/O.
//! - `outbox`: pending sends and queries, kept across reconnects in original order.
//!
//! Architecture invariants: only `driver` touches the socket; `order` and `sync` do no I/O
//! and know no clock; the SDK shares only `magpie-types` and `magpie-proto` with the
//! server; wire types are converted at the edge (`event`) and never reach the application.

mod client;
pub mod config;
mod driver;
pub mod error;
pub mod event;
mod handshake;
mod order;
mod outbox;
mod sync;
mod transport;

pub use client::{Client, Events, new_client_msg_id};
pub use config::{Backoff, BoxError, ClientConfig, TokenFuture, TokenProvider, TokenSource};
pub use error::{ClientError, ErrorCode};
pub use event::{
    ConnectionState, ConversationInfo, Event, HistoryPage, Message, SendAck, SessionInfo,
};
pub use magpie_types::{ClientMsgId, Content, ContentType, ConvId, DeviceId, Seq, UserId};
