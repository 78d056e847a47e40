//! The ordering rule, sans-I/O: each conversation's messages reach the application exactly
//! once, in `seq` order, without gaps.
//!
//! Per conversation the [`Orderer`] keeps `cursor`, the highest `seq` handed to the
//! application, and `known`, the highest `seq` it has heard of (from a push, a send ack, a
//! conversation list or a pull page). A message — pushed, pulled, or built from our own send's
//! ack — is delivered only if its `seq` is `cursor + 1`; at or below the cursor it is a
//! duplicate; above `cursor + 1` it is a gap, and the conversation is pulled from the cursor
//! (pages go through the same rule, so late copies of pushes become duplicates). Out-of-order
//! messages are not buffered: `known` remembers that they exist, and pulling continues while
//! `cursor < known` and pulls make progress. A pull that makes no progress stops (so a server
//! that misbehaves cannot make the client spin); the next hint or sync tries again.
//!
//! Seqs the user may not see (a group's log before they joined, or between leaving and
//! rejoining) never arrive as messages; a pull page names them as *hidden ranges* instead.
//! A hidden range that starts at or before `cursor + 1` moves the cursor to its end, exactly
//! as if its seqs had been delivered, and counts as progress; [`page_items`] puts a page's
//! messages and ranges into one seq order so that each is applied when the cursor reaches
//! it. Pushes carry no ranges: a push far beyond the cursor (the event of our own join) is a
//! gap like any other, and the pull that fills it brings the ranges.
//!
//! Inputs arrive through `on_*` methods; the pulls to issue leave through
//! [`Orderer::poll_pull`]. No I/O, no clock, no tokio.

use std::collections::{HashMap, VecDeque};

use magpie_types::{ConvId, Seq};

/// What to do with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The next message: hand it to the application (the cursor has advanced).
    Deliver,
    /// Already delivered: drop it.
    Duplicate,
    /// Beyond the next one: drop it; a pull of the conversation has been scheduled.
    Gap,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Pull {
    /// No pull scheduled.
    #[default]
    Idle,
    /// In the queue, waiting for a free slot.
    Queued,
    /// A pull request is in flight; it asked for messages after `from`.
    InFlight { from: Seq },
}

#[derive(Debug, Default)]
struct Conv {
    cursor: Seq,
    known: Seq,
    pull: Pull,
}

/// Per-conversation cursors and pull scheduling.
#[derive(Debug)]
pub(crate) struct Orderer {
    convs: HashMap<ConvId, Conv>,
    queue: VecDeque<ConvId>,
    in_flight: usize,
    max_in_flight: usize,
}

impl Orderer {
    /// An orderer with seeded cursors, issuing at most `max_in_flight` pulls at a time.
    pub(crate) fn new(
        cursors: impl IntoIterator<Item = (ConvId, Seq)>,
        max_in_flight: usize,
    ) -> Self {
        let convs = cursors
            .into_iter()
            .map(|(id, cursor)| {
                let conv = Conv {
                    cursor,
                    known: cursor,
                    pull: Pull::Idle,
                };
                (id, conv)
            })
            .collect();
        Self {
            convs,
            queue: VecDeque::new(),
            in_flight: 0,
            max_in_flight: max_in_flight.max(1),
        }
    }

    /// The highest `seq` delivered for `conv` (0 if none).
    #[cfg(test)]
    pub(crate) fn cursor(&self, conv: &ConvId) -> Seq {
        self.convs.get(conv).map_or(0, |c| c.cursor)
    }

    /// Every conversation's cursor.
    pub(crate) fn cursors(&self) -> HashMap<ConvId, Seq> {
        self.convs
            .iter()
            .map(|(id, c)| (id.clone(), c.cursor))
            .collect()
    }

    /// Applies the rule to one message of `conv` (pushed, pulled, or our own acked send).
    pub(crate) fn on_message(&mut self, conv: &ConvId, seq: Seq) -> Verdict {
        let c = self.conv_mut(conv);
        c.known = c.known.max(seq);
        if seq <= c.cursor {
            Verdict::Duplicate
        } else if seq == c.cursor.saturating_add(1) {
            c.cursor = seq;
            Verdict::Deliver
        } else {
            self.want_pull(conv);
            Verdict::Gap
        }
    }

    /// A pull page says the seqs `from..=to` of `conv` are not visible to this user. Moves the
    /// cursor to `to` if the range starts at or before the next expected seq; a range further
    /// ahead is a gap (a message before it is missing) and schedules a pull. Returns whether
    /// the cursor moved.
    pub(crate) fn on_hidden(&mut self, conv: &ConvId, from: Seq, to: Seq) -> bool {
        if from > to {
            return false;
        }
        let c = self.conv_mut(conv);
        c.known = c.known.max(to);
        if to <= c.cursor {
            false
        } else if from <= c.cursor.saturating_add(1) {
            c.cursor = to;
            true
        } else {
            self.want_pull(conv);
            false
        }
    }

