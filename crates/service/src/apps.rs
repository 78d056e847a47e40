//! Tenants and their secrets.

use std::collections::HashMap;
use std::sync::Arc;

use magpie_types::AppId;
use parking_lot::RwLock;

/// One app's settings. Its `Debug` output redacts the secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct AppConfig {
    /// The app id.
    pub id: AppId,
    /// Display name.
    pub name: String,
    /// Secrets that currently verify tokens. The first signs; more than one during rotation.
    pub secrets: Vec<String>,
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

    /// The app's current secrets, or `None` if the app does not exist.
    pub fn secrets(&self, app: &AppId) -> Option<Vec<String>> {
        self.apps.read().get(app).map(|a| a.secrets.clone())
    }
}
