//! Queries, run directly on the keyspaces (blocking; callers use `spawn_blocking`).
//!
//! Reads bypass the writer: fjall is thread-safe, and a batch becomes visible to readers
//! only when its commit returns, after the fsync. A reader may therefore see a message a
//! moment before its sender's acknowledgement arrives, but never one that is not durable.

use std::ops::Bound;

use fjall::{Keyspace, Slice};
use magpie_store::{ConversationEntry, ReadPosition, StoreError, StoredMessage, Table};
use magpie_types::{AppId, ConvId, Seq, UserId};

use crate::codec;
use crate::keys;
use crate::tables::{Tables, backend};

/// Messages with `seq > after`, ascending, at most `limit`.
pub(crate) fn read_after(
    t: &Tables,
    app: &AppId,
    conv: &ConvId,
    after: Seq,
    limit: usize,
) -> Result<Vec<StoredMessage>, StoreError> {
    let Some(first) = after.checked_add(1) else {
        return Ok(Vec::new());
    };
    let lo = keys::message_key(app, conv, first)?;
    let hi = keys::message_key(app, conv, Seq::MAX)?;
    let mut out = Vec::new();
    for guard in t.messages.range(lo..=hi).take(limit) {
        out.push(message_of(conv, guard)?);
    }
    Ok(out)
}

/// Messages with `seq < before`, descending, at most `limit`.
pub(crate) fn read_before(
    t: &Tables,
    app: &AppId,
    conv: &ConvId,
    before: Seq,
    limit: usize,
) -> Result<Vec<StoredMessage>, StoreError> {
    if before == 0 {
        return Ok(Vec::new());
    }
    let lo = keys::message_key(app, conv, 0)?;
    let hi = keys::message_key(app, conv, before)?;
    let mut out = Vec::new();
    for guard in t.messages.range(lo..hi).rev().take(limit) {
        out.push(message_of(conv, guard)?);
    }
    Ok(out)
}

/// The conversation's last seq: the key of its last message, found without a scan.
pub(crate) fn last_seq(t: &Tables, app: &AppId, conv: &ConvId) -> Result<Seq, StoreError> {
    match t
        .messages
        .prefix(keys::message_prefix(app, conv)?)
        .next_back()
    {
        None => Ok(0),
        Some(guard) => keys::seq_of_message_key(&guard.key().map_err(backend)?),
    }
}

/// The seq and count of the conversation's last entry (`(0, 0)` if it has none), on the
/// `messages` keyspace alone: the writer's tail cache loads with it.
pub(crate) fn last_entry_in(
    messages: &Keyspace,
    app: &AppId,
    conv: &ConvId,
) -> Result<(Seq, u64), StoreError> {
    match messages
        .prefix(keys::message_prefix(app, conv)?)
        .next_back()
    {
        None => Ok((0, 0)),
        Some(guard) => {
            let (key, value) = guard.into_inner().map_err(backend)?;
            let seq = keys::seq_of_message_key(&key)?;
            Ok((seq, codec::decode_count(seq, &value)?))
        }
    }
}

/// The user's conversations with id greater than `after`, ascending, at most `limit`.
pub(crate) fn conversations(
    t: &Tables,
    app: &AppId,
    user: &UserId,
    after: Option<&ConvId>,
    limit: usize,
) -> Result<Vec<ConversationEntry>, StoreError> {
    let prefix = keys::index_prefix(app, user)?;
    let (start, end) = fjall::util::prefix_to_range(&prefix);
    let start = match after {
        Some(conv) => Bound::Excluded(Slice::from(keys::index_key(app, user, conv)?)),
        None => start,
    };
    let mut out = Vec::new();
    for guard in t.user_convs.range::<Slice, _>((start, end)).take(limit) {
        let (key, value) = guard.into_inner().map_err(backend)?;
        let conv = keys::conv_of_index_key(&key, prefix.len())?;
        out.push(codec::decode_index(conv, &value)?);
    }
    Ok(out)
}

/// Whether `user` exists in `app`.
pub(crate) fn user_exists(t: &Tables, app: &AppId, user: &UserId) -> Result<bool, StoreError> {
    t.users
        .contains_key(keys::user_key(app, user)?)
        .map_err(backend)
}

