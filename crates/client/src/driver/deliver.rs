//! Log entries — pushed, pulled, or built from our own acknowledged sends — through the
//! ordering rule into events; and everything that moves the local conversation list (entries,
//! list pages, read positions, settings).
//!
//! An entry is applied in three steps, always in this order: the orderer decides (deliver,
//! duplicate or gap) from the entry's conversation and `seq` alone, so that an entry whose
//! body cannot be parsed still moves the cursor exactly once instead of blocking its
//! conversation; then the conversation list takes it in; then the events go out — the entry's
//! own ([`Event::Message`], [`Event::GroupEvent`], or for an entry acting on a message
//! [`Event::Recalled`], [`Event::Edited`], [`Event::Reaction`]) first, then what it changed
//! ([`Event::ConversationUpdated`], [`Event::TotalUnread`]).
//!
//! The user's own sends and message operations are delivered from their acks (built from the
//! request), when the ack's `seq` is the conversation's next: no round trip for one's own
//! entries, and the orderer drops the server's copy if it comes too.

use magpie_proto::{Body, pb};
use magpie_types::{ConvId, UserId};

use super::Driver;
use crate::inbox::Inbox;
use crate::message_op::OpDraft;
use crate::op_entry::{OpEntry, is_message_op};
use crate::order::{PageItem, Verdict, page_items};
use crate::outbox::Outgoing;
use crate::send::Draft;
use crate::{
    ClientError, ConversationInfo, Event, GroupEvent, Message, OpAck, ReadResult, SendAck,
};

/// What an update of the conversation list changed, to emit after the event that caused it.
#[derive(Debug, Default)]
pub(super) struct Changes {
    conversations: Vec<ConversationInfo>,
    total: Option<u64>,
}

impl Driver {
    /// Applies the ordering rule to one entry from the server (pushed or pulled).
    pub(super) fn accept(&mut self, m: pb::Message) {
        let conv = match ConvId::parse(&m.conversation) {
            Ok(conv) if m.seq != 0 => conv,
            _ => {
                tracing::warn!(conversation = %m.conversation, seq = m.seq, "dropping an entry without a valid position");
                return;
            }
        };
        if self.orderer.on_message(&conv, m.seq) == Verdict::Deliver {
            self.deliver(m);
        }
    }

    /// A pull page: messages and hidden ranges in one seq order, then the orderer decides
    /// whether to pull on.
    pub(super) fn on_pull_page(&mut self, conv: &ConvId, page: pb::PullResult) {
        let messages = page.messages.into_iter().map(|m| (m.seq, m)).collect();
        let hidden = page.hidden.iter().map(|r| (r.from, r.to));
        for item in page_items(messages, hidden, page.last_seq) {
            match item {
                PageItem::Message(m) => self.accept(m),
                PageItem::Hidden { from, to } => {
                    self.orderer.on_hidden(conv, from, to);
                }
            }
        }
        self.orderer
            .pull_finished(conv, page.has_more, page.last_seq);
    }

    /// Resolves a send or a message operation with the server's answer (of the matching
    /// kind: the outbox checked).
    pub(super) fn on_answer(&mut self, outgoing: Outgoing, answer: Body) {
        match (outgoing, answer) {
            (Outgoing::Message { draft, reply }, Body::SendAck(ack)) => {
                let _ = reply.send(self.on_send_ack(&draft, &ack));
            }
            (Outgoing::Op { op, reply }, Body::MessageOpResult(result)) => {
                let _ = reply.send(self.on_op_ack(&op, &result));
            }
            // The message itself arrives in a room batch, like everyone's.
            (Outgoing::Room { draft, reply }, Body::RoomSendAck(ack)) => {
                let _ = reply.send(Ok(draft.ack(&ack)));
            }
            (outgoing, _) => {
                outgoing.fail(ClientError::Protocol("mismatched answer to a send".into()));
            }
        }
    }

    /// A send's ack; if the message is the conversation's next entry, delivers it (built from
    /// the request and the ack).
    fn on_send_ack(&mut self, draft: &Draft, ack: &pb::SendAck) -> Result<SendAck, ClientError> {
        let info = self.session_info()?;
        if ack.seq == 0 {
            return Err(ClientError::Protocol("send ack with seq 0".into()));
        }
        let conversation = ConvId::parse(&ack.conversation)
            .unwrap_or_else(|_| draft.to.conversation(&info.user_id));
        let result = SendAck {
            client_msg_id: draft.client_msg_id.clone(),
            msg_id: ack.msg_id,
            conversation: conversation.clone(),
            seq: ack.seq,
            server_time: ack.server_time_ms,
            duplicate: ack.duplicate,
        };
        if self.orderer.on_message(&conversation, ack.seq) == Verdict::Deliver {
            let message = draft.message(&result, &info.user_id, &info.device_id);
            self.deliver_message(message);
        }
        Ok(result)
    }

    /// A message operation's result; if its entry is the conversation's next, delivers it
    /// (built from the request and the result).
    fn on_op_ack(
        &mut self,
        op: &OpDraft,
        result: &pb::MessageOpResult,
    ) -> Result<OpAck, ClientError> {
        let info = self.session_info()?;
        let ack = op.ack(result).map_err(ClientError::Protocol)?;
        if self.orderer.on_message(&ack.conversation, ack.seq) == Verdict::Deliver {
            self.deliver_op(op.entry(&ack, &info.user_id));
        }
        Ok(ack)
    }

    fn session_info(&self) -> Result<crate::SessionInfo, ClientError> {
        self.session
            .as_ref()
            .map(|s| s.info.clone())
            .ok_or(ClientError::Interrupted)
    }

