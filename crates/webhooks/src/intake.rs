//! From `emit` to the outbox: events are made durable in batches before any delivery.
//!
//! `emit` must never block a send, so it only puts the event on a bounded channel. This
//! task takes whatever has accumulated (up to [`BATCH`] events), writes each app's share
//! with one `write_records` (one durable commit per app per batch, so a burst costs a few
//! commits rather than one per event), and hands the batch to the dispatcher. Because the
//! batch grows with the backlog, the channel drains as fast as the store commits; it fills
//! only if the store stalls, and then `emit` counts and logs the overflow (see
//! [`crate::WebhookSender`]).
//!
//! On shutdown the task stops taking new events, persists what is still queued, and ends:
//! an event that `emit` accepted is in the store when `shutdown` returns.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::join_all;
use magpie_service::hooks::HookEvent;
use magpie_types::AppId;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::delivery::now_ms;
use crate::dispatcher::Context;
use crate::outbox::Pending;

/// Events the channel from `emit` holds.
pub(crate) const QUEUE: usize = 16_384;
/// Most events persisted in one batch.
const BATCH: usize = 1_024;

/// Runs until `cancel`, then persists what is queued and returns.
pub(crate) async fn run(
    cx: Arc<Context>,
    mut events: mpsc::Receiver<HookEvent>,
    to_dispatcher: mpsc::Sender<Vec<Pending>>,
    cancel: CancellationToken,
) {
    let mut buf = Vec::with_capacity(BATCH);
    loop {
        tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            n = events.recv_many(&mut buf, BATCH) => {
                if n == 0 {
                    return;
                }
                let batch = persist(&cx, buf.drain(..)).await;
                if to_dispatcher.send(batch).await.is_err() {
                    break;
                }
            }
        }
    }
    // Shutting down (or the dispatcher is gone): keep what was accepted for the next start.
    events.close();
    while events.recv_many(&mut buf, BATCH).await > 0 {
        persist(&cx, buf.drain(..)).await;
    }
}

/// Writes `events` to their apps' outboxes and returns them as pending deliveries. An
/// event whose write failed is still returned: delivering it from memory beats losing it.
async fn persist(cx: &Context, events: impl Iterator<Item = HookEvent>) -> Vec<Pending> {
    let now = now_ms();
    let mut by_app: HashMap<AppId, Vec<Pending>> = HashMap::new();
    let mut order = Vec::new();
    for event in events {
        let Some(p) = pending(event, now) else {
            continue;
        };
        let list = by_app.entry(p.app.clone()).or_default();
        if list.is_empty() {
            order.push(p.app.clone());
        }
        list.push(p);
    }
    let writes = order.iter().filter_map(|app| {
        let list = by_app.get(app)?;
        let records = list.iter().filter_map(|p| p.put().ok()).collect();
        Some(async move {
            let n = list.len() as u64;
            match cx.store.write_records(app, records).await {
                Ok(()) => events_total("queued", n),
                Err(e) => {
                    tracing::warn!(%app, events = n, error = %e, "webhook outbox write failed; delivering from memory only");
                    events_total("unpersisted", n);
                }
            }
        })
    });
    join_all(writes).await;
    order
        .into_iter()
        .filter_map(|app| by_app.remove(&app))
        .flatten()
        .collect()
}

/// The pending form of a new event, or `None` (logged) if it cannot be delivered at all.
fn pending(event: HookEvent, now: u64) -> Option<Pending> {
    let app = match AppId::new(event.app.as_str()) {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(event = %event.id, error = %e, "webhook event with a bad app id dropped");
            events_total("invalid", 1);
            return None;
        }
    };
    let body = match serde_json::to_vec(&event) {
        Ok(b) => Bytes::from(b),
        Err(e) => {
            tracing::warn!(%app, event = %event.id, error = %e, "webhook event not encodable; dropped");
            events_total("invalid", 1);
            return None;
        }
    };
    Some(Pending {
        app,
        id: event.id,
        kind: event.kind.to_owned(),
        body,
        attempts: 0,
        next_attempt_ms: now,
    })
}

/// Counts events entering (or failing to enter) the outbox.
pub(crate) fn events_total(outcome: &'static str, n: u64) {
    metrics::counter!("magpie_webhook_events_total", "outcome" => outcome).increment(n);
}
