//! `group`: fan-out in one group with G online members; S of them send M messages.
//!
//! - [`setup`]: the owner (a user of its own) creates the group — a super group past the
//!   ordinary limit — and adds the members in batches, after they have connected.
//! - [`sender`] / [`receiver`]: a member's two sides, without I/O.
//! - [`member`]: the task that drives one member's connection.
//! - [`shard`]: one process's members: connect, start, release on *go*, report.
//! - [`seqs`]: received and acknowledged seqs as ranges, and the scoring.
//!
//! The members are spread over worker processes and loopback source addresses exactly as
//! in `room` (one process holds at most `--per-worker` connections). The senders are S of
//! the members (sender `j` is member `⌊j·G/S⌋`), sending as fast as a window of
//! unanswered sends allows, or at a total `--rate` on a fixed schedule; latency is measured
//! from each message's intended send time (its slot under `--rate`: no coordinated
//! omission). Every member acknowledges every push, as the SDK does.
//!
//! Figures (over all members):
//! - `expected` = Σ over the messages the senders saw acknowledged of the members that
//!   should receive it: every member that ran but the sender's own connection (the server
//!   does not push a message back to the connection that sent it).
//! - `delivered` = distinct (member, seq) of those received; `lost` = `expected −
//!   delivered`: what had not arrived when the member stopped (it had everything, or
//!   nothing new came for `--drain` seconds, or the run's deadline passed).
//! - `dups` = arrivals of a (member, seq) already received (see [`receiver`]).
//! - `deliveries_per_s` = `delivered` / `elapsed_s`, where `elapsed_s` runs from *go* to the
//!   last first arrival at any member.
//! - with `--metrics-url`, the server's push counters over the send phase (`server`).

pub mod member;
pub mod receiver;
pub mod sender;
pub mod seqs;
pub mod setup;
pub mod shard;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::bail;
use serde::{Deserialize, Serialize};
use tokio::time::{Instant, timeout_at};

use crate::group::seqs::{SeqSet, Tally, score};
use crate::group::setup::{GroupPlan, ORDINARY_LIMIT};
use crate::identity::Identity;
use crate::latency::{Buckets, Latency, per_second, round3};
use crate::metrics::{self, Counters, MetricsUrl};
use crate::plan::{Common, split};
use crate::pool::Pool;
use crate::shard::{ShardCommon, ShardReport, ShardSpec};

pub use shard::run_shard;

/// Most members one run may hold.
pub const MAX_MEMBERS: u64 = 100_000;
/// Most messages one run may send.
pub const MAX_MESSAGES: u64 = 1_000_000;
/// Largest window.
pub const MAX_WINDOW: u32 = 1024;
/// Largest message body accepted by the bench.
pub const MAX_SIZE: usize = 30 * 1024;
/// Shortest and longest drain time.
pub const DRAIN_RANGE: (Duration, Duration) =
    (Duration::from_millis(100), Duration::from_secs(120));
/// Time allowed for a metrics scrape.
const SCRAPE_LIMIT: Duration = Duration::from_secs(5);

/// Options of `magpie bench group`.
#[derive(Debug, Clone)]
pub struct GroupOptions {
    /// Members (connections, one fresh user each).
    pub members: u64,
    /// Messages of the whole run.
    pub messages: u64,
    /// How many members send.
    pub senders: u64,
    /// Total send rate, msgs/s (`None`: as fast as the window allows).
    pub rate: Option<f64>,
    /// Most unanswered sends per sender.
    pub window: u32,
    /// Body size, bytes.
    pub size: usize,
    /// Members stop after this long without a new message.
    pub drain: Duration,
    /// Most users one create or add names (the server's `limits.max_users_per_group_op`).
    pub add_batch: usize,
    /// Create a super group even below the ordinary limit.
    pub super_group: bool,
    /// The server's Prometheus endpoint, to report its push counters over the run.
    pub metrics_url: Option<String>,
}

/// One shard of a group run: members `first .. first + count` of `members`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupShard {
    /// Shared settings.
    pub common: ShardCommon,
    /// The group.
    pub group: String,
    /// The first member of this shard.
    pub first: u64,
    /// Members in this shard.
    pub count: u64,
    /// Members in the whole run.
    pub members: u64,
    /// Senders in the whole run.
    pub senders: u64,
    /// Messages of the whole run.
    pub messages: u64,
    /// Total rate, msgs/s, if on a schedule.
    pub rate: Option<f64>,
    /// Window per sender.
    pub window: u32,
    /// Body size.
    pub size: usize,
    /// A member's idle stop, ms.
    pub idle_ms: u64,
}

