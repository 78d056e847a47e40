//! Magpie's service layer: async orchestration around the sans-I/O core.
//!
//! - [`apps`]: the tenants, their secrets and run-time settings ([`AppRegistry`]), kept
//!   durably (`apps::admin`).
//! - [`accounts`]: users as the server API manages them: create, import, disable, delete,
//!   tokens and their revocation.
//! - [`hooks`]: the seam to the app's backend: webhook events and the before-send hook.
//! - [`idempotency`]: remembered answers to server-API writes (`Idempotency-Key`).
//! - [`screening`]: what a message passes before it is stored: the word filter, then the
//!   before-send hook.
//! - [`sessions`]: who is online on which connection ([`SessionRegistry`]), with bounded
//!   per-connection outbound queues ([`outbox`], which hold no memory while empty).
//! - [`messaging`]: [`Service`] and 1:1 sends.
//! - [`groups`]: group operations and group sends; changes are events in the group's log.
//! - [`sync`]: pull and history, limited to what the reader may see.
//! - [`conversations`]: the conversation list, unread, read positions, settings, read
//!   receipts.
//! - [`social`]: profiles, friends and blocks.
//! - [`signals`]: typing indicators and presence (ephemeral, never stored).
//! - [`rooms`]: live rooms — presence membership, priorities, the downstream budget,
//!   batching, and the short log of reliable messages.
//! - [`ops`]: recall, edit, reactions, delete for me.
//! - [`clock`]: the time source ([`Clock`]), injectable for tests.
//! - [`error`]: the error type, [`ServiceError`].
//!
//! The service knows nothing of sockets or wire formats: the gateway converts frames to the
//! calls here and [`sessions::Outbound`] items back to frames.

pub mod accounts;
pub mod apps;
pub mod clock;
pub mod conversations;
mod empty_tables;
pub mod error;
pub mod groups;
pub mod hooks;
pub mod idempotency;
mod known_users;
pub mod messaging;
pub mod ops;
pub mod outbox;
pub mod rooms;
pub mod screening;
pub mod sessions;
pub mod signals;
pub mod social;
pub mod sync;

pub use apps::{AppConfig, AppRegistry};
pub use clock::{Clock, SystemClock};
pub use conversations::{ConvView, ConversationPage, ReadOutcome, SettingsChange};
pub use error::ServiceError;
pub use groups::ops::UpdateGroup;
pub use groups::{CreateGroup, GroupInfo, GroupOutcome};
pub use messaging::{SendAck, Service, ServiceConfig};
pub use rooms::ops::{RoomAction, RoomFetched, RoomJoined, RoomSettingsChange};
pub use rooms::send::RoomSendAck;
pub use rooms::{
    Room, RoomBatch, RoomConfig, RoomEntry, RoomInfo, RoomNotice, RoomNoticeKind, RoomSettings,
};
pub use sessions::{
    DeletedNotice, Delivery, Outbound, PresenceNotice, ReadNotice, SessionCtx, SessionRegistry,
    SocialNotice, TypingNotice,
};
pub use social::ProfileChange;
pub use sync::MessagePage;
