//! The static process configuration.
//!
//! Precedence, lowest to highest: built-in defaults, the TOML file, `MAGPIE_*` environment
//! variables (nested keys joined by `__`, e.g. `MAGPIE_LISTEN__TCP=0.0.0.0:7700`), and
//! finally command-line flags. `magpie.example.toml` at the repository root documents every
//! key with its default; a test parses it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use magpie_core::Limits;
use magpie_core::delivery::DeliveryConfig;
use magpie_gateway::GatewayConfig;
use magpie_service::AppConfig;
use magpie_types::AppId;
use serde::{Deserialize, Serialize};

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value is missing, malformed, or of the wrong type; the message names the key and
    /// where the value came from.
    #[error("configuration: {0}")]
    Invalid(String),
}

impl From<figment::Error> for ConfigError {
    fn from(e: figment::Error) -> Self {
        Self::Invalid(e.to_string())
    }
}

/// Which storage backend to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    /// The embedded, durable store in `data_dir` (default).
    Embedded,
    /// In memory: everything is lost on exit. For experiments only.
    Memory,
}

/// The whole static configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Node id for message ids; unique per node in a cluster (0..1024).
    pub node_id: u16,
    /// Directory of the embedded store.
    pub data_dir: PathBuf,
    /// Storage backend.
    pub storage: StorageKind,
    /// Seed the demo app (id `demo`) with users alice, bob and carol.
    pub demo: bool,
    /// Listener addresses.
    pub listen: Listen,
    /// TLS certificate and key, used by the `tls_*` listeners.
    pub tls: Option<Tls>,
    /// Limits.
    pub limits: LimitsConfig,
    /// Connection handling.
    pub gateway: GatewaySettings,
    /// Live rooms.
    pub rooms: RoomsConfig,
    /// Apps served besides the demo app (created in the store on first start; afterwards
    /// managed through the admin API).
    pub apps: Vec<AppEntry>,
    /// The server API's super-admin.
    pub admin: AdminConfig,
    /// Delivery of webhook events.
    pub webhooks: WebhooksConfig,
    /// Milliseconds to wait for clients to leave on shutdown before closing them.
    pub shutdown_grace_ms: u64,
    /// Log format: "text" or "json".
    pub log_format: String,
}

/// Listener addresses. Port 0 picks a free port (the bound address is printed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Listen {
    /// Plain TCP, length-prefixed frames.
    pub tcp: Option<SocketAddr>,
    /// Plain WebSocket.
    pub ws: Option<SocketAddr>,
    /// HTTP: health and readiness.
    pub http: Option<SocketAddr>,
    /// TCP with TLS (needs `[tls]`).
    pub tls_tcp: Option<SocketAddr>,
    /// WebSocket with TLS (needs `[tls]`).
    pub tls_ws: Option<SocketAddr>,
    /// Internal HTTP listener: when set, `/metrics` and the admin API (`/v1/admin/...`)
    /// are served here only, not on `http`.
    pub internal: Option<SocketAddr>,
}

/// The server API's super-admin. Its `Debug` output redacts the key.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// The bearer key of `/v1/admin/...` (app management, settings). Empty: the admin API
    /// is off. At least 16 bytes. `serve --demo` uses a public demo key when none is set.
    pub key: String,
}

impl std::fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminConfig")
            .field(
                "key",
                &if self.key.is_empty() {
                    ""
                } else {
                    "[redacted]"
                },
            )
            .finish()
    }
}

/// Delivery of webhook events (per-app URLs are run-time settings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    /// Attempts per event before it is dropped (and counted).
    pub max_attempts: u32,
    /// Wait before the first retry, ms; doubled per attempt.
    pub initial_backoff_ms: u64,
    /// Longest wait between attempts, ms.
    pub max_backoff_ms: u64,
    /// How long one delivery may take, ms.
    pub request_timeout_ms: u64,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self {
            max_attempts: 12,
            initial_backoff_ms: 1_000,
            max_backoff_ms: 300_000,
            request_timeout_ms: 5_000,
        }
    }
}

