//! Value encoding: private record structs, postcard-encoded behind a version byte.
//!
//! The records are separate from the domain types on purpose: the domain types carry no
//! serde, and the stored format must only change deliberately. Every value starts with a
//! version byte, so a later release can read old values and refuse unknown ones instead of
//! misreading them. Decoding re-validates ids, so a damaged value surfaces as
//! [`StoreError::Corrupt`], never as a panic or a malformed id.
//!
//! Versions:
//! - 1: the first release. Messages have no entry kind, mentions, reply or count.
//! - 2 ([`VERSION`]): messages carry entry kind, mentions, reply and count; read positions,
//!   mentions and records are new. Dedup and index values did not change, so they are read
//!   at either version. A version-1 message decodes as a [`EntryKind::Message`] with no
//!   mentions and no reply, and with `count == seq`: version 1 stored nothing but messages,
//!   each of which counts as unread, so the cumulative count of entry `seq` is `seq` itself.
//!   Entries appended after an upgrade continue from that count.

use std::borrow::Cow;
use std::collections::BTreeMap;

use magpie_store::{ConversationEntry, ReadPosition, StoreError, StoredMessage};
use magpie_types::{
    ClientMsgId, Content, ContentType, ConvId, DeviceId, EntryKind, Millis, Seq, UserId,
};
use serde::{Deserialize, Serialize};

/// Version byte in front of every value written by this release.
const VERSION: u8 = 2;
/// The first release's version: still read, never written.
const V1: u8 = 1;
/// Versions whose dedup and index values have today's layout.
const DEDUP_AND_INDEX_VERSIONS: &[u8] = &[V1, VERSION];

/// A message. Its conversation and seq are in the key, so they are not repeated here.
#[derive(Serialize, Deserialize)]
struct MessageRecord<'a> {
    /// First, so that [`decode_count`] reads it without decoding the rest of the message.
    count: u64,
    msg_id: u64,
    from_user: Cow<'a, str>,
    from_device: Cow<'a, str>,
    client_msg_id: Cow<'a, str>,
    content_type: u8,
    body: Cow<'a, [u8]>,
    metadata: Cow<'a, BTreeMap<String, String>>,
    server_time: u64,
    entry_kind: u8,
    mentions: Vec<Cow<'a, str>>,
    mention_all: bool,
    reply_to: u64,
}

/// A message as version 1 stored it. Read only: nothing writes this layout any more.
#[derive(Deserialize)]
struct MessageRecordV1<'a> {
    msg_id: u64,
    from_user: Cow<'a, str>,
    from_device: Cow<'a, str>,
    client_msg_id: Cow<'a, str>,
    kind: u8,
    body: Cow<'a, [u8]>,
    metadata: Cow<'a, BTreeMap<String, String>>,
    server_time: u64,
}

/// Where a deduplicated message lives.
#[derive(Serialize, Deserialize)]
struct DedupRecord<'a> {
    conv: Cow<'a, str>,
    seq: u64,
}

/// A user's view of one conversation. The conversation is in the key.
#[derive(Serialize, Deserialize)]
struct IndexRecord {
    last_seq: u64,
    last_time: u64,
}

/// A read position. The conversation and user are in the key.
#[derive(Serialize, Deserialize)]
struct ReadRecord {
    seq: u64,
    count: u64,
    version: u64,
}

/// The last mention of a user (or of everyone). The rest is in the key.
#[derive(Serialize, Deserialize)]
struct MentionRecord {
    seq: u64,
}

/// A record of the record store: the caller's opaque bytes.
#[derive(Serialize, Deserialize)]
struct RecordValue<'a> {
    bytes: Cow<'a, [u8]>,
}

/// Encodes a message for the `messages` keyspace.
pub(crate) fn encode_message(m: &StoredMessage) -> Result<Vec<u8>, StoreError> {
    encode(&MessageRecord {
        count: m.count,
        msg_id: m.msg_id,
        from_user: Cow::Borrowed(m.from_user.as_str()),
        from_device: Cow::Borrowed(m.from_device.as_str()),
        client_msg_id: Cow::Borrowed(m.client_msg_id.as_str()),
        content_type: m.content.kind.code(),
        body: Cow::Borrowed(&m.content.body),
        metadata: Cow::Borrowed(&m.content.metadata),
        server_time: m.server_time,
        entry_kind: m.kind.code(),
        mentions: m
            .mentions
            .iter()
            .map(|u| Cow::Borrowed(u.as_str()))
            .collect(),
        mention_all: m.mention_all,
        reply_to: m.reply_to,
    })
}

