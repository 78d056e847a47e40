//! One sender: M messages to one receiver through a bounded in-flight window.
//!
//! The loop fills the window (all due messages at once, so a reopened window is one write),
//! then waits for whichever comes first: acks, the next scheduled slot (open loop), the
//! ping timer, or the deadline. Request ids are `k + FIRST_RID` for message `k`, so an ack
//! finds its intended send time by index without a map.

use std::time::Duration;

use bytes::Bytes;
use magpie_proto::pb::{self, send_request};
use magpie_proto::{Body, Frame, frame};
use tokio::time::{Instant, sleep_until};

use crate::conn::{self, Conn};

/// Request id of message 0 (1 is the handshake's, and pings reuse it).
const FIRST_RID: u64 = 2;

/// When messages should leave.
#[derive(Debug, Clone, Copy)]
pub enum Schedule {
    /// As soon as the window has room.
    Window,
    /// Message `k` at `first_us + k · every_us` after the shard's start.
    Rate {
        /// Slot of message 0, µs.
        first_us: f64,
        /// Spacing between this sender's slots, µs.
        every_us: f64,
    },
}

impl Schedule {
    fn slot_us(self, k: u64) -> Option<u64> {
        match self {
            Self::Window => None,
            Self::Rate { first_us, every_us } => Some((first_us + k as f64 * every_us) as u64),
        }
    }
}

/// What one sender does.
#[derive(Debug, Clone)]
pub struct SenderPlan {
    /// The receiver's user id.
    pub to: String,
    /// Messages to send.
    pub messages: u64,
    /// Most unacknowledged sends.
    pub window: u32,
    /// When to send.
    pub schedule: Schedule,
    /// The message body (shared by every message of the run).
    pub body: Bytes,
    /// The shard's start: the clock of intended times.
    pub origin: Instant,
    /// Stop here whatever is left.
    pub deadline: Instant,
}

/// What one sender saw.
#[derive(Debug, Default)]
pub struct SenderResult {
    /// Sends written.
    pub sent: u64,
    /// The conversation, from the first ack.
    pub conversation: Option<String>,
    /// Seqs acknowledged.
    pub acked_seqs: Vec<u64>,
    /// Sends answered with an error.
    pub errors: u64,
    /// Ack latencies, µs.
    pub ack_us: Vec<u64>,
    /// The first error seen.
    pub first_error: Option<String>,
}

/// Runs one sender to completion (all acked, connection lost, or deadline).
pub async fn run(mut conn: Conn, plan: SenderPlan) -> SenderResult {
    let total = usize::try_from(plan.messages).unwrap_or(usize::MAX);
    let mut r = SenderResult {
        acked_seqs: Vec::with_capacity(total),
        ack_us: Vec::with_capacity(total),
        ..SenderResult::default()
    };
    // Intended send time of each message, µs since origin; u64::MAX once answered.
    let mut intended = vec![u64::MAX; total];
    let mut frames: Vec<Frame> = Vec::new();
    let (mut next, mut in_flight) = (0u64, 0u32);
    // Timers made once, not per loop turn: the loop turns once per read.
    let mut ping = tokio::time::interval_at(Instant::now() + conn.ping_every, conn.ping_every);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let deadline = sleep_until(plan.deadline);
    tokio::pin!(deadline);
    let elapsed_us = |origin: Instant| u64::try_from(origin.elapsed().as_micros()).unwrap_or(0);
    loop {
        let now_us = elapsed_us(plan.origin);
        while next < plan.messages && in_flight < plan.window {
            let at = match plan.schedule.slot_us(next) {
                None => now_us,
                Some(slot) if slot <= now_us => slot,
                Some(_) => break,
            };
            intended[next as usize] = at;
            conn.writer
                .push(&send_frame(next, at, &plan.to, &plan.body));
            next += 1;
            in_flight += 1;
            r.sent += 1;
        }
        if let Err(e) = conn.writer.flush().await {
            r.first_error.get_or_insert(format!("sender write: {e}"));
            break;
        }
        if next == plan.messages && in_flight == 0 {
            break;
        }
        let wake = match plan.schedule.slot_us(next) {
            Some(slot) if next < plan.messages && in_flight < plan.window => {
                Some(plan.origin + Duration::from_micros(slot))
            }
            _ => None,
        };
        tokio::select! {
            read = conn.reader.read_into(&mut frames) => match read {
                Ok(0) => {
                    r.first_error.get_or_insert_with(|| "sender connection closed".into());
                    break;
                }
                Err(e) => {
                    r.first_error.get_or_insert(format!("sender read: {e}"));
                    break;
                }
                Ok(_) => {
                    let now_us = elapsed_us(plan.origin);
                    for f in frames.drain(..) {
                        if answer(&mut r, &mut intended, f, now_us) {
                            in_flight = in_flight.saturating_sub(1);
                        }
                    }
                }
            },
            () = sleep_until(wake.unwrap_or(plan.deadline)), if wake.is_some() => {}
            _ = ping.tick() => conn.writer.push(&conn::ping(1)),
            () = &mut deadline => {
                r.first_error.get_or_insert_with(|| "the run's deadline passed while sending".into());
                break;
            }
        }
    }
    conn.writer.close().await;
    r
}

