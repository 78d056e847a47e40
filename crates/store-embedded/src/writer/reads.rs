//! Staging read positions: `mark_read`, and the sender's position moved by an append.
//!
//! A position only moves forward, so moving it is read-then-write: the writer reads the
//! position in force (staged earlier in the batch, else committed) and stages the new one
//! only if it is further. Its `count` is that of the entry it points at, which may itself be
//! staged in the same batch and not yet on disk.

use magpie_store::{ReadPosition, StoreError};
use magpie_types::{AppId, ConvId, Seq, UserId};

use super::{Staged, Writer};
use crate::tables::backend;
use crate::{codec, keys};

impl Writer {
    pub(super) fn stage_mark_read(
        &mut self,
        staged: &mut Staged,
        app: &AppId,
        user: &UserId,
        conv: &ConvId,
        seq: Seq,
        version: u64,
    ) -> Result<ReadPosition, StoreError> {
        let tail = self.tail(staged, app, conv)?;
        let seq = seq.min(tail.seq);
        let count = if seq == tail.seq {
            tail.count
        } else {
            self.count_at(staged, app, conv, seq)?
        };
        let key = keys::read_key(app, conv, user)?;
        let to = ReadPosition {
            seq,
            count,
            version,
        };
        let (in_force, value) = self.advance_read(staged, &key, to)?;
        if let Some(value) = value {
            staged.reads.insert(key, (in_force, value));
        }
        Ok(in_force)
    }

    /// The position in force once the one at `key` is moved to `to`, and, if it moved, the
    /// encoded value to stage. Stages nothing itself.
    pub(super) fn advance_read(
        &self,
        staged: &Staged,
        key: &[u8],
        to: ReadPosition,
    ) -> Result<(ReadPosition, Option<Vec<u8>>), StoreError> {
        let current = match staged.reads.get(key) {
            Some((staged, _)) => *staged,
            None => match self.tables.reads.get(key).map_err(backend)? {
                Some(value) => codec::decode_read(&value)?,
                None => ReadPosition::default(),
            },
        };
        if to.seq > current.seq {
            Ok((to, Some(codec::encode_read(&to)?)))
        } else {
            Ok((current, None))
        }
    }

    /// The count of entry `seq` (0 for seq 0), which must exist: staged in this batch, else
    /// read from its stored message.
    fn count_at(
        &self,
        staged: &Staged,
        app: &AppId,
        conv: &ConvId,
        seq: Seq,
    ) -> Result<u64, StoreError> {
        if seq == 0 {
            return Ok(0);
        }
        let key = keys::message_key(app, conv, seq)?;
        if let Some(&count) = staged.counts.get(&key) {
            return Ok(count);
        }
        let value = self
            .tables
            .messages
            .get(&key)
            .map_err(backend)?
            .ok_or_else(|| StoreError::Corrupt(format!("{conv} is missing entry {seq}")))?;
        codec::decode_count(seq, &value)
    }
}
