//! Magpie's domain vocabulary, shared by the server and the SDK.
//!
//! - [`id`]: validated names ([`AppId`], [`UserId`], [`DeviceId`], [`ClientMsgId`]) and
//!   conversation addressing ([`ConvId`]).
//! - [`snowflake`]: 64-bit time-ordered message ids unique across nodes ([`MsgId`]).
//! - [`content`]: message content ([`Content`], [`ContentType`]).
//! - [`group`]: group roles and join policies ([`Role`], [`JoinPolicy`]).
//! - [`entry`]: what a log entry is ([`EntryKind`]).
//! - [`room`]: live-room message priorities ([`Priority`]).
//!
//! Architecture invariant: this crate does no I/O and knows nothing of the wire format;
//! the `proto` crate converts at the edges.

pub mod content;
pub mod entry;
pub mod group;
pub mod id;
pub mod room;
pub mod snowflake;

pub use content::{Content, ContentType};
pub use entry::EntryKind;
pub use group::{JoinPolicy, Role};
pub use id::{AppId, ClientMsgId, ConvId, ConvKind, DeviceId, GroupId, IdError, RoomId, UserId};
pub use room::Priority;
pub use snowflake::{MsgId, Snowflake, SnowflakeError};

/// Position of a message in its conversation's log. The first message has `seq` 1; a
/// conversation with no messages has last `seq` 0. Order comes from `seq`, never from time.
pub type Seq = u64;

/// Milliseconds since the Unix epoch, as stamped by the server.
pub type Millis = u64;
