//! `room`: G members in one live room, S of them sending at a total rate R.
//!
//! - [`setup`]: the owner creates the room (fresh id per run); each member joins it.
//! - [`mix`]: the schedule and the priorities, pure functions of the options.
//! - [`sender`] / [`receiver`]: a member's two sides, without I/O.
//! - [`member`]: the task that drives one member's connection.
//! - [`shard`]: one process's members: connect and join, then run them on *go*.
//!
//! The senders are S of the G members (sender `j` is member `⌊j·G/S⌋`, so they are spread
//! over the worker processes): a sender receives the room's batches like everyone else,
//! which is what a live room's speakers do. The run sends `R × duration` messages on a
//! fixed schedule, every K-th HIGH and the rest NORMAL or LOW (`--low-share`); each
//! message's intended time is its slot (no coordinated omission) and travels in its body as
//! Unix microseconds, so a receiver in another process measures delivery latency on the
//! same clock. Members acknowledge HIGH messages cumulatively, once per read. After the send
//! period every member keeps receiving for the grace period (the server re-sends an
//! unacknowledged HIGH after about a second), then stops.
//!
//! Figures (over all members; "sent" counts what the server accepted):
//! - `deliveries_per_s`: first arrivals of room messages before the send period ended,
//!   summed over members, per second of the send period.
//! - `high_expected` = HIGH the room accepted (its last seq, read from the server after
//!   the run) × members that ran; `high_delivered` = distinct (member, seq) received;
//!   `high_lost` = the difference (0 is the promise).
//! - `normal_dropped` / `low_dropped` = Σ over members of (acked to the sender − received):
//!   what the budget (or a full queue) kept from them. Under overload some sends are still
//!   unanswered at the end (`unanswered`) and are not counted here.
//! - `messages_per_frame`: messages per `RoomBatch` frame, the batching at work.
//! - with `--metrics-url`, the server's room counters over the run (`server`).

pub mod member;
pub mod mix;
pub mod receiver;
pub mod sender;
pub mod setup;
pub mod shard;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::bail;
use serde::{Deserialize, Serialize};
use tokio::time::{Instant, timeout_at};

use crate::conn::Conn;
use crate::identity::Identity;
use crate::latency::{Buckets, Latency, per_second, round3};
use crate::metrics::{self, Counters, MetricsUrl};
use crate::plan::{Common, split};
use crate::pool::Pool;
use crate::room::setup::RoomPlan;
use crate::shard::{ShardCommon, ShardReport, ShardSpec};

pub use shard::run_shard;

/// Most members one run may hold.
pub const MAX_MEMBERS: u64 = 200_000;
/// Most messages one run may send.
pub const MAX_MESSAGES: u64 = 10_000_000;
/// Longest send period.
pub const MAX_DURATION: Duration = Duration::from_secs(600);
/// Shortest grace period: the server re-sends an unacknowledged HIGH after about 1 s.
pub const MIN_GRACE: Duration = Duration::from_secs(1);
/// Longest grace period.
pub const MAX_GRACE: Duration = Duration::from_secs(60);
/// Smallest body: it starts with the intended send time (`<unix µs>.`, 17 bytes).
pub const MIN_SIZE: usize = 24;
/// Largest body.
pub const MAX_SIZE: usize = 60 * 1024;
/// Time allowed for a metrics scrape.
const SCRAPE_LIMIT: Duration = Duration::from_secs(5);

/// Options of `magpie bench room`.
#[derive(Debug, Clone)]
pub struct RoomOptions {
    /// Members (connections, one fresh user each).
    pub members: u64,
    /// How many of them send.
    pub senders: u64,
    /// Total send rate, messages per second.
    pub rate: f64,
    /// Every K-th message is HIGH (0: none).
    pub high_every: u64,
    /// Share of the other messages sent LOW.
    pub low_share: f64,
    /// Send period.
    pub duration: Duration,
    /// How long members keep receiving after it.
    pub grace: Duration,
    /// The room's downstream budget per connection, msgs/s (`None`: the server's default).
    pub budget: Option<u32>,
    /// The room's send limit, msgs/s.
    pub room_send_rate: u32,
    /// Body size, bytes.
    pub size: usize,
    /// The server's Prometheus endpoint, to report its room counters over the run.
    pub metrics_url: Option<String>,
}

