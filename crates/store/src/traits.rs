//! The storage traits.
//!
//! They are shaped so that a SQL backend fits: an append is one transaction that reads the
//! dedup table, assigns `last_seq + 1` and inserts the message and index rows.

use async_trait::async_trait;
use magpie_types::{AppId, ConvId, Seq, UserId};

use crate::model::{AppendOutcome, AppendRequest, ConversationEntry, StoreError, StoredMessage};

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

/// A complete backend.
pub trait Store: MessageStore + UserDirectory {}

impl<T: MessageStore + UserDirectory> Store for T {}
