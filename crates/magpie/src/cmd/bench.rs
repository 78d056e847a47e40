//! `magpie bench`: the load generator ([`magpie_bench`]) behind the command line.
//!
//! Prints exactly one JSON line on stdout per run: the parameters and the figures. A run
//! larger than one process re-executes this binary as `magpie bench-worker` (hidden), one
//! process per shard; [`worker`] is that process's entry point.

use std::time::Duration;

use anyhow::Context;
use magpie_bench::{
    Common, ConnectOptions, GroupOptions, P2pOptions, RoomOptions, Target, Transport, WorkerCommand,
};
use magpie_types::AppId;

use crate::cli::{BenchArgs, BenchCommonArgs, BenchScenario};
use crate::cmd::client_args::secret_for;

/// Runs one scenario and prints its JSON line.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let line = match args.scenario {
        BenchScenario::Connect(a) => {
            let common = common(&a.common)?;
            let opts = ConnectOptions {
                connections: a.connections,
                hold: seconds("--hold", a.hold)?,
                server_pid: a.server_pid,
            };
            serde_json::to_string(&magpie_bench::connect::run(&common, &opts).await?)?
        }
        BenchScenario::P2p(a) => {
            let common = common(&a.common)?;
            let opts = P2pOptions {
                pairs: a.pairs,
                messages: a.messages,
                rate: a.rate,
                window: a.window,
                size: a.size,
                drain: seconds("--drain", a.drain)?,
            };
            serde_json::to_string(&magpie_bench::p2p::run(&common, &opts).await?)?
        }
        BenchScenario::Room(a) => {
            let common = common(&a.common)?;
            let opts = RoomOptions {
                members: a.members,
                senders: a.senders,
                rate: a.rate,
                high_every: a.high_every,
                low_share: a.low_share,
                duration: seconds("--duration-s", a.duration_s)?,
                grace: seconds("--grace-s", a.grace_s)?,
                budget: a.budget,
                room_send_rate: a.room_send_rate,
                size: a.size,
                metrics_url: a.metrics_url,
            };
            serde_json::to_string(&magpie_bench::room::run(&common, &opts).await?)?
        }
        BenchScenario::Group(a) => {
            let common = common(&a.common)?;
            let opts = GroupOptions {
                members: a.members,
                messages: a.messages,
                senders: a.senders,
                rate: a.rate,
                window: a.window,
                size: a.size,
                drain: seconds("--drain", a.drain)?,
                add_batch: a.add_batch,
                super_group: a.super_group,
                metrics_url: a.metrics_url,
            };
            serde_json::to_string(&magpie_bench::group::run(&common, &opts).await?)?
        }
    };
    println!("{line}");
    Ok(())
}

/// The hidden `bench-worker` subcommand: serve one shard over stdin/stdout.
pub async fn worker() -> anyhow::Result<()> {
    magpie_bench::worker::serve_stdio().await
}

fn common(a: &BenchCommonArgs) -> anyhow::Result<Common> {
    let transport = a.transport.as_deref().map(Transport::parse).transpose()?;
    let target = Target::parse(a.server.as_deref(), transport)?;
    let app = AppId::new(a.app.as_str())?;
    let secret = secret_for(&app, a.app_secret.as_deref())?;
    Ok(Common {
        target,
        app: a.app.clone(),
        secret,
        per_worker: a.per_worker,
        timeout: seconds("--timeout", a.timeout)?,
        source_ips: a.source_ips,
        concurrency: a.concurrency,
        connect_timeout: seconds("--connect-timeout", a.connect_timeout)?,
        worker: WorkerCommand::current_exe(["bench-worker"])
            .context("locating this executable to start bench workers")?,
    })
}

fn seconds(flag: &str, secs: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(secs)
        .with_context(|| format!("{flag} must be a number of seconds ≥ 0"))
}
