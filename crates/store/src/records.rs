//! The typed records kept in the [`crate::RecordStore`], with their keys and encoding.
//!
//! Every value is a version byte followed by the postcard encoding of the record, so the
//! stored format changes only deliberately and a later release can refuse (not misread)
//! values it does not know. Keys join ids with `:`, which no id may contain, so
//! `"g1:"` is a prefix of the members of group `g1` and never of group `g10`.

use magpie_types::{ConvId, GroupId, JoinPolicy, Role, RoomId, Seq, UserId};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::model::{RecordWrite, StoreError, Table};

/// Version byte in front of every record written by this release.
const VERSION: u8 = 1;

/// A group's profile and settings.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GroupRecord {
    /// Display name.
    pub name: String,
    /// Avatar URL.
    pub avatar_url: String,
    /// The notice (announcement).
    pub notice: String,
    /// Free-form JSON set by the app.
    pub custom: String,
    /// The owner.
    pub owner: String,
    /// Who may join: a [`JoinPolicy`] code.
    pub join_policy: u8,
    /// Whether ordinary members may add people.
    pub members_can_invite: bool,
    /// Only admins may speak.
    pub muted_all: bool,
    /// Dismissed: read-only history, no more changes or messages.
    pub dismissed: bool,
    /// A super group (the large member limit applies).
    pub super_group: bool,
    /// Current members.
    pub member_count: u32,
    /// Creation time, Unix ms.
    pub created_ms: u64,
}

/// One user's membership of a group, current or past.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MemberRecord {
    /// Role while a member: a [`Role`] code.
    pub role: u8,
    /// Seq ranges the user may see, ascending and disjoint. Each starts at the seq of the
    /// join event; a closed one ends at the seq of the leave or kick event (inclusive, so
    /// the leaver's devices learn they left); the current one, if any, ends at `Seq::MAX`.
    pub intervals: Vec<(Seq, Seq)>,
    /// Muted until this Unix time in ms (0 = not muted).
    pub muted_until_ms: u64,
}

impl GroupRecord {
    /// The join policy (an unknown code reads as the strictest, invite-only).
    pub fn policy(&self) -> JoinPolicy {
        JoinPolicy::from_code(u32::from(self.join_policy)).unwrap_or(JoinPolicy::Invite)
    }
}

impl MemberRecord {
    /// The role (an unknown code reads as an ordinary member).
    pub fn role(&self) -> Role {
        Role::from_code(u32::from(self.role)).unwrap_or_default()
    }

    /// Whether the user is a member now.
    pub fn is_active(&self) -> bool {
        self.intervals.last().is_some_and(|&(_, to)| to == Seq::MAX)
    }

    /// The seq of the current (or last) join.
    pub fn joined_seq(&self) -> Seq {
        self.intervals.last().map_or(0, |&(from, _)| from)
    }
}

/// A user's settings of one conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ConvPrefs {
    /// Pinned to the top of the list.
    pub pinned: bool,
    /// Muted: no notifications, and not counted in the badge.
    pub muted: bool,
    /// Hidden while the conversation's last seq is at most this (0 = not hidden): "delete
    /// for me" until something new arrives.
    pub hidden_upto: Seq,
    /// Version stamp of the last change (for incremental sync).
    pub version: u64,
}

/// A pending request to join a group.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct JoinRequestRecord {
    /// When it was made, Unix ms.
    pub at_ms: u64,
}

/// What happened to a message after it was stored: the log keeps the original entry and
/// the RECALL / EDIT entries; this record lets a page of messages be served as they stand
/// now without replaying the log.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MessageStateRecord {
    /// Recalled: the content is no longer served.
    pub recalled: bool,
    /// The latest edit: content type code, body, metadata.
    pub edited: Option<(u8, Vec<u8>, std::collections::BTreeMap<String, String>)>,
}

/// Seqs a user deleted for themselves in one conversation.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DeletedRecord {
    /// The deleted seqs.
    pub seqs: std::collections::BTreeSet<Seq>,
}

/// A user's profile.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ProfileRecord {
    /// Display name.
    pub nickname: String,
    /// Avatar URL.
    pub avatar_url: String,
    /// Free-form JSON set by the app.
    pub custom: String,
}

/// A friendship (stored under both users) or a block, with when it began.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SinceRecord {
    /// Unix ms.
    pub since_ms: u64,
}

/// A pending friend request.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FriendRequestRecord {
    /// The requester's note.
    pub message: String,
    /// Unix ms.
    pub at_ms: u64,
}

/// A live room: what outlives the connections in it. Membership is presence and is never
/// stored; the reliable messages live in memory only (see `magpie_core::room::log`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RoomRecord {
    /// Display name.
    pub name: String,
    /// The owner.
    pub owner: String,
    /// Admins other than the owner.
    pub admins: Vec<String>,
    /// Closed: nobody may join or send.
    pub closed: bool,
    /// Downstream budget per connection, msgs/s (0: the app's default).
    pub budget_per_s: u32,
    /// Slow mode interval, ms (0: off).
    pub slow_mode_ms: u32,
    /// Room-wide send limit, msgs/s (0: the server's default).
    pub send_rate_per_s: u32,
    /// Only admins may speak.
    pub mute_all: bool,
    /// Members may send high-priority messages.
    pub members_may_send_high: bool,
    /// Creation time, Unix ms.
    pub created_ms: u64,
}

