//! A member's receiving side: acknowledges every push as the SDK does, counts each of the
//! group's messages once, measures delivery latency.
//!
//! No I/O here: the member loop hands over every frame that does not answer a send
//! ([`Receiving::on_frame`]) and writes [`Receiving::take_ack`] when there is one: one
//! `PushAck` per read, naming every message the read brought.
//!
//! What counts (the same rule as `p2p`):
//! - a **delivery** is the first arrival of a `(conversation, seq)` MESSAGE entry of the
//!   run's group at this member;
//! - a **dup** is a later arrival of a `(conversation, seq)` this member already had: it is
//!   acknowledged again (its first ack may have been lost or late) but not delivered to the
//!   application twice. The server pushes an unacknowledged message again after its ack
//!   timeout (5 s by default), so a dup means an ack took longer than that, or a server
//!   bug; a retransmission of a push that never arrived is simply its (late) delivery.
//! - GROUP_EVENT entries (the setup's create and adds) are acknowledged and counted apart;
//!   they are not messages of the run.

use magpie_proto::pb::{self, Delivered, EntryKind};
use magpie_proto::{Body, Frame, frame};

use crate::group::sender::intended_unix_us;
use crate::group::seqs::SeqSet;
use crate::latency::Recorder;

/// What one member received.
#[derive(Debug, Default)]
pub struct ReceiveStats {
    /// The run's messages, each once.
    pub delivered: SeqSet,
    /// Arrivals of a message this member already had.
    pub dups: u64,
    /// Group events received (setup).
    pub events: u64,
    /// Messages of other conversations or kinds (none expected).
    pub other: u64,
    /// Unix µs of the last first arrival.
    pub last_delivery_unix_us: u64,
    /// The first error the server sent.
    pub first_error: Option<String>,
}

/// The receiving state of one member.
#[derive(Debug)]
pub struct Receiving {
    /// The group's conversation id (`g:<group>`).
    conversation: String,
    acks: Vec<Delivered>,
    deliver: Recorder,
    /// What it received.
    pub stats: ReceiveStats,
}

impl Receiving {
    /// A member of the group whose conversation is `conversation`; delivery latencies go
    /// to `deliver`.
    pub fn new(conversation: String, deliver: Recorder) -> Self {
        Self {
            conversation,
            acks: Vec::new(),
            deliver,
            stats: ReceiveStats::default(),
        }
    }

    /// Handles one frame that arrived at `now_unix_us`.
    pub fn on_frame(&mut self, f: Frame, now_unix_us: u64) {
        match f.body {
            Some(Body::Push(push)) => {
                for m in push.messages {
                    self.on_message(m, now_unix_us);
                }
            }
            Some(Body::Error(e)) => {
                self.stats
                    .first_error
                    .get_or_insert(format!("server error {}: {}", e.code, e.message));
            }
            // Pongs, notices; a go-away is followed by the close.
            _ => {}
        }
    }

    /// The `PushAck` for everything received since the last one, if anything was.
    pub fn take_ack(&mut self) -> Option<Frame> {
        if self.acks.is_empty() {
            return None;
        }
        let delivered = std::mem::take(&mut self.acks);
        Some(frame(0, Body::PushAck(pb::PushAck { delivered })))
    }

    /// Distinct messages of the run received.
    pub fn delivered(&self) -> u64 {
        self.stats.delivered.len()
    }

    fn on_message(&mut self, m: pb::Message, now_unix_us: u64) {
        let s = &mut self.stats;
        let ours = m.conversation == self.conversation;
        if ours && m.kind == EntryKind::Message as i32 {
            if s.delivered.insert(m.seq) {
                s.last_delivery_unix_us = now_unix_us;
                if let Some(at) = intended_unix_us(&m.client_msg_id) {
                    self.deliver.record(now_unix_us.saturating_sub(at));
                }
            } else {
                s.dups += 1;
            }
        } else if ours && m.kind == EntryKind::GroupEvent as i32 {
            s.events += 1;
        } else {
            s.other += 1;
        }
        self.acks.push(Delivered {
            conversation: m.conversation,
            seq: m.seq,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::sender::client_msg_id;
    use crate::latency::SharedLatency;

    fn push(messages: Vec<pb::Message>) -> Frame {
        frame(0, Body::Push(pb::Push { messages }))
    }

    fn message(conv: &str, seq: u64, kind: EntryKind, at: u64) -> pb::Message {
        pb::Message {
            conversation: conv.into(),
            seq,
            kind: kind as i32,
            client_msg_id: client_msg_id(seq, at),
            ..pb::Message::default()
        }
    }

    #[test]
    fn every_push_is_acked_and_each_message_counted_once() {
        let latency = SharedLatency::default();
        let mut r = Receiving::new("g:x".into(), Recorder::new(latency.clone()));
        r.on_frame(
            push(vec![
                message("g:x", 1, EntryKind::GroupEvent, 0),
                message("g:x", 2, EntryKind::Message, 1_000),
                message("g:x", 3, EntryKind::Message, 1_000),
            ]),
            3_000,
        );
        let Some(Frame {
            body: Some(Body::PushAck(ack)),
            ..
        }) = r.take_ack()
        else {
            panic!("expected an ack");
        };
        assert_eq!(
            ack.delivered.iter().map(|d| d.seq).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert!(r.take_ack().is_none());
        // A retransmission of seq 3: acked again, counted as a dup, not delivered twice.
        r.on_frame(
            push(vec![message("g:x", 3, EntryKind::Message, 1_000)]),
            9_000,
        );
        assert!(r.take_ack().is_some());
        let s = &r.stats;
        assert_eq!((r.delivered(), s.dups, s.events), (2, 1, 1));
        assert_eq!(s.last_delivery_unix_us, 3_000);
        drop(r);
        let l = latency.lock().unwrap();
        assert_eq!((l.len(), l.max_ms()), (2, Some(2.0)));
    }
}
