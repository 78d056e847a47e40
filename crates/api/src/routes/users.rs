//! Users: create and import, read and change the profile, disable, delete, tokens.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use magpie_service::ProfileChange;
use magpie_service::accounts::{NewUser, UserView};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::AppCaller;
use crate::error::{ApiError, ErrorBody};
use crate::ids;
use crate::json::{ApiJson, ApiPath};
use crate::state::ApiState;

/// The token lifetime when a request names none: one day.
const DEFAULT_TTL_SECS: u64 = 86_400;

/// The routes of this file.
pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(create_user))
        .routes(routes!(import_users))
        .routes(routes!(get_user, patch_user, delete_user))
        .routes(routes!(disable_user))
        .routes(routes!(enable_user))
        .routes(routes!(issue_token))
        .routes(routes!(revoke_tokens))
}

/// A user to create, with optional profile fields.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// The user id (`[A-Za-z0-9_.@-]`, at most 64 bytes).
    pub id: String,
    /// Display name.
    pub nickname: Option<String>,
    /// Avatar URL.
    pub avatar_url: Option<String>,
    /// Free-form data set by the app: a string is kept as it is, any other JSON value as
    /// its compact text.
    pub custom: Option<serde_json::Value>,
}

/// The answer to a create.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserCreated {
    /// The user id.
    pub id: String,
    /// Whether the user was created (false: it existed; given profile fields were updated).
    pub created: bool,
}

/// Users to create.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportUsers {
    /// At most 1000 users.
    pub users: Vec<CreateUser>,
}

/// What an import did.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImportResult {
    /// Users created.
    pub created: usize,
    /// Users that existed already.
    pub existing: usize,
}

/// A user.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserJson {
    /// The user id.
    pub id: String,
    /// Display name.
    pub nickname: String,
    /// Avatar URL.
    pub avatar_url: String,
    /// Free-form text set by the app.
    pub custom: String,
    /// Disabled: logins refused.
    pub disabled: bool,
    /// Devices connected now (on this node).
    pub online_devices: usize,
}

/// Profile fields to change (absent: unchanged).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchUser {
    /// Display name.
    pub nickname: Option<String>,
    /// Avatar URL.
    pub avatar_url: Option<String>,
    /// Free-form data set by the app: a string is kept as it is, any other JSON value as
    /// its compact text.
    pub custom: Option<serde_json::Value>,
}

/// How many connections an operation closed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClosedConnections {
    /// Connections told to go away.
    pub closed_connections: usize,
}

/// A token to issue.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueToken {
    /// The device the token is for (e.g. `web`).
    pub device: String,
    /// Lifetime, seconds (default 86400, at most 90 days).
    pub ttl_secs: Option<u64>,
}

/// A freshly issued token.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenJson {
    /// The JWT for the client's `Hello`.
    pub token: String,
    /// Expiry, Unix seconds.
    pub expires_at: u64,
}

/// Which tokens to revoke.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeTokens {
    /// Only this device's tokens (absent: every device).
    pub device: Option<String>,
}

impl From<UserView> for UserJson {
    fn from(v: UserView) -> Self {
        Self {
            id: v.id.to_string(),
            nickname: v.profile.nickname,
            avatar_url: v.profile.avatar_url,
            custom: v.profile.custom,
            disabled: v.disabled,
            online_devices: v.online_devices,
        }
    }
}

fn new_user(field: &str, u: CreateUser) -> Result<NewUser, ApiError> {
    Ok(NewUser {
        id: ids::user(&format!("{field}id"), &u.id)?,
        profile: ProfileChange {
            nickname: u.nickname,
            avatar_url: u.avatar_url,
            custom: super::custom_text(u.custom),
        },
    })
}

