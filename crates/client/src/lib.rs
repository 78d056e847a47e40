//! Magpie's Rust client SDK.
//!
//! A [`Client`] keeps one connection to a Magpie server (TCP, TLS, WebSocket or secure
//! WebSocket, all carrying the same protobuf frames) and gives the application:
//!
//! - **sends that are stored exactly once**: [`Client::send`] (to a user),
//!   [`Client::send_group`] and [`Client::send_with`] (mentions, replies) resolve only with
//!   the server's ack; lost connections and transient errors are retried under the same
//!   client message id, which the server deduplicates;
//! - **ordered, exactly-once delivery**: per conversation, [`Event::Message`] (or
//!   [`Event::GroupEvent`] for a group's membership and profile changes, [`Event::Recalled`],
//!   [`Event::Edited`] and [`Event::Reaction`] for entries acting on a message) arrives for
//!   each `seq` once, in order, without gaps — pushes, duplicates, gaps (filled by pulls) and
//!   the application's own sends and operations all go through one rule. The only seqs
//!   skipped are those the user may not see (a group's log before they joined, or while they
//!   were away from it, or messages they deleted for themselves);
//! - **message operations with the guarantees of sends**: [`Client::recall`],
//!   [`Client::edit`] and [`Client::react`] append log entries under a client message id
//!   and are retried like sends; [`Client::delete_for_me`] hides messages on every device of
//!   the user ([`Event::MessagesDeleted`] on the others);
//! - **reconnect and sync**: exponential backoff with jitter; after every (re)connect the
//!   client lists the conversations (only those changed since the last list, once there was
//!   one) and pulls what it missed, then emits [`Event::SyncComplete`];
//! - **a local conversation list**: unread counts, mentions, last message, read receipts,
//!   pinned / muted / hidden, kept up to date and readable at any time
//!   ([`Client::conversations_snapshot`], [`Client::total_unread`]), with
//!   [`Event::ConversationUpdated`], [`Event::TotalUnread`] and [`Event::ReadReceipt`];
//! - **groups**: create, join, leave, members, admins, mutes, profile
//!   ([`Client::create_group`] and its neighbours);
//! - **live rooms**: presence-based rooms with nothing stored but settings and moderation
//!   ([`Client::create_room`], [`Client::join_room`], [`Client::send_room`], moderation and
//!   settings). [`Event::Room`] carries every message; HIGH ones (gifts, admin notices)
//!   arrive exactly once and in the room's `seq` order across retransmissions, reordering
//!   and reconnects (the client acknowledges them, fetches gaps, and joins every room again
//!   after a reconnect from the seq it has; [`Event::RoomGap`] names what the room's short
//!   log no longer had), and an explicit HIGH send is retried under one client message id;
//!   NORMAL and LOW ones are best effort. [`Event::RoomNotice`] reports kicks, bans, mutes
//!   and closes;
//! - **typing and presence**: [`Client::typing`] (fire and forget) and [`Event::Typing`];
//!   [`Client::subscribe_presence`], kept across reconnects, and [`Event::Presence`];
//! - **profiles, friends and blocks**: [`Client::set_profile`], [`Client::get_profiles`],
//!   [`Client::send_friend_request`] and its neighbours, [`Client::block`], with
//!   [`Event::Social`] for friend requests and answers.
//!
//! # Example
//!
//! ```no_run
//! use magpie_client::{Client, ClientConfig, Content, Event, GroupAction, NewGroup, SendOptions};
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
//! let team = client.create_group(NewGroup::named("Team").with_members([bob.clone()])).await?;
//! let options = SendOptions::default().mention(bob.clone());
//! client.send_with(&team.id, Content::text("hi @bob"), options).await?;
//!
//! while let Some(event) = events.recv().await {
//!     match event {
//!         Event::Message(m) => {
//!             println!("{} #{} {}: {:?}", m.conversation, m.seq, m.from, m.text());
//!             client.mark_read(&m.conversation, Some(m.seq)).await?;
//!         }
//!         Event::GroupEvent(e) if e.action == GroupAction::Join => println!("{:?} joined", e.users),
//!         Event::Recalled { conversation, seq, .. } => println!("{conversation} #{seq} recalled"),
//!         Event::Typing { user, typing: true, .. } => println!("{user} is typing"),
//!         Event::TotalUnread(n) => println!("badge: {n}"),
//!         Event::SyncComplete => println!("caught up: {:?}", client.conversations_snapshot()),
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
//! - `client`: the handles, [`Client`] (commands) and [`Events`] (the event stream);
//!   `client::messages` (recall, edit, react, delete for me, typing), `client::groups`,
//!   `client::conversations` and `client::social` (presence, profiles, friends, blocks) hold
//!   the other commands.
//! - [`event`]: what the application receives: [`Event`], [`Message`], [`SendAck`],
//!   [`ConnectionState`], [`SessionInfo`], [`HistoryPage`].
//! - [`conversation`]: [`ConversationInfo`], [`ConversationSettings`], [`ReadResult`],
//!   [`ReadCount`].
//! - [`group`]: [`GroupInfo`], [`GroupMember`], [`GroupRole`], [`JoinPolicy`], [`NewGroup`],
//!   [`GroupUpdate`], [`GroupChange`], [`JoinOutcome`], [`MembersPage`].
//! - [`group_event`]: [`GroupEvent`] and [`GroupAction`], parsed from a group log's JSON
//!   entries.
//! - [`send`]: [`Recipient`] and [`SendOptions`].
//! - [`message_op`]: [`MessageOp`] (recall, edit, react) and [`OpAck`]; the outbox keeps an
//!   operation whole so every retry is the same request.
//! - `op_entry`: recall, edit and reaction entries parsed into their events (and
//!   [`Message::op_event`] for history pages).
//! - [`presence`]: [`UserPresence`], and the subscription re-sent on every connection,
//!   sans-I/O.
//! - [`room`]: live rooms: [`RoomInfo`], [`RoomSettings`], [`NewRoom`],
//!   [`RoomSettingsChange`], [`RoomJoined`], [`RoomMembersPage`], [`RoomFetched`],
//!   [`RoomMessage`], [`Priority`], [`RoomNoticeKind`].
//! - [`room_send`]: [`RoomSendOptions`] and [`RoomSendAck`]; the outbox keeps a room send
//!   whole so every retry of a HIGH one is the same request.
//! - `room_order`: the live-room rule for HIGH messages (hold what is ahead, drop duplicates,
//!   fetch a gap left open, skip what the log lost), sans-I/O, with an exhaustive and a
//!   model-based property test.
//! - [`social`]: [`Profile`], [`ProfileUpdate`], [`SocialKind`].
//! - [`error`]: [`ClientError`] and the server's [`ErrorCode`].
//! - `driver`: the connection task, the one owner of the socket (a `select!` loop);
//!   `driver::inbound` routes the server's frames, `driver::deliver` applies entries and
//!   read positions to the ordering rule and the conversation list, `driver::notices` turns
//!   typing, presence, friend and deletion notices into events, `driver::rooms` keeps the
//!   live rooms joined (batches, acks, gap fetches, rejoins), `driver::io` is the loop's
//!   plumbing.
//! - `handshake`: one connection attempt (token, connect, `Hello` → `HelloOk`).
//! - `transport`: URL parsing, TCP / TLS (rustls, ring) / WebSocket, all as frame
//!   sink + stream.
//! - `order`: the ordering rule (with hidden seq ranges), sans-I/O, with a model-based
//!   property test.
//! - `sync`: the post-connect sync (conversation list, then pulls), sans-I/O.
//! - `inbox`: the local conversation list and unread badge, sans-I/O, with a property test
//!   that the badge is always the sum.
//! - `outbox`: pending sends (messages, message operations and live-room messages, the
//!   first two and HIGH room messages deduplicated by client message id) and queries, kept
//!   across reconnects in original order.
//!
//! Architecture invariants: only `driver` touches the socket; `order`, `room_order`, `sync`,
//! `inbox` and the presence subscription do no I/O and read no clock (`room_order` is told
//! the time); the SDK shares only `magpie-types` and `magpie-proto` with the server; wire
//! types are converted at the edge (`event`,
//! `conversation`, `group`, `group_event`, `send`, `message_op`, `op_entry`,
//! `presence`, `social`, `room`, `room_send`) and never reach the application.

