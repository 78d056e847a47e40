//! The HTTP listeners: liveness, readiness and metrics, around the server API.
//!
//! `/healthz` answers 200 while the process runs; `/readyz` answers 200 while the server
//! accepts clients and 503 once it is draining, so a load balancer stops sending new
//! clients before the connections are closed. The server API (`magpie-api`) is merged in by
//! [`crate::Server`]; [`observe`] counts every request by route and status class and logs
//! it (method, route, status, time: never headers, so no credential reaches a log).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::{Value, json};

/// Shared readiness flag.
#[derive(Debug, Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    /// Marks the server ready or not.
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::SeqCst);
    }

    /// Whether the server is ready.
    pub fn get(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Counts and logs every request of `app`.
pub fn observe(app: Router) -> Router {
    app.layer(axum::middleware::from_fn(count_request))
}

async fn count_request(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let method = req.method().clone();
    // The route pattern, not the path: ids in paths would make unbounded label sets.
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let started = std::time::Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    let class = match status {
        200..=299 => "2xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "other",
    };
    metrics::counter!("magpie_http_requests_total", "method" => method.to_string(), "route" => route.clone(), "status" => class)
        .increment(1);
    tracing::debug!(%method, %route, status, ms = started.elapsed().as_millis() as u64, "http request");
    resp
}

/// The health, readiness and (with `with_metrics`) metrics routes.
pub fn router(ready: Readiness, metrics: PrometheusHandle, with_metrics: bool) -> Router {
    let base = Router::new();
    let base = if with_metrics {
        base.route(
            "/metrics",
            get(move || {
                let body = metrics.render();
                async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )],
                        body,
                    )
                }
            }),
        )
    } else {
        base
    };
    base.route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route(
            "/readyz",
            get(move || {
                let ready = ready.clone();
                async move {
                    if ready.get() {
                        (StatusCode::OK, Json(json!({"status": "ready"})))
                    } else {
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            Json::<Value>(json!({"status": "draining"})),
                        )
                    }
                }
            }),
        )
}