/// Certificate chain and private key, PEM files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// Certificate chain (PEM).
    pub cert: PathBuf,
    /// Private key (PEM).
    pub key: PathBuf,
}

/// Limits (see [`magpie_core::Limits`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest frame, bytes.
    pub max_frame_bytes: usize,
    /// Largest message content, bytes.
    pub max_message_bytes: usize,
    /// Most metadata entries per message.
    pub max_metadata_entries: usize,
    /// Largest page of a pull, history or conversation list.
    pub max_page: usize,
    /// Sends per second per user, across devices (0 turns the limit off).
    pub send_rate_per_user: u32,
    /// Burst of sends per user above the steady rate.
    pub send_burst_per_user: u32,
    /// Most members of an ordinary group.
    pub max_group_members: u32,
    /// Most members of a super group.
    pub max_super_group_members: u32,
    /// Most users one group operation names.
    pub max_users_per_group_op: usize,
    /// Most users one message mentions.
    pub max_mentions: usize,
    /// Longest group name, notice, avatar URL or custom JSON, bytes.
    pub max_group_field_bytes: usize,
}

/// Connection handling (see [`magpie_gateway::GatewayConfig`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewaySettings {
    /// Milliseconds from accept to a successful Hello.
    pub handshake_timeout_ms: u64,
    /// Client heartbeat interval, ms; silence for 3 intervals closes the connection.
    pub heartbeat_interval_ms: u64,
    /// Outbound queue per connection, items.
    pub outbound_queue: usize,
    /// Requests in progress per connection before reading pauses.
    pub max_in_flight: usize,
    /// Milliseconds one write may take.
    pub write_timeout_ms: u64,
    /// Unauthenticated connections per IP.
    pub max_preauth_per_ip: usize,
    /// Milliseconds before an unacknowledged push is sent again.
    pub ack_timeout_ms: u64,
    /// Pushes of one message before the connection is closed.
    pub max_push_attempts: u32,
    /// Unacknowledged pushes per connection before it is closed.
    pub max_pending_pushes: usize,
    /// WebSocket read buffer, bytes.
    pub ws_read_buffer: usize,
    /// WebSocket write buffer, bytes.
    pub ws_write_buffer: usize,
}

/// Live-room settings (`[rooms]`). Per-app and per-room settings override the budget and
/// the send rate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoomsConfig {
    /// Downstream budget per connection in a room, msgs/s (high priority is outside it).
    pub default_budget_per_s: u32,
    /// Batching window: room messages for one connection within it go out as one frame, ms.
    pub batch_window_ms: u64,
    /// Reliable (high-priority) messages kept per room.
    pub log_max_len: usize,
    /// Oldest reliable message kept, ms.
    pub log_max_age_ms: u64,
    /// Room-wide send limit when the room sets none, msgs/s.
    pub default_send_rate_per_s: u32,
    /// Highest budget or send limit a room may set, msgs/s.
    pub max_rate_per_s: u32,
    /// Unacknowledged reliable messages are sent again after this long, ms.
    pub retransmit_ms: u64,
    /// Most reliable messages per join, fetch or retransmission.
    pub max_fetch: usize,
}

impl Default for RoomsConfig {
    fn default() -> Self {
        let d = magpie_service::RoomConfig::default();
        Self {
            default_budget_per_s: d.default_budget_per_s,
            batch_window_ms: d.batch_window_ms,
            log_max_len: d.log_max_len,
            log_max_age_ms: d.log_max_age_ms,
            default_send_rate_per_s: d.default_send_rate_per_s,
            max_rate_per_s: d.max_rate_per_s,
            retransmit_ms: d.retransmit_ms,
            max_fetch: d.max_fetch,
        }
    }
}

