//! Message content and stored messages as JSON.
//!
//! Content is `{"type", "text"?, "body_base64"?, "metadata"?}`: text content travels as
//! `text`, anything else (or text that is not UTF-8) as `body_base64`. Message ids are
//! 64-bit and travel as strings, which JavaScript reads without losing digits.

use std::collections::BTreeMap;

use base64::Engine as _;
use magpie_service::ops::Overlay;
use magpie_store::StoredMessage;
use magpie_types::{Content, ContentType, EntryKind};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;

/// How to interpret a message's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ContentKind {
    /// UTF-8 text.
    Text,
    /// An image reference.
    Image,
    /// A file reference.
    File,
    /// An audio clip reference.
    Audio,
    /// A video reference.
    Video,
    /// A location.
    Location,
    /// Application-defined.
    Custom,
}

/// Message content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContentJson {
    /// How to interpret the body.
    #[serde(rename = "type")]
    pub kind: ContentKind,
    /// The body as text (give this or `body_base64`, not both).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The body as standard base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_base64: Option<String>,
    /// Application metadata.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

/// A stored message (or other log entry) as a reader sees it now.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MessageJson {
    /// The server's id (64-bit, as a string).
    pub msg_id: String,
    /// The conversation.
    pub conversation: String,
    /// Position in the conversation.
    pub seq: u64,
    /// The sender (`@system` for the app's backend speaking as the system).
    pub from: String,
    /// The sender's device.
    pub device: String,
    /// The sender's id for the message.
    pub client_msg_id: String,
    /// What the entry is: `message`, `group_event`, `recall`, `edit` or `reaction`.
    pub kind: String,
    /// The content as it stands now (`null` once recalled).
    pub content: Option<ContentJson>,
    /// Acceptance time, Unix ms.
    pub server_time: u64,
    /// Users mentioned.
    pub mentions: Vec<String>,
    /// Everyone is mentioned.
    pub mention_all: bool,
    /// The seq replied to or acted on (0: none).
    pub reply_to: u64,
    /// Recalled since it was sent.
    pub recalled: bool,
    /// Edited since it was sent (the content is the edited one).
    pub edited: bool,
}

impl From<ContentKind> for ContentType {
    fn from(k: ContentKind) -> Self {
        match k {
            ContentKind::Text => Self::Text,
            ContentKind::Image => Self::Image,
            ContentKind::File => Self::File,
            ContentKind::Audio => Self::Audio,
            ContentKind::Video => Self::Video,
            ContentKind::Location => Self::Location,
            ContentKind::Custom => Self::Custom,
        }
    }
}

impl From<ContentType> for ContentKind {
    fn from(k: ContentType) -> Self {
        match k {
            ContentType::Text => Self::Text,
            ContentType::Image => Self::Image,
            ContentType::File => Self::File,
            ContentType::Audio => Self::Audio,
            ContentType::Video => Self::Video,
            ContentType::Location => Self::Location,
            ContentType::Custom => Self::Custom,
        }
    }
}

impl ContentJson {
    /// The domain content; errors name fields under `field` (e.g. `content.text`).
    pub fn into_content(self, field: &str) -> Result<Content, ApiError> {
        let body = match (self.text, self.body_base64) {
            (Some(_), Some(_)) => {
                return Err(ApiError::field(field, "give text or body_base64, not both"));
            }
            (Some(t), None) => t.into_bytes(),
            (None, Some(b)) => base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .map_err(|e| ApiError::field(&format!("{field}.body_base64"), e))?,
            (None, None) => Vec::new(),
        };
        Ok(Content {
            kind: self.kind.into(),
            body,
            metadata: self.metadata,
        })
    }

    /// The JSON form of `c`.
    pub fn of(c: &Content) -> Self {
        let (text, body_base64) = match std::str::from_utf8(&c.body) {
            Ok(t) if c.kind == ContentType::Text => (Some(t.to_owned()), None),
            _ => (
                None,
                Some(base64::engine::general_purpose::STANDARD.encode(&c.body)),
            ),
        };
        Self {
            kind: c.kind.into(),
            text,
            body_base64,
            metadata: c.metadata.clone(),
        }
    }
}

/// The name of an entry kind.
pub fn kind_name(k: EntryKind) -> &'static str {
    match k {
        EntryKind::Message => "message",
        EntryKind::GroupEvent => "group_event",
        EntryKind::Recall => "recall",
        EntryKind::Edit => "edit",
        EntryKind::Reaction => "reaction",
    }
}

impl MessageJson {
    /// The JSON form of `m`, as `overlay` says it stands now.
    pub fn of(m: &StoredMessage, overlay: Option<&Overlay>) -> Self {
        let (content, recalled, edited) = match overlay {
            Some(Overlay::Recalled) => (None, true, false),
            Some(Overlay::Edited(c)) => (Some(ContentJson::of(c)), false, true),
            None => (Some(ContentJson::of(&m.content)), false, false),
        };
        Self {
            msg_id: m.msg_id.to_string(),
            conversation: m.conv.to_string(),
            seq: m.seq,
            from: m.from_user.to_string(),
            device: m.from_device.to_string(),
            client_msg_id: m.client_msg_id.to_string(),
            kind: kind_name(m.kind).to_owned(),
            content,
            server_time: m.server_time,
            mentions: m.mentions.iter().map(ToString::to_string).collect(),
            mention_all: m.mention_all,
            reply_to: m.reply_to,
            recalled,
            edited,
        }
    }
}
