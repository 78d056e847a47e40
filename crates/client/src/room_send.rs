//! How to send to a live room ([`RoomSendOptions`]) and the room's answer
//! ([`RoomSendAck`]). The outbox keeps the whole request as a `RoomDraft`, so that every
//! retry of a HIGH send writes the same request under the same client message id.

use std::time::Duration;

use magpie_proto::convert::content_to_pb;
use magpie_proto::pb;
use magpie_types::{ClientMsgId, Content, Millis, MsgId, RoomId, Seq};

use crate::Priority;
use crate::room::priority_from_wire;

/// How to send to a room (see [`Client::send_room`](crate::Client::send_room)). The default
/// lets the server pick the priority (HIGH for the room's admins, NORMAL for others) and is
/// not retried.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RoomSendOptions {
    /// The priority; `None` lets the server pick. Only an explicit [`Priority::High`] send
    /// is retried after a lost connection (the server deduplicates HIGH messages by client
    /// message id); NORMAL and LOW ones are best effort and fail instead.
    pub priority: Option<Priority>,
    /// The client message id; `None` picks a fresh one.
    pub client_msg_id: Option<ClientMsgId>,
    /// How long a HIGH send may keep being retried; `None`: the client's
    /// [`ClientConfig::request_timeout`](crate::ClientConfig::request_timeout). Also bounds
    /// the wait for a connection of any send.
    pub timeout: Option<Duration>,
}

impl RoomSendOptions {
    /// Sends with this priority.
    pub fn priority(mut self, priority: Priority) -> Self {
        self.priority = Some(priority);
        self
    }

    /// Sends under this client message id.
    pub fn client_msg_id(mut self, id: ClientMsgId) -> Self {
        self.client_msg_id = Some(id);
        self
    }

    /// Bounds the send (see [`RoomSendOptions::timeout`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

/// The server's acknowledgement of a room send: the room accepted the message (it also
/// arrives, like everyone's, as an [`Event::Room`](crate::Event::Room)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RoomSendAck {
    /// The room.
    pub room: RoomId,
    /// The client message id the send carried.
    pub client_msg_id: ClientMsgId,
    /// The server's message id.
    pub msg_id: MsgId,
    /// The room's `seq` of a HIGH message; `None` for NORMAL and LOW.
    pub seq: Option<Seq>,
    /// The priority the message was sent with (the server's pick, if none was asked for).
    pub priority: Priority,
    /// When the room accepted it (Unix milliseconds).
    pub server_time_ms: Millis,
    /// True when the room had already accepted this message (an earlier attempt under the
    /// same client message id); the ack is the original one.
    pub duplicate: bool,
}

/// A room send as the outbox keeps it until it is answered: every attempt is the same
/// request under the same client message id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RoomDraft {
    pub(crate) room: RoomId,
    pub(crate) content: Content,
    pub(crate) priority: Option<Priority>,
    pub(crate) client_msg_id: ClientMsgId,
    pub(crate) timeout: Option<Duration>,
}

impl RoomDraft {
    pub(crate) fn new(room: RoomId, content: Content, options: RoomSendOptions) -> Self {
        Self {
            room,
            content,
            priority: options.priority,
            client_msg_id: options
                .client_msg_id
                .unwrap_or_else(crate::new_client_msg_id),
            timeout: options.timeout,
        }
    }

    /// Explicitly HIGH: retried across reconnects and UNAVAILABLE answers.
    pub(crate) fn is_reliable(&self) -> bool {
        self.priority == Some(Priority::High)
    }

    pub(crate) fn to_pb(&self) -> pb::RoomSend {
        pb::RoomSend {
            room: self.room.as_str().to_owned(),
            content: Some(content_to_pb(&self.content)),
            priority: self.priority.map_or(0, Priority::code),
            client_msg_id: self.client_msg_id.as_str().to_owned(),
        }
    }

    pub(crate) fn ack(&self, a: &pb::RoomSendAck) -> RoomSendAck {
        let seq = (a.seq != 0).then_some(a.seq);
        RoomSendAck {
            room: self.room.clone(),
            client_msg_id: self.client_msg_id.clone(),
            msg_id: a.msg_id,
            seq,
            priority: priority_from_wire(a.priority, seq),
            server_time_ms: a.server_time_ms,
            duplicate: a.duplicate,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn drafts_carry_every_field_and_only_high_is_reliable() {
        let draft = RoomDraft::new(
            RoomId::new("live").unwrap(),
            Content::text("hi"),
            RoomSendOptions::default().priority(Priority::High),
        );
        assert!(draft.is_reliable());
        let send = draft.to_pb();
        assert_eq!(send.priority, pb::Priority::High as i32);
        assert_eq!(send.client_msg_id, draft.client_msg_id.as_str());
        let default = RoomDraft::new(
            RoomId::new("live").unwrap(),
            Content::text("hi"),
            RoomSendOptions::default(),
        );
        assert!(!default.is_reliable());
        assert_eq!(default.to_pb().priority, pb::Priority::Default as i32);
        let ack = draft.ack(&pb::RoomSendAck {
            msg_id: 1,
            seq: 4,
            server_time_ms: 2,
            priority: 0,
            duplicate: true,
        });
        assert_eq!(
            (ack.seq, ack.priority, ack.duplicate),
            (Some(4), Priority::High, true)
        );
    }
}
