//! The super-admin's routes (admin key): create and list apps, rotate an app's secret,
//! read and replace its settings.
//!
//! A full secret is shown only in the answer that creates it (app creation, rotation);
//! listings show its first four characters. Settings are one versioned document: a change
//! may name the version it was based on (body `version` or `If-Match`), and a stale one is
//! refused with 409 `CONFLICT`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use magpie_service::AppConfig;
use magpie_service::apps::AppSettings;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::AdminCaller;
use crate::error::{ApiError, ErrorBody};
use crate::ids;
use crate::json::{ApiJson, ApiPath};
use crate::state::ApiState;

/// The grace period of a rotated secret when a request names none: one day.
const DEFAULT_GRACE_SECS: u64 = 86_400;

/// The routes of this file.
pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(create_app, list_apps))
        .routes(routes!(get_app))
        .routes(routes!(rotate_secret))
        .routes(routes!(get_settings, put_settings))
}

/// An app to create.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApp {
    /// The app id (may not start with `_`).
    pub id: String,
    /// Display name (default: the id).
    pub name: Option<String>,
    /// Settings (default: the defaults); see `AppSettings`.
    #[schema(value_type = Option<Object>)]
    pub settings: Option<serde_json::Value>,
}

/// A newly created app, with its secret (shown this once).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedApp {
    /// The app id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// The secret (authenticates the app's backend and signs its users' tokens).
    pub secret: String,
    /// Settings version.
    pub version: u64,
    /// Settings.
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
    /// Creation time, Unix ms.
    pub created_ms: u64,
}

/// An app, without its secrets.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AppSummary {
    /// The app id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Settings version.
    pub version: u64,
    /// Creation time, Unix ms.
    pub created_ms: u64,
    /// The secrets, the signing one first.
    pub secrets: Vec<SecretPreview>,
}

/// One secret, previewed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SecretPreview {
    /// The first four characters and `…`.
    pub preview: String,
    /// When it stops being accepted, Unix ms (`null`: until rotated).
    pub expires_at_ms: Option<u64>,
}

/// Every app.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AppList {
    /// Ordered by id.
    pub apps: Vec<AppSummary>,
}

/// A rotation.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecret {
    /// How long the current secrets stay valid, seconds (default 86400; 0: they stop now;
    /// at most 30 days).
    pub grace_secs: Option<u64>,
}

/// The new secret (shown this once).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RotatedSecret {
    /// The app id.
    pub id: String,
    /// The new signing secret.
    pub secret: String,
    /// The previous secrets are accepted until this Unix ms (`null`: there were none).
    pub previous_valid_until_ms: Option<u64>,
}

/// An app's settings and their version.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SettingsJson {
    /// The version (also the `ETag`).
    pub version: u64,
    /// The settings.
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
}

/// New settings.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutSettings {
    /// The whole settings document (omitted keys take their defaults).
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
    /// Apply only if the settings are still at this version (or send `If-Match`).
    pub version: Option<u64>,
}

fn summary(c: &AppConfig) -> AppSummary {
    AppSummary {
        id: c.id.to_string(),
        name: c.name.clone(),
        version: c.version,
        created_ms: c.created_ms,
        secrets: c
            .secrets
            .iter()
            .map(|s| SecretPreview {
                preview: s.secret.chars().take(4).chain(['…']).collect(),
                expires_at_ms: s.expires_at_ms,
            })
            .collect(),
    }
}

fn settings_json(s: &AppSettings) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(s).map_err(ApiError::internal)
}

fn parse_settings(v: serde_json::Value) -> Result<AppSettings, ApiError> {
    serde_json::from_value(v).map_err(|e| ApiError::field("settings", e))
}

fn with_etag(version: u64, body: SettingsJson) -> Response {
    let mut res = Json(body).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{version}\"")) {
        res.headers_mut().insert(header::ETAG, v);
    }
    res
}

/// Creates an app with a fresh secret.
#[utoipa::path(
    post, path = "/v1/admin/apps", tag = "admin",
    request_body = CreateApp,
    responses(
        (status = 201, description = "Created; the secret is shown this once", body = CreatedApp),
        (status = 400, description = "Invalid input", body = ErrorBody),
        (status = 409, description = "The app exists", body = ErrorBody),
        (status = 401, description = "Bad admin key", body = ErrorBody),
        (status = 404, description = "The admin API is off", body = ErrorBody),
    ),
    security(("admin" = []))
)]
async fn create_app(
    _: AdminCaller,
    State(st): State<ApiState>,
    ApiJson(req): ApiJson<CreateApp>,
) -> Result<(StatusCode, Json<CreatedApp>), ApiError> {
    let id = ids::app("id", &req.id)?;
    let settings = req.settings.map(parse_settings).transpose()?;
    let name = req.name.unwrap_or_else(|| id.to_string());
    let app = st.service.create_app(id, name, settings).await?;
    let secret = app
        .secrets
        .first()
        .map(|s| s.secret.clone())
        .ok_or_else(|| ApiError::internal("a new app has no secret"))?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedApp {
            id: app.id.to_string(),
            name: app.name.clone(),
            secret,
            version: app.version,
            settings: settings_json(&app.settings)?,
            created_ms: app.created_ms,
        }),
    ))
}

/// Every app.
#[utoipa::path(
    get, path = "/v1/admin/apps", tag = "admin",
    responses(
        (status = 200, description = "The apps", body = AppList),
        (status = 401, description = "Bad admin key", body = ErrorBody),
        (status = 404, description = "The admin API is off", body = ErrorBody),
    ),
    security(("admin" = []))
)]
async fn list_apps(_: AdminCaller, State(st): State<ApiState>) -> Json<AppList> {
    let apps = st
        .service
        .apps()
        .list()
        .iter()
        .map(|a| summary(&a.config))
        .collect();
    Json(AppList { apps })
}

