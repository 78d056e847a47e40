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
        } else if seq == c.cursor + 1 {
            c.cursor = seq;
            Verdict::Deliver
        } else {
            self.want_pull(conv);
            Verdict::Gap
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

    /// A pull page for `conv` was answered; its messages have already gone through
    /// [`Orderer::on_message`]. Schedules the next page if there is more and this one helped.
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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

    // ---- Model-based test -------------------------------------------------------------
    //
    // A model server keeps one log per conversation. Messages reach the client through a
    // network that loses, duplicates and reorders (pushes, acks of our own sends, pull
    // results); connections drop; every reconnect syncs (the conversation list gives each
    // log's last seq). Whatever happens, the application must see each conversation's
    // messages exactly once, in order, without gaps, and after a final sync all of them.

    const CONVS: usize = 3;
    const PAGE: usize = 3;

    #[derive(Debug, Clone)]
    enum Op {
        /// Another user stores a message; the server pushes it (maybe never arrives).
        Store { conv: usize },
        /// The client's own send is stored; its ack enters the network.
        OwnSend { conv: usize },
        /// Deliver the network item at this (wrapped) index.
        Deliver(usize),
        /// Deliver the item at this index and keep a copy (a retransmit).
        Duplicate(usize),
        /// Lose the item at this index.
        Lose(usize),
        /// Issue the pulls the orderer asks for.
        IssuePulls,
        /// The connection drops, then the client reconnects and syncs.
        Reconnect,
    }

    #[derive(Debug, Clone)]
    enum Wire {
        Push {
            conv: usize,
            seq: Seq,
        },
        Ack {
            conv: usize,
            seq: Seq,
        },
        /// The server read its log when the request arrived (at issue time); the answer
        /// may reach the client after later pushes.
        PullAnswer {
            conv: usize,
            seqs: Vec<Seq>,
            has_more: bool,
            last_seq: Seq,
            epoch: u32,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0..CONVS).prop_map(|conv| Op::Store { conv }),
            2 => (0..CONVS).prop_map(|conv| Op::OwnSend { conv }),
            6 => any::<usize>().prop_map(Op::Deliver),
            2 => any::<usize>().prop_map(Op::Duplicate),
            1 => any::<usize>().prop_map(Op::Lose),
            2 => Just(Op::IssuePulls),
            1 => Just(Op::Reconnect),
        ]
    }

    struct Model {
        logs: Vec<Seq>,
        net: Vec<Wire>,
        epoch: u32,
        orderer: Orderer,
        seen: Vec<Vec<Seq>>,
        /// Highest seq the client has heard of, per conversation.
        heard: Vec<Seq>,
        pulls: usize,
    }

    impl Model {
        fn new(max_in_flight: usize) -> Self {
            Self {
                logs: vec![0; CONVS],
                net: Vec::new(),
                epoch: 0,
                orderer: Orderer::new([], max_in_flight),
                seen: vec![Vec::new(); CONVS],
                heard: vec![0; CONVS],
                pulls: 0,
            }
        }

        fn take(&mut self, i: usize) -> Option<Wire> {
            if self.net.is_empty() {
                return None;
            }
            let i = i % self.net.len();
            Some(self.net.swap_remove(i))
        }

        fn offer(&mut self, conv: usize, seq: Seq) {
            self.heard[conv] = self.heard[conv].max(seq);
            if self.orderer.on_message(&conv_id(conv), seq) == Verdict::Deliver {
                self.seen[conv].push(seq);
            }
        }

        fn receive(&mut self, w: Wire) {
            match w {
                Wire::Push { conv, seq } | Wire::Ack { conv, seq } => self.offer(conv, seq),
                Wire::PullAnswer {
                    conv,
                    seqs,
                    has_more,
                    last_seq,
                    epoch,
                } => {
                    if epoch != self.epoch {
                        // Answers to a dead connection never arrive on the new one.
                        return;
                    }
                    for seq in seqs {
                        self.offer(conv, seq);
                    }
                    self.heard[conv] = self.heard[conv].max(last_seq);
                    self.orderer
                        .pull_finished(&conv_id(conv), has_more, last_seq);
                }
            }
        }

        fn issue_pulls(&mut self) {
            while let Some((c, after)) = self.orderer.poll_pull() {
                self.pulls += 1;
                let conv = conv_index(&c);
                let last_seq = self.logs[conv];
                let end = last_seq.min(after + PAGE as Seq);
                self.net.push(Wire::PullAnswer {
                    conv,
                    seqs: (after + 1..=end).collect(),
                    has_more: end < last_seq,
                    last_seq,
                    epoch: self.epoch,
                });
            }
        }

        fn reconnect(&mut self) {
            self.epoch += 1;
            self.net.retain(|w| !matches!(w, Wire::PullAnswer { .. }));
            self.orderer.connection_lost();
            for conv in 0..CONVS {
                self.orderer.on_known(&conv_id(conv), self.logs[conv]);
                self.heard[conv] = self.heard[conv].max(self.logs[conv]);
            }
        }

        fn apply(&mut self, op: Op) {
            match op {
                Op::Store { conv } => {
                    self.logs[conv] += 1;
                    self.net.push(Wire::Push {
                        conv,
                        seq: self.logs[conv],
                    });
                }
                Op::OwnSend { conv } => {
                    self.logs[conv] += 1;
                    self.net.push(Wire::Ack {
                        conv,
                        seq: self.logs[conv],
                    });
                }
                Op::Deliver(i) => {
                    if let Some(w) = self.take(i) {
                        self.receive(w);
                    }
                }
                Op::Duplicate(i) => {
                    if let Some(w) = self.take(i) {
                        // Pushes are retransmitted and sends retried; a pull is answered
                        // once (the driver matches answers by request id).
                        if !matches!(w, Wire::PullAnswer { .. }) {
                            self.net.push(w.clone());
                        }
                        self.receive(w);
                    }
                }
                Op::Lose(i) => {
                    // Pull answers are not lost on a live connection (TCP); pushes and acks
                    // can be (the connection that carried them dropped).
                    if let Some(w) = self.take(i)
                        && matches!(w, Wire::PullAnswer { .. })
                    {
                        self.net.push(w);
                    }
                }
                Op::IssuePulls => self.issue_pulls(),
                Op::Reconnect => self.reconnect(),
            }
        }

        /// Delivers everything in flight and answers pulls until nothing moves.
        fn drain(&mut self) {
            loop {
                self.issue_pulls();
                let Some(w) = self.net.pop() else { break };
                self.receive(w);
            }
        }

        fn check_prefix(&self) -> Result<(), TestCaseError> {
            for (conv, seen) in self.seen.iter().enumerate() {
                for (i, seq) in seen.iter().enumerate() {
                    prop_assert_eq!(*seq, i as Seq + 1, "conversation {} saw {:?}", conv, seen);
                }
                prop_assert_eq!(self.orderer.cursor(&conv_id(conv)), seen.len() as Seq);
            }
            Ok(())
        }
    }

    fn conv_id(i: usize) -> ConvId {
        conv(i)
    }

    fn conv_index(c: &ConvId) -> usize {
        (0..CONVS).find(|&i| &conv(i) == c).unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn every_seq_exactly_once_in_order(
            ops in proptest::collection::vec(op(), 0..200),
            max_in_flight in 1usize..4,
        ) {
            let mut m = Model::new(max_in_flight);
            for op in ops {
                m.apply(op);
                m.check_prefix()?;
            }
            // Without a reconnect, the client catches up with everything it heard of.
            m.drain();
            m.check_prefix()?;
            for conv in 0..CONVS {
                prop_assert_eq!(m.seen[conv].len() as Seq, m.heard[conv], "conversation {}", conv);
            }
            // A reconnect's sync brings what was lost on the way.
            m.reconnect();
            m.drain();
            m.check_prefix()?;
            for conv in 0..CONVS {
                prop_assert_eq!(m.seen[conv].len() as Seq, m.logs[conv], "conversation {}", conv);
            }
            prop_assert!(m.orderer.is_settled());
            // Pulls are bounded: each one brings progress or ends a run of pages.
            let total: Seq = m.logs.iter().sum();
            prop_assert!(m.pulls as Seq <= 2 * total + 8 * CONVS as Seq * (m.epoch as Seq + 1));
        }
    }
}
