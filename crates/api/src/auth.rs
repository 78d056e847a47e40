//! Credentials: the app's backend ([`AppCaller`]) and the super-admin ([`AdminCaller`]).
//!
//! App routes take `Authorization: Basic base64(APP_ID:SECRET)` or
//! `Authorization: Bearer APP_ID:SECRET`, checked against the app's live secrets in
//! constant time; the app a request acts on is always the one of its credentials, never one
//! named in the path or body. Admin routes take `Authorization: Bearer ADMIN_KEY`. The two
//! never stand in for each other: an admin key has no `APP:` part, and app credentials are
//! never the admin key.
//!
//! The checks run as route layers ([`require_app`], [`require_admin`]), before any path,
//! query or body is parsed, so every route refuses a bad credential the same way; the
//! layer leaves the caller in the request's extensions for the handlers' extractors.
//! Credentials are never logged.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use magpie_service::Service;
use magpie_service::apps::constant_time_eq;
use magpie_types::AppId;

use crate::error::ApiError;
use crate::state::ApiState;

/// The challenge sent with a missing app credential.
const APP_CHALLENGE: &str = "Basic realm=\"magpie\"";
/// The challenge sent with a missing admin credential.
const ADMIN_CHALLENGE: &str = "Bearer realm=\"magpie-admin\"";

/// The app a request acts for, from its credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppCaller(pub AppId);

/// A request made with the admin key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdminCaller;

/// Route layer of the app routes: refuses a request without valid app credentials.
pub async fn require_app(State(st): State<ApiState>, mut req: Request, next: Next) -> Response {
    match authenticate_app(&st.service, req.headers()) {
        Ok(app) => {
            req.extensions_mut().insert(AppCaller(app));
            next.run(req).await
        }
        Err(e) => e.into_response(),
    }
}

/// Route layer of the admin routes: refuses a request without the admin key.
pub async fn require_admin(State(st): State<ApiState>, mut req: Request, next: Next) -> Response {
    match authenticate_admin(st.admin_key.as_deref(), req.headers()) {
        Ok(a) => {
            req.extensions_mut().insert(a);
            next.run(req).await
        }
        Err(e) => e.into_response(),
    }
}

impl FromRequestParts<ApiState> for AppCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &ApiState) -> Result<Self, ApiError> {
        if let Some(c) = parts.extensions.get::<AppCaller>() {
            return Ok(c.clone());
        }
        // Not behind the layer (a route added without it): check here all the same.
        authenticate_app(&st.service, &parts.headers).map(AppCaller)
    }
}

impl FromRequestParts<ApiState> for AdminCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &ApiState) -> Result<Self, ApiError> {
        if let Some(c) = parts.extensions.get::<AdminCaller>() {
            return Ok(*c);
        }
        authenticate_admin(st.admin_key.as_deref(), &parts.headers)
    }
}

/// The app whose credentials `headers` carry.
pub fn authenticate_app(service: &Service, headers: &HeaderMap) -> Result<AppId, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(
            ApiError::unauthenticated("app credentials required").with_challenge(APP_CHALLENGE)
        );
    };
    let bad = || ApiError::unauthenticated("invalid app credentials");
    let value = value.to_str().map_err(|_| bad())?;
    let (scheme, rest) = value.trim().split_once(' ').ok_or_else(bad)?;
    let rest = rest.trim();
    let pair = if scheme.eq_ignore_ascii_case("basic") {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .map_err(|_| bad())?;
        String::from_utf8(raw).map_err(|_| bad())?
    } else if scheme.eq_ignore_ascii_case("bearer") {
        rest.to_owned()
    } else {
        return Err(bad());
    };
    let (app, secret) = pair.split_once(':').ok_or_else(bad)?;
    let app = AppId::new(app).map_err(|_| bad())?;
    if secret.is_empty() || !service.apps().verify_secret(&app, secret, service.now_ms()) {
        return Err(bad());
    }
    Ok(app)
}

/// Checks the admin key in `headers`.
pub fn authenticate_admin(key: Option<&str>, headers: &HeaderMap) -> Result<AdminCaller, ApiError> {
    let Some(key) = key else {
        return Err(ApiError::not_found("the admin API is off"));
    };
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(
            ApiError::unauthenticated("the admin key is required").with_challenge(ADMIN_CHALLENGE)
        );
    };
    let bad = || ApiError::unauthenticated("invalid admin key");
    let value = value.to_str().map_err(|_| bad())?;
    let (scheme, given) = value.trim().split_once(' ').ok_or_else(bad)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(bad());
    }
    if constant_time_eq(given.trim().as_bytes(), key.as_bytes()) {
        Ok(AdminCaller)
    } else {
        Err(bad())
    }
}