/// One app.
#[utoipa::path(
    get, path = "/v1/admin/apps/{app}", tag = "admin",
    params(("app" = String, Path, description = "App id")),
    responses(
        (status = 200, description = "The app", body = AppSummary),
        (status = 404, description = "No such app (or the admin API is off)", body = ErrorBody),
        (status = 401, description = "Bad admin key", body = ErrorBody),
    ),
    security(("admin" = []))
)]
async fn get_app(
    _: AdminCaller,
    State(st): State<ApiState>,
    ApiPath(app): ApiPath<String>,
) -> Result<Json<AppSummary>, ApiError> {
    let id = ids::app("app", &app)?;
    let a = st
        .service
        .apps()
        .get(&id)
        .ok_or_else(|| ApiError::not_found(format!("no app {:?}", id.as_str())))?;
    Ok(Json(summary(&a.config)))
}

/// Makes a new signing secret; the current ones stay valid for the grace period.
#[utoipa::path(
    post, path = "/v1/admin/apps/{app}/rotate-secret", tag = "admin",
    params(("app" = String, Path, description = "App id")),
    request_body = RotateSecret,
    responses(
        (status = 200, description = "The new secret, shown this once", body = RotatedSecret),
        (status = 400, description = "Invalid input", body = ErrorBody),
        (status = 404, description = "No such app (or the admin API is off)", body = ErrorBody),
        (status = 401, description = "Bad admin key", body = ErrorBody),
    ),
    security(("admin" = []))
)]
async fn rotate_secret(
    _: AdminCaller,
    State(st): State<ApiState>,
    ApiPath(app): ApiPath<String>,
    ApiJson(req): ApiJson<RotateSecret>,
) -> Result<Json<RotatedSecret>, ApiError> {
    let id = ids::app("app", &app)?;
    let grace_ms = req
        .grace_secs
        .unwrap_or(DEFAULT_GRACE_SECS)
        .saturating_mul(1000);
    let app = st.service.rotate_app_secret(&id, grace_ms).await?;
    let mut secrets = app.secrets.iter();
    let secret = secrets
        .next()
        .map(|s| s.secret.clone())
        .ok_or_else(|| ApiError::internal("a rotated app has no secret"))?;
    let previous_valid_until_ms = secrets.filter_map(|s| s.expires_at_ms).max();
    Ok(Json(RotatedSecret {
        id: app.id.to_string(),
        secret,
        previous_valid_until_ms,
    }))
}

/// An app's settings (`ETag`: the version).
#[utoipa::path(
    get, path = "/v1/admin/apps/{app}/settings", tag = "admin",
    params(("app" = String, Path, description = "App id")),
    responses(
        (status = 200, description = "The settings", body = SettingsJson,
            headers(("ETag" = String, description = "The version, quoted"))),
        (status = 404, description = "No such app (or the admin API is off)", body = ErrorBody),
        (status = 401, description = "Bad admin key", body = ErrorBody),
    ),
    security(("admin" = []))
)]
async fn get_settings(
    _: AdminCaller,
    State(st): State<ApiState>,
    ApiPath(app): ApiPath<String>,
) -> Result<Response, ApiError> {
    let id = ids::app("app", &app)?;
    let a = st
        .service
        .apps()
        .get(&id)
        .ok_or_else(|| ApiError::not_found(format!("no app {:?}", id.as_str())))?;
    let c = &a.config;
    Ok(with_etag(
        c.version,
        SettingsJson {
            version: c.version,
            settings: settings_json(&c.settings)?,
        },
    ))
}

/// Replaces an app's settings (validated as a whole).
#[utoipa::path(
    put, path = "/v1/admin/apps/{app}/settings", tag = "admin",
    params(
        ("app" = String, Path, description = "App id"),
        ("If-Match" = Option<String>, Header, description = "Apply only at this version, quoted"),
    ),
    request_body = PutSettings,
    responses(
        (status = 200, description = "The settings now", body = SettingsJson,
            headers(("ETag" = String, description = "The version, quoted"))),
        (status = 400, description = "Invalid settings (the message names the field)", body = ErrorBody),
        (status = 409, description = "The settings changed since that version", body = ErrorBody),
        (status = 404, description = "No such app (or the admin API is off)", body = ErrorBody),
        (status = 401, description = "Bad admin key", body = ErrorBody),
    ),
    security(("admin" = []))
)]
async fn put_settings(
    _: AdminCaller,
    State(st): State<ApiState>,
    ApiPath(app): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<PutSettings>,
) -> Result<Response, ApiError> {
    let id = ids::app("app", &app)?;
    let if_match = if_match(&headers)?;
    let expected = match (req.version, if_match) {
        (Some(a), Some(b)) if a != b => {
            return Err(ApiError::field("version", "differs from If-Match"));
        }
        (v, m) => v.or(m),
    };
    let settings = parse_settings(req.settings)?;
    let app = st
        .service
        .update_app_settings(&id, expected, settings)
        .await?;
    Ok(with_etag(
        app.version,
        SettingsJson {
            version: app.version,
            settings: settings_json(&app.settings)?,
        },
    ))
}

/// The version an `If-Match` header names: `"7"` (or `7`, or weak `W/"7"`).
fn if_match(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(v) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let bad = || ApiError::field("If-Match", "expected a quoted settings version, e.g. \"3\"");
    let s = v.to_str().map_err(|_| bad())?.trim();
    let s = s.strip_prefix("W/").unwrap_or(s);
    let s = s
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s);
    s.parse().map(Some).map_err(|_| bad())
}
