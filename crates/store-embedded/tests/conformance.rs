//! The storage contract of `magpie-store`, run against the embedded backend.

use async_trait::async_trait;
use magpie_store::{
    AppendOutcome, AppendRequest, ConversationEntry, MessageStore, ReadPosition, ReadStore,
    RecordStore, RecordWrite, StoreError, StoredMessage, Table, UserDirectory,
};
use magpie_store_embedded::{EmbeddedOptions, EmbeddedStore};
use magpie_types::{AppId, ConvId, Seq, UserId};
use tempfile::TempDir;

/// A store in a fresh directory that is deleted after the store is dropped (fields drop in
/// declaration order).
struct TempStore {
    store: EmbeddedStore,
    _dir: TempDir,
}

fn fresh() -> TempStore {
    let dir = TempDir::new().expect("tempdir");
    let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).expect("open");
    TempStore { store, _dir: dir }
}

#[async_trait]
impl MessageStore for TempStore {
    async fn append(&self, req: AppendRequest) -> Result<AppendOutcome, StoreError> {
        self.store.append(req).await
    }

    async fn read_after(
        &self,
        app: &AppId,
        conv: &ConvId,
        after: Seq,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        self.store.read_after(app, conv, after, limit).await
    }

    async fn read_before(
        &self,
        app: &AppId,
        conv: &ConvId,
        before: Seq,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        self.store.read_before(app, conv, before, limit).await
    }

    async fn last_seq(&self, app: &AppId, conv: &ConvId) -> Result<Seq, StoreError> {
        self.store.last_seq(app, conv).await
    }

    async fn original(
        &self,
        app: &AppId,
        from_user: &UserId,
        client_msg_id: &magpie_types::ClientMsgId,
    ) -> Result<Option<StoredMessage>, StoreError> {
        self.store.original(app, from_user, client_msg_id).await
    }

    async fn conversations(
        &self,
        app: &AppId,
        user: &UserId,
        after: Option<&ConvId>,
        limit: usize,
    ) -> Result<Vec<ConversationEntry>, StoreError> {
        self.store.conversations(app, user, after, limit).await
    }
}

#[async_trait]
impl UserDirectory for TempStore {
    async fn put_user(&self, app: &AppId, user: &UserId) -> Result<(), StoreError> {
        self.store.put_user(app, user).await
    }

    async fn user_exists(&self, app: &AppId, user: &UserId) -> Result<bool, StoreError> {
        self.store.user_exists(app, user).await
    }
}

#[async_trait]
impl ReadStore for TempStore {
    async fn mark_read(
        &self,
        app: &AppId,
        user: &UserId,
        conv: &ConvId,
        seq: Seq,
        version: u64,
    ) -> Result<ReadPosition, StoreError> {
        self.store.mark_read(app, user, conv, seq, version).await
    }

    async fn read_position(
        &self,
        app: &AppId,
        conv: &ConvId,
        user: &UserId,
    ) -> Result<ReadPosition, StoreError> {
        self.store.read_position(app, conv, user).await
    }

    async fn read_positions(
        &self,
        app: &AppId,
        conv: &ConvId,
        after: Option<&UserId>,
        limit: usize,
    ) -> Result<Vec<(UserId, ReadPosition)>, StoreError> {
        self.store.read_positions(app, conv, after, limit).await
    }

    async fn last_mention(
        &self,
        app: &AppId,
        conv: &ConvId,
        user: &UserId,
    ) -> Result<Seq, StoreError> {
        self.store.last_mention(app, conv, user).await
    }
}

#[async_trait]
impl RecordStore for TempStore {
    async fn get_record(
        &self,
        app: &AppId,
        table: Table,
        key: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.store.get_record(app, table, key).await
    }

    async fn scan_records(
        &self,
        app: &AppId,
        table: Table,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.store
            .scan_records(app, table, prefix, after, limit)
            .await
    }

    async fn write_records(&self, app: &AppId, writes: Vec<RecordWrite>) -> Result<(), StoreError> {
        self.store.write_records(app, writes).await
    }
}

magpie_store::store_conformance_tests!(fresh());