    /// A read position moved: ours (on this or another device: unread clears everywhere) or
    /// another user's (a read receipt).
    pub(super) fn on_read_update(&mut self, update: pb::ReadUpdate) {
        let (Ok(conv), Ok(user)) = (
            ConvId::parse(&update.conversation),
            UserId::new(update.user.as_str()),
        ) else {
            tracing::debug!(conversation = %update.conversation, user = %update.user, "ignoring a malformed read update");
            return;
        };
        let me = self.session.as_ref().map(|s| &s.info.user_id);
        if me == Some(&user) {
            let changes = self.update_inbox(|inbox| {
                let changed = inbox.on_read(&conv, update.read_seq, update.unread);
                inbox.check_total(update.total_unread, "read update");
                changed
            });
            self.emit_changes(changes);
        } else {
            // Receipts of group members are not kept per conversation (see `read_counts`).
            let changes = if conv.is_direct() {
                self.update_inbox(|inbox| inbox.on_peer_read(&conv, update.read_seq))
            } else {
                Changes::default()
            };
            self.events.emit(Event::ReadReceipt {
                conversation: conv,
                user,
                read_seq: update.read_seq,
            });
            self.emit_changes(changes);
        }
    }

    /// A query's answer that moves the conversation list (our read position, our settings).
    pub(super) fn observe_answer(&mut self, body: &Body) {
        let changes = match body {
            Body::ReadResult(r) => match ReadResult::from_pb(r.clone()) {
                Ok(r) => self.update_inbox(|inbox| {
                    let changed = inbox.on_read(&r.conversation, r.read_seq, r.unread);
                    inbox.check_total(r.total_unread, "read result");
                    changed
                }),
                Err(_) => return,
            },
            Body::DeleteForMeResult(r) => {
                let Ok(conv) = ConvId::parse(&r.conversation) else {
                    return;
                };
                self.update_inbox(|inbox| inbox.on_deleted(&conv, &r.seqs))
            }
            Body::ConversationSettingsResult(r) => {
                let Some(Ok(info)) = r.conversation.clone().map(ConversationInfo::from_pb) else {
                    return;
                };
                self.update_inbox(|inbox| {
                    let changed = inbox.on_listed(info);
                    inbox.check_total(r.total_unread, "settings result");
                    changed
                })
            }
            _ => return,
        };
        self.emit_changes(changes);
    }

    /// A page of the sync's conversation list.
    pub(super) fn on_listed(
        &mut self,
        listed: Vec<ConversationInfo>,
        complete_version: Option<u64>,
        server_total: u64,
    ) {
        let changes = self.update_inbox(|inbox| {
            let changed: Vec<ConversationInfo> = listed
                .into_iter()
                .filter_map(|info| inbox.on_listed(info))
                .collect();
            if let Some(version) = complete_version {
                inbox.list_synced(version);
                inbox.check_total(server_total, "conversation list");
            }
            changed
        });
        self.emit_changes(changes);
    }

    /// Hands over an entry the orderer has just delivered (its cursor has moved past it: this
    /// happens once per seq, whatever the entry's body holds). An entry of a special kind
    /// that does not parse as such is delivered as a message, so that nothing is lost.
    fn deliver(&mut self, m: pb::Message) {
        if m.kind == pb::EntryKind::GroupEvent as i32 {
            match GroupEvent::from_pb(&m) {
                Ok(event) => {
                    let changes = self.update_inbox(|inbox| inbox.on_group_event(&event));
                    self.events.emit(Event::GroupEvent(event));
                    self.emit_changes(changes);
                    return;
                }
                Err(e) => tracing::warn!(
                    conversation = %m.conversation, seq = m.seq,
                    "a group event does not parse ({e}); delivering it as a message"
                ),
            }
        }
        let message = match Message::from_pb(m) {
            Ok(message) => message,
            Err(e) => {
                tracing::warn!("skipping an entry that does not parse: {e}");
                return;
            }
        };
        if is_message_op(message.kind) {
            match OpEntry::from_message(&message) {
                Ok(op) => {
                    self.deliver_op(op);
                    return;
                }
                Err(e) => tracing::warn!(
                    conversation = %message.conversation, seq = message.seq,
                    "{e}; delivering it as a message"
                ),
            }
        }
        self.deliver_message(message);
    }

    fn deliver_message(&mut self, message: Message) {
        let changes = self.update_inbox(|inbox| inbox.on_message(&message));
        self.events.emit(Event::Message(message));
        self.emit_changes(changes);
    }

    fn deliver_op(&mut self, op: OpEntry) {
        let changes = self.update_inbox(|inbox| inbox.on_message_op(&op));
        self.events.emit(op.into_event());
        self.emit_changes(changes);
    }

    /// Runs `f` on the conversation list and notes what changed, the badge included.
    pub(super) fn update_inbox<I>(&mut self, f: impl FnOnce(&mut Inbox) -> I) -> Changes
    where
        I: IntoIterator<Item = ConversationInfo>,
    {
        let mut inbox = self.inbox.lock();
        let total_before = inbox.total_unread();
        let conversations = f(&mut inbox).into_iter().collect();
        let total = inbox.total_unread();
        Changes {
            conversations,
            total: (total != total_before).then_some(total),
        }
    }

    pub(super) fn emit_changes(&mut self, changes: Changes) {
        for info in changes.conversations {
            self.events.emit(Event::ConversationUpdated(info));
        }
        if let Some(total) = changes.total {
            self.events.emit(Event::TotalUnread(total));
        }
    }
}
