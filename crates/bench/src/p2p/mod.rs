//! `p2p`: P senders, each sending M messages to its own receiver.
//!
//! - [`shard`]: one process's pairs: connect receivers, then senders; on *go*, run them.
//! - [`sender`]: one sender: a bounded in-flight window, either refilled as fast as acks
//!   return (closed loop) or released on a fixed schedule (open loop, `--rate`).
//! - [`receiver`]: one receiver: acknowledges every push, deduplicates by
//!   `(conversation, seq)`, measures delivery latency.
//!
//! Latency is measured from each message's *intended* send time: under `--rate` that is
//! its slot in the schedule, so a server that falls behind is charged for the whole
//! backlog (no coordinated omission); in the closed loop it is the moment the message
//! enters the write buffer. The intended time travels in the message's `client_msg_id`
//! (`<k>.<µs since the shard's start>`), so the receiver can compute delivery latency on
//! the same clock. A pair's sender and receiver always live in the same process.
//!
//! Figures: `msgs_per_s` = unique messages delivered / (last delivery − go); `lost` =
//! acked messages the receiver had not got when it stopped (after a bounded drain wait);
//! `dups` = pushes of a `(conversation, seq)` already delivered.

pub mod receiver;
pub mod sender;
pub mod shard;

use std::time::Duration;

use anyhow::bail;
use serde::{Deserialize, Serialize};
use tokio::time::timeout_at;

use crate::identity::Identity;
use crate::latency::{Buckets, Latency, per_second, round3};
use crate::plan::{Common, split};
use crate::pool::Pool;
use crate::shard::{ShardCommon, ShardReport, ShardSpec};

pub use shard::run_shard;

/// Most messages one run may send in total.
pub const MAX_MESSAGES: u64 = 50_000_000;
/// Largest message body accepted by the bench.
pub const MAX_SIZE: usize = 60 * 1024;
/// Largest window.
pub const MAX_WINDOW: u32 = 4096;

/// Options of `magpie bench p2p`.
#[derive(Debug, Clone)]
pub struct P2pOptions {
    /// Sender → receiver pairs.
    pub pairs: u64,
    /// Messages each sender sends.
    pub messages: u64,
    /// Total send rate, messages per second (open loop); `None`: as fast as the window
    /// allows.
    pub rate: Option<f64>,
    /// Most unacknowledged sends per sender.
    pub window: u32,
    /// Message body size, bytes.
    pub size: usize,
    /// How long receivers wait for the last pushes once their sender is done.
    pub drain: Duration,
}

/// One shard of a p2p run: pairs `first .. first + count` of `total`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct P2pShard {
    /// Shared settings.
    pub common: ShardCommon,
    /// The first pair of this shard.
    pub first: u64,
    /// Pairs in this shard.
    pub count: u64,
    /// Pairs in the whole run (spaces the open-loop schedule).
    pub total: u64,
    /// Messages per sender.
    pub messages: u64,
    /// Total rate of the whole run, if open loop.
    pub rate: Option<f64>,
    /// Window per sender.
    pub window: u32,
    /// Body size.
    pub size: usize,
    /// Drain wait, ms.
    pub drain_ms: u64,
}

/// What a p2p shard measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct P2pShardReport {
    /// Pairs whose two connections opened (and so ran).
    pub pairs_run: u64,
    /// Sends written.
    pub sent: u64,
    /// Sends acknowledged.
    pub acked: u64,
    /// Sends answered with an error.
    pub errors: u64,
    /// Unique messages delivered.
    pub delivered: u64,
    /// Pushes of an already delivered message.
    pub dups: u64,
    /// Acked messages never delivered.
    pub lost: u64,
    /// Unix time (µs) of *go*.
    pub go_unix_us: u64,
    /// Unix time (µs) of the last delivery.
    pub last_delivery_unix_us: u64,
    /// Ack latency.
    pub ack: Buckets,
    /// Delivery latency.
    pub deliver: Buckets,
    /// The first error seen, to explain `errors` or a short count.
    pub first_error: Option<String>,
}

