//! The REST API over real HTTP: a `Service` over the memory store, both routers served on
//! `127.0.0.1:0`, called with reqwest.
// Tests: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

mod admin;
mod bad_input;
mod credentials;
mod groups_rooms;
mod idempotency;
mod messages;
mod route_list;
mod users;
