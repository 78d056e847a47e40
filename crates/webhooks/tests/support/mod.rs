//! A real local HTTP receiver (axum on `127.0.0.1:0`) and helpers shared by the tests.

#![allow(dead_code)] // each test file uses a part.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use magpie_service::hooks::HookEvent;
use magpie_service::{AppConfig, AppRegistry};
use magpie_store::{Store, Table};
use magpie_types::AppId;
use magpie_webhooks::{WebhookConfig, WebhookSender};
use parking_lot::Mutex;

pub const SECRET: &str = "whsec-test-secret";

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Recorded {
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// What `/before` answers.
#[derive(Debug, Clone)]
pub enum BeforeMode {
    /// Answer this JSON.
    Answer(serde_json::Value),
    /// Sleep this long, then allow.
    Sleep(Duration),
}

type Respond = Box<dyn Fn(usize) -> StatusCode + Send + Sync>;

pub struct Shared {
    /// Requests to `/events`, in arrival order.
    pub events: Mutex<Vec<Recorded>>,
    /// Requests to `/before`.
    pub before: Mutex<Vec<Recorded>>,
    /// The status `/events` answers, given how many requests came before this one.
    respond: Respond,
    pub before_mode: Mutex<BeforeMode>,
}

/// A running receiver; stops with the test's runtime.
pub struct Receiver {
    pub addr: SocketAddr,
    pub shared: Arc<Shared>,
}

impl Receiver {
    /// A receiver whose `/events` answers `respond(n)` to its n-th request (from 0).
    pub async fn start(respond: impl Fn(usize) -> StatusCode + Send + Sync + 'static) -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap(), respond).await
    }

    pub async fn start_on(
        addr: SocketAddr,
        respond: impl Fn(usize) -> StatusCode + Send + Sync + 'static,
    ) -> Self {
        let shared = Arc::new(Shared {
            events: Mutex::new(Vec::new()),
            before: Mutex::new(Vec::new()),
            respond: Box::new(respond),
            before_mode: Mutex::new(BeforeMode::Answer(serde_json::json!({ "action": "allow" }))),
        });
        let app = Router::new()
            .route("/events", post(events))
            .route("/before", post(before))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(axum::serve(listener, app).into_future());
        Self { addr, shared }
    }

    pub fn events_url(&self) -> String {
        format!("http://{}/events", self.addr)
    }

    pub fn before_url(&self) -> String {
        format!("http://{}/before", self.addr)
    }

    pub fn events(&self) -> Vec<Recorded> {
        self.shared.events.lock().clone()
    }

    pub fn set_before(&self, mode: BeforeMode) {
        *self.shared.before_mode.lock() = mode;
    }
}

async fn events(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let mut all = s.events.lock();
    let status = (s.respond)(all.len());
    all.push(Recorded { headers, body });
    status
}

async fn before(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    s.before.lock().push(Recorded { headers, body });
    let mode = s.before_mode.lock().clone();
    match mode {
        BeforeMode::Answer(v) => axum::Json(v).into_response(),
        BeforeMode::Sleep(d) => {
            tokio::time::sleep(d).await;
            axum::Json(serde_json::json!({ "action": "allow" })).into_response()
        }
    }
}

/// An address where nothing listens (connections are refused).
pub async fn dead_addr() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

pub fn app_id(s: &str) -> AppId {
    AppId::new(s).unwrap()
}

/// App `id` whose events go to `url`, signed with [`SECRET`].
pub fn app_config(id: &str, url: &str) -> AppConfig {
    let mut app = AppConfig::new(app_id(id), id, "app-secret-app-secret");
    app.settings.webhooks.url = Some(url.to_owned());
    app.settings.webhooks.signing_secret = SECRET.to_owned();
    app
}

/// Fast retries, so tests take milliseconds.
pub fn fast_config(max_attempts: u32) -> WebhookConfig {
    WebhookConfig {
        max_attempts,
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
        request_timeout: Duration::from_secs(5),
    }
}

pub async fn sender(
    store: &Arc<dyn Store>,
    apps: &AppRegistry,
    max_attempts: u32,
) -> Arc<WebhookSender> {
    WebhookSender::start(store.clone(), apps.clone(), fast_config(max_attempts))
        .await
        .unwrap()
}

pub fn event(app: &str, id: &str) -> HookEvent {
    HookEvent {
        id: id.to_owned(),
        kind: "message.sent",
        app: app.to_owned(),
        time_ms: 1_800_000_000_000,
        data: serde_json::json!({ "seq": 1, "body": "héllo \"world\"" }),
    }
}

pub async fn outbox_len(store: &Arc<dyn Store>, app: &str) -> usize {
    store
        .scan_records(&app_id(app), Table::WebhookOutbox, "", None, 1_000)
        .await
        .unwrap()
        .len()
}

/// Polls `check` until it holds, failing after a generous deadline (no timed assertions:
/// the deadline only turns a hang into a failure).
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
