//! The group-commit writer: one thread that owns every write.
//!
//! Why one writer: seq assignment and dedup are read-then-write, so writes must be
//! serialised; doing it on one thread needs no locks and lets the writer keep the last seq
//! of each conversation in memory, so an append never scans.
//!
//! Why group commit: the durability contract (an `Ok` from `append` means fsync'd) costs one
//! fsync per commit, which caps a commit-per-message design at a few hundred messages per
//! second. The writer instead takes every request that queued up while the previous fsync
//! ran (up to `max_batch`), stages them into ONE write batch, commits it with
//! `PersistMode::SyncAll`, and only then answers them all. Under load, many sends share one
//! fsync; with a single sender it degenerates to one fsync per message, no worse than
//! before. No timer is involved: batching comes from requests arriving while the disk works.
//!
//! Staging is all-or-nothing per request and per batch. A request whose own checks fail
//! (a corrupt dedup record, say) gets its error and stages nothing; if the commit fails,
//! every request of the batch gets [`StoreError::Backend`] and the seqs staged by the batch
//! are discarded, so the cache still holds the last *committed* seq of every conversation:
//! no seq is skipped or reused.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use fjall::PersistMode;
use magpie_store::{AppendOutcome, AppendRequest, StoreError, StoredMessage};
use magpie_types::{AppId, ConvId, Seq, UserId};
use tokio::sync::{mpsc, oneshot};

use crate::read;
use crate::tables::{Tables, backend};
use crate::{codec, keys};

/// Largest value fjall accepts (it asserts on larger ones; we refuse them instead).
const MAX_VALUE_LEN: usize = u32::MAX as usize;

/// A write, with the channel its answer goes back on.
pub(crate) enum Request {
    /// Append a message (see `MessageStore::append`).
    Append {
        req: AppendRequest,
        reply: oneshot::Sender<Result<AppendOutcome, StoreError>>,
    },
    /// Record that a user exists.
    PutUser {
        app: AppId,
        user: UserId,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
}

/// Counters the writer keeps, read by `EmbeddedStore::stats`.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Durable batch commits (one fsync each).
    pub(crate) commits: AtomicU64,
    /// Appends answered with success (stored or duplicate).
    pub(crate) appends: AtomicU64,
}

/// Tuning of the writer.
pub(crate) struct WriterConfig {
    pub(crate) max_batch: usize,
    pub(crate) seq_cache_capacity: usize,
}

/// Starts the writer thread. It runs until every sender of `rx` is gone, answering every
/// request that was queued before that.
pub(crate) fn spawn(
    tables: Tables,
    config: WriterConfig,
    counters: Arc<Counters>,
    rx: mpsc::Receiver<Request>,
) -> std::io::Result<JoinHandle<()>> {
    let writer = Writer {
        tables,
        max_batch: config.max_batch.max(1),
        seq_cache_capacity: config.seq_cache_capacity.max(1),
        seq_cache: HashMap::new(),
        counters,
        #[cfg(test)]
        fail_commits: false,
    };
    std::thread::Builder::new()
        .name("magpie-store-writer".into())
        .spawn(move || writer.run(rx))
}

struct Writer {
    tables: Tables,
    max_batch: usize,
    /// Last committed seq per conversation, loaded lazily from the last message key.
    /// Bounded: when full it is cleared and refills on demand (a miss costs one seek).
    seq_cache: HashMap<(AppId, ConvId), Seq>,
    seq_cache_capacity: usize,
    counters: Arc<Counters>,
    /// Test-only fault injection: every commit fails as if the fsync had.
    #[cfg(test)]
    fail_commits: bool,
}

/// What one batch will write, and what it assigned, before the commit.
#[derive(Default)]
struct Staged {
    messages: Vec<(Vec<u8>, Vec<u8>)>,
    dedup: Vec<(Vec<u8>, Vec<u8>)>,
    /// Coalesced by key, so a batch writes each index entry once, with its latest value.
    index: HashMap<Vec<u8>, Vec<u8>>,
    users: HashSet<Vec<u8>>,
    /// Seqs assigned in this batch; merged into the cache only if the commit succeeds.
    seqs: HashMap<(AppId, ConvId), Seq>,
    /// Messages stored in this batch by dedup key, so a retry in the same batch is caught.
    originals: HashMap<Vec<u8>, StoredMessage>,
}

impl Staged {
    fn is_empty(&self) -> bool {
        self.messages.is_empty() && self.users.is_empty()
    }
}

