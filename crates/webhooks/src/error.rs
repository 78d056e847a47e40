//! The crate's error type.

use magpie_store::StoreError;

/// Why the webhook sender could not start.
///
/// Delivery failures are not errors of the API: they are retried, logged and counted
/// (`magpie_webhook_deliveries_total`), and a before-send failure is a
/// [`magpie_service::hooks::HookError`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// The outbox of undelivered events could not be read from the store.
    #[error("the webhook outbox could not be read: {0}")]
    Store(#[from] StoreError),
    /// The HTTP client (TLS configuration, connection pool) could not be built.
    #[error("the webhook HTTP client could not be built: {0}")]
    Client(String),
}