/// One shard of a room run: members `first .. first + count` of `members`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoomShard {
    /// Shared settings.
    pub common: ShardCommon,
    /// The room.
    pub room: String,
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
    /// Total rate, msgs/s.
    pub rate: f64,
    /// Every K-th message is HIGH.
    pub high_every: u64,
    /// Share of LOW among the others.
    pub low_share: f64,
    /// Body size.
    pub size: usize,
    /// Send period, ms.
    pub duration_ms: u64,
    /// Grace period, ms.
    pub grace_ms: u64,
}

/// What a room shard measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RoomShardReport {
    /// Members that ran.
    pub members_run: u64,
    /// Members whose connection closed before the end.
    pub closed: u64,
    /// Sends written.
    pub sent: u64,
    /// HIGH sends accepted.
    pub acked_high: u64,
    /// NORMAL sends accepted.
    pub acked_normal: u64,
    /// LOW sends accepted.
    pub acked_low: u64,
    /// Refused sends by error code.
    pub send_errors: BTreeMap<String, u64>,
    /// `RoomBatch` frames received.
    pub frames: u64,
    /// Messages in them.
    pub messages: u64,
    /// Distinct (member, seq) HIGH received.
    pub high_delivered: u64,
    /// HIGH received again.
    pub high_dups: u64,
    /// The highest HIGH seq acked to a sender or received by a member.
    pub high_last_seq: u64,
    /// NORMAL received.
    pub normal_delivered: u64,
    /// LOW received.
    pub low_delivered: u64,
    /// First arrivals during the send period.
    pub in_window: u64,
    /// Send ack latency.
    pub ack: Buckets,
    /// Delivery latency, every priority.
    pub deliver: Buckets,
    /// Delivery latency, HIGH.
    pub high: Buckets,
    /// The first error seen.
    pub first_error: Option<String>,
}

/// The server's room counters over a run (from `--metrics-url`).
#[derive(Debug, Clone, Serialize)]
pub struct ServerRoomCounters {
    /// Messages accepted, HIGH.
    pub messages_high: u64,
    /// NORMAL.
    pub messages_normal: u64,
    /// LOW.
    pub messages_low: u64,
    /// Batches flushed (one per room window).
    pub batches: u64,
    /// Message deliveries queued to connections.
    pub deliveries: u64,
    /// HIGH messages written again.
    pub retransmits: u64,
    /// Deliveries dropped by the budget, NORMAL.
    pub dropped_budget_normal: u64,
    /// LOW.
    pub dropped_budget_low: u64,
    /// Deliveries dropped for a full connection queue, any priority.
    pub dropped_queue_full: u64,
}

