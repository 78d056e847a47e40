//! What the application knows about one conversation, and the per-user requests on it:
//! [`ConversationInfo`], [`ConversationSettings`], [`ReadResult`], [`ReadCount`].
//!
//! Wire types are converted here, at the edge (see [`event`](crate::event) for the rule).

use magpie_proto::pb;
use magpie_types::{ConvId, ConvKind, Millis, Seq, UserId};

use crate::Message;

/// One of the user's conversations: the server's list entry, kept up to date locally by the
/// messages delivered, read positions and settings (see
/// [`Client::conversations_snapshot`](crate::Client::conversations_snapshot)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConversationInfo {
    /// The conversation.
    pub conversation: ConvId,
    /// What kind of conversation it is (1:1 with its two users, or a group).
    pub kind: ConvKind,
    /// The last `seq` this user may see (for a former group member, where their membership
    /// ended).
    pub last_seq: Seq,
    /// When its last entry was stored (Unix milliseconds): the conversation's last activity.
    pub last_time: Millis,
    /// For a 1:1 conversation, the other user.
    pub peer: Option<UserId>,
    /// Unread messages: messages after `read_seq` from other users (group events, recalls,
    /// edits, reactions and the user's own messages never count).
    pub unread: u64,
    /// Everything up to this `seq` is read by this user (on any of their devices).
    pub read_seq: Seq,
    /// An unread message mentions this user (or everyone).
    pub mentioned: bool,
    /// Pinned to the top of the list by this user.
    pub pinned: bool,
    /// Muted by this user: its unread messages do not count towards the badge.
    pub muted: bool,
    /// Hidden ("deleted for me") by this user until a newer message arrives.
    pub hidden: bool,
    /// The last message (not group event, recall, edit or reaction) visible to this user, if
    /// known; a later recall or edit of it is applied ([`Message::recalled`],
    /// [`Message::edited`]).
    pub last_message: Option<Message>,
    /// For a 1:1 conversation, how far the other user has read (read receipts).
    pub peer_read_seq: Seq,
    /// For a group, its name.
    pub name: Option<String>,
    /// For a group, whether the user is a member now (false after leaving, being kicked or
    /// the group being dismissed). Always true for a 1:1 conversation.
    pub active: bool,
    /// The first `seq` this user may see (where they first joined a group; 1 or 0 for 1:1).
    pub first_seq: Seq,
}

impl ConversationInfo {
    /// A conversation the SDK has just heard of (its first delivered entry), before any list
    /// tells more.
    pub(crate) fn new(conversation: ConvId, me: Option<&UserId>) -> Self {
        Self {
            kind: conversation.kind(),
            peer: me.and_then(|me| conversation.peer_of(me)),
            conversation,
            last_seq: 0,
            last_time: 0,
            unread: 0,
            read_seq: 0,
            mentioned: false,
            pinned: false,
            muted: false,
            hidden: false,
            last_message: None,
            peer_read_seq: 0,
            name: None,
            active: true,
            first_seq: 0,
        }
    }

    /// Whether this is a group conversation.
    pub fn is_group(&self) -> bool {
        matches!(self.kind, ConvKind::Group { .. })
    }

    pub(crate) fn from_pb(c: pb::ConversationInfo) -> Result<Self, String> {
        let conversation = ConvId::parse(&c.conversation)
            .map_err(|e| format!("conversation {:?}: {e}", c.conversation))?;
        let is_group = !conversation.is_direct();
        // A malformed last message costs the preview, not the conversation.
        let last_message = c.last_message.and_then(|m| {
            Message::from_pb(m)
                .inspect_err(|e| tracing::debug!("ignoring a listed last message: {e}"))
                .ok()
        });
        Ok(Self {
            kind: conversation.kind(),
            conversation,
            last_seq: c.last_seq,
            last_time: c.last_time_ms,
            peer: UserId::new(c.peer).ok(),
            unread: c.unread,
            read_seq: c.read_seq,
            mentioned: c.mentioned,
            pinned: c.pinned,
            muted: c.muted,
            hidden: c.hidden,
            last_message,
            peer_read_seq: c.peer_read_seq,
            name: (!c.name.is_empty()).then_some(c.name),
            active: c.active || !is_group,
            first_seq: c.first_seq,
        })
    }
}

