//! The durable outbox: one record per undelivered event in the app's
//! [`Table::WebhookOutbox`], keyed by event id.
//!
//! An event is written here before its first delivery and deleted once a receiver took it
//! (or it was given up), so an event survives a restart or a crash between the two; a
//! restart loads what is left ([`load`]). The record also carries the attempt count and
//! the next attempt's wall-clock time, so a restart neither resets an event's retry budget
//! nor hammers a receiver that was failing.

use bytes::Bytes;
use magpie_store::{RecordWrite, Store, StoreError, Table};
use magpie_types::AppId;
use serde::{Deserialize, Serialize};

/// Records read per scan while loading.
const LOAD_PAGE: usize = 512;

/// An event waiting for delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pending {
    /// The app.
    pub app: AppId,
    /// The event id (the record key and `X-Magpie-Event-Id`).
    pub id: String,
    /// The event type (`X-Magpie-Event-Type`).
    pub kind: String,
    /// The JSON of the event: exactly what is POSTed and signed, on every attempt.
    pub body: Bytes,
    /// Deliveries tried so far.
    pub attempts: u32,
    /// When the next delivery may start, Unix ms.
    pub next_attempt_ms: u64,
}

/// The stored form of a [`Pending`] (app and id are in the key).
#[derive(Debug, Serialize, Deserialize)]
struct OutboxRecord {
    /// The event type.
    kind: String,
    /// The signed JSON body, kept as a string so that the bytes are reproduced exactly.
    body: String,
    /// Deliveries tried so far.
    attempts: u32,
    /// When the next delivery may start, Unix ms.
    next_attempt_ms: u64,
}

impl Pending {
    /// The write that stores this event as it stands.
    pub(crate) fn put(&self) -> Result<RecordWrite, serde_json::Error> {
        let record = OutboxRecord {
            kind: self.kind.clone(),
            // The body was made by `serde_json`, so it is UTF-8; the lossy path never runs.
            body: String::from_utf8_lossy(&self.body).into_owned(),
            attempts: self.attempts,
            next_attempt_ms: self.next_attempt_ms,
        };
        Ok(RecordWrite {
            table: Table::WebhookOutbox,
            key: self.id.clone(),
            value: Some(serde_json::to_vec(&record)?),
        })
    }

    /// The write that removes this event.
    pub(crate) fn delete(&self) -> RecordWrite {
        RecordWrite {
            table: Table::WebhookOutbox,
            key: self.id.clone(),
            value: None,
        }
    }
}

/// Every event left in `app`'s outbox, oldest next attempt first. A record that does not
/// decode (written by a future version, or damaged) is deleted with a warning rather than
/// retried forever.
pub(crate) async fn load(store: &dyn Store, app: &AppId) -> Result<Vec<Pending>, StoreError> {
    let mut out = Vec::new();
    let mut bad = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store
            .scan_records(app, Table::WebhookOutbox, "", after.as_deref(), LOAD_PAGE)
            .await?;
        let full = page.len() == LOAD_PAGE;
        after = page.last().map(|(k, _)| k.clone());
        for (key, value) in page {
            match serde_json::from_slice::<OutboxRecord>(&value) {
                Ok(r) => out.push(Pending {
                    app: app.clone(),
                    id: key,
                    kind: r.kind,
                    body: Bytes::from(r.body.into_bytes()),
                    attempts: r.attempts,
                    next_attempt_ms: r.next_attempt_ms,
                }),
                Err(e) => {
                    tracing::warn!(%app, event = %key, error = %e, "undecodable webhook outbox record; deleting it");
                    bad.push(RecordWrite {
                        table: Table::WebhookOutbox,
                        key,
                        value: None,
                    });
                }
            }
        }
        if !full {
            break;
        }
    }
    if !bad.is_empty() {
        store.write_records(app, bad).await?;
    }
    out.sort_by(|a, b| (a.next_attempt_ms, &a.id).cmp(&(b.next_attempt_ms, &b.id)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failure should panic.

    use super::*;
    use magpie_store::{MemoryStore, RecordStore};

    #[tokio::test]
    async fn records_round_trip_and_bad_ones_are_deleted() {
        let store = MemoryStore::new();
        let app = AppId::new("a").unwrap();
        let p = Pending {
            app: app.clone(),
            id: "message.sent:1".into(),
            kind: "message.sent".into(),
            body: Bytes::from_static(br#"{"id":"message.sent:1","x":"\u00e9 \" \\"}"#),
            attempts: 3,
            next_attempt_ms: 42,
        };
        let junk = RecordWrite {
            table: Table::WebhookOutbox,
            key: "junk".into(),
            value: Some(b"not json".to_vec()),
        };
        store
            .write_records(&app, vec![p.put().unwrap(), junk])
            .await
            .unwrap();
        assert_eq!(load(&store, &app).await.unwrap(), vec![p.clone()]);
        let left = store
            .scan_records(&app, Table::WebhookOutbox, "", None, 10)
            .await
            .unwrap();
        assert_eq!(left.len(), 1, "the junk record is gone");
        store.write_records(&app, vec![p.delete()]).await.unwrap();
        assert!(load(&store, &app).await.unwrap().is_empty());
    }
}
