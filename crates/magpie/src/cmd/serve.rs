//! `magpie serve`: run a node until SIGINT or SIGTERM, then drain.

use magpie_server::config::StorageKind;
use magpie_server::{Config, Server};
use serde_json::json;
use tracing_subscriber::EnvFilter;

use crate::cli::ServeArgs;

/// Runs the server.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = Config::load(args.config.as_deref())?;
    if let Some(d) = args.data_dir {
        config.data_dir = d;
    }
    if let Some(a) = args.listen_tcp {
        config.listen.tcp = Some(a);
    }
    if let Some(a) = args.listen_ws {
        config.listen.ws = Some(a);
    }
    if let Some(a) = args.listen_http {
        config.listen.http = Some(a);
    }
    if args.demo {
        config.demo = true;
    }
    if args.memory {
        config.storage = StorageKind::Memory;
    }
    config.validate()?;
    init_logs(&config.log_format);
    let server = Server::start(config.clone()).await?;
    let a = server.addrs();
    // One JSON line on stdout, so scripts and tests learn the bound ports (port 0).
    println!(
        "{}",
        json!({
            "event": "listening",
            "tcp": a.tcp.map(|x| format!("tcp://{x}")),
            "ws": a.ws.map(|x| format!("ws://{x}")),
            "http": a.http.map(|x| format!("http://{x}")),
            "internal": a.internal.map(|x| format!("http://{x}")),
            "tls_tcp": a.tls_tcp.map(|x| format!("tls://{x}")),
            "tls_ws": a.tls_ws.map(|x| format!("wss://{x}")),
            "data_dir": matches!(config.storage, StorageKind::Embedded).then(|| config.data_dir.display().to_string()),
            "demo": config.demo,
        })
    );
    tracing::info!(addrs = ?a, "magpie is serving");
    if config.demo {
        eprintln!(
            "demo app ready: users alice, bob, carol. In two terminals try:\n  magpie chat --as alice\n  magpie chat --as bob"
        );
    }
    wait_for_signal().await;
    tracing::info!("shutting down: draining connections");
    server.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

fn init_logs(format: &str) {
    let filter = EnvFilter::try_from_env("MAGPIE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers, run until the process is killed.
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
