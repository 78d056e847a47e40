//! The run's message plan, as pure functions of the options: which members send, when each
//! message is due, and its priority. Every shard computes the same plan from the same
//! numbers, so the coordinator never ships a schedule.
//!
//! The run sends `N = rate × duration` messages, numbered `n = 0 .. N` and spaced `1/rate`
//! apart. Sender `j` of `S` sends the messages `n ≡ j (mod S)`, so the total rate is even
//! over time and over senders. Message `n` is HIGH when `n mod K = K − 1` (every K-th);
//! the others are LOW in the proportion `low_share`, spread evenly among them (with 0.5,
//! NORMAL and LOW alternate), and NORMAL otherwise.

use magpie_proto::pb::Priority;

/// The priorities of a run's messages.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mix {
    /// Every K-th message is HIGH (0: none).
    pub high_every: u64,
    /// Share of the other messages sent LOW (0..=1).
    pub low_share: f64,
}

impl Mix {
    /// The priority of message `n`.
    pub fn priority(self, n: u64) -> Priority {
        let k = self.high_every;
        if k > 0 && n % k == k - 1 {
            return Priority::High;
        }
        // `m`: how many non-HIGH messages come before this one.
        let m = n - n.checked_div(k).unwrap_or(0);
        let low = |i: u64| (i as f64 * self.low_share).floor();
        if low(m + 1) > low(m) {
            Priority::Low
        } else {
            Priority::Normal
        }
    }
}

/// Which sender (`0 .. senders`) member `i` of `members` is, if it sends: sender `j` is
/// member `⌊j · members / senders⌋`, which spreads the senders evenly over the members, and
/// so over the shards (each shard holds a contiguous range of members).
pub fn sender_of(i: u64, members: u64, senders: u64) -> Option<u64> {
    if senders == 0 || members == 0 || i >= members {
        return None;
    }
    // The smallest j with ⌊j · members / senders⌋ ≥ i.
    let j = (u128::from(i) * u128::from(senders)).div_ceil(u128::from(members));
    let j = u64::try_from(j).ok()?;
    (j < senders && member_of(j, members, senders) == i).then_some(j)
}

/// The member that sender `j` is.
pub fn member_of(j: u64, members: u64, senders: u64) -> u64 {
    let m = u128::from(j) * u128::from(members) / u128::from(senders.max(1));
    u64::try_from(m).unwrap_or(u64::MAX)
}

/// How many of the run's `total` messages sender `j` of `senders` sends.
pub fn messages_of(j: u64, senders: u64, total: u64) -> u64 {
    if j >= total {
        0
    } else {
        (total - j).div_ceil(senders.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kth_is_high_and_the_rest_alternate() {
        let mix = Mix {
            high_every: 4,
            low_share: 0.5,
        };
        let got: Vec<Priority> = (0..8).map(|n| mix.priority(n)).collect();
        use Priority::{High, Low, Normal};
        assert_eq!(got, vec![Normal, Low, Normal, High, Low, Normal, Low, High]);
    }

    #[test]
    fn low_share_is_respected() {
        for share in [0.0, 0.25, 0.5, 0.9, 1.0] {
            let mix = Mix {
                high_every: 0,
                low_share: share,
            };
            let lows = (0..1000)
                .filter(|&n| mix.priority(n) == Priority::Low)
                .count();
            assert_eq!(lows, (1000.0 * share) as usize, "share {share}");
        }
        let mix = Mix {
            high_every: 10,
            low_share: 0.0,
        };
        assert_eq!(
            (0..100)
                .filter(|&n| mix.priority(n) == Priority::High)
                .count(),
            10
        );
    }

    #[test]
    fn senders_are_spread_and_distinct() {
        for (members, senders) in [(10, 3), (2000, 20), (7, 7), (5, 1), (15_000, 100)] {
            let found: Vec<(u64, u64)> = (0..members)
                .filter_map(|i| sender_of(i, members, senders).map(|j| (i, j)))
                .collect();
            assert_eq!(found.len() as u64, senders, "{members}/{senders}");
            for (i, j) in found {
                assert_eq!(member_of(j, members, senders), i);
            }
        }
        assert_eq!(sender_of(0, 10, 0), None);
    }

    #[test]
    fn messages_cover_the_total() {
        for (senders, total) in [(3, 10), (20, 20_000), (7, 3), (1, 5)] {
            let sum: u64 = (0..senders).map(|j| messages_of(j, senders, total)).sum();
            assert_eq!(sum, total);
        }
    }
}
