//! The in-memory backend: the reference implementation of the storage contract.
//!
//! One mutex guards everything, which makes every append trivially atomic. It loses
//! everything on restart, so it serves tests and throwaway servers only.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use async_trait::async_trait;
use magpie_types::{AppId, ClientMsgId, ConvId, Seq, UserId};
use parking_lot::Mutex;

use crate::model::{
    AppendOutcome, AppendRequest, ConversationEntry, ReadPosition, RecordWrite, StoreError,
    StoredMessage, Table,
};
use crate::traits::{MessageStore, ReadStore, RecordStore, UserDirectory};

/// An in-memory [`crate::Store`].
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    logs: HashMap<(AppId, ConvId), Vec<StoredMessage>>,
    dedup: HashMap<(AppId, UserId, ClientMsgId), (ConvId, Seq)>,
    index: HashMap<(AppId, UserId), BTreeMap<ConvId, ConversationEntry>>,
    users: BTreeSet<(AppId, UserId)>,
    reads: HashMap<(AppId, ConvId), BTreeMap<UserId, ReadPosition>>,
    /// `None` as the user: a mention of everyone.
    mentions: HashMap<(AppId, ConvId, Option<UserId>), Seq>,
    records: BTreeMap<(AppId, Table, String), Vec<u8>>,
}

impl Inner {
    fn apply(&mut self, app: &AppId, writes: Vec<RecordWrite>) {
        for w in writes {
            let key = (app.clone(), w.table, w.key);
            match w.value {
                Some(v) => {
                    self.records.insert(key, v);
                }
                None => {
                    self.records.remove(&key);
                }
            }
        }
    }

    fn count_at(&self, app: &AppId, conv: &ConvId, seq: Seq) -> u64 {
        let Some(log) = self.logs.get(&(app.clone(), conv.clone())) else {
            return 0;
        };
        usize::try_from(seq)
            .ok()
            .and_then(|s| s.checked_sub(1))
            .and_then(|i| log.get(i))
            .map_or(0, |m| m.count)
    }

