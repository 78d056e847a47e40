//! Tenants and their secrets.

use std::collections::HashMap;
use std::sync::Arc;

use magpie_types::AppId;
use parking_lot::RwLock;

/// The recall window when an app sets none: two minutes, as most chat apps do.
pub const DEFAULT_RECALL_WINDOW_MS: u64 = 120_000;

/// One app's settings. Its `Debug` output redacts the secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct AppConfig {
    /// The app id.
    pub id: AppId,
    /// Display name.
    pub name: String,
    /// Secrets that currently verify tokens. The first signs; more than one during rotation.
    pub secrets: Vec<String>,
    /// This app's most members of an ordinary group (`None`: the server's limit).
    pub max_group_members: Option<u32>,
    /// This app's most members of a super group (`None`: the server's limit).
    pub max_super_group_members: Option<u32>,
    /// Whether users who are not friends may send each other 1:1 messages.
    pub allow_strangers: bool,
    /// How long after sending a user may recall a message, ms.
    pub recall_window_ms: u64,
    /// This app's downstream budget per live-room connection, msgs/s (`None`: the
    /// server's default; a room may set its own).
    pub room_budget_per_s: Option<u32>,
}

impl std::fmt::Debug for AppConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppConfig")
            .field("id", &self.id)
            .field("name", &self.name)
            .field(
                "secrets",
                &format_args!("[{} redacted]", self.secrets.len()),
            )
            .field("max_group_members", &self.max_group_members)
            .field("max_super_group_members", &self.max_super_group_members)
            .field("allow_strangers", &self.allow_strangers)
            .field("recall_window_ms", &self.recall_window_ms)
            .field("room_budget_per_s", &self.room_budget_per_s)
            .finish()
    }
}

/// The apps this server serves. Cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct AppRegistry {
    apps: Arc<RwLock<HashMap<AppId, AppConfig>>>,
}

impl AppRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces an app.
    pub fn upsert(&self, app: AppConfig) {
        self.apps.write().insert(app.id.clone(), app);
    }

    /// The app's group size limits `(ordinary, super)`, where it sets its own.
    pub fn group_limits(&self, app: &AppId) -> (Option<u32>, Option<u32>) {
        self.apps.read().get(app).map_or((None, None), |a| {
            (a.max_group_members, a.max_super_group_members)
        })
    }

    /// Whether the app lets strangers message each other (true for an unknown app: the
    /// token check refuses those before this matters).
    pub fn allows_strangers(&self, app: &AppId) -> bool {
        self.apps.read().get(app).is_none_or(|a| a.allow_strangers)
    }

    /// The app's recall window, ms.
    pub fn recall_window_ms(&self, app: &AppId) -> u64 {
        self.apps
            .read()
            .get(app)
            .map_or(DEFAULT_RECALL_WINDOW_MS, |a| a.recall_window_ms)
    }

    /// The app's live-room budget, where it sets one.
    pub fn room_budget_per_s(&self, app: &AppId) -> Option<u32> {
        self.apps.read().get(app).and_then(|a| a.room_budget_per_s)
    }

    /// The app's current secrets, or `None` if the app does not exist.
    pub fn secrets(&self, app: &AppId) -> Option<Vec<String>> {
        self.apps.read().get(app).map(|a| a.secrets.clone())
    }
}
