//! The delivery checker.
//!
//! It records what the server accepted (acks) and what every device received, then proves
//! the delivery contract: for every device and every conversation it should see, the
//! received `seq`s are exactly `1..=last` in order, each once, and the message at each
//! accepted `seq` is the one that was acked there (no message stored twice under two seqs).

use std::collections::{BTreeMap, HashMap, HashSet};

use magpie_client::{Message, SendAck};
use magpie_types::{ClientMsgId, ConvId, Seq, UserId};

/// What the checker found. Every field must be zero (or empty) for a clean run.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Accepted messages (or log positions) a device never received.
    pub lost: usize,
    /// Messages a device received more than once.
    pub duplicates: usize,
    /// Messages a device received after one with a higher seq.
    pub order_violations: usize,
    /// Log positions where the received message is not the one acked there, or a
    /// client_msg_id that occupies two seqs (stored twice).
    pub conflicts: usize,
    /// Acked messages in total.
    pub accepted: usize,
    /// Deliveries checked in total.
    pub delivered: usize,
    /// Human-readable details of the first problems.
    pub details: Vec<String>,
}

impl Report {
    /// Panics with the details unless the run was clean.
    pub fn assert_clean(&self) {
        assert!(
            self.lost == 0
                && self.duplicates == 0
                && self.order_violations == 0
                && self.conflicts == 0,
            "delivery contract violated: {self:#?}"
        );
    }

    fn note(&mut self, s: String) {
        if self.details.len() < 20 {
            self.details.push(s);
        }
    }
}

/// What one device received, per conversation, in arrival order.
type Received = HashMap<ConvId, Vec<(Seq, Option<ClientMsgId>)>>;

/// Records acks and receipts; see the module docs.
#[derive(Debug, Default)]
pub struct DeliveryChecker {
    accepted: HashMap<ConvId, BTreeMap<Seq, ClientMsgId>>,
    /// Per device: its user and what it received, per conversation, in arrival order.
    devices: BTreeMap<String, (UserId, Received)>,
    conflicts: Vec<String>,
}

impl DeliveryChecker {
    /// An empty checker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares a device of `user` (so that a device that received nothing is still
    /// checked).
    pub fn device(&mut self, device: &str, user: &UserId) {
        self.devices
            .entry(device.to_owned())
            .or_insert_with(|| (user.clone(), HashMap::new()));
    }

    /// Records an ack.
    pub fn accepted(&mut self, ack: &SendAck) {
        let log = self.accepted.entry(ack.conversation.clone()).or_default();
        if let Some(prev) = log.insert(ack.seq, ack.client_msg_id.clone())
            && prev != ack.client_msg_id
        {
            self.conflicts.push(format!(
                "{} seq {} acked for both {prev} and {}",
                ack.conversation, ack.seq, ack.client_msg_id
            ));
        }
    }

    /// Records that `device` received `m`.
    pub fn received(&mut self, device: &str, m: &Message) {
        let entry = self
            .devices
            .get_mut(device)
            .unwrap_or_else(|| panic!("device {device} was not declared"));
        entry
            .1
            .entry(m.conversation.clone())
            .or_default()
            .push((m.seq, m.client_msg_id.clone()));
    }