    /// The server says `conv` has messages up to `last_seq` (a conversation list, or an ack
    /// whose send the client no longer tracks). Schedules a pull if that is news.
    pub(crate) fn on_known(&mut self, conv: &ConvId, last_seq: Seq) {
        let c = self.conv_mut(conv);
        c.known = c.known.max(last_seq);
        if last_seq > c.cursor {
            self.want_pull(conv);
        }
    }

    /// The next pull to issue, as `(conversation, after_seq)`, if a slot is free.
    pub(crate) fn poll_pull(&mut self) -> Option<(ConvId, Seq)> {
        while self.in_flight < self.max_in_flight {
            let id = self.queue.pop_front()?;
            let Some(c) = self.convs.get_mut(&id) else {
                continue;
            };
            if c.pull != Pull::Queued {
                continue;
            }
            if c.cursor >= c.known {
                // Caught up by pushes while queued.
                c.pull = Pull::Idle;
                continue;
            }
            c.pull = Pull::InFlight { from: c.cursor };
            self.in_flight += 1;
            return Some((id, c.cursor));
        }
        None
    }

    /// A pull page for `conv` was answered; its messages and hidden ranges have already gone
    /// through [`Orderer::on_message`] and [`Orderer::on_hidden`], in the order of
    /// [`page_items`]. Schedules the next page if there is more and this one helped.
    pub(crate) fn pull_finished(&mut self, conv: &ConvId, has_more: bool, last_seq: Seq) {
        let Some(c) = self.convs.get_mut(conv) else {
            return;
        };
        c.known = c.known.max(last_seq);
        let Pull::InFlight { from } = c.pull else {
            return;
        };
        c.pull = Pull::Idle;
        self.in_flight -= 1;
        let progressed = c.cursor > from;
        if progressed && (has_more || c.cursor < c.known) {
            self.want_pull(conv);
        }
    }

    /// A pull for `conv` failed (the server answered with an error): stop pulling it until
    /// the next hint.
    pub(crate) fn pull_failed(&mut self, conv: &ConvId) {
        if let Some(c) = self.convs.get_mut(conv)
            && matches!(c.pull, Pull::InFlight { .. })
        {
            c.pull = Pull::Idle;
            self.in_flight -= 1;
        }
    }

    /// The connection was lost: in-flight pulls will never be answered. Conversations that are
    /// behind are queued again for the next connection.
    pub(crate) fn connection_lost(&mut self) {
        self.queue.clear();
        self.in_flight = 0;
        for (id, c) in &mut self.convs {
            c.pull = Pull::Idle;
            if c.cursor < c.known {
                c.pull = Pull::Queued;
                self.queue.push_back(id.clone());
            }
        }
    }

    /// No pull is in flight or waiting to be issued.
    pub(crate) fn is_settled(&self) -> bool {
        self.in_flight == 0
            && self.queue.iter().all(|id| {
                self.convs
                    .get(id)
                    .is_none_or(|c| c.pull != Pull::Queued || c.cursor >= c.known)
            })
    }

    fn conv_mut(&mut self, conv: &ConvId) -> &mut Conv {
        // Look up first so that the common case does not clone the id.
        if !self.convs.contains_key(conv) {
            self.convs.insert(conv.clone(), Conv::default());
        }
        // Invariant: inserted just above if it was absent.
        self.convs.get_mut(conv).expect("conversation present")
    }

    fn want_pull(&mut self, conv: &ConvId) {
        let c = self.conv_mut(conv);
        if c.pull == Pull::Idle {
            c.pull = Pull::Queued;
            self.queue.push_back(conv.clone());
        }
    }
}

/// One step of a pull page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PageItem<M> {
    /// A message: goes through [`Orderer::on_message`].
    Message(M),
    /// Seqs `from..=to` the user may not see: go through [`Orderer::on_hidden`].
    Hidden {
        /// First hidden seq.
        from: Seq,
        /// Last hidden seq.
        to: Seq,
    },
}

