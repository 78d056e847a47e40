//! A sending member: its share of the run's M group messages, paced by
//! [`crate::pacing`] (a bounded in-flight window, as fast as it allows or on a fixed
//! schedule).
//!
//! No I/O here: the member loop asks which frames are due ([`Sending::push_due`]), when
//! the next one is ([`Sending::wake`]), and hands over the frames that answer a send
//! ([`Sending::on_frame`]). The intended time travels in the `client_msg_id`
//! (`g<n>.<unix µs>`), which every member of the group receives with the push, so members in
//! other processes measure delivery latency on the same clock. A refused send is counted by
//! its error code and not retried.

use std::collections::BTreeMap;

use bytes::Bytes;
use magpie_proto::pb::{self, send_request};
use magpie_proto::{Body, Frame, frame};

use crate::frames::Writer;
use crate::group::seqs::SeqSet;
use crate::pacing::{Due, Pacer};

/// Request id of this sender's message 0 (1 is the handshake's and the pings').
const FIRST_RID: u64 = 2;

pub use crate::pacing::Schedule;

/// What one sender sends.
#[derive(Debug, Clone)]
pub struct SendPlan {
    /// The group.
    pub group: String,
    /// This sender's number, `0 .. senders`.
    pub sender: u64,
    /// Senders in the run.
    pub senders: u64,
    /// Messages of the whole run.
    pub total: u64,
    /// Most unanswered sends.
    pub window: u32,
    /// When to send.
    pub schedule: Schedule,
    /// The message body (shared by every message).
    pub body: Bytes,
    /// The shard's start as Unix µs (intended times travel on that clock).
    pub origin_unix_us: u64,
}

/// What one sender did.
#[derive(Debug, Default)]
pub struct SendStats {
    /// Sends written.
    pub sent: u64,
    /// Sends acknowledged (durable).
    pub acked: u64,
    /// The seqs acknowledged.
    pub acked_seqs: SeqSet,
    /// The group's conversation id, from the first ack.
    pub conversation: Option<String>,
    /// Refused sends by error code name.
    pub errors: BTreeMap<String, u64>,
    /// Ack latencies from the intended time, µs.
    pub ack_us: Vec<u64>,
    /// The first unexpected answer or refusal.
    pub first_error: Option<String>,
}

/// The sending state of one member.
#[derive(Debug)]
pub struct Sending {
    plan: SendPlan,
    pacer: Pacer,
    /// What it did.
    pub stats: SendStats,
}

impl Sending {
    /// A sender with nothing written yet.
    pub fn new(plan: SendPlan) -> Self {
        let pacer = Pacer::new(
            (plan.sender, plan.senders, plan.total),
            plan.window,
            plan.schedule,
            FIRST_RID,
        );
        let cap = usize::try_from(pacer.count()).unwrap_or(0);
        Self {
            plan,
            pacer,
            stats: SendStats {
                ack_us: Vec::with_capacity(cap),
                ..SendStats::default()
            },
        }
    }

    /// This sender's share of the run's messages.
    pub fn count(&self) -> u64 {
        self.pacer.count()
    }

    /// Every message written and answered.
    pub fn done(&self) -> bool {
        self.pacer.done()
    }

    /// Sends written but not answered yet.
    pub fn unanswered(&self) -> u64 {
        self.pacer.unanswered()
    }

    /// Queues every message due at `now_us` (µs after the start) that the window allows;
    /// returns how many.
    pub fn push_due(&mut self, writer: &mut Writer, now_us: u64) -> u64 {
        let mut pushed = 0;
        while let Some(due) = self.pacer.next_due(now_us) {
            writer.push(&self.send_frame(due));
            self.stats.sent += 1;
            pushed += 1;
        }
        pushed
    }

    /// When the next message is due (µs after the start), if it waits for its slot rather
    /// than for the window.
    pub fn wake(&self) -> Option<u64> {
        self.pacer.wake()
    }

    /// Takes the frame if it answers a send; gives it back otherwise.
    pub fn on_frame(&mut self, f: Frame, now_us: u64) -> Option<Frame> {
        let Some(sent_at) = self.pacer.answer(f.request_id) else {
            return Some(f);
        };
        let s = &mut self.stats;
        match f.body {
            Some(Body::SendAck(ack)) => {
                s.ack_us.push(now_us.saturating_sub(sent_at));
                s.acked += 1;
                s.acked_seqs.insert(ack.seq);
                if s.conversation.is_none() {
                    s.conversation = Some(ack.conversation);
                }
            }
            Some(Body::Error(e)) => {
                let code = pb::ErrorCode::try_from(e.code).map_or("UNKNOWN", |c| c.as_str_name());
                *s.errors.entry(code.to_owned()).or_default() += 1;
                s.first_error
                    .get_or_insert(format!("send refused: {code}: {}", e.message));
            }
            other => {
                *s.errors.entry("UNEXPECTED_ANSWER".to_owned()).or_default() += 1;
                s.first_error
                    .get_or_insert(format!("unexpected answer to a group send: {other:?}"));
            }
        }
        None
    }

