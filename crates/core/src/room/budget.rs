//! The downstream budget of a live room.
//!
//! Every connection in a room may receive at most `rate` best-effort (normal and low)
//! messages per second; high-priority messages are outside the budget and never dropped.
//! All connections of a room share one budget and one selection per batching window: they
//! all see the same stream, so choosing once per window (instead of once per connection)
//! gives each of them the same fair sample and lets the batch be encoded once.
//!
//! The budget is a token bucket: `rate` tokens per second, holding at most one second's
//! worth, so over any interval of `t` seconds a connection receives at most
//! `rate * t + rate` best-effort messages. When a window holds more candidates than tokens,
//! low-priority messages are dropped first; if normal ones alone still exceed the tokens,
//! they are sampled fairly across senders: round-robin over the senders (each sender's own
//! messages in arrival order), starting from a sender that rotates every window, so no
//! sender is favoured and a flooding sender cannot crowd out the others.

use magpie_types::Priority;

/// The token bucket of one room's downstream budget.
#[derive(Debug, Clone)]
pub struct Budget {
    rate: f64,
    tokens: f64,
    last_ms: u64,
}

impl Budget {
    /// A full bucket of `rate_per_s` tokens at time `now_ms`.
    pub fn new(rate_per_s: u32, now_ms: u64) -> Self {
        Self {
            rate: f64::from(rate_per_s),
            tokens: f64::from(rate_per_s),
            last_ms: now_ms,
        }
    }

    /// Changes the rate (a room setting changed); the tokens held are capped to it.
    pub fn set_rate(&mut self, rate_per_s: u32) {
        self.rate = f64::from(rate_per_s);
        self.tokens = self.tokens.min(self.rate);
    }

    /// Refills for the time since the last call and returns the whole tokens available.
    pub fn available(&mut self, now_ms: u64) -> usize {
        let elapsed = now_ms.saturating_sub(self.last_ms);
        self.last_ms = self.last_ms.max(now_ms);
        #[allow(clippy::cast_precision_loss)] // milliseconds well below 2^52
        let refill = self.rate * (elapsed as f64) / 1000.0;
        self.tokens = (self.tokens + refill).min(self.rate);
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // 0 <= tokens <= rate
        let whole = self.tokens.floor() as usize;
        whole
    }

    /// Spends `n` tokens (at most what [`Self::available`] returned).
    pub fn spend(&mut self, n: usize) {
        #[allow(clippy::cast_precision_loss)] // n <= rate <= u32::MAX
        let n = n as f64;
        self.tokens = (self.tokens - n).max(0.0);
    }
}

/// A message waiting in a batching window: its priority and who sent it (any key that
/// identifies the sender).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate<S> {
    /// The message's priority.
    pub priority: Priority,
    /// The sender.
    pub sender: S,
}

/// What a window delivers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selection {
    /// Indexes of the candidates to deliver, in arrival order.
    pub keep: Vec<usize>,
    /// Normal-priority candidates dropped.
    pub dropped_normal: usize,
    /// Low-priority candidates dropped.
    pub dropped_low: usize,
}

impl Selection {
    /// Best-effort (normal and low) messages kept: what the window spends of the budget.
    pub fn best_effort_kept<S>(&self, candidates: &[Candidate<S>]) -> usize {
        self.keep
            .iter()
            .filter(|&&i| candidates[i].priority != Priority::High)
            .count()
    }
}

/// Chooses which `candidates` (in arrival order) a window delivers with `tokens` budget
/// tokens available. `rotation` picks the sender the fair sampling starts from (pass a
/// counter that advances every window).
pub fn select<S: PartialEq + Copy>(
    candidates: &[Candidate<S>],
    tokens: usize,
    rotation: usize,
) -> Selection {
    let mut keep = vec![false; candidates.len()];
    let mut normal = Vec::new();
    let mut low = Vec::new();
    for (i, c) in candidates.iter().enumerate() {
        match c.priority {
            Priority::High => keep[i] = true,
            Priority::Normal => normal.push(i),
            Priority::Low => low.push(i),
        }
    }
    let mut out = Selection::default();
    if normal.len() <= tokens {
        let left = tokens - normal.len();
        for &i in normal.iter().chain(low.iter().take(left)) {
            keep[i] = true;
        }
        out.dropped_low = low.len().saturating_sub(left);
    } else {
        for i in fair_sample(candidates, &normal, tokens, rotation) {
            keep[i] = true;
        }
        out.dropped_normal = normal.len() - tokens;
        out.dropped_low = low.len();
    }
    out.keep = keep
        .iter()
        .enumerate()
        .filter_map(|(i, &k)| k.then_some(i))
        .collect();
    out
}

