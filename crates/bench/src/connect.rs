//! `connect`: N authenticated idle connections, held for a while.
//!
//! Each connection is one task: mint a token for a fresh user, dial, `Hello` → `HelloOk`,
//! then idle, pinging at half the server's heartbeat interval so a long hold is never
//! closed for silence, until the coordinator releases it. At most `--concurrency`
//! connections of the whole run are being opened at once.
//!
//! Figures: `connect_rate_per_s` = authenticated connections / (last handshake done −
//! first attempt started), over all shards; with `--server-pid`, the server's resident
//! memory before and at the end of the hold, and the difference per connection.

use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until, timeout_at};

use crate::conn::{self, Conn, Dialer};
use crate::identity::Identity;
use crate::latency::{per_second, round3};
use crate::plan::{Common, split};
use crate::pool::Pool;
use crate::procfs;
use crate::shard::{Control, Ready, ShardCommon, ShardReport, ShardSpec, unix_us};

/// Most connections one run may open.
pub const MAX_CONNECTIONS: u64 = 200_000;
/// Read buffer step of an idle connection: it only ever reads pongs.
const IDLE_READ_CHUNK: usize = 256;

/// Options of `magpie bench connect`.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Connections to open.
    pub connections: u64,
    /// How long to hold them once all are open.
    pub hold: Duration,
    /// The server's process id, to read its memory from `/proc`.
    pub server_pid: Option<u32>,
}

/// One shard of a connect run: connections `first .. first + count`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConnectShard {
    /// Shared settings.
    pub common: ShardCommon,
    /// Index of the first connection (names its user and picks its source address).
    pub first: u64,
    /// Connections in this shard.
    pub count: u64,
}

/// What a connect shard saw after *go*.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ConnectShardReport {
    /// Connections the server closed (or that failed) during the hold.
    pub dropped: u64,
}

/// The JSON line of a connect run.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectSummary {
    /// Always `connect`.
    pub scenario: &'static str,
    /// `tcp` or `ws`.
    pub transport: &'static str,
    /// The server URL.
    pub server: String,
    /// Connections asked for.
    pub requested: u64,
    /// Connections authenticated.
    pub connections: u64,
    /// Connections that failed to open.
    pub failed: u64,
    /// Connections lost during the hold.
    pub dropped: u64,
    /// Authenticated connections per second of the connect phase.
    pub connect_rate_per_s: u64,
    /// Length of the connect phase, seconds.
    pub connect_secs: f64,
    /// Seconds the connections were held.
    pub hold_secs: f64,
    /// Processes that held the connections.
    pub workers: usize,
    /// Server RSS before connecting (with `--server-pid`).
    pub rss_before_bytes: Option<u64>,
    /// Server RSS with every connection open, at the end of the hold.
    pub rss_after_bytes: Option<u64>,
    /// (after − before) / connections.
    pub rss_per_conn_bytes: Option<i64>,
    /// The first connection error, if any.
    pub first_error: Option<String>,
}

/// Runs the connect scenario.
pub async fn run(common: &Common, opts: &ConnectOptions) -> anyhow::Result<ConnectSummary> {
    common.validate()?;
    if opts.connections == 0 || opts.connections > MAX_CONNECTIONS {
        bail!("--connections must be within 1..={MAX_CONNECTIONS}");
    }
    if opts.hold >= common.timeout {
        bail!("--hold must be shorter than --timeout");
    }
    let identity = Identity::new_run(common.app.clone(), common.secret.clone());
    let ranges = split(opts.connections, common.per_process() as u64)?;
    let shard_common = common.shard_common(&identity, ranges.len());
    let deadline = shard_common.deadline();
    let specs = ranges
        .into_iter()
        .map(|(first, count)| {
            ShardSpec::Connect(ConnectShard {
                common: shard_common.clone(),
                first,
                count,
            })
        })
        .collect();
    let rss_before = opts.server_pid.map(procfs::rss_bytes).transpose()?;
    let mut pool = Pool::start(specs, &common.worker).await?;
    let workers = pool.len();
    // A grace period past the shards' own deadline, for them to report what they have.
    let hard = deadline + Duration::from_secs(5);
    let readies = timeout_at(hard, pool.ready()).await??;
    let held_from = Instant::now();
    sleep_until((held_from + opts.hold).min(deadline)).await;
    let hold_secs = held_from.elapsed().as_secs_f64();
    let rss_after = opts.server_pid.map(procfs::rss_bytes).transpose()?;
    pool.go().await?;
    let reports = timeout_at(hard, pool.finish()).await??;

    let connected: u64 = readies.iter().map(|r| r.connected).sum();
    let start = readies.iter().map(|r| r.start_unix_us).min().unwrap_or(0);
    let end = readies.iter().map(|r| r.last_ok_unix_us).max().unwrap_or(0);
    let secs = end.saturating_sub(start) as f64 / 1e6;
    let dropped = reports
        .iter()
        .map(|r| match r {
            ShardReport::Connect(c) => c.dropped,
            ShardReport::P2p(_) | ShardReport::Room(_) | ShardReport::Group(_) => 0,
        })
        .sum();
    let rss_per_conn = match (rss_before, rss_after) {
        (Some(b), Some(a)) if connected > 0 => {
            let diff = i64::try_from(a).unwrap_or(i64::MAX) - i64::try_from(b).unwrap_or(0);
            Some(diff / i64::try_from(connected).unwrap_or(i64::MAX))
        }
        _ => None,
    };
    Ok(ConnectSummary {
        scenario: "connect",
        transport: common.target.transport.name(),
        server: common.target.url(),
        requested: opts.connections,
        connections: connected,
        failed: readies.iter().map(|r| r.failed).sum(),
        dropped,
        connect_rate_per_s: per_second(connected, secs),
        connect_secs: round3(secs),
        hold_secs: round3(hold_secs),
        workers,
        rss_before_bytes: rss_before,
        rss_after_bytes: rss_after,
        rss_per_conn_bytes: rss_per_conn,
        first_error: readies.into_iter().find_map(|r| r.first_error),
    })
}

