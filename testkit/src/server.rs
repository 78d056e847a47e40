//! An in-process server for tests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use magpie_client::{Backoff, Client, ClientConfig, Events};
use magpie_server::config::{AppEntry, Tls};
use magpie_server::demo::{DEMO_APP, DEMO_SECRET};
use magpie_server::{Config, Server};
use magpie_service::Service;
use magpie_types::{AppId, DeviceId, UserId};
use tempfile::TempDir;

/// A second app, for isolation tests.
pub const OTHER_APP: &str = "other";
/// The second app's secret.
pub const OTHER_SECRET: &str = "other-app-secret-for-tests-only";
/// The super-admin key of test servers.
pub const TEST_ADMIN_KEY: &str = "test-admin-key-of-sixteen-bytes-or-more";

/// Which listener a client uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Plain TCP.
    Tcp,
    /// Plain WebSocket.
    Ws,
    /// TCP with TLS.
    Tls,
    /// WebSocket with TLS.
    Wss,
}

impl Transport {
    /// Every transport.
    pub const ALL: [Transport; 4] = [Self::Tcp, Self::Ws, Self::Tls, Self::Wss];
}

/// A running test server. Dropping it without [`TestServer::shutdown`] leaves the node's
/// tasks to die with the runtime.
pub struct TestServer {
    server: Option<Server>,
    config: Config,
    dir: TempDir,
    ca_pem: Vec<u8>,
}

