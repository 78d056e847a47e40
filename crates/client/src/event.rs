//! What the SDK hands to the application: events, messages, acks, pages, connection state.
//!
//! Wire types are converted here, at the edge; a value that does not parse is refused with a
//! reason (never a panic), and the caller decides what that costs.

use std::time::Duration;

use magpie_proto::convert::content_from_pb;
use magpie_proto::pb;
use magpie_types::{
    AppId, ClientMsgId, Content, ContentType, ConvId, DeviceId, Millis, MsgId, RoomId, Seq, UserId,
};

use crate::{
    ClientError, ConversationInfo, EntryKind, GroupEvent, RoomMessage, RoomNoticeKind, SocialKind,
    UserPresence,
};

/// Something the application should know about, in the order it happened.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// The next message of a conversation. Per conversation, log entries arrive exactly once
    /// and in `seq` order (own messages sent from this client included); the only `seq`s
    /// skipped are those the user may not see (before joining a group, between leaving and
    /// rejoining). A group event entry arrives as [`Event::GroupEvent`] instead, and a
    /// recall, edit or reaction entry as [`Event::Recalled`], [`Event::Edited`] or
    /// [`Event::Reaction`].
    Message(Message),
    /// A group event entry (join, leave, rename, ...), parsed, in its place among the
    /// conversation's messages: it takes the place of [`Event::Message`] for that `seq`, so
    /// that an application listing messages does not show raw JSON. An entry marked as a
    /// group event whose JSON does not parse is delivered as [`Event::Message`] (with
    /// [`Message::kind`] [`EntryKind::GroupEvent`]) so that nothing is lost.
    GroupEvent(GroupEvent),
    /// A recall entry, in its place among the conversation's entries (instead of
    /// [`Event::Message`] for `entry_seq`): the message at `seq` was recalled and should be
    /// shown as such; the server no longer serves its content (history and pulls mark it
    /// [`Message::recalled`]). Like every entry that acts on a message, one that does not
    /// parse arrives as [`Event::Message`] with its [`Message::kind`].
    Recalled {
        /// The conversation.
        conversation: ConvId,
        /// The message recalled.
        seq: Seq,
        /// Who recalled it (its sender, or a group admin).
        by: UserId,
        /// The recall entry's own `seq` (the conversation's cursor moves past it).
        entry_seq: Seq,
    },
    /// An edit entry (instead of [`Event::Message`] for `entry_seq`): the message at `seq`
    /// now carries `content` (history and pulls serve it so, marked [`Message::edited`]).
    Edited {
        /// The conversation.
        conversation: ConvId,
        /// The message edited (by its sender).
        seq: Seq,
        /// Its new content.
        content: Content,
        /// The edit entry's own `seq`.
        entry_seq: Seq,
    },
    /// A reaction entry (instead of [`Event::Message`] for `entry_seq`): `user` added (or,
    /// with `add` false, took back) `emoji` on the message at `seq`.
    Reaction {
        /// The conversation.
        conversation: ConvId,
        /// The message reacted to.
        seq: Seq,
        /// Who reacted.
        user: UserId,
        /// The reaction.
        emoji: String,
        /// Added (`true`) or removed.
        add: bool,
        /// The reaction entry's own `seq`.
        entry_seq: Seq,
    },
    /// The user deleted these messages of a conversation for themselves on another device:
    /// hide them. The server no longer serves them to this user (they are skipped by pulls
    /// and history); the log itself is unchanged for everyone else.
    MessagesDeleted {
        /// The conversation.
        conversation: ConvId,
        /// The messages deleted.
        seqs: Vec<Seq>,
    },
    /// Another member of a conversation started (`typing`) or stopped typing. Not stored
    /// and not ordered with the log: show it until `typing` is false, or for a few seconds.
    Typing {
        /// The conversation.
        conversation: ConvId,
        /// Who is typing.
        user: UserId,
        /// Started (`true`) or stopped.
        typing: bool,
    },
    /// A user went online or offline: one the connection subscribed to (see
    /// [`Client::subscribe_presence`](crate::Client::subscribe_presence)) or a friend. Also
    /// sent for every subscribed user after a reconnect re-subscribes, since presence may
    /// have changed while the connection was down.
    Presence(UserPresence),
    /// Friends: a request arrived, was accepted or declined, or a friendship ended.
    Social {
        /// What happened.
        kind: SocialKind,
        /// The other user.
        user: UserId,
        /// The request's message (for [`SocialKind::FriendRequest`]; else usually empty).
        message: String,
    },
    /// The local state of a conversation changed (a message arrived, it was read here or on
    /// another device, its settings changed, a sync listed it): its new state. Also readable
    /// at any time with [`Client::conversations_snapshot`](crate::Client::conversations_snapshot).
    ConversationUpdated(ConversationInfo),
    /// The unread badge changed: unread summed over every conversation that is not muted
    /// (always equal to that sum over [`Client::conversations_snapshot`](crate::Client::conversations_snapshot)).
    TotalUnread(u64),
    /// Another user read a conversation up to `read_seq` (a read receipt; for 1:1
    /// conversations the server sends these to the other party).
    ReadReceipt {
        /// The conversation.
        conversation: ConvId,
        /// Who read it.
        user: UserId,
        /// Everything up to this `seq` is read.
        read_seq: Seq,
    },
    /// A message of a live room the client has joined. Per room, HIGH messages (those with
    /// a [`RoomMessage::seq`]) arrive exactly once and in `seq` order — across duplicates,
    /// reordering and reconnects — unless an [`Event::RoomGap`] says some were lost; NORMAL
    /// and LOW ones arrive as the server sends them (in the room's order, but the server may
    /// drop some under load). Room messages are not ordered with conversations' events.
    Room(RoomMessage),
    /// HIGH messages `from_seq..=to_seq` of a room will never arrive: they were no longer in
    /// the room's short log when the client asked for them (after a long disconnection, or
    /// a gap the server's retransmissions did not fill). Later ones follow in order.
    RoomGap {
        /// The room.
        room: RoomId,
        /// The first seq lost.
        from_seq: Seq,
        /// The last seq lost.
        to_seq: Seq,
    },
    /// A moderator acted on the user in a room, or the room closed. After
    /// [`RoomNoticeKind::Kicked`], [`RoomNoticeKind::Banned`] and [`RoomNoticeKind::Closed`]
    /// the connection is out of the room and the client forgets it (no rejoin after a
    /// reconnect).
    RoomNotice {
        /// The room.
        room: RoomId,
        /// What happened.
        kind: RoomNoticeKind,
        /// Who did it, when the server says.
        by: Option<UserId>,
        /// For [`RoomNoticeKind::Muted`]: until when (Unix milliseconds).
        until_ms: Option<Millis>,
    },
    /// After a reconnect the client could not join a room again (it was closed, the user
    /// was banned meanwhile, ...): the client has forgotten the room.
    RoomRejoinFailed {
        /// The room.
        room: RoomId,
        /// The server's refusal.
        error: ClientError,
    },
    /// The connection changed state.
    Connection(ConnectionState),
    /// The client caught up with the server after a (re)connect: every conversation's
    /// messages up to the server's last `seq` at sync time have been delivered.
    SyncComplete,
    /// A fatal error: the server refused the token (expired, invalid) or the protocol
    /// version — unless the token provider yields a new token, the client then closes — or
    /// the server said to go away without reconnecting ([`ClientError::GoneAway`]).
    Error(ClientError),
}