    /// Checks every declared device against `last_seq`: the final length of each
    /// conversation's log (from the server). A device must have received every seq of every
    /// conversation its user is a party of.
    pub fn check(&self, last_seq: &HashMap<ConvId, Seq>) -> Report {
        let mut r = Report {
            accepted: self.accepted.values().map(BTreeMap::len).sum(),
            ..Report::default()
        };
        for c in &self.conflicts {
            r.conflicts += 1;
            r.note(c.clone());
        }
        // A client_msg_id must occupy exactly one seq.
        for (conv, log) in &self.accepted {
            let mut seen = HashSet::new();
            for cmid in log.values() {
                if !seen.insert(cmid) {
                    r.conflicts += 1;
                    r.note(format!("{conv}: {cmid} acked at two seqs"));
                }
            }
        }
        for (device, (user, convs)) in &self.devices {
            for (conv, &last) in last_seq {
                if !conv.has_party(user) {
                    continue;
                }
                let got = convs.get(conv).map(Vec::as_slice).unwrap_or_default();
                r.delivered += got.len();
                let mut counts: HashMap<Seq, usize> = HashMap::new();
                let mut max_so_far = 0;
                for (seq, cmid) in got {
                    *counts.entry(*seq).or_default() += 1;
                    if *seq < max_so_far {
                        r.order_violations += 1;
                        r.note(format!("{device} {conv}: seq {seq} after {max_so_far}"));
                    }
                    max_so_far = max_so_far.max(*seq);
                    if let Some(want) = self.accepted.get(conv).and_then(|l| l.get(seq))
                        && cmid.as_ref() != Some(want)
                    {
                        r.conflicts += 1;
                        r.note(format!(
                            "{device} {conv}: seq {seq} is {cmid:?}, acked as {want}"
                        ));
                    }
                }
                for seq in 1..=last {
                    match counts.get(&seq).copied().unwrap_or(0) {
                        0 => {
                            r.lost += 1;
                            r.note(format!("{device} {conv}: seq {seq} never received"));
                        }
                        1 => {}
                        n => {
                            r.duplicates += n - 1;
                            r.note(format!("{device} {conv}: seq {seq} received {n} times"));
                        }
                    }
                }
                for seq in counts.keys().filter(|s| **s > last) {
                    r.conflicts += 1;
                    r.note(format!(
                        "{device} {conv}: seq {seq} beyond the log's end {last}"
                    ));
                }
            }
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use magpie_types::{Content, DeviceId};

    fn msg(conv: &ConvId, seq: Seq, cmid: &str) -> Message {
        Message {
            conversation: conv.clone(),
            seq,
            msg_id: seq,
            from: crate::id("alice"),
            from_device: Some(crate::id::<DeviceId>("d")),
            client_msg_id: Some(crate::id(cmid)),
            content: Content::text("x"),
            server_time: 0,
            kind: magpie_types::EntryKind::Message,
            mentions: Vec::new(),
            mention_all: false,
            reply_to: None,
            target: None,
            recalled: false,
            edited: false,
        }
    }

    fn ack(conv: &ConvId, seq: Seq, cmid: &str) -> SendAck {
        SendAck {
            client_msg_id: crate::id(cmid),
            msg_id: seq,
            conversation: conv.clone(),
            seq,
            server_time: 0,
            duplicate: false,
        }
    }

    /// The checker itself must catch every kind of violation.
    #[test]
    fn catches_loss_duplicates_reordering_and_conflicts() {
        let (a, b): (UserId, UserId) = (crate::id("alice"), crate::id("bob"));
        let conv = ConvId::direct(&a, &b);
        let last: HashMap<_, _> = [(conv.clone(), 3)].into();
        let mut clean = DeliveryChecker::new();
        clean.device("b1", &b);
        for s in 1..=3 {
            clean.accepted(&ack(&conv, s, &format!("m{s}")));
            clean.received("b1", &msg(&conv, s, &format!("m{s}")));
        }
        clean.check(&last).assert_clean();

        let mut bad = DeliveryChecker::new();
        bad.device("b1", &b);
        bad.device("a1", &a);
        bad.accepted(&ack(&conv, 1, "m1"));
        bad.accepted(&ack(&conv, 2, "m2"));
        bad.accepted(&ack(&conv, 3, "m1")); // stored twice
        bad.received("b1", &msg(&conv, 2, "m2"));
        bad.received("b1", &msg(&conv, 1, "m1")); // out of order
        bad.received("b1", &msg(&conv, 2, "m2")); // duplicate
        // b1 lost 3; a1 lost everything.
        let r = bad.check(&last);
        assert_eq!(r.lost, 1 + 3);
        assert_eq!(r.duplicates, 1);
        assert_eq!(r.order_violations, 1);
        assert!(r.conflicts >= 1);
    }
}