/// Decodes a message stored under `(conv, seq)`, of either version.
pub(crate) fn decode_message(
    conv: ConvId,
    seq: Seq,
    bytes: &[u8],
) -> Result<StoredMessage, StoreError> {
    let (version, rest) = split_version(bytes, "message")?;
    match version {
        VERSION => {
            let r: MessageRecord<'_> = decode_body(rest, "message")?;
            let kind = EntryKind::from_code(u32::from(r.entry_kind)).ok_or_else(|| {
                StoreError::Corrupt(format!("unknown entry kind {}", r.entry_kind))
            })?;
            let mentions = r
                .mentions
                .into_iter()
                .map(|u| UserId::new(u.into_owned()).map_err(corrupt))
                .collect::<Result<_, _>>()?;
            Ok(StoredMessage {
                conv,
                seq,
                msg_id: r.msg_id,
                from_user: UserId::new(r.from_user.into_owned()).map_err(corrupt)?,
                from_device: DeviceId::new(r.from_device.into_owned()).map_err(corrupt)?,
                client_msg_id: ClientMsgId::new(r.client_msg_id.into_owned()).map_err(corrupt)?,
                content: content(r.content_type, r.body, r.metadata)?,
                server_time: r.server_time,
                kind,
                mentions,
                mention_all: r.mention_all,
                reply_to: r.reply_to,
                count: r.count,
            })
        }
        V1 => {
            let r: MessageRecordV1<'_> = decode_body(rest, "message")?;
            Ok(StoredMessage {
                conv,
                seq,
                msg_id: r.msg_id,
                from_user: UserId::new(r.from_user.into_owned()).map_err(corrupt)?,
                from_device: DeviceId::new(r.from_device.into_owned()).map_err(corrupt)?,
                client_msg_id: ClientMsgId::new(r.client_msg_id.into_owned()).map_err(corrupt)?,
                content: content(r.kind, r.body, r.metadata)?,
                server_time: r.server_time,
                kind: EntryKind::Message,
                mentions: Vec::new(),
                mention_all: false,
                reply_to: 0,
                // Version 1 held only messages, all counting: see the module docs.
                count: seq,
            })
        }
        other => Err(unknown_version("message", other)),
    }
}

/// The `count` of the message stored under `seq`, without decoding the rest of it: the
/// writer needs it to number the next entry and to place read positions.
pub(crate) fn decode_count(seq: Seq, bytes: &[u8]) -> Result<u64, StoreError> {
    let (version, rest) = split_version(bytes, "message")?;
    match version {
        VERSION => postcard::take_from_bytes::<u64>(rest)
            .map(|(count, _)| count)
            .map_err(|e| StoreError::Corrupt(format!("message record: {e}"))),
        V1 => Ok(seq),
        other => Err(unknown_version("message", other)),
    }
}

fn content(
    code: u8,
    body: Cow<'_, [u8]>,
    metadata: Cow<'_, BTreeMap<String, String>>,
) -> Result<Content, StoreError> {
    let kind = ContentType::from_code(u32::from(code))
        .ok_or_else(|| StoreError::Corrupt(format!("unknown content type {code}")))?;
    Ok(Content {
        kind,
        body: body.into_owned(),
        metadata: metadata.into_owned(),
    })
}

/// Encodes a dedup record pointing at `(conv, seq)`.
pub(crate) fn encode_dedup(conv: &ConvId, seq: Seq) -> Result<Vec<u8>, StoreError> {
    encode(&DedupRecord {
        conv: Cow::Borrowed(conv.as_str()),
        seq,
    })
}

/// Decodes a dedup record into the `(conv, seq)` it points at.
pub(crate) fn decode_dedup(bytes: &[u8]) -> Result<(ConvId, Seq), StoreError> {
    let r: DedupRecord<'_> = decode(bytes, "dedup", DEDUP_AND_INDEX_VERSIONS)?;
    Ok((ConvId::parse(&r.conv).map_err(corrupt)?, r.seq))
}

/// Encodes a conversation-index entry.
pub(crate) fn encode_index(last_seq: Seq, last_time: Millis) -> Result<Vec<u8>, StoreError> {
    encode(&IndexRecord {
        last_seq,
        last_time,
    })
}

/// Decodes the index entry stored for `conv`.
pub(crate) fn decode_index(conv: ConvId, bytes: &[u8]) -> Result<ConversationEntry, StoreError> {
    let r: IndexRecord = decode(bytes, "index", DEDUP_AND_INDEX_VERSIONS)?;
    Ok(ConversationEntry {
        conv,
        last_seq: r.last_seq,
        last_time: r.last_time,
    })
}