/// What a group shard measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GroupShardReport {
    /// Members that ran past *go*.
    pub members_run: u64,
    /// Members whose connection closed before the end.
    pub closed: u64,
    /// Sends written.
    pub sent: u64,
    /// Sends acknowledged.
    pub acked: u64,
    /// Sends without an answer at the end.
    pub unanswered: u64,
    /// Refused sends by error code.
    pub send_errors: BTreeMap<String, u64>,
    /// The seqs the senders saw acknowledged.
    pub acked_seqs: Vec<(u64, u64)>,
    /// How many of this shard's members received each seq.
    pub received: Tally,
    /// Arrivals of a message a member already had.
    pub dups: u64,
    /// Group events received (setup), over members.
    pub events: u64,
    /// Other pushes (none expected).
    pub other: u64,
    /// Unix µs of *go*.
    pub go_unix_us: u64,
    /// Unix µs of the last first arrival.
    pub last_delivery_unix_us: u64,
    /// Send ack latency.
    pub ack: Buckets,
    /// Delivery latency.
    pub deliver: Buckets,
    /// The first error seen.
    pub first_error: Option<String>,
}

/// The server's counters over the send phase (from `--metrics-url`).
#[derive(Debug, Clone, Serialize)]
pub struct ServerGroupCounters {
    /// Messages accepted (1:1 and group).
    pub messages_sent: u64,
    /// Pushes queued to connections.
    pub pushes_queued: u64,
    /// Pushes written again for a missing ack.
    pub push_retransmits: u64,
    /// Connections closed for not keeping up.
    pub slow_consumers: u64,
    /// Error frames sent.
    pub errors: u64,
}

/// The JSON line of a group run.
#[derive(Debug, Clone, Serialize)]
pub struct GroupSummary {
    /// Always `group`.
    pub scenario: &'static str,
    /// `tcp` or `ws`.
    pub transport: &'static str,
    /// The server URL.
    pub server: String,
    /// The group of this run.
    pub group: String,
    /// Members asked for.
    pub members: u64,
    /// Senders among them.
    pub senders: u64,
    /// Messages asked for.
    pub messages: u64,
    /// Total rate, or null for as fast as the window allows.
    pub rate: Option<f64>,
    /// Window per sender.
    pub window: u32,
    /// Body size, bytes.
    pub size: usize,
    /// Whether the group is a super group.
    pub super_group: bool,
    /// Processes that ran the members.
    pub workers: usize,
    /// Members connected.
    pub connected: u64,
    /// Members that failed to connect.
    pub failed: u64,
    /// Member connections lost during the run.
    pub closed: u64,
    /// Seconds the owner took to create the group and add everyone.
    pub setup_s: f64,
    /// Create and add requests made.
    pub setup_requests: u64,
    /// Sends written.
    pub sent: u64,
    /// Sends acknowledged (durable: fsync'd before the ack).
    pub acked: u64,
    /// Sends without an answer when the run ended.
    pub unanswered: u64,
    /// Refused sends by error code.
    pub send_errors: BTreeMap<String, u64>,
    /// Deliveries expected (see the module docs).
    pub expected: u64,
    /// Of those, delivered.
    pub delivered: u64,
    /// `expected − delivered`.
    pub lost: u64,
    /// Arrivals of a message a member already had.
    pub dups: u64,
    /// Deliveries of messages whose ack the sender never got.
    pub unacked_delivered: u64,
    /// From go to the last first arrival, seconds.
    pub elapsed_s: f64,
    /// `delivered / elapsed_s`.
    pub deliveries_per_s: u64,
    /// Delivery latency from the intended send time, ms.
    pub deliver_p50_ms: Option<f64>,
    /// 99th percentile.
    pub deliver_p99_ms: Option<f64>,
    /// Largest.
    pub deliver_max_ms: Option<f64>,
    /// Send ack latency from the intended send time, ms.
    pub ack_p50_ms: Option<f64>,
    /// 99th percentile.
    pub ack_p99_ms: Option<f64>,
    /// Largest.
    pub ack_max_ms: Option<f64>,
    /// The server's counters over the send phase (with `--metrics-url`).
    pub server_counters: Option<ServerGroupCounters>,
    /// The first error, if any.
    pub first_error: Option<String>,
}

