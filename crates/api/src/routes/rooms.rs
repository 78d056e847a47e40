//! Live rooms: create, read, change, close, list who is in, moderate.
//!
//! An operation that needs a room role runs as the room's owner. Membership of a room is
//! presence (connections), so the member list is who is online in it now.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use magpie_service::{RoomAction, RoomInfo, RoomSettingsChange, Service, SessionCtx};
use magpie_types::{AppId, RoomId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::groups::PageQuery;
use crate::auth::AppCaller;
use crate::error::{ApiError, ErrorBody};
use crate::ids;
use crate::json::{ApiJson, ApiPath, ApiQuery};
use crate::state::ApiState;

/// The routes of this file.
pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(create_room))
        .routes(routes!(get_room, patch_room, close_room))
        .routes(routes!(room_members))
        .routes(routes!(moderate))
}

/// A room to create.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRoom {
    /// The id.
    pub id: String,
    /// The owner (an existing user).
    pub owner: String,
    /// Display name.
    pub name: Option<String>,
    /// Downstream budget per connection, msgs/s (0: the default).
    pub budget_per_s: Option<u32>,
    /// Slow mode, ms (0: off).
    pub slow_mode_ms: Option<u32>,
    /// Room-wide send limit, msgs/s (0: the default).
    pub send_rate_per_s: Option<u32>,
    /// Only admins may speak.
    pub mute_all: Option<bool>,
    /// Members may send high priority.
    pub members_may_send_high: Option<bool>,
}

/// Room fields to change (absent: unchanged).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchRoom {
    /// Display name.
    pub name: Option<String>,
    /// Downstream budget per connection, msgs/s (0: the default).
    pub budget_per_s: Option<u32>,
    /// Slow mode, ms (0: off).
    pub slow_mode_ms: Option<u32>,
    /// Room-wide send limit, msgs/s (0: the default).
    pub send_rate_per_s: Option<u32>,
    /// Only admins may speak.
    pub mute_all: Option<bool>,
    /// Members may send high priority.
    pub members_may_send_high: Option<bool>,
}

/// A room's effective settings.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RoomSettingsJson {
    /// Downstream budget per connection, msgs/s.
    pub budget_per_s: u32,
    /// Slow mode interval, ms (0: off).
    pub slow_mode_ms: u32,
    /// Room-wide send limit, msgs/s.
    pub send_rate_per_s: u32,
    /// Only admins may speak.
    pub mute_all: bool,
    /// Members may send high priority.
    pub members_may_send_high: bool,
}

/// A live room.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RoomJson {
    /// The id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// The owner.
    pub owner: String,
    /// Admins other than the owner.
    pub admins: Vec<String>,
    /// Distinct users online in the room.
    pub online: u64,
    /// Connections in the room.
    pub connections: u64,
    /// The last reliable seq.
    pub last_seq: u64,
    /// Closed: nobody may join or send.
    pub closed: bool,
    /// Effective settings.
    pub settings: RoomSettingsJson,
}

/// A page of the users online in a room.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RoomMemberPage {
    /// Users ascending by id.
    pub members: Vec<String>,
    /// Pass as `after` for the next page (`null`: this was the last).
    pub next: Option<String>,
}

/// A moderation action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ModerationAction {
    /// Remove the user's connections; they may join again.
    Kick,
    /// Remove them and refuse later joins.
    Ban,
    /// Lift a ban.
    Unban,
    /// Mute for `duration_ms`.
    Mute,
    /// Lift a mute.
    Unmute,
}

/// A moderation request.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Moderate {
    /// What to do.
    pub action: ModerationAction,
    /// To whom.
    pub user: String,
    /// For `mute`: how long, ms (required, at least 1).
    pub duration_ms: Option<u64>,
}

impl From<RoomInfo> for RoomJson {
    fn from(r: RoomInfo) -> Self {
        Self {
            id: r.room.to_string(),
            name: r.name,
            owner: r.owner,
            admins: r.admins,
            online: r.online,
            connections: r.connections,
            last_seq: r.last_seq,
            closed: r.closed,
            settings: RoomSettingsJson {
                budget_per_s: r.settings.budget_per_s,
                slow_mode_ms: r.settings.slow_mode_ms,
                send_rate_per_s: r.settings.send_rate_per_s,
                mute_all: r.settings.mute_all,
                members_may_send_high: r.settings.members_may_send_high,
            },
        }
    }
}