/// A stored message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The conversation.
    pub conversation: ConvId,
    /// Position in the conversation (from 1, no gaps).
    pub seq: Seq,
    /// The server's message id.
    pub msg_id: MsgId,
    /// The sender.
    pub from: UserId,
    /// The sender's device, when the server says.
    pub from_device: Option<DeviceId>,
    /// The sender's id for the message, when there is one.
    pub client_msg_id: Option<ClientMsgId>,
    /// What the message carries. Content this SDK cannot interpret (a content type added by a
    /// newer server, text that is not UTF-8) is delivered as [`ContentType::Custom`] with the
    /// raw body.
    pub content: Content,
    /// When the server stored it (Unix milliseconds).
    pub server_time: Millis,
    /// What the entry is: a message, or (in history pages, or when it did not parse) a group
    /// event, a recall, an edit or a reaction (see [`Message::op_event`]).
    pub kind: EntryKind,
    /// Users the message mentions (groups).
    pub mentions: Vec<UserId>,
    /// The message mentions everyone (`@all`).
    pub mention_all: bool,
    /// The `seq` of the earlier message of the same conversation this one replies to.
    pub reply_to: Option<Seq>,
    /// For a recall, edit or reaction entry: the `seq` of the message acted on.
    pub target: Option<Seq>,
    /// The message was recalled: its content is empty (the server no longer serves it).
    pub recalled: bool,
    /// The message was edited: its content is the latest edit.
    pub edited: bool,
}

