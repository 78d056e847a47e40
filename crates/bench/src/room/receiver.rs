//! A member's receiving side: counts what the room's batches bring, measures delivery
//! latency, and keeps the cumulative ack of the reliable (HIGH) messages.
//!
//! No I/O here: the member loop hands over every frame that does not answer a send
//! ([`Receiving::on_frame`]) and writes the [`Receiving::ack`] frame when there is one (at
//! most one per read, like the SDK). HIGH messages are counted once per seq: the server
//! writes them again when an ack is late, and those second copies are `high_dups`.
//! Latency is measured from the intended send time in the body to the arrival of the read
//! that brought the message, both as Unix microseconds.

use std::collections::BTreeSet;

use magpie_proto::pb::{self, Priority};
use magpie_proto::{Body, Frame, frame};

use crate::latency::Recorder;
use crate::room::sender::intended_unix_us;

/// What one member received.
#[derive(Debug, Default)]
pub struct ReceiveStats {
    /// `RoomBatch` frames (retransmissions included).
    pub frames: u64,
    /// Messages in them (HIGH duplicates included).
    pub messages: u64,
    /// Distinct HIGH messages.
    pub high: u64,
    /// HIGH messages received again.
    pub high_dups: u64,
    /// The highest HIGH seq received.
    pub high_last_seq: u64,
    /// NORMAL messages.
    pub normal: u64,
    /// LOW messages.
    pub low: u64,
    /// First arrivals before the send period ended.
    pub in_window: u64,
    /// The first error or notice from the server.
    pub first_error: Option<String>,
}

/// Which reliable seqs arrived: everything up to `contiguous`, and the ones above it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reliable {
    contiguous: u64,
    ahead: BTreeSet<u64>,
}

impl Reliable {
    /// Records `seq` (≥ 1); returns whether it is new.
    pub fn insert(&mut self, seq: u64) -> bool {
        if seq <= self.contiguous || !self.ahead.insert(seq) {
            return false;
        }
        while self.ahead.first() == Some(&(self.contiguous + 1)) {
            self.ahead.pop_first();
            self.contiguous += 1;
        }
        true
    }

    /// The highest seq with every one before it received.
    pub fn contiguous(&self) -> u64 {
        self.contiguous
    }

    /// Distinct seqs received.
    pub fn count(&self) -> u64 {
        self.contiguous + self.ahead.len() as u64
    }
}

/// The receiving state of one member.
#[derive(Debug)]
pub struct Receiving {
    room: String,
    reliable: Reliable,
    /// The seq last acknowledged to the server.
    acked: u64,
    /// End of the send period, µs after the start.
    window_end_us: u64,
    deliver: Recorder,
    high_latency: Recorder,
    /// What it received.
    pub stats: ReceiveStats,
}

impl Receiving {
    /// A member of `room` with nothing received; latencies go to the two recorders.
    pub fn new(room: String, window_end_us: u64, deliver: Recorder, high: Recorder) -> Self {
        Self {
            room,
            reliable: Reliable::default(),
            acked: 0,
            window_end_us,
            deliver,
            high_latency: high,
            stats: ReceiveStats::default(),
        }
    }

    /// Handles one frame that arrived `now_us` after the start (`now_unix_us` on the
    /// shared clock).
    pub fn on_frame(&mut self, f: Frame, now_us: u64, now_unix_us: u64) {
        match f.body {
            Some(Body::RoomBatch(b)) => self.on_batch(b, now_us, now_unix_us),
            Some(Body::RoomNotice(n)) => {
                self.stats
                    .first_error
                    .get_or_insert(format!("room notice: {} by {}", n.kind, n.by));
            }
            Some(Body::Error(e)) => {
                self.stats
                    .first_error
                    .get_or_insert(format!("server error {}: {}", e.code, e.message));
            }
            // Pongs; a go-away is followed by the close.
            _ => {}
        }
    }

    /// The cumulative ack to write, if it moved since the last one.
    pub fn ack(&mut self) -> Option<Frame> {
        let seq = self.reliable.contiguous();
        (seq > self.acked).then(|| {
            self.acked = seq;
            frame(
                0,
                Body::RoomAck(pb::RoomAck {
                    room: self.room.clone(),
                    seq,
                }),
            )
        })
    }

    fn on_batch(&mut self, b: pb::RoomBatch, now_us: u64, now_unix_us: u64) {
        let s = &mut self.stats;
        s.frames += 1;
        for m in b.messages {
            s.messages += 1;
            let priority = Priority::try_from(m.priority).unwrap_or(Priority::Normal);
            match priority {
                Priority::High => {
                    if !self.reliable.insert(m.seq) {
                        s.high_dups += 1;
                        continue;
                    }
                    s.high += 1;
                    s.high_last_seq = s.high_last_seq.max(m.seq);
                }
                Priority::Low => s.low += 1,
                Priority::Normal | Priority::Default => s.normal += 1,
            }
            if now_us <= self.window_end_us {
                s.in_window += 1;
            }
            let Some(at) = m.content.and_then(|c| intended_unix_us(&c.body)) else {
                continue;
            };
            let latency = now_unix_us.saturating_sub(at);
            self.deliver.record(latency);
            if priority == Priority::High {
                self.high_latency.record(latency);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::latency::SharedLatency;
    use crate::room::sender::body;

    fn message(priority: Priority, seq: u64, at: u64) -> pb::RoomMessage {
        pb::RoomMessage {
            priority: priority as i32,
            seq,
            content: Some(pb::Content {
                body: body(at, 30),
                ..pb::Content::default()
            }),
            ..pb::RoomMessage::default()
        }
    }

    fn batch(messages: Vec<pb::RoomMessage>) -> Frame {
        frame(
            0,
            Body::RoomBatch(pb::RoomBatch {
                room: "r".into(),
                messages,
            }),
        )
    }

    #[test]
    fn reliable_counts_each_seq_once_and_tracks_the_prefix() {
        let mut r = Reliable::default();
        assert!(r.insert(2));
        assert_eq!(r.contiguous(), 0);
        assert!(r.insert(1));
        assert_eq!(r.contiguous(), 2);
        assert!(!r.insert(2));
        assert!(r.insert(5));
        assert!(!r.insert(5));
        assert_eq!((r.contiguous(), r.count()), (2, 3));
    }

    #[test]
    fn batches_are_counted_latency_measured_and_acked() {
        let (all, high) = (SharedLatency::default(), SharedLatency::default());
        let mut r = Receiving::new(
            "r".into(),
            1_000,
            Recorder::new(all.clone()),
            Recorder::new(high.clone()),
        );
        let first = batch(vec![
            message(Priority::High, 1, 100),
            message(Priority::Normal, 0, 100),
            message(Priority::Low, 0, 100),
        ]);
        r.on_frame(first, 500, 2_100);
        let Some(Frame {
            body: Some(Body::RoomAck(ack)),
            ..
        }) = r.ack()
        else {
            panic!("expected an ack");
        };
        assert_eq!((ack.room.as_str(), ack.seq), ("r", 1));
        assert!(r.ack().is_none());
        // A retransmission of seq 1 after the send period.
        r.on_frame(batch(vec![message(Priority::High, 1, 100)]), 2_000, 3_000);
        let s = &r.stats;
        assert_eq!((s.frames, s.messages, s.high, s.high_dups), (2, 4, 1, 1));
        assert_eq!((s.normal, s.low, s.in_window), (1, 1, 3));
        drop(r);
        assert_eq!(all.lock().unwrap().len(), 3);
        assert_eq!(high.lock().unwrap().max_ms(), Some(2.0));
    }
}
