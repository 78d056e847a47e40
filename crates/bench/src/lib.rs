//! Magpie's load generator: drives real connections to a running server on this machine
//! and prints what it measured.
//!
//! It speaks the wire protocol directly (`magpie-proto` over tokio TCP, or WebSocket),
//! not through the SDK: a bench connection is two socket halves and two buffers, so one
//! process can hold thousands of them and still leave the CPU to the server.
//!
//! Scenarios (each returns one serialisable summary, printed by `magpie bench` as one
//! JSON line):
//! - [`connect`]: N authenticated idle connections, connect rate, server memory per
//!   connection.
//! - [`p2p`]: sender → receiver pairs, max throughput or a fixed rate; ack and delivery
//!   latency, lost and duplicated messages.
//! - [`room`]: G members in one live room, S of them sending at a fixed rate with a mix
//!   of priorities; deliveries per second, delivery latency, HIGH messages lost, what the
//!   downstream budget dropped, the batching.
//! - [`group`]: fan-out in one group of G online members, S of them sending M messages
//!   (as fast as a window allows or at a fixed rate); deliveries per second, delivery and
//!   ack latency, lost and duplicated deliveries.
//!
//! Machinery:
//! - [`target`]: the server URL, refused unless it is on loopback.
//! - [`identity`]: the app, its secret, per-run user names, token minting.
//! - [`conn`]: dial (from 127.X.Y.n source addresses), WebSocket upgrade, handshake.
//! - [`frames`]: batched frame reads and writes on one connection.
//! - [`latency`]: HdrHistogram distributions, mergeable across processes.
//! - [`procfs`]: a server's RSS, this process's open-file limit.
//! - [`metrics`]: the server's own counters from its Prometheus endpoint.
//! - [`plan`]: options shared by the scenarios, cutting a run into shards.
//! - [`pacing`]: when a sender's messages leave and which are unanswered (`group`, `room`).
//! - [`shard`]: the part of a run one process does, and its ready/go handshake.
//! - [`pool`]: running shards as tasks or as worker processes (this binary re-executed).
//! - [`worker`]: the worker process's stdin/stdout loop.
//!
//! Every run is bounded: counts are capped, and a run-wide deadline (`--timeout`) stops
//! every shard, every worker, and the coordinator itself.

pub mod conn;
pub mod connect;
pub mod frames;
pub mod group;
pub mod identity;
pub mod latency;
pub mod metrics;
pub mod p2p;
pub mod pacing;
pub mod plan;
pub mod pool;
pub mod procfs;
pub mod room;
pub mod shard;
pub mod target;
pub mod worker;

pub use connect::{ConnectOptions, ConnectSummary};
pub use group::{GroupOptions, GroupSummary};
pub use p2p::{P2pOptions, P2pSummary};
pub use plan::Common;
pub use pool::WorkerCommand;
pub use room::{RoomOptions, RoomSummary};
pub use target::{Target, Transport};
