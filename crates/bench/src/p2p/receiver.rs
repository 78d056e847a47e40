//! One receiver: acknowledges every push, counts each `(conversation, seq)` once.
//!
//! All the messages of one read are acknowledged with one `PushAck` (one write), which
//! keeps the receiver's cost per message low. The receiver stops when its sender has
//! finished and every message the sender had acked has arrived, or when the drain wait
//! after the sender finished runs out, or at the deadline. It returns every
//! `(conversation, seq)` it got; the shard compares them with the sender's acks (`lost`).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use magpie_proto::pb::{self, Delivered};
use magpie_proto::{Body, Frame, frame};
use tokio::sync::oneshot;
use tokio::time::{Instant, sleep_until};

use crate::conn::{self, Conn};
use crate::p2p::sender::intended_us;

/// What the sender tells its receiver when it is done: what the server acknowledged.
#[derive(Debug, Default)]
pub struct Expect {
    /// The conversation (none if nothing was acked).
    pub conversation: Option<String>,
    /// The acknowledged seqs.
    pub seqs: Vec<u64>,
}

/// What one receiver saw.
#[derive(Debug, Default)]
pub struct ReceiverResult {
    /// Unique messages delivered.
    pub delivered: u64,
    /// Pushes of an already delivered message.
    pub dups: u64,
    /// Every `(conversation, seq)` delivered, to find acked messages that were not.
    pub seen: HashMap<String, HashSet<u64>>,
    /// Delivery latencies, µs.
    pub deliver_us: Vec<u64>,
    /// When the last new message arrived, µs since origin.
    pub last_delivery_us: u64,
    /// The first error seen.
    pub first_error: Option<String>,
}

/// Once the sender is done: the acked messages still missing.
struct Waiting {
    conversation: String,
    remaining: HashSet<u64>,
}

/// Runs one receiver until its sender's messages are all in, the drain wait passes, or
/// the deadline.
pub async fn run(
    mut conn: Conn,
    mut expect: oneshot::Receiver<Expect>,
    origin: Instant,
    drain: Duration,
    deadline: Instant,
) -> ReceiverResult {
    let mut r = ReceiverResult::default();
    let mut seen: HashMap<String, HashSet<u64>> = HashMap::new();
    let mut waiting: Option<Waiting> = None;
    let mut expect_done = false;
    let mut frames: Vec<Frame> = Vec::new();
    let mut acks: Vec<Delivered> = Vec::new();
    // The ping timer is made once, not per loop turn: the loop turns once per read.
    let mut ping = tokio::time::interval_at(Instant::now() + conn.ping_every, conn.ping_every);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The deadline, brought forward to the end of the drain wait once the sender is done.
    let stop = sleep_until(deadline);
    tokio::pin!(stop);
    loop {
        if expect_done && waiting.as_ref().is_none_or(|w| w.remaining.is_empty()) {
            break;
        }
        tokio::select! {
            read = conn.reader.read_into(&mut frames) => match read {
                Ok(0) => {
                    r.first_error.get_or_insert_with(|| "receiver connection closed".into());
                    break;
                }
                Err(e) => {
                    r.first_error.get_or_insert(format!("receiver read: {e}"));
                    break;
                }
                Ok(_) => {
                    let now_us = u64::try_from(origin.elapsed().as_micros()).unwrap_or(0);
                    for f in frames.drain(..) {
                        on_frame(&mut r, &mut seen, &mut waiting, &mut acks, f, now_us);
                    }
                    if !acks.is_empty() {
                        let ack = Body::PushAck(pb::PushAck { delivered: std::mem::take(&mut acks) });
                        conn.writer.push(&frame(0, ack));
                    }
                }
            },
            done = &mut expect, if !expect_done => {
                expect_done = true;
                let until = (Instant::now() + drain).min(deadline);
                stop.as_mut().reset(until);
                waiting = start_waiting(&seen, done.unwrap_or_default());
            }
            () = &mut stop => break,
            _ = ping.tick() => conn.writer.push(&conn::ping(1)),
        }
        if let Err(e) = conn.writer.flush().await {
            r.first_error.get_or_insert(format!("receiver write: {e}"));
            break;
        }
    }
    conn.writer.close().await;
    r.seen = seen;
    r
}

/// What is still missing of `e`, given what was `seen`; `None` if nothing was acked.
fn start_waiting(seen: &HashMap<String, HashSet<u64>>, e: Expect) -> Option<Waiting> {
    let conversation = e.conversation?;
    let got = seen.get(&conversation);
    let remaining = e
        .seqs
        .into_iter()
        .filter(|s| !got.is_some_and(|g| g.contains(s)))
        .collect();
    Some(Waiting {
        conversation,
        remaining,
    })
}

fn on_frame(
    r: &mut ReceiverResult,
    seen: &mut HashMap<String, HashSet<u64>>,
    waiting: &mut Option<Waiting>,
    acks: &mut Vec<Delivered>,
    f: Frame,
    now_us: u64,
) {
    match f.body {
        Some(Body::Push(push)) => {
            for m in push.messages {
                let new = match seen.get_mut(&m.conversation) {
                    Some(seqs) => seqs.insert(m.seq),
                    None => {
                        seen.insert(m.conversation.clone(), HashSet::from([m.seq]));
                        true
                    }
                };
                if new {
                    r.delivered += 1;
                    r.last_delivery_us = now_us;
                    if let Some(at) = intended_us(&m.client_msg_id) {
                        r.deliver_us.push(now_us.saturating_sub(at));
                    }
                    if let Some(w) = waiting
                        && w.conversation == m.conversation
                    {
                        w.remaining.remove(&m.seq);
                    }
                } else {
                    r.dups += 1;
                }
                acks.push(Delivered {
                    conversation: m.conversation,
                    seq: m.seq,
                });
            }
        }
        Some(Body::Error(e)) => {
            r.first_error
                .get_or_insert(format!("receiver got error {}: {}", e.code, e.message));
        }
        // Pongs; a go-away is followed by the close.
        _ => {}
    }
}