/// Changes to the user's own settings of a conversation; `None` leaves a setting unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConversationSettings {
    /// Pin to (or unpin from) the top of the list.
    pub pinned: Option<bool>,
    /// Mute (its unread no longer counts towards the badge) or unmute.
    pub muted: Option<bool>,
    /// Hide ("delete conversation for me"; a newer message shows it again) or show.
    pub hidden: Option<bool>,
}

impl ConversationSettings {
    /// Sets [`ConversationSettings::pinned`].
    pub fn pinned(mut self, on: bool) -> Self {
        self.pinned = Some(on);
        self
    }

    /// Sets [`ConversationSettings::muted`].
    pub fn muted(mut self, on: bool) -> Self {
        self.muted = Some(on);
        self
    }

    /// Sets [`ConversationSettings::hidden`].
    pub fn hidden(mut self, on: bool) -> Self {
        self.hidden = Some(on);
        self
    }

    pub(crate) fn to_pb(&self, conversation: &ConvId) -> pb::ConversationSettings {
        pb::ConversationSettings {
            conversation: conversation.as_str().to_owned(),
            pinned: self.pinned,
            muted: self.muted,
            hidden: self.hidden,
        }
    }
}

/// The server's answer to [`Client::mark_read`](crate::Client::mark_read).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReadResult {
    /// The conversation.
    pub conversation: ConvId,
    /// The read position now (positions only move forward: it may be beyond the one asked
    /// for).
    pub read_seq: Seq,
    /// The conversation's unread messages afterwards.
    pub unread: u64,
    /// The badge afterwards, as the server counts it.
    pub total_unread: u64,
}

impl ReadResult {
    pub(crate) fn from_pb(r: pb::ReadResult) -> Result<Self, String> {
        Ok(Self {
            conversation: ConvId::parse(&r.conversation)
                .map_err(|e| format!("conversation {:?}: {e}", r.conversation))?,
            read_seq: r.read_seq,
            unread: r.unread,
            total_unread: r.total_unread,
        })
    }
}

/// How many members have read one message of a group (see
/// [`Client::read_counts`](crate::Client::read_counts)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadCount {
    /// The message.
    pub seq: Seq,
    /// Members whose read position is at or beyond it.
    pub read: u64,
    /// Members who could read it (members at its `seq`, the sender excluded).
    pub members: u64,
}

/// Pairs the answer's counts with the seqs asked for; the lists must match.
pub(crate) fn read_counts_from_pb(
    seqs: &[Seq],
    r: pb::ReadCountsResult,
) -> Result<Vec<ReadCount>, String> {
    if r.read.len() != seqs.len() || r.members.len() != seqs.len() {
        return Err(format!(
            "read counts for {} seqs answered with {} / {} counts",
            seqs.len(),
            r.read.len(),
            r.members.len()
        ));
    }
    Ok(seqs
        .iter()
        .zip(r.read)
        .zip(r.members)
        .map(|((&seq, read), members)| ReadCount { seq, read, members })
        .collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn listed_conversations_parse() {
        let c = ConversationInfo::from_pb(pb::ConversationInfo {
            conversation: "g:team".into(),
            last_seq: 9,
            unread: 2,
            name: "Team".into(),
            active: false,
            last_message: Some(pb::Message {
                conversation: "g:team".into(),
                seq: 0, // malformed: dropped, the conversation kept
                ..Default::default()
            }),
            ..Default::default()
        })
        .unwrap();
        assert!(c.is_group());
        assert_eq!(c.name.as_deref(), Some("Team"));
        assert!(!c.active);
        assert_eq!(c.last_message, None);
        let d = ConversationInfo::from_pb(pb::ConversationInfo {
            conversation: "p2p:a:b".into(),
            peer: "b".into(),
            ..Default::default()
        })
        .unwrap();
        assert!(d.active, "1:1 conversations are always active");
        assert_eq!(d.name, None);
        assert!(ConversationInfo::from_pb(pb::ConversationInfo::default()).is_err());
    }

    #[test]
    fn read_counts_must_match_the_question() {
        let answer = pb::ReadCountsResult {
            conversation: "g:x".into(),
            read: vec![1, 2],
            members: vec![3, 3],
        };
        let counts = read_counts_from_pb(&[5, 6], answer.clone()).unwrap();
        assert_eq!(
            counts[1],
            ReadCount {
                seq: 6,
                read: 2,
                members: 3
            }
        );
        assert!(read_counts_from_pb(&[5], answer).is_err());
    }
}
