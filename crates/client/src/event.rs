//! What the SDK hands to the application: events, messages, acks, pages, connection state.
//!
//! Wire types are converted here, at the edge; a value that does not parse is refused with a
//! reason (never a panic), and the caller decides what that costs.

use std::time::Duration;

use magpie_proto::convert::content_from_pb;
use magpie_proto::pb;
use magpie_types::{
    AppId, ClientMsgId, Content, ContentType, ConvId, DeviceId, Millis, MsgId, Seq, UserId,
};

use crate::ClientError;

/// Something the application should know about, in the order it happened.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// The next message of a conversation. Per conversation, messages arrive exactly once and
    /// in `seq` order without gaps (own messages sent from this client included).
    Message(Message),
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
}

impl Message {
    /// The content as text, for text messages.
    pub fn text(&self) -> Option<&str> {
        self.content.as_text()
    }

    /// Parses a wire message.
    pub(crate) fn from_pb(m: pb::Message) -> Result<Self, String> {
        let conversation = ConvId::parse(&m.conversation)
            .map_err(|e| format!("conversation {:?}: {e}", m.conversation))?;
        if m.seq == 0 {
            return Err(format!("message of {conversation} with seq 0"));
        }
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
        })
    }
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

/// One of the user's conversations, as listed by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationInfo {
    /// The conversation.
    pub conversation: ConvId,
    /// The server's last `seq` in it.
    pub last_seq: Seq,
    /// When its last message was stored (Unix milliseconds).
    pub last_time: Millis,
    /// For a 1:1 conversation, the other user.
    pub peer: Option<UserId>,
}

impl ConversationInfo {
    pub(crate) fn from_pb(c: pb::ConversationInfo) -> Result<Self, String> {
        Ok(Self {
            conversation: ConvId::parse(&c.conversation)
                .map_err(|e| format!("conversation {:?}: {e}", c.conversation))?,
            last_seq: c.last_seq,
            last_time: c.last_time_ms,
            peer: UserId::new(c.peer).ok(),
        })
    }
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
fn content_lenient(c: pb::Content) -> Content {
    let fallback = Content {
        kind: ContentType::Custom,
        body: c.body.to_vec(),
        metadata: c.metadata.clone(),
    };
    content_from_pb(c).unwrap_or(fallback)
}

fn empty_custom() -> Content {
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
        }
    }

    #[test]
    fn messages_parse_or_are_refused() {
        let m = Message::from_pb(wire("p2p:a:b", 1, "a")).unwrap();
        assert_eq!(m.text(), Some("hi"));
        assert_eq!(m.from_device, None);
        assert!(Message::from_pb(wire("nope", 1, "a")).is_err());
        assert!(Message::from_pb(wire("p2p:a:b", 0, "a")).is_err());
        assert!(Message::from_pb(wire("p2p:a:b", 1, "")).is_err());
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
