//! Magpie's service layer: async orchestration around the sans-I/O core.
//!
//! - [`apps`]: the tenants and their secrets ([`AppRegistry`]).
//! - [`sessions`]: who is online on which connection ([`SessionRegistry`]), with bounded
//!   per-connection outbound queues.
//! - [`messaging`]: [`Service`], the operations a connection performs: send, pull, history,
//!   conversation list.
//! - [`clock`]: the time source ([`Clock`]), injectable for tests.
//! - [`error`]: the error type, [`ServiceError`].
//!
//! The service knows nothing of sockets or wire formats: the gateway converts frames to the
//! calls here and [`sessions::Outbound`] items back to frames.

pub mod apps;
pub mod clock;
pub mod error;
pub mod messaging;
pub mod sessions;

pub use apps::{AppConfig, AppRegistry};
pub use clock::{Clock, SystemClock};
pub use error::ServiceError;
pub use messaging::{ConversationPage, MessagePage, SendAck, Service, ServiceConfig};
pub use sessions::{Delivery, Outbound, SessionCtx, SessionRegistry};
