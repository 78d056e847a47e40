//! Magpie's default, durable storage backend, on the embedded LSM engine fjall.
//!
//! - [`EmbeddedStore`] (this file): the [`magpie_store::Store`] implementation; open, close,
//!   stats.
//! - `writer`: the single group-commit writer thread; every write goes through it. Its
//!   submodules stage each kind of write: `append` (an entry with its dedup record, index
//!   entries, mentions, the sender's read position and records), `reads` (`mark_read`) and
//!   `records` (`write_records`).
//! - `read`: the queries, run on the keyspaces directly from blocking tasks.
//! - `keys`: the key layout (length-prefixed components, big-endian seqs, all scoped by app).
//! - `codec`: the value records (postcard behind a version byte; version 1 still read).
//! - `tables`: the database and its seven keyspaces.
//!
//! What is stored: conversation logs whose entries carry kind, mentions, reply and a
//! cumulative unread `count` assigned by the writer; the dedup index and per-user
//! conversation index; the user directory; one read position per (conversation, user), so
//! unread is a difference of two counts; the last mention per (conversation, user) and per
//! conversation for everyone; and the generic record store (groups, members, settings),
//! whose keys sort as strings so that prefix scans are range scans.
//!
//! Architecture invariants: an `Ok` from `append`, `put_user`, `mark_read` or
//! `write_records` means the write was committed with `fsync` (`PersistMode::SyncAll`); only
//! the writer thread writes, so read-then-write steps (seq and count assignment, dedup,
//! `expect_seq`, forward-only read positions) are serialised without locks; an append and
//! everything it implies (index, mentions, read position, records) is one atomic commit;
//! the engine is blocking, so no engine call runs on an async worker thread.

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
    AppendOutcome, AppendRequest, ConversationEntry, MessageStore, ReadPosition, ReadStore,
    RecordStore, RecordWrite, StoreError, StoredMessage, Table, UserDirectory,
};
use magpie_types::{AppId, ClientMsgId, ConvId, Seq, UserId};
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
    /// Conversations whose last seq and count the writer keeps in memory. Default 100 000;
    /// when full, the cache is emptied and refills on demand.
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
        let req = Box::new(req);
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

    async fn original(
        &self,
        app: &AppId,
        from_user: &UserId,
        client_msg_id: &ClientMsgId,
    ) -> Result<Option<StoredMessage>, StoreError> {
        let key = keys::dedup_key(app, from_user, client_msg_id)?;
        let app = app.clone();
        self.read(move |t| read::dedup_original(t, &app, &key))
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

#[async_trait]
impl ReadStore for EmbeddedStore {
    async fn mark_read(
        &self,
        app: &AppId,
        user: &UserId,
        conv: &ConvId,
        seq: Seq,
        version: u64,
    ) -> Result<ReadPosition, StoreError> {
        let (app, user, conv) = (app.clone(), user.clone(), conv.clone());
        self.write(|reply| Request::MarkRead {
            app,
            user,
            conv,
            seq,
            version,
            reply,
        })
        .await
    }

    async fn read_position(
        &self,
        app: &AppId,
        conv: &ConvId,
        user: &UserId,
    ) -> Result<ReadPosition, StoreError> {
        let (app, conv, user) = (app.clone(), conv.clone(), user.clone());
        self.read(move |t| read::read_position(t, &app, &conv, &user))
            .await
    }

    async fn read_positions(
        &self,
        app: &AppId,
        conv: &ConvId,
        after: Option<&UserId>,
        limit: usize,
    ) -> Result<Vec<(UserId, ReadPosition)>, StoreError> {
        let (app, conv, after) = (app.clone(), conv.clone(), after.cloned());
        self.read(move |t| read::read_positions(t, &app, &conv, after.as_ref(), limit))
            .await
    }

    async fn last_mention(
        &self,
        app: &AppId,
        conv: &ConvId,
        user: &UserId,
    ) -> Result<Seq, StoreError> {
        let (app, conv, user) = (app.clone(), conv.clone(), user.clone());
        self.read(move |t| read::last_mention(t, &app, &conv, &user))
            .await
    }
}

#[async_trait]
impl RecordStore for EmbeddedStore {
    async fn get_record(
        &self,
        app: &AppId,
        table: Table,
        key: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let (app, key) = (app.clone(), key.to_owned());
        self.read(move |t| read::get_record(t, &app, table, &key))
            .await
    }

    async fn scan_records(
        &self,
        app: &AppId,
        table: Table,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let (app, prefix, after) = (app.clone(), prefix.to_owned(), after.map(str::to_owned));
        self.read(move |t| read::scan_records(t, &app, table, &prefix, after.as_deref(), limit))
            .await
    }

    async fn write_records(&self, app: &AppId, writes: Vec<RecordWrite>) -> Result<(), StoreError> {
        let app = app.clone();
        self.write(|reply| Request::WriteRecords { app, writes, reply })
            .await
    }
}