/// `user`'s read position in `conv` (the default if none is stored).
pub(crate) fn read_position(
    t: &Tables,
    app: &AppId,
    conv: &ConvId,
    user: &UserId,
) -> Result<ReadPosition, StoreError> {
    match t
        .reads
        .get(keys::read_key(app, conv, user)?)
        .map_err(backend)?
    {
        Some(value) => codec::decode_read(&value),
        None => Ok(ReadPosition::default()),
    }
}

/// The read positions in `conv` of users after `after`, ascending by user, at most `limit`.
pub(crate) fn read_positions(
    t: &Tables,
    app: &AppId,
    conv: &ConvId,
    after: Option<&UserId>,
    limit: usize,
) -> Result<Vec<(UserId, ReadPosition)>, StoreError> {
    let prefix = keys::read_prefix(app, conv)?;
    let (start, end) = fjall::util::prefix_to_range(&prefix);
    let start = match after {
        Some(user) => Bound::Excluded(Slice::from(keys::read_key(app, conv, user)?)),
        None => start,
    };
    let mut out = Vec::new();
    for guard in t.reads.range::<Slice, _>((start, end)).take(limit) {
        let (key, value) = guard.into_inner().map_err(backend)?;
        let user = keys::user_of_read_key(&key, prefix.len())?;
        out.push((user, codec::decode_read(&value)?));
    }
    Ok(out)
}

/// The last seq in `conv` that mentions `user` or everyone (0 if none).
pub(crate) fn last_mention(
    t: &Tables,
    app: &AppId,
    conv: &ConvId,
    user: &UserId,
) -> Result<Seq, StoreError> {
    let mut last = 0;
    for who in [Some(user), None] {
        if let Some(value) = t
            .mentions
            .get(keys::mention_key(app, conv, who)?)
            .map_err(backend)?
        {
            last = last.max(codec::decode_mention(&value)?);
        }
    }
    Ok(last)
}

/// The record at `key` in `table`, if any.
pub(crate) fn get_record(
    t: &Tables,
    app: &AppId,
    table: Table,
    key: &str,
) -> Result<Option<Vec<u8>>, StoreError> {
    t.records
        .get(keys::record_key(app, table, key)?)
        .map_err(backend)?
        .map(|value| codec::decode_record(&value))
        .transpose()
}

/// Records of `table` whose key starts with `prefix` and is greater than `after`,
/// ascending by key, at most `limit`: one range scan, since record keys are stored raw.
pub(crate) fn scan_records(
    t: &Tables,
    app: &AppId,
    table: Table,
    prefix: &str,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    let table_len = keys::record_key(app, table, "")?.len();
    let from = keys::record_key(app, table, prefix)?;
    let (start, end) = fjall::util::prefix_to_range(&from);
    let start = match after {
        // Every key with the prefix is after `after`: scan them all.
        Some(after) if after < prefix => start,
        Some(after) if after.starts_with(prefix) => {
            Bound::Excluded(Slice::from(keys::record_key(app, table, after)?))
        }
        // `after` sorts beyond every key with the prefix.
        Some(_) => return Ok(Vec::new()),
        None => start,
    };
    let mut out = Vec::new();
    for guard in t.records.range::<Slice, _>((start, end)).take(limit) {
        let (key, value) = guard.into_inner().map_err(backend)?;
        out.push((
            keys::record_key_of(&key, table_len)?,
            codec::decode_record(&value)?,
        ));
    }
    Ok(out)
}

/// The original of a deduplicated message, if `key` (a dedup key) is stored.
pub(crate) fn dedup_original(
    t: &Tables,
    app: &AppId,
    key: &[u8],
) -> Result<Option<StoredMessage>, StoreError> {
    let Some(value) = t.dedup.get(key).map_err(backend)? else {
        return Ok(None);
    };
    let (conv, seq) = codec::decode_dedup(&value)?;
    let bytes = t
        .messages
        .get(keys::message_key(app, &conv, seq)?)
        .map_err(backend)?
        .ok_or_else(|| StoreError::Corrupt(format!("dedup points to missing {conv}#{seq}")))?;
    codec::decode_message(conv, seq, &bytes).map(Some)
}

fn message_of(conv: &ConvId, guard: fjall::Guard) -> Result<StoredMessage, StoreError> {
    let (key, value) = guard.into_inner().map_err(backend)?;
    codec::decode_message(conv.clone(), keys::seq_of_message_key(&key)?, &value)
}