/// Handles one frame from the server; returns whether it answered a send in flight.
fn answer(r: &mut SenderResult, intended: &mut [u64], f: Frame, now_us: u64) -> bool {
    let Some(slot) = f
        .request_id
        .checked_sub(FIRST_RID)
        .and_then(|k| usize::try_from(k).ok())
        .and_then(|k| intended.get_mut(k))
        .filter(|t| **t != u64::MAX)
    else {
        // Pongs, and anything not answering a send in flight.
        if let Some(Body::Error(e)) = f.body {
            r.first_error
                .get_or_insert(format!("server error {}: {}", e.code, e.message));
        }
        return false;
    };
    let sent_at = std::mem::replace(slot, u64::MAX);
    match f.body {
        Some(Body::SendAck(ack)) => {
            r.ack_us.push(now_us.saturating_sub(sent_at));
            r.acked_seqs.push(ack.seq);
            if r.conversation.is_none() {
                r.conversation = Some(ack.conversation);
            }
        }
        Some(Body::Error(e)) => {
            r.errors += 1;
            r.first_error
                .get_or_insert(format!("send refused: code {}: {}", e.code, e.message));
        }
        other => {
            r.errors += 1;
            r.first_error
                .get_or_insert(format!("unexpected answer to a send: {other:?}"));
        }
    }
    true
}

/// The send request for message `k`, intended at `at_us`.
fn send_frame(k: u64, at_us: u64, to: &str, body: &Bytes) -> Frame {
    frame(
        k + FIRST_RID,
        Body::Send(pb::SendRequest {
            client_msg_id: format!("{k}.{at_us}"),
            to: Some(send_request::To::User(to.to_owned())),
            content: Some(pb::Content {
                r#type: pb::ContentType::Text as i32,
                body: body.clone(),
                metadata: Default::default(),
            }),
            ..pb::SendRequest::default()
        }),
    )
}

/// The intended send time a receiver reads back from a `client_msg_id`.
pub fn intended_us(client_msg_id: &str) -> Option<u64> {
    client_msg_id.split_once('.')?.1.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_msg_id_carries_the_intended_time() {
        let f = send_frame(7, 123_456, "bob", &Bytes::from_static(b"x"));
        let Some(Body::Send(s)) = f.body else {
            panic!("not a send")
        };
        assert_eq!(f.request_id, 9);
        assert_eq!(intended_us(&s.client_msg_id), Some(123_456));
        assert!(magpie_types::ClientMsgId::new(s.client_msg_id).is_ok());
    }

    #[test]
    fn schedule_spaces_slots() {
        let s = Schedule::Rate {
            first_us: 10.0,
            every_us: 500.0,
        };
        assert_eq!(s.slot_us(0), Some(10));
        assert_eq!(s.slot_us(4), Some(2010));
        assert_eq!(Schedule::Window.slot_us(3), None);
    }
}
