//! The group-commit writer: one thread that owns every write.
//!
//! Why one writer: seq and count assignment, dedup, `expect_seq` and forward-only read
//! positions are read-then-write, so writes must be serialised; doing it on one thread needs
//! no locks and lets the writer keep the last seq and count of each conversation in memory,
//! so an append never scans.
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
//! (a corrupt dedup record, a wrong `expect_seq`, say) gets its error and stages nothing; if
//! the commit fails, every request of the batch gets [`StoreError::Backend`] and the tails
//! staged by the batch are discarded, so the cache still holds the last *committed* seq and
//! count of every conversation: no seq is skipped or reused.
//!
//! A request sees what earlier requests of its batch staged: seqs and counts (the tail of
//! each conversation), the counts of staged entries, read positions and dedup originals.
//! Every keyed write is coalesced by key, so a batch writes each key once, with its latest
//! value (a batch must not hold one key twice).
//!
//! What each request stages lives in its own file: `append` (an entry with its dedup,
//! index, mentions, sender's read position and records), `reads` (read positions) and
//! `records` (record-store writes).

mod append;
mod reads;
mod records;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use fjall::PersistMode;
use magpie_store::{
    AppendOutcome, AppendRequest, ReadPosition, RecordWrite, StoreError, StoredMessage,
};
use magpie_types::{AppId, ConvId, Seq, UserId};
use tokio::sync::{mpsc, oneshot};

use crate::keys;
use crate::read;
use crate::tables::{Tables, backend};
use records::stage_records;

/// Largest value fjall accepts (it asserts on larger ones; we refuse them instead).
const MAX_VALUE_LEN: usize = u32::MAX as usize;

/// A write, with the channel its answer goes back on.
pub(crate) enum Request {
    /// Append a message (see `MessageStore::append`). Boxed: the request is several times
    /// larger than every other one, and the queue holds requests by value.
    Append {
        req: Box<AppendRequest>,
        reply: oneshot::Sender<Result<AppendOutcome, StoreError>>,
    },
    /// Record that a user exists.
    PutUser {
        app: AppId,
        user: UserId,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    /// Move a read position forward (see `ReadStore::mark_read`).
    MarkRead {
        app: AppId,
        user: UserId,
        conv: ConvId,
        seq: Seq,
        version: u64,
        reply: oneshot::Sender<Result<ReadPosition, StoreError>>,
    },
    /// Write records atomically (see `RecordStore::write_records`).
    WriteRecords {
        app: AppId,
        writes: Vec<RecordWrite>,
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
        tail_cache_capacity: config.seq_cache_capacity.max(1),
        tails: HashMap::new(),
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
    /// Last committed entry per conversation, loaded lazily from the last message.
    /// Bounded: when full it is cleared and refills on demand (a miss costs one seek).
    tails: HashMap<(AppId, ConvId), Tail>,
    tail_cache_capacity: usize,
    counters: Arc<Counters>,
    /// Test-only fault injection: every commit fails as if the fsync had.
    #[cfg(test)]
    fail_commits: bool,
}

/// The last entry of a conversation: what the next append continues from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Tail {
    /// Its seq (0: the log is empty).
    seq: Seq,
    /// Its cumulative count of unread-counting entries (0: the log is empty).
    count: u64,
}

/// What one batch will write, and what it assigned, before the commit. Values are encoded
/// before they are staged, so staging itself cannot fail.
#[derive(Default)]
struct Staged {
    messages: Vec<(Vec<u8>, Vec<u8>)>,
    dedup: Vec<(Vec<u8>, Vec<u8>)>,
    /// Coalesced by key, so a batch writes each index entry once, with its latest value.
    index: HashMap<Vec<u8>, Vec<u8>>,
    users: HashSet<Vec<u8>>,
    /// Read positions by key: the furthest staged so far, and its encoding.
    reads: HashMap<Vec<u8>, (ReadPosition, Vec<u8>)>,
    /// Last mentions by key. Seqs grow, so the latest staged is the last mention.
    mentions: HashMap<Vec<u8>, Vec<u8>>,
    /// Record writes by key, the latest winning; `None` deletes.
    records: HashMap<Vec<u8>, Option<Vec<u8>>>,
    /// Tails assigned in this batch; merged into the cache only if the commit succeeds.
    tails: HashMap<(AppId, ConvId), Tail>,
    /// Counts of the entries staged in this batch by message key, for a read position
    /// placed on one of them before it is committed.
    counts: HashMap<Vec<u8>, u64>,
    /// Messages stored in this batch by dedup key, so a retry in the same batch is caught.
    originals: HashMap<Vec<u8>, StoredMessage>,
}

impl Staged {
    fn is_empty(&self) -> bool {
        self.messages.is_empty()
            && self.users.is_empty()
            && self.reads.is_empty()
            && self.records.is_empty()
    }
}

/// An answer waiting for its batch's commit.
enum Reply {
    Append(
        oneshot::Sender<Result<AppendOutcome, StoreError>>,
        Result<AppendOutcome, StoreError>,
    ),
    Read(
        oneshot::Sender<Result<ReadPosition, StoreError>>,
        Result<ReadPosition, StoreError>,
    ),
    Unit(
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
                    Reply::Append(reply, self.stage_append(&mut staged, *req))
                }
                Request::PutUser { app, user, reply } => {
                    Reply::Unit(reply, self.stage_user(&mut staged, &app, &user))
                }
                Request::MarkRead {
                    app,
                    user,
                    conv,
                    seq,
                    version,
                    reply,
                } => {
                    let result =
                        self.stage_mark_read(&mut staged, &app, &user, &conv, seq, version);
                    Reply::Read(reply, result)
                }
                Request::WriteRecords { app, writes, reply } => {
                    Reply::Unit(reply, stage_records(&mut staged, &app, writes))
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
                Reply::Read(tx, result) => {
                    let _ = tx.send(committed.clone().and(result));
                }
                Reply::Unit(tx, result) => {
                    let _ = tx.send(committed.clone().and(result));
                }
            }
        }
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

    /// The last entry of a conversation: staged in this batch, else cached, else read from
    /// the last message of the conversation (committed data: safe to cache at once).
    fn tail(&mut self, staged: &Staged, app: &AppId, conv: &ConvId) -> Result<Tail, StoreError> {
        let key = (app.clone(), conv.clone());
        if let Some(&tail) = staged.tails.get(&key) {
            return Ok(tail);
        }
        if let Some(&tail) = self.tails.get(&key) {
            return Ok(tail);
        }
        let (seq, count) = read::last_entry_in(&self.tables.messages, app, conv)?;
        let tail = Tail { seq, count };
        self.cache_tail(key, tail);
        Ok(tail)
    }

    fn cache_tail(&mut self, key: (AppId, ConvId), tail: Tail) {
        if self.tails.len() >= self.tail_cache_capacity && !self.tails.contains_key(&key) {
            self.tails.clear();
        }
        self.tails.insert(key, tail);
    }

    /// Writes the staged batch durably. On failure nothing of it is visible and the tail
    /// cache is left as it was (the staged tails are dropped with `staged`).
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
        for (k, (_, v)) in staged.reads {
            batch.insert(&t.reads, k, v);
        }
        for (k, v) in staged.mentions {
            batch.insert(&t.mentions, k, v);
        }
        for (k, v) in staged.records {
            match v {
                Some(v) => batch.insert(&t.records, k, v),
                None => batch.remove(&t.records, k),
            }
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
        for (key, tail) in staged.tails {
            self.cache_tail(key, tail);
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
