//! `magpie tail`: sync, then print every message as one JSON line.

use std::io::Write;
use std::time::Duration;

use magpie_client::{Client, Event};

use crate::cli::TailArgs;
use crate::cmd::{client_args, json};

/// Prints messages until killed, or until idle for `--until-idle` seconds.
pub async fn run(a: TailArgs) -> anyhow::Result<()> {
    let (config, _) = client_args::config(&a.client)?;
    let (client, mut events) = Client::connect(config).await?;
    let idle = a.until_idle.map(Duration::from_secs_f64);
    let mut stdout = std::io::stdout().lock();
    // Only messages restart the idle clock; connection events do not.
    let mut deadline = idle.map(|d| tokio::time::Instant::now() + d);
    loop {
        let next = match deadline {
            Some(at) => match tokio::time::timeout_at(at, events.recv()).await {
                Ok(e) => e,
                Err(_) => break,
            },
            None => events.recv().await,
        };
        match next {
            None => break,
            Some(Event::Message(m)) => {
                deadline = idle.map(|d| tokio::time::Instant::now() + d);
                writeln!(stdout, "{}", json::message(&m))?;
                stdout.flush()?;
            }
            Some(Event::Error(e)) => {
                client.close().await;
                return Err(e.into());
            }
            Some(_) => {}
        }
    }
    client.close().await;
    Ok(())
}
