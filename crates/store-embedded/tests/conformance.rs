//! The storage contract of `magpie-store`, run against the embedded backend.

use async_trait::async_trait;
use magpie_store::{
    AppendOutcome, AppendRequest, ConversationEntry, MessageStore, StoreError, StoredMessage,
    UserDirectory,
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

magpie_store::store_conformance_tests!(fresh());
