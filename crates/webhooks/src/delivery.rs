//! One delivery attempt of one event, and what it leaves in the outbox.
//!
//! An attempt reads the app's settings *now*, so a changed URL or secret applies to
//! events already waiting. A 2xx answer delivers the event; anything else (another
//! status, a refused connection, a timeout) counts as a failure, and the event is tried
//! again after a backoff until its attempts run out. The outbox record follows each
//! outcome (deleted, or rewritten with the new attempt count) inside the attempt, so the
//! store writes of concurrent deliveries do not queue behind the scheduler.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::Response;

use crate::client::{self, Signed};
use crate::dispatcher::Context;
use crate::outbox::Pending;

/// The most of a receiver's answer read (and ignored) so the connection can be reused.
const MAX_IGNORED_ANSWER: usize = 64 * 1024;

/// What became of an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A receiver took it; the record is gone.
    Delivered,
    /// It failed; try again after this long (the record says when, too).
    Retry(Duration),
    /// It is given up (attempts exhausted, or the app is gone); the record is gone.
    Dropped,
}

/// Tries to deliver `p` once. Returns the event (with its attempt count updated) and the
/// outcome.
pub(crate) async fn attempt(cx: &Context, mut p: Pending) -> (Pending, Outcome) {
    let Some(app) = cx.apps.get(&p.app) else {
        tracing::warn!(app = %p.app, event = %p.id, "webhook event dropped: the app no longer exists");
        remove(cx, &p).await;
        count("dropped");
        return (p, Outcome::Dropped);
    };
    let settings = &app.config.settings.webhooks;
    let failure = match settings.url.as_deref() {
        None => "the app has no webhook URL".to_owned(),
        Some(url) => {
            let started = Instant::now();
            let sent = client::post(
                &cx.http,
                Signed {
                    url,
                    secret: &settings.signing_secret,
                    id: &p.id,
                    kind: &p.kind,
                    body: p.body.clone(),
                    timeout: cx.config.request_timeout,
                },
            )
            .await;
            metrics::histogram!("magpie_webhook_delivery_seconds")
                .record(started.elapsed().as_secs_f64());
            match answer(sent).await {
                Ok(()) => {
                    remove(cx, &p).await;
                    count("delivered");
                    return (p, Outcome::Delivered);
                }
                Err(reason) => reason,
            }
        }
    };
    drop(app);
    count("failed");
    p.attempts = p.attempts.saturating_add(1);
    if p.attempts >= cx.config.max_attempts.max(1) {
        tracing::warn!(
            app = %p.app, event = %p.id, attempts = p.attempts, reason = %failure,
            "webhook event dropped: every attempt failed"
        );
        remove(cx, &p).await;
        count("dropped");
        return (p, Outcome::Dropped);
    }
    let wait = cx.config.backoff(p.attempts, rand::random::<f64>());
    p.next_attempt_ms = now_ms().saturating_add(millis(wait));
    tracing::debug!(
        app = %p.app, event = %p.id, attempts = p.attempts, reason = %failure,
        retry_in_ms = millis(wait), "webhook delivery failed"
    );
    match p.put() {
        Ok(w) => {
            if let Err(e) = cx.store.write_records(&p.app, vec![w]).await {
                // The old record stays: a restart retries with the older count, no loss.
                tracing::warn!(app = %p.app, event = %p.id, error = %e, "webhook outbox update failed");
            }
        }
        Err(e) => {
            tracing::warn!(app = %p.app, event = %p.id, error = %e, "webhook outbox record not encodable")
        }
    }
    (p, Outcome::Retry(wait))
}

/// Whether the exchange delivered the event; if not, why (without the URL, which may
/// carry a token and goes to the logs).
async fn answer(sent: Result<Response, reqwest::Error>) -> Result<(), String> {
    let resp = sent.map_err(|e| e.without_url().to_string())?;
    let status = resp.status();
    client::discard(resp, MAX_IGNORED_ANSWER).await;
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("HTTP {status}"))
    }
}

/// Deletes `p`'s outbox record. A failed delete is logged and otherwise ignored: the
/// event would be delivered once more after a restart, which receivers deduplicate.
async fn remove(cx: &Context, p: &Pending) {
    if let Err(e) = cx.store.write_records(&p.app, vec![p.delete()]).await {
        tracing::warn!(app = %p.app, event = %p.id, error = %e, "webhook outbox delete failed");
    }
}

fn count(outcome: &'static str) {
    metrics::counter!("magpie_webhook_deliveries_total", "outcome" => outcome).increment(1);
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Wall-clock now, Unix ms: outbox times must mean the same after a restart.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, millis)
}
