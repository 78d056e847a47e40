//! Sync after every (re)connect, sans-I/O: list all conversations (paged) and let the
//! [`Orderer`] pull each one that is behind the server's last `seq`.
//!
//! A fresh client (no cursors) thus receives every conversation's whole history, in order.
//! Sync is complete once the list is exhausted and no pull is in flight or queued; the driver
//! then emits [`Event::SyncComplete`](crate::Event::SyncComplete).

use magpie_proto::pb;
use magpie_types::ConvId;

use crate::order::Orderer;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for a page of the conversation list.
    Listing,
    /// The list is exhausted; pulls may still be running.
    Pulling,
    /// Complete (reported once).
    Done,
}

/// One connection's sync.
#[derive(Debug)]
pub(crate) struct Sync {
    phase: Phase,
    page_size: u32,
    after: String,
}

impl Sync {
    /// Starts a sync; returns the request for the first page of the conversation list.
    pub(crate) fn start(page_size: u32) -> (Self, pb::ListConversations) {
        let sync = Self {
            phase: Phase::Listing,
            page_size,
            after: String::new(),
        };
        let first = sync.request();
        (sync, first)
    }

    /// Takes in one page of the conversation list; returns the request for the next page,
    /// if there is one.
    pub(crate) fn on_page(
        &mut self,
        page: &pb::ConversationList,
        orderer: &mut Orderer,
    ) -> Option<pb::ListConversations> {
        for info in &page.conversations {
            match ConvId::parse(&info.conversation) {
                Ok(conv) => orderer.on_known(&conv, info.last_seq),
                Err(e) => {
                    tracing::warn!(conversation = %info.conversation, "ignoring listed conversation: {e}")
                }
            }
        }
        let next_after = page.conversations.last().map(|c| c.conversation.as_str());
        match next_after {
            // Pages are ordered by id; a page that does not move forward would loop forever.
            Some(after) if page.has_more && after > self.after.as_str() => {
                self.after = after.to_owned();
                Some(self.request())
            }
            _ => {
                if page.has_more {
                    tracing::warn!(
                        "conversation list says has_more but does not advance; stopping"
                    );
                }
                self.phase = Phase::Pulling;
                None
            }
        }
    }

    /// True exactly once: when the list is exhausted and the orderer has settled.
    pub(crate) fn poll_complete(&mut self, orderer: &Orderer) -> bool {
        if self.phase == Phase::Pulling && orderer.is_settled() {
            self.phase = Phase::Done;
            return true;
        }
        false
    }

    fn request(&self) -> pb::ListConversations {
        pb::ListConversations {
            after: self.after.clone(),
            limit: self.page_size,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn info(conv: &str, last_seq: u64) -> pb::ConversationInfo {
        pb::ConversationInfo {
            conversation: conv.into(),
            last_seq,
            last_time_ms: 0,
            peer: String::new(),
        }
    }

    #[test]
    fn pages_then_pulls_then_completes_once() {
        let mut o = Orderer::new([], 4);
        let (mut s, first) = Sync::start(2);
        assert_eq!(first.after, "");
        let page = pb::ConversationList {
            conversations: vec![info("p2p:a:b", 2), info("p2p:a:c", 0)],
            has_more: true,
        };
        let next = s.on_page(&page, &mut o).unwrap();
        assert_eq!(next.after, "p2p:a:c");
        assert!(!s.poll_complete(&o));
        let last = pb::ConversationList {
            conversations: vec![info("garbage", 1)],
            has_more: false,
        };
        assert!(s.on_page(&last, &mut o).is_none());
        assert!(!s.poll_complete(&o), "a pull is queued");
        let (conv, after) = o.poll_pull().unwrap();
        assert_eq!((conv.as_str(), after), ("p2p:a:b", 0));
        o.on_message(&conv, 1);
        o.on_message(&conv, 2);
        o.pull_finished(&conv, false, 2);
        assert!(s.poll_complete(&o));
        assert!(!s.poll_complete(&o));
    }

    #[test]
    fn non_advancing_page_stops() {
        let mut o = Orderer::new([], 4);
        let (mut s, _) = Sync::start(1);
        let page = pb::ConversationList {
            conversations: vec![info("p2p:a:b", 0)],
            has_more: true,
        };
        assert!(s.on_page(&page, &mut o).is_some());
        assert!(s.on_page(&page, &mut o).is_none());
        assert!(s.poll_complete(&o));
    }
}
