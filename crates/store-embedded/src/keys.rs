//! Key layout of the seven keyspaces.
//!
//! Every key starts with the app id, so tenants never share a key range. Components are
//! length-prefixed (one length byte, then the bytes): `("ab", "c")` and `("a", "bc")` encode
//! differently, so a prefix scan over one conversation can never run into another whose id
//! merely starts with the same bytes. Seqs are big-endian `u64`, so byte order equals seq
//! order and a range scan reads a log in order.
//!
//! | keyspace     | key                                       | value (see [`crate::codec`]) |
//! |--------------|-------------------------------------------|------------------------------|
//! | `messages`   | `[app] [conv] seq:u64be`                  | message record               |
//! | `dedup`      | `[app] [sender] [client_msg_id]`          | `(conv, seq)`                |
//! | `user_convs` | `[app] [user] conv` (conv not prefixed)   | `(last_seq, last_time)`      |
//! | `users`      | `[app] [user]`                            | empty                        |
//! | `reads`      | `[app] [conv] user` (user not prefixed)   | read position                |
//! | `mentions`   | `[app] [conv] [user]` (`[""]`: everyone)  | seq of the last mention      |
//! | `records`    | `[app] table:u8 key` (key not prefixed)   | the record's bytes           |
//!
//! `[x]` is a length-prefixed component. In `user_convs`, `reads` and `records` the last
//! component is stored raw: the prefix before it is already unambiguous, and raw bytes make
//! key order equal the order of the ids (or record keys), which paging relies on (a length
//! prefix would sort short ids first). Raw record keys also make a record-key prefix a byte
//! prefix, so a prefix scan is one range scan. In `mentions`, ids are never empty, so the
//! empty component cannot collide with a user and marks a mention of everyone.

use magpie_store::{StoreError, Table};
use magpie_types::{AppId, ClientMsgId, ConvId, Seq, UserId};

/// Bytes of the seq at the end of a message key.
const SEQ_LEN: usize = 8;
/// Initial capacity of a key buffer: enough for the longest key of today's ids, so building
/// a key allocates once.
const KEY_CAPACITY: usize = 272;
/// Longest key the engine accepts (it asserts on longer ones; we refuse them instead).
const MAX_KEY_LEN: usize = u16::MAX as usize;

/// The prefix shared by every message of one conversation.
pub(crate) fn message_prefix(app: &AppId, conv: &ConvId) -> Result<Vec<u8>, StoreError> {
    let mut k = Vec::with_capacity(KEY_CAPACITY);
    push(&mut k, app.as_str())?;
    push(&mut k, conv.as_str())?;
    Ok(k)
}

/// The key of message `seq` in a conversation.
pub(crate) fn message_key(app: &AppId, conv: &ConvId, seq: Seq) -> Result<Vec<u8>, StoreError> {
    let mut k = message_prefix(app, conv)?;
    k.extend_from_slice(&seq.to_be_bytes());
    Ok(k)
}

/// The seq at the end of a message key.
pub(crate) fn seq_of_message_key(key: &[u8]) -> Result<Seq, StoreError> {
    let tail = key
        .len()
        .checked_sub(SEQ_LEN)
        .and_then(|start| key.get(start..))
        .and_then(|t| <[u8; SEQ_LEN]>::try_from(t).ok())
        .ok_or_else(|| StoreError::Corrupt("message key too short".into()))?;
    Ok(Seq::from_be_bytes(tail))
}

/// The dedup key of a client message id.
pub(crate) fn dedup_key(
    app: &AppId,
    sender: &UserId,
    client_msg_id: &ClientMsgId,
) -> Result<Vec<u8>, StoreError> {
    let mut k = user_key(app, sender)?;
    push(&mut k, client_msg_id.as_str())?;
    Ok(k)
}

/// The prefix of one user's conversation index.
pub(crate) fn index_prefix(app: &AppId, user: &UserId) -> Result<Vec<u8>, StoreError> {
    user_key(app, user)
}

/// The index entry of one conversation in a user's index.
pub(crate) fn index_key(app: &AppId, user: &UserId, conv: &ConvId) -> Result<Vec<u8>, StoreError> {
    let mut k = index_prefix(app, user)?;
    k.extend_from_slice(conv.as_str().as_bytes());
    Ok(k)
}

