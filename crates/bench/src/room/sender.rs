//! A member's sending side: its share of the run's messages on the fixed schedule of
//! [`crate::room::mix`], through a bounded in-flight window.
//!
//! No I/O here: the member loop asks which frames are due ([`Sending::push_due`]), when
//! the next one is ([`Sending::wake`]), and hands over the frames that answer a send
//! ([`Sending::on_frame`]). A message's intended time is its slot, whatever the window
//! did to it, so a server that falls behind is charged for the backlog (no coordinated
//! omission). The intended time travels in the body as Unix microseconds, which receivers
//! in other processes of this machine read on the same clock.
//!
//! Request ids are `k + FIRST_RID` for this sender's message `k`, so an answer finds its
//! message by index. A refused send (rate limit, slow mode) is counted by its error code
//! and not retried: it would be late anyway, and the plan is a fixed rate.

use std::collections::BTreeMap;

use bytes::{BufMut, Bytes, BytesMut};
use magpie_proto::pb::{self, Priority};
use magpie_proto::{Body, Frame, frame};

use crate::frames::Writer;
use crate::pacing::{Due, Pacer, Schedule};
use crate::room::mix::Mix;

/// Request id of message 0 (1 is the handshake's and the pings', 2 the join's).
const FIRST_RID: u64 = 3;
/// Most unanswered sends of one sender; later messages wait (their intended time stays).
const WINDOW: u32 = 256;

/// What one sender sends.
#[derive(Debug, Clone)]
pub struct SendPlan {
    /// The room.
    pub room: String,
    /// This sender's number, `0 .. senders`.
    pub sender: u64,
    /// Senders in the run.
    pub senders: u64,
    /// Messages of the whole run.
    pub total: u64,
    /// Slot of the run's message 0, µs after the shard's start.
    pub first_us: f64,
    /// Spacing between the run's messages, µs.
    pub spacing_us: f64,
    /// The priorities.
    pub mix: Mix,
    /// Body size, bytes.
    pub size: usize,
    /// The shard's start as Unix µs (to write intended times on the shared clock).
    pub origin_unix_us: u64,
}

/// What one sender did.
#[derive(Debug, Default)]
pub struct SendStats {
    /// Sends written.
    pub sent: u64,
    /// Sends the server accepted, by priority.
    pub acked_high: u64,
    /// NORMAL accepted.
    pub acked_normal: u64,
    /// LOW accepted.
    pub acked_low: u64,
    /// The highest HIGH seq acked.
    pub high_last_seq: u64,
    /// Refused sends by error code name.
    pub errors: BTreeMap<String, u64>,
    /// Ack latencies from the intended time, µs.
    pub ack_us: Vec<u64>,
    /// The first unexpected answer.
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
        let schedule = Schedule::Rate {
            first_us: plan.first_us,
            spacing_us: plan.spacing_us,
        };
        let pacer = Pacer::new(
            (plan.sender, plan.senders, plan.total),
            WINDOW,
            schedule,
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

    /// Queues every message due at `now_us` (µs after the start) that the window allows.
    pub fn push_due(&mut self, writer: &mut Writer, now_us: u64) {
        while let Some(due) = self.pacer.next_due(now_us) {
            writer.push(&self.send_frame(due));
            self.stats.sent += 1;
        }
    }

    /// When the next message is due (µs after the start), if the window lets it go.
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
            Some(Body::RoomSendAck(ack)) => {
                s.ack_us.push(now_us.saturating_sub(sent_at));
                match Priority::try_from(ack.priority) {
                    Ok(Priority::High) => {
                        s.acked_high += 1;
                        s.high_last_seq = s.high_last_seq.max(ack.seq);
                    }
                    Ok(Priority::Low) => s.acked_low += 1,
                    _ => s.acked_normal += 1,
                }
            }
            Some(Body::Error(e)) => {
                let code = pb::ErrorCode::try_from(e.code).map_or("UNKNOWN", |c| c.as_str_name());
                *s.errors.entry(code.to_owned()).or_default() += 1;
            }
            other => {
                *s.errors.entry("UNEXPECTED_ANSWER".to_owned()).or_default() += 1;
                s.first_error
                    .get_or_insert(format!("unexpected answer to a room send: {other:?}"));
            }
        }
        None
    }

    fn send_frame(&self, due: Due) -> Frame {
        let priority = self.plan.mix.priority(due.n);
        frame(
            due.request_id,
            Body::RoomSend(pb::RoomSend {
                room: self.plan.room.clone(),
                content: Some(pb::Content {
                    r#type: pb::ContentType::Text as i32,
                    body: body(self.plan.origin_unix_us + due.at_us, self.plan.size),
                    metadata: Default::default(),
                }),
                priority: priority as i32,
                // Lets the server recognise a retried HIGH; the bench never retries.
                client_msg_id: String::new(),
            }),
        )
    }
}