/// The JSON line of a room run.
#[derive(Debug, Clone, Serialize)]
pub struct RoomSummary {
    /// Always `room`.
    pub scenario: &'static str,
    /// `tcp` or `ws`.
    pub transport: &'static str,
    /// The server URL.
    pub server: String,
    /// The room of this run.
    pub room: String,
    /// Members asked for.
    pub members: u64,
    /// Senders among them.
    pub senders: u64,
    /// Total send rate, msgs/s.
    pub rate: f64,
    /// Every K-th message HIGH (0: none).
    pub high_every: u64,
    /// Share of LOW among the others.
    pub low_share: f64,
    /// The room's budget (null: the server's default).
    pub budget: Option<u32>,
    /// Send period, s.
    pub duration_s: f64,
    /// Grace period, s.
    pub grace_s: f64,
    /// Body size, bytes.
    pub size: usize,
    /// Processes that ran the members.
    pub workers: usize,
    /// Members that connected and joined.
    pub joined: u64,
    /// Members that failed to connect or join.
    pub failed: u64,
    /// Member connections lost during the run.
    pub closed: u64,
    /// Sends written.
    pub sent: u64,
    /// Sends accepted.
    pub acked: u64,
    /// Sends without an answer when the run ended.
    pub unanswered: u64,
    /// HIGH acked to the senders.
    pub high_sent: u64,
    /// HIGH the room accepted: its last reliable seq (some acks may not have reached the
    /// senders in time).
    pub high_accepted: u64,
    /// NORMAL accepted.
    pub normal_sent: u64,
    /// LOW accepted.
    pub low_sent: u64,
    /// Refused sends by error code.
    pub send_errors: BTreeMap<String, u64>,
    /// Room messages received per second of the send period, over all members.
    pub deliveries_per_s: u64,
    /// Delivery latency from the intended send time, every priority, ms.
    pub deliver_p50_ms: Option<f64>,
    /// 99th percentile.
    pub deliver_p99_ms: Option<f64>,
    /// Largest.
    pub deliver_max_ms: Option<f64>,
    /// `high_accepted` × members that ran.
    pub high_expected: u64,
    /// Distinct (member, seq) HIGH received.
    pub high_delivered: u64,
    /// `high_expected − high_delivered`.
    pub high_lost: u64,
    /// HIGH received again (retransmissions of messages already there).
    pub high_dups: u64,
    /// HIGH delivery latency, ms.
    pub high_p50_ms: Option<f64>,
    /// 99th percentile.
    pub high_p99_ms: Option<f64>,
    /// Largest.
    pub high_max_ms: Option<f64>,
    /// NORMAL received, over all members.
    pub normal_delivered: u64,
    /// LOW received, over all members.
    pub low_delivered: u64,
    /// Σ over members of NORMAL accepted − received.
    pub normal_dropped: u64,
    /// Σ over members of LOW accepted − received.
    pub low_dropped: u64,
    /// `RoomBatch` frames received, over all members.
    pub frames_received: u64,
    /// Messages per frame.
    pub messages_per_frame: f64,
    /// Send ack latency, ms.
    pub ack_p50_ms: Option<f64>,
    /// 99th percentile.
    pub ack_p99_ms: Option<f64>,
    /// The server's room counters over the run (with `--metrics-url`).
    pub server_counters: Option<ServerRoomCounters>,
    /// The first error, if any.
    pub first_error: Option<String>,
}

