//! Per-app settings: what an operator changes at run time through the admin API.
//!
//! Settings are one JSON document per app, validated as a whole before they are applied,
//! stored with the app, and versioned: every change bumps the app's `version`, and a change
//! may name the version it was based on so that two operators cannot overwrite each other
//! unknowingly.

use magpie_core::filter::{self, WordList};
use serde::{Deserialize, Serialize};

/// The recall window when an app sets none: two minutes, as most chat apps do.
pub const DEFAULT_RECALL_WINDOW_MS: u64 = 120_000;
/// The before-send hook's timeout when an app sets none.
pub const DEFAULT_BEFORE_SEND_TIMEOUT_MS: u64 = 1_500;
/// Longest recall window an app may set: seven days.
const MAX_RECALL_WINDOW_MS: u64 = 7 * 24 * 3_600_000;
/// Longest URL, bytes.
const MAX_URL: usize = 2_048;

/// The event kinds webhooks may subscribe to.
pub const EVENT_KINDS: [&str; 7] = [
    "message.sent",
    "message.read",
    "message.recalled",
    "message.edited",
    "group.changed",
    "user.online",
    "user.offline",
];

/// One app's run-time settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AppSettings {
    /// Most members of an ordinary group (`None`: the server's limit).
    pub max_group_members: Option<u32>,
    /// Most members of a super group (`None`: the server's limit).
    pub max_super_group_members: Option<u32>,
    /// Whether users who are not friends may send each other 1:1 messages.
    pub allow_strangers: bool,
    /// How long after sending a user may recall a message, ms.
    pub recall_window_ms: u64,
    /// Downstream budget per live-room connection, msgs/s (`None`: the server's default;
    /// a room may set its own).
    pub room_budget_per_s: Option<u32>,
    /// Webhooks.
    pub webhooks: WebhookSettings,
    /// Sensitive-word lists, applied to 1:1, group and room text messages.
    pub filters: Vec<WordList>,
}

impl Default for AppSettings {
    fn default() -> Self {
        Self {
            max_group_members: None,
            max_super_group_members: None,
            allow_strangers: true,
            recall_window_ms: DEFAULT_RECALL_WINDOW_MS,
            room_budget_per_s: None,
            webhooks: WebhookSettings::default(),
            filters: Vec::new(),
        }
    }
}

/// Where an app's events go, and its before-send hook.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookSettings {
    /// Events are POSTed here (`None`: no events).
    pub url: Option<String>,
    /// The event kinds to send (empty: all of [`EVENT_KINDS`]).
    pub events: Vec<String>,
    /// The key of the `X-Magpie-Signature` HMAC-SHA256 over each body (empty: the server
    /// makes one when the app is created).
    pub signing_secret: String,
    /// The synchronous before-send hook (`None`: off).
    pub before_send_url: Option<String>,
    /// How long a send waits for the hook, ms.
    pub before_send_timeout_ms: u64,
    /// On a timeout or a broken answer: allow the message (`true`) or refuse it.
    pub before_send_fail_open: bool,
    /// Also call the hook for live-room messages (off by default: rooms are high-rate).
    pub before_send_rooms: bool,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            url: None,
            events: Vec::new(),
            signing_secret: String::new(),
            before_send_url: None,
            before_send_timeout_ms: DEFAULT_BEFORE_SEND_TIMEOUT_MS,
            before_send_fail_open: false,
            before_send_rooms: false,
        }
    }
}

impl std::fmt::Debug for WebhookSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSettings")
            .field("url", &self.url)
            .field("events", &self.events)
            .field("signing_secret", &"[redacted]")
            .field("before_send_url", &self.before_send_url)
            .field("before_send_timeout_ms", &self.before_send_timeout_ms)
            .field("before_send_fail_open", &self.before_send_fail_open)
            .field("before_send_rooms", &self.before_send_rooms)
            .finish()
    }
}

impl WebhookSettings {
    /// Whether events of `kind` go to the app's URL.
    pub fn wants(&self, kind: &str) -> bool {
        self.url.is_some() && (self.events.is_empty() || self.events.iter().any(|e| e == kind))
    }
}

impl AppSettings {
    /// Checks every field; the message names the first bad one.
    pub fn validate(&self) -> Result<(), String> {
        if let (Some(o), Some(s)) = (self.max_group_members, self.max_super_group_members)
            && o > s
        {
            return Err("max_group_members must not exceed max_super_group_members".to_owned());
        }
        if self.max_group_members == Some(0) || self.max_super_group_members == Some(0) {
            return Err("group limits must be at least 1".to_owned());
        }
        if self.recall_window_ms > MAX_RECALL_WINDOW_MS {
            return Err(format!(
                "recall_window_ms must be at most {MAX_RECALL_WINDOW_MS} (7 days)"
            ));
        }
        if self.room_budget_per_s == Some(0) {
            return Err("room_budget_per_s must be at least 1".to_owned());
        }
        let w = &self.webhooks;
        for (name, url) in [
            ("webhooks.url", &w.url),
            ("webhooks.before_send_url", &w.before_send_url),
        ] {
            if let Some(u) = url {
                check_url(name, u)?;
            }
        }
        if let Some(e) = w.events.iter().find(|e| !EVENT_KINDS.contains(&e.as_str())) {
            return Err(format!(
                "webhooks.events: unknown event {e:?} (known: {})",
                EVENT_KINDS.join(", ")
            ));
        }
        if !(50..=10_000).contains(&w.before_send_timeout_ms) {
            return Err("webhooks.before_send_timeout_ms must be 50 to 10000".to_owned());
        }
        if w.signing_secret.len() > 256 {
            return Err("webhooks.signing_secret must be at most 256 bytes".to_owned());
        }
        filter::validate(&self.filters).map_err(|e| format!("filters: {e}"))
    }
}

fn check_url(name: &str, url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(r) if !r.is_empty() && url.len() <= MAX_URL && !url.contains(char::is_whitespace) => {
            Ok(())
        }
        _ => Err(format!(
            "{name} must be an http:// or https:// URL of at most {MAX_URL} bytes"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        assert_eq!(AppSettings::default().validate(), Ok(()));
        let mut s = AppSettings::default();
        s.webhooks.url = Some("ftp://x".into());
        assert!(s.validate().unwrap_err().contains("webhooks.url"));
        let mut s = AppSettings::default();
        s.webhooks.events = vec!["message.exploded".into()];
        assert!(s.validate().unwrap_err().contains("unknown event"));
        let s = AppSettings {
            max_group_members: Some(10),
            max_super_group_members: Some(5),
            ..AppSettings::default()
        };
        assert!(s.validate().is_err());
        let mut s = AppSettings::default();
        s.webhooks.before_send_timeout_ms = 0;
        assert!(s.validate().is_err());
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = serde_json::from_str::<AppSettings>(r#"{"allow_strangerz": true}"#);
        assert!(err.is_err());
        let ok: AppSettings = serde_json::from_str(r#"{"recall_window_ms": 5}"#).expect("ok");
        assert!(ok.allow_strangers, "omitted keys take their defaults");
    }
}
