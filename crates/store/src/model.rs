//! The records a backend stores.

use magpie_types::{AppId, ClientMsgId, Content, ConvId, DeviceId, Millis, MsgId, Seq, UserId};

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
    /// conversation, both parties).
    pub parties: Vec<UserId>,
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
}