/// Runs the room scenario.
pub async fn run(common: &Common, opts: &RoomOptions) -> anyhow::Result<RoomSummary> {
    common.validate()?;
    let messages = validate(common, opts)?;
    let metrics_url = opts
        .metrics_url
        .as_deref()
        .map(MetricsUrl::parse)
        .transpose()?;
    let identity = Identity::new_run(common.app.clone(), common.secret.clone());
    let room = format!("bench-{}", identity.run);
    let ranges = split(opts.members, common.per_process() as u64)?;
    let shard_common = common.shard_common(&identity, ranges.len());
    let deadline = shard_common.deadline();
    create_room(&shard_common, &identity, &room, opts, deadline).await?;
    let before = match &metrics_url {
        Some(u) => Some(metrics::scrape(u, SCRAPE_LIMIT).await?),
        None => None,
    };
    let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let specs = ranges
        .into_iter()
        .map(|(first, count)| {
            ShardSpec::Room(RoomShard {
                common: shard_common.clone(),
                room: room.clone(),
                first,
                count,
                members: opts.members,
                senders: opts.senders,
                messages,
                rate: opts.rate,
                high_every: opts.high_every,
                low_share: opts.low_share,
                size: opts.size,
                duration_ms: millis(opts.duration),
                grace_ms: millis(opts.grace),
            })
        })
        .collect();
    let mut pool = Pool::start(specs, &common.worker).await?;
    let workers = pool.len();
    let hard = deadline + Duration::from_secs(5);
    let readies = timeout_at(hard, pool.ready()).await??;
    pool.go().await?;
    let reports = timeout_at(hard, pool.finish()).await??;
    // The server's count of HIGH messages, whether or not their acks reached the senders
    // before the end; the bench's own count if the room cannot be read.
    let last_seq = room_last_seq(&shard_common, &identity, &room, hard).await;
    let server_counters = match (&metrics_url, before) {
        (Some(u), Some(before)) => {
            let after = metrics::scrape(u, SCRAPE_LIMIT).await?;
            Some(server_counters(&before, &after))
        }
        _ => None,
    };

    let mut t = RoomShardReport::default();
    let (mut ack, mut deliver, mut high) = (Latency::new(), Latency::new(), Latency::new());
    for r in reports {
        let ShardReport::Room(r) = r else {
            bail!("a room worker answered with another scenario's report");
        };
        t.members_run += r.members_run;
        t.closed += r.closed;
        t.sent += r.sent;
        t.acked_high += r.acked_high;
        t.acked_normal += r.acked_normal;
        t.acked_low += r.acked_low;
        for (code, n) in r.send_errors {
            *t.send_errors.entry(code).or_default() += n;
        }
        t.frames += r.frames;
        t.messages += r.messages;
        t.high_delivered += r.high_delivered;
        t.high_dups += r.high_dups;
        t.high_last_seq = t.high_last_seq.max(r.high_last_seq);
        t.normal_delivered += r.normal_delivered;
        t.low_delivered += r.low_delivered;
        t.in_window += r.in_window;
        ack.merge(&r.ack);
        deliver.merge(&r.deliver);
        high.merge(&r.high);
        if t.first_error.is_none() {
            t.first_error = r.first_error;
        }
    }
    let (high_accepted, last_seq_error) = match last_seq {
        Ok(seq) => (seq.max(t.high_last_seq), None),
        Err(e) => (t.high_last_seq, Some(format!("{e:#}"))),
    };
    let high_expected = high_accepted * t.members_run;
    let answered =
        t.acked_high + t.acked_normal + t.acked_low + t.send_errors.values().sum::<u64>();
    let messages_per_frame = if t.frames > 0 {
        round3(t.messages as f64 / t.frames as f64)
    } else {
        0.0
    };
    Ok(RoomSummary {
        scenario: "room",
        transport: common.target.transport.name(),
        server: common.target.url(),
        room,
        members: opts.members,
        senders: opts.senders,
        rate: opts.rate,
        high_every: opts.high_every,
        low_share: opts.low_share,
        budget: opts.budget,
        duration_s: round3(opts.duration.as_secs_f64()),
        grace_s: round3(opts.grace.as_secs_f64()),
        size: opts.size,
        workers,
        joined: readies.iter().map(|r| r.connected).sum(),
        failed: readies.iter().map(|r| r.failed).sum(),
        closed: t.closed,
        sent: t.sent,
        acked: t.acked_high + t.acked_normal + t.acked_low,
        unanswered: t.sent.saturating_sub(answered),
        high_sent: t.acked_high,
        high_accepted,
        normal_sent: t.acked_normal,
        low_sent: t.acked_low,
        send_errors: t.send_errors,
        deliveries_per_s: per_second(t.in_window, opts.duration.as_secs_f64()),
        deliver_p50_ms: deliver.quantile_ms(0.50),
        deliver_p99_ms: deliver.quantile_ms(0.99),
        deliver_max_ms: deliver.max_ms(),
        high_expected,
        high_delivered: t.high_delivered,
        high_lost: high_expected.saturating_sub(t.high_delivered),
        high_dups: t.high_dups,
        high_p50_ms: high.quantile_ms(0.50),
        high_p99_ms: high.quantile_ms(0.99),
        high_max_ms: high.max_ms(),
        normal_delivered: t.normal_delivered,
        low_delivered: t.low_delivered,
        normal_dropped: (t.acked_normal * t.members_run).saturating_sub(t.normal_delivered),
        low_dropped: (t.acked_low * t.members_run).saturating_sub(t.low_delivered),
        frames_received: t.frames,
        messages_per_frame,
        ack_p50_ms: ack.quantile_ms(0.50),
        ack_p99_ms: ack.quantile_ms(0.99),
        server_counters,
        first_error: t
            .first_error
            .or_else(|| readies.into_iter().find_map(|r| r.first_error))
            .or(last_seq_error),
    })
}