/// Encodes a read position.
pub(crate) fn encode_read(p: &ReadPosition) -> Result<Vec<u8>, StoreError> {
    encode(&ReadRecord {
        seq: p.seq,
        count: p.count,
        version: p.version,
    })
}

/// Decodes a read position.
pub(crate) fn decode_read(bytes: &[u8]) -> Result<ReadPosition, StoreError> {
    let r: ReadRecord = decode(bytes, "read position", &[VERSION])?;
    Ok(ReadPosition {
        seq: r.seq,
        count: r.count,
        version: r.version,
    })
}

/// Encodes the seq of a last mention.
pub(crate) fn encode_mention(seq: Seq) -> Result<Vec<u8>, StoreError> {
    encode(&MentionRecord { seq })
}

/// Decodes the seq of a last mention.
pub(crate) fn decode_mention(bytes: &[u8]) -> Result<Seq, StoreError> {
    let r: MentionRecord = decode(bytes, "mention", &[VERSION])?;
    Ok(r.seq)
}

/// Encodes a record-store value.
pub(crate) fn encode_record(bytes: &[u8]) -> Result<Vec<u8>, StoreError> {
    encode(&RecordValue {
        bytes: Cow::Borrowed(bytes),
    })
}

/// Decodes a record-store value into the caller's bytes.
pub(crate) fn decode_record(bytes: &[u8]) -> Result<Vec<u8>, StoreError> {
    let r: RecordValue<'_> = decode(bytes, "record", &[VERSION])?;
    Ok(r.bytes.into_owned())
}

fn encode<T: Serialize>(record: &T) -> Result<Vec<u8>, StoreError> {
    postcard::to_extend(record, vec![VERSION])
        .map_err(|e| StoreError::Backend(format!("encoding a record: {e}")))
}

/// Decodes a value whose layout is the same at every version in `readable`.
fn decode<'a, T: Deserialize<'a>>(
    bytes: &'a [u8],
    what: &str,
    readable: &[u8],
) -> Result<T, StoreError> {
    let (version, rest) = split_version(bytes, what)?;
    if !readable.contains(&version) {
        return Err(unknown_version(what, version));
    }
    decode_body(rest, what)
}

fn split_version<'a>(bytes: &'a [u8], what: &str) -> Result<(u8, &'a [u8]), StoreError> {
    let (&version, rest) = bytes
        .split_first()
        .ok_or_else(|| StoreError::Corrupt(format!("empty {what} record")))?;
    Ok((version, rest))
}

fn decode_body<'a, T: Deserialize<'a>>(rest: &'a [u8], what: &str) -> Result<T, StoreError> {
    let (record, trailing) = postcard::take_from_bytes(rest)
        .map_err(|e| StoreError::Corrupt(format!("{what} record: {e}")))?;
    if !trailing.is_empty() {
        return Err(StoreError::Corrupt(format!(
            "{what} record has {} trailing bytes",
            trailing.len()
        )));
    }
    Ok(record)
}

fn unknown_version(what: &str, version: u8) -> StoreError {
    StoreError::Corrupt(format!("{what} record has unknown version {version}"))
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("stored id: {e}"))
}