    fn send_frame(&self, due: Due) -> Frame {
        frame(
            due.request_id,
            Body::Send(pb::SendRequest {
                client_msg_id: client_msg_id(due.n, self.plan.origin_unix_us + due.at_us),
                to: Some(send_request::To::Group(self.plan.group.clone())),
                content: Some(pb::Content {
                    r#type: pb::ContentType::Text as i32,
                    body: self.plan.body.clone(),
                    metadata: Default::default(),
                }),
                ..pb::SendRequest::default()
            }),
        )
    }
}

/// The `client_msg_id` of the run's message `n`, intended at `unix_us`.
pub fn client_msg_id(n: u64, unix_us: u64) -> String {
    format!("g{n}.{unix_us}")
}

/// The intended send time (Unix µs) a member reads back from a `client_msg_id`.
pub fn intended_unix_us(client_msg_id: &str) -> Option<u64> {
    client_msg_id.split_once('.')?.1.parse().ok()
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;

    fn plan(sender: u64, schedule: Schedule, window: u32) -> SendPlan {
        SendPlan {
            group: "g".into(),
            sender,
            senders: 2,
            total: 5,
            window,
            schedule,
            body: Bytes::from_static(b"x"),
            origin_unix_us: 1_000_000,
        }
    }

    fn writer_buf(w: &Writer) -> usize {
        match w {
            Writer::Tcp { buf, .. } => buf.len(),
            Writer::Ws { queue, .. } => queue.len(),
        }
    }

    #[test]
    fn client_msg_id_carries_the_intended_time_and_is_valid() {
        let id = client_msg_id(12, 1_700_000_000_123_456);
        assert_eq!(intended_unix_us(&id), Some(1_700_000_000_123_456));
        assert!(magpie_types::ClientMsgId::new(id).is_ok());
        assert_eq!(intended_unix_us("no-time"), None);
    }

    #[tokio::test]
    async fn window_and_schedule_bound_the_sends() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (_, wr) = client.into_split();
        let mut w = Writer::Tcp {
            wr,
            buf: BytesMut::new(),
        };
        // Sender 0 of 2 sends the run's messages 0, 2, 4: three of five.
        let mut s = Sending::new(plan(0, Schedule::Window, 2));
        assert_eq!(s.count(), 3);
        assert_eq!(s.push_due(&mut w, 10), 2);
        assert!(writer_buf(&w) > 0);
        assert_eq!(s.wake(), None);
        let ack = |rid, seq| {
            frame(
                rid,
                Body::SendAck(pb::SendAck {
                    conversation: "g:g".into(),
                    seq,
                    ..pb::SendAck::default()
                }),
            )
        };
        assert!(s.on_frame(ack(FIRST_RID, 7), 30).is_none());
        // A second answer to the same send, or a pong, is not a send's.
        assert!(s.on_frame(ack(FIRST_RID, 7), 31).is_some());
        assert_eq!(s.push_due(&mut w, 40), 1);
        assert!(s.on_frame(ack(FIRST_RID + 1, 8), 50).is_none());
        assert!(!s.done());
        let refused = frame(
            FIRST_RID + 2,
            Body::Error(pb::Error {
                code: pb::ErrorCode::RateLimited as i32,
                message: "slow down".into(),
                retry_after_ms: 1,
            }),
        );
        assert!(s.on_frame(refused, 60).is_none());
        assert!(s.done());
        assert_eq!(s.stats.acked, 2);
        assert_eq!(s.stats.acked_seqs.ranges(), vec![(7, 8)]);
        assert_eq!(s.stats.ack_us, vec![20, 40]);
        assert_eq!(s.stats.errors.get("RATE_LIMITED"), Some(&1));

        // Sender 1 on a schedule of 100 µs per run message: its slots are 150, 350.
        let rate = Schedule::Rate {
            first_us: 50.0,
            spacing_us: 100.0,
        };
        let mut s = Sending::new(plan(1, rate, 8));
        assert_eq!(s.count(), 2);
        assert_eq!(s.wake(), Some(150));
        assert_eq!(s.push_due(&mut w, 149), 0);
        assert_eq!(s.push_due(&mut w, 400), 2);
        assert_eq!(s.unanswered(), 2);
        let late = frame(FIRST_RID + 1, Body::SendAck(pb::SendAck::default()));
        assert!(s.on_frame(late, 500).is_none());
        assert_eq!(
            s.stats.ack_us,
            vec![150],
            "charged from its slot (350), not the write"
        );
    }
}