/// One user's standing in a live room.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RoomUserRecord {
    /// Banned: every join is refused.
    pub banned: bool,
    /// Muted until this Unix ms (0: not muted).
    pub muted_until_ms: u64,
}

/// A user account's standing, written by the server API. A user with no record is an
/// ordinary, enabled user (users also come into being at their first login).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AccountRecord {
    /// Created through the API at this Unix ms (0: came into being at a login).
    pub created_ms: u64,
    /// Disabled: logins are refused and open connections closed; data is kept.
    pub disabled: bool,
    /// Deleted: like disabled, and the profile is gone; messages already sent stay in
    /// their conversations.
    pub deleted: bool,
    /// Tokens issued before this Unix ms are refused (0: none revoked).
    pub tokens_valid_from_ms: u64,
    /// Per device: tokens for that device issued before this Unix ms are refused.
    pub device_tokens_valid_from_ms: Vec<(String, u64)>,
}

impl AccountRecord {
    /// Whether a token for `device` issued at `issued_ms` is still honoured.
    pub fn token_valid(&self, device: &str, issued_ms: u64) -> bool {
        if self.disabled || self.deleted || issued_ms < self.tokens_valid_from_ms {
            return false;
        }
        self.device_tokens_valid_from_ms
            .iter()
            .all(|(d, from)| d != device || issued_ms >= *from)
    }
}

/// The key of a live room.
pub fn room_key(room: &RoomId) -> String {
    room.as_str().to_owned()
}

/// The key of a user's standing in a room.
pub fn room_user_key(room: &RoomId, user: &UserId) -> String {
    format!("{room}:{user}")
}

/// The prefix of every user standing in `room`.
pub fn room_user_prefix(room: &RoomId) -> String {
    format!("{room}:")
}

/// The key of a message's state: `conv:seq`, the seq zero-padded so keys sort by seq.
pub fn message_state_key(conv: &ConvId, seq: Seq) -> String {
    format!("{conv}:{seq:020}")
}

/// The key of a pair of users (`a:b`): friendships, friend requests (`to:from`), blocks.
pub fn pair_key(a: &UserId, b: &UserId) -> String {
    format!("{a}:{b}")
}

/// The prefix of every pair key whose first user is `a`.
pub fn pair_prefix(a: &UserId) -> String {
    format!("{a}:")
}

/// The key of a group.
pub fn group_key(group: &GroupId) -> String {
    group.as_str().to_owned()
}

/// The key of a member; `member_prefix(group)` is a prefix of every member of the group.
pub fn member_key(group: &GroupId, user: &UserId) -> String {
    format!("{group}:{user}")
}

/// The prefix of every member key of `group`.
pub fn member_prefix(group: &GroupId) -> String {
    format!("{group}:")
}

/// The key of a user's settings of a conversation.
pub fn prefs_key(user: &UserId, conv: &ConvId) -> String {
    format!("{user}:{conv}")
}

/// The user named by a `group:user` key.
pub fn user_of_key(key: &str) -> Result<UserId, StoreError> {
    let user = key
        .rsplit(':')
        .next()
        .ok_or_else(|| StoreError::Corrupt(format!("record key {key:?} has no user")))?;
    UserId::new(user).map_err(|e| StoreError::Corrupt(format!("record key {key:?}: {e}")))
}

/// Encodes a record.
pub fn encode<T: Serialize>(record: &T) -> Result<Vec<u8>, StoreError> {
    let mut out = vec![VERSION];
    let body = postcard::to_allocvec(record)
        .map_err(|e| StoreError::Backend(format!("encoding a record: {e}")))?;
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decodes a record written by [`encode`].
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    match bytes.split_first() {
        Some((&VERSION, body)) => {
            postcard::from_bytes(body).map_err(|e| StoreError::Corrupt(format!("record: {e}")))
        }
        Some((v, _)) => Err(StoreError::Corrupt(format!("unknown record version {v}"))),
        None => Err(StoreError::Corrupt("empty record".into())),
    }
}

/// A write of `record` at `key`.
pub fn put<T: Serialize>(table: Table, key: String, record: &T) -> Result<RecordWrite, StoreError> {
    Ok(RecordWrite {
        table,
        key,
        value: Some(encode(record)?),
    })
}

/// A deletion of `key`.
pub fn delete(table: Table, key: String) -> RecordWrite {
    RecordWrite {
        table,
        key,
        value: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_roundtrip_and_refuse_garbage() {
        let m = MemberRecord {
            role: Role::Admin.code(),
            intervals: vec![(3, 9), (12, Seq::MAX)],
            muted_until_ms: 5,
        };
        assert_eq!(decode::<MemberRecord>(&encode(&m).unwrap()).unwrap(), m);
        assert!(m.is_active());
        assert_eq!(m.joined_seq(), 12);
        assert!(decode::<MemberRecord>(&[]).is_err());
        assert!(decode::<MemberRecord>(&[9, 1, 2]).is_err());
        assert!(decode::<GroupRecord>(&[VERSION, 0xff]).is_err());
    }

    #[test]
    fn member_keys_do_not_cross_groups() {
        let g1 = GroupId::new("g1").unwrap();
        let g10 = GroupId::new("g10").unwrap();
        let u = UserId::new("u").unwrap();
        assert!(member_key(&g1, &u).starts_with(&member_prefix(&g1)));
        assert!(!member_key(&g10, &u).starts_with(&member_prefix(&g1)));
        assert_eq!(user_of_key(&member_key(&g1, &u)).unwrap(), u);
    }
}
