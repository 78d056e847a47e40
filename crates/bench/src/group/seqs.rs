//! Which seqs arrived, kept compactly, and how the run scores them.
//!
//! A group's log has no gaps and pushes arrive nearly in seq order, so a member's received
//! seqs are a handful of ranges ([`SeqSet`]) however many messages the run sends: a
//! 5,000-member shard holds 5,000 small maps, not 5,000 hash sets of every seq. A shard sums
//! its members' ranges into per-seq receive counts ([`Tally`], a step function: with no
//! loss it is one run of "count = members" over the whole message range), which travels to
//! the coordinator in the worker's JSON line and is scored there against the seqs the
//! senders had acknowledged ([`score`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A set of seqs as disjoint, non-adjacent inclusive ranges.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SeqSet {
    /// Range start → range end (inclusive).
    ranges: BTreeMap<u64, u64>,
    len: u64,
}

impl SeqSet {
    /// Adds `seq`; returns whether it was new.
    pub fn insert(&mut self, seq: u64) -> bool {
        let below = self.ranges.range(..=seq).next_back().map(|(&a, &b)| (a, b));
        if let Some((_, end)) = below
            && seq <= end
        {
            return false;
        }
        let above = seq
            .checked_add(1)
            .and_then(|next| self.ranges.get(&next).map(|&end| (next, end)));
        match (
            below.filter(|&(_, end)| end.checked_add(1) == Some(seq)),
            above,
        ) {
            (Some((start, _)), Some((next, end))) => {
                self.ranges.remove(&next);
                self.ranges.insert(start, end);
            }
            (Some((start, _)), None) => {
                self.ranges.insert(start, seq);
            }
            (None, Some((next, end))) => {
                self.ranges.remove(&next);
                self.ranges.insert(seq, end);
            }
            (None, None) => {
                self.ranges.insert(seq, seq);
            }
        }
        self.len += 1;
        true
    }

    /// How many seqs it holds.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The ranges, in order.
    pub fn ranges(&self) -> Vec<(u64, u64)> {
        self.ranges.iter().map(|(&a, &b)| (a, b)).collect()
    }
}

/// One step of a [`Tally`]: seqs `first ..= last` were each received by `count` members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    /// First seq.
    pub first: u64,
    /// Last seq (inclusive).
    pub last: u64,
    /// Members that received each of them.
    pub count: u64,
}

/// How many members received each seq, as a step function (seqs nobody received are
/// absent).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally(pub Vec<Run>);

impl Tally {
    /// Sums sets of ranges (one per member) into per-seq counts.
    pub fn from_ranges<'a>(sets: impl IntoIterator<Item = &'a [(u64, u64)]>) -> Self {
        let mut steps: BTreeMap<u64, i64> = BTreeMap::new();
        for set in sets {
            for &(a, b) in set {
                *steps.entry(a).or_default() += 1;
                *steps.entry(b.saturating_add(1)).or_default() -= 1;
            }
        }
        Self::from_steps(&steps)
    }

    /// Adds another shard's tally.
    pub fn merge(&self, other: &Tally) -> Tally {
        let mut steps: BTreeMap<u64, i64> = BTreeMap::new();
        for r in self.0.iter().chain(&other.0) {
            let c = i64::try_from(r.count).unwrap_or(i64::MAX);
            *steps.entry(r.first).or_default() += c;
            *steps.entry(r.last.saturating_add(1)).or_default() -= c;
        }
        Self::from_steps(&steps)
    }

    fn from_steps(steps: &BTreeMap<u64, i64>) -> Self {
        let mut runs: Vec<Run> = Vec::new();
        let mut level = 0i64;
        let mut points = steps.iter().peekable();
        while let Some((&at, &delta)) = points.next() {
            level += delta;
            let Some(&(&next, _)) = points.peek() else {
                break;
            };
            let count = u64::try_from(level).unwrap_or(0);
            if count == 0 || next <= at {
                continue;
            }
            match runs.last_mut() {
                Some(r) if r.count == count && r.last + 1 == at => r.last = next - 1,
                _ => runs.push(Run {
                    first: at,
                    last: next - 1,
                    count,
                }),
            }
        }
        Self(runs)
    }
}

