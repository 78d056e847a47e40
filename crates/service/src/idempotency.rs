//! Remembered answers to server-API writes made with an `Idempotency-Key`.
//!
//! The HTTP layer decides what a request's fingerprint is and which answers are worth
//! keeping; this module keeps them durably per app (table `Idempotency`), so a backend that
//! retries a write after a timeout, a crash of its own or a restart of the server gets the
//! first answer again instead of a second effect. Answers expire after
//! [`IDEMPOTENCY_TTL_MS`]; an expired one is treated as absent.

use magpie_store::{RecordWrite, Table};
use magpie_types::AppId;
use serde::{Deserialize, Serialize};

use crate::error::ServiceError;
use crate::messaging::Service;

/// How long an answer is kept: 24 hours.
pub const IDEMPOTENCY_TTL_MS: u64 = 24 * 3_600_000;

/// A remembered answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAnswer {
    /// What identifies the request (method, path, body digest): the same key with another
    /// request is a client bug, refused rather than answered wrongly.
    pub fingerprint: String,
    /// HTTP status.
    pub status: u16,
    /// Response body.
    pub body: String,
    /// When it was stored, Unix ms.
    pub created_ms: u64,
}

impl Service {
    /// The answer remembered under `key`, if any and not expired.
    pub async fn idempotent_answer(
        &self,
        app: &AppId,
        key: &str,
    ) -> Result<Option<StoredAnswer>, ServiceError> {
        let Some(bytes) = self.store.get_record(app, Table::Idempotency, key).await? else {
            return Ok(None);
        };
        let answer: StoredAnswer = serde_json::from_slice(&bytes).map_err(|e| {
            ServiceError::new(
                magpie_core::ErrorKind::Internal,
                format!("stored answer: {e}"),
            )
        })?;
        Ok(
            (self.now_ms() < answer.created_ms.saturating_add(IDEMPOTENCY_TTL_MS))
                .then_some(answer),
        )
    }

    /// Deletes expired answers, at most `budget` records read per call across all apps
    /// (the server calls it every minute, so the table follows the last day's writes).
    /// Returns how many were deleted.
    pub async fn sweep_answers(&self, budget: usize) -> Result<usize, ServiceError> {
        let now = self.now_ms();
        let mut apps: Vec<AppId> = self
            .apps()
            .list()
            .iter()
            .map(|a| a.config.id.clone())
            .collect();
        apps.extend(AppId::new(crate::apps::admin::SYSTEM_APP).ok());
        let mut deleted = 0;
        let mut left = budget;
        for app in apps {
            if left == 0 {
                break;
            }
            // Each call goes on where the last one stopped, so every record is reached.
            let after = self.sweep_cursor.lock().get(&app).cloned();
            let page = self
                .store
                .scan_records(&app, Table::Idempotency, "", after.as_deref(), left)
                .await?;
            left = left.saturating_sub(page.len());
            {
                let mut cursor = self.sweep_cursor.lock();
                match page.last() {
                    Some((k, _)) => cursor.insert(app.clone(), k.clone()),
                    None => cursor.remove(&app),
                };
            }
            let expired: Vec<RecordWrite> = page
                .into_iter()
                .filter(|(_, bytes)| {
                    serde_json::from_slice::<StoredAnswer>(bytes).map_or(true, |a| {
                        now >= a.created_ms.saturating_add(IDEMPOTENCY_TTL_MS)
                    })
                })
                .map(|(key, _)| RecordWrite {
                    table: Table::Idempotency,
                    key,
                    value: None,
                })
                .collect();
            deleted += expired.len();
            if !expired.is_empty() {
                self.store.write_records(&app, expired).await?;
            }
        }
        Ok(deleted)
    }

    /// Remembers `answer` under `key` (durably).
    pub async fn remember_answer(
        &self,
        app: &AppId,
        key: &str,
        answer: &StoredAnswer,
    ) -> Result<(), ServiceError> {
        let value = serde_json::to_vec(answer)
            .map_err(|e| ServiceError::new(magpie_core::ErrorKind::Internal, e.to_string()))?;
        self.store
            .write_records(
                app,
                vec![RecordWrite {
                    table: Table::Idempotency,
                    key: key.to_owned(),
                    value: Some(value),
                }],
            )
            .await?;
        Ok(())
    }
}
