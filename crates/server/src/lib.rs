//! Magpie server wiring: the only crate that picks concrete backends.
//!
//! - [`config`]: [`Config`], the static process configuration: defaults, then a TOML file,
//!   then `MAGPIE_` environment variables (then command-line flags, applied by the binary).
//! - [`server`]: [`Server::start`] binds the listeners, opens the store, seeds the demo app
//!   and returns the bound addresses; [`Server::shutdown`] drains gracefully.
//! - [`http`]: the HTTP listener (`/healthz`, `/readyz`, `/metrics`).
//! - [`metrics`]: the Prometheus recorder and the metric names.
//! - [`demo`]: the demo app and its seeded users.

pub mod config;
pub mod demo;
pub mod http;
pub mod metrics;
pub mod server;

pub use config::{Config, ConfigError};
pub use server::{Addrs, Server};
