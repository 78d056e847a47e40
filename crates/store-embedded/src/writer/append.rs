//! Staging an append: the entry, its dedup record and index entries, the mentions it makes,
//! the sender's read position and the records written with it, all or nothing.

use magpie_store::{AppendOutcome, AppendRequest, ReadPosition, StoreError, StoredMessage};

use super::records::prepare_records;
use super::{MAX_VALUE_LEN, Staged, Tail, Writer};
use crate::{codec, keys, read};

impl Writer {
    pub(super) fn stage_append(
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
        let tail = self.tail(staged, &req.app, &req.conv)?;
        let seq = tail
            .seq
            .checked_add(1)
            .ok_or_else(|| StoreError::Backend(format!("{} has run out of seqs", req.conv)))?;
        if let Some(expected) = req.expect_seq
            && expected != seq
        {
            return Err(StoreError::Conflict(format!(
                "{} would get seq {seq}, not the expected {expected}",
                req.conv
            )));
        }
        // A count never exceeds its seq, so this only fails on corrupt data.
        let count = tail
            .count
            .checked_add(u64::from(req.extras.kind.counts_as_unread()))
            .ok_or_else(|| StoreError::Corrupt(format!("{} has an impossible count", req.conv)))?;
        let msg = StoredMessage {
            conv: req.conv,
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
        let app = req.app;

        // Everything fallible happens before anything is staged.
        let message_key = keys::message_key(&app, &msg.conv, seq)?;
        let message_value = codec::encode_message(&msg)?;
        if message_value.len() > MAX_VALUE_LEN {
            return Err(StoreError::Backend("message too large to store".into()));
        }
        let dedup_value = codec::encode_dedup(&msg.conv, seq)?;
        let index_value = codec::encode_index(seq, msg.server_time)?;
        let index_keys = req
            .parties
            .iter()
            .map(|party| keys::index_key(&app, party, &msg.conv))
            .collect::<Result<Vec<_>, _>>()?;
        let mut mention_keys = msg
            .mentions
            .iter()
            .map(|user| keys::mention_key(&app, &msg.conv, Some(user)))
            .collect::<Result<Vec<_>, _>>()?;
        if msg.mention_all {
            mention_keys.push(keys::mention_key(&app, &msg.conv, None)?);
        }
        let mention_value = codec::encode_mention(seq)?;
        let sender_read = if req.sender_read {
            let key = keys::read_key(&app, &msg.conv, &msg.from_user)?;
            let to = ReadPosition {
                seq,
                count,
                version: msg.msg_id,
            };
            self.advance_read(staged, &key, to)?
                .1
                .map(|value| (key, (to, value)))
        } else {
            None
        };
        let records = prepare_records(&app, req.records)?;

        staged.messages.push((message_key.clone(), message_value));
        staged.counts.insert(message_key, count);
        staged.dedup.push((dedup_key.clone(), dedup_value));
        for key in index_keys {
            staged.index.insert(key, index_value.clone());
        }
        for key in mention_keys {
            staged.mentions.insert(key, mention_value.clone());
        }
        staged.reads.extend(sender_read);
        staged.records.extend(records);
        staged
            .tails
            .insert((app, msg.conv.clone()), Tail { seq, count });
        staged.originals.insert(dedup_key, msg.clone());
        Ok(AppendOutcome::Stored(msg))
    }
}