/// Runs the group scenario.
pub async fn run(common: &Common, opts: &GroupOptions) -> anyhow::Result<GroupSummary> {
    common.validate()?;
    validate(opts)?;
    let metrics_url = opts
        .metrics_url
        .as_deref()
        .map(MetricsUrl::parse)
        .transpose()?;
    let identity = Identity::new_run(common.app.clone(), common.secret.clone());
    let group = format!("bench-{}", identity.run);
    let ranges = split(opts.members, common.per_process() as u64)?;
    let shard_common = common.shard_common(&identity, ranges.len());
    let deadline = shard_common.deadline();
    // Idle stop: the drain time, plus the gap between two messages under --rate.
    let idle = opts.drain
        + opts
            .rate
            .map_or(Duration::ZERO, |r| Duration::from_secs_f64(1.0 / r));
    let specs = ranges
        .into_iter()
        .map(|(first, count)| {
            ShardSpec::Group(GroupShard {
                common: shard_common.clone(),
                group: group.clone(),
                first,
                count,
                members: opts.members,
                senders: opts.senders,
                messages: opts.messages,
                rate: opts.rate,
                window: opts.window,
                size: opts.size,
                idle_ms: u64::try_from(idle.as_millis()).unwrap_or(u64::MAX),
            })
        })
        .collect();
    let mut pool = Pool::start(specs, &common.worker).await?;
    let workers = pool.len();
    let hard = deadline + Duration::from_secs(5);
    let readies = timeout_at(hard, pool.ready()).await??;
    let failed: u64 = readies.iter().map(|r| r.failed).sum();
    if failed > 0 {
        let why = readies.iter().find_map(|r| r.first_error.clone());
        bail!(
            "{failed} of {} members failed to connect (an absent user cannot be added): {}",
            opts.members,
            why.unwrap_or_default()
        );
    }

    let super_group = opts.super_group || opts.members + 1 > ORDINARY_LIMIT;
    let plan = GroupPlan {
        group: group.clone(),
        members: (0..opts.members).map(|i| identity.user('m', i)).collect(),
        batch: opts.add_batch,
        super_group,
    };
    let setup_started = Instant::now();
    let done = set_up(&shard_common, &identity, &plan, deadline).await?;
    let setup_s = setup_started.elapsed().as_secs_f64();

    let before = match &metrics_url {
        Some(u) => Some(metrics::scrape(u, SCRAPE_LIMIT).await?),
        None => None,
    };
    pool.go().await?;
    let reports = timeout_at(hard, pool.finish()).await??;
    let server_counters = match (&metrics_url, before) {
        (Some(u), Some(before)) => {
            let after = metrics::scrape(u, SCRAPE_LIMIT).await?;
            Some(server_counters(&before, &after))
        }
        _ => None,
    };

    let mut t = GroupShardReport {
        go_unix_us: u64::MAX,
        ..GroupShardReport::default()
    };
    let mut acked = SeqSet::default();
    let (mut ack, mut deliver) = (Latency::new(), Latency::new());
    for r in reports {
        let ShardReport::Group(r) = r else {
            bail!("a group worker answered with another scenario's report");
        };
        t.members_run += r.members_run;
        t.closed += r.closed;
        t.sent += r.sent;
        t.acked += r.acked;
        t.unanswered += r.unanswered;
        for (code, n) in r.send_errors {
            *t.send_errors.entry(code).or_default() += n;
        }
        for (a, b) in r.acked_seqs {
            for seq in a..=b {
                acked.insert(seq);
            }
        }
        t.received = t.received.merge(&r.received);
        t.dups += r.dups;
        t.events += r.events;
        t.other += r.other;
        t.go_unix_us = t.go_unix_us.min(r.go_unix_us);
        t.last_delivery_unix_us = t.last_delivery_unix_us.max(r.last_delivery_unix_us);
        ack.merge(&r.ack);
        deliver.merge(&r.deliver);
        if t.first_error.is_none() {
            t.first_error = r.first_error;
        }
    }
    // Every member that ran but the sender's own connection.
    let per_message = t.members_run.saturating_sub(1);
    let s = score(&t.received, &acked.ranges(), per_message);
    let secs = if t.last_delivery_unix_us > t.go_unix_us {
        (t.last_delivery_unix_us - t.go_unix_us) as f64 / 1e6
    } else {
        0.0
    };
    Ok(GroupSummary {
        scenario: "group",
        transport: common.target.transport.name(),
        server: common.target.url(),
        group,
        members: opts.members,
        senders: opts.senders,
        messages: opts.messages,
        rate: opts.rate,
        window: opts.window,
        size: opts.size,
        super_group,
        workers,
        connected: readies.iter().map(|r| r.connected).sum(),
        failed,
        closed: t.closed,
        setup_s: round3(setup_s),
        setup_requests: done.requests,
        sent: t.sent,
        acked: t.acked,
        unanswered: t.unanswered,
        send_errors: t.send_errors,
        expected: s.expected,
        delivered: s.delivered,
        lost: s.lost,
        dups: t.dups,
        unacked_delivered: s.unacked_delivered,
        elapsed_s: round3(secs),
        deliveries_per_s: per_second(s.delivered, secs),
        deliver_p50_ms: deliver.quantile_ms(0.50),
        deliver_p99_ms: deliver.quantile_ms(0.99),
        deliver_max_ms: deliver.max_ms(),
        ack_p50_ms: ack.quantile_ms(0.50),
        ack_p99_ms: ack.quantile_ms(0.99),
        ack_max_ms: ack.max_ms(),
        server_counters,
        first_error: t.first_error,
    })
}

