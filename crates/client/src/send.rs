//! What a send says: to whom ([`Recipient`]) and how ([`SendOptions`]: mentions, reply,
//! the client message id). The outbox keeps the whole request as a `Draft`, so that every
//! retry writes the same bytes under the same client message id.

use magpie_proto::convert::content_to_pb;
use magpie_proto::pb;
use magpie_types::{ClientMsgId, Content, ConvId, GroupId, Seq, UserId};

use crate::{EntryKind, Message, SendAck};

/// Where a message goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Recipient {
    /// A user (a 1:1 conversation).
    User(UserId),
    /// A group's conversation.
    Group(GroupId),
}

impl Recipient {
    /// The conversation a message to this recipient from `me` lands in.
    pub fn conversation(&self, me: &UserId) -> ConvId {
        match self {
            Self::User(to) => ConvId::direct(me, to),
            Self::Group(g) => ConvId::group(g),
        }
    }
}

impl From<UserId> for Recipient {
    fn from(u: UserId) -> Self {
        Self::User(u)
    }
}

impl From<&UserId> for Recipient {
    fn from(u: &UserId) -> Self {
        Self::User(u.clone())
    }
}

impl From<GroupId> for Recipient {
    fn from(g: GroupId) -> Self {
        Self::Group(g)
    }
}

impl From<&GroupId> for Recipient {
    fn from(g: &GroupId) -> Self {
        Self::Group(g.clone())
    }
}

/// How to send (see [`Client::send_with`](crate::Client::send_with)). The default is a plain
/// message under a fresh client message id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SendOptions {
    /// The client message id to send under; `None` picks a fresh one. Choose one (and
    /// persist it) to retry a send across application restarts: the server returns the
    /// original ack.
    pub client_msg_id: Option<ClientMsgId>,
    /// Users the message mentions (groups).
    pub mentions: Vec<UserId>,
    /// The message mentions everyone (`@all`; group owner and admins only).
    pub mention_all: bool,
    /// The `seq` of an earlier message of the same conversation this one replies to.
    pub reply_to: Option<Seq>,
}

impl SendOptions {
    /// Sends under this client message id.
    pub fn client_msg_id(mut self, id: ClientMsgId) -> Self {
        self.client_msg_id = Some(id);
        self
    }

    /// Mentions `user`.
    pub fn mention(mut self, user: UserId) -> Self {
        self.mentions.push(user);
        self
    }

    /// Mentions everyone.
    pub fn mention_all(mut self) -> Self {
        self.mention_all = true;
        self
    }

    /// Replies to the message at `seq`.
    pub fn reply_to(mut self, seq: Seq) -> Self {
        self.reply_to = Some(seq);
        self
    }
}

/// A send as the outbox keeps it until it is resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Draft {
    pub(crate) client_msg_id: ClientMsgId,
    pub(crate) to: Recipient,
    pub(crate) content: Content,
    pub(crate) mentions: Vec<UserId>,
    pub(crate) mention_all: bool,
    pub(crate) reply_to: Option<Seq>,
}

impl Draft {
    pub(crate) fn new(to: Recipient, content: Content, options: SendOptions) -> Self {
        Self {
            client_msg_id: options
                .client_msg_id
                .unwrap_or_else(crate::new_client_msg_id),
            to,
            content,
            mentions: options.mentions,
            mention_all: options.mention_all,
            reply_to: options.reply_to,
        }
    }

    pub(crate) fn to_pb(&self) -> pb::SendRequest {
        let to = match &self.to {
            Recipient::User(u) => pb::send_request::To::User(u.as_str().to_owned()),
            Recipient::Group(g) => pb::send_request::To::Group(g.as_str().to_owned()),
        };
        pb::SendRequest {
            client_msg_id: self.client_msg_id.as_str().to_owned(),
            to: Some(to),
            content: Some(content_to_pb(&self.content)),
            mentions: self
                .mentions
                .iter()
                .map(|u| u.as_str().to_owned())
                .collect(),
            mention_all: self.mention_all,
            reply_to: self.reply_to.unwrap_or(0),
        }
    }

    /// The stored message, as the server would deliver it, built from the request and its
    /// ack (so the sender's own message needs no round trip).
    pub(crate) fn message(
        &self,
        ack: &SendAck,
        me: &UserId,
        device: &magpie_types::DeviceId,
    ) -> Message {
        Message {
            conversation: ack.conversation.clone(),
            seq: ack.seq,
            msg_id: ack.msg_id,
            from: me.clone(),
            from_device: Some(device.clone()),
            client_msg_id: Some(self.client_msg_id.clone()),
            content: self.content.clone(),
            server_time: ack.server_time,
            kind: EntryKind::Message,
            mentions: self.mentions.clone(),
            mention_all: self.mention_all,
            reply_to: self.reply_to,
            target: None,
            recalled: false,
            edited: false,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn group_sends_carry_their_options() {
        let g = GroupId::new("team").unwrap();
        let d = Draft::new(
            Recipient::from(&g),
            Content::text("hi"),
            SendOptions::default()
                .mention(UserId::new("bob").unwrap())
                .reply_to(3)
                .client_msg_id(ClientMsgId::new("c1").unwrap()),
        );
        let req = d.to_pb();
        assert_eq!(req.client_msg_id, "c1");
        assert_eq!(req.to, Some(pb::send_request::To::Group("team".into())));
        assert_eq!(req.mentions, ["bob"]);
        assert_eq!(req.reply_to, 3);
        let me = UserId::new("alice").unwrap();
        assert_eq!(d.to.conversation(&me).as_str(), "g:team");
        let plain = Draft::new(
            Recipient::from(UserId::new("bob").unwrap()),
            Content::text("x"),
            SendOptions::default(),
        );
        assert_eq!(plain.to_pb().reply_to, 0);
        assert_eq!(plain.to.conversation(&me).as_str(), "p2p:alice:bob");
    }
}