/// A pull page's messages and hidden ranges in one ascending seq order (a message before a
/// range starting at the same seq, which a correct server never sends).
///
/// Ranges are checked against the page: one that is empty is dropped, and none may reach
/// beyond the page's last message or its `last_seq` — a range past both would let a
/// misbehaving server move the cursor over messages the user may see.
pub(crate) fn page_items<M>(
    messages: Vec<(Seq, M)>,
    hidden: impl IntoIterator<Item = (Seq, Seq)>,
    last_seq: Seq,
) -> Vec<PageItem<M>> {
    let bound = messages
        .iter()
        .map(|(seq, _)| *seq)
        .max()
        .unwrap_or(0)
        .max(last_seq);
    let mut items: Vec<(Seq, u8, PageItem<M>)> = messages
        .into_iter()
        .map(|(seq, m)| (seq, 0, PageItem::Message(m)))
        .collect();
    for (from, to) in hidden {
        let (from, to) = (from.max(1), to.min(bound));
        if from <= to {
            items.push((from, 1, PageItem::Hidden { from, to }));
        }
    }
    items.sort_by_key(|(seq, rank, _)| (*seq, *rank));
    items.into_iter().map(|(_, _, item)| item).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn conv(i: usize) -> ConvId {
        ConvId::parse(&format!("p2p:u{i}:zz")).unwrap()
    }

    #[test]
    fn duplicate_and_gap_then_pull() {
        let c = conv(0);
        let mut o = Orderer::new([], 4);
        assert_eq!(o.on_message(&c, 1), Verdict::Deliver);
        assert_eq!(o.on_message(&c, 1), Verdict::Duplicate);
        assert_eq!(o.on_message(&c, 3), Verdict::Gap);
        assert!(!o.is_settled());
        assert_eq!(o.poll_pull(), Some((c.clone(), 1)));
        assert_eq!(o.poll_pull(), None);
        assert_eq!(o.on_message(&c, 2), Verdict::Deliver);
        assert_eq!(o.on_message(&c, 3), Verdict::Deliver);
        o.pull_finished(&c, false, 3);
        assert!(o.is_settled());
        assert_eq!(o.cursor(&c), 3);
    }

    #[test]
    fn seeded_cursor_and_stalled_pull_stop() {
        let c = conv(0);
        let mut o = Orderer::new([(c.clone(), 5)], 1);
        assert_eq!(o.on_message(&c, 5), Verdict::Duplicate);
        o.on_known(&c, 9);
        assert_eq!(o.poll_pull(), Some((c.clone(), 5)));
        // A page that brings nothing stops pulling instead of spinning.
        o.pull_finished(&c, true, 9);
        assert_eq!(o.poll_pull(), None);
        assert!(o.is_settled());
        // The next hint tries again.
        o.on_known(&c, 9);
        assert_eq!(o.poll_pull(), Some((c, 5)));
    }

    #[test]
    fn hidden_ranges_move_the_cursor_and_count_as_progress() {
        let c = conv(0);
        let mut o = Orderer::new([], 4);
        // Joined at 6: the push of the join event is a gap.
        assert_eq!(o.on_message(&c, 6), Verdict::Gap);
        assert_eq!(o.poll_pull(), Some((c.clone(), 0)));
        let page = page_items(vec![(6, "join")], [(1, 5)], 6);
        assert_eq!(
            page,
            [
                PageItem::Hidden { from: 1, to: 5 },
                PageItem::Message("join")
            ]
        );
        assert!(o.on_hidden(&c, 1, 5));
        assert_eq!(o.on_message(&c, 6), Verdict::Deliver);
        o.pull_finished(&c, false, 6);
        assert!(o.is_settled());
        assert_eq!(o.cursor(&c), 6);
        // A stale range is nothing; one beyond the next seq is a gap.
        assert!(!o.on_hidden(&c, 2, 4));
        assert!(!o.on_hidden(&c, 9, 10));
        assert_eq!(o.poll_pull(), Some((c.clone(), 6)));
        // Left at 8, rejoined at 11: the range starts right after the cursor.
        assert_eq!(o.on_message(&c, 7), Verdict::Deliver);
        assert_eq!(o.on_message(&c, 8), Verdict::Deliver);
        assert!(o.on_hidden(&c, 9, 10));
        assert_eq!(o.on_message(&c, 11), Verdict::Deliver);
        o.pull_finished(&c, false, 11);
        assert!(o.is_settled());
        assert!(!o.on_hidden(&c, 15, 14), "an empty range");
    }

    #[test]
    fn page_ranges_are_bounded_by_the_page() {
        let items = page_items(vec![(4, ())], [(1, 3), (5, u64::MAX), (0, 0), (7, 6)], 4);
        assert_eq!(
            items,
            [PageItem::Hidden { from: 1, to: 3 }, PageItem::Message(())]
        );
        // Without messages, `last_seq` bounds them.
        let items = page_items::<()>(Vec::new(), [(3, 9)], 6);
        assert_eq!(items, [PageItem::Hidden { from: 3, to: 6 }]);
    }

    #[test]
    fn pulls_are_limited_in_flight() {
        let mut o = Orderer::new([], 2);
        for i in 0..3 {
            o.on_known(&conv(i), 1);
        }
        assert!(o.poll_pull().is_some());
        assert!(o.poll_pull().is_some());
        assert_eq!(o.poll_pull(), None);
        o.pull_failed(&conv(0));
        assert_eq!(o.poll_pull(), Some((conv(2), 0)));
    }
}

#[cfg(test)]
mod model;
