//! Sending: as a user or as the system (`from` absent), to a user, a group or a room.
//!
//! Every send has a client message id, the key of the message store's deduplication: the
//! request's own, else one derived from the `Idempotency-Key` (so a retried request is
//! deduplicated by the store too, even after its remembered answer expired), else a random
//! one.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use magpie_types::{ClientMsgId, Priority};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::content::ContentJson;
use crate::auth::AppCaller;
use crate::error::{ApiError, ErrorBody};
use crate::idempotency::request_key;
use crate::ids;
use crate::json::ApiJson;
use crate::state::ApiState;

/// The routes of this file.
pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(send_message))
}

/// Where a message goes: exactly one of `user`, `group`, `room`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum SendTarget {
    /// A 1:1 message to this user.
    User(String),
    /// A message to this group.
    Group(String),
    /// A message to this live room.
    Room(String),
}

/// A room message's priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PriorityJson {
    /// Reliable: numbered and retransmitted.
    High,
    /// Chat (best effort).
    Normal,
    /// Likes, bullet comments (dropped first).
    Low,
}

/// A message to send.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendMessage {
    /// The sender (absent: the system, user `@system`, which needs no membership).
    pub from: Option<String>,
    /// The recipient.
    pub to: SendTarget,
    /// The sender's id for the message (absent: derived from the `Idempotency-Key`, or
    /// random).
    pub client_msg_id: Option<String>,
    /// The content.
    pub content: ContentJson,
    /// Rooms only: the priority (default: high for the system and room admins, normal
    /// for others).
    pub priority: Option<PriorityJson>,
    /// Groups only: users mentioned.
    pub mentions: Option<Vec<String>>,
    /// Groups only: mention everyone.
    pub mention_all: Option<bool>,
    /// Users and groups: the seq of the message replied to.
    pub reply_to: Option<u64>,
}

/// The acknowledgement of a 1:1 or group send.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MessageSent {
    /// The server's id (64-bit, as a string).
    pub msg_id: String,
    /// The conversation (`p2p:a:b` or `g:group`).
    pub conversation: String,
    /// Position in the conversation.
    pub seq: u64,
    /// Acceptance time, Unix ms.
    pub server_time: u64,
    /// This answers a retry of a message already stored.
    pub duplicate: bool,
}

/// The acknowledgement of a room send.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RoomMessageSent {
    /// The room.
    pub room: String,
    /// The server's id (64-bit, as a string).
    pub msg_id: String,
    /// The reliable seq (high priority only; 0 for best effort).
    pub seq: u64,
    /// The priority it was sent with.
    pub priority: PriorityJson,
    /// This answers a retry of a reliable message still in the room's log.
    pub duplicate: bool,
}

/// The acknowledgement of a send.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum SendResult {
    /// To a user or a group.
    Message(MessageSent),
    /// To a room.
    Room(RoomMessageSent),
}

impl From<PriorityJson> for Priority {
    fn from(p: PriorityJson) -> Self {
        match p {
            PriorityJson::High => Self::High,
            PriorityJson::Normal => Self::Normal,
            PriorityJson::Low => Self::Low,
        }
    }
}

impl From<Priority> for PriorityJson {
    fn from(p: Priority) -> Self {
        match p {
            Priority::High => Self::High,
            Priority::Normal => Self::Normal,
            Priority::Low => Self::Low,
        }
    }
}

