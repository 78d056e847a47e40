//! Durable app management: create apps, rotate secrets, change settings at run time.
//!
//! Apps are kept in the record store under the reserved system app id [`SYSTEM_APP`]
//! (table `Apps`, one JSON document per app: apps are few, and JSON lets the settings grow
//! new keys with defaults). A change is validated, written durably, then applied to the
//! registry, so a restart serves exactly what the last answered change said. Changes are
//! serialised by one lock; readers never wait for it.

use magpie_core::ErrorKind;
use magpie_store::{RecordWrite, Table};
use magpie_types::AppId;
use rand::Rng;
use rand::distr::Alphanumeric;

use super::{AppConfig, AppSecret, AppSettings};
use crate::error::ServiceError;
use crate::messaging::Service;

/// The reserved app id under which the apps themselves are stored. App ids starting with
/// `_` are refused for tenants.
pub const SYSTEM_APP: &str = "_magpie";
/// Longest grace period of a rotated secret: 30 days.
pub const MAX_GRACE_MS: u64 = 30 * 24 * 3_600_000;

/// A fresh random secret (40 alphanumerics: ~238 bits).
pub fn new_secret() -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(40)
        .map(char::from)
        .collect()
}

fn system_app() -> AppId {
    AppId::new(SYSTEM_APP).unwrap_or_else(|_| unreachable!("the system app id is valid"))
}

fn invalid(msg: impl Into<String>) -> ServiceError {
    ServiceError::new(ErrorKind::InvalidArgument, msg)
}

impl Service {
    /// Loads every stored app into the registry; returns how many.
    pub async fn load_apps(&self) -> Result<usize, ServiceError> {
        let mut after: Option<String> = None;
        let mut n = 0;
        loop {
            let page = self
                .store
                .scan_records(&system_app(), Table::Apps, "", after.as_deref(), 256)
                .await?;
            let Some((last, _)) = page.last() else {
                return Ok(n);
            };
            after = Some(last.clone());
            for (key, bytes) in page {
                let app: AppConfig = serde_json::from_slice(&bytes).map_err(|e| {
                    ServiceError::new(ErrorKind::Internal, format!("stored app {key:?}: {e}"))
                })?;
                self.apps()
                    .upsert(app)
                    .map_err(|e| ServiceError::new(ErrorKind::Internal, e))?;
                n += 1;
            }
        }
    }

    /// Serves `app` (from the configuration file or the demo): created in the store on
    /// first start; once stored, the stored app wins (its secrets may have been rotated
    /// and its settings changed through the admin API since).
    pub async fn seed_app(&self, mut app: AppConfig) -> Result<(), ServiceError> {
        let _guard = self.app_writes.lock().await;
        if let Some(stored) = self.stored_app(&app.id).await? {
            return self
                .apps()
                .upsert(stored)
                .map_err(|e| ServiceError::new(ErrorKind::Internal, e));
        }
        if app.settings.webhooks.signing_secret.is_empty() {
            app.settings.webhooks.signing_secret = new_secret();
        }
        app.created_ms = self.now_ms();
        self.persist_app(&app).await
    }

    /// Creates an app with a fresh secret.
    pub async fn create_app(
        &self,
        id: AppId,
        name: String,
        settings: Option<AppSettings>,
    ) -> Result<AppConfig, ServiceError> {
        if id.as_str().starts_with('_') {
            return Err(invalid("app ids starting with '_' are reserved"));
        }
        if name.len() > 128 {
            return Err(invalid("an app name is at most 128 bytes"));
        }
        let _guard = self.app_writes.lock().await;
        if self.stored_app(&id).await?.is_some() || self.apps().get(&id).is_some() {
            return Err(ServiceError::new(
                ErrorKind::AlreadyExists,
                format!("app {:?} exists", id.as_str()),
            ));
        }
        let mut app = AppConfig::new(id, name, new_secret());
        app.settings = settings.unwrap_or_default();
        app.settings.validate().map_err(invalid)?;
        if app.settings.webhooks.signing_secret.is_empty() {
            app.settings.webhooks.signing_secret = new_secret();
        }
        app.created_ms = self.now_ms();
        self.persist_app(&app).await?;
        Ok(app)
    }

