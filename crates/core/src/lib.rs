//! Magpie's messaging rules, without I/O.
//!
//! - [`auth`]: user tokens (JWT, HS256 by default) — minting and verification, with `now`
//!   passed in.
//! - [`limits`]: the limits a server enforces ([`Limits`]).
//! - [`send`]: turning a send request into a validated [`send::ValidatedSend`], or a typed
//!   refusal.
//! - [`delivery`]: the per-connection [`delivery::DeliveryTracker`] that decides when an
//!   unacknowledged push is sent again and when a connection has failed.
//! - [`group_rules`]: who may do what in a group.
//! - [`membership`]: membership intervals — which seqs of a group's log a user may see.
//! - [`room`]: live rooms — the downstream budget and its fair sampling, the short log of
//!   reliable messages, and who may send what.
//! - [`error`]: [`ErrorKind`], the stable error vocabulary the gateway maps to wire codes.
//!
//! Architecture invariant: nothing here touches a socket, a file, a clock or a task. Time is
//! an argument; effects are return values. That keeps every rule unit- and property-testable.

pub mod auth;
pub mod delivery;
pub mod error;
pub mod filter;
pub mod group_rules;
pub mod limits;
pub mod membership;
pub mod room;
pub mod send;

pub use error::ErrorKind;
pub use limits::Limits;