impl Message {
    /// The content as text, for text messages.
    pub fn text(&self) -> Option<&str> {
        self.content.as_text()
    }

    /// Whether the message mentions `user` (by name, or through `@all`).
    pub fn mentions_user(&self, user: &UserId) -> bool {
        self.mention_all || self.mentions.contains(user)
    }

    /// Parses a wire message.
    pub(crate) fn from_pb(m: pb::Message) -> Result<Self, String> {
        let conversation = ConvId::parse(&m.conversation)
            .map_err(|e| format!("conversation {:?}: {e}", m.conversation))?;
        if m.seq == 0 {
            return Err(format!("message of {conversation} with seq 0"));
        }
        let kind = entry_kind(m.kind)?;
        let from = UserId::new(m.from_user).map_err(|e| format!("from_user: {e}"))?;
        Ok(Self {
            conversation,
            seq: m.seq,
            msg_id: m.msg_id,
            from,
            from_device: DeviceId::new(m.from_device).ok(),
            client_msg_id: ClientMsgId::new(m.client_msg_id).ok(),
            content: m.content.map(content_lenient).unwrap_or_else(empty_custom),
            server_time: m.server_time_ms,
            kind,
            // A malformed mention is dropped rather than the message.
            mentions: m
                .mentions
                .into_iter()
                .filter_map(|u| UserId::new(u).ok())
                .collect(),
            mention_all: m.mention_all,
            reply_to: (m.reply_to != 0).then_some(m.reply_to),
            target: (m.target != 0).then_some(m.target),
            recalled: m.recalled,
            edited: m.edited,
        })
    }
}

/// The entry kind of a wire code; a kind this SDK does not know is refused (it is no
/// message, and the SDK cannot apply it).
pub(crate) fn entry_kind(code: i32) -> Result<EntryKind, String> {
    u32::try_from(code)
        .ok()
        .and_then(EntryKind::from_code)
        .ok_or_else(|| format!("unknown entry kind {code}"))
}

/// The server's acknowledgement of a send: the message is durably stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendAck {
    /// The client message id the send carried.
    pub client_msg_id: ClientMsgId,
    /// The server's message id.
    pub msg_id: MsgId,
    /// The conversation it was stored in.
    pub conversation: ConvId,
    /// Its position in the conversation.
    pub seq: Seq,
    /// When the server stored it (Unix milliseconds).
    pub server_time: Millis,
    /// True when the server had already stored this message (an earlier attempt of the same
    /// send succeeded); the ack is the original one.
    pub duplicate: bool,
}

/// A page of history, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPage {
    /// Messages in descending `seq` order.
    pub messages: Vec<Message>,
    /// Older messages exist: ask again with `before_seq` = the last message's `seq`.
    pub has_more: bool,
}

/// The state of the client's connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionState {
    /// A connection attempt is under way (`attempt` counts from 1 since the last success).
    Connecting {
        /// Attempts since the last successful connection.
        attempt: u32,
    },
    /// Authenticated; the session's parameters.
    Connected(SessionInfo),
    /// The connection was lost or could not be made.
    Disconnected {
        /// Why.
        reason: String,
        /// When the next attempt starts, if there will be one.
        retry_in: Option<Duration>,
    },
    /// The client is closed and will not reconnect.
    Closed,
}

/// What the server said about the session in `HelloOk`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The application (tenant).
    pub app_id: AppId,
    /// The authenticated user.
    pub user_id: UserId,
    /// This device.
    pub device_id: DeviceId,
    /// The server's clock at hello (Unix milliseconds).
    pub server_time: Millis,
    /// How often the client pings.
    pub heartbeat_interval: Duration,
    /// Largest message content the server accepts, in bytes (0 = not announced).
    pub max_message_bytes: u32,
}

/// Heartbeat used when the server announces none.
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(30);
/// Smallest heartbeat honoured, so that a bogus value cannot make the client spin.
const MIN_HEARTBEAT: Duration = Duration::from_millis(100);