/// An app (tenant). Its `Debug` output redacts the secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppEntry {
    /// App id.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Secret that signs user tokens (HS256).
    pub secret: String,
    /// This app's most members of an ordinary group (default: `limits.max_group_members`).
    #[serde(default)]
    pub max_group_members: Option<u32>,
    /// This app's most members of a super group (default: `limits.max_super_group_members`).
    #[serde(default)]
    pub max_super_group_members: Option<u32>,
    /// Whether users who are not friends may send each other 1:1 messages (default true).
    #[serde(default = "yes")]
    pub allow_strangers: bool,
    /// How long after sending a user may recall a message, ms (default 120000).
    #[serde(default = "recall_window")]
    pub recall_window_ms: u64,
    /// This app's downstream budget per live-room connection, msgs/s (default:
    /// `rooms.default_budget_per_s`; a room may set its own).
    #[serde(default)]
    pub room_budget_per_s: Option<u32>,
}

fn yes() -> bool {
    true
}

fn recall_window() -> u64 {
    magpie_service::apps::DEFAULT_RECALL_WINDOW_MS
}

impl AppEntry {
    /// The app as the service serves it.
    pub fn to_app_config(&self) -> Result<AppConfig, ConfigError> {
        let id = AppId::new(self.id.as_str())
            .map_err(|e| ConfigError::Invalid(format!("apps: id {:?}: {e}", self.id)))?;
        let mut app = AppConfig::new(id, self.name.clone(), self.secret.clone());
        let s = &mut app.settings;
        s.max_group_members = self.max_group_members;
        s.max_super_group_members = self.max_super_group_members;
        s.allow_strangers = self.allow_strangers;
        s.recall_window_ms = self.recall_window_ms;
        s.room_budget_per_s = self.room_budget_per_s;
        s.validate()
            .map_err(|e| ConfigError::Invalid(format!("apps: {:?}: {e}", self.id)))?;
        Ok(app)
    }
}

impl std::fmt::Debug for AppEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppEntry")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("secret", &"[redacted]")
            .finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            node_id: 0,
            data_dir: PathBuf::from("magpie-data"),
            storage: StorageKind::Embedded,
            demo: false,
            listen: Listen::default(),
            tls: None,
            limits: LimitsConfig::default(),
            gateway: GatewaySettings::default(),
            rooms: RoomsConfig::default(),
            apps: Vec::new(),
            admin: AdminConfig::default(),
            webhooks: WebhooksConfig::default(),
            shutdown_grace_ms: 5_000,
            log_format: "text".into(),
        }
    }
}

