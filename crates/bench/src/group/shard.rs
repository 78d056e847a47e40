//! One process's members of a group run.
//!
//! Each member connects and authenticates (registering its user, which the owner's adds
//! require), at most `concurrency` at a time, and its task starts at once, acknowledging
//! whatever the setup pushes to it. Then the shard reports ready; the coordinator creates
//! the group and adds everyone, and says *go*. On *go* the senders among the members send
//! their share; every member runs until it has every message or goes idle. Latencies go
//! into one histogram per distribution for the whole shard, and the members' received seqs
//! into one [`Tally`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::group::member::{self, Go, Limits};
use crate::group::receiver::Receiving;
use crate::group::sender::{Schedule, SendPlan};
use crate::group::seqs::{SeqSet, Tally};
use crate::group::{GroupShard, GroupShardReport};
use crate::latency::{Latency, Recorder, SharedLatency};
use crate::room::mix::sender_of;
use crate::shard::{Control, Ready, open_members, unix_us};

/// Read buffer step of a member: a push is a few hundred bytes, a setup event (the list of
/// users one add named) tens of kilobytes, and a large run holds thousands of members per
/// process.
const READ_CHUNK: usize = 8 * 1024;
/// Time between *go* and the first slot of the `--rate` schedule, so that every member
/// task has seen *go* before the first message is due.
pub const LEAD: Duration = Duration::from_millis(20);

/// Runs one shard: connect, start the members, report ready, release them on *go*,
/// report.
pub async fn run_shard(spec: GroupShard, control: Control) -> anyhow::Result<GroupShardReport> {
    let deadline = spec.common.deadline();
    let dialer = Arc::new(spec.common.dialer(READ_CHUNK));
    let identity = Arc::new(spec.common.identity.clone());
    let mut ready = Ready {
        start_unix_us: unix_us(),
        ..Ready::default()
    };
    let conns = open_members(
        &dialer,
        &identity,
        &spec.common,
        (spec.first, spec.count),
        &mut ready,
        |conn, _| async move { anyhow::Ok(conn) },
    )
    .await;

    let (go_tx, go_rx) = watch::channel(None);
    let deliver = SharedLatency::default();
    let body = Bytes::from(vec![b'x'; spec.size]);
    let schedule = match spec.rate {
        None => Schedule::Window,
        Some(rate) => Schedule::Rate {
            first_us: LEAD.as_micros() as f64,
            spacing_us: 1e6 / rate,
        },
    };
    let limits = Limits {
        messages: spec.messages,
        idle: Duration::from_millis(spec.idle_ms),
        deadline,
    };
    let conversation = format!("g:{}", spec.group);
    let mut tasks = JoinSet::new();
    for (i, conn) in conns {
        let recv = Receiving::new(conversation.clone(), Recorder::new(deliver.clone()));
        let plan = sender_of(i, spec.members, spec.senders).map(|j| SendPlan {
            group: spec.group.clone(),
            sender: j,
            senders: spec.senders,
            total: spec.messages,
            window: spec.window,
            schedule,
            body: body.clone(),
            // Set at go.
            origin_unix_us: 0,
        });
        tasks.spawn(member::run(conn, recv, plan, go_rx.clone(), limits));
    }
    drop(go_rx);
    control.ready_then_go(ready).await?;

    let go_unix_us = unix_us();
    // Every member task holds a receiver, so this only fails if all of them have ended.
    let _ = go_tx.send(Some(Go {
        origin: Instant::now(),
        origin_unix_us: go_unix_us,
    }));

    let mut report = GroupShardReport {
        go_unix_us,
        ..GroupShardReport::default()
    };
    let mut ack = Latency::new();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut received: Vec<Vec<(u64, u64)>> = Vec::new();
    let mut acked = SeqSet::default();
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
        report.members_run += u64::from(m.started);
        report.closed += u64::from(m.closed);
        let r = &m.received;
        report.dups += r.dups;
        report.events += r.events;
        report.other += r.other;
        report.last_delivery_unix_us = report.last_delivery_unix_us.max(r.last_delivery_unix_us);
        received.push(r.delivered.ranges());
        report.unanswered += m.unanswered;
        if let Some(s) = &m.sent {
            report.sent += s.sent;
            report.acked += s.acked;
            for (a, b) in s.acked_seqs.ranges() {
                for seq in a..=b {
                    acked.insert(seq);
                }
            }
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
    report.received = Tally::from_ranges(received.iter().map(Vec::as_slice));
    report.acked_seqs = acked.ranges();
    report.send_errors = errors;
    report.ack = ack.buckets();
    report.deliver = deliver
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .buckets();
    Ok(report)
}