impl TestServer {
    /// Starts a node with default test settings.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts a node, letting the test adjust the configuration first.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        let cert = rcgen::generate_simple_self_signed(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ])
        .expect("generate certificate");
        let cert_path = dir.path().join("cert.pem");
        let key_path = dir.path().join("key.pem");
        let ca_pem = cert.cert.pem().into_bytes();
        std::fs::write(&cert_path, &ca_pem).expect("write cert");
        std::fs::write(&key_path, cert.signing_key.serialize_pem()).expect("write key");
        let mut config = Config {
            data_dir: dir.path().join("data"),
            demo: true,
            shutdown_grace_ms: 1_000,
            tls: Some(Tls {
                cert: cert_path,
                key: key_path,
            }),
            apps: vec![AppEntry {
                id: OTHER_APP.into(),
                name: "Other".into(),
                secret: OTHER_SECRET.into(),
                max_group_members: None,
                max_super_group_members: None,
                allow_strangers: true,
                recall_window_ms: 120_000,
                room_budget_per_s: None,
            }],
            ..Config::default()
        };
        config.admin.key = TEST_ADMIN_KEY.into();
        config.listen.tcp = Some(any);
        config.listen.ws = Some(any);
        config.listen.http = Some(any);
        config.listen.tls_tcp = Some(any);
        config.listen.tls_ws = Some(any);
        adjust(&mut config);
        let server = Server::start(config.clone()).await.expect("server starts");
        // Pin the bound ports so that a restart comes back on the same addresses.
        let a = server.addrs().clone();
        config.listen.tcp = a.tcp;
        config.listen.ws = a.ws;
        config.listen.http = a.http;
        config.listen.tls_tcp = a.tls_tcp;
        config.listen.tls_ws = a.tls_ws;
        config.listen.internal = a.internal;
        Self {
            server: Some(server),
            config,
            dir,
            ca_pem,
        }
    }

    /// Stops the node gracefully and starts it again on the same addresses and data.
    pub async fn restart(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
        // The old store's writer releases the data directory's lock when the last handle
        // goes; retry briefly while it does.
        let mut last = None;
        for _ in 0..100 {
            match Server::start(self.config.clone()).await {
                Ok(s) => {
                    self.server = Some(s);
                    return;
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("server did not restart: {last:?}");
    }

    /// Stops the node gracefully.
    pub async fn shutdown(mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
    }

    /// The node's service (to inspect state or add users).
    pub fn service(&self) -> &Arc<Service> {
        self.server.as_ref().expect("server running").service()
    }

    /// The configuration the node runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The temporary directory holding data and certificates.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// The CA certificate (PEM) that signs the TLS listeners' certificate.
    pub fn ca_pem(&self) -> &[u8] {
        &self.ca_pem
    }

    /// The address of a listener.
    pub fn addr(&self, t: Transport) -> SocketAddr {
        let l = &self.config.listen;
        match t {
            Transport::Tcp => l.tcp,
            Transport::Ws => l.ws,
            Transport::Tls => l.tls_tcp,
            Transport::Wss => l.tls_ws,
        }
        .expect("listener configured")
    }

    /// The URL of a listener.
    pub fn url(&self, t: Transport) -> String {
        let a = self.addr(t);
        match t {
            Transport::Tcp => format!("tcp://{a}"),
            Transport::Ws => format!("ws://{a}/"),
            Transport::Tls => format!("tls://localhost:{}", a.port()),
            Transport::Wss => format!("wss://localhost:{}/", a.port()),
        }
    }

    /// The HTTP base URL.
    pub fn http(&self) -> SocketAddr {
        self.config.listen.http.expect("http listener")
    }

    /// A server-API client acting as `app` (the demo app or `OTHER_APP`).
    pub fn rest(&self, app: &str) -> crate::rest::Rest {
        let secret = match app {
            DEMO_APP => DEMO_SECRET,
            OTHER_APP => OTHER_SECRET,
            other => panic!("no secret for app {other}"),
        };
        crate::rest::Rest::app(self.http(), app, secret)
    }

    /// A server-API client with the super-admin key.
    pub fn admin(&self) -> crate::rest::Rest {
        crate::rest::Rest::admin(
            self.config.listen.internal.unwrap_or(self.http()),
            TEST_ADMIN_KEY,
        )
    }

    /// Ensures users exist in an app.
    pub async fn add_users(&self, app: &str, users: &[&str]) {
        let app: AppId = crate::id(app);
        for u in users {
            self.service()
                .ensure_user(&app, &crate::id::<UserId>(u))
                .await
                .expect("add user");
        }
    }

    /// A token for `user` on `device` in the demo app (or `OTHER_APP`).
    pub fn token(&self, app: &str, user: &str, device: &str) -> String {
        let secret = match app {
            DEMO_APP => DEMO_SECRET,
            OTHER_APP => OTHER_SECRET,
            other => panic!("no secret for app {other}"),
        };
        token_with(app, secret, user, device, 3600)
    }

    /// A client configuration for `user` on `device` of the demo app over `t`.
    pub fn client_config(&self, t: Transport, user: &str, device: &str) -> ClientConfig {
        self.client_config_in(DEMO_APP, t, user, device)
    }

    /// A client configuration in any app.
    pub fn client_config_in(
        &self,
        app: &str,
        t: Transport,
        user: &str,
        device: &str,
    ) -> ClientConfig {
        ClientConfig::new(self.url(t), self.token(app, user, device))
            .add_root_certificates_pem(&self.ca_pem)
            .expect("CA certificate parses")
            .with_public_roots(false)
            .with_backoff(Backoff {
                initial: Duration::from_millis(20),
                max: Duration::from_millis(300),
                jitter: 0.5,
            })
    }

    /// Connects a client of the demo app.
    pub async fn connect(&self, t: Transport, user: &str, device: &str) -> (Client, Events) {
        Client::connect(self.client_config(t, user, device))
            .await
            .expect("client connects")
    }
}

/// Mints a token with an explicit secret and lifetime.
pub fn token_with(app: &str, secret: &str, user: &str, device: &str, ttl_secs: u64) -> String {
    mint_at(app, secret, user, device, now_secs(), ttl_secs)
}

/// Mints a token that expired `ago_secs` seconds ago.
pub fn expired_token(app: &str, secret: &str, user: &str, device: &str, ago_secs: u64) -> String {
    mint_at(app, secret, user, device, now_secs() - ago_secs - 60, 60)
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn mint_at(app: &str, secret: &str, user: &str, device: &str, issued: u64, ttl: u64) -> String {
    magpie_core::auth::mint(
        &crate::id::<AppId>(app),
        secret.as_bytes(),
        &crate::id::<UserId>(user),
        &crate::id::<DeviceId>(device),
        issued,
        ttl,
    )
    .expect("mint token")
}