    /// Makes a new secret the signing one; the current secrets stay valid for `grace_ms`
    /// more (0: they stop at once). Secrets already past their expiry are dropped.
    pub async fn rotate_app_secret(
        &self,
        id: &AppId,
        grace_ms: u64,
    ) -> Result<AppConfig, ServiceError> {
        if grace_ms > MAX_GRACE_MS {
            return Err(invalid("grace_ms is at most 30 days"));
        }
        let _guard = self.app_writes.lock().await;
        let mut app = self.current_app(id).await?;
        let now = self.now_ms();
        let until = now.saturating_add(grace_ms);
        app.secrets.retain(|s| s.live(now));
        for s in &mut app.secrets {
            s.expires_at_ms = Some(s.expires_at_ms.map_or(until, |t| t.min(until)));
        }
        app.secrets.insert(0, AppSecret::new(new_secret()));
        self.persist_app(&app).await?;
        Ok(app)
    }

    /// Replaces the app's settings (validated as a whole). With `expected_version`, the
    /// change applies only if the app is still at that version (else `CONFLICT`).
    pub async fn update_app_settings(
        &self,
        id: &AppId,
        expected_version: Option<u64>,
        mut settings: AppSettings,
    ) -> Result<AppConfig, ServiceError> {
        settings.validate().map_err(invalid)?;
        let _guard = self.app_writes.lock().await;
        let mut app = self.current_app(id).await?;
        if let Some(v) = expected_version
            && v != app.version
        {
            return Err(ServiceError::new(
                ErrorKind::Conflict,
                format!(
                    "the settings are at version {}, not {v}; read them again",
                    app.version
                ),
            ));
        }
        if settings.webhooks.signing_secret.is_empty() {
            settings.webhooks.signing_secret = app.settings.webhooks.signing_secret.clone();
        }
        app.settings = settings;
        app.version += 1;
        self.persist_app(&app).await?;
        Ok(app)
    }

    /// Renames an app.
    pub async fn rename_app(&self, id: &AppId, name: String) -> Result<AppConfig, ServiceError> {
        if name.len() > 128 {
            return Err(invalid("an app name is at most 128 bytes"));
        }
        let _guard = self.app_writes.lock().await;
        let mut app = self.current_app(id).await?;
        app.name = name;
        self.persist_app(&app).await?;
        Ok(app)
    }

    async fn current_app(&self, id: &AppId) -> Result<AppConfig, ServiceError> {
        match self.stored_app(id).await? {
            Some(a) => Ok(a),
            None => Err(ServiceError::new(
                ErrorKind::NotFound,
                format!("no app {:?}", id.as_str()),
            )),
        }
    }

    async fn stored_app(&self, id: &AppId) -> Result<Option<AppConfig>, ServiceError> {
        let Some(bytes) = self
            .store
            .get_record(&system_app(), Table::Apps, id.as_str())
            .await?
        else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| ServiceError::new(ErrorKind::Internal, format!("stored app: {e}")))
    }

    async fn persist_app(&self, app: &AppConfig) -> Result<(), ServiceError> {
        let bytes = serde_json::to_vec(app)
            .map_err(|e| ServiceError::new(ErrorKind::Internal, e.to_string()))?;
        self.store
            .write_records(
                &system_app(),
                vec![RecordWrite {
                    table: Table::Apps,
                    key: app.id.as_str().to_owned(),
                    value: Some(bytes),
                }],
            )
            .await?;
        self.apps()
            .upsert(app.clone())
            .map_err(|e| ServiceError::new(ErrorKind::Internal, e))
    }
}
