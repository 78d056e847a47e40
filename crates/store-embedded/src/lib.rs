//! Magpie's default, durable storage backend, on the embedded LSM engine fjall.
//!
//! - [`EmbeddedStore`] (this file): the [`magpie_store::Store`] implementation; open, close,
//!   stats.
//! - `writer`: the single group-commit writer thread; every write goes through it.
//! - `read`: the queries, run on the keyspaces directly from blocking tasks.
//! - `keys`: the key layout (length-prefixed components, big-endian seqs, all scoped by app).
//! - `codec`: the value records (postcard behind a version byte).
//! - `tables`: the database and its four keyspaces.
//!
//! Architecture invariants: an `Ok` from `append` or `put_user` means the write was committed
//! with `fsync` (`PersistMode::SyncAll`); only the writer thread writes; the engine is
//! blocking, so no engine call runs on an async worker thread.

mod codec;
mod keys;
mod read;
mod tables;
mod writer;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;

use async_trait::async_trait;
use magpie_store::{
    AppendOutcome, AppendRequest, ConversationEntry, MessageStore, StoreError, StoredMessage,
    UserDirectory,
};
use magpie_types::{AppId, ConvId, Seq, UserId};
use tokio::sync::{mpsc, oneshot};

use crate::tables::Tables;
use crate::writer::{Counters, Request, WriterConfig};

/// Tuning of an [`EmbeddedStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedOptions {
    /// Writes that may wait for the writer before `append` itself waits (backpressure).
    /// Default 4096; 0 is treated as 1.
    pub queue_capacity: usize,
    /// Most writes committed together in one batch (one fsync). Default 1024; 0 is treated
    /// as 1.
    pub max_batch: usize,
    /// Conversations whose last seq the writer keeps in memory. Default 100 000; when full,
    /// the cache is emptied and refills on demand.
    pub seq_cache_capacity: usize,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self {
            queue_capacity: 4096,
            max_batch: 1024,
            seq_cache_capacity: 100_000,
        }
    }
}

/// Counters since the store was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreStats {
    /// Durable batch commits, one fsync each.
    pub commits: u64,
    /// Appends answered with success (stored or duplicate).
    pub appends: u64,
}

/// The embedded [`magpie_store::Store`]: a fjall database in one directory.
///
/// Writes go to one writer thread that commits them in groups (see the `writer` module);
/// reads run on blocking tasks. Call [`EmbeddedStore::close`] to shut down from async code;
/// dropping the store also stops the writer, but blocks the dropping thread while the
/// writer finishes its queue.
pub struct EmbeddedStore {
    /// `None` only while closing.
    tx: Option<mpsc::Sender<Request>>,
    /// `None` once joined.
    writer: Option<JoinHandle<()>>,
    tables: Tables,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl EmbeddedStore {
    /// Opens the store in `dir` (created if missing), recovering from a crash if needed,
    /// and starts its writer thread. Blocking: call it before serving, or from a blocking
    /// task. Fails if another process holds the directory.
    pub fn open(dir: &Path, options: EmbeddedOptions) -> Result<Self, StoreError> {
        let tables = Tables::open(dir)?;
        let counters = Arc::new(Counters::default());
        let (tx, rx) = mpsc::channel(options.queue_capacity.max(1));
        let config = WriterConfig {
            max_batch: options.max_batch,
            seq_cache_capacity: options.seq_cache_capacity,
        };
        let writer = writer::spawn(tables.clone(), config, counters.clone(), rx)
            .map_err(|e| StoreError::Backend(format!("starting the writer thread: {e}")))?;
        Ok(Self {
            tx: Some(tx),
            writer: Some(writer),
            tables,
            counters,
        })
    }

    /// Stops the writer after it has answered every queued write, and releases the
    /// directory. Everything acknowledged is already durable; this only shuts down cleanly.
    pub async fn close(mut self) -> Result<(), StoreError> {
        drop(self.tx.take());
        let writer = self.writer.take();
        // The last handles are released on the blocking task too: fjall's shutdown waits
        // for its background threads.
        let tables = self.tables.clone();
        drop(self);
        tokio::task::spawn_blocking(move || {
            let joined = writer.map_or(Ok(()), JoinHandle::join);
            drop(tables);
            joined
        })
        .await
        .map_err(|e| StoreError::Backend(format!("closing: {e}")))?
        .map_err(|_| StoreError::Backend("the writer thread panicked".into()))
    }

    /// Counters since the store was opened.
    pub fn stats(&self) -> StoreStats {
        StoreStats {
            commits: self.counters.commits.load(Ordering::Relaxed),
            appends: self.counters.appends.load(Ordering::Relaxed),
        }
    }

    async fn write<T>(
        &self,
        request: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Request,
    ) -> Result<T, StoreError> {
        let tx = self.tx.as_ref().ok_or(StoreError::Closed)?;
        let (reply, answer) = oneshot::channel();
        tx.send(request(reply))
            .await
            .map_err(|_| StoreError::Closed)?;
        answer
            .await
            .map_err(|_| StoreError::Backend("the writer stopped before answering".into()))?
    }

    async fn read<T: Send + 'static>(
        &self,
        query: impl FnOnce(&Tables) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let tables = self.tables.clone();
        tokio::task::spawn_blocking(move || query(&tables))
            .await
            .map_err(|e| StoreError::Backend(format!("read task: {e}")))?
    }
}

impl Drop for EmbeddedStore {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(writer) = self.writer.take()
            && writer.join().is_err()
        {
            tracing::error!("the store writer thread panicked");
        }
    }
}

#[async_trait]
impl MessageStore for EmbeddedStore {
    async fn append(&self, req: AppendRequest) -> Result<AppendOutcome, StoreError> {
        self.write(|reply| Request::Append { req, reply }).await
    }

    async fn read_after(
        &self,
        app: &AppId,
        conv: &ConvId,
        after: Seq,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let (app, conv) = (app.clone(), conv.clone());
        self.read(move |t| read::read_after(t, &app, &conv, after, limit))
            .await
    }

    async fn read_before(
        &self,
        app: &AppId,
        conv: &ConvId,
        before: Seq,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let (app, conv) = (app.clone(), conv.clone());
        self.read(move |t| read::read_before(t, &app, &conv, before, limit))
            .await
    }

    async fn last_seq(&self, app: &AppId, conv: &ConvId) -> Result<Seq, StoreError> {
        let (app, conv) = (app.clone(), conv.clone());
        self.read(move |t| read::last_seq(t, &app, &conv)).await
    }

    async fn conversations(
        &self,
        app: &AppId,
        user: &UserId,
        after: Option<&ConvId>,
        limit: usize,
    ) -> Result<Vec<ConversationEntry>, StoreError> {
        let (app, user, after) = (app.clone(), user.clone(), after.cloned());
        self.read(move |t| read::conversations(t, &app, &user, after.as_ref(), limit))
            .await
    }
}

#[async_trait]
impl UserDirectory for EmbeddedStore {
    async fn put_user(&self, app: &AppId, user: &UserId) -> Result<(), StoreError> {
        let (app, user) = (app.clone(), user.clone());
        self.write(|reply| Request::PutUser { app, user, reply })
            .await
    }

    async fn user_exists(&self, app: &AppId, user: &UserId) -> Result<bool, StoreError> {
        let (app, user) = (app.clone(), user.clone());
        self.read(move |t| read::user_exists(t, &app, &user)).await
    }
}