/// The conversation named by an index key, given the length of its `(app, user)` prefix.
pub(crate) fn conv_of_index_key(key: &[u8], prefix_len: usize) -> Result<ConvId, StoreError> {
    let raw = key
        .get(prefix_len..)
        .ok_or_else(|| StoreError::Corrupt("index key shorter than its prefix".into()))?;
    let s = std::str::from_utf8(raw)
        .map_err(|_| StoreError::Corrupt("index key holds a non-UTF-8 conversation".into()))?;
    ConvId::parse(s).map_err(|e| StoreError::Corrupt(format!("index key: {e}")))
}

/// The key recording that a user exists.
pub(crate) fn user_key(app: &AppId, user: &UserId) -> Result<Vec<u8>, StoreError> {
    let mut k = Vec::with_capacity(KEY_CAPACITY);
    push(&mut k, app.as_str())?;
    push(&mut k, user.as_str())?;
    Ok(k)
}

/// The prefix of every read position in one conversation.
pub(crate) fn read_prefix(app: &AppId, conv: &ConvId) -> Result<Vec<u8>, StoreError> {
    message_prefix(app, conv)
}

/// The key of `user`'s read position in a conversation.
pub(crate) fn read_key(app: &AppId, conv: &ConvId, user: &UserId) -> Result<Vec<u8>, StoreError> {
    let mut k = read_prefix(app, conv)?;
    k.extend_from_slice(user.as_str().as_bytes());
    Ok(k)
}

/// The user named by a read-position key, given the length of its `(app, conv)` prefix.
pub(crate) fn user_of_read_key(key: &[u8], prefix_len: usize) -> Result<UserId, StoreError> {
    let raw = key
        .get(prefix_len..)
        .ok_or_else(|| StoreError::Corrupt("read key shorter than its prefix".into()))?;
    let s = std::str::from_utf8(raw)
        .map_err(|_| StoreError::Corrupt("read key holds a non-UTF-8 user".into()))?;
    UserId::new(s).map_err(|e| StoreError::Corrupt(format!("read key: {e}")))
}

/// The key of the last mention of `user` (`None`: of everyone) in a conversation.
pub(crate) fn mention_key(
    app: &AppId,
    conv: &ConvId,
    user: Option<&UserId>,
) -> Result<Vec<u8>, StoreError> {
    let mut k = message_prefix(app, conv)?;
    push(&mut k, user.map_or("", UserId::as_str))?;
    Ok(k)
}

/// The key of record `key` in `table`. Also the start of a prefix scan when `key` is a
/// prefix: record keys are stored raw, so a key prefix is a byte prefix.
pub(crate) fn record_key(app: &AppId, table: Table, key: &str) -> Result<Vec<u8>, StoreError> {
    let mut k = Vec::with_capacity(KEY_CAPACITY);
    push(&mut k, app.as_str())?;
    k.push(table.code());
    k.extend_from_slice(key.as_bytes());
    if k.len() > MAX_KEY_LEN {
        return Err(StoreError::Backend(format!(
            "record key of {} bytes is too long to store",
            key.len()
        )));
    }
    Ok(k)
}

/// The record key at the end of a storage key, given the length of its `(app, table)`
/// prefix.
pub(crate) fn record_key_of(key: &[u8], prefix_len: usize) -> Result<String, StoreError> {
    let raw = key
        .get(prefix_len..)
        .ok_or_else(|| StoreError::Corrupt("record key shorter than its prefix".into()))?;
    String::from_utf8(raw.to_vec())
        .map_err(|_| StoreError::Corrupt("record key is not UTF-8".into()))
}

