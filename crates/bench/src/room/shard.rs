//! One process's members of a room run.
//!
//! Each member connects, authenticates and joins the room, at most `concurrency` at a time;
//! then the shard reports ready. On *go* every member runs as one task
//! ([`crate::room::member`]); the senders among them send their share of the schedule.
//! Latencies go into one histogram per distribution for the whole shard.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::latency::{Latency, Recorder, SharedLatency};
use crate::room::member::{self, Clock};
use crate::room::mix::{Mix, sender_of};
use crate::room::receiver::Receiving;
use crate::room::sender::{SendPlan, Sending};
use crate::room::{RoomShard, RoomShardReport, setup};
use crate::shard::{Control, Ready, open_members, unix_us};

/// Read buffer step of a member: a batch is a few kilobytes, and a large run holds
/// thousands of members per process.
const READ_CHUNK: usize = 4 * 1024;
/// Time between *go* and the first slot of the schedule, so that every member task is
/// running before the first message is due.
const LEAD: Duration = Duration::from_millis(20);

/// Runs one shard: connect and join, report ready, run the members on *go*, report.
pub async fn run_shard(spec: RoomShard, control: Control) -> anyhow::Result<RoomShardReport> {
    let deadline = spec.common.deadline();
    let dialer = Arc::new(spec.common.dialer(READ_CHUNK));
    let identity = Arc::new(spec.common.identity.clone());
    let mut ready = Ready {
        start_unix_us: unix_us(),
        ..Ready::default()
    };
    let room = spec.room.clone();
    let members = open_members(
        &dialer,
        &identity,
        &spec.common,
        (spec.first, spec.count),
        &mut ready,
        move |mut conn, until| {
            let room = room.clone();
            async move {
                setup::join(&mut conn, &room, until).await?;
                anyhow::Ok(conn)
            }
        },
    )
    .await;
    control.ready_then_go(ready).await?;

    let origin = Instant::now();
    let clock = Clock {
        origin,
        origin_unix_us: unix_us(),
        stop: (origin + LEAD + Duration::from_millis(spec.duration_ms + spec.grace_ms))
            .min(deadline),
    };
    let spacing_us = 1e6 / spec.rate;
    let window_end_us = u64::try_from((LEAD + Duration::from_millis(spec.duration_ms)).as_micros())
        .unwrap_or(u64::MAX);
    let (deliver, high) = (SharedLatency::default(), SharedLatency::default());
    let mix = Mix {
        high_every: spec.high_every,
        low_share: spec.low_share,
    };
    let mut tasks = JoinSet::new();
    for (i, conn) in members {
        let recv = Receiving::new(
            spec.room.clone(),
            window_end_us,
            Recorder::new(deliver.clone()),
            Recorder::new(high.clone()),
        );
        let send = sender_of(i, spec.members, spec.senders).map(|j| {
            Sending::new(SendPlan {
                room: spec.room.clone(),
                sender: j,
                senders: spec.senders,
                total: spec.messages,
                first_us: LEAD.as_micros() as f64,
                spacing_us,
                mix,
                size: spec.size,
                origin_unix_us: clock.origin_unix_us,
            })
        });
        tasks.spawn(member::run(conn, recv, send, clock));
    }

    let mut report = RoomShardReport::default();
    let mut ack = Latency::new();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    while let Some(joined) = tasks.join_next().await {
        let m = match joined {
            Ok(m) => m,
            Err(e) => {
                report.closed += 1;
                report
                    .first_error
                    .get_or_insert(format!("member task failed: {e}"));
                continue;
            }
        };
        report.members_run += 1;
        report.closed += u64::from(m.closed);
        let r = &m.received;
        report.frames += r.frames;
        report.messages += r.messages;
        report.high_delivered += r.high;
        report.high_dups += r.high_dups;
        report.high_last_seq = report.high_last_seq.max(r.high_last_seq);
        report.normal_delivered += r.normal;
        report.low_delivered += r.low;
        report.in_window += r.in_window;
        if let Some(s) = &m.sent {
            report.sent += s.sent;
            report.acked_high += s.acked_high;
            report.acked_normal += s.acked_normal;
            report.acked_low += s.acked_low;
            report.high_last_seq = report.high_last_seq.max(s.high_last_seq);
            for (code, n) in &s.errors {
                *errors.entry(code.clone()).or_default() += n;
            }
            ack.record_all(&s.ack_us);
        }
        if report.first_error.is_none() {
            report.first_error = m
                .error
                .or_else(|| m.received.first_error.clone())
                .or_else(|| m.sent.and_then(|s| s.first_error));
        }
    }
    report.send_errors = errors;
    report.ack = ack.buckets();
    report.deliver = lock(&deliver).buckets();
    report.high = lock(&high).buckets();
    Ok(report)
}

fn lock(l: &SharedLatency) -> std::sync::MutexGuard<'_, Latency> {
    l.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
