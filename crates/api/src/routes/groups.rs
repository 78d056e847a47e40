//! Groups: create, read, change, dismiss, list, add and kick members.
//!
//! The app's backend is not a member of its groups: an operation that needs a group role
//! runs as the group's owner, read from the group (`group_info` as the system).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use magpie_service::{CreateGroup, GroupInfo, Service, SessionCtx, UpdateGroup};
use magpie_types::{AppId, GroupId, JoinPolicy, Role};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::AppCaller;
use crate::error::{ApiError, ErrorBody};
use crate::ids;
use crate::json::{ApiJson, ApiPath, ApiQuery};
use crate::state::ApiState;

/// The routes of this file.
pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(create_group))
        .routes(routes!(get_group, patch_group, dismiss_group))
        .routes(routes!(list_members, add_members))
        .routes(routes!(kick_member))
}

/// Who may join a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JoinPolicyJson {
    /// Anyone in the app may join.
    Open,
    /// A join is a request an admin approves.
    Approval,
    /// Only invitations add people.
    Invite,
}

/// A group member's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RoleJson {
    /// The owner.
    Owner,
    /// An admin.
    Admin,
    /// An ordinary member.
    Member,
}

/// A group to create.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateGroupJson {
    /// The id (absent: the server picks one).
    pub id: Option<String>,
    /// The owner (an existing user).
    pub owner: String,
    /// Display name.
    pub name: String,
    /// Initial members besides the owner.
    pub members: Option<Vec<String>>,
    /// Avatar URL.
    pub avatar_url: Option<String>,
    /// The notice.
    pub notice: Option<String>,
    /// Free-form data set by the app: a string is kept as it is, any other JSON value as
    /// its compact text.
    pub custom: Option<serde_json::Value>,
    /// Who may join (default `open`).
    pub join_policy: Option<JoinPolicyJson>,
    /// A super group (the large member limit).
    pub super_group: Option<bool>,
}

/// Profile and policy fields to change (absent: unchanged).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchGroup {
    /// Display name.
    pub name: Option<String>,
    /// Avatar URL.
    pub avatar_url: Option<String>,
    /// The notice.
    pub notice: Option<String>,
    /// Free-form data set by the app: a string is kept as it is, any other JSON value as
    /// its compact text.
    pub custom: Option<serde_json::Value>,
    /// Who may join.
    pub join_policy: Option<JoinPolicyJson>,
}

/// A group.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GroupJson {
    /// The id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Avatar URL.
    pub avatar_url: String,
    /// The notice.
    pub notice: String,
    /// Free-form text set by the app.
    pub custom: String,
    /// The owner.
    pub owner: String,
    /// Who may join.
    pub join_policy: JoinPolicyJson,
    /// Only admins may speak.
    pub muted_all: bool,
    /// Dismissed (history is read-only).
    pub dismissed: bool,
    /// A super group.
    pub super_group: bool,
    /// Current members.
    pub member_count: u32,
    /// Creation time, Unix ms.
    pub created_ms: u64,
}

/// Users to add.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMembers {
    /// The users (existing users of the app).
    pub users: Vec<String>,
}

/// A page of members.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MemberPage {
    /// Members ascending by id.
    pub members: Vec<MemberJson>,
    /// Pass as `after` for the next page (`null`: this was the last).
    pub next: Option<String>,
}

/// One member.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MemberJson {
    /// The user.
    pub user: String,
    /// The role.
    pub role: RoleJson,
    /// Muted until this Unix ms (0: not muted).
    pub muted_until_ms: u64,
}

/// Paging of a member list.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Members with ids after this one.
    pub after: Option<String>,
    /// Most members to return (0 or absent: the server's page size).
    pub limit: Option<u32>,
}

impl From<JoinPolicyJson> for JoinPolicy {
    fn from(p: JoinPolicyJson) -> Self {
        match p {
            JoinPolicyJson::Open => Self::Open,
            JoinPolicyJson::Approval => Self::Approval,
            JoinPolicyJson::Invite => Self::Invite,
        }
    }
}

impl From<JoinPolicy> for JoinPolicyJson {
    fn from(p: JoinPolicy) -> Self {
        match p {
            JoinPolicy::Open => Self::Open,
            JoinPolicy::Approval => Self::Approval,
            JoinPolicy::Invite => Self::Invite,
        }
    }
}

impl From<Role> for RoleJson {
    fn from(r: Role) -> Self {
        match r {
            Role::Owner => Self::Owner,
            Role::Admin => Self::Admin,
            Role::Member => Self::Member,
        }
    }
}