/// Appends one length-prefixed component. Validated ids are far below 255 bytes; a longer
/// one (a future id kind) is refused rather than truncated into a colliding key.
fn push(key: &mut Vec<u8>, component: &str) -> Result<(), StoreError> {
    let len = u8::try_from(component.len()).map_err(|_| {
        StoreError::Backend(format!(
            "id of {} bytes does not fit a key component",
            component.len()
        ))
    })?;
    key.push(len);
    key.extend_from_slice(component.as_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(s: &str) -> AppId {
        AppId::new(s).expect("valid id")
    }
    fn user(s: &str) -> UserId {
        UserId::new(s).expect("valid id")
    }
    fn conv(a: &str, b: &str) -> ConvId {
        ConvId::direct(&user(a), &user(b))
    }

    #[test]
    fn components_cannot_collide() {
        let a = dedup_key(&app("ab"), &user("c"), &ClientMsgId::new("x").expect("id"));
        let b = dedup_key(&app("a"), &user("bc"), &ClientMsgId::new("x").expect("id"));
        assert_ne!(a.expect("key"), b.expect("key"));
        let short = message_prefix(&app("a"), &conv("a", "b")).expect("key");
        let long = message_key(&app("a"), &conv("a", "bc"), 1).expect("key");
        assert!(!long.starts_with(&short));
    }

    #[test]
    fn message_keys_sort_by_seq() {
        let keys: Vec<_> = [1u64, 2, 255, 256, 65_536, u64::MAX]
            .iter()
            .map(|&s| message_key(&app("a"), &conv("a", "b"), s).expect("key"))
            .collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(seq_of_message_key(&keys[3]).expect("seq"), 256);
        assert!(seq_of_message_key(&[1, 2]).is_err());
    }

    #[test]
    fn index_keys_sort_by_conversation_id() {
        // "p2p:b:c" is shorter than "p2p:alice:bob" but sorts after it as a ConvId.
        let (x, y) = (conv("alice", "bob"), conv("b", "c"));
        assert!(x < y);
        let kx = index_key(&app("a"), &user("u"), &x).expect("key");
        let ky = index_key(&app("a"), &user("u"), &y).expect("key");
        assert!(kx < ky);
        let prefix = index_prefix(&app("a"), &user("u")).expect("key");
        assert_eq!(conv_of_index_key(&ky, prefix.len()).expect("conv"), y);
        assert!(conv_of_index_key(&ky, ky.len() + 1).is_err());
        assert!(conv_of_index_key(&[0, 0, 0xff], 2).is_err());
    }

    #[test]
    fn read_keys_sort_by_user_and_stay_in_their_conversation() {
        let c = conv("a", "b");
        let (x, y) = (user("bob"), user("c"));
        let kx = read_key(&app("a"), &c, &x).expect("key");
        let ky = read_key(&app("a"), &c, &y).expect("key");
        assert!(kx < ky, "keys sort by user id, not by length");
        let prefix = read_prefix(&app("a"), &c).expect("key");
        assert_eq!(user_of_read_key(&ky, prefix.len()).expect("user"), y);
        let other = read_prefix(&app("a"), &conv("a", "bc")).expect("key");
        assert!(!kx.starts_with(&other) && !other.starts_with(&prefix));
        assert!(user_of_read_key(&[0xff], 0).is_err());
        assert!(user_of_read_key(&kx, kx.len() + 1).is_err());
    }

    #[test]
    fn mention_of_everyone_is_not_a_user() {
        let c = conv("a", "b");
        let all = mention_key(&app("a"), &c, None).expect("key");
        let bob = mention_key(&app("a"), &c, Some(&user("bob"))).expect("key");
        assert_ne!(all, bob);
        assert!(!bob.starts_with(&all));
    }

    #[test]
    fn record_keys_sort_and_scan_by_prefix() {
        let a = app("a");
        // In string order (':' sorts after '0').
        let keys: Vec<_> = ["g1", "g10:a", "g1:a", "g1:b", "g2:a"]
            .iter()
            .map(|k| record_key(&a, Table::Members, k).expect("key"))
            .collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        let prefix = record_key(&a, Table::Members, "g1:").expect("key");
        let matching = keys.iter().filter(|k| k.starts_with(&prefix)).count();
        assert_eq!(matching, 2, "g10 is not in g1");
        let table = record_key(&a, Table::Members, "").expect("key");
        assert_eq!(record_key_of(&keys[1], table.len()).expect("key"), "g10:a");
        let groups = record_key(&a, Table::Groups, "g1:a").expect("key");
        assert!(!groups.starts_with(&table), "tables are separate");
        assert!(record_key(&a, Table::Members, &"x".repeat(70_000)).is_err());
        assert!(record_key_of(&[0xff], 0).is_err());
    }
}
