//! A shard: the part of a run that one process carries out, and the two-step handshake
//! with the coordinator that keeps every shard of a run in step.
//!
//! 1. The shard opens its connections, then reports [`Ready`] and waits for *go*. The
//!    coordinator waits until every shard is ready, so measurements that need all
//!    connections at once (the server's RSS, the start of a send phase) see all of them.
//! 2. On *go* the shard runs its phase (a `connect` shard closes its idle connections; a
//!    `p2p`, `room` or `group` shard sends and receives) and returns its [`ShardReport`].
//!
//! A shard runs in the coordinator's own process when one is enough, or in a worker
//! process (see [`crate::pool`]); the spec and both answers are serde values so that the
//! same code serves both.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::conn::Dialer;
use crate::connect::{ConnectShard, ConnectShardReport};
use crate::group::{GroupShard, GroupShardReport};
use crate::identity::Identity;
use crate::p2p::{P2pShard, P2pShardReport};
use crate::room::{RoomShard, RoomShardReport};
use crate::target::Target;

/// Opens member `first..first + count` of a run (user `m<i>`), `concurrency` at a time,
/// each then passed through `prepare` (joining a room, say) with the instant it must be
/// done by; counts successes and failures in `ready`. Shared by the `group` and `room`
/// shards, whose members differ only in that step.
pub(crate) async fn open_members<F, Fut>(
    dialer: &std::sync::Arc<Dialer>,
    identity: &std::sync::Arc<Identity>,
    common: &ShardCommon,
    (first, count): (u64, u64),
    ready: &mut Ready,
    prepare: F,
) -> Vec<(u64, crate::conn::Conn)>
where
    F: Fn(crate::conn::Conn, Instant) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<crate::conn::Conn>> + Send,
{
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(common.concurrency));
    let deadline = common.deadline();
    let mut tasks = tokio::task::JoinSet::new();
    for i in first..first + count {
        let (dialer, identity, gate) = (dialer.clone(), identity.clone(), gate.clone());
        let prepare = prepare.clone();
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await;
            let opened = async {
                let token = identity.token(&identity.user('m', i))?;
                let conn = dialer.open(i, &token).await?;
                prepare(conn, (Instant::now() + dialer.timeout).min(deadline)).await
            };
            let opened = match tokio::time::timeout_at(deadline, opened).await {
                Ok(r) => r,
                Err(_) => Err(anyhow::anyhow!(
                    "the run's deadline passed while connecting"
                )),
            };
            (i, opened)
        });
    }
    let mut conns = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((i, Ok(conn))) => {
                ready.connected += 1;
                ready.last_ok_unix_us = unix_us();
                conns.push((i, conn));
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

/// Settings every shard of a run shares.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardCommon {
    /// The server.
    pub target: Target,
    /// The app, its secret, and the run id.
    pub identity: Identity,
    /// Loopback source addresses to spread connections over.
    pub source_ips: u8,
    /// The run's source network `127.X.Y.0` (see [`crate::conn`]).
    pub source_net: [u8; 2],
    /// Connections this shard opens at once (its part of the run's `--concurrency`).
    pub concurrency: usize,
    /// Milliseconds allowed for one connect + handshake.
    pub connect_timeout_ms: u64,
    /// Unix time (ms) by which the shard must have finished, whatever it is doing.
    pub deadline_unix_ms: u64,
}

impl ShardCommon {
    /// The dialer for this shard's connections, with a read buffer step of `read_chunk`.
    pub fn dialer(&self, read_chunk: usize) -> Dialer {
        Dialer {
            target: self.target.clone(),
            source_ips: self.source_ips,
            source_net: self.source_net,
            read_chunk,
            timeout: Duration::from_millis(self.connect_timeout_ms),
        }
    }

    /// The deadline as an instant of this process.
    pub fn deadline(&self) -> Instant {
        let left = self.deadline_unix_ms.saturating_sub(unix_us() / 1000);
        Instant::now() + Duration::from_millis(left)
    }
}

/// What one shard does.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "scenario", rename_all = "lowercase")]
pub enum ShardSpec {
    /// Open idle connections and hold them until *go*.
    Connect(ConnectShard),
    /// Run some sender → receiver pairs.
    P2p(P2pShard),
    /// Run some members of a live room.
    Room(RoomShard),
    /// Run some members of a group.
    Group(GroupShard),
}

/// A shard's connections are open.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Ready {
    /// Connections authenticated.
    pub connected: u64,
    /// Connections that failed (refused, timed out, handshake error).
    pub failed: u64,
    /// Unix time (µs) when the first connection attempt started.
    pub start_unix_us: u64,
    /// Unix time (µs) when the last successful handshake completed.
    pub last_ok_unix_us: u64,
    /// The first failure, to explain `failed`.
    pub first_error: Option<String>,
}

/// What a shard measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "scenario", rename_all = "lowercase")]
pub enum ShardReport {
    /// From a connect shard.
    Connect(ConnectShardReport),
    /// From a p2p shard.
    P2p(P2pShardReport),
    /// From a room shard.
    Room(RoomShardReport),
    /// From a group shard.
    Group(GroupShardReport),
}

/// The shard's side of the handshake with the coordinator.
#[derive(Debug)]
pub struct Control {
    ready: oneshot::Sender<Ready>,
    go: oneshot::Receiver<()>,
}

/// The coordinator's side of the handshake with one shard.
#[derive(Debug)]
pub struct Remote {
    /// Resolves when the shard is ready.
    pub ready: oneshot::Receiver<Ready>,
    /// Send `()` to start the phase; dropping it aborts the shard.
    pub go: oneshot::Sender<()>,
}

impl Control {
    /// A connected pair of handshake ends.
    pub fn pair() -> (Control, Remote) {
        let (ready_tx, ready_rx) = oneshot::channel();
        let (go_tx, go_rx) = oneshot::channel();
        (
            Control {
                ready: ready_tx,
                go: go_rx,
            },
            Remote {
                ready: ready_rx,
                go: go_tx,
            },
        )
    }

    /// Reports readiness and waits for *go*.
    pub async fn ready_then_go(self, ready: Ready) -> anyhow::Result<()> {
        self.ready
            .send(ready)
            .map_err(|_| anyhow::anyhow!("the coordinator went away"))?;
        self.go.await.context("the coordinator went away before go")
    }
}

/// Runs a shard to completion.
pub async fn run(spec: ShardSpec, control: Control) -> anyhow::Result<ShardReport> {
    match spec {
        ShardSpec::Connect(s) => crate::connect::run_shard(s, control)
            .await
            .map(ShardReport::Connect),
        ShardSpec::P2p(s) => crate::p2p::run_shard(s, control)
            .await
            .map(ShardReport::P2p),
        ShardSpec::Room(s) => crate::room::run_shard(s, control)
            .await
            .map(ShardReport::Room),
        ShardSpec::Group(s) => crate::group::run_shard(s, control)
            .await
            .map(ShardReport::Group),
    }
}

/// Microseconds since the Unix epoch: comparable between the processes of one machine.
pub fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}