/// A version-1 message exactly as the first release wrote it (postcard of
/// `MessageRecordV1`): msg_id 42, from alice/d1, client id c1, TEXT "hi", no metadata,
/// server time 1.
#[cfg(test)]
pub(crate) const V1_MESSAGE: &[u8] = &[
    1, 42, 5, b'a', b'l', b'i', b'c', b'e', 2, b'd', b'1', 2, b'c', b'1', 1, 2, b'h', b'i', 0, 1,
];

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> StoredMessage {
        let (a, b) = (
            UserId::new("alice").expect("id"),
            UserId::new("bob").expect("id"),
        );
        StoredMessage {
            conv: ConvId::direct(&a, &b),
            seq: 7,
            msg_id: 42,
            from_user: a,
            from_device: DeviceId::new("d1").expect("id"),
            client_msg_id: ClientMsgId::new("c1").expect("id"),
            content: Content {
                kind: ContentType::Image,
                body: vec![0, 1, 255],
                metadata: [("k".to_owned(), "v".to_owned())].into_iter().collect(),
            },
            server_time: 1_700_000_000_000,
            kind: EntryKind::GroupEvent,
            mentions: vec![
                UserId::new("carol").expect("id"),
                UserId::new("dave").expect("id"),
            ],
            mention_all: true,
            reply_to: 3,
            count: 5,
        }
    }

    #[test]
    fn message_roundtrips() {
        let m = message();
        let bytes = encode_message(&m).expect("encode");
        assert_eq!(bytes[0], VERSION);
        assert_eq!(
            decode_message(m.conv.clone(), 7, &bytes).expect("decode"),
            m
        );
        assert_eq!(decode_count(7, &bytes).expect("count"), 5);
    }

    #[test]
    fn version_1_messages_still_decode() {
        let conv = message().conv;
        let m = decode_message(conv.clone(), 9, V1_MESSAGE).expect("decode");
        assert_eq!(m.conv, conv);
        assert_eq!((m.seq, m.msg_id, m.server_time), (9, 42, 1));
        assert_eq!(m.from_user.as_str(), "alice");
        assert_eq!(m.from_device.as_str(), "d1");
        assert_eq!(m.client_msg_id.as_str(), "c1");
        assert_eq!(m.content, Content::text("hi"));
        assert_eq!(m.kind, EntryKind::Message);
        assert!(m.mentions.is_empty() && !m.mention_all);
        assert_eq!(m.reply_to, 0);
        assert_eq!(m.count, 9, "a version-1 entry's count is its seq");
        assert_eq!(decode_count(9, V1_MESSAGE).expect("count"), 9);
        // Dedup and index values kept their layout and are read at version 1 too.
        let mut dedup = encode_dedup(&conv, 9).expect("encode");
        dedup[0] = V1;
        assert_eq!(decode_dedup(&dedup).expect("decode"), (conv.clone(), 9));
        let mut index = encode_index(3, 4).expect("encode");
        index[0] = V1;
        assert_eq!(decode_index(conv, &index).expect("decode").last_seq, 3);
    }

    #[test]
    fn new_records_roundtrip_and_exist_only_at_version_2() {
        let p = ReadPosition {
            seq: 3,
            count: 2,
            version: 99,
        };
        let r = encode_read(&p).expect("encode");
        assert_eq!(decode_read(&r).expect("decode"), p);
        let m = encode_mention(7).expect("encode");
        assert_eq!(decode_mention(&m).expect("decode"), 7);
        let v = encode_record(b"opaque").expect("encode");
        assert_eq!(decode_record(&v).expect("decode"), b"opaque");
        for mut bytes in [r, m, v] {
            bytes[0] = V1;
            assert!(decode_read(&bytes).is_err());
            assert!(decode_mention(&bytes).is_err());
            assert!(decode_record(&bytes).is_err());
        }
    }

    #[test]
    fn small_records_roundtrip() {
        let conv = message().conv;
        let d = encode_dedup(&conv, 9).expect("encode");
        assert_eq!(decode_dedup(&d).expect("decode"), (conv.clone(), 9));
        let i = encode_index(3, 4).expect("encode");
        let e = decode_index(conv, &i).expect("decode");
        assert_eq!((e.last_seq, e.last_time), (3, 4));
    }

    #[test]
    fn damage_is_corrupt_not_panic() {
        let m = message();
        let good = encode_message(&m).expect("encode");
        let mut bad_version = good.clone();
        bad_version[0] = 99;
        let mut trailing = good.clone();
        trailing.push(0);
        let cases = [
            Vec::new(),
            vec![VERSION],
            bad_version,
            trailing,
            good[..good.len() - 1].to_vec(),
        ];
        for bytes in cases {
            let got = decode_message(m.conv.clone(), 1, &bytes);
            assert!(matches!(got, Err(StoreError::Corrupt(_))), "{bytes:?}");
        }
        // Every truncation fails cleanly.
        for n in 0..good.len() {
            assert!(decode_message(m.conv.clone(), 1, &good[..n]).is_err());
        }
        for n in 0..V1_MESSAGE.len() {
            assert!(decode_message(m.conv.clone(), 1, &V1_MESSAGE[..n]).is_err());
        }
        assert!(decode_count(1, &[]).is_err());
        assert!(decode_count(1, &[VERSION]).is_err());
        assert!(decode_count(1, &[99, 0]).is_err());
        let mut bad_kind = m.clone();
        bad_kind.mentions.clear();
        let mut bytes = encode_message(&bad_kind).expect("encode");
        // The entry kind sits after server_time; with no mentions the record ends with
        // kind, mention count 0, mention_all, reply_to.
        let at = bytes.len() - 4;
        bytes[at] = 9;
        let got = decode_message(m.conv.clone(), 1, &bytes);
        assert!(matches!(got, Err(StoreError::Corrupt(_))), "{got:?}");
        assert!(matches!(
            decode_dedup(&[VERSION, 3, b'x', b'y', b'z', 1]),
            Err(StoreError::Corrupt(_))
        ));
    }
}