/// Runs one shard: open the connections, report ready, hold until *go*, close.
pub async fn run_shard(spec: ConnectShard, control: Control) -> anyhow::Result<ConnectShardReport> {
    let deadline = spec.common.deadline();
    let dialer = Arc::new(spec.common.dialer(IDLE_READ_CHUNK));
    let identity = Arc::new(spec.common.identity.clone());
    let gate = Arc::new(Semaphore::new(spec.common.concurrency));
    let (release_tx, release_rx) = watch::channel(());
    let (opened_tx, mut opened_rx) = mpsc::unbounded_channel::<Result<u64, String>>();
    let mut ready = Ready {
        start_unix_us: unix_us(),
        ..Ready::default()
    };
    let mut tasks = JoinSet::new();
    let spawn_all = async {
        for i in spec.first..spec.first + spec.count {
            let permit = gate.clone().acquire_owned().await?;
            let (dialer, identity) = (dialer.clone(), identity.clone());
            let (opened, release) = (opened_tx.clone(), release_rx.clone());
            tasks.spawn(async move {
                let conn = open(&dialer, &identity, i).await;
                drop(permit);
                match conn {
                    Ok(conn) => {
                        let _ = opened.send(Ok(unix_us()));
                        hold(conn, release, deadline).await
                    }
                    Err(e) => {
                        let _ = opened.send(Err(format!("{e:#}")));
                        false
                    }
                }
            });
        }
        anyhow::Ok(())
    };
    timeout_at(deadline, spawn_all).await.ok().transpose()?;
    drop(opened_tx);
    // Every task reports once, within the connect timeout; the deadline bounds the wait.
    while ready.connected + ready.failed < spec.count {
        match timeout_at(deadline, opened_rx.recv()).await {
            Ok(Some(Ok(at))) => {
                ready.connected += 1;
                ready.last_ok_unix_us = ready.last_ok_unix_us.max(at);
            }
            Ok(Some(Err(e))) => {
                ready.failed += 1;
                ready.first_error.get_or_insert(e);
            }
            Ok(None) | Err(_) => {
                ready.failed = spec.count - ready.connected;
                ready
                    .first_error
                    .get_or_insert_with(|| "the run's deadline passed while connecting".into());
                break;
            }
        }
    }
    control.ready_then_go(ready).await?;
    let _ = release_tx.send(());
    let mut report = ConnectShardReport::default();
    while let Ok(Some(joined)) = timeout_at(deadline, tasks.join_next()).await {
        if joined.unwrap_or(true) {
            report.dropped += 1;
        }
    }
    Ok(report)
}

async fn open(dialer: &Dialer, identity: &Identity, i: u64) -> anyhow::Result<Conn> {
    let token = identity.token(&identity.user('c', i))?;
    dialer.open(i, &token).await
}

/// Holds an idle connection until released; returns whether it was lost before that.
async fn hold(mut conn: Conn, mut release: watch::Receiver<()>, deadline: Instant) -> bool {
    let mut frames = Vec::new();
    let mut next_ping = Instant::now() + conn.ping_every;
    loop {
        tokio::select! {
            biased;
            _ = release.changed() => break,
            () = sleep_until(deadline) => break,
            r = conn.reader.read_into(&mut frames) => match r {
                Ok(0) | Err(_) => return true,
                // Pongs, or a go-away (the close follows).
                Ok(_) => frames.clear(),
            },
            () = sleep_until(next_ping) => {
                conn.writer.push(&conn::ping(2));
                if conn.writer.flush().await.is_err() {
                    return true;
                }
                next_ping += conn.ping_every;
            }
        }
    }
    conn.writer.close().await;
    false
}