impl Default for Listen {
    fn default() -> Self {
        Self {
            tcp: Some(SocketAddr::from(([127, 0, 0, 1], 7700))),
            ws: Some(SocketAddr::from(([127, 0, 0, 1], 7701))),
            http: Some(SocketAddr::from(([127, 0, 0, 1], 7780))),
            tls_tcp: None,
            tls_ws: None,
            internal: None,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let l = Limits::default();
        Self {
            max_frame_bytes: l.max_frame_bytes,
            max_message_bytes: l.max_message_bytes,
            max_metadata_entries: l.max_metadata_entries,
            max_page: l.max_page,
            send_rate_per_user: l.send_rate_per_user,
            send_burst_per_user: l.send_burst_per_user,
            max_group_members: l.max_group_members,
            max_super_group_members: l.max_super_group_members,
            max_users_per_group_op: l.max_users_per_group_op,
            max_mentions: l.max_mentions,
            max_group_field_bytes: l.max_group_field_bytes,
        }
    }
}

impl Default for GatewaySettings {
    fn default() -> Self {
        let g = GatewayConfig::default();
        Self {
            handshake_timeout_ms: millis(g.handshake_timeout),
            heartbeat_interval_ms: millis(g.heartbeat_interval),
            outbound_queue: g.outbound_queue,
            max_in_flight: g.max_in_flight,
            write_timeout_ms: millis(g.write_timeout),
            max_preauth_per_ip: g.max_preauth_per_ip,
            ack_timeout_ms: g.delivery.ack_timeout_ms,
            max_push_attempts: g.delivery.max_attempts,
            max_pending_pushes: g.delivery.max_pending,
            ws_read_buffer: g.ws_read_buffer,
            ws_write_buffer: g.ws_write_buffer,
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Top-level keys of [`Config`], for filtering environment variables.
const TOP_LEVEL_KEYS: &[&str] = &[
    "node_id",
    "data_dir",
    "storage",
    "demo",
    "listen",
    "tls",
    "limits",
    "gateway",
    "rooms",
    "apps",
    "admin",
    "webhooks",
    "shutdown_grace_ms",
    "log_format",
];

impl Config {
    /// Loads defaults, then `file` (if given), then `MAGPIE_*` environment variables.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(f) = file {
            if !f.exists() {
                return Err(ConfigError::Invalid(format!(
                    "config file {} does not exist",
                    f.display()
                )));
            }
            fig = fig.merge(Toml::file(f));
        }
        let cfg: Config = fig
            .merge(Env::prefixed("MAGPIE_").split("__").filter(|k| {
                // Only keys of this file: client-side variables such as MAGPIE_APP_SECRET
                // or MAGPIE_SERVER share the prefix and must not fail the server's load.
                let top = k.as_str().split('.').next().unwrap_or_default();
                TOP_LEVEL_KEYS.iter().any(|t| t.eq_ignore_ascii_case(top))
            }))
            .extract()?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// The admin key in force: the configured one, or the public demo key with `demo` (so
    /// a local trial can manage apps with curl); `None` turns the admin API off.
    pub fn effective_admin_key(&self) -> Option<String> {
        if !self.admin.key.is_empty() {
            Some(self.admin.key.clone())
        } else if self.demo {
            Some(crate::demo::DEMO_ADMIN_KEY.to_owned())
        } else {
            None
        }
    }

    /// The webhook sender's settings.
    pub fn webhook_config(&self) -> magpie_webhooks::WebhookConfig {
        let w = &self.webhooks;
        magpie_webhooks::WebhookConfig {
            max_attempts: w.max_attempts,
            initial_backoff: Duration::from_millis(w.initial_backoff_ms),
            max_backoff: Duration::from_millis(w.max_backoff_ms),
            request_timeout: Duration::from_millis(w.request_timeout_ms),
        }
    }

    /// Parses a TOML string over the defaults (no environment), for tests and tools.
    pub fn from_toml(s: &str) -> Result<Self, ConfigError> {
        let cfg: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string(s))
            .extract()?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.node_id >= magpie_types::snowflake::MAX_NODES {
            return bad(format!("node_id {} must be below 1024", self.node_id));
        }
        if (self.listen.tls_tcp.is_some() || self.listen.tls_ws.is_some()) && self.tls.is_none() {
            return bad("listen.tls_tcp / listen.tls_ws need a [tls] section".into());
        }
        if self.limits.max_message_bytes >= self.limits.max_frame_bytes {
            return bad("limits.max_message_bytes must be below limits.max_frame_bytes".into());
        }
        if self.limits.max_page == 0
            || self.gateway.outbound_queue == 0
            || self.gateway.max_in_flight == 0
        {
            return bad("limits.max_page, gateway.outbound_queue and gateway.max_in_flight must be positive".into());
        }
        if self.gateway.heartbeat_interval_ms < 100 || self.gateway.ack_timeout_ms < 10 {
            return bad(
                "gateway.heartbeat_interval_ms must be ≥ 100 and ack_timeout_ms ≥ 10".into(),
            );
        }
        if !self.admin.key.is_empty() && self.admin.key.len() < 16 {
            return bad("admin.key must be empty (admin API off) or at least 16 bytes".into());
        }
        let w = &self.webhooks;
        if w.max_attempts == 0 || w.initial_backoff_ms == 0 || w.request_timeout_ms == 0 {
            return bad("webhooks: max_attempts, initial_backoff_ms and request_timeout_ms must be positive".into());
        }
        let r = &self.rooms;
        if r.default_budget_per_s == 0
            || r.default_send_rate_per_s == 0
            || r.log_max_len == 0
            || r.max_fetch == 0
            || r.retransmit_ms < 100
            || r.batch_window_ms > 1_000
        {
            return bad("rooms: budgets, rates, log_max_len and max_fetch must be positive, retransmit_ms ≥ 100, batch_window_ms ≤ 1000".into());
        }
        if !["text", "json"].contains(&self.log_format.as_str()) {
            return bad(format!(
                "log_format must be \"text\" or \"json\", not {:?}",
                self.log_format
            ));
        }
        for a in &self.apps {
            magpie_types::AppId::new(a.id.as_str())
                .map_err(|e| ConfigError::Invalid(format!("apps: {e}")))?;
            if a.secret.len() < 16 {
                return bad(format!(
                    "apps: the secret of app {:?} must be at least 16 bytes",
                    a.id
                ));
            }
        }
        Ok(())
    }

    /// The live-room settings.
    pub fn room_config(&self) -> magpie_service::RoomConfig {
        let r = &self.rooms;
        magpie_service::RoomConfig {
            default_budget_per_s: r.default_budget_per_s,
            batch_window_ms: r.batch_window_ms,
            log_max_len: r.log_max_len,
            log_max_age_ms: r.log_max_age_ms,
            default_send_rate_per_s: r.default_send_rate_per_s,
            max_rate_per_s: r.max_rate_per_s,
            retransmit_ms: r.retransmit_ms,
            max_fetch: r.max_fetch,
        }
    }

    /// The core limits.
    pub fn core_limits(&self) -> Limits {
        Limits {
            max_frame_bytes: self.limits.max_frame_bytes,
            max_message_bytes: self.limits.max_message_bytes,
            max_metadata_entries: self.limits.max_metadata_entries,
            max_page: self.limits.max_page,
            send_rate_per_user: self.limits.send_rate_per_user,
            send_burst_per_user: self.limits.send_burst_per_user,
            max_group_members: self.limits.max_group_members,
            max_super_group_members: self.limits.max_super_group_members,
            max_users_per_group_op: self.limits.max_users_per_group_op,
            max_mentions: self.limits.max_mentions,
            max_group_field_bytes: self.limits.max_group_field_bytes,
        }
    }

    /// The gateway settings.
    pub fn gateway_config(&self) -> GatewayConfig {
        let g = &self.gateway;
        GatewayConfig {
            handshake_timeout: Duration::from_millis(g.handshake_timeout_ms),
            heartbeat_interval: Duration::from_millis(g.heartbeat_interval_ms),
            outbound_queue: g.outbound_queue,
            max_in_flight: g.max_in_flight,
            write_timeout: Duration::from_millis(g.write_timeout_ms),
            max_preauth_per_ip: g.max_preauth_per_ip,
            delivery: DeliveryConfig {
                ack_timeout_ms: g.ack_timeout_ms,
                max_attempts: g.max_push_attempts,
                max_pending: g.max_pending_pushes,
            },
            ws_read_buffer: g.ws_read_buffer,
            ws_write_buffer: g.ws_write_buffer,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses_and_matches_defaults() {
        let text = include_str!("../../../magpie.example.toml");
        let cfg = Config::from_toml(text).expect("example config parses");
        // The example documents the defaults (plus commented-out optional keys).
        let want = Config {
            demo: cfg.demo,
            ..Config::default()
        };
        assert_eq!(cfg, want);
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let cfg = Config::from_toml("[[apps]]\nid = \"x\"\nsecret = \"super-secret-value-123\"")
            .expect("valid");
        assert!(!format!("{cfg:?}").contains("super-secret-value-123"));
    }

    #[test]
    fn typos_and_nonsense_are_refused() {
        assert!(Config::from_toml("nod_id = 3").is_err());
        assert!(Config::from_toml("node_id = 5000").is_err());
        assert!(Config::from_toml("[listen]\ntls_tcp = \"127.0.0.1:1\"").is_err());
        assert!(Config::from_toml("[[apps]]\nid = \"x\"\nsecret = \"short\"").is_err());
        assert!(Config::from_toml("[limits]\nmax_message_bytes = 999999999").is_err());
    }
}
