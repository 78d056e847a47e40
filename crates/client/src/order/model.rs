//! The ordering rule's model-based test: a model server with membership intervals, a
//! lossy, duplicating, reordering network and reconnects; every visible seq must reach the
//! application exactly once, in order, and pulls must stay bounded.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;

use super::*;

fn conv(i: usize) -> ConvId {
    ConvId::parse(&format!("p2p:u{i}:zz")).unwrap()
}

// A model server keeps one log per conversation and, for the client's user, which seqs
// are visible: conversation 0 is 1:1 (always a member); the others are groups the user
// joins late, leaves and rejoins, while other members keep writing. Messages reach the
// client through a network that loses, duplicates and reorders (pushes, acks of our own
// sends, pull results with hidden ranges); connections drop; every reconnect syncs (the
// conversation list gives each log's last visible seq). Whatever happens, the application
// must see each conversation's visible seqs exactly once, in order, none skipped, and
// after a final sync all of them — and never an invisible one.

const CONVS: usize = 3;
const PAGE: usize = 3;

#[derive(Debug, Clone)]
enum Op {
    /// Another user stores a message; the server pushes it to members (maybe never
    /// arrives).
    Store { conv: usize },
    /// The client's own send is stored (if a member); its ack enters the network.
    OwnSend { conv: usize },
    /// The user joins a group they are not in: the join event is stored and pushed.
    Join { conv: usize },
    /// The user leaves a group they are in: the leave event is stored and pushed.
    Leave { conv: usize },
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
        hidden: Vec<(Seq, Seq)>,
        has_more: bool,
        last_seq: Seq,
        epoch: u32,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..CONVS).prop_map(|conv| Op::Store { conv }),
        2 => (0..CONVS).prop_map(|conv| Op::OwnSend { conv }),
        1 => (1..CONVS).prop_map(|conv| Op::Join { conv }),
        1 => (1..CONVS).prop_map(|conv| Op::Leave { conv }),
        6 => any::<usize>().prop_map(Op::Deliver),
        2 => any::<usize>().prop_map(Op::Duplicate),
        1 => any::<usize>().prop_map(Op::Lose),
        2 => Just(Op::IssuePulls),
        1 => Just(Op::Reconnect),
    ]
}

struct Model {
    /// Per conversation, per seq (index `seq - 1`): visible to the client's user.
    visible: Vec<Vec<bool>>,
    member: Vec<bool>,
    net: Vec<Wire>,
    epoch: u32,
    orderer: Orderer,
    seen: Vec<Vec<Seq>>,
    /// Highest seq the client has heard of, per conversation.
    heard: Vec<Seq>,
    pulls: usize,
}

impl Model {
    fn new(max_in_flight: usize, member: Vec<bool>) -> Self {
        Self {
            visible: vec![Vec::new(); CONVS],
            member,
            net: Vec::new(),
            epoch: 0,
            orderer: Orderer::new([], max_in_flight),
            seen: vec![Vec::new(); CONVS],
            heard: vec![0; CONVS],
            pulls: 0,
        }
    }

    fn last(&self, conv: usize) -> Seq {
        self.visible[conv].len() as Seq
    }

    fn is_visible(&self, conv: usize, seq: Seq) -> bool {
        self.visible[conv][seq as usize - 1]
    }

    /// The visible seqs of a conversation, ascending.
    fn visible_seqs(&self, conv: usize) -> Vec<Seq> {
        (1..=self.last(conv))
            .filter(|&s| self.is_visible(conv, s))
            .collect()
    }

    /// The last seq the user may see (0 if none).
    fn last_visible(&self, conv: usize) -> Seq {
        self.visible_seqs(conv).last().copied().unwrap_or(0)
    }

    /// Appends an entry; the user sees it if a member at that point.
    fn append(&mut self, conv: usize) -> Seq {
        self.visible[conv].push(self.member[conv]);
        self.last(conv)
    }

    fn take(&mut self, i: usize) -> Option<Wire> {
        if self.net.is_empty() {
            return None;
        }
        let i = i % self.net.len();
        Some(self.net.swap_remove(i))
    }

