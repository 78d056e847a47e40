//! One member's connection, from the moment it is open to the end of the run: one task that
//! receives (always) and sends (if the member is one of the senders).
//!
//! The task starts before the group exists: the setup's events are pushed to members as
//! they are added, and acknowledging them at once (as the SDK would) keeps the server from
//! retransmitting them or finding the connection slow. On *go* (the shard's start, sent
//! through a watch channel) a sender starts sending. The member stops when it has every
//! message it expects (all the run's messages but its own, which the server does not push
//! back to the sending connection) and, if it sends, every send is answered; or when
//! nothing has arrived for the drain time; or at the run's deadline.
//!
//! Each turn writes the sends that are due, flushes, then waits for whichever comes first:
//! a read, the next send's slot, the ping timer, the idle or the final deadline. All the
//! frames of one read are handled together and acknowledged with one `PushAck`, in the
//! same write as the sends that became due.

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};

use crate::conn::{self, Conn};
use crate::group::receiver::{ReceiveStats, Receiving};
use crate::group::sender::{SendPlan, SendStats, Sending};
use crate::shard::unix_us;

/// The shard's start, shared by every member task.
#[derive(Debug, Clone, Copy)]
pub struct Go {
    /// The start.
    pub origin: Instant,
    /// The same moment as Unix µs.
    pub origin_unix_us: u64,
}

/// How one member's run ends.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Messages of the whole run.
    pub messages: u64,
    /// Stop after this long without a new message or answer.
    pub idle: Duration,
    /// Stop here whatever is left.
    pub deadline: Instant,
}

/// What one member saw.
#[derive(Debug, Default)]
pub struct MemberResult {
    /// The connection closed (or failed) before the end.
    pub closed: bool,
    /// The member ran past *go*.
    pub started: bool,
    /// What it received.
    pub received: ReceiveStats,
    /// What it sent, if it is a sender.
    pub sent: Option<SendStats>,
    /// Sends without an answer at the end.
    pub unanswered: u64,
    /// Why the connection closed, if it did.
    pub error: Option<String>,
}

/// Runs one member until it is done, idle, closed, or the deadline passes.
pub async fn run(
    mut conn: Conn,
    mut recv: Receiving,
    plan: Option<SendPlan>,
    mut go: watch::Receiver<Option<Go>>,
    limits: Limits,
) -> MemberResult {
    let mut result = MemberResult::default();
    let mut frames = Vec::new();
    let mut plan = plan;
    let mut send: Option<Sending> = None;
    let mut started: Option<Go> = None;
    // What this member should receive: the run's messages less its own.
    let mut expect = limits.messages;
    // Timers made once, not per loop turn: the loop turns once per read.
    let mut ping = tokio::time::interval_at(Instant::now() + conn.ping_every, conn.ping_every);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stop = sleep_until(limits.deadline);
    tokio::pin!(stop);
    // Armed at go; pushed back by every new message or answer.
    let idle = sleep_until(limits.deadline);
    tokio::pin!(idle);
    let elapsed_us = |g: &Go| u64::try_from(g.origin.elapsed().as_micros()).unwrap_or(u64::MAX);
    loop {
        if let (Some(g), Some(s)) = (&started, &mut send) {
            s.push_due(&mut conn.writer, elapsed_us(g));
        }
        if let Err(e) = conn.writer.flush().await {
            result.closed = true;
            result.error = Some(format!("member write: {e}"));
            break;
        }
        if started.is_some()
            && recv.delivered() >= expect
            && send.as_ref().is_none_or(Sending::done)
        {
            break;
        }
        let wake = match (&started, &send) {
            (Some(g), Some(s)) => s.wake().map(|us| g.origin + Duration::from_micros(us)),
            _ => None,
        };
        tokio::select! {
            read = conn.reader.read_into(&mut frames) => match read {
                Ok(0) => {
                    result.closed = true;
                    result.error = Some("member connection closed".into());
                    break;
                }
                Err(e) => {
                    result.closed = true;
                    result.error = Some(format!("member read: {e}"));
                    break;
                }
                Ok(_) => {
                    let now_unix_us = unix_us();
                    let now_us = started.as_ref().map_or(0, elapsed_us);
                    let before = (recv.delivered(), send.as_ref().map(Sending::unanswered));
                    for f in frames.drain(..) {
                        let f = match &mut send {
                            Some(s) => match s.on_frame(f, now_us) {
                                Some(f) => f,
                                None => continue,
                            },
                            None => f,
                        };
                        recv.on_frame(f, now_unix_us);
                    }
                    if let Some(ack) = recv.take_ack() {
                        conn.writer.push(&ack);
                    }
                    let after = (recv.delivered(), send.as_ref().map(Sending::unanswered));
                    if started.is_some() && before != after {
                        idle.as_mut().reset(Instant::now() + limits.idle);
                    }
                }
            },
            changed = go.changed(), if started.is_none() => {
                let Ok(()) = changed else {
                    // The shard dropped the channel without go: it is aborting.
                    break;
                };
                let Some(g) = *go.borrow() else { continue };
                started = Some(g);
                result.started = true;
                if let Some(mut p) = plan.take() {
                    p.origin_unix_us = g.origin_unix_us;
                    let s = Sending::new(p);
                    expect = expect.saturating_sub(s.count());
                    send = Some(s);
                }
                idle.as_mut().reset(Instant::now() + limits.idle);
            }
            () = sleep_until(wake.unwrap_or(limits.deadline)), if wake.is_some() => {}
            _ = ping.tick() => conn.writer.push(&conn::ping(1)),
            () = &mut idle, if started.is_some() => break,
            () = &mut stop => break,
        }
    }
    conn.writer.close().await;
    result.received = std::mem::take(&mut recv.stats);
    result.unanswered = send.as_ref().map_or(0, Sending::unanswered);
    result.sent = send.map(|s| s.stats);
    result
}
