//! Starting and stopping a node.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use magpie_api::ApiOptions;
use magpie_gateway::{Gateway, Protocol, load_server_config};
use magpie_service::{AppRegistry, Service, ServiceConfig, SystemClock};
use magpie_store::{MemoryStore, Store};
use magpie_store_embedded::{EmbeddedOptions, EmbeddedStore};
use magpie_webhooks::WebhookSender;
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

/// Binds an HTTP listener and serves `app` on it until `stop`.
async fn serve_http(
    addr: SocketAddr,
    app: axum::Router,
    stop: CancellationToken,
) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let bound = listener.local_addr()?;
    let app = http::observe(app);
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "HTTP listener failed");
        }
    });
    Ok((bound, task))
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
    /// Internal HTTP (metrics, admin API), if configured.
    pub internal: Option<SocketAddr>,
}

/// A running node.
#[derive(Debug)]
pub struct Server {
    addrs: Addrs,
    gateway: Arc<Gateway>,
    service: Arc<Service>,
    ready: Readiness,
    http_stop: CancellationToken,
    http_tasks: Vec<JoinHandle<()>>,
    hooks: Arc<WebhookSender>,
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
        let service = Arc::new(Service::new(
            ServiceConfig {
                node_id: config.node_id,
                limits: config.core_limits(),
                rooms: config.room_config(),
            },
            store.clone(),
            apps,
            Arc::new(SystemClock),
        )?);
        // Apps made through the admin API first; then the file's apps, each created in the
        // store on first start (afterwards the stored app wins: see `Service::seed_app`).
        service.load_apps().await.context("loading the apps")?;
        for a in &config.apps {
            service
                .seed_app(a.to_app_config()?)
                .await
                .with_context(|| format!("serving app {:?}", a.id))?;
        }
        if config.demo {
            service
                .seed_app(demo::app())
                .await
                .context("serving the demo app")?;
            demo::seed(&service).await.context("seeding the demo app")?;
        }
        // After the apps are loaded: the sender resumes every app's undelivered events.
        let hooks = WebhookSender::start(store, service.apps().clone(), config.webhook_config())
            .await
            .context("starting the webhook sender")?;
        service.set_hooks(hooks.clone());
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
        let mut http_tasks = Vec::new();
        let admin = ApiOptions {
            admin_key: config.effective_admin_key(),
        };
        // With an internal listener, metrics and the admin API live there only.
        let internal_only = l.internal.is_some();
        if let Some(addr) = l.http {
            let mut app = http::router(ready.clone(), metrics.clone(), !internal_only)
                .merge(magpie_api::app_router(service.clone()));
            if !internal_only {
                app = app.merge(magpie_api::admin_router(service.clone(), admin.clone()));
            }
            let (bound, task) = serve_http(addr, app, http_stop.clone()).await?;
            addrs.http = Some(bound);
            http_tasks.push(task);
        }
        if let Some(addr) = l.internal {
            let app = http::router(ready.clone(), metrics.clone(), true)
                .merge(magpie_api::admin_router(service.clone(), admin));
            let (bound, task) = serve_http(addr, app, http_stop.clone()).await?;
            addrs.internal = Some(bound);
            http_tasks.push(task);
        }
        let upkeep = {
            let service = service.clone();
            let stop = http_stop.clone();
            tokio::spawn(async move {
                let mut every = tokio::time::interval(Duration::from_secs(60));
                loop {
                    tokio::select! {
                        () = stop.cancelled() => break,
                        _ = every.tick() => {
                            service.housekeeping();
                            if let Err(e) = service.sweep_answers(10_000).await {
                                tracing::warn!(error = %e, "sweeping expired idempotent answers");
                            }
                        }
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
            http_tasks,
            hooks,
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
        for t in self.http_tasks.drain(..) {
            let _ = t.await;
        }
        self.hooks.shutdown().await;
        self.upkeep.abort();
    }
}