    fn offer(&mut self, conv: usize, seq: Seq) {
        assert!(
            self.is_visible(conv, seq),
            "the server sent an invisible seq"
        );
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
                hidden,
                has_more,
                last_seq,
                epoch,
            } => {
                if epoch != self.epoch {
                    // Answers to a dead connection never arrive on the new one.
                    return;
                }
                let messages = seqs.into_iter().map(|s| (s, s)).collect();
                for item in page_items(messages, hidden, last_seq) {
                    match item {
                        PageItem::Message(seq) => self.offer(conv, seq),
                        PageItem::Hidden { from, to } => {
                            self.orderer.on_hidden(&conv_id(conv), from, to);
                        }
                    }
                }
                self.heard[conv] = self.heard[conv].max(last_seq);
                self.orderer
                    .pull_finished(&conv_id(conv), has_more, last_seq);
            }
        }
    }

    /// What the server answers to a pull after `after`, read now.
    fn answer(&self, conv: usize, after: Seq) -> Wire {
        let last_seq = self.last_visible(conv);
        let later: Vec<Seq> = self
            .visible_seqs(conv)
            .into_iter()
            .filter(|&s| s > after)
            .collect();
        let seqs: Vec<Seq> = later.iter().copied().take(PAGE).collect();
        // Hidden ranges after `after` up to the last message returned (or `last_seq`).
        let end = seqs.last().copied().unwrap_or(last_seq);
        let mut hidden: Vec<(Seq, Seq)> = Vec::new();
        for s in after + 1..=end {
            if self.is_visible(conv, s) {
                continue;
            }
            match hidden.last_mut() {
                Some((_, to)) if *to + 1 == s => *to = s,
                _ => hidden.push((s, s)),
            }
        }
        Wire::PullAnswer {
            conv,
            has_more: later.len() > seqs.len(),
            seqs,
            hidden,
            last_seq,
            epoch: self.epoch,
        }
    }

    fn issue_pulls(&mut self) {
        while let Some((c, after)) = self.orderer.poll_pull() {
            self.pulls += 1;
            let answer = self.answer(conv_index(&c), after);
            self.net.push(answer);
        }
    }

    fn reconnect(&mut self) {
        self.epoch += 1;
        self.net.retain(|w| !matches!(w, Wire::PullAnswer { .. }));
        self.orderer.connection_lost();
        for conv in 0..CONVS {
            let last = self.last_visible(conv);
            self.orderer.on_known(&conv_id(conv), last);
            self.heard[conv] = self.heard[conv].max(last);
        }
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Store { conv } => {
                let seq = self.append(conv);
                if self.member[conv] {
                    self.net.push(Wire::Push { conv, seq });
                }
            }
            Op::OwnSend { conv } => {
                // A non-member's send is refused: nothing is stored.
                if self.member[conv] {
                    let seq = self.append(conv);
                    self.net.push(Wire::Ack { conv, seq });
                }
            }
            Op::Join { conv } => {
                if !self.member[conv] {
                    self.member[conv] = true;
                    let seq = self.append(conv);
                    self.net.push(Wire::Push { conv, seq });
                }
            }
            Op::Leave { conv } => {
                if self.member[conv] {
                    // The leave event is the last entry the leaver sees.
                    let seq = self.append(conv);
                    self.member[conv] = false;
                    self.net.push(Wire::Push { conv, seq });
                }
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

    /// Every conversation's deliveries are exactly its visible seqs up to the cursor,
    /// in order.
    fn check_prefix(&self) -> Result<(), TestCaseError> {
        for (conv, seen) in self.seen.iter().enumerate() {
            let cursor = self.orderer.cursor(&conv_id(conv));
            prop_assert!(cursor <= self.last(conv));
            let want: Vec<Seq> = self
                .visible_seqs(conv)
                .into_iter()
                .filter(|&s| s <= cursor)
                .collect();
            prop_assert_eq!(seen, &want, "conversation {} (cursor {})", conv, cursor);
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
    fn every_visible_seq_exactly_once_in_order(
        ops in proptest::collection::vec(op(), 0..200),
        max_in_flight in 1usize..4,
        member in proptest::collection::vec(any::<bool>(), CONVS - 1),
    ) {
        let mut membership = vec![true];
        membership.extend(member);
        let mut m = Model::new(max_in_flight, membership);
        for op in ops {
            m.apply(op);
            m.check_prefix()?;
        }
        // Without a reconnect, the client catches up with everything it heard of.
        m.drain();
        m.check_prefix()?;
        for conv in 0..CONVS {
            let want: Vec<Seq> = m
                .visible_seqs(conv)
                .into_iter()
                .filter(|&s| s <= m.heard[conv])
                .collect();
            prop_assert_eq!(&m.seen[conv], &want, "conversation {}", conv);
        }
        // A reconnect's sync brings what was lost on the way.
        m.reconnect();
        m.drain();
        m.check_prefix()?;
        for conv in 0..CONVS {
            prop_assert_eq!(&m.seen[conv], &m.visible_seqs(conv), "conversation {}", conv);
        }
        prop_assert!(m.orderer.is_settled());
        // Pulls are bounded: each one brings progress or ends a run of pages.
        let total: Seq = (0..CONVS).map(|c| m.last(c)).sum();
        prop_assert!(m.pulls as Seq <= 2 * total + 8 * CONVS as Seq * (m.epoch as Seq + 1));
    }
}