/// Creates a user (or updates the profile fields of one that exists).
#[utoipa::path(
    post, path = "/v1/users", tag = "users",
    request_body = CreateUser,
    responses(
        (status = 201, description = "Created", body = UserCreated),
        (status = 200, description = "The user existed; given profile fields were updated", body = UserCreated),
        (status = 400, description = "Invalid input", body = ErrorBody),
        (status = 401, description = "Bad credentials", body = ErrorBody),
    ),
    security(("app" = []))
)]
async fn create_user(
    AppCaller(app): AppCaller,
    State(st): State<ApiState>,
    ApiJson(req): ApiJson<CreateUser>,
) -> Result<(StatusCode, Json<UserCreated>), ApiError> {
    let user = new_user("", req)?;
    let id = user.id.to_string();
    let out = st.service.import_users(&app, vec![user]).await?;
    let created = out.created > 0;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(UserCreated { id, created })))
}

/// Creates many users at once (at most 1000).
#[utoipa::path(
    post, path = "/v1/users/import", tag = "users",
    request_body = ImportUsers,
    responses(
        (status = 200, description = "Imported", body = ImportResult),
        (status = 400, description = "Invalid input", body = ErrorBody),
        (status = 401, description = "Bad credentials", body = ErrorBody),
    ),
    security(("app" = []))
)]
async fn import_users(
    AppCaller(app): AppCaller,
    State(st): State<ApiState>,
    ApiJson(req): ApiJson<ImportUsers>,
) -> Result<Json<ImportResult>, ApiError> {
    let users = req
        .users
        .into_iter()
        .enumerate()
        .map(|(i, u)| new_user(&format!("users[{i}]."), u))
        .collect::<Result<Vec<_>, _>>()?;
    let out = st.service.import_users(&app, users).await?;
    Ok(Json(ImportResult {
        created: out.created,
        existing: out.existing,
    }))
}

/// A user.
#[utoipa::path(
    get, path = "/v1/users/{user}", tag = "users",
    params(("user" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "The user", body = UserJson),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 401, description = "Bad credentials", body = ErrorBody),
    ),
    security(("app" = []))
)]
async fn get_user(
    AppCaller(app): AppCaller,
    State(st): State<ApiState>,
    ApiPath(user): ApiPath<String>,
) -> Result<Json<UserJson>, ApiError> {
    let user = ids::user("user", &user)?;
    Ok(Json(st.service.user_view(&app, &user).await?.into()))
}

/// Changes a user's profile.
#[utoipa::path(
    patch, path = "/v1/users/{user}", tag = "users",
    params(("user" = String, Path, description = "User id")),
    request_body = PatchUser,
    responses(
        (status = 200, description = "The user after the change", body = UserJson),
        (status = 400, description = "Invalid input", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 401, description = "Bad credentials", body = ErrorBody),
    ),
    security(("app" = []))
)]
async fn patch_user(
    AppCaller(app): AppCaller,
    State(st): State<ApiState>,
    ApiPath(user): ApiPath<String>,
    ApiJson(req): ApiJson<PatchUser>,
) -> Result<Json<UserJson>, ApiError> {
    let user = ids::user("user", &user)?;
    let s = &st.service;
    s.user_view(&app, &user).await?;
    let change = ProfileChange {
        nickname: req.nickname,
        avatar_url: req.avatar_url,
        custom: super::custom_text(req.custom),
    };
    s.set_profile(&s.api_ctx(&app, user.clone()), change)
        .await?;
    Ok(Json(s.user_view(&app, &user).await?.into()))
}

/// Deletes a user: connections closed, logins refused, profile removed; messages stay.
#[utoipa::path(
    delete, path = "/v1/users/{user}", tag = "users",
    params(("user" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "Deleted", body = ClosedConnections),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 401, description = "Bad credentials", body = ErrorBody),
    ),
    security(("app" = []))
)]
async fn delete_user(
    AppCaller(app): AppCaller,
    State(st): State<ApiState>,
    ApiPath(user): ApiPath<String>,
) -> Result<Json<ClosedConnections>, ApiError> {
    let user = ids::user("user", &user)?;
    let n = st.service.delete_user(&app, &user).await?;
    Ok(Json(ClosedConnections {
        closed_connections: n,
    }))
}

