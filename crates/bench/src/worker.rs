//! The worker process's side of [`crate::pool`]: read a spec, run the shard, answer in JSON
//! lines on stdout. The binary's hidden worker subcommand calls [`serve_stdio`].
//!
//! Only these JSON lines go to stdout; anything a person should read goes to stderr.

use std::io::Write;

use anyhow::{Context, bail};
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::shard::{self, Control, ShardSpec};

/// Serves one shard over stdin/stdout, then returns.
pub async fn serve_stdio() -> anyhow::Result<()> {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let spec_line = lines.next_line().await?.context("no shard spec on stdin")?;
    let spec: ShardSpec = serde_json::from_str(&spec_line).context("bad shard spec")?;
    let (control, remote) = Control::pair();
    let mut task = tokio::spawn(shard::run(spec, control));
    let ready = match remote.ready.await {
        Ok(r) => r,
        Err(_) => {
            return Err(task
                .await
                .context("shard panicked")?
                .err()
                .unwrap_or_else(|| anyhow::anyhow!("the shard finished without reporting ready")));
        }
    };
    print_line(&ready)?;
    // Wait for "go" or for the coordinator to go away (EOF), while watching the shard.
    tokio::select! {
        line = lines.next_line() => match line? {
            Some(l) if l.trim() == "go" => {
                let _ = remote.go.send(());
            }
            // EOF or anything else: drop `go`, which aborts the shard.
            _ => bail!("the coordinator went away before go"),
        },
        r = &mut task => {
            r.context("shard panicked")??;
            bail!("the shard ended before go");
        }
    }
    let report = task.await.context("shard panicked")??;
    print_line(&report)
}

fn print_line<T: Serialize>(value: &T) -> anyhow::Result<()> {
    let mut line = serde_json::to_vec(value)?;
    line.push(b'\n');
    let mut out = std::io::stdout().lock();
    out.write_all(&line)?;
    out.flush()?;
    Ok(())
}
