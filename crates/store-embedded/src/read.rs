//! Queries, run directly on the keyspaces (blocking; callers use `spawn_blocking`).
//!
//! Reads bypass the writer: fjall is thread-safe, and a batch becomes visible to readers
//! only when its commit returns, after the fsync. A reader may therefore see a message a
//! moment before its sender's acknowledgement arrives, but never one that is not durable.

use std::ops::Bound;

use fjall::{Keyspace, Slice};
use magpie_store::{ConversationEntry, StoreError, StoredMessage};
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
    last_seq_in(&t.messages, app, conv)
}

/// [`last_seq`] on the `messages` keyspace alone (the writer's cache loads with it).
pub(crate) fn last_seq_in(
    messages: &Keyspace,
    app: &AppId,
    conv: &ConvId,
) -> Result<Seq, StoreError> {
    match messages
        .prefix(keys::message_prefix(app, conv)?)
        .next_back()
    {
        None => Ok(0),
        Some(guard) => keys::seq_of_message_key(&guard.key().map_err(backend)?),
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
