//! Conversation-list commands: the local list (no round trip), the server's list, read
//! positions, settings and group read counts.

use magpie_proto::{Body, pb};
use magpie_types::{ConvId, Seq};

use super::Client;
use crate::conversation::read_counts_from_pb;
use crate::{ClientError, ConversationInfo, ConversationSettings, ReadCount, ReadResult};

impl Client {
    /// The local conversation list: every conversation the client knows, pinned ones first,
    /// then by last activity, newest first (hidden ones included, with
    /// [`ConversationInfo::hidden`] set).
    ///
    /// Read without a round trip: it is kept up to date by the sync, delivered messages,
    /// read positions and settings, and may be a little ahead of the events the application
    /// has taken so far ([`Event::ConversationUpdated`](crate::Event::ConversationUpdated)
    /// reports each change in order).
    pub fn conversations_snapshot(&self) -> Vec<ConversationInfo> {
        self.inner.inbox.lock().snapshot()
    }

    /// One conversation of the local list, if known.
    pub fn conversation(&self, conversation: &ConvId) -> Option<ConversationInfo> {
        self.inner.inbox.lock().get(conversation)
    }

    /// The unread badge: unread messages summed over every conversation that is not muted.
    /// Always equal to that sum over [`Client::conversations_snapshot`].
    pub fn total_unread(&self) -> u64 {
        self.inner.inbox.lock().total_unread()
    }

    /// All of the user's conversations as the server lists them now (every page, ordered by
    /// conversation id). This asks the server and leaves the local list alone; the local
    /// list is [`Client::conversations_snapshot`].
    pub async fn conversations(&self) -> Result<Vec<ConversationInfo>, ClientError> {
        let mut all = Vec::new();
        let mut after = String::new();
        loop {
            let request = Body::ListConversations(pb::ListConversations {
                after: after.clone(),
                limit: self.inner.list_page_size,
                since_version: 0,
            });
            let Body::ConversationList(page) = self.query(request, true).await? else {
                return Err(ClientError::Protocol("unexpected answer to list".into()));
            };
            let last = page.conversations.last().map(|c| c.conversation.clone());
            for info in page.conversations {
                match ConversationInfo::from_pb(info) {
                    Ok(info) => all.push(info),
                    Err(e) => tracing::warn!("ignoring listed conversation: {e}"),
                }
            }
            match last {
                // Pages are ordered by id; refuse one that does not move forward.
                Some(last) if page.has_more && last > after => after = last,
                _ => return Ok(all),
            }
        }
    }

    /// Marks `conversation` read up to `seq` (`None`: up to its latest entry on the server,
    /// which may be beyond what this client has delivered — pass the last `seq` shown to be
    /// exact). Read positions only move forward. Every device of the user (this one before
    /// the call returns) clears its unread count; for a 1:1 conversation the other user gets
    /// a read receipt.
    pub async fn mark_read(
        &self,
        conversation: &ConvId,
        seq: Option<Seq>,
    ) -> Result<ReadResult, ClientError> {
        let request = Body::MarkRead(pb::MarkRead {
            conversation: conversation.as_str().to_owned(),
            seq: seq.unwrap_or(0),
        });
        match self.query(request, true).await? {
            Body::ReadResult(r) => ReadResult::from_pb(r).map_err(ClientError::Protocol),
            _ => Err(ClientError::Protocol(
                "unexpected answer to mark_read".into(),
            )),
        }
    }

    /// Changes the user's settings of a conversation (pin, mute, hide); returns its state
    /// afterwards, as the server sees it. The local list is updated before this returns.
    pub async fn set_conversation(
        &self,
        conversation: &ConvId,
        settings: ConversationSettings,
    ) -> Result<ConversationInfo, ClientError> {
        let request = Body::ConversationSettings(settings.to_pb(conversation));
        match self.query(request, true).await? {
            Body::ConversationSettingsResult(pb::ConversationSettingsResult {
                conversation: Some(info),
                ..
            }) => ConversationInfo::from_pb(info).map_err(ClientError::Protocol),
            _ => Err(ClientError::Protocol(
                "unexpected answer to conversation settings".into(),
            )),
        }
    }

    /// For messages of a group: how many members have read each (read receipts of a group,
    /// derived from read positions), in the order of `seqs`.
    pub async fn read_counts(
        &self,
        conversation: &ConvId,
        seqs: &[Seq],
    ) -> Result<Vec<ReadCount>, ClientError> {
        let request = Body::ReadCounts(pb::ReadCounts {
            conversation: conversation.as_str().to_owned(),
            seqs: seqs.to_vec(),
        });
        match self.query(request, true).await? {
            Body::ReadCountsResult(r) => {
                read_counts_from_pb(seqs, r).map_err(ClientError::Protocol)
            }
            _ => Err(ClientError::Protocol(
                "unexpected answer to read counts".into(),
            )),
        }
    }
}
