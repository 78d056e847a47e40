//! The synchronous before-send hook: one signed POST per message, answered with a verdict.
//!
//! The service owns the policy (it bounds the call by the app's timeout as well, and
//! resolves a missing verdict by the app's fail-open setting); this module only turns
//! the exchange into a [`Verdict`] or a [`HookError`]. Every way the backend can fail to
//! give a clear verdict is an error, never a silent allow.

use std::time::Duration;

use bytes::Bytes;
use magpie_service::apps::WebhookSettings;
use magpie_service::hooks::{BeforeSend, HookError, Verdict};
use reqwest::Client;
use serde::Deserialize;

use crate::client::{self, ReadError, Signed};

/// The event type the hook's requests carry.
pub const BEFORE_SEND_EVENT: &str = "message.before_send";

/// The longest answer read: a rewritten body plus JSON, with room to spare (a message
/// body is far smaller).
const MAX_ANSWER: usize = 1 << 20;

/// Asks `settings.before_send_url` about `message`. Without a URL there is no one to ask,
/// and the message is allowed (the service does not call the hook then).
pub(crate) async fn ask(
    http: &Client,
    settings: &WebhookSettings,
    message: &BeforeSend,
) -> Result<Verdict, HookError> {
    let Some(url) = settings.before_send_url.as_deref() else {
        return Ok(Verdict::Allow);
    };
    let body = serde_json::to_vec(message)
        .map_err(|e| HookError::Failed(format!("the request could not be encoded: {e}")))?;
    // Stable across retries of the same send, like every other event id.
    let id = format!(
        "{BEFORE_SEND_EVENT}:{}:{}:{}",
        message.app, message.from, message.client_msg_id
    );
    let resp = client::post(
        http,
        Signed {
            url,
            secret: &settings.signing_secret,
            id: &id,
            kind: BEFORE_SEND_EVENT,
            body: Bytes::from(body),
            timeout: Duration::from_millis(settings.before_send_timeout_ms),
        },
    )
    .await
    .map_err(http_error)?;
    let status = resp.status();
    if !status.is_success() {
        client::discard(resp, MAX_ANSWER).await;
        return Err(HookError::Failed(format!(
            "the hook answered HTTP {status}"
        )));
    }
    let answer = client::read_limited(resp, MAX_ANSWER)
        .await
        .map_err(|e| match e {
            ReadError::TooLarge => {
                HookError::Failed(format!("the answer is larger than {MAX_ANSWER} bytes"))
            }
            ReadError::Http(e) => http_error(e),
        })?;
    parse_verdict(&answer)
}

/// The answer's JSON.
#[derive(Debug, Deserialize)]
#[serde(tag = "action", rename_all = "lowercase")]
enum Answer {
    Allow,
    Reject {
        #[serde(default)]
        reason: String,
    },
    Rewrite {
        body: String,
    },
}

/// Parses `{"action":"allow"}`, `{"action":"reject","reason":".."}` or
/// `{"action":"rewrite","body":".."}`. Unknown actions, missing fields and bad JSON are
/// errors: a backend that answers something else has not approved the message.
pub(crate) fn parse_verdict(answer: &[u8]) -> Result<Verdict, HookError> {
    match serde_json::from_slice::<Answer>(answer) {
        Ok(Answer::Allow) => Ok(Verdict::Allow),
        Ok(Answer::Reject { reason }) => Ok(Verdict::Reject(reason)),
        Ok(Answer::Rewrite { body }) => Ok(Verdict::Rewrite(body)),
        Err(e) => Err(HookError::Failed(format!("unusable answer: {e}"))),
    }
}

/// A transport error as a hook error. The URL is left out of the message: it is the
/// operator's, may carry a token, and the message reaches logs.
fn http_error(e: reqwest::Error) -> HookError {
    if e.is_timeout() {
        HookError::Timeout
    } else {
        HookError::Failed(e.without_url().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_parse_and_everything_else_fails() {
        assert_eq!(parse_verdict(br#"{"action":"allow"}"#), Ok(Verdict::Allow));
        assert_eq!(
            parse_verdict(br#"{"action":"reject","reason":"spam"}"#),
            Ok(Verdict::Reject("spam".into()))
        );
        assert_eq!(
            parse_verdict(br#"{"action":"reject"}"#),
            Ok(Verdict::Reject(String::new()))
        );
        assert_eq!(
            parse_verdict(br#"{"action":"rewrite","body":"hi ***"}"#),
            Ok(Verdict::Rewrite("hi ***".into()))
        );
        for bad in [
            &br#"{"action":"rewrite"}"#[..],
            br#"{"action":"explode"}"#,
            br#"{"verdict":"allow"}"#,
            b"allow",
            b"",
        ] {
            assert!(
                matches!(parse_verdict(bad), Err(HookError::Failed(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
