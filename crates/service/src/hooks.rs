//! The seam to an app's backend: asynchronous after-events and the synchronous
//! before-send hook.
//!
//! The service decides *when* an event happens and *what* a verdict means (the filter runs
//! first, then the hook; a timeout or a broken answer is resolved by the app's fail-open
//! setting); an implementation of [`Hooks`] (the `magpie-webhooks` crate: HTTP, signing,
//! the durable outbox and retries) decides how they travel. Without one, nothing is sent.

use async_trait::async_trait;
use magpie_types::Content;
use serde::Serialize;

use crate::apps::WebhookSettings;

/// Something that happened in an app, for its webhook.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HookEvent {
    /// Stable id: a retried delivery, and a re-emission of the same fact, carry the same
    /// id, so a receiver can deduplicate.
    pub id: String,
    /// One of [`crate::apps::EVENT_KINDS`].
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The app.
    pub app: String,
    /// When it happened, Unix ms.
    pub time_ms: u64,
    /// What happened (per kind).
    pub data: serde_json::Value,
}

/// A message about to be stored, for the before-send hook.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BeforeSend {
    /// The app.
    pub app: String,
    /// The sender.
    pub from: String,
    /// Where it goes: `{"user": ..}`, `{"group": ..}` or `{"room": ..}`.
    pub to: serde_json::Value,
    /// The sender's id for the message.
    pub client_msg_id: String,
    /// `text`, `image`, ...
    pub content_type: &'static str,
    /// The body: the text for text messages, else base64.
    pub body: String,
}

/// What the app's backend said about a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Store it as it is.
    Allow,
    /// Refuse it; the sender sees the reason.
    Reject(String),
    /// Store this body instead (same content type).
    Rewrite(String),
}

/// Why the before-send hook gave no verdict.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookError {
    /// The backend did not answer in time.
    #[error("the before-send hook timed out")]
    Timeout,
    /// The backend could not be reached or answered something unusable.
    #[error("the before-send hook failed: {0}")]
    Failed(String),
}

/// Delivers events and asks the before-send hook.
#[async_trait]
pub trait Hooks: Send + Sync + 'static {
    /// Queues an event for the app's webhook URL (never blocks the caller; delivery is at
    /// least once, with retries).
    fn emit(&self, event: HookEvent, settings: &WebhookSettings);

    /// Asks the app's before-send hook about `message`. The service bounds the call by the
    /// app's timeout; an implementation may return earlier with [`HookError::Timeout`].
    async fn before_send(
        &self,
        settings: &WebhookSettings,
        message: &BeforeSend,
    ) -> Result<Verdict, HookError>;
}

/// The body of `content` as the hook sees it: text as is, anything else as base64.
pub fn body_for_hook(content: &Content) -> String {
    match std::str::from_utf8(&content.body) {
        Ok(t) if content.kind == magpie_types::ContentType::Text => t.to_owned(),
        _ => {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(&content.body)
        }
    }
}