/// The JSON line of a p2p run.
#[derive(Debug, Clone, Serialize)]
pub struct P2pSummary {
    /// Always `p2p`.
    pub scenario: &'static str,
    /// `tcp` or `ws`.
    pub transport: &'static str,
    /// The server URL.
    pub server: String,
    /// Pairs asked for.
    pub pairs: u64,
    /// Messages per sender.
    pub messages: u64,
    /// Total rate (open loop), or null for max throughput.
    pub rate: Option<f64>,
    /// Window per sender.
    pub window: u32,
    /// Body size, bytes.
    pub size: usize,
    /// Processes that ran the pairs.
    pub workers: usize,
    /// Connections that failed to open.
    pub failed: u64,
    /// Sends written.
    pub sent: u64,
    /// Sends acknowledged.
    pub acked: u64,
    /// Sends answered with an error.
    pub errors: u64,
    /// Unique messages delivered.
    pub delivered: u64,
    /// Acked messages never delivered.
    pub lost: u64,
    /// Duplicate deliveries.
    pub dups: u64,
    /// From go to the last delivery, seconds.
    pub duration_s: f64,
    /// Unique messages delivered per second.
    pub msgs_per_s: u64,
    /// Ack latency percentiles, ms.
    pub ack_p50_ms: Option<f64>,
    /// 99th percentile.
    pub ack_p99_ms: Option<f64>,
    /// Largest.
    pub ack_max_ms: Option<f64>,
    /// Delivery latency percentiles, ms.
    pub deliver_p50_ms: Option<f64>,
    /// 99th percentile.
    pub deliver_p99_ms: Option<f64>,
    /// Largest.
    pub deliver_max_ms: Option<f64>,
    /// The first error, if any.
    pub first_error: Option<String>,
}

/// Runs the p2p scenario.
pub async fn run(common: &Common, opts: &P2pOptions) -> anyhow::Result<P2pSummary> {
    common.validate()?;
    if opts.pairs == 0 || opts.messages == 0 {
        bail!("--pairs and --messages must be at least 1");
    }
    if opts.pairs.saturating_mul(opts.messages) > MAX_MESSAGES {
        bail!("pairs × messages must be at most {MAX_MESSAGES}");
    }
    if opts.window == 0 || opts.window > MAX_WINDOW {
        bail!("--window must be within 1..={MAX_WINDOW}");
    }
    if opts.size == 0 || opts.size > MAX_SIZE {
        bail!("--size must be within 1..={MAX_SIZE}");
    }
    if let Some(r) = opts.rate
        && !(r.is_finite() && r > 0.0)
    {
        bail!("--rate must be a positive number");
    }
    let identity = Identity::new_run(common.app.clone(), common.secret.clone());
    // Two connections per pair.
    let pairs_per_process = (common.per_process() as u64 / 2).max(1);
    let ranges = split(opts.pairs, pairs_per_process)?;
    let shard_common = common.shard_common(&identity, ranges.len());
    let deadline = shard_common.deadline();
    let specs = ranges
        .into_iter()
        .map(|(first, count)| {
            ShardSpec::P2p(P2pShard {
                common: shard_common.clone(),
                first,
                count,
                total: opts.pairs,
                messages: opts.messages,
                rate: opts.rate,
                window: opts.window,
                size: opts.size,
                drain_ms: u64::try_from(opts.drain.as_millis()).unwrap_or(u64::MAX),
            })
        })
        .collect();
    let mut pool = Pool::start(specs, &common.worker).await?;
    let workers = pool.len();
    let hard = deadline + Duration::from_secs(5);
    let readies = timeout_at(hard, pool.ready()).await??;
    pool.go().await?;
    let reports = timeout_at(hard, pool.finish()).await??;

    let mut total = P2pShardReport {
        go_unix_us: u64::MAX,
        ..P2pShardReport::default()
    };
    let (mut ack, mut deliver) = (Latency::new(), Latency::new());
    for r in reports {
        let ShardReport::P2p(r) = r else {
            bail!("a p2p worker answered with another scenario's report");
        };
        total.sent += r.sent;
        total.acked += r.acked;
        total.errors += r.errors;
        total.delivered += r.delivered;
        total.dups += r.dups;
        total.lost += r.lost;
        total.go_unix_us = total.go_unix_us.min(r.go_unix_us);
        total.last_delivery_unix_us = total.last_delivery_unix_us.max(r.last_delivery_unix_us);
        ack.merge(&r.ack);
        deliver.merge(&r.deliver);
        if total.first_error.is_none() {
            total.first_error = r.first_error;
        }
    }
    let secs = total.last_delivery_unix_us.saturating_sub(total.go_unix_us) as f64 / 1e6;
    Ok(P2pSummary {
        scenario: "p2p",
        transport: common.target.transport.name(),
        server: common.target.url(),
        pairs: opts.pairs,
        messages: opts.messages,
        rate: opts.rate,
        window: opts.window,
        size: opts.size,
        workers,
        failed: readies.iter().map(|r| r.failed).sum(),
        sent: total.sent,
        acked: total.acked,
        errors: total.errors,
        delivered: total.delivered,
        lost: total.lost,
        dups: total.dups,
        duration_s: round3(secs),
        msgs_per_s: per_second(total.delivered, secs),
        ack_p50_ms: ack.quantile_ms(0.50),
        ack_p99_ms: ack.quantile_ms(0.99),
        ack_max_ms: ack.max_ms(),
        deliver_p50_ms: deliver.quantile_ms(0.50),
        deliver_p99_ms: deliver.quantile_ms(0.99),
        deliver_max_ms: deliver.max_ms(),
        first_error: total
            .first_error
            .or_else(|| readies.into_iter().find_map(|r| r.first_error)),
    })
}
