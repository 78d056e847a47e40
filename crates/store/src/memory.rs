//! The in-memory backend: the reference implementation of the storage contract.
//!
//! One mutex guards everything, which makes every append trivially atomic. It loses
//! everything on restart, so it serves tests and throwaway servers only.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use async_trait::async_trait;
use magpie_types::{AppId, ClientMsgId, ConvId, Seq, UserId};
use parking_lot::Mutex;

use crate::model::{AppendOutcome, AppendRequest, ConversationEntry, StoreError, StoredMessage};
use crate::traits::{MessageStore, UserDirectory};

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
        let msg = StoredMessage {
            conv: req.conv.clone(),
            seq,
            msg_id: req.msg_id,
            from_user: req.from_user,
            from_device: req.from_device,
            client_msg_id: req.client_msg_id,
            content: req.content,
            server_time: req.server_time,
        };
        log.push(msg.clone());
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
