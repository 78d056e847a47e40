//! Sync after every (re)connect, sans-I/O: list the conversations (paged) and let the
//! [`Orderer`] pull each one that is behind the server's last `seq`.
//!
//! A fresh client (no cursors) thus receives every conversation's whole history, in order.
//! After the first complete list, later syncs pass its `version` as `since_version` and get
//! only the conversations that changed since (the others' cursors are where they were, and
//! conversations behind for other reasons are queued again by the orderer itself). The
//! listed conversations are handed back for the local conversation list.
//!
//! Sync is complete once the list is exhausted and no pull is in flight or queued; the driver
//! then emits [`Event::SyncComplete`](crate::Event::SyncComplete).

use magpie_proto::pb;

use crate::ConversationInfo;
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
    since_version: u64,
    /// The smallest version of the pages read so far.
    version: Option<u64>,
}

/// What one page of the conversation list brought.
#[derive(Debug)]
pub(crate) struct ListPage {
    /// The request for the next page, if there is one.
    pub(crate) next: Option<pb::ListConversations>,
    /// The conversations listed on this page.
    pub(crate) listed: Vec<ConversationInfo>,
    /// Set on the last page of a list read to the end: the version to pass as
    /// `since_version` next time.
    pub(crate) complete_version: Option<u64>,
}

impl Sync {
    /// Starts a sync listing what changed since `since_version` (0: everything); returns the
    /// request for the first page of the conversation list.
    pub(crate) fn start(page_size: u32, since_version: u64) -> (Self, pb::ListConversations) {
        let sync = Self {
            phase: Phase::Listing,
            page_size,
            after: String::new(),
            since_version,
            version: None,
        };
        let first = sync.request();
        (sync, first)
    }

    /// Takes in one page of the conversation list.
    pub(crate) fn on_page(
        &mut self,
        page: pb::ConversationList,
        orderer: &mut Orderer,
    ) -> ListPage {
        // Pages may be read at different list versions. The smallest one is safe to resume
        // from: a change after it is listed again (harmless), never skipped.
        self.version = Some(self.version.map_or(page.version, |v| v.min(page.version)));
        let next_after = page.conversations.last().map(|c| c.conversation.clone());
        let mut listed = Vec::with_capacity(page.conversations.len());
        for info in page.conversations {
            match ConversationInfo::from_pb(info) {
                Ok(info) => {
                    orderer.on_known(&info.conversation, info.last_seq);
                    listed.push(info);
                }
                Err(e) => tracing::warn!("ignoring listed conversation: {e}"),
            }
        }
        match next_after {
            // Pages are ordered by id; a page that does not move forward would loop forever.
            Some(after) if page.has_more && after.as_str() > self.after.as_str() => {
                self.after = after;
                ListPage {
                    next: Some(self.request()),
                    listed,
                    complete_version: None,
                }
            }
            _ => {
                let complete = !page.has_more;
                if !complete {
                    tracing::warn!(
                        "conversation list says has_more but does not advance; stopping"
                    );
                }
                self.phase = Phase::Pulling;
                ListPage {
                    next: None,
                    listed,
                    complete_version: if complete { self.version } else { None },
                }
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
            since_version: self.since_version,
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
            ..Default::default()
        }
    }

    #[test]
    fn pages_then_pulls_then_completes_once() {
        let mut o = Orderer::new([], 4);
        let (mut s, first) = Sync::start(2, 0);
        assert_eq!(first.after, "");
        let page = pb::ConversationList {
            conversations: vec![info("p2p:a:b", 2), info("p2p:a:c", 0)],
            has_more: true,
            version: 9,
            total_unread: 0,
        };
        let got = s.on_page(page, &mut o);
        assert_eq!(got.next.unwrap().after, "p2p:a:c");
        assert_eq!(got.listed.len(), 2);
        assert_eq!(got.complete_version, None, "not every page read yet");
        assert!(!s.poll_complete(&o));
        let last = pb::ConversationList {
            conversations: vec![info("garbage", 1)],
            has_more: false,
            version: 11,
            total_unread: 0,
        };
        let got = s.on_page(last, &mut o);
        assert!(got.next.is_none());
        assert!(got.listed.is_empty(), "the malformed one is skipped");
        assert_eq!(got.complete_version, Some(9), "the smallest page version");
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
    fn incremental_sync_passes_the_version() {
        let (_, first) = Sync::start(5, 42);
        assert_eq!(first.since_version, 42);
        assert_eq!(first.limit, 5);
    }

    #[test]
    fn non_advancing_page_stops_without_a_version() {
        let mut o = Orderer::new([], 4);
        let (mut s, _) = Sync::start(1, 0);
        let page = pb::ConversationList {
            conversations: vec![info("p2p:a:b", 0)],
            has_more: true,
            version: 3,
            total_unread: 0,
        };
        assert!(s.on_page(page.clone(), &mut o).next.is_some());
        let stuck = s.on_page(page, &mut o);
        assert!(stuck.next.is_none());
        assert_eq!(
            stuck.complete_version, None,
            "the list was not read to the end"
        );
        assert!(s.poll_complete(&o));
    }
}
