//! A user's conversations: the list with unread counts, history pages, the read position.
//!
//! Each runs as the user (`api_ctx`), so it sees exactly what the user's own devices may
//! see: a group's history only inside the user's membership intervals.

use axum::Json;
use axum::extract::State;
use magpie_service::ConvView;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::content::MessageJson;
use crate::auth::AppCaller;
use crate::error::{ApiError, ErrorBody};
use crate::ids;
use crate::json::{ApiJson, ApiPath, ApiQuery};
use crate::state::ApiState;

/// The routes of this file.
pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_conversations))
        .routes(routes!(history))
        .routes(routes!(mark_read))
}

/// Paging and incremental sync of the conversation list.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only conversations changed since this list version (absent or 0: all).
    pub since_version: Option<u64>,
    /// Conversations with ids after this one.
    pub after: Option<String>,
    /// Most conversations to return (0 or absent: the server's page size).
    pub limit: Option<u32>,
}

/// Paging of history.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Only messages with seq below this (absent or 0: from the latest).
    pub before: Option<u64>,
    /// Most messages to return (0 or absent: the server's page size).
    pub limit: Option<u32>,
}

/// A page of the conversation list.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConversationList {
    /// Conversations ascending by id.
    pub conversations: Vec<ConversationJson>,
    /// More follow (pass the last id as `after`).
    pub has_more: bool,
    /// Pass as `since_version` next time (64-bit, as a string).
    pub version: String,
    /// Unread over every conversation that is neither muted nor hidden.
    pub total_unread: u64,
}

/// One conversation as the user sees it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConversationJson {
    /// The conversation (`p2p:a:b` or `g:group`).
    pub conversation: String,
    /// For 1:1, the other user.
    pub peer: Option<String>,
    /// For groups, the name.
    pub name: String,
    /// Still a member (always true for 1:1).
    pub active: bool,
    /// First seq the user may see.
    pub first_seq: u64,
    /// Last seq the user may see.
    pub last_seq: u64,
    /// Server time of the entry at `last_seq`, Unix ms.
    pub last_time: u64,
    /// The last message the user may see.
    pub last_message: Option<MessageJson>,
    /// Unread messages from others.
    pub unread: u64,
    /// The user's read position.
    pub read_seq: u64,
    /// An unread message mentions the user or everyone.
    pub mentioned: bool,
    /// Pinned.
    pub pinned: bool,
    /// Muted (not counted in the total).
    pub muted: bool,
    /// Hidden until something new arrives.
    pub hidden: bool,
    /// For 1:1, the other user's read position.
    pub peer_read_seq: u64,
    /// Version stamp (64-bit, as a string).
    pub version: String,
}

/// A page of history.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HistoryPage {
    /// Messages, newest first (descending seq).
    pub messages: Vec<MessageJson>,
    /// Older messages follow (pass the last seq as `before`).
    pub has_more: bool,
}

/// Where to put the read position.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkRead {
    /// Read up to this seq (absent or 0: the latest the user may see).
    pub seq: Option<u64>,
}

/// The read position after a change.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReadJson {
    /// The conversation.
    pub conversation: String,
    /// The read position now.
    pub read_seq: u64,
    /// Unread in the conversation now.
    pub unread: u64,
    /// The user's total unread now.
    pub total_unread: u64,
}

impl From<ConvView> for ConversationJson {
    fn from(v: ConvView) -> Self {
        Self {
            conversation: v.conv.to_string(),
            peer: v.peer.map(|p| p.to_string()),
            name: v.name,
            active: v.active,
            first_seq: v.first_seq,
            last_seq: v.last_seq,
            last_time: v.last_time,
            last_message: v
                .last_message
                .as_ref()
                .map(|m| MessageJson::of(m, v.last_overlay.as_ref())),
            unread: v.unread,
            read_seq: v.read_seq,
            mentioned: v.mentioned,
            pinned: v.prefs.pinned,
            muted: v.prefs.muted,
            hidden: v.hidden,
            peer_read_seq: v.peer_read_seq,
            version: v.version.to_string(),
        }
    }
}

