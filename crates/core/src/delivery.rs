//! Per-connection delivery tracking: which pushed messages the device has not acknowledged,
//! when to push them again, and when to give up on the connection.
//!
//! The tracker is generic over the payload (the gateway stores the encoded frame bytes, so a
//! retransmission re-sends the same bytes without re-encoding) and takes time as a plain
//! millisecond counter. Deadlines are kept in a queue in send order: the timeout is constant,
//! so the queue is sorted by deadline and polling is amortised O(1). Acknowledged entries are
//! left in the queue and skipped lazily.

use std::collections::{HashMap, VecDeque};

use magpie_types::{ConvId, Seq};

/// Tuning for a [`DeliveryTracker`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryConfig {
    /// How long to wait for an ack before pushing again, in milliseconds.
    pub ack_timeout_ms: u64,
    /// Pushes of one message before the connection is declared failed (the device will
    /// sync what it missed when it reconnects).
    pub max_attempts: u32,
    /// Most unacknowledged messages per connection; beyond that the device is not keeping
    /// up and the connection is declared failed.
    pub max_pending: usize,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            ack_timeout_ms: 5_000,
            max_attempts: 4,
            max_pending: 4_096,
        }
    }
}

/// What the connection must do after [`DeliveryTracker::poll`].
#[derive(Debug, PartialEq, Eq)]
pub enum Poll<P> {
    /// Nothing is due.
    Idle,
    /// Push these again.
    Resend(Vec<P>),
    /// A message exhausted its attempts: close the connection.
    Failed,
}

/// The tracker is over its pending limit: close the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many unacknowledged pushes")]
pub struct Overflow;

#[derive(Debug)]
struct Pending<P> {
    payload: P,
    attempts: u32,
    deadline: u64,
    /// When it was first pushed (for the push-to-ack latency).
    first_push: u64,
}

/// Unacknowledged pushes of one connection.
#[derive(Debug)]
pub struct DeliveryTracker<P> {
    config: DeliveryConfig,
    pending: HashMap<(ConvId, Seq), Pending<P>>,
    queue: VecDeque<(u64, (ConvId, Seq))>,
}

impl<P: Clone> DeliveryTracker<P> {
    /// An empty tracker.
    pub fn new(config: DeliveryConfig) -> Self {
        Self {
            config,
            pending: HashMap::new(),
            queue: VecDeque::new(),
        }
    }

    /// Records that `(conv, seq)` was pushed at `now`. Pushing a message that is already
    /// pending keeps the earlier record (the device will ack either copy).
    pub fn on_push(
        &mut self,
        conv: ConvId,
        seq: Seq,
        payload: P,
        now: u64,
    ) -> Result<(), Overflow> {
        let key = (conv, seq);
        if self.pending.contains_key(&key) {
            return Ok(());
        }
        if self.pending.len() >= self.config.max_pending {
            return Err(Overflow);
        }
        let deadline = now + self.config.ack_timeout_ms;
        self.pending.insert(
            key.clone(),
            Pending {
                payload,
                attempts: 1,
                deadline,
                first_push: now,
            },
        );
        self.queue.push_back((deadline, key));
        Ok(())
    }

    /// Records the device's ack. Returns whether the message was pending.
    pub fn on_ack(&mut self, conv: &ConvId, seq: Seq) -> bool {
        self.take_ack(conv, seq).is_some()
    }

    /// Records the device's ack like [`Self::on_ack`]; returns when the acknowledged
    /// message was first pushed, if it was pending.
    pub fn take_ack(&mut self, conv: &ConvId, seq: Seq) -> Option<u64> {
        let removed = self.pending.remove(&(conv.clone(), seq));
        if self.pending.is_empty() {
            self.queue.clear();
        }
        removed.map(|p| p.first_push)
    }

    /// What is due at `now`.
    pub fn poll(&mut self, now: u64) -> Poll<P> {
        let mut resend = Vec::new();
        while let Some((deadline, _)) = self.queue.front() {
            if *deadline > now {
                break;
            }
            let Some((deadline, key)) = self.queue.pop_front() else {
                break;
            };
            let Some(p) = self.pending.get_mut(&key) else {
                continue; // acknowledged since
            };
            if p.deadline != deadline {
                continue; // a stale queue entry of an earlier attempt
            }
            if p.attempts >= self.config.max_attempts {
                return Poll::Failed;
            }
            p.attempts += 1;
            p.deadline = now + self.config.ack_timeout_ms;
            resend.push(p.payload.clone());
            self.queue.push_back((p.deadline, key));
        }
        if resend.is_empty() {
            Poll::Idle
        } else {
            Poll::Resend(resend)
        }
    }

    /// Number of unacknowledged messages.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn conv() -> ConvId {
        ConvId::parse("p2p:a:b").unwrap()
    }

    fn cfg() -> DeliveryConfig {
        DeliveryConfig {
            ack_timeout_ms: 100,
            max_attempts: 3,
            max_pending: 10,
        }
    }

    #[test]
    fn unacked_is_resent_then_fails() {
        let mut t = DeliveryTracker::new(cfg());
        t.on_push(conv(), 1, "m1", 0).unwrap();
        assert_eq!(t.poll(99), Poll::Idle);
        assert_eq!(t.poll(100), Poll::Resend(vec!["m1"]));
        assert_eq!(t.poll(150), Poll::Idle);
        assert_eq!(t.poll(200), Poll::Resend(vec!["m1"]));
        assert_eq!(t.poll(300), Poll::Failed);
    }

    #[test]
    fn acked_is_not_resent() {
        let mut t = DeliveryTracker::new(cfg());
        t.on_push(conv(), 1, "m1", 0).unwrap();
        t.on_push(conv(), 2, "m2", 10).unwrap();
        assert!(t.on_ack(&conv(), 1));
        assert!(!t.on_ack(&conv(), 1));
        assert_eq!(t.poll(1000), Poll::Resend(vec!["m2"]));
        assert_eq!(t.pending(), 1);
    }

    #[test]
    fn overflow_is_reported() {
        let mut t = DeliveryTracker::new(cfg());
        for s in 0..10 {
            t.on_push(conv(), s, (), 0).unwrap();
        }
        assert_eq!(t.on_push(conv(), 99, (), 0), Err(Overflow));
    }

    proptest! {
        /// Model check: after any interleaving of pushes, acks and polls, a message is resent
        /// only while unacknowledged, never more than max_attempts in total, and pending()
        /// equals the model's count.
        #[test]
        fn matches_model(ops in proptest::collection::vec((0u8..3, 0u64..20, 0u64..50), 0..300)) {
            let mut t = DeliveryTracker::new(DeliveryConfig { ack_timeout_ms: 10, max_attempts: 1000, max_pending: 1000 });
            let mut model: std::collections::HashMap<u64, u32> = Default::default();
            let mut now = 0;
            for (op, seq, dt) in ops {
                now += dt;
                match op {
                    0 => {
                        t.on_push(conv(), seq, seq, now).unwrap();
                        model.entry(seq).or_insert(1);
                    }
                    1 => {
                        prop_assert_eq!(t.on_ack(&conv(), seq), model.remove(&seq).is_some());
                    }
                    _ => {
                        if let Poll::Resend(v) = t.poll(now) {
                            for s in v {
                                let a = model.get_mut(&s);
                                prop_assert!(a.is_some(), "resent an acknowledged message");
                                if let Some(a) = a { *a += 1; }
                            }
                        }
                    }
                }
                prop_assert_eq!(t.pending(), model.len());
            }
        }
    }
}
