//! One process's pairs of a p2p run.
//!
//! Receivers connect first (connecting registers their user, and a send to a user who has
//! never connected is refused), then the senders of the pairs whose receiver is up. After
//! *go*, each pair runs as two tasks: the sender, and the receiver it tells what was acked
//! when it is done.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::conn::{Conn, Dialer};
use crate::identity::Identity;
use crate::latency::Latency;
use crate::p2p::receiver::{self, Expect, ReceiverResult};
use crate::p2p::sender::{self, Schedule, SenderPlan, SenderResult};
use crate::p2p::{P2pShard, P2pShardReport};
use crate::shard::{Control, Ready, unix_us};

/// Read buffer step of a streaming connection.
const READ_CHUNK: usize = 16 * 1024;
/// Time between *go* and the first slot of the open-loop schedule, so that every sender
/// task is running before its first slot comes.
const LEAD: Duration = Duration::from_millis(20);

/// Runs one shard: connect, report ready, run the pairs on *go*, report.
pub async fn run_shard(spec: P2pShard, control: Control) -> anyhow::Result<P2pShardReport> {
    let deadline = spec.common.deadline();
    let dialer = Arc::new(spec.common.dialer(READ_CHUNK));
    let identity = Arc::new(spec.common.identity.clone());
    let pairs: Vec<u64> = (spec.first..spec.first + spec.count).collect();
    let mut ready = Ready {
        start_unix_us: unix_us(),
        ..Ready::default()
    };
    // Connection indexes: receivers 2g, senders 2g + 1 (spreads both over source IPs).
    let mut receivers = open_all(&dialer, &identity, 'r', &pairs, &spec, &mut ready).await;
    let up: Vec<u64> = pairs
        .iter()
        .copied()
        .filter(|g| receivers.contains_key(g))
        .collect();
    let mut senders = open_all(&dialer, &identity, 's', &up, &spec, &mut ready).await;
    control.ready_then_go(ready).await?;

    let origin = Instant::now();
    let go_unix_us = unix_us();
    let body = Bytes::from(vec![b'x'; spec.size]);
    let drain = Duration::from_millis(spec.drain_ms);
    let mut tasks = JoinSet::new();
    for g in up {
        let (Some(sconn), Some(rconn)) = (senders.remove(&g), receivers.remove(&g)) else {
            continue;
        };
        let plan = SenderPlan {
            to: identity.user('r', g),
            messages: spec.messages,
            window: spec.window,
            schedule: schedule(&spec, g),
            body: body.clone(),
            origin,
            deadline,
        };
        tasks.spawn(run_pair(sconn, rconn, plan, drain));
    }
    // Sessions of pairs that did not run (their peer failed) close here.
    drop((senders, receivers));

    let mut report = P2pShardReport {
        go_unix_us,
        ..P2pShardReport::default()
    };
    let (mut ack, mut deliver) = (Latency::new(), Latency::new());
    let mut last_delivery_us = 0;
    while let Some(joined) = tasks.join_next().await {
        let (s, r) = joined?;
        report.pairs_run += 1;
        report.sent += s.sent;
        report.acked += s.acked_seqs.len() as u64;
        report.errors += s.errors;
        report.delivered += r.delivered;
        report.dups += r.dups;
        report.lost += lost(&s, &r);
        ack.record_all(&s.ack_us);
        deliver.record_all(&r.deliver_us);
        last_delivery_us = last_delivery_us.max(r.last_delivery_us);
        if report.first_error.is_none() {
            report.first_error = s.first_error.or(r.first_error);
        }
    }
    report.last_delivery_unix_us = go_unix_us + last_delivery_us;
    report.ack = ack.buckets();
    report.deliver = deliver.buckets();
    Ok(report)
}

/// The open-loop slots of pair `g`: the run's messages are spaced 1/rate apart, pair by
/// pair, so the total rate is even over time and over pairs.
fn schedule(spec: &P2pShard, g: u64) -> Schedule {
    match spec.rate {
        None => Schedule::Window,
        Some(rate) => {
            let spacing_us = 1e6 / rate;
            Schedule::Rate {
                first_us: LEAD.as_micros() as f64 + g as f64 * spacing_us,
                every_us: spec.total as f64 * spacing_us,
            }
        }
    }
}

async fn run_pair(
    sconn: Conn,
    rconn: Conn,
    plan: SenderPlan,
    drain: Duration,
) -> (SenderResult, ReceiverResult) {
    let (tell, told) = oneshot::channel();
    let (origin, deadline) = (plan.origin, plan.deadline);
    let receiver = tokio::spawn(receiver::run(rconn, told, origin, drain, deadline));
    let s = sender::run(sconn, plan).await;
    let _ = tell.send(Expect {
        conversation: s.conversation.clone(),
        seqs: s.acked_seqs.clone(),
    });
    let r = receiver.await.unwrap_or_else(|e| ReceiverResult {
        first_error: Some(format!("receiver task failed: {e}")),
        ..ReceiverResult::default()
    });
    (s, r)
}

/// Acked messages of the sender that the receiver never got.
fn lost(s: &SenderResult, r: &ReceiverResult) -> u64 {
    let Some(conv) = &s.conversation else {
        return 0;
    };
    let got = r.seen.get(conv);
    s.acked_seqs
        .iter()
        .filter(|seq| !got.is_some_and(|g| g.contains(seq)))
        .count() as u64
}

/// Opens the `role` connection of each pair in `pairs`, `concurrency` at a time.
async fn open_all(
    dialer: &Arc<Dialer>,
    identity: &Arc<Identity>,
    role: char,
    pairs: &[u64],
    spec: &P2pShard,
    ready: &mut Ready,
) -> HashMap<u64, Conn> {
    let gate = Arc::new(Semaphore::new(spec.common.concurrency));
    let deadline = spec.common.deadline();
    let mut tasks = JoinSet::new();
    for &g in pairs {
        let (dialer, identity, gate) = (dialer.clone(), identity.clone(), gate.clone());
        let index = 2 * g + u64::from(role == 's');
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await;
            let opened = async {
                let token = identity.token(&identity.user(role, g))?;
                dialer.open(index, &token).await
            };
            let opened = match tokio::time::timeout_at(deadline, opened).await {
                Ok(r) => r,
                Err(_) => Err(anyhow::anyhow!(
                    "the run's deadline passed while connecting"
                )),
            };
            (g, opened)
        });
    }
    let mut conns = HashMap::with_capacity(pairs.len());
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((g, Ok(conn))) => {
                ready.connected += 1;
                ready.last_ok_unix_us = unix_us();
                conns.insert(g, conn);
            }
            Ok((_, Err(e))) => {
                ready.failed += 1;
                ready.first_error.get_or_insert(format!("{e:#}"));
            }
            Err(e) => {
                ready.failed += 1;
                ready
                    .first_error
                    .get_or_insert(format!("connect task failed: {e}"));
            }
        }
    }
    conns
}