impl From<GroupInfo> for GroupJson {
    fn from(g: GroupInfo) -> Self {
        let r = g.record;
        Self {
            id: g.id.to_string(),
            join_policy: r.policy().into(),
            name: r.name,
            avatar_url: r.avatar_url,
            notice: r.notice,
            custom: r.custom,
            owner: r.owner,
            muted_all: r.muted_all,
            dismissed: r.dismissed,
            super_group: r.super_group,
            member_count: r.member_count,
            created_ms: r.created_ms,
        }
    }
}

/// The group, and the context of its owner.
async fn as_owner(
    s: &Service,
    app: &AppId,
    group: &GroupId,
) -> Result<(GroupInfo, SessionCtx), ApiError> {
    let info = s.group_info(&super::system_ctx(s, app)?, group).await?;
    let owner =
        magpie_types::UserId::new(info.record.owner.as_str()).map_err(ApiError::internal)?;
    Ok((info, super::ctx(s, app, owner)))
}

/// Creates a group owned by `owner`.
#[utoipa::path(
    post, path = "/v1/groups", tag = "groups",
    request_body = CreateGroupJson,
    responses(
        (status = 201, description = "Created", body = GroupJson),
        (status = 400, description = "Invalid input", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "The group exists", body = ErrorBody),
        (status = 422, description = "Too many members", body = ErrorBody),
        (status = 401, description = "Bad credentials", body = ErrorBody),
    ),
    security(("app" = []))
)]
async fn create_group(
    AppCaller(app): AppCaller,
    State(st): State<ApiState>,
    ApiJson(req): ApiJson<CreateGroupJson>,
) -> Result<(StatusCode, Json<GroupJson>), ApiError> {
    let s = &st.service;
    let owner = ids::user("owner", &req.owner)?;
    let id = req.id.as_deref().map(|g| ids::group("id", g)).transpose()?;
    let members = ids::users("members", req.members.as_deref().unwrap_or_default())?;
    let create = CreateGroup {
        id,
        name: req.name,
        members,
        join_policy: req.join_policy.map(Into::into).unwrap_or_default(),
        super_group: req.super_group.unwrap_or(false),
        avatar_url: req.avatar_url.unwrap_or_default(),
        notice: req.notice.unwrap_or_default(),
        custom: super::custom_text(req.custom).unwrap_or_default(),
        members_can_invite: false,
    };
    let out = s.create_group(&super::ctx(s, &app, owner), create).await?;
    Ok((StatusCode::CREATED, Json(out.group.into())))
}

/// A group.
#[utoipa::path(
    get, path = "/v1/groups/{group}", tag = "groups",
    params(("group" = String, Path, description = "Group id")),
    responses(
        (status = 200, description = "The group", body = GroupJson),
        (status = 404, description = "No such group", body = ErrorBody),
        (status = 401, description = "Bad credentials", body = ErrorBody),
    ),
    security(("app" = []))
)]
async fn get_group(
    AppCaller(app): AppCaller,
    State(st): State<ApiState>,
    ApiPath(group): ApiPath<String>,
) -> Result<Json<GroupJson>, ApiError> {
    let group = ids::group("group", &group)?;
    let s = &st.service;
    Ok(Json(
        s.group_info(&super::system_ctx(s, &app)?, &group)
            .await?
            .into(),
    ))
}

/// Changes a group's profile or join policy (as its owner).
#[utoipa::path(
    patch, path = "/v1/groups/{group}", tag = "groups",
    params(("group" = String, Path, description = "Group id")),
    request_body = PatchGroup,
    responses(
        (status = 200, description = "The group after the change", body = GroupJson),
        (status = 400, description = "Invalid input", body = ErrorBody),
        (status = 403, description = "The group was dismissed", body = ErrorBody),
        (status = 404, description = "No such group", body = ErrorBody),
        (status = 401, description = "Bad credentials", body = ErrorBody),
    ),
    security(("app" = []))
)]
async fn patch_group(
    AppCaller(app): AppCaller,
    State(st): State<ApiState>,
    ApiPath(group): ApiPath<String>,
    ApiJson(req): ApiJson<PatchGroup>,
) -> Result<Json<GroupJson>, ApiError> {
    let group = ids::group("group", &group)?;
    let s = &st.service;
    let (_, owner) = as_owner(s, &app, &group).await?;
    let change = UpdateGroup {
        name: req.name,
        avatar_url: req.avatar_url,
        notice: req.notice,
        custom: super::custom_text(req.custom),
        join_policy: req.join_policy.map(Into::into),
        members_can_invite: None,
    };
    let out = s.update_group(&owner, &group, change).await?;
    Ok(Json(out.group.into()))
}