    /// Moves a read position forward; returns the position in force.
    fn advance_read(
        &mut self,
        app: &AppId,
        user: &UserId,
        conv: &ConvId,
        to: ReadPosition,
    ) -> ReadPosition {
        let slot = self
            .reads
            .entry((app.clone(), conv.clone()))
            .or_default()
            .entry(user.clone())
            .or_default();
        if to.seq > slot.seq {
            *slot = to;
        }
        *slot
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl MessageStore for MemoryStore {
    async fn append(&self, req: AppendRequest) -> Result<AppendOutcome, StoreError> {
        let mut g = self.inner.lock();
        let key = (
            req.app.clone(),
            req.from_user.clone(),
            req.client_msg_id.clone(),
        );
        if let Some((conv, seq)) = g.dedup.get(&key) {
            let log = g
                .logs
                .get(&(req.app.clone(), conv.clone()))
                .ok_or_else(|| StoreError::Corrupt("dedup points to a missing log".into()))?;
            let idx = usize::try_from(*seq - 1).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let original = log
                .get(idx)
                .cloned()
                .ok_or_else(|| StoreError::Corrupt("dedup points past the log".into()))?;
            return Ok(AppendOutcome::Duplicate(original));
        }
        let log = g
            .logs
            .entry((req.app.clone(), req.conv.clone()))
            .or_default();
        let seq = log.len() as Seq + 1;
        if let Some(expected) = req.expect_seq
            && expected != seq
        {
            return Err(StoreError::Conflict(format!(
                "{} would get seq {seq}, not the expected {expected}",
                req.conv
            )));
        }
        let count =
            log.last().map_or(0, |m| m.count) + u64::from(req.extras.kind.counts_as_unread());
        let msg = StoredMessage {
            conv: req.conv.clone(),
            seq,
            msg_id: req.msg_id,
            from_user: req.from_user,
            from_device: req.from_device,
            client_msg_id: req.client_msg_id,
            content: req.content,
            server_time: req.server_time,
            kind: req.extras.kind,
            mentions: req.extras.mentions,
            mention_all: req.extras.mention_all,
            reply_to: req.extras.reply_to,
            count,
        };
        log.push(msg.clone());
        for user in &msg.mentions {
            g.mentions
                .insert((req.app.clone(), req.conv.clone(), Some(user.clone())), seq);
        }
        if msg.mention_all {
            g.mentions
                .insert((req.app.clone(), req.conv.clone(), None), seq);
        }
        if req.sender_read {
            let pos = ReadPosition {
                seq,
                count,
                version: msg.msg_id,
            };
            g.advance_read(&req.app, &msg.from_user, &req.conv, pos);
        }
        g.apply(&req.app, req.records);
        g.dedup.insert(key, (req.conv.clone(), seq));
        for party in req.parties {
            g.index.entry((req.app.clone(), party)).or_default().insert(
                req.conv.clone(),
                ConversationEntry {
                    conv: req.conv.clone(),
                    last_seq: seq,
                    last_time: req.server_time,
                },
            );
        }
        Ok(AppendOutcome::Stored(msg))
    }

    async fn read_after(
        &self,
        app: &AppId,
        conv: &ConvId,
        after: Seq,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let g = self.inner.lock();
        let Some(log) = g.logs.get(&(app.clone(), conv.clone())) else {
            return Ok(Vec::new());
        };
        let start = usize::try_from(after).unwrap_or(usize::MAX).min(log.len());
        Ok(log[start..].iter().take(limit).cloned().collect())
    }

    async fn read_before(
        &self,
        app: &AppId,
        conv: &ConvId,
        before: Seq,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let g = self.inner.lock();
        let Some(log) = g.logs.get(&(app.clone(), conv.clone())) else {
            return Ok(Vec::new());
        };
        let end = usize::try_from(before.saturating_sub(1))
            .unwrap_or(usize::MAX)
            .min(log.len());
        Ok(log[..end].iter().rev().take(limit).cloned().collect())
    }

    async fn original(
        &self,
        app: &AppId,
        from_user: &UserId,
        client_msg_id: &ClientMsgId,
    ) -> Result<Option<StoredMessage>, StoreError> {
        let g = self.inner.lock();
        let key = (app.clone(), from_user.clone(), client_msg_id.clone());
        let Some((conv, seq)) = g.dedup.get(&key) else {
            return Ok(None);
        };
        let idx = usize::try_from(*seq - 1).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(g.logs
            .get(&(app.clone(), conv.clone()))
            .and_then(|l| l.get(idx))
            .cloned())
    }

    async fn last_seq(&self, app: &AppId, conv: &ConvId) -> Result<Seq, StoreError> {
        let g = self.inner.lock();
        Ok(g.logs
            .get(&(app.clone(), conv.clone()))
            .map_or(0, |l| l.len() as Seq))
    }

    async fn conversations(
        &self,
        app: &AppId,
        user: &UserId,
        after: Option<&ConvId>,
        limit: usize,
    ) -> Result<Vec<ConversationEntry>, StoreError> {
        let g = self.inner.lock();
        let Some(idx) = g.index.get(&(app.clone(), user.clone())) else {
            return Ok(Vec::new());
        };
        Ok(idx
            .values()
            .filter(|e| after.is_none_or(|a| &e.conv > a))
            .take(limit)
            .cloned()
            .collect())
    }
}

#[async_trait]
impl ReadStore for MemoryStore {
    async fn mark_read(
        &self,
        app: &AppId,
        user: &UserId,
        conv: &ConvId,
        seq: Seq,
        version: u64,
    ) -> Result<ReadPosition, StoreError> {
        let mut g = self.inner.lock();
        let last = g
            .logs
            .get(&(app.clone(), conv.clone()))
            .map_or(0, |l| l.len() as Seq);
        let seq = seq.min(last);
        let count = g.count_at(app, conv, seq);
        let to = ReadPosition {
            seq,
            count,
            version,
        };
        Ok(g.advance_read(app, user, conv, to))
    }

    async fn read_position(
        &self,
        app: &AppId,
        conv: &ConvId,
        user: &UserId,
    ) -> Result<ReadPosition, StoreError> {
        let g = self.inner.lock();
        Ok(g.reads
            .get(&(app.clone(), conv.clone()))
            .and_then(|m| m.get(user).copied())
            .unwrap_or_default())
    }

    async fn read_positions(
        &self,
        app: &AppId,
        conv: &ConvId,
        after: Option<&UserId>,
        limit: usize,
    ) -> Result<Vec<(UserId, ReadPosition)>, StoreError> {
        let g = self.inner.lock();
        let Some(m) = g.reads.get(&(app.clone(), conv.clone())) else {
            return Ok(Vec::new());
        };
        Ok(m.iter()
            .filter(|(u, _)| after.is_none_or(|a| *u > a))
            .take(limit)
            .map(|(u, p)| (u.clone(), *p))
            .collect())
    }

    async fn last_mention(
        &self,
        app: &AppId,
        conv: &ConvId,
        user: &UserId,
    ) -> Result<Seq, StoreError> {
        let g = self.inner.lock();
        let get = |u: Option<UserId>| {
            g.mentions
                .get(&(app.clone(), conv.clone(), u))
                .copied()
                .unwrap_or(0)
        };
        Ok(get(Some(user.clone())).max(get(None)))
    }
}

#[async_trait]
impl RecordStore for MemoryStore {
    async fn get_record(
        &self,
        app: &AppId,
        table: Table,
        key: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let g = self.inner.lock();
        Ok(g.records
            .get(&(app.clone(), table, key.to_owned()))
            .cloned())
    }

    async fn scan_records(
        &self,
        app: &AppId,
        table: Table,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let g = self.inner.lock();
        let from = match after {
            Some(a) if a > prefix => a,
            _ => prefix,
        };
        let start = (app.clone(), table, from.to_owned());
        Ok(g.records
            .range(start..)
            .take_while(|((a, t, k), _)| a == app && *t == table && k.starts_with(prefix))
            .filter(|((_, _, k), _)| after.is_none_or(|a| k.as_str() > a))
            .take(limit)
            .map(|((_, _, k), v)| (k.clone(), v.clone()))
            .collect())
    }

    async fn write_records(&self, app: &AppId, writes: Vec<RecordWrite>) -> Result<(), StoreError> {
        self.inner.lock().apply(app, writes);
        Ok(())
    }
}

#[async_trait]
impl UserDirectory for MemoryStore {
    async fn put_user(&self, app: &AppId, user: &UserId) -> Result<(), StoreError> {
        self.inner.lock().users.insert((app.clone(), user.clone()));
        Ok(())
    }

    async fn user_exists(&self, app: &AppId, user: &UserId) -> Result<bool, StoreError> {
        Ok(self
            .inner
            .lock()
            .users
            .contains(&(app.clone(), user.clone())))
    }
}

#[cfg(test)]
mod tests {
    crate::store_conformance_tests!(crate::MemoryStore::new());
}