mod client;
pub mod config;
pub mod conversation;
mod driver;
pub mod error;
pub mod event;
pub mod group;
pub mod group_event;
mod handshake;
mod inbox;
pub mod message_op;
mod op_entry;
mod order;
mod outbox;
pub mod presence;
pub mod room;
mod room_order;
pub mod room_send;
pub mod send;
pub mod social;
mod sync;
mod transport;

pub use client::{Client, Events, new_client_msg_id};
pub use config::{Backoff, BoxError, ClientConfig, TokenFuture, TokenProvider, TokenSource};
pub use conversation::{ConversationInfo, ConversationSettings, ReadCount, ReadResult};
pub use error::{ClientError, ErrorCode};
pub use event::{ConnectionState, Event, HistoryPage, Message, SendAck, SessionInfo};
pub use group::{
    GroupChange, GroupInfo, GroupMember, GroupRole, GroupUpdate, JoinOutcome, JoinPolicy,
    MembersPage, NewGroup,
};
pub use group_event::{GroupAction, GroupEvent};
pub use magpie_types::{
    ClientMsgId, Content, ContentType, ConvId, ConvKind, DeviceId, EntryKind, GroupId, RoomId, Seq,
    UserId,
};
pub use message_op::{MessageOp, OpAck};
pub use presence::UserPresence;
pub use room::{
    NewRoom, Priority, RoomFetched, RoomInfo, RoomJoined, RoomMembersPage, RoomMessage,
    RoomNoticeKind, RoomSettings, RoomSettingsChange,
};
pub use room_send::{RoomSendAck, RoomSendOptions};
pub use send::{Recipient, SendOptions};
pub use social::{Profile, ProfileUpdate, SocialKind};
