//! The records a backend stores.

use magpie_types::{
    AppId, ClientMsgId, Content, ConvId, DeviceId, EntryKind, Millis, MsgId, Seq, UserId,
};

/// A message as stored in its conversation's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// The conversation.
    pub conv: ConvId,
    /// Position in the conversation, from 1, without gaps.
    pub seq: Seq,
    /// Globally unique, time-ordered id.
    pub msg_id: MsgId,
    /// The sender.
    pub from_user: UserId,
    /// The sender's device.
    pub from_device: DeviceId,
    /// The sender's id for the message (dedup key together with app and sender).
    pub client_msg_id: ClientMsgId,
    /// What the message carries.
    pub content: Content,
    /// Server time at acceptance, Unix milliseconds.
    pub server_time: Millis,
    /// What the entry is.
    pub kind: EntryKind,
    /// Users the message mentions.
    pub mentions: Vec<UserId>,
    /// The message mentions everyone.
    pub mention_all: bool,
    /// For a message, the seq of the message it replies to; for a recall, edit or reaction,
    /// the seq of the message acted on (0 = none).
    pub reply_to: Seq,
    /// How many entries counting as unread ([`EntryKind::counts_as_unread`]) the log holds
    /// up to and including this one. Assigned by the store: unread between two positions is
    /// the difference of their counts, with no scan.
    pub count: u64,
}

/// Everything of an entry that the caller chooses (the store adds seq and count).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryExtras {
    /// What the entry is.
    pub kind: EntryKind,
    /// Users the message mentions.
    pub mentions: Vec<UserId>,
    /// The message mentions everyone.
    pub mention_all: bool,
    /// The seq of the message this one replies to (0 = none).
    pub reply_to: Seq,
}

/// A request to append a message to a conversation's log.
#[derive(Debug, Clone)]
pub struct AppendRequest {
    /// The tenant.
    pub app: AppId,
    /// The conversation.
    pub conv: ConvId,
    /// Id allocated by the caller (used only if the message is new).
    pub msg_id: MsgId,
    /// The sender.
    pub from_user: UserId,
    /// The sender's device.
    pub from_device: DeviceId,
    /// The dedup key.
    pub client_msg_id: ClientMsgId,
    /// The content.
    pub content: Content,
    /// Server time at acceptance.
    pub server_time: Millis,
    /// Users whose conversation index gets this conversation's new last seq (for a 1:1
    /// conversation, both parties; for a group, only a user who joins with this entry).
    pub parties: Vec<UserId>,
    /// Kind, mentions, reply.
    pub extras: EntryExtras,
    /// If set, the append fails with [`StoreError::Conflict`] unless the entry gets exactly
    /// this seq: for writes whose `records` were computed from the log's state (a join
    /// records the seq it happens at).
    pub expect_seq: Option<Seq>,
    /// Move the sender's read position to this entry (a user has read what they sent).
    pub sender_read: bool,
    /// Records written in the same atomic commit as the entry.
    pub records: Vec<RecordWrite>,
}

/// A table of the generic record store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// Group profiles and settings, by group id.
    Groups,
    /// Group members, by `group:user`.
    Members,
    /// A user's settings of one conversation (pinned, muted, hidden), by `user:conv`.
    ConvPrefs,
    /// Pending requests to join a group, by `group:user`.
    JoinRequests,
    /// Recalled and edited messages, by `conv:seq` (seq as 20 digits, so keys sort by seq).
    MessageStates,
    /// Messages a user deleted for themselves, by `user:conv`.
    Deleted,
    /// User profiles, by user.
    Profiles,
    /// Friendships, by `user:friend` (written both ways).
    Friends,
    /// Pending friend requests, by `to:from`.
    FriendRequests,
    /// Blocks, by `user:blocked`.
    Blocks,
    /// Live rooms' profiles, settings and admins, by room id.
    Rooms,
    /// Live-room moderation of one user (ban, mute), by `room:user`.
    RoomUsers,
    /// Apps (tenants) with their secrets and settings, by app id; kept under the reserved
    /// system app id (`_magpie`), since an app cannot be scoped by itself.
    Apps,
    /// User accounts made through the server API (disabled, deleted, token revocations),
    /// by user.
    Accounts,
    /// Answers to REST writes made with an `Idempotency-Key`, by key.
    Idempotency,
    /// Webhook events not yet delivered, by event id.
    WebhookOutbox,
}

impl Table {
    /// Stable numeric code, used in storage keys.
    pub fn code(self) -> u8 {
        match self {
            Self::Groups => 1,
            Self::Members => 2,
            Self::ConvPrefs => 3,
            Self::JoinRequests => 4,
            Self::MessageStates => 5,
            Self::Deleted => 6,
            Self::Profiles => 7,
            Self::Friends => 8,
            Self::FriendRequests => 9,
            Self::Blocks => 10,
            Self::Rooms => 11,
            Self::RoomUsers => 12,
            Self::Apps => 13,
            Self::Accounts => 14,
            Self::Idempotency => 15,
            Self::WebhookOutbox => 16,
        }
    }
}

/// One write to the record store: `value` `None` deletes the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordWrite {
    /// The table.
    pub table: Table,
    /// The key, unique within the table and app.
    pub key: String,
    /// The new value, or `None` to delete.
    pub value: Option<Vec<u8>>,
}

/// A user's read position in one conversation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadPosition {
    /// Everything up to this seq is read.
    pub seq: Seq,
    /// The `count` of the entry at `seq` (0 at seq 0): unread = last count − this.
    pub count: u64,
    /// A caller-chosen version stamp of the last change (for incremental sync).
    pub version: u64,
}

/// What an append did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendOutcome {
    /// The message is new and now durable at the returned seq.
    Stored(StoredMessage),
    /// `(app, from_user, client_msg_id)` was already stored: the original message is
    /// returned and nothing was written.
    Duplicate(StoredMessage),
}

impl AppendOutcome {
    /// The stored message, new or original.
    pub fn message(&self) -> &StoredMessage {
        match self {
            Self::Stored(m) | Self::Duplicate(m) => m,
        }
    }
}

/// A user's view of one conversation in the per-user index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationEntry {
    /// The conversation.
    pub conv: ConvId,
    /// The log's last seq when last updated.
    pub last_seq: Seq,
    /// Server time of the last message.
    pub last_time: Millis,
}

/// Why a storage operation failed. An append that fails did not happen (nothing is half
/// written), so it may be retried.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend failed (I/O error, connection lost, ...).
    #[error("storage backend: {0}")]
    Backend(String),
    /// A stored record could not be decoded: the data is corrupt or from an unknown version.
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// The store is shutting down or has shut down.
    #[error("store is closed")]
    Closed,
    /// A precondition of the write did not hold (e.g. `expect_seq`); nothing was written.
    #[error("conflict: {0}")]
    Conflict(String),
}