impl From<PatchRoom> for RoomSettingsChange {
    fn from(p: PatchRoom) -> Self {
        Self {
            budget_per_s: p.budget_per_s,
            slow_mode_ms: p.slow_mode_ms,
            send_rate_per_s: p.send_rate_per_s,
            mute_all: p.mute_all,
            members_may_send_high: p.members_may_send_high,
            name: p.name,
        }
    }
}

/// The room, and the context of its owner.
async fn as_owner(
    s: &Service,
    app: &AppId,
    room: &RoomId,
) -> Result<(RoomInfo, SessionCtx), ApiError> {
    let info = s.get_room(&super::system_ctx(s, app)?, room).await?;
    let owner = magpie_types::UserId::new(info.owner.as_str()).map_err(ApiError::internal)?;
    Ok((info, super::ctx(s, app, owner)))
}

/// Creates a live room owned by `owner`.
#[utoipa::path(
    post, path = "/v1/rooms", tag = "rooms",
    request_body = CreateRoom,
    responses(
        (status = 201, description = "Created", body = RoomJson),
        (status = 400, description = "Invalid input", body = ErrorBody),
        (status = 404, description = "No such owner", body = ErrorBody),
        (status = 409, description = "The room exists", body = ErrorBody),
        (status = 401, description = "Bad credentials", body = ErrorBody),
    ),
    security(("app" = []))
)]
async fn create_room(
    AppCaller(app): AppCaller,
    State(st): State<ApiState>,
    ApiJson(req): ApiJson<CreateRoom>,
) -> Result<(StatusCode, Json<RoomJson>), ApiError> {
    let s = &st.service;
    let room = ids::room("id", &req.id)?;
    let owner = ids::user("owner", &req.owner)?;
    super::require_user(s, &app, &owner).await?;
    let settings = RoomSettingsChange {
        budget_per_s: req.budget_per_s,
        slow_mode_ms: req.slow_mode_ms,
        send_rate_per_s: req.send_rate_per_s,
        mute_all: req.mute_all,
        members_may_send_high: req.members_may_send_high,
        name: req.name,
    };
    let info = s
        .create_room(&super::ctx(s, &app, owner), Some(room), settings)
        .await?;
    Ok((StatusCode::CREATED, Json(info.into())))
}

/// A live room.
#[utoipa::path(
    get, path = "/v1/rooms/{room}", tag = "rooms",
    params(("room" = String, Path, description = "Room id")),
    responses(
        (status = 200, description = "The room", body = RoomJson),
        (status = 404, description = "No such room", body = ErrorBody),
        (status = 401, description = "Bad credentials", body = ErrorBody),
    ),
    security(("app" = []))
)]
async fn get_room(
    AppCaller(app): AppCaller,
    State(st): State<ApiState>,
    ApiPath(room): ApiPath<String>,
) -> Result<Json<RoomJson>, ApiError> {
    let room = ids::room("room", &room)?;
    let s = &st.service;
    Ok(Json(
        s.get_room(&super::system_ctx(s, &app)?, &room)
            .await?
            .into(),
    ))
}

/// Changes a room's name or settings (as its owner).
#[utoipa::path(
    patch, path = "/v1/rooms/{room}", tag = "rooms",
    params(("room" = String, Path, description = "Room id")),
    request_body = PatchRoom,
    responses(
        (status = 200, description = "The room after the change", body = RoomJson),
        (status = 400, description = "Invalid input", body = ErrorBody),
        (status = 404, description = "No such room", body = ErrorBody),
        (status = 401, description = "Bad credentials", body = ErrorBody),
    ),
    security(("app" = []))
)]
async fn patch_room(
    AppCaller(app): AppCaller,
    State(st): State<ApiState>,
    ApiPath(room): ApiPath<String>,
    ApiJson(req): ApiJson<PatchRoom>,
) -> Result<Json<RoomJson>, ApiError> {
    let room = ids::room("room", &room)?;
    let s = &st.service;
    let (_, owner) = as_owner(s, &app, &room).await?;
    Ok(Json(s.update_room(&owner, &room, req.into()).await?.into()))
}