/// `n` of `indexes` (all of one priority, in arrival order), round-robin over their senders.
fn fair_sample<S: PartialEq + Copy>(
    candidates: &[Candidate<S>],
    indexes: &[usize],
    n: usize,
    rotation: usize,
) -> Vec<usize> {
    // Per sender, in order of first appearance: that sender's messages in arrival order.
    let mut queues: Vec<(S, Vec<usize>)> = Vec::new();
    for &i in indexes {
        let s = candidates[i].sender;
        match queues.iter_mut().find(|(q, _)| *q == s) {
            Some((_, q)) => q.push(i),
            None => queues.push((s, vec![i])),
        }
    }
    let mut picked = Vec::with_capacity(n);
    let start = if queues.is_empty() {
        0
    } else {
        rotation % queues.len()
    };
    let mut depth = 0;
    while picked.len() < n {
        let mut any = false;
        for k in 0..queues.len() {
            let q = &queues[(start + k) % queues.len()].1;
            if let Some(&i) = q.get(depth) {
                any = true;
                picked.push(i);
                if picked.len() == n {
                    break;
                }
            }
        }
        if !any {
            break;
        }
        depth += 1;
    }
    picked
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn c(priority: Priority, sender: u8) -> Candidate<u8> {
        Candidate { priority, sender }
    }

    #[test]
    fn under_budget_everything_goes() {
        let cs = [
            c(Priority::Normal, 1),
            c(Priority::Low, 2),
            c(Priority::High, 1),
        ];
        let s = select(&cs, 2, 0);
        assert_eq!(s.keep, vec![0, 1, 2]);
        assert_eq!((s.dropped_normal, s.dropped_low), (0, 0));
    }

    #[test]
    fn low_is_dropped_before_normal() {
        let cs = [
            c(Priority::Low, 1),
            c(Priority::Normal, 2),
            c(Priority::Low, 3),
            c(Priority::Normal, 4),
        ];
        let s = select(&cs, 3, 0);
        assert_eq!(s.keep, vec![0, 1, 3]);
        assert_eq!((s.dropped_normal, s.dropped_low), (0, 1));
    }

    #[test]
    fn high_is_never_dropped_and_costs_nothing() {
        let cs = [
            c(Priority::High, 1),
            c(Priority::High, 2),
            c(Priority::Low, 3),
        ];
        let s = select(&cs, 0, 0);
        assert_eq!(s.keep, vec![0, 1]);
        assert_eq!(s.best_effort_kept(&cs), 0);
        assert_eq!(s.dropped_low, 1);
    }

    #[test]
    fn a_flooding_sender_does_not_crowd_out_others() {
        // Sender 1 sends 10, senders 2 and 3 one each; 3 tokens: one from each sender.
        let mut cs: Vec<_> = (0..10).map(|_| c(Priority::Normal, 1)).collect();
        cs.push(c(Priority::Normal, 2));
        cs.push(c(Priority::Normal, 3));
        let s = select(&cs, 3, 0);
        assert_eq!(s.keep, vec![0, 10, 11]);
        assert_eq!(s.dropped_normal, 9);
    }

    #[test]
    fn the_bucket_refills_at_its_rate_and_holds_one_second() {
        let mut b = Budget::new(40, 0);
        assert_eq!(b.available(0), 40);
        b.spend(40);
        assert_eq!(b.available(50), 2);
        b.spend(2);
        assert_eq!(b.available(60_000), 40);
    }

    proptest! {
        /// Over any sequence of windows, the best-effort messages kept never exceed the
        /// bucket's bound (rate * elapsed + rate), every high message is kept, and kept +
        /// dropped accounts for every candidate.
        #[test]
        fn budget_bound_and_accounting(
            windows in proptest::collection::vec(
                (1u64..200, proptest::collection::vec((0u8..3, 0u8..5), 0..60)), 1..80),
            rate in 1u32..100,
        ) {
            let mut b = Budget::new(rate, 0);
            let mut now = 0;
            let mut kept_best_effort = 0usize;
            for (rotation, (dt, raw)) in windows.into_iter().enumerate() {
                now += dt;
                let cs: Vec<_> = raw.iter().map(|&(p, s)| c(match p {
                    0 => Priority::High, 1 => Priority::Normal, _ => Priority::Low }, s)).collect();
                let tokens = b.available(now);
                let s = select(&cs, tokens, rotation);
                let be = s.best_effort_kept(&cs);
                prop_assert!(be <= tokens);
                b.spend(be);
                kept_best_effort += be;
                let highs = cs.iter().filter(|c| c.priority == Priority::High).count();
                prop_assert_eq!(s.keep.len() + s.dropped_normal + s.dropped_low, cs.len());
                prop_assert_eq!(s.keep.len() - be, highs);
                prop_assert!(s.keep.windows(2).all(|w| w[0] < w[1]));
                if s.dropped_normal > 0 {
                    // Normal is sampled only once every low one is gone.
                    let lows_kept = s.keep.iter().filter(|&&i| cs[i].priority == Priority::Low).count();
                    prop_assert_eq!(lows_kept, 0);
                }
            }
            let bound = f64::from(rate) * (now as f64) / 1000.0 + f64::from(rate);
            prop_assert!((kept_best_effort as f64) <= bound + 1e-9);
        }
    }
}