/// Dismisses a group (as its owner): its history stays, read-only.
#[utoipa::path(
    delete, path = "/v1/groups/{group}", tag = "groups",
    params(("group" = String, Path, description = "Group id")),
    responses(
        (status = 200, description = "The dismissed group", body = GroupJson),
        (status = 403, description = "Already dismissed", body = ErrorBody),
        (status = 404, description = "No such group", body = ErrorBody),
        (status = 401, description = "Bad credentials", body = ErrorBody),
    ),
    security(("app" = []))
)]
async fn dismiss_group(
    AppCaller(app): AppCaller,
    State(st): State<ApiState>,
    ApiPath(group): ApiPath<String>,
) -> Result<Json<GroupJson>, ApiError> {
    let group = ids::group("group", &group)?;
    let s = &st.service;
    let (_, owner) = as_owner(s, &app, &group).await?;
    Ok(Json(s.dismiss_group(&owner, &group).await?.group.into()))
}

/// A page of a group's current members.
#[utoipa::path(
    get, path = "/v1/groups/{group}/members", tag = "groups",
    params(("group" = String, Path, description = "Group id"), PageQuery),
    responses(
        (status = 200, description = "Members", body = MemberPage),
        (status = 400, description = "Invalid input", body = ErrorBody),
        (status = 404, description = "No such group", body = ErrorBody),
        (status = 401, description = "Bad credentials", body = ErrorBody),
    ),
    security(("app" = []))
)]
async fn list_members(
    AppCaller(app): AppCaller,
    State(st): State<ApiState>,
    ApiPath(group): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<MemberPage>, ApiError> {
    let group = ids::group("group", &group)?;
    let after = q
        .after
        .as_deref()
        .map(|a| ids::user("after", a))
        .transpose()?;
    let s = &st.service;
    let (_, owner) = as_owner(s, &app, &group).await?;
    let out = s
        .group_members(&owner, &group, after, q.limit.unwrap_or(0))
        .await?;
    let next = if out.has_more {
        out.members.last().map(|(u, _)| u.to_string())
    } else {
        None
    };
    let members = out
        .members
        .into_iter()
        .map(|(u, m)| MemberJson {
            user: u.to_string(),
            role: m.role().into(),
            muted_until_ms: m.muted_until_ms,
        })
        .collect();
    Ok(Json(MemberPage { members, next }))
}

/// Adds members (as the group's owner; no acceptance needed).
#[utoipa::path(
    post, path = "/v1/groups/{group}/members", tag = "groups",
    params(("group" = String, Path, description = "Group id")),
    request_body = AddMembers,
    responses(
        (status = 200, description = "The group after the change", body = GroupJson),
        (status = 400, description = "Invalid input", body = ErrorBody),
        (status = 404, description = "No such group or user", body = ErrorBody),
        (status = 422, description = "The group is full", body = ErrorBody),
        (status = 401, description = "Bad credentials", body = ErrorBody),
    ),
    security(("app" = []))
)]
async fn add_members(
    AppCaller(app): AppCaller,
    State(st): State<ApiState>,
    ApiPath(group): ApiPath<String>,
    ApiJson(req): ApiJson<AddMembers>,
) -> Result<Json<GroupJson>, ApiError> {
    let group = ids::group("group", &group)?;
    let users = ids::users("users", &req.users)?;
    let s = &st.service;
    let (_, owner) = as_owner(s, &app, &group).await?;
    Ok(Json(
        s.add_members(&owner, &group, users).await?.group.into(),
    ))
}

/// Removes a member (as the group's owner; the owner cannot be removed).
#[utoipa::path(
    delete, path = "/v1/groups/{group}/members/{user}", tag = "groups",
    params(
        ("group" = String, Path, description = "Group id"),
        ("user" = String, Path, description = "User id"),
    ),
    responses(
        (status = 200, description = "The group after the change", body = GroupJson),
        (status = 400, description = "The owner cannot be removed", body = ErrorBody),
        (status = 404, description = "No such group or member", body = ErrorBody),
        (status = 401, description = "Bad credentials", body = ErrorBody),
    ),
    security(("app" = []))
)]
async fn kick_member(
    AppCaller(app): AppCaller,
    State(st): State<ApiState>,
    ApiPath((group, user)): ApiPath<(String, String)>,
) -> Result<Json<GroupJson>, ApiError> {
    let group = ids::group("group", &group)?;
    let user = ids::user("user", &user)?;
    let s = &st.service;
    let (info, owner) = as_owner(s, &app, &group).await?;
    if info.record.owner == user.as_str() {
        return Err(ApiError::field(
            "user",
            "the owner cannot be removed; transfer the group or dismiss it",
        ));
    }
    Ok(Json(
        s.kick_members(&owner, &group, vec![user])
            .await?
            .group
            .into(),
    ))
}
