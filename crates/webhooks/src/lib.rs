//! Magpie's webhook sender: an app's after-events over signed HTTP, durable and retried,
//! and its synchronous before-send hook. It implements the service's
//! [`magpie_service::hooks::Hooks`] seam; the service decides when events happen and
//! what a verdict means, this crate decides how they travel.
//!
//! - [`sender`]: [`WebhookSender`], the `Hooks` implementation: start, shutdown, emit,
//!   before-send.
//! - [`config`]: [`WebhookConfig`]: attempts, backoff with jitter, request timeout.
//! - [`signature`]: the `X-Magpie-Signature` HMAC-SHA256 ([`sign`], [`verify`]).
//! - [`before_send`]: one signed POST per message, answered with a verdict.
//! - [`error`]: why the sender could not start ([`WebhookError`]).
//! - `client`: the one pooled HTTP client (rustls with `ring`, no redirects) and the
//!   signed POST.
//! - `outbox`: undelivered events in the store (`Table::WebhookOutbox`), loaded on start.
//! - `intake`: from `emit` to the outbox, in batches.
//! - `dispatcher`: which event is tried next; bounded concurrency, fair across apps.
//! - `delivery`: one attempt and what it leaves in the outbox.
//!
//! Delivery is at least once: an event keeps its id on every attempt and across
//! restarts, and receivers deduplicate by `X-Magpie-Event-Id`.

pub mod before_send;
mod client;
pub mod config;
mod delivery;
mod dispatcher;
pub mod error;
mod intake;
mod outbox;
pub mod sender;
pub mod signature;

pub use config::WebhookConfig;
pub use error::WebhookError;
pub use sender::WebhookSender;
pub use signature::{EVENT_ID_HEADER, EVENT_TYPE_HEADER, SIGNATURE_HEADER, sign, verify};
