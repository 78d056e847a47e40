//! [`WebhookSender`]: the [`Hooks`] implementation the server installs in its service.

use std::sync::Arc;

use async_trait::async_trait;
use magpie_service::AppRegistry;
use magpie_service::apps::WebhookSettings;
use magpie_service::hooks::{BeforeSend, HookError, HookEvent, Hooks, Verdict};
use magpie_store::Store;
use parking_lot::Mutex;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::WebhookConfig;
use crate::dispatcher::{self, Context};
use crate::error::WebhookError;
use crate::intake::{self, events_total};
use crate::{before_send, client, outbox};

/// Batches in flight between the intake and the dispatcher; the dispatcher takes them as
/// soon as they come, so a few suffice.
const BATCHES: usize = 8;

/// Sends an app's events to its webhook URL (signed, durable, retried) and asks its
/// before-send hook.
///
/// Events go through a bounded queue to a task that persists them in batches (see
/// `intake`), then to a dispatcher that delivers them (see `dispatcher`). If the queue is
/// full (the store has stalled for a whole queue's worth of events) `emit` drops the event,
/// counting it in `magpie_webhook_events_total{outcome="overflow"}` and logging its id:
/// a send must never wait for a webhook.
pub struct WebhookSender {
    cx: Arc<Context>,
    events: mpsc::Sender<HookEvent>,
    cancel: CancellationToken,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for WebhookSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSender")
            .field("config", &self.cx.config)
            .field("queued", &(intake::QUEUE - self.events.capacity()))
            .field("stopped", &self.cancel.is_cancelled())
            .finish_non_exhaustive()
    }
}

impl WebhookSender {
    /// Starts the dispatcher; loads events left undelivered in the store (every app in
    /// `apps`).
    pub async fn start(
        store: Arc<dyn Store>,
        apps: AppRegistry,
        config: WebhookConfig,
    ) -> Result<Arc<Self>, WebhookError> {
        let http = client::build()?;
        let mut initial = Vec::new();
        for app in apps.list() {
            initial.extend(outbox::load(store.as_ref(), &app.config.id).await?);
        }
        if !initial.is_empty() {
            tracing::info!(
                events = initial.len(),
                "webhook events left undelivered; resuming"
            );
        }
        let cx = Arc::new(Context {
            store,
            apps,
            http,
            config,
        });
        let (events, events_rx) = mpsc::channel(intake::QUEUE);
        let (batches, batches_rx) = mpsc::channel(BATCHES);
        let cancel = CancellationToken::new();
        let tasks = vec![
            tokio::spawn(intake::run(cx.clone(), events_rx, batches, cancel.clone())),
            tokio::spawn(dispatcher::run(
                cx.clone(),
                initial,
                batches_rx,
                cancel.clone(),
            )),
        ];
        Ok(Arc::new(Self {
            cx,
            events,
            cancel,
            tasks: Mutex::new(tasks),
        }))
    }

    /// Stops the dispatcher (pending events stay in the store for the next start). Events
    /// already accepted by `emit` are persisted before this returns; attempts in flight are
    /// abandoned (their events are delivered again after the next start).
    pub async fn shutdown(&self) {
        self.cancel.cancel();
        let tasks = std::mem::take(&mut *self.tasks.lock());
        for t in tasks {
            if let Err(e) = t.await {
                tracing::error!(error = %e, "webhook task failed");
            }
        }
    }
}

impl Drop for WebhookSender {
    /// A sender dropped without `shutdown` still stops its tasks.
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

#[async_trait]
impl Hooks for WebhookSender {
    /// Queues `event`. `settings` are not kept: each attempt reads the app's settings as
    /// they are then, so a changed URL or secret applies to waiting events too.
    fn emit(&self, event: HookEvent, _settings: &WebhookSettings) {
        match self.events.try_send(event) {
            Ok(()) => {}
            Err(TrySendError::Full(e)) => {
                events_total("overflow", 1);
                tracing::warn!(app = %e.app, event = %e.id, "webhook queue full; event dropped");
            }
            Err(TrySendError::Closed(e)) => {
                events_total("closed", 1);
                tracing::warn!(app = %e.app, event = %e.id, "webhook sender stopped; event dropped");
            }
        }
    }

    async fn before_send(
        &self,
        settings: &WebhookSettings,
        message: &BeforeSend,
    ) -> Result<Verdict, HookError> {
        before_send::ask(&self.cx.http, settings, message).await
    }
}
