//! A small client of the server REST API for tests: JSON in, `(status, JSON)` out.

use std::net::SocketAddr;

use base64::Engine as _;
use serde_json::Value;

/// A REST client with one set of credentials.
#[derive(Debug, Clone)]
pub struct Rest {
    base: String,
    auth: String,
    http: reqwest::Client,
}

impl Rest {
    /// Authenticated as an app's backend (HTTP basic: app id and secret).
    pub fn app(addr: SocketAddr, app: &str, secret: &str) -> Self {
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{app}:{secret}"));
        Self::with_auth(addr, format!("Basic {basic}"))
    }

    /// Authenticated as the super-admin.
    pub fn admin(addr: SocketAddr, key: &str) -> Self {
        Self::with_auth(addr, format!("Bearer {key}"))
    }

    fn with_auth(addr: SocketAddr, auth: String) -> Self {
        // reqwest is built without a default TLS crypto provider (the workspace uses ring
        // everywhere); it needs one installed even for plain http.
        let _ = rustls::crypto::ring::default_provider().install_default();
        Self {
            base: format!("http://{addr}"),
            auth,
            http: reqwest::Client::new(),
        }
    }

    /// Sends `method path` with an optional JSON body; returns the status and the body
    /// (JSON `null` if it is empty or not JSON).
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call_with(method, path, body, &[]).await
    }

    /// Like [`Self::call`], with extra headers.
    pub async fn call_with(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("HTTP method");
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("authorization", &self.auth);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("the server answers");
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.expect("a response body");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// POSTs JSON.
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call("POST", path, Some(body)).await
    }

    /// GETs.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, None).await
    }
}
