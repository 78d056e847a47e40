//! Commands on messages already sent — recall, edit, react, delete for me — and typing
//! indicators.
//!
//! Recall, edit and react append an entry to the conversation's log, so they are sends in
//! all but name: kept in the outbox under one client message id and written again across
//! reconnects and transient errors until the server answers, which it does once (a retry
//! gets the original answer, [`OpAck::duplicate`]). Deleting for oneself changes no log and
//! is idempotent, so it is an ordinary query, retried on the next connection. Typing is
//! fire and forget.

use magpie_proto::{Body, pb};
use magpie_types::{ClientMsgId, Content, ConvId, Seq};
use tokio::sync::oneshot;

use super::Client;
use crate::driver::Command;
use crate::message_op::OpDraft;
use crate::outbox::Outgoing;
use crate::{ClientError, MessageOp, OpAck};

impl Client {
    /// Recalls the message at `seq` of `conversation`: every member's device receives an
    /// [`Event::Recalled`](crate::Event::Recalled) in the conversation's order (this one
    /// too), and the server no longer serves its content. Allowed to its sender within the
    /// app's recall window (after it: [`ErrorCode::WindowClosed`](crate::ErrorCode::WindowClosed))
    /// and to a group's admins at any time.
    ///
    /// Same guarantees as [`Client::send`]: resolves with the server's answer or a definite
    /// rejection, retried meanwhile under one client message id, applied at most once.
    pub async fn recall(&self, conversation: &ConvId, seq: Seq) -> Result<OpAck, ClientError> {
        self.message_op(OpDraft::new(
            conversation.clone(),
            seq,
            MessageOp::Recall,
            None,
        ))
        .await
    }

    /// Replaces the content of the message at `seq` (the user's own): members receive an
    /// [`Event::Edited`](crate::Event::Edited). Same guarantees as [`Client::recall`].
    pub async fn edit(
        &self,
        conversation: &ConvId,
        seq: Seq,
        content: Content,
    ) -> Result<OpAck, ClientError> {
        let op = MessageOp::Edit(content);
        self.message_op(OpDraft::new(conversation.clone(), seq, op, None))
            .await
    }

    /// Adds (`add`) or takes back a reaction to the message at `seq`: members receive an
    /// [`Event::Reaction`](crate::Event::Reaction). Same guarantees as [`Client::recall`].
    pub async fn react(
        &self,
        conversation: &ConvId,
        seq: Seq,
        emoji: impl Into<String>,
        add: bool,
    ) -> Result<OpAck, ClientError> {
        let op = MessageOp::React {
            emoji: emoji.into(),
            add,
        };
        self.message_op(OpDraft::new(conversation.clone(), seq, op, None))
            .await
    }

    /// Applies an operation under a client message id of the caller's choice (for an
    /// application that persists its outbox and retries across restarts): applying it again
    /// with the same id returns the original answer.
    pub async fn message_op_with_id(
        &self,
        conversation: &ConvId,
        seq: Seq,
        op: MessageOp,
        client_msg_id: ClientMsgId,
    ) -> Result<OpAck, ClientError> {
        let draft = OpDraft::new(conversation.clone(), seq, op, Some(client_msg_id));
        self.message_op(draft).await
    }

    /// Deletes messages for this user only ("delete for me"): the server stops serving them
    /// to the user (pulls and history skip them) and tells the user's other devices
    /// ([`Event::MessagesDeleted`](crate::Event::MessagesDeleted)); everyone else still sees
    /// them. Returns the seqs the server deleted. The local conversation list is updated
    /// before this returns. Idempotent: retried on the next connection if one drops.
    pub async fn delete_for_me(
        &self,
        conversation: &ConvId,
        seqs: &[Seq],
    ) -> Result<Vec<Seq>, ClientError> {
        if seqs.is_empty() {
            return Ok(Vec::new());
        }
        let request = Body::DeleteForMe(pb::DeleteForMe {
            conversation: conversation.as_str().to_owned(),
            seqs: seqs.to_vec(),
        });
        match self.query(request, true).await? {
            Body::DeleteForMeResult(r) => Ok(r.seqs),
            _ => Err(ClientError::Protocol(
                "unexpected answer to delete for me".into(),
            )),
        }
    }

    /// Tells the other members of `conversation` that the user started (`typing`) or stopped
    /// typing; they receive an [`Event::Typing`](crate::Event::Typing).
    ///
    /// Fire and forget: written on the current connection with no answer awaited, and
    /// dropped when there is none — never queued for a later connection, where it would be
    /// stale. Fails only if the client is closed.
    pub async fn typing(&self, conversation: &ConvId, typing: bool) -> Result<(), ClientError> {
        self.command(Command::Typing(pb::Typing {
            conversation: conversation.as_str().to_owned(),
            typing,
        }))
        .await
    }

    async fn message_op(&self, op: OpDraft) -> Result<OpAck, ClientError> {
        let (reply, rx) = oneshot::channel();
        self.command(Command::Send(Outgoing::Op { op, reply }))
            .await?;
        rx.await.map_err(|_| ClientError::Closed)?
    }
}
