//! Starting and stopping a node.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use magpie_gateway::{Gateway, Protocol, load_server_config};
use magpie_service::{AppConfig, AppRegistry, Service, ServiceConfig, SystemClock};
use magpie_store::{MemoryStore, Store};
use magpie_store_embedded::{EmbeddedOptions, EmbeddedStore};
use magpie_types::AppId;
use serde::Serialize;
use tokio::net::{TcpListener, TcpSocket};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, StorageKind};
use crate::demo;
use crate::http::{self, Readiness};

/// Listen backlog of the client listeners. tokio's default (1024, or 128 through std) drops
/// SYNs when thousands of clients reconnect at once (after a restart, say), and each dropped
/// SYN costs that client a one-second retransmission. The kernel caps it at `somaxconn`.
const LISTEN_BACKLOG: u32 = 4096;

/// Binds a client listener with [`LISTEN_BACKLOG`].
fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // Restart on the same port while old connections linger in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// The addresses the listeners are bound to (useful with port 0).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Addrs {
    /// Plain TCP.
    pub tcp: Option<SocketAddr>,
    /// Plain WebSocket.
    pub ws: Option<SocketAddr>,
    /// HTTP.
    pub http: Option<SocketAddr>,
    /// TCP with TLS.
    pub tls_tcp: Option<SocketAddr>,
    /// WebSocket with TLS.
    pub tls_ws: Option<SocketAddr>,
}

/// A running node.
#[derive(Debug)]
pub struct Server {
    addrs: Addrs,
    gateway: Arc<Gateway>,
    service: Arc<Service>,
    ready: Readiness,
    http_stop: CancellationToken,
    http_task: Option<JoinHandle<()>>,
    upkeep: JoinHandle<()>,
    grace: Duration,
}

impl Server {
    /// Opens the configured store and starts the node.
    pub async fn start(config: Config) -> anyhow::Result<Self> {
        crate::metrics::install();
        let store: Arc<dyn Store> = match config.storage {
            StorageKind::Memory => Arc::new(MemoryStore::new()),
            StorageKind::Embedded => {
                let dir = config.data_dir.clone();
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("creating data directory {}", dir.display()))?;
                let store = tokio::task::spawn_blocking(move || {
                    EmbeddedStore::open(&dir, EmbeddedOptions::default())
                })
                .await?
                .with_context(|| format!("opening the store in {}", config.data_dir.display()))?;
                Arc::new(store)
            }
        };
        Self::start_with_store(config, store).await
    }

    /// Starts the node on a store built by the caller (tests, embedding).
    pub async fn start_with_store(config: Config, store: Arc<dyn Store>) -> anyhow::Result<Self> {
        config.validate()?;
        let metrics = crate::metrics::install();
        let apps = AppRegistry::new();
        for a in &config.apps {
            apps.upsert(AppConfig {
                id: AppId::new(a.id.as_str())?,
                name: a.name.clone(),
                secrets: vec![a.secret.clone()],
                max_group_members: a.max_group_members,
                max_super_group_members: a.max_super_group_members,
                allow_strangers: a.allow_strangers,
                recall_window_ms: a.recall_window_ms,
                room_budget_per_s: a.room_budget_per_s,
            });
        }
        if config.demo {
            apps.upsert(demo::app());
        }
        let service = Arc::new(Service::new(
            ServiceConfig {
                node_id: config.node_id,
                limits: config.core_limits(),
                rooms: config.room_config(),
            },
            store,
            apps,
            Arc::new(SystemClock),
        )?);
        if config.demo {
            demo::seed(&service).await.context("seeding the demo app")?;
        }
        let gateway = Gateway::new(service.clone(), config.gateway_config());
        let tls = match &config.tls {
            Some(t) => Some(load_server_config(&t.cert, &t.key)?),
            None => None,
        };
        let mut addrs = Addrs::default();
        let l = &config.listen;
        for (addr, protocol, use_tls, slot) in [
            (l.tcp, Protocol::Tcp, false, &mut addrs.tcp),
            (l.ws, Protocol::WebSocket, false, &mut addrs.ws),
            (l.tls_tcp, Protocol::Tcp, true, &mut addrs.tls_tcp),
            (l.tls_ws, Protocol::WebSocket, true, &mut addrs.tls_ws),
        ] {
            let Some(addr) = addr else { continue };
            let listener = bind(addr).with_context(|| format!("binding {addr}"))?;
            *slot = Some(listener.local_addr()?);
            let tls = if use_tls { tls.clone() } else { None };
            gateway.spawn_listener(listener, protocol, tls);
        }
        let ready = Readiness::default();
        let http_stop = CancellationToken::new();
        let http_task = match l.http {
            Some(addr) => {
                let listener = TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding {addr}"))?;
                addrs.http = Some(listener.local_addr()?);
                let app = http::router(ready.clone(), metrics.clone());
                let stop = http_stop.clone();
                Some(tokio::spawn(async move {
                    let served = axum::serve(listener, app)
                        .with_graceful_shutdown(async move { stop.cancelled().await })
                        .await;
                    if let Err(e) = served {
                        tracing::error!(error = %e, "HTTP listener failed");
                    }
                }))
            }
            None => None,
        };
        let upkeep = {
            let service = service.clone();
            let stop = http_stop.clone();
            tokio::spawn(async move {
                let mut every = tokio::time::interval(Duration::from_secs(60));
                loop {
                    tokio::select! {
                        () = stop.cancelled() => break,
                        _ = every.tick() => service.housekeeping(),
                    }
                }
            })
        };
        ready.set(true);
        Ok(Self {
            addrs,
            gateway,
            service,
            ready,
            http_stop,
            http_task,
            upkeep,
            grace: Duration::from_millis(config.shutdown_grace_ms),
        })
    }

    /// The bound addresses.
    pub fn addrs(&self) -> &Addrs {
        &self.addrs
    }

    /// The messaging service (for tests and embedding).
    pub fn service(&self) -> &Arc<Service> {
        &self.service
    }

    /// Graceful shutdown: readiness goes false, clients are told to reconnect elsewhere,
    /// connections get the grace period to leave, then everything is closed and the store is
    /// released.
    pub async fn shutdown(mut self) {
        self.ready.set(false);
        self.gateway.shutdown(self.grace).await;
        self.http_stop.cancel();
        if let Some(t) = self.http_task.take() {
            let _ = t.await;
        }
        self.upkeep.abort();
    }
}
