//! Value encoding: private record structs, postcard-encoded behind a version byte.
//!
//! The records are separate from the domain types on purpose: the domain types carry no
//! serde, and the stored format must only change deliberately. Every value starts with
//! [`VERSION`], so a later release can read old values and refuse unknown ones instead of
//! misreading them. Decoding re-validates ids, so a damaged value surfaces as
//! [`StoreError::Corrupt`], never as a panic or a malformed id.

use std::borrow::Cow;
use std::collections::BTreeMap;

use magpie_store::{ConversationEntry, StoreError, StoredMessage};
use magpie_types::{ClientMsgId, Content, ContentType, ConvId, DeviceId, Millis, Seq, UserId};
use serde::{Deserialize, Serialize};

/// Version byte in front of every value written by this release.
const VERSION: u8 = 1;

/// A message. Its conversation and seq are in the key, so they are not repeated here.
#[derive(Serialize, Deserialize)]
struct MessageRecord<'a> {
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

/// Encodes a message for the `messages` keyspace.
pub(crate) fn encode_message(m: &StoredMessage) -> Result<Vec<u8>, StoreError> {
    encode(&MessageRecord {
        msg_id: m.msg_id,
        from_user: Cow::Borrowed(m.from_user.as_str()),
        from_device: Cow::Borrowed(m.from_device.as_str()),
        client_msg_id: Cow::Borrowed(m.client_msg_id.as_str()),
        kind: m.content.kind.code(),
        body: Cow::Borrowed(&m.content.body),
        metadata: Cow::Borrowed(&m.content.metadata),
        server_time: m.server_time,
    })
}

/// Decodes a message stored under `(conv, seq)`.
pub(crate) fn decode_message(
    conv: ConvId,
    seq: Seq,
    bytes: &[u8],
) -> Result<StoredMessage, StoreError> {
    let r: MessageRecord<'_> = decode(bytes, "message")?;
    let kind = ContentType::from_code(u32::from(r.kind))
        .ok_or_else(|| StoreError::Corrupt(format!("unknown content type {}", r.kind)))?;
    Ok(StoredMessage {
        conv,
        seq,
        msg_id: r.msg_id,
        from_user: UserId::new(r.from_user.into_owned()).map_err(corrupt)?,
        from_device: DeviceId::new(r.from_device.into_owned()).map_err(corrupt)?,
        client_msg_id: ClientMsgId::new(r.client_msg_id.into_owned()).map_err(corrupt)?,
        content: Content {
            kind,
            body: r.body.into_owned(),
            metadata: r.metadata.into_owned(),
        },
        server_time: r.server_time,
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
    let r: DedupRecord<'_> = decode(bytes, "dedup")?;
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
    let r: IndexRecord = decode(bytes, "index")?;
    Ok(ConversationEntry {
        conv,
        last_seq: r.last_seq,
        last_time: r.last_time,
    })
}

fn encode<T: Serialize>(record: &T) -> Result<Vec<u8>, StoreError> {
    postcard::to_extend(record, vec![VERSION])
        .map_err(|e| StoreError::Backend(format!("encoding a record: {e}")))
}

fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8], what: &str) -> Result<T, StoreError> {
    let (&version, rest) = bytes
        .split_first()
        .ok_or_else(|| StoreError::Corrupt(format!("empty {what} record")))?;
    if version != VERSION {
        return Err(StoreError::Corrupt(format!(
            "{what} record has unknown version {version}"
        )));
    }
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

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("stored id: {e}"))
}

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
        assert!(matches!(
            decode_dedup(&[VERSION, 3, b'x', b'y', b'z', 1]),
            Err(StoreError::Corrupt(_))
        ));
    }
}