/// A body of `size` bytes that starts with the intended send time: `<unix µs>.xxxx…`.
pub fn body(intended_unix_us: u64, size: usize) -> Bytes {
    let mut b = BytesMut::with_capacity(size.max(24));
    b.put_slice(format!("{intended_unix_us}.").as_bytes());
    while b.len() < size {
        b.put_u8(b'x');
    }
    b.freeze()
}

/// The intended send time (Unix µs) at the start of a body, if there is one.
pub fn intended_unix_us(body: &[u8]) -> Option<u64> {
    let digits = body.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&body[..digits]).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(sender: u64) -> SendPlan {
        SendPlan {
            room: "r".into(),
            sender,
            senders: 4,
            total: 10,
            first_us: 100.0,
            spacing_us: 1000.0,
            mix: Mix {
                high_every: 2,
                low_share: 0.5,
            },
            size: 40,
            origin_unix_us: 1_000_000,
        }
    }

    #[test]
    fn body_carries_the_intended_time() {
        let b = body(1_700_000_000_123_456, 40);
        assert_eq!(b.len(), 40);
        assert_eq!(intended_unix_us(&b), Some(1_700_000_000_123_456));
        assert_eq!(intended_unix_us(b"xyz"), None);
    }

    /// A writer into a connected loopback socket nobody reads.
    async fn writer() -> Writer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        Writer::Tcp {
            wr: client.into_split().1,
            buf: BytesMut::new(),
        }
    }

    #[tokio::test]
    async fn slots_follow_the_run_schedule() {
        // Sender 1 of 4 sends the run's messages 1, 5, 9: slots 1100, 5100, 9100.
        let mut s = Sending::new(plan(1));
        assert_eq!(s.pacer.count(), 3);
        assert_eq!(s.wake(), Some(1100));
        s.push_due(&mut writer().await, 5100);
        assert_eq!(s.stats.sent, 2);
        assert_eq!(s.wake(), Some(9100));
    }

    #[tokio::test]
    async fn answers_are_matched_and_counted() {
        let mut s = Sending::new(plan(1));
        s.push_due(&mut writer().await, 5100);
        let ack = frame(
            FIRST_RID,
            Body::RoomSendAck(pb::RoomSendAck {
                priority: Priority::High as i32,
                seq: 1,
                ..pb::RoomSendAck::default()
            }),
        );
        assert!(s.on_frame(ack, 2100).is_none());
        let refused = frame(
            FIRST_RID + 1,
            Body::Error(pb::Error {
                code: pb::ErrorCode::RateLimited as i32,
                message: "slow down".into(),
                retry_after_ms: 1,
            }),
        );
        assert!(s.on_frame(refused, 6000).is_none());
        // Neither a second answer nor a pong is a send's.
        let again = frame(FIRST_RID, Body::Pong(pb::Pong::default()));
        assert!(s.on_frame(again, 7000).is_some());
        assert_eq!(s.stats.acked_high, 1);
        assert_eq!(s.stats.ack_us, vec![1000]);
        assert_eq!(s.stats.errors.get("RATE_LIMITED"), Some(&1));
        assert_eq!(s.pacer.unanswered(), 0);
    }
}