impl SessionInfo {
    pub(crate) fn from_pb(h: pb::HelloOk) -> Result<Self, String> {
        let heartbeat_interval = match h.heartbeat_interval_ms {
            0 => DEFAULT_HEARTBEAT,
            ms => Duration::from_millis(u64::from(ms)).max(MIN_HEARTBEAT),
        };
        Ok(Self {
            app_id: AppId::new(h.app_id).map_err(|e| e.to_string())?,
            user_id: UserId::new(h.user_id).map_err(|e| e.to_string())?,
            device_id: DeviceId::new(h.device_id).map_err(|e| e.to_string())?,
            server_time: h.server_time_ms,
            heartbeat_interval,
            max_message_bytes: h.max_message_bytes,
        })
    }
}

/// Wire content, falling back to [`ContentType::Custom`] for what this SDK cannot interpret.
pub(crate) fn content_lenient(c: pb::Content) -> Content {
    let fallback = Content {
        kind: ContentType::Custom,
        body: c.body.to_vec(),
        metadata: c.metadata.clone(),
    };
    content_from_pb(c).unwrap_or(fallback)
}

pub(crate) fn empty_custom() -> Content {
    Content {
        kind: ContentType::Custom,
        body: Vec::new(),
        metadata: Default::default(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use magpie_proto::convert::text_content;

    fn wire(conv: &str, seq: u64, from: &str) -> pb::Message {
        pb::Message {
            msg_id: 7,
            conversation: conv.into(),
            seq,
            from_user: from.into(),
            from_device: String::new(),
            client_msg_id: "c1".into(),
            content: Some(text_content("hi")),
            server_time_ms: 5,
            mentions: vec!["b".into(), "not a user!".into()],
            reply_to: 0,
            ..Default::default()
        }
    }

    #[test]
    fn messages_parse_or_are_refused() {
        let m = Message::from_pb(wire("p2p:a:b", 1, "a")).unwrap();
        assert_eq!(m.text(), Some("hi"));
        assert_eq!(m.from_device, None);
        assert_eq!(m.kind, EntryKind::Message);
        assert_eq!(m.mentions, [UserId::new("b").unwrap()]);
        assert!(m.mentions_user(&UserId::new("b").unwrap()));
        assert_eq!(m.reply_to, None);
        assert_eq!((m.target, m.recalled, m.edited), (None, false, false));
        let mut w = wire("p2p:a:b", 2, "a");
        w.kind = pb::EntryKind::Recall as i32;
        w.target = 1;
        let recall = Message::from_pb(w).unwrap();
        assert_eq!((recall.kind, recall.target), (EntryKind::Recall, Some(1)));
        let mut w = wire("p2p:a:b", 1, "a");
        w.recalled = true;
        w.content = None;
        let gone = Message::from_pb(w).unwrap();
        assert!(gone.recalled && gone.content.body.is_empty());
        let mut w = wire("p2p:a:b", 1, "a");
        w.kind = 7;
        assert!(Message::from_pb(w).is_err(), "unknown kinds are refused");
        assert!(Message::from_pb(wire("nope", 1, "a")).is_err());
        assert!(Message::from_pb(wire("p2p:a:b", 0, "a")).is_err());
        assert!(Message::from_pb(wire("p2p:a:b", 1, "")).is_err());
    }

    #[test]
    fn entry_kinds_match_the_wire() {
        let wire = [
            (EntryKind::Message, pb::EntryKind::Message),
            (EntryKind::GroupEvent, pb::EntryKind::GroupEvent),
            (EntryKind::Recall, pb::EntryKind::Recall),
            (EntryKind::Edit, pb::EntryKind::Edit),
            (EntryKind::Reaction, pb::EntryKind::Reaction),
        ];
        for (kind, w) in wire {
            assert_eq!(entry_kind(w as i32), Ok(kind));
            assert_eq!(kind.counts_as_unread(), kind == EntryKind::Message);
        }
        assert!(entry_kind(-1).is_err());
    }

    #[test]
    fn unknown_content_becomes_custom() {
        let mut w = wire("p2p:a:b", 1, "a");
        w.content = Some(pb::Content {
            r#type: 42,
            body: bytes::Bytes::from_static(b"x"),
            metadata: Default::default(),
        });
        let m = Message::from_pb(w).unwrap();
        assert_eq!(m.content.kind, ContentType::Custom);
        assert_eq!(m.content.body, b"x");
    }
}
