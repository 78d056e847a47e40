//! The storage traits.
//!
//! They are shaped so that a SQL backend fits: an append is one transaction that reads the
//! dedup table, assigns `last_seq + 1` and inserts the message and index rows.

use async_trait::async_trait;
use magpie_types::{AppId, ClientMsgId, ConvId, Seq, UserId};

use crate::model::{
    AppendOutcome, AppendRequest, ConversationEntry, ReadPosition, RecordWrite, StoreError,
    StoredMessage, Table,
};

/// Conversation logs, the dedup index and the per-user conversation index.
#[async_trait]
pub trait MessageStore: Send + Sync + 'static {
    /// Appends a message, or returns the original if `(app, from_user, client_msg_id)` was
    /// already stored. Returns only once the result is durable. Concurrent appends to one
    /// conversation get consecutive seqs.
    async fn append(&self, req: AppendRequest) -> Result<AppendOutcome, StoreError>;

    /// Messages with `seq > after`, ascending, at most `limit`.
    async fn read_after(
        &self,
        app: &AppId,
        conv: &ConvId,
        after: Seq,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError>;

    /// Messages with `seq < before`, descending (newest first), at most `limit`.
    async fn read_before(
        &self,
        app: &AppId,
        conv: &ConvId,
        before: Seq,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError>;

    /// The entry stored under the dedup key `(app, from_user, client_msg_id)`, if any: lets
    /// a retried operation find its original answer before re-checking its preconditions.
    async fn original(
        &self,
        app: &AppId,
        from_user: &UserId,
        client_msg_id: &ClientMsgId,
    ) -> Result<Option<StoredMessage>, StoreError>;

    /// The conversation's last seq (0 if it has no messages).
    async fn last_seq(&self, app: &AppId, conv: &ConvId) -> Result<Seq, StoreError>;

    /// The user's conversations with id greater than `after`, ascending by id, at most
    /// `limit`.
    async fn conversations(
        &self,
        app: &AppId,
        user: &UserId,
        after: Option<&ConvId>,
        limit: usize,
    ) -> Result<Vec<ConversationEntry>, StoreError>;
}

/// Which users exist in each app.
#[async_trait]
pub trait UserDirectory: Send + Sync + 'static {
    /// Records that `user` exists in `app` (idempotent, durable).
    async fn put_user(&self, app: &AppId, user: &UserId) -> Result<(), StoreError>;

    /// Whether `user` exists in `app`.
    async fn user_exists(&self, app: &AppId, user: &UserId) -> Result<bool, StoreError>;
}

/// Read positions and mentions: the per-member state of read fan-out. A group message is
/// stored once; what each member has read is one position per (conversation, user), and
/// unread is a difference of two entry counts.
#[async_trait]
pub trait ReadStore: Send + Sync + 'static {
    /// Moves `user`'s read position in `conv` forward to `seq` (clamped to the log's last
    /// seq), durably; a position never moves back. Returns the position now in force.
    async fn mark_read(
        &self,
        app: &AppId,
        user: &UserId,
        conv: &ConvId,
        seq: Seq,
        version: u64,
    ) -> Result<ReadPosition, StoreError>;

    /// `user`'s read position in `conv` (the default, seq 0, if none was recorded).
    async fn read_position(
        &self,
        app: &AppId,
        conv: &ConvId,
        user: &UserId,
    ) -> Result<ReadPosition, StoreError>;

    /// Every recorded read position in `conv` of users after `after`, ascending by user, at
    /// most `limit`.
    async fn read_positions(
        &self,
        app: &AppId,
        conv: &ConvId,
        after: Option<&UserId>,
        limit: usize,
    ) -> Result<Vec<(UserId, ReadPosition)>, StoreError>;

    /// The last seq in `conv` that mentions `user` or everyone (0 if none).
    async fn last_mention(
        &self,
        app: &AppId,
        conv: &ConvId,
        user: &UserId,
    ) -> Result<Seq, StoreError>;
}

/// A small generic record store for state that is not a log: groups, members, conversation
/// settings. Values are opaque bytes (the typed layer in [`crate::records`] encodes them),
/// so a backend implements four simple operations once and every record kind works.
#[async_trait]
pub trait RecordStore: Send + Sync + 'static {
    /// The value at `key`, if any.
    async fn get_record(
        &self,
        app: &AppId,
        table: Table,
        key: &str,
    ) -> Result<Option<Vec<u8>>, StoreError>;

    /// Records whose key starts with `prefix` and sorts after `after`, ascending by key, at
    /// most `limit`.
    async fn scan_records(
        &self,
        app: &AppId,
        table: Table,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError>;

    /// Applies every write in one atomic, durable commit.
    async fn write_records(&self, app: &AppId, writes: Vec<RecordWrite>) -> Result<(), StoreError>;
}

/// A complete backend.
pub trait Store: MessageStore + UserDirectory + ReadStore + RecordStore {}

impl<T: MessageStore + UserDirectory + ReadStore + RecordStore> Store for T {}
