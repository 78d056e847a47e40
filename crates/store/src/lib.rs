//! Storage for Magpie, behind traits.
//!
//! - [`model`]: the records a backend stores ([`StoredMessage`], [`AppendRequest`], ...).
//! - [`traits`]: [`MessageStore`] (conversation logs, dedup, per-user conversation index) and
//!   [`UserDirectory`] (which users exist in an app), [`ReadStore`] (read positions and
//!   mentions), [`RecordStore`] (generic records); [`Store`] is all of them.
//! - [`records`]: the typed records kept in the record store (groups, members, settings).
//! - [`memory`]: an in-memory backend, the reference for the conformance suite and for tests.
//! - [`conformance`]: the suite every backend runs, via [`store_conformance_tests!`].
//!
//! Architecture invariants: every key and query is scoped by [`magpie_types::AppId`]; `seq`
//! assignment, the dedup record, the message and the index updates of one append are one
//! atomic, durable commit; an `Ok` from [`MessageStore::append`] means durable.

pub mod conformance;
pub mod memory;
pub mod model;
pub mod records;
pub mod traits;

pub use memory::MemoryStore;
pub use model::{
    AppendOutcome, AppendRequest, ConversationEntry, EntryExtras, ReadPosition, RecordWrite,
    StoreError, StoredMessage, Table,
};
pub use traits::{MessageStore, ReadStore, RecordStore, Store, UserDirectory};