/// Sends a message as a user or as the system.
#[utoipa::path(
    post, path = "/v1/messages", tag = "messages",
    request_body = SendMessage,
    responses(
        (status = 200, description = "Stored (or, for rooms, accepted)", body = SendResult),
        (status = 400, description = "Invalid input", body = ErrorBody),
        (status = 403, description = "Not allowed (not a member, muted, blocked, banned)", body = ErrorBody),
        (status = 404, description = "No such sender or recipient", body = ErrorBody),
        (status = 413, description = "Content too large", body = ErrorBody),
        (status = 422, description = "Content rejected", body = ErrorBody),
        (status = 429, description = "Rate limited or slow mode", body = ErrorBody),
        (status = 401, description = "Bad credentials", body = ErrorBody),
    ),
    security(("app" = []))
)]
async fn send_message(
    AppCaller(app): AppCaller,
    State(st): State<ApiState>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<SendMessage>,
) -> Result<Json<SendResult>, ApiError> {
    let s = &st.service;
    let (from, is_system) = match &req.from {
        Some(f) => {
            let u = ids::user("from", f)?;
            let system = u == super::system_user()?;
            (u, system)
        }
        None => (super::system_user()?, true),
    };
    if !is_system {
        super::require_user(s, &app, &from).await?;
    }
    let ctx = super::ctx(s, &app, from);
    let client_msg_id = client_msg_id(req.client_msg_id.as_deref(), &headers)?;
    let content = req.content.into_content("content")?;
    let not_for =
        |field: &str, what: &str| ApiError::field(field, format!("not allowed for {what}"));
    match req.to {
        SendTarget::User(to) => {
            let to = ids::user("to.user", &to)?;
            if req.priority.is_some() {
                return Err(not_for("priority", "1:1 messages"));
            }
            if req.mentions.is_some() || req.mention_all.is_some() {
                return Err(not_for("mentions", "1:1 messages"));
            }
            let id = client_msg_id.map_or_else(random_client_msg_id, Ok)?;
            let ack = s
                .send_direct_reply(&ctx, to, id, content, req.reply_to.unwrap_or(0))
                .await?;
            Ok(Json(SendResult::Message(MessageSent {
                msg_id: ack.msg_id.to_string(),
                conversation: ack.conv.to_string(),
                seq: ack.seq,
                server_time: ack.server_time,
                duplicate: ack.duplicate,
            })))
        }
        SendTarget::Group(g) => {
            let group = ids::group("to.group", &g)?;
            if req.priority.is_some() {
                return Err(not_for("priority", "group messages"));
            }
            let mentions = ids::users("mentions", req.mentions.as_deref().unwrap_or_default())?;
            let id = client_msg_id.map_or_else(random_client_msg_id, Ok)?;
            let ack = s
                .send_group(
                    &ctx,
                    &group,
                    id,
                    content,
                    mentions,
                    req.mention_all.unwrap_or(false),
                    req.reply_to.unwrap_or(0),
                )
                .await?;
            Ok(Json(SendResult::Message(MessageSent {
                msg_id: ack.msg_id.to_string(),
                conversation: ack.conv.to_string(),
                seq: ack.seq,
                server_time: ack.server_time,
                duplicate: ack.duplicate,
            })))
        }
        SendTarget::Room(r) => {
            let room = ids::room("to.room", &r)?;
            if req.mentions.is_some() || req.mention_all.is_some() {
                return Err(not_for("mentions", "room messages"));
            }
            if req.reply_to.is_some() {
                return Err(not_for("reply_to", "room messages"));
            }
            let ack = s
                .send_room(
                    &ctx,
                    &room,
                    content,
                    req.priority.map(Priority::from),
                    client_msg_id,
                )
                .await?;
            Ok(Json(SendResult::Room(RoomMessageSent {
                room: room.to_string(),
                msg_id: ack.msg_id.to_string(),
                seq: ack.seq,
                priority: ack.priority.into(),
                duplicate: ack.duplicate,
            })))
        }
    }
}

/// The request's client message id: its own, else one derived from its Idempotency-Key.
fn client_msg_id(
    given: Option<&str>,
    headers: &HeaderMap,
) -> Result<Option<ClientMsgId>, ApiError> {
    if let Some(id) = given {
        return ids::client_msg_id("client_msg_id", id).map(Some);
    }
    let Some(key) = request_key(headers)? else {
        return Ok(None);
    };
    // A digest, not the key itself: a key may hold characters an id may not, and may be
    // longer. 128 bits keep distinct keys apart.
    let digest = Sha256::digest(key.as_bytes());
    let id = format!("idem-{}", hex::encode(&digest[..16]));
    ids::client_msg_id("Idempotency-Key", &id).map(Some)
}

/// A fresh client message id for a send that named none (128 random bits).
fn random_client_msg_id() -> Result<ClientMsgId, ApiError> {
    let n: u128 = rand::rng().random();
    ClientMsgId::new(format!("api-{n:032x}")).map_err(ApiError::internal)
}