/// Checks the options.
fn validate(opts: &GroupOptions) -> anyhow::Result<()> {
    if opts.members < 2 || opts.members > MAX_MEMBERS {
        bail!("--members must be within 2..={MAX_MEMBERS}");
    }
    if opts.messages == 0 || opts.messages > MAX_MESSAGES {
        bail!("--messages must be within 1..={MAX_MESSAGES}");
    }
    if opts.senders == 0 || opts.senders > opts.members {
        bail!("--senders must be within 1..=--members");
    }
    if let Some(r) = opts.rate
        && !(r.is_finite() && r >= 0.01)
    {
        bail!("--rate must be a number ≥ 0.01");
    }
    if opts.window == 0 || opts.window > MAX_WINDOW {
        bail!("--window must be within 1..={MAX_WINDOW}");
    }
    if opts.size == 0 || opts.size > MAX_SIZE {
        bail!("--size must be within 1..={MAX_SIZE}");
    }
    let (lo, hi) = DRAIN_RANGE;
    if opts.drain < lo || opts.drain > hi {
        bail!(
            "--drain must be within {}..={} s",
            lo.as_secs_f64(),
            hi.as_secs_f64()
        );
    }
    if opts.add_batch < 2 {
        bail!("--add-batch must be at least 2");
    }
    Ok(())
}

/// Creates and fills the group from the owner's connection (a user of its own, closed
/// afterwards: the owner stays a member, offline).
async fn set_up(
    common: &ShardCommon,
    identity: &Identity,
    plan: &GroupPlan,
    deadline: Instant,
) -> anyhow::Result<setup::SetupDone> {
    let dialer = common.dialer(64 * 1024);
    let token = identity.token(&identity.user('o', 0))?;
    let until = (Instant::now() + dialer.timeout).min(deadline);
    let mut conn = timeout_at(until, dialer.open(0, &token))
        .await
        .map_err(|_| anyhow::anyhow!("the owner's connection timed out"))??;
    let done = setup::create_and_fill(&mut conn, plan, dialer.timeout, deadline).await;
    conn.writer.close().await;
    done
}

fn server_counters(before: &Counters, after: &Counters) -> ServerGroupCounters {
    let delta = |name: &str| {
        let d = after.sum(name, &[]) - before.sum(name, &[]);
        d.max(0.0).round() as u64
    };
    ServerGroupCounters {
        messages_sent: delta("magpie_messages_sent_total"),
        pushes_queued: delta("magpie_pushes_queued_total"),
        push_retransmits: delta("magpie_push_retransmits_total"),
        slow_consumers: delta("magpie_slow_consumers_total"),
        errors: delta("magpie_errors_total"),
    }
}
