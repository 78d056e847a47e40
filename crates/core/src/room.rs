//! Live-room rules, without I/O.
//!
//! - [`budget`]: the downstream budget — which best-effort messages of a batching window a
//!   room's connections receive when senders outpace it.
//! - [`log`]: the short per-room log of reliable (high-priority) messages, with retry
//!   deduplication.
//! - [`rules`]: who may send what, and the upstream controls (mute, mute all, slow mode).

pub mod budget;
pub mod log;
pub mod rules;
