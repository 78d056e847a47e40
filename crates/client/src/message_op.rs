//! Operations on earlier messages — recall, edit, react ([`MessageOp`]) — and the server's
//! answer ([`OpAck`]).
//!
//! An operation is appended to the conversation's log as an entry of its own, so every
//! member's device learns it in order (see [`Event::Recalled`](crate::Event::Recalled) and its
//! neighbours). Like a send it carries a client message id the server deduplicates by, so the
//! outbox keeps the whole request as an `OpDraft` and writes the same request again — across
//! reconnects and transient errors — until it is answered: it is applied at most once.

use magpie_proto::convert::content_to_pb;
use magpie_proto::pb;
use magpie_proto::pb::message_op::Op;
use magpie_types::{ClientMsgId, Content, ConvId, Seq, UserId};

use crate::op_entry::OpEntry;

/// What to do to an earlier message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessageOp {
    /// Recall it: its sender (within the app's recall window, else
    /// [`ErrorCode::WindowClosed`](crate::ErrorCode::WindowClosed)) or a group admin.
    Recall,
    /// Replace its content (its sender only).
    Edit(Content),
    /// Add (`add`) or remove a reaction.
    React {
        /// The reaction, usually one emoji.
        emoji: String,
        /// Add it (`true`) or take it back (`false`).
        add: bool,
    },
}

/// The server's acknowledgement of a [`MessageOp`]: its entry is durably stored.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OpAck {
    /// The client message id the operation carried.
    pub client_msg_id: ClientMsgId,
    /// The conversation.
    pub conversation: ConvId,
    /// The `seq` of the message acted on.
    pub target: Seq,
    /// The `seq` of the entry the operation appended.
    pub seq: Seq,
    /// True when the server had already applied this operation (an earlier attempt under the
    /// same client message id succeeded); the answer is the original one.
    pub duplicate: bool,
}

/// An operation as the outbox keeps it until it is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OpDraft {
    pub(crate) client_msg_id: ClientMsgId,
    pub(crate) conversation: ConvId,
    pub(crate) target: Seq,
    pub(crate) op: MessageOp,
}

impl OpDraft {
    /// An operation under `client_msg_id`, or a fresh one.
    pub(crate) fn new(
        conversation: ConvId,
        target: Seq,
        op: MessageOp,
        client_msg_id: Option<ClientMsgId>,
    ) -> Self {
        Self {
            client_msg_id: client_msg_id.unwrap_or_else(crate::new_client_msg_id),
            conversation,
            target,
            op,
        }
    }

    /// The content it carries, in bytes (for the server's size limit).
    pub(crate) fn content_size(&self) -> usize {
        match &self.op {
            MessageOp::Edit(content) => content.size(),
            MessageOp::React { emoji, .. } => emoji.len(),
            MessageOp::Recall => 0,
        }
    }

    pub(crate) fn to_pb(&self) -> pb::MessageOp {
        let op = match &self.op {
            MessageOp::Recall => Op::Recall(pb::Recall {}),
            MessageOp::Edit(content) => Op::Edit(content_to_pb(content)),
            MessageOp::React { emoji, add } => Op::React(pb::Reaction {
                emoji: emoji.clone(),
                add: *add,
            }),
        };
        pb::MessageOp {
            client_msg_id: self.client_msg_id.as_str().to_owned(),
            conversation: self.conversation.as_str().to_owned(),
            seq: self.target,
            op: Some(op),
        }
    }

    /// The typed answer; an answer without the entry's `seq` is a protocol violation.
    pub(crate) fn ack(&self, r: &pb::MessageOpResult) -> Result<OpAck, String> {
        if r.seq == 0 {
            return Err("message op result with seq 0".into());
        }
        if !r.conversation.is_empty() && r.conversation != self.conversation.as_str() {
            return Err(format!(
                "message op on {} answered for {}",
                self.conversation, r.conversation
            ));
        }
        Ok(OpAck {
            client_msg_id: self.client_msg_id.clone(),
            conversation: self.conversation.clone(),
            target: self.target,
            seq: r.seq,
            duplicate: r.duplicate,
        })
    }

    /// The entry as the server stored it, built from the request and its ack, so that the
    /// user's own operation needs no round trip (the server's time is unknown: 0).
    pub(crate) fn entry(&self, ack: &OpAck, me: &UserId) -> OpEntry {
        OpEntry {
            conversation: ack.conversation.clone(),
            entry_seq: ack.seq,
            target: self.target,
            by: me.clone(),
            server_time: 0,
            op: self.op.clone(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::Event;

    fn conv() -> ConvId {
        ConvId::parse("p2p:alice:bob").unwrap()
    }

    #[test]
    fn requests_carry_the_op_and_keep_their_id() {
        let id = ClientMsgId::new("op-1").unwrap();
        let react = MessageOp::React {
            emoji: "👍".into(),
            add: false,
        };
        let d = OpDraft::new(conv(), 3, react, Some(id.clone()));
        let req = d.to_pb();
        assert_eq!(req.client_msg_id, "op-1");
        assert_eq!(req.seq, 3);
        assert_eq!(
            req.op,
            Some(Op::React(pb::Reaction {
                emoji: "👍".into(),
                add: false
            }))
        );
        assert_eq!(d.to_pb(), req, "every retry writes the same request");
        let edit = OpDraft::new(conv(), 1, MessageOp::Edit(Content::text("new")), None);
        assert_eq!(edit.content_size(), 3);
        assert!(matches!(edit.to_pb().op, Some(Op::Edit(_))));
        assert_ne!(edit.client_msg_id, id, "a fresh id");
        let recall = OpDraft::new(conv(), 1, MessageOp::Recall, None);
        assert_eq!(recall.to_pb().op, Some(Op::Recall(pb::Recall {})));
    }

    #[test]
    fn acks_are_checked_and_become_the_own_entry() {
        let d = OpDraft::new(conv(), 2, MessageOp::Recall, None);
        let mut r = pb::MessageOpResult {
            conversation: "p2p:alice:bob".into(),
            seq: 5,
            duplicate: true,
        };
        let ack = d.ack(&r).unwrap();
        assert_eq!((ack.target, ack.seq, ack.duplicate), (2, 5, true));
        let me = UserId::new("alice").unwrap();
        assert_eq!(
            d.entry(&ack, &me).into_event(),
            Event::Recalled {
                conversation: conv(),
                seq: 2,
                by: me,
                entry_seq: 5
            }
        );
        r.conversation = "p2p:alice:carol".into();
        assert!(d.ack(&r).is_err());
        r.conversation.clear();
        r.seq = 0;
        assert!(d.ack(&r).is_err());
    }
}
