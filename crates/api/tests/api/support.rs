//! A served API over a memory-store service, with apps `a` and `b`, and request helpers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use magpie_core::Limits;
use magpie_service::{AppConfig, AppRegistry, Clock, Service, ServiceConfig};
use magpie_store::MemoryStore;
use magpie_types::AppId;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::Value;

/// The secret of apps `a` and `b`.
pub const SECRET: &str = "secret-secret-secret";
/// The admin key.
pub const ADMIN_KEY: &str = "admin-key-for-tests-0123456789";

/// A clock tests can move.
#[derive(Debug, Default)]
pub struct TestClock(pub AtomicU64);

impl Clock for TestClock {
    fn now_ms(&self) -> u64 {
        1_800_000_000_000 + self.0.load(Ordering::Relaxed)
    }
}

impl TestClock {
    /// Moves time forward.
    pub fn advance(&self, ms: u64) {
        self.0.fetch_add(ms, Ordering::Relaxed);
    }
}

/// A running API.
pub struct Api {
    pub base: String,
    pub service: Arc<Service>,
    pub clock: Arc<TestClock>,
    pub http: reqwest::Client,
}

/// An answer.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub json: Value,
}

impl Answer {
    /// The error code, if this is an error body.
    pub fn code(&self) -> &str {
        self.json["error"]["code"].as_str().unwrap_or("")
    }

    /// The error message, if this is an error body.
    pub fn message(&self) -> &str {
        self.json["error"]["message"].as_str().unwrap_or("")
    }

    /// Whether the answer is a replay.
    pub fn replayed(&self) -> bool {
        self.headers
            .get("idempotent-replayed")
            .is_some_and(|v| v == "true")
    }
}

pub fn app_id(s: &str) -> AppId {
    AppId::new(s).unwrap()
}

/// Serves both routers with the admin API on.
pub async fn start() -> Api {
    start_with(Some(ADMIN_KEY.to_owned())).await
}

/// Serves both routers with `admin_key`.
pub async fn start_with(admin_key: Option<String>) -> Api {
    let apps = AppRegistry::new();
    let configs: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|id| AppConfig::new(app_id(id), id, SECRET))
        .collect();
    for c in &configs {
        apps.upsert(c.clone()).unwrap();
    }
    let clock = Arc::new(TestClock::default());
    let service = Arc::new(
        Service::new(
            ServiceConfig {
                node_id: 1,
                limits: Limits {
                    send_rate_per_user: 0,
                    ..Limits::default()
                },
                rooms: magpie_service::RoomConfig::default(),
            },
            Arc::new(MemoryStore::new()),
            apps,
            clock.clone(),
        )
        .unwrap(),
    );
    // Stored too, as the server seeds its configured apps, so that the admin routes can
    // rotate and change them.
    for c in configs {
        service.seed_app(c).await.unwrap();
    }
    let router = magpie_api::app_router(service.clone()).merge(magpie_api::admin_router(
        service.clone(),
        magpie_api::ApiOptions { admin_key },
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    Api {
        base: format!("http://{addr}"),
        service,
        clock,
        http: client(),
    }
}

impl Api {
    /// A request without credentials.
    pub fn bare(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base))
    }

    /// A request with app `app`'s credentials.
    pub fn app(&self, app: &str, method: Method, path: &str) -> RequestBuilder {
        self.bare(method, path).basic_auth(app, Some(SECRET))
    }

    /// A request with the admin key.
    pub fn admin(&self, method: Method, path: &str) -> RequestBuilder {
        self.bare(method, path).bearer_auth(ADMIN_KEY)
    }

    /// Creates users in app `a` through the API.
    pub async fn users(&self, app: &str, ids: &[&str]) {
        for id in ids {
            let a = send(
                self.app(app, Method::POST, "/v1/users")
                    .json(&serde_json::json!({ "id": id })),
            )
            .await;
            assert!(a.status.is_success(), "{a:?}");
        }
    }
}

/// Sends `req` and reads the answer (a non-JSON body reads as `null`).
pub async fn send(req: RequestBuilder) -> Answer {
    let res = req.send().await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.bytes().await.unwrap();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        json,
    }
}

