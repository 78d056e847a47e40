//! Magpie's server REST API: JSON over HTTP for an app's backend and for the super-admin,
//! with an OpenAPI document generated from the code. The contract is the API spec; this
//! crate converts between it and the service's calls, and owns nothing else.
//!
//! - [`app_router`]: the app routes (`/v1/...`, app credentials) and `/openapi.json`.
//! - [`admin_router`]: the admin routes (`/v1/admin/...`, the admin key).
//! - [`openapi`]: the document of both.
//!
//! Inside:
//!
//! - `auth`: the credential checks (route layers) and the caller extractors.
//! - `idempotency`: the `Idempotency-Key` layer (remembered answers, in-flight keys).
//! - `error`: `ApiError`, the status and JSON body of every refusal.
//! - `json`: body, path and query extractors that answer with our error body.
//! - `ids`: ids parsed into the domain types, errors naming the field.
//! - `state`: what the handlers share.
//! - `routes`: the handlers and their DTOs, one file per resource.
//! - `openapi`: the document's base and the `/openapi.json` route.
//!
//! Every route is registered through `utoipa_axum::routes!`, so a route cannot be served
//! without being in the document; the tests walk the document to check that every route
//! refuses bad credentials. Layers, from the outside in: the body limit (1 MiB), then per
//! route the credential check, then the idempotency layer, then the handler. An unknown
//! route answers 404 and a wrong method 405, both with the JSON error body.
//!
//! Architecture invariant: the app a request acts on comes from its credentials only, never
//! from its path or body; and nothing here logs a secret, a token or a credential.

mod auth;
mod error;
mod idempotency;
mod ids;
mod json;
mod openapi;
mod routes;
mod state;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use magpie_service::Service;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;

use state::ApiState;

/// Largest request body, bytes (413 `PAYLOAD_TOO_LARGE` beyond).
pub const MAX_BODY: usize = 1 << 20;

/// Options of the API.
#[derive(Clone, Default)]
pub struct ApiOptions {
    /// The admin key (`Authorization: Bearer KEY` on `/v1/admin/...`); `None` or empty: the
    /// admin API is off and its routes answer 404.
    pub admin_key: Option<String>,
}

impl std::fmt::Debug for ApiOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiOptions")
            .field("admin_key", &self.admin_key.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// App routes (`/v1/...`) plus `/openapi.json`.
///
/// It carries the JSON 404 fallback; [`admin_router`] carries none, so the two merge.
pub fn app_router(service: Arc<Service>) -> axum::Router {
    let st = ApiState::new(service, None);
    let (router, _) = app_routes()
        .route_layer(from_fn_with_state(st.clone(), idempotency::idempotent))
        .route_layer(from_fn_with_state(st.clone(), auth::require_app))
        .merge(openapi::router())
        .split_for_parts();
    router
        .method_not_allowed_fallback(error::method_not_allowed)
        .fallback(error::no_route)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(st)
}

/// Admin routes (`/v1/admin/...`).
///
/// No fallback of its own (so that it merges with [`app_router`]); served alone, unknown
/// paths get axum's empty 404.
pub fn admin_router(service: Arc<Service>, opts: ApiOptions) -> axum::Router {
    let st = ApiState::new(service, opts.admin_key);
    let (router, _) = admin_routes()
        .route_layer(from_fn_with_state(st.clone(), idempotency::idempotent))
        .route_layer(from_fn_with_state(st.clone(), auth::require_admin))
        .split_for_parts();
    router
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(st)
}

/// The OpenAPI document of both routers.
pub fn openapi() -> utoipa::openapi::OpenApi {
    openapi::ApiDoc::openapi()
        .merge_from(app_routes().into_openapi())
        .merge_from(openapi::router().into_openapi())
        .merge_from(admin_routes().into_openapi())
}

fn app_routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .merge(routes::users::router())
        .merge(routes::messages::router())
        .merge(routes::groups::router())
        .merge(routes::rooms::router())
        .merge(routes::conversations::router())
}

fn admin_routes() -> OpenApiRouter<ApiState> {
    routes::admin::router()
}
