//! Tenants: apps, their secrets and their run-time settings.
//!
//! - [`settings`]: the per-app settings document and its validation.
//! - [`admin`]: creating apps, rotating secrets and changing settings at run time, kept
//!   durably in the store.
//!
//! Every piece of data is scoped by app in the store's keys, so two apps may use the same
//! user, group and client message ids without ever meeting; the registry here is the one
//! place that knows the apps themselves.

pub mod admin;
pub mod settings;

use std::collections::HashMap;
use std::sync::Arc;

use magpie_core::filter::WordFilter;
use magpie_types::AppId;
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

pub use settings::{AppSettings, DEFAULT_RECALL_WINDOW_MS, EVENT_KINDS, WebhookSettings};

/// One secret of an app. During a rotation the old secret keeps working until it expires.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppSecret {
    /// The secret.
    pub secret: String,
    /// When it stops being accepted, Unix ms (`None`: until rotated).
    pub expires_at_ms: Option<u64>,
}

impl std::fmt::Debug for AppSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppSecret")
            .field("secret", &"[redacted]")
            .field("expires_at_ms", &self.expires_at_ms)
            .finish()
    }
}

impl AppSecret {
    /// A secret with no expiry.
    pub fn new(secret: impl Into<String>) -> Self {
        Self {
            secret: secret.into(),
            expires_at_ms: None,
        }
    }

    /// Whether the secret is accepted at `now_ms`.
    pub fn live(&self, now_ms: u64) -> bool {
        self.expires_at_ms.is_none_or(|t| now_ms < t)
    }
}

/// One app. Its `Debug` output redacts the secrets.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppConfig {
    /// The app id.
    #[serde(with = "app_id_text")]
    pub id: AppId,
    /// Display name.
    pub name: String,
    /// Secrets that verify tokens and authenticate the app's backend; the first signs.
    pub secrets: Vec<AppSecret>,
    /// Run-time settings.
    pub settings: AppSettings,
    /// Bumped by every change of the settings (1 for a new app).
    pub version: u64,
    /// Creation time, Unix ms.
    pub created_ms: u64,
}

impl std::fmt::Debug for AppConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppConfig")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("secrets", &self.secrets)
            .field("settings", &self.settings)
            .field("version", &self.version)
            .finish()
    }
}

impl AppConfig {
    /// An app with one secret and default settings.
    pub fn new(id: AppId, name: impl Into<String>, secret: impl Into<String>) -> Self {
        Self {
            id,
            name: name.into(),
            secrets: vec![AppSecret::new(secret)],
            settings: AppSettings::default(),
            version: 1,
            created_ms: 0,
        }
    }

    /// The secrets accepted at `now_ms`.
    pub fn live_secrets(&self, now_ms: u64) -> impl Iterator<Item = &str> {
        self.secrets
            .iter()
            .filter(move |s| s.live(now_ms))
            .map(|s| s.secret.as_str())
    }
}

/// An app as served: its configuration and its compiled word filter.
#[derive(Debug)]
pub struct LoadedApp {
    /// The configuration.
    pub config: AppConfig,
    /// The compiled sensitive-word lists (`None`: no lists).
    pub filter: Option<WordFilter>,
}

/// The apps this server serves. Cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct AppRegistry {
    apps: Arc<RwLock<HashMap<AppId, Arc<LoadedApp>>>>,
}

impl AppRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces an app (in memory only; see [`admin`] for durable changes). Fails
    /// if its settings are invalid.
    pub fn upsert(&self, app: AppConfig) -> Result<(), String> {
        app.settings.validate()?;
        let filter = WordFilter::new(&app.settings.filters).map_err(|e| e.to_string())?;
        self.apps.write().insert(
            app.id.clone(),
            Arc::new(LoadedApp {
                config: app,
                filter,
            }),
        );
        Ok(())
    }

    /// Forgets an app.
    pub fn remove(&self, app: &AppId) {
        self.apps.write().remove(app);
    }

    /// The app, if it exists.
    pub fn get(&self, app: &AppId) -> Option<Arc<LoadedApp>> {
        self.apps.read().get(app).cloned()
    }

    /// Every app, ordered by id.
    pub fn list(&self) -> Vec<Arc<LoadedApp>> {
        let mut all: Vec<_> = self.apps.read().values().cloned().collect();
        all.sort_by(|a, b| a.config.id.as_str().cmp(b.config.id.as_str()));
        all
    }

    fn setting<T>(&self, app: &AppId, default: T, f: impl FnOnce(&AppSettings) -> T) -> T {
        self.apps
            .read()
            .get(app)
            .map_or(default, |a| f(&a.config.settings))
    }

    /// The app's group size limits `(ordinary, super)`, where it sets its own.
    pub fn group_limits(&self, app: &AppId) -> (Option<u32>, Option<u32>) {
        self.setting(app, (None, None), |s| {
            (s.max_group_members, s.max_super_group_members)
        })
    }

    /// Whether the app lets strangers message each other (true for an unknown app: the
    /// token check refuses those before this matters).
    pub fn allows_strangers(&self, app: &AppId) -> bool {
        self.setting(app, true, |s| s.allow_strangers)
    }

    /// The app's recall window, ms.
    pub fn recall_window_ms(&self, app: &AppId) -> u64 {
        self.setting(app, DEFAULT_RECALL_WINDOW_MS, |s| s.recall_window_ms)
    }

    /// The app's live-room budget, where it sets one.
    pub fn room_budget_per_s(&self, app: &AppId) -> Option<u32> {
        self.setting(app, None, |s| s.room_budget_per_s)
    }

    /// The app's secrets accepted at `now_ms`, or `None` if the app does not exist.
    pub fn secrets(&self, app: &AppId, now_ms: u64) -> Option<Vec<String>> {
        self.apps
            .read()
            .get(app)
            .map(|a| a.config.live_secrets(now_ms).map(str::to_owned).collect())
    }

    /// Whether `secret` is one of the app's secrets accepted at `now_ms` (compared in
    /// constant time, so response timing tells nothing about the secret).
    pub fn verify_secret(&self, app: &AppId, secret: &str, now_ms: u64) -> bool {
        let Some(a) = self.get(app) else {
            return false;
        };
        let mut ok = false;
        for s in a.config.live_secrets(now_ms) {
            ok |= constant_time_eq(s.as_bytes(), secret.as_bytes());
        }
        ok
    }
}

/// An [`AppId`] as a JSON string (the id type itself knows no serde).
mod app_id_text {
    use magpie_types::AppId;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(id: &AppId, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(id.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<AppId, D::Error> {
        let s = String::deserialize(d)?;
        AppId::new(s).map_err(serde::de::Error::custom)
    }
}

/// Byte equality whose time depends only on the lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_secrets_stop_verifying() {
        let reg = AppRegistry::new();
        let mut app = AppConfig::new(AppId::new("a").expect("id"), "A", "new");
        app.secrets.push(AppSecret {
            secret: "old".into(),
            expires_at_ms: Some(1_000),
        });
        reg.upsert(app).expect("valid");
        let a = AppId::new("a").expect("id");
        assert!(reg.verify_secret(&a, "old", 999));
        assert!(!reg.verify_secret(&a, "old", 1_000));
        assert!(reg.verify_secret(&a, "new", 5_000));
        assert!(!reg.verify_secret(&a, "ne", 5_000));
        assert_eq!(reg.secrets(&a, 2_000), Some(vec!["new".to_owned()]));
        assert!(!reg.verify_secret(&AppId::new("b").expect("id"), "new", 0));
    }
}