/// Sends `req` and asserts a 2xx answer.
pub async fn ok(req: RequestBuilder) -> Value {
    let a = send(req).await;
    assert!(a.status.is_success(), "expected success, got {a:?}");
    a.json
}

/// App `a` with users alice, bob, carol; group `g1` (owner alice, member bob); room `r1`
/// (owner alice); one message alice → bob.
pub async fn fixtures(api: &Api) {
    api.users("a", &["alice", "bob", "carol"]).await;
    ok(api
        .app("a", Method::POST, "/v1/groups")
        .json(&serde_json::json!({
            "id": "g1", "owner": "alice", "name": "Group one", "members": ["bob"]
        })))
    .await;
    ok(api
        .app("a", Method::POST, "/v1/rooms")
        .json(&serde_json::json!({
            "id": "r1", "owner": "alice", "name": "Room one"
        })))
    .await;
    ok(api
        .app("a", Method::POST, "/v1/messages")
        .json(&serde_json::json!({
            "from": "alice", "to": {"user": "bob"}, "content": {"type": "text", "text": "hello"}
        })))
    .await;
}

/// Every (method, path, security scheme) of the OpenAPI document (`None`: no security).
pub fn operations(doc: &Value) -> Vec<(Method, String, Option<String>)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Ok(m) = Method::from_bytes(method.to_ascii_uppercase().as_bytes()) else {
                continue;
            };
            if !op.is_object() || m == Method::CONNECT {
                continue;
            }
            let scheme = op["security"]
                .as_array()
                .and_then(|reqs| reqs.first())
                .and_then(|r| r.as_object())
                .and_then(|r| r.keys().next().cloned());
            out.push((m, path.clone(), scheme));
        }
    }
    out
}

/// `path` with its parameters filled with the fixtures' ids.
pub fn fill(path: &str) -> String {
    let filled = path
        .replace("{user}", "alice")
        .replace("{group}", "g1")
        .replace("{room}", "r1")
        .replace("{conv}", "p2p:alice:bob")
        .replace("{app}", "a");
    assert!(
        !filled.contains('{'),
        "the test knows no value for a parameter of {path}: add one to `fill`"
    );
    filled
}

/// A plausible body for an operation (`None`: it takes none).
pub fn body_for(method: &Method, path: &str) -> Option<Value> {
    use serde_json::json;
    let body = match (method.as_str(), path) {
        ("POST", "/v1/users") => json!({"id": "intruder"}),
        ("POST", "/v1/users/import") => json!({"users": [{"id": "intruder2"}]}),
        ("PATCH", "/v1/users/{user}") => json!({"nickname": "changed"}),
        ("POST", "/v1/users/{user}/tokens") => json!({"device": "web"}),
        ("POST", "/v1/messages") => json!({
            "from": "alice", "to": {"user": "bob"}, "content": {"type": "text", "text": "x"}
        }),
        ("POST", "/v1/groups") => json!({"id": "g2", "owner": "alice", "name": "G2"}),
        ("PATCH", "/v1/groups/{group}") => json!({"name": "changed"}),
        ("POST", "/v1/groups/{group}/members") => json!({"users": ["carol"]}),
        ("POST", "/v1/rooms") => json!({"id": "r2", "owner": "alice"}),
        ("PATCH", "/v1/rooms/{room}") => json!({"name": "changed"}),
        ("POST", "/v1/rooms/{room}/moderation") => json!({"action": "kick", "user": "bob"}),
        ("POST", "/v1/admin/apps") => json!({"id": "newapp"}),
        ("POST", "/v1/admin/apps/{app}/rotate-secret") => json!({"grace_secs": 60}),
        ("PUT", "/v1/admin/apps/{app}/settings") => json!({"settings": {}}),
        ("GET", _) | ("DELETE", _) => return None,
        _ => json!({}),
    };
    Some(body)
}

/// The request of an operation with its plausible path and body, without credentials.
pub fn plausible(api: &Api, method: &Method, path: &str) -> RequestBuilder {
    let req = api.bare(method.clone(), &fill(path));
    match body_for(method, path) {
        Some(b) => req.json(&b),
        None => req,
    }
}

/// An HTTP client (reqwest is built without a process-wide TLS provider: install ring's).
fn client() -> reqwest::Client {
    // Err: already installed by an earlier test.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().build().unwrap()
}
