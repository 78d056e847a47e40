//! What a message passes before it is stored, and the events it leaves behind.
//!
//! Screening runs in a fixed order: the app's word filter (reject, or mask the words), then
//! the app's before-send hook (allow, reject with a reason the sender sees, or rewrite),
//! bounded by the app's timeout; no verdict in time resolves by the app's fail-open
//! setting. Only then is the message validated for size once more and stored, so whatever
//! is stored is what every recipient sees.

use std::time::Duration;

use magpie_core::ErrorKind;
use magpie_core::filter::Filtered;
use magpie_types::{AppId, Content, ContentType, ConvId, GroupId, RoomId, UserId};
use serde_json::json;

use crate::accounts::SYSTEM_USER;
use crate::error::ServiceError;
use crate::hooks::{BeforeSend, HookError, HookEvent, Verdict, body_for_hook};
use crate::messaging::Service;
use crate::sessions::SessionCtx;

/// Where a message goes, for screening.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// A 1:1 chat with this user.
    User(&'a UserId),
    /// A group.
    Group(&'a GroupId),
    /// A live room.
    Room(&'a RoomId),
    /// An existing conversation (an edit).
    Conversation(&'a ConvId),
}

impl Target<'_> {
    fn json(self) -> serde_json::Value {
        match self {
            Self::User(u) => json!({ "user": u.as_str() }),
            Self::Group(g) => json!({ "group": g.as_str() }),
            Self::Room(r) => json!({ "room": r.as_str() }),
            Self::Conversation(c) => json!({ "conversation": c.to_string() }),
        }
    }
}

fn rejected(msg: impl Into<String>) -> ServiceError {
    ServiceError::new(ErrorKind::ContentRejected, msg)
}

impl Service {
    /// Whether `who` is the app's backend speaking as the system (never a connection:
    /// logins as [`SYSTEM_USER`] are refused).
    pub fn is_system(who: &SessionCtx) -> bool {
        who.conn_id == 0 && who.user.as_str() == SYSTEM_USER
    }

    /// Runs the word filter and the before-send hook over `content`; returns what to
    /// store.
    pub async fn screen(
        &self,
        who: &SessionCtx,
        to: Target<'_>,
        client_msg_id: &str,
        mut content: Content,
    ) -> Result<Content, ServiceError> {
        let Some(app) = self.apps().get(&who.app) else {
            return Ok(content);
        };
        let hooks_cfg = &app.config.settings.webhooks;
        if app.filter.is_none() && hooks_cfg.before_send_url.is_none() {
            return Ok(content);
        }
        // A retry of a stored message gets its original ack from the append's dedup, even
        // if the filter or the hook would answer differently now (settings change, a hook
        // that is down): what was accepted stays accepted. Rooms keep no such index.
        if !matches!(to, Target::Room(_))
            && let Ok(id) = magpie_types::ClientMsgId::new(client_msg_id)
            && self
                .store
                .original(&who.app, &who.user, &id)
                .await?
                .is_some()
        {
            return Ok(content);
        }
        if let Some(filter) = &app.filter
            && content.kind == ContentType::Text
            && let Ok(text) = std::str::from_utf8(&content.body)
        {
            match filter.apply(text) {
                Filtered::Clean => {}
                Filtered::Masked(masked) => {
                    metrics::counter!("magpie_filter_matches_total", "action" => "mask")
                        .increment(1);
                    content.body = masked.into_bytes();
                }
                Filtered::Rejected(list) => {
                    metrics::counter!("magpie_filter_matches_total", "action" => "reject")
                        .increment(1);
                    return Err(rejected(format!(
                        "the message contains words the app does not allow (list {list:?})"
                    )));
                }
            }
        }
        let wanted = hooks_cfg.before_send_url.is_some()
            && (hooks_cfg.before_send_rooms || !matches!(to, Target::Room(_)));
        let Some(hooks) = self.hooks.get().filter(|_| wanted) else {
            return Ok(content);
        };
        let ask = BeforeSend {
            app: who.app.to_string(),
            from: who.user.to_string(),
            to: to.json(),
            client_msg_id: client_msg_id.to_owned(),
            content_type: content.kind.name(),
            body: body_for_hook(&content),
        };
        let timeout = Duration::from_millis(hooks_cfg.before_send_timeout_ms);
        let started = std::time::Instant::now();
        let verdict = match tokio::time::timeout(timeout, hooks.before_send(hooks_cfg, &ask)).await
        {
            Ok(v) => v,
            Err(_) => Err(HookError::Timeout),
        };
        metrics::histogram!("magpie_before_send_seconds").record(started.elapsed().as_secs_f64());
        let outcome = match &verdict {
            Ok(Verdict::Allow) => "allow",
            Ok(Verdict::Reject(_)) => "reject",
            Ok(Verdict::Rewrite(_)) => "rewrite",
            Err(HookError::Timeout) => "timeout",
            Err(HookError::Failed(_)) => "error",
        };
        metrics::counter!("magpie_before_send_total", "outcome" => outcome).increment(1);
        match verdict {
            Ok(Verdict::Allow) => Ok(content),
            Ok(Verdict::Reject(reason)) => Err(rejected(if reason.is_empty() {
                "the app refused the message".to_owned()
            } else {
                reason
            })),
            Ok(Verdict::Rewrite(body)) => {
                content.body = if content.kind == ContentType::Text {
                    body.into_bytes()
                } else {
                    use base64::Engine as _;
                    base64::engine::general_purpose::STANDARD
                        .decode(body)
                        .map_err(|_| {
                            ServiceError::new(
                                ErrorKind::Unavailable,
                                "the before-send hook rewrote a non-text body with bad base64",
                            )
                        })?
                };
                magpie_core::send::validate_content(self.limits(), &content)
                    .map_err(|e| ServiceError::new(e.kind(), format!("after rewrite: {e}")))?;
                Ok(content)
            }
            Err(e) if hooks_cfg.before_send_fail_open => {
                tracing::warn!(app = %who.app, error = %e, "before-send hook failed; allowing (fail-open)");
                Ok(content)
            }
            Err(e) => {
                tracing::warn!(app = %who.app, error = %e, "before-send hook failed; refusing (fail-closed)");
                Err(ServiceError::new(
                    ErrorKind::Unavailable,
                    format!("the message could not be checked ({e}); retry later"),
                ))
            }
        }
    }

    /// Queues a webhook event of `kind` for `app`, if the app wants it. `event` makes the
    /// event's id and data, and runs only then: every send passes here, and most apps
    /// want no events.
    pub fn emit(
        &self,
        app: &AppId,
        kind: &'static str,
        event: impl FnOnce() -> (String, serde_json::Value),
    ) {
        let Some(hooks) = self.hooks.get() else {
            return;
        };
        let Some(a) = self.apps().get(app) else {
            return;
        };
        let settings = &a.config.settings.webhooks;
        if !settings.wants(kind) {
            return;
        }
        let (id, data) = event();
        hooks.emit(
            HookEvent {
                id,
                kind,
                app: app.to_string(),
                time_ms: self.now_ms(),
                data,
            },
            settings,
        );
    }

    /// Emits `message.sent` for a freshly stored message.
    pub(crate) fn emit_sent(&self, app: &AppId, msg: &magpie_store::StoredMessage) {
        self.emit(app, "message.sent", || {
            (
                format!("message.sent:{}", msg.msg_id),
                json!({
                    "msg_id": msg.msg_id.to_string(),
                    "conversation": msg.conv.to_string(),
                    "seq": msg.seq,
                    "from": msg.from_user.as_str(),
                    "client_msg_id": msg.client_msg_id.as_str(),
                    "content_type": msg.content.kind.name(),
                    "body": body_for_hook(&msg.content),
                    "server_time": msg.server_time,
                }),
            )
        });
    }
}
