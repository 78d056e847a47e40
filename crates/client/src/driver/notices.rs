//! The server's notices outside the log — typing, presence, friends, messages deleted on
//! another device — into events. None is acknowledged or ordered with the log: each is
//! applied as it comes, and a malformed one is dropped with a log line (it is no entry, so
//! there is no cursor to keep moving).

use magpie_proto::{Body, pb};
use magpie_types::{ConvId, UserId};

use super::Driver;
use crate::presence::presence_list;
use crate::social::social_event;
use crate::{Event, UserPresence};

impl Driver {
    /// The user deleted messages for themselves on another device.
    pub(super) fn on_messages_deleted(&mut self, deleted: pb::MessagesDeleted) {
        let Ok(conversation) = ConvId::parse(&deleted.conversation) else {
            tracing::debug!(conversation = %deleted.conversation, "ignoring a malformed deletion");
            return;
        };
        let changes = self.update_inbox(|inbox| inbox.on_deleted(&conversation, &deleted.seqs));
        self.events.emit(Event::MessagesDeleted {
            conversation,
            seqs: deleted.seqs,
        });
        self.emit_changes(changes);
    }

    pub(super) fn on_typing_notice(&mut self, notice: pb::TypingNotice) {
        let (Ok(conversation), Ok(user)) = (
            ConvId::parse(&notice.conversation),
            UserId::new(notice.user.as_str()),
        ) else {
            tracing::debug!(conversation = %notice.conversation, user = %notice.user, "ignoring a malformed typing notice");
            return;
        };
        self.events.emit(Event::Typing {
            conversation,
            user,
            typing: notice.typing,
        });
    }

    pub(super) fn on_presence_notice(&mut self, notice: pb::PresenceNotice) {
        match notice.presence.map(UserPresence::from_pb) {
            Some(Ok(presence)) => self.events.emit(Event::Presence(presence)),
            Some(Err(e)) => tracing::debug!("ignoring a presence notice: {e}"),
            None => tracing::debug!("ignoring an empty presence notice"),
        }
    }

    pub(super) fn on_social_notice(&mut self, notice: pb::SocialNotice) {
        match social_event(notice) {
            Ok(event) => self.events.emit(event),
            Err(e) => tracing::debug!("ignoring a social notice: {e}"),
        }
    }

    /// The answer to the subscription sent again on a new connection: everyone's presence
    /// now, which may have changed while the connection was down.
    pub(super) fn on_presence_reply(&mut self, body: Body) {
        match body {
            Body::PresenceList(list) => {
                for presence in presence_list(list) {
                    self.events.emit(Event::Presence(presence));
                }
            }
            Body::Error(e) => tracing::warn!(
                code = %crate::ErrorCode::from_wire(e.code),
                "presence subscription refused on reconnect: {}", e.message
            ),
            _ => tracing::warn!("unexpected answer to the presence subscription"),
        }
    }
}
