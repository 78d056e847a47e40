//! Recall, edit and reaction entries of a conversation's log, parsed into the events that
//! replace [`Event::Message`] for them: [`Event::Recalled`], [`Event::Edited`],
//! [`Event::Reaction`].
//!
//! These entries pass the ordering rule like every other (the cursor moves once per `seq`);
//! only what the application is handed differs, so that a message list does not show a
//! recall as a message of its own. An entry that does not parse (no target, a reaction
//! without a valid `op`) is still delivered, as a [`Message`] with its
//! [`kind`](Message::kind), so that nothing is lost.

use magpie_types::{ContentType, ConvId, Millis, Seq, UserId};

use crate::{EntryKind, Event, Message, MessageOp};

/// The metadata key of a reaction entry telling whether it adds or removes the reaction.
const REACTION_OP: &str = "op";

/// Whether entries of `kind` act on an earlier message (recall, edit, reaction).
pub(crate) fn is_message_op(kind: EntryKind) -> bool {
    matches!(
        kind,
        EntryKind::Recall | EntryKind::Edit | EntryKind::Reaction
    )
}

/// A parsed recall, edit or reaction entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OpEntry {
    pub(crate) conversation: ConvId,
    /// The entry's own position.
    pub(crate) entry_seq: Seq,
    /// The message acted on.
    pub(crate) target: Seq,
    /// Who did it (the entry's sender).
    pub(crate) by: UserId,
    pub(crate) server_time: Millis,
    pub(crate) op: MessageOp,
}

impl OpEntry {
    /// Parses an entry of kind recall, edit or reaction.
    pub(crate) fn from_message(m: &Message) -> Result<Self, String> {
        let target = m
            .target
            .filter(|&t| t < m.seq)
            .ok_or_else(|| format!("{:?} entry {} without a valid target", m.kind, m.seq))?;
        let op = match m.kind {
            EntryKind::Recall => MessageOp::Recall,
            EntryKind::Edit => MessageOp::Edit(m.content.clone()),
            EntryKind::Reaction => reaction(m)?,
            other => return Err(format!("a {other:?} entry is no message operation")),
        };
        Ok(Self {
            conversation: m.conversation.clone(),
            entry_seq: m.seq,
            target,
            by: m.from.clone(),
            server_time: m.server_time,
            op,
        })
    }

    /// The event the application receives for the entry.
    pub(crate) fn into_event(self) -> Event {
        let Self {
            conversation,
            entry_seq,
            target: seq,
            by,
            op,
            ..
        } = self;
        match op {
            MessageOp::Recall => Event::Recalled {
                conversation,
                seq,
                by,
                entry_seq,
            },
            MessageOp::Edit(content) => Event::Edited {
                conversation,
                seq,
                content,
                entry_seq,
            },
            MessageOp::React { emoji, add } => Event::Reaction {
                conversation,
                seq,
                user: by,
                emoji,
                add,
                entry_seq,
            },
        }
    }
}

/// A reaction entry: text holding the emoji, metadata `op` = `add` or `remove`.
fn reaction(m: &Message) -> Result<MessageOp, String> {
    let emoji = match m.content.kind {
        ContentType::Text => m.content.as_text().unwrap_or_default(),
        _ => "",
    };
    if emoji.is_empty() {
        return Err(format!("reaction entry {} without an emoji", m.seq));
    }
    let add = match m.content.metadata.get(REACTION_OP).map(String::as_str) {
        Some("add") => true,
        Some("remove") => false,
        other => return Err(format!("reaction entry {} with op {other:?}", m.seq)),
    };
    Ok(MessageOp::React {
        emoji: emoji.to_owned(),
        add,
    })
}

impl Message {
    /// For a recall, edit or reaction entry read through
    /// [`Client::history`](crate::Client::history) (or delivered as a message because it did
    /// not parse): the event it stands for ([`Event::Recalled`], [`Event::Edited`] or
    /// [`Event::Reaction`]); `None` for any other entry.
    pub fn op_event(&self) -> Option<Event> {
        if !is_message_op(self.kind) {
            return None;
        }
        OpEntry::from_message(self).ok().map(OpEntry::into_event)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use magpie_proto::convert::text_content;
    use magpie_proto::pb;
    use magpie_types::Content;

    fn entry(kind: pb::EntryKind, target: Seq, content: pb::Content) -> Message {
        Message::from_pb(pb::Message {
            msg_id: 9,
            conversation: "g:team".into(),
            seq: 7,
            from_user: "bob".into(),
            content: Some(content),
            server_time_ms: 99,
            kind: kind as i32,
            target,
            ..Default::default()
        })
        .unwrap()
    }

    fn conv() -> ConvId {
        ConvId::parse("g:team").unwrap()
    }

    fn bob() -> UserId {
        UserId::new("bob").unwrap()
    }

    fn reaction_content(emoji: &str, op: &str) -> pb::Content {
        let mut c = text_content(emoji);
        c.metadata.insert("op".into(), op.into());
        c
    }

    #[test]
    fn recalls_edits_and_reactions_become_their_events() {
        let recall = entry(pb::EntryKind::Recall, 3, pb::Content::default());
        assert_eq!(recall.target, Some(3));
        assert_eq!(
            recall.op_event(),
            Some(Event::Recalled {
                conversation: conv(),
                seq: 3,
                by: bob(),
                entry_seq: 7
            })
        );
        let edit = entry(pb::EntryKind::Edit, 2, text_content("fixed"));
        assert_eq!(
            edit.op_event(),
            Some(Event::Edited {
                conversation: conv(),
                seq: 2,
                content: Content::text("fixed"),
                entry_seq: 7
            })
        );
        for (op, add) in [("add", true), ("remove", false)] {
            let r = entry(pb::EntryKind::Reaction, 1, reaction_content("🎉", op));
            assert_eq!(
                r.op_event(),
                Some(Event::Reaction {
                    conversation: conv(),
                    seq: 1,
                    user: bob(),
                    emoji: "🎉".into(),
                    add,
                    entry_seq: 7
                })
            );
        }
    }

    #[test]
    fn malformed_op_entries_do_not_parse() {
        let no_target = entry(pb::EntryKind::Recall, 0, pb::Content::default());
        assert!(OpEntry::from_message(&no_target).is_err());
        let later_target = entry(pb::EntryKind::Edit, 7, text_content("x"));
        assert!(OpEntry::from_message(&later_target).is_err());
        let bad_op = entry(pb::EntryKind::Reaction, 1, reaction_content("🎉", "toggle"));
        assert!(OpEntry::from_message(&bad_op).is_err());
        let no_emoji = entry(pb::EntryKind::Reaction, 1, reaction_content("", "add"));
        assert!(OpEntry::from_message(&no_emoji).is_err());
        let message = entry(pb::EntryKind::Message, 1, text_content("hi"));
        assert_eq!(message.op_event(), None);
        assert!(OpEntry::from_message(&message).is_err());
    }
}
