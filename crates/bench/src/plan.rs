//! Options every scenario shares, and how a run is cut into shards.

use std::time::Duration;

use anyhow::bail;

use crate::identity::Identity;
use crate::pool::WorkerCommand;
use crate::procfs;
use crate::shard::{ShardCommon, unix_us};
use crate::target::Target;

/// Largest `--timeout`: every run is bounded in time.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);
/// Most worker processes one run may start.
pub const MAX_WORKERS: usize = 64;
/// File descriptors a process keeps besides its connections (stdio, the runtime's epoll
/// and wakers, the worker pipes), with a margin.
const FD_OVERHEAD: u64 = 64;

/// Options every scenario shares.
#[derive(Debug, Clone)]
pub struct Common {
    /// The server (loopback only).
    pub target: Target,
    /// App id of the bench users.
    pub app: String,
    /// That app's secret.
    pub secret: String,
    /// Most connections one process holds; a larger run is spread over worker processes.
    pub per_worker: usize,
    /// The whole run stops by itself after this long.
    pub timeout: Duration,
    /// Loopback source addresses to spread connections over (127.X.Y.1 ..= 127.X.Y.K, with
    /// X.Y random per run).
    pub source_ips: u8,
    /// Connections being opened at once over the whole run (shared out among the shards).
    /// Keep it below the server's listen backlog: connections the server has not accepted
    /// yet wait in that queue, and once it is full the kernel drops SYNs, which cost a
    /// one-second retransmission each.
    pub concurrency: usize,
    /// Time allowed for one connect + handshake.
    pub connect_timeout: Duration,
    /// How to start a worker process.
    pub worker: WorkerCommand,
}

impl Common {
    /// Checks the bounds shared by every scenario.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.timeout.is_zero() || self.timeout > MAX_TIMEOUT {
            bail!("--timeout must be within 0..{} s", MAX_TIMEOUT.as_secs());
        }
        if self.per_worker == 0 {
            bail!("--per-worker must be at least 1");
        }
        if self.concurrency == 0 {
            bail!("--concurrency must be at least 1");
        }
        Ok(())
    }

    /// Connections one process may hold: `per_worker`, lowered to fit this process's limit
    /// on open files (workers inherit it).
    pub fn per_process(&self) -> usize {
        let cap = procfs::open_files_limit()
            .map(|n| n.saturating_sub(FD_OVERHEAD).max(1))
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(usize::MAX);
        self.per_worker.min(cap)
    }

    /// The settings shared by the `shards` shards of a run that ends `timeout` from now.
    pub fn shard_common(&self, identity: &Identity, shards: usize) -> ShardCommon {
        let timeout_ms = u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX);
        ShardCommon {
            target: self.target.clone(),
            identity: identity.clone(),
            source_ips: self.source_ips,
            source_net: rand::random(),
            concurrency: self.concurrency.div_ceil(shards.max(1)),
            connect_timeout_ms: u64::try_from(self.connect_timeout.as_millis()).unwrap_or(u64::MAX),
            deadline_unix_ms: unix_us() / 1000 + timeout_ms,
        }
    }
}

/// Cuts `total` items into consecutive ranges `(first, count)` of at most `per` items,
/// as even as possible.
pub fn split(total: u64, per: u64) -> anyhow::Result<Vec<(u64, u64)>> {
    let per = per.max(1);
    let parts = total.div_ceil(per).max(1);
    if parts > MAX_WORKERS as u64 {
        bail!(
            "{total} would need {parts} worker processes (more than {MAX_WORKERS}): raise --per-worker"
        );
    }
    let (base, extra) = (total / parts, total % parts);
    let mut first = 0;
    Ok((0..parts)
        .map(|i| {
            let count = base + u64::from(i < extra);
            let range = (first, count);
            first += count;
            range
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_even_and_covers_everything() {
        assert_eq!(split(10, 4).unwrap(), vec![(0, 4), (4, 3), (7, 3)]);
        assert_eq!(split(19_000, 8_000).unwrap().len(), 3);
        assert_eq!(split(5, 100).unwrap(), vec![(0, 5)]);
        let parts = split(12_345, 1_000).unwrap();
        assert_eq!(parts.iter().map(|p| p.1).sum::<u64>(), 12_345);
        assert!(parts.iter().all(|p| p.1 <= 1_000));
    }

    #[test]
    fn too_many_workers_is_refused() {
        assert!(split(1_000, 1).is_err());
    }
}