/// The user's conversations with unread counts.
#[utoipa::path(
    get, path = "/v1/users/{user}/conversations", tag = "conversations",
    params(("user" = String, Path, description = "User id"), ListQuery),
    responses(
        (status = 200, description = "A page of the list", body = ConversationList),
        (status = 400, description = "Invalid input", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 401, description = "Bad credentials", body = ErrorBody),
    ),
    security(("app" = []))
)]
async fn list_conversations(
    AppCaller(app): AppCaller,
    State(st): State<ApiState>,
    ApiPath(user): ApiPath<String>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<ConversationList>, ApiError> {
    let user = ids::user("user", &user)?;
    let after = q
        .after
        .as_deref()
        .map(|c| ids::conv("after", c))
        .transpose()?;
    let s = &st.service;
    super::require_user(s, &app, &user).await?;
    let page = s
        .conversations(
            &super::ctx(s, &app, user),
            after.as_ref(),
            q.limit.unwrap_or(0),
            q.since_version.unwrap_or(0),
        )
        .await?;
    Ok(Json(ConversationList {
        conversations: page.conversations.into_iter().map(Into::into).collect(),
        has_more: page.has_more,
        version: page.version.to_string(),
        total_unread: page.total_unread,
    }))
}

/// A page of a conversation's history as the user may see it, newest first.
#[utoipa::path(
    get, path = "/v1/users/{user}/conversations/{conv}/messages", tag = "conversations",
    params(
        ("user" = String, Path, description = "User id"),
        ("conv" = String, Path, description = "Conversation id (`p2p:a:b` or `g:group`)"),
        HistoryQuery,
    ),
    responses(
        (status = 200, description = "Messages, newest first", body = HistoryPage),
        (status = 400, description = "Invalid input", body = ErrorBody),
        (status = 403, description = "Not a party or member", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 401, description = "Bad credentials", body = ErrorBody),
    ),
    security(("app" = []))
)]
async fn history(
    AppCaller(app): AppCaller,
    State(st): State<ApiState>,
    ApiPath((user, conv)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> Result<Json<HistoryPage>, ApiError> {
    let user = ids::user("user", &user)?;
    let conv = ids::conv("conv", &conv)?;
    let s = &st.service;
    super::require_user(s, &app, &user).await?;
    let page = s
        .history(
            &super::ctx(s, &app, user),
            &conv,
            q.before.unwrap_or(0),
            q.limit.unwrap_or(0),
        )
        .await?;
    let messages = page
        .messages
        .iter()
        .map(|m| MessageJson::of(m, page.overlays.get(&m.seq)))
        .collect();
    Ok(Json(HistoryPage {
        messages,
        has_more: page.has_more,
    }))
}

/// Marks a conversation read for the user (their devices and, for 1:1, the peer are told).
#[utoipa::path(
    post, path = "/v1/users/{user}/conversations/{conv}/read", tag = "conversations",
    params(
        ("user" = String, Path, description = "User id"),
        ("conv" = String, Path, description = "Conversation id (`p2p:a:b` or `g:group`)"),
    ),
    request_body = MarkRead,
    responses(
        (status = 200, description = "The read position now", body = ReadJson),
        (status = 400, description = "Invalid input", body = ErrorBody),
        (status = 403, description = "Not a party or member", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 401, description = "Bad credentials", body = ErrorBody),
    ),
    security(("app" = []))
)]
async fn mark_read(
    AppCaller(app): AppCaller,
    State(st): State<ApiState>,
    ApiPath((user, conv)): ApiPath<(String, String)>,
    ApiJson(req): ApiJson<MarkRead>,
) -> Result<Json<ReadJson>, ApiError> {
    let user = ids::user("user", &user)?;
    let conv = ids::conv("conv", &conv)?;
    let s = &st.service;
    super::require_user(s, &app, &user).await?;
    let out = s
        .mark_read(&super::ctx(s, &app, user), &conv, req.seq.unwrap_or(0))
        .await?;
    Ok(Json(ReadJson {
        conversation: out.conv.to_string(),
        read_seq: out.read_seq,
        unread: out.unread,
        total_unread: out.total_unread,
    }))
}