/// An answer waiting for its batch's commit.
enum Reply {
    Append(
        oneshot::Sender<Result<AppendOutcome, StoreError>>,
        Result<AppendOutcome, StoreError>,
    ),
    User(
        oneshot::Sender<Result<(), StoreError>>,
        Result<(), StoreError>,
    ),
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Request>) {
        let mut requests = Vec::with_capacity(self.max_batch);
        while let Some(first) = rx.blocking_recv() {
            requests.push(first);
            while requests.len() < self.max_batch {
                match rx.try_recv() {
                    Ok(r) => requests.push(r),
                    Err(_) => break,
                }
            }
            self.process(requests.drain(..));
        }
        tracing::debug!("store writer stopped");
    }

    /// Stages the requests in arrival order, commits once, then answers them all.
    fn process(&mut self, requests: impl Iterator<Item = Request>) {
        let mut staged = Staged::default();
        let replies: Vec<Reply> = requests
            .map(|r| match r {
                Request::Append { req, reply } => {
                    Reply::Append(reply, self.stage_append(&mut staged, req))
                }
                Request::PutUser { app, user, reply } => {
                    Reply::User(reply, self.stage_user(&mut staged, &app, &user))
                }
            })
            .collect();
        metrics::histogram!("magpie_store_batch_size").record(replies.len() as f64);
        let started = std::time::Instant::now();
        let committed = self.commit(staged);
        metrics::histogram!("magpie_store_commit_seconds").record(started.elapsed().as_secs_f64());
        for reply in replies {
            match reply {
                Reply::Append(tx, result) => {
                    let result = committed.clone().and(result);
                    if result.is_ok() {
                        self.counters.appends.fetch_add(1, Ordering::Relaxed);
                    }
                    // The caller may have given up waiting; the write stands regardless.
                    let _ = tx.send(result);
                }
                Reply::User(tx, result) => {
                    let _ = tx.send(committed.clone().and(result));
                }
            }
        }
    }

    fn stage_append(
        &mut self,
        staged: &mut Staged,
        req: AppendRequest,
    ) -> Result<AppendOutcome, StoreError> {
        let dedup_key = keys::dedup_key(&req.app, &req.from_user, &req.client_msg_id)?;
        if let Some(original) = staged.originals.get(&dedup_key) {
            return Ok(AppendOutcome::Duplicate(original.clone()));
        }
        if let Some(original) = read::dedup_original(&self.tables, &req.app, &dedup_key)? {
            return Ok(AppendOutcome::Duplicate(original));
        }
        let seq = self
            .last_seq(staged, &req.app, &req.conv)?
            .checked_add(1)
            .ok_or_else(|| StoreError::Backend(format!("{} has run out of seqs", req.conv)))?;
        let msg = StoredMessage {
            conv: req.conv,
            seq,
            msg_id: req.msg_id,
            from_user: req.from_user,
            from_device: req.from_device,
            client_msg_id: req.client_msg_id,
            content: req.content,
            server_time: req.server_time,
        };
        // Everything fallible happens before anything is staged.
        let message_key = keys::message_key(&req.app, &msg.conv, seq)?;
        let message_value = codec::encode_message(&msg)?;
        if message_value.len() > MAX_VALUE_LEN {
            return Err(StoreError::Backend("message too large to store".into()));
        }
        let dedup_value = codec::encode_dedup(&msg.conv, seq)?;
        let index_value = codec::encode_index(seq, msg.server_time)?;
        let index_keys = req
            .parties
            .iter()
            .map(|party| keys::index_key(&req.app, party, &msg.conv))
            .collect::<Result<Vec<_>, _>>()?;

        staged.messages.push((message_key, message_value));
        staged.dedup.push((dedup_key.clone(), dedup_value));
        for key in index_keys {
            staged.index.insert(key, index_value.clone());
        }
        staged.seqs.insert((req.app, msg.conv.clone()), seq);
        staged.originals.insert(dedup_key, msg.clone());
        Ok(AppendOutcome::Stored(msg))
    }

    fn stage_user(
        &mut self,
        staged: &mut Staged,
        app: &AppId,
        user: &UserId,
    ) -> Result<(), StoreError> {
        let key = keys::user_key(app, user)?;
        // Already durable: nothing to write, and no fsync to pay for it.
        if !self.tables.users.contains_key(&key).map_err(backend)? {
            staged.users.insert(key);
        }
        Ok(())
    }

    /// The last seq of a conversation: staged in this batch, else cached, else read from
    /// the last key of the conversation's prefix (committed data: safe to cache at once).
    fn last_seq(&mut self, staged: &Staged, app: &AppId, conv: &ConvId) -> Result<Seq, StoreError> {
        let key = (app.clone(), conv.clone());
        if let Some(&seq) = staged.seqs.get(&key) {
            return Ok(seq);
        }
        if let Some(&seq) = self.seq_cache.get(&key) {
            return Ok(seq);
        }
        let seq = read::last_seq_in(&self.tables.messages, app, conv)?;
        self.cache_seq(key, seq);
        Ok(seq)
    }

    fn cache_seq(&mut self, key: (AppId, ConvId), seq: Seq) {
        if self.seq_cache.len() >= self.seq_cache_capacity && !self.seq_cache.contains_key(&key) {
            self.seq_cache.clear();
        }
        self.seq_cache.insert(key, seq);
    }

    /// Writes the staged batch durably. On failure nothing of it is visible and the seq
    /// cache is left as it was (the staged seqs are dropped with `staged`).
    fn commit(&mut self, staged: Staged) -> Result<(), StoreError> {
        if staged.is_empty() {
            // Only duplicates and known users: their answers are already durable.
            return Ok(());
        }
        let t = &self.tables;
        let mut batch = t.db.batch().durability(Some(PersistMode::SyncAll));
        for (k, v) in staged.messages {
            batch.insert(&t.messages, k, v);
        }
        for (k, v) in staged.dedup {
            batch.insert(&t.dedup, k, v);
        }
        for (k, v) in staged.index {
            batch.insert(&t.user_convs, k, v);
        }
        for k in staged.users {
            batch.insert(&t.users, k, Vec::<u8>::new());
        }
        #[cfg(test)]
        if self.fail_commits {
            return Err(StoreError::Backend("injected commit failure".into()));
        }
        if let Err(e) = batch.commit() {
            tracing::error!(error = %e, "store commit failed; failing the whole batch");
            metrics::counter!("magpie_store_commit_failures_total").increment(1);
            return Err(backend(e));
        }
        self.counters.commits.fetch_add(1, Ordering::Relaxed);
        for (key, seq) in staged.seqs {
            self.cache_seq(key, seq);
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
