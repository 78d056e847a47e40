//! The routes, one file per resource. Each handler is annotated with `#[utoipa::path]` and
//! registered with `utoipa_axum::routes!`, so a route cannot be served without being in the
//! OpenAPI document.
//!
//! - [`users`]: accounts, profiles, tokens.
//! - [`messages`]: sending as a user or as the system, to a user, a group or a room.
//! - [`groups`]: group lifecycle and membership, acting as the group's owner.
//! - [`rooms`]: live rooms, acting as the room's owner.
//! - [`conversations`]: a user's conversation list, history and read position.
//! - [`admin`]: apps, secrets and settings (admin key).
//! - [`content`]: message content and stored messages as JSON.

pub mod admin;
pub mod content;
pub mod conversations;
pub mod groups;
pub mod messages;
pub mod rooms;
pub mod users;

use magpie_service::accounts::SYSTEM_USER;
use magpie_service::{Service, SessionCtx};
use magpie_types::{AppId, UserId};

use crate::error::ApiError;

/// The user id the system speaks as.
pub fn system_user() -> Result<UserId, ApiError> {
    UserId::new(SYSTEM_USER).map_err(ApiError::internal)
}

/// The context of an API request acting as `user` of `app`.
pub fn ctx(service: &Service, app: &AppId, user: UserId) -> SessionCtx {
    service.api_ctx(app, user)
}

/// The context of an API request acting as the system.
pub fn system_ctx(service: &Service, app: &AppId) -> Result<SessionCtx, ApiError> {
    Ok(service.api_ctx(app, system_user()?))
}

/// Refuses (404) a user that does not exist in the app.
pub async fn require_user(service: &Service, app: &AppId, user: &UserId) -> Result<(), ApiError> {
    service.user_view(app, user).await.map(|_| ())?;
    Ok(())
}

/// The stored text of a `custom` field: a string as it is, any other JSON value as its
/// compact text (`null` reads as absent).
pub fn custom_text(v: Option<serde_json::Value>) -> Option<String> {
    match v? {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}