/// Checks the options; returns the run's message count.
fn validate(common: &Common, opts: &RoomOptions) -> anyhow::Result<u64> {
    if opts.members == 0 || opts.members > MAX_MEMBERS {
        bail!("--members must be within 1..={MAX_MEMBERS}");
    }
    if opts.senders == 0 || opts.senders > opts.members {
        bail!("--senders must be within 1..=--members");
    }
    if !(opts.rate.is_finite() && opts.rate > 0.0) {
        bail!("--rate must be a positive number");
    }
    if !(0.0..=1.0).contains(&opts.low_share) {
        bail!("--low-share must be within 0..=1");
    }
    if opts.duration.is_zero() || opts.duration > MAX_DURATION {
        bail!(
            "--duration-s must be within 0..={} s",
            MAX_DURATION.as_secs()
        );
    }
    if opts.grace < MIN_GRACE || opts.grace > MAX_GRACE {
        bail!(
            "--grace-s must be within {}..={} s",
            MIN_GRACE.as_secs(),
            MAX_GRACE.as_secs()
        );
    }
    if opts.duration + opts.grace >= common.timeout {
        bail!("--duration-s + --grace-s must be shorter than --timeout");
    }
    if opts.size < MIN_SIZE || opts.size > MAX_SIZE {
        bail!("--size must be within {MIN_SIZE}..={MAX_SIZE}");
    }
    if opts.room_send_rate == 0 {
        bail!("--room-send-rate must be at least 1");
    }
    let messages = (opts.rate * opts.duration.as_secs_f64()).round();
    if messages < 1.0 || messages > MAX_MESSAGES as f64 {
        bail!("--rate × --duration-s must be within 1..={MAX_MESSAGES} messages");
    }
    Ok(messages as u64)
}

/// The owner's connection (a user of its own, not a member), and how long a request on it
/// may take.
async fn owner(
    common: &ShardCommon,
    identity: &Identity,
    deadline: Instant,
) -> anyhow::Result<(Conn, Instant)> {
    let dialer = common.dialer(4 * 1024);
    let token = identity.token(&identity.user('o', 0))?;
    let until = (Instant::now() + dialer.timeout).min(deadline);
    let conn = timeout_at(until, dialer.open(0, &token))
        .await
        .map_err(|_| anyhow::anyhow!("the owner's connection timed out"))??;
    Ok((conn, until))
}

/// Creates the run's room.
async fn create_room(
    common: &ShardCommon,
    identity: &Identity,
    room: &str,
    opts: &RoomOptions,
    deadline: Instant,
) -> anyhow::Result<()> {
    let (mut conn, until) = owner(common, identity, deadline).await?;
    let plan = RoomPlan {
        budget: opts.budget,
        send_rate: opts.room_send_rate,
    };
    setup::create(&mut conn, room, plan, until).await?;
    conn.writer.close().await;
    Ok(())
}

/// How many HIGH messages the room accepted, as the server says.
async fn room_last_seq(
    common: &ShardCommon,
    identity: &Identity,
    room: &str,
    deadline: Instant,
) -> anyhow::Result<u64> {
    let (mut conn, until) = owner(common, identity, deadline).await?;
    let seq = setup::last_seq(&mut conn, room, until).await?;
    conn.writer.close().await;
    Ok(seq)
}

fn server_counters(before: &Counters, after: &Counters) -> ServerRoomCounters {
    let delta = |name: &str, labels: &[(&str, &str)]| {
        let d = after.sum(name, labels) - before.sum(name, labels);
        d.max(0.0).round() as u64
    };
    let dropped = "magpie_room_dropped_total";
    let msgs = "magpie_room_messages_total";
    ServerRoomCounters {
        messages_high: delta(msgs, &[("priority", "high")]),
        messages_normal: delta(msgs, &[("priority", "normal")]),
        messages_low: delta(msgs, &[("priority", "low")]),
        batches: delta("magpie_room_batches_total", &[]),
        deliveries: delta("magpie_room_deliveries_total", &[]),
        retransmits: delta("magpie_room_retransmits_total", &[]),
        dropped_budget_normal: delta(dropped, &[("priority", "normal"), ("reason", "budget")]),
        dropped_budget_low: delta(dropped, &[("priority", "low"), ("reason", "budget")]),
        dropped_queue_full: delta(dropped, &[("reason", "queue_full")]),
    }
}