/// Disables a user: their connections are closed and their logins refused.
#[utoipa::path(
    post, path = "/v1/users/{user}/disable", tag = "users",
    params(("user" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "Disabled", body = ClosedConnections),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 401, description = "Bad credentials", body = ErrorBody),
    ),
    security(("app" = []))
)]
async fn disable_user(
    AppCaller(app): AppCaller,
    State(st): State<ApiState>,
    ApiPath(user): ApiPath<String>,
) -> Result<Json<ClosedConnections>, ApiError> {
    let user = ids::user("user", &user)?;
    let n = st.service.set_user_disabled(&app, &user, true).await?;
    Ok(Json(ClosedConnections {
        closed_connections: n,
    }))
}

/// Enables a disabled user again.
#[utoipa::path(
    post, path = "/v1/users/{user}/enable", tag = "users",
    params(("user" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "Enabled", body = ClosedConnections),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 401, description = "Bad credentials", body = ErrorBody),
    ),
    security(("app" = []))
)]
async fn enable_user(
    AppCaller(app): AppCaller,
    State(st): State<ApiState>,
    ApiPath(user): ApiPath<String>,
) -> Result<Json<ClosedConnections>, ApiError> {
    let user = ids::user("user", &user)?;
    let n = st.service.set_user_disabled(&app, &user, false).await?;
    Ok(Json(ClosedConnections {
        closed_connections: n,
    }))
}

/// Issues a token for one of the user's devices, signed with the app's current secret.
#[utoipa::path(
    post, path = "/v1/users/{user}/tokens", tag = "users",
    params(("user" = String, Path, description = "User id")),
    request_body = IssueToken,
    responses(
        (status = 201, description = "Issued", body = TokenJson),
        (status = 400, description = "Invalid input", body = ErrorBody),
        (status = 403, description = "The user is disabled", body = ErrorBody),
        (status = 401, description = "Bad credentials", body = ErrorBody),
    ),
    security(("app" = []))
)]
async fn issue_token(
    AppCaller(app): AppCaller,
    State(st): State<ApiState>,
    ApiPath(user): ApiPath<String>,
    ApiJson(req): ApiJson<IssueToken>,
) -> Result<(StatusCode, Json<TokenJson>), ApiError> {
    let user = ids::user("user", &user)?;
    let device = ids::device("device", &req.device)?;
    let ttl = req.ttl_secs.unwrap_or(DEFAULT_TTL_SECS);
    let t = st.service.issue_token(&app, &user, &device, ttl).await?;
    Ok((
        StatusCode::CREATED,
        Json(TokenJson {
            token: t.token,
            expires_at: t.expires_at,
        }),
    ))
}

/// Revokes the user's tokens issued until now (of one device, if named) and closes the
/// connections that used them.
#[utoipa::path(
    post, path = "/v1/users/{user}/tokens/revoke", tag = "users",
    params(("user" = String, Path, description = "User id")),
    request_body = RevokeTokens,
    responses(
        (status = 200, description = "Revoked", body = ClosedConnections),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 401, description = "Bad credentials", body = ErrorBody),
    ),
    security(("app" = []))
)]
async fn revoke_tokens(
    AppCaller(app): AppCaller,
    State(st): State<ApiState>,
    ApiPath(user): ApiPath<String>,
    ApiJson(req): ApiJson<RevokeTokens>,
) -> Result<Json<ClosedConnections>, ApiError> {
    let user = ids::user("user", &user)?;
    let device = req
        .device
        .as_deref()
        .map(|d| ids::device("device", d))
        .transpose()?;
    let n = st
        .service
        .revoke_tokens(&app, &user, device.as_ref())
        .await?;
    Ok(Json(ClosedConnections {
        closed_connections: n,
    }))
}