/// The run's delivery figures.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Score {
    /// Σ over acknowledged messages of the members that should get it.
    pub expected: u64,
    /// Of those, the deliveries that happened (each (member, seq) once).
    pub delivered: u64,
    /// `expected − delivered`.
    pub lost: u64,
    /// Deliveries of seqs no sender saw acknowledged (stored, but the ack was lost to the
    /// run's end): neither expected nor lost.
    pub unacked_delivered: u64,
}

/// Scores `received` against the `acked` seq ranges, each acked message being expected by
/// `per_message` members.
pub fn score(received: &Tally, acked: &[(u64, u64)], per_message: u64) -> Score {
    // Two step functions over seqs: members that received the seq, and whether it was
    // acked. Walk their breakpoints together.
    let mut steps: BTreeMap<u64, (i64, i64)> = BTreeMap::new();
    for r in &received.0 {
        let c = i64::try_from(r.count).unwrap_or(i64::MAX);
        steps.entry(r.first).or_default().0 += c;
        steps.entry(r.last.saturating_add(1)).or_default().0 -= c;
    }
    for &(a, b) in acked {
        steps.entry(a).or_default().1 += 1;
        steps.entry(b.saturating_add(1)).or_default().1 -= 1;
    }
    let mut s = Score::default();
    let (mut got, mut acked_level) = (0i64, 0i64);
    let mut points = steps.iter().peekable();
    while let Some((&at, &(dg, da))) = points.next() {
        got += dg;
        acked_level += da;
        let Some(&(&next, _)) = points.peek() else {
            break;
        };
        let width = next.saturating_sub(at);
        let got = u64::try_from(got).unwrap_or(0);
        if acked_level > 0 {
            let hit = got.min(per_message);
            s.expected += width * per_message;
            s.delivered += width * hit;
            s.lost += width * (per_message - hit);
        } else {
            s.unacked_delivered += width * got;
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_set_merges_neighbours_and_refuses_repeats() {
        let mut s = SeqSet::default();
        for seq in [5, 7, 6, 1, 3, 2] {
            assert!(s.insert(seq), "{seq}");
        }
        assert!(!s.insert(6));
        assert!(!s.insert(1));
        assert_eq!(s.ranges(), vec![(1, 3), (5, 7)]);
        assert!(s.insert(4));
        assert_eq!(s.ranges(), vec![(1, 7)]);
        assert_eq!(s.len(), 7);
        assert!(s.insert(u64::MAX));
        assert!(!s.insert(u64::MAX));
    }

    #[test]
    fn tally_counts_members_per_seq() {
        let a = [(10, 20)];
        let b = [(10, 14), (16, 20)];
        let t = Tally::from_ranges([&a[..], &b[..]]);
        assert_eq!(
            t.0,
            vec![
                Run {
                    first: 10,
                    last: 14,
                    count: 2
                },
                Run {
                    first: 15,
                    last: 15,
                    count: 1
                },
                Run {
                    first: 16,
                    last: 20,
                    count: 2
                },
            ]
        );
        let both = t.merge(&Tally::from_ranges([&[(15, 15)][..]]));
        assert_eq!(
            both.0,
            vec![Run {
                first: 10,
                last: 20,
                count: 2
            }]
        );
    }

    #[test]
    fn score_counts_lost_and_unacked() {
        // Three members each; seqs 10..=20 acked; member gaps at 15; seq 21 stored but its
        // ack never reached the sender.
        let t = Tally(vec![
            Run {
                first: 10,
                last: 14,
                count: 3,
            },
            Run {
                first: 15,
                last: 15,
                count: 1,
            },
            Run {
                first: 16,
                last: 21,
                count: 3,
            },
        ]);
        let s = score(&t, &[(10, 20)], 3);
        assert_eq!(s.expected, 33);
        assert_eq!(s.delivered, 31);
        assert_eq!(s.lost, 2);
        assert_eq!(s.unacked_delivered, 3);
        assert_eq!(score(&Tally::default(), &[(1, 2)], 4).lost, 8);
    }
}
