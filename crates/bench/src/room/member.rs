//! One member's connection after *go*: one task that receives (always) and sends (if the
//! member is one of the senders), until the end of the grace period.
//!
//! The loop writes the sends that are due, then waits for whichever comes first: a read,
//! the next send's slot, the ping timer, or the stop. All the frames of one read are
//! handled together and answered with at most one cumulative `RoomAck`, in the same write
//! as the sends that became due.

use std::time::Duration;

use tokio::time::{Instant, sleep_until};

use crate::conn::{self, Conn};
use crate::room::receiver::{ReceiveStats, Receiving};
use crate::room::sender::{SendStats, Sending};

/// The clocks of one member's run.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// The shard's start.
    pub origin: Instant,
    /// The same moment as Unix µs.
    pub origin_unix_us: u64,
    /// Stop receiving (end of the grace period, or the run's deadline).
    pub stop: Instant,
}

/// What one member saw.
#[derive(Debug, Default)]
pub struct MemberResult {
    /// The connection closed (or failed) before the stop.
    pub closed: bool,
    /// What it received.
    pub received: ReceiveStats,
    /// What it sent, if it is a sender.
    pub sent: Option<SendStats>,
    /// Why the connection closed, if it did.
    pub error: Option<String>,
}

/// Runs one member until the stop or until its connection closes.
pub async fn run(
    mut conn: Conn,
    mut recv: Receiving,
    mut send: Option<Sending>,
    clock: Clock,
) -> MemberResult {
    let mut result = MemberResult::default();
    let mut frames = Vec::new();
    // Timers made once, not per loop turn: the loop turns once per read.
    let mut ping = tokio::time::interval_at(Instant::now() + conn.ping_every, conn.ping_every);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stop = sleep_until(clock.stop);
    tokio::pin!(stop);
    let elapsed_us = || u64::try_from(clock.origin.elapsed().as_micros()).unwrap_or(0);
    loop {
        if let Some(s) = &mut send {
            s.push_due(&mut conn.writer, elapsed_us());
        }
        if let Err(e) = conn.writer.flush().await {
            result.closed = true;
            result.error = Some(format!("member write: {e}"));
            break;
        }
        let wake = send
            .as_ref()
            .and_then(Sending::wake)
            .map(|us| clock.origin + Duration::from_micros(us));
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
                    let now_us = elapsed_us();
                    let now_unix_us = clock.origin_unix_us + now_us;
                    for f in frames.drain(..) {
                        let f = match &mut send {
                            Some(s) => match s.on_frame(f, now_us) {
                                Some(f) => f,
                                None => continue,
                            },
                            None => f,
                        };
                        recv.on_frame(f, now_us, now_unix_us);
                    }
                    if let Some(ack) = recv.ack() {
                        conn.writer.push(&ack);
                    }
                }
            },
            () = sleep_until(wake.unwrap_or(clock.stop)), if wake.is_some() => {}
            _ = ping.tick() => conn.writer.push(&conn::ping(1)),
            () = &mut stop => break,
        }
    }
    conn.writer.close().await;
    result.received = std::mem::take(&mut recv.stats);
    result.sent = send.map(|s| s.stats);
    result
}