/// Closes a room: everyone leaves, nobody may join or send.
#[utoipa::path(
    delete, path = "/v1/rooms/{room}", tag = "rooms",
    params(("room" = String, Path, description = "Room id")),
    responses(
        (status = 200, description = "The closed room", body = RoomJson),
        (status = 404, description = "No such room", body = ErrorBody),
        (status = 401, description = "Bad credentials", body = ErrorBody),
    ),
    security(("app" = []))
)]
async fn close_room(
    AppCaller(app): AppCaller,
    State(st): State<ApiState>,
    ApiPath(room): ApiPath<String>,
) -> Result<Json<RoomJson>, ApiError> {
    let room = ids::room("room", &room)?;
    let s = &st.service;
    let (_, owner) = as_owner(s, &app, &room).await?;
    Ok(Json(s.close_room(&owner, &room).await?.into()))
}

/// A page of the users online in a room.
#[utoipa::path(
    get, path = "/v1/rooms/{room}/members", tag = "rooms",
    params(("room" = String, Path, description = "Room id"), PageQuery),
    responses(
        (status = 200, description = "Users online", body = RoomMemberPage),
        (status = 400, description = "Invalid input", body = ErrorBody),
        (status = 404, description = "No such room", body = ErrorBody),
        (status = 401, description = "Bad credentials", body = ErrorBody),
    ),
    security(("app" = []))
)]
async fn room_members(
    AppCaller(app): AppCaller,
    State(st): State<ApiState>,
    ApiPath(room): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<RoomMemberPage>, ApiError> {
    let room = ids::room("room", &room)?;
    let after = q
        .after
        .as_deref()
        .map(|a| ids::user("after", a))
        .transpose()?;
    let s = &st.service;
    let (_, users, more) = s
        .room_members(
            &super::system_ctx(s, &app)?,
            &room,
            after.as_ref(),
            q.limit.unwrap_or(0),
        )
        .await?;
    let next = if more {
        users.last().map(ToString::to_string)
    } else {
        None
    };
    Ok(Json(RoomMemberPage {
        members: users.iter().map(ToString::to_string).collect(),
        next,
    }))
}

/// Kicks, bans, unbans, mutes or unmutes a user (as the room's owner).
#[utoipa::path(
    post, path = "/v1/rooms/{room}/moderation", tag = "rooms",
    params(("room" = String, Path, description = "Room id")),
    request_body = Moderate,
    responses(
        (status = 200, description = "The room after the action", body = RoomJson),
        (status = 400, description = "Invalid input", body = ErrorBody),
        (status = 403, description = "The owner cannot be moderated", body = ErrorBody),
        (status = 404, description = "No such room", body = ErrorBody),
        (status = 401, description = "Bad credentials", body = ErrorBody),
    ),
    security(("app" = []))
)]
async fn moderate(
    AppCaller(app): AppCaller,
    State(st): State<ApiState>,
    ApiPath(room): ApiPath<String>,
    ApiJson(req): ApiJson<Moderate>,
) -> Result<Json<RoomJson>, ApiError> {
    let room = ids::room("room", &room)?;
    let user = ids::user("user", &req.user)?;
    let action = match (req.action, req.duration_ms) {
        (ModerationAction::Mute, Some(ms)) if ms > 0 => RoomAction::Mute(ms),
        (ModerationAction::Mute, _) => {
            return Err(ApiError::field(
                "duration_ms",
                "required for mute, at least 1",
            ));
        }
        (_, Some(_)) => {
            return Err(ApiError::field("duration_ms", "only for mute"));
        }
        (ModerationAction::Unmute, None) => RoomAction::Mute(0),
        (ModerationAction::Kick, None) => RoomAction::Kick,
        (ModerationAction::Ban, None) => RoomAction::Ban,
        (ModerationAction::Unban, None) => RoomAction::Unban,
    };
    let s = &st.service;
    let (_, owner) = as_owner(s, &app, &room).await?;
    Ok(Json(
        s.moderate_room(&owner, &room, &user, action).await?.into(),
    ))
}
