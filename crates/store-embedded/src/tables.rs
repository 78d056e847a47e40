//! The fjall database and its seven keyspaces (layout in [`crate::keys`]).

use std::path::Path;

use fjall::{Database, Keyspace, KeyspaceCreateOptions};
use magpie_store::StoreError;

/// Handles to the database and its keyspaces. Cheap to clone (every handle is reference
/// counted) and safe to share: fjall serialises writes internally and readers see every
/// committed batch.
#[derive(Clone)]
pub(crate) struct Tables {
    /// The database, for write batches.
    pub(crate) db: Database,
    /// `(app, conv, seq)` → message.
    pub(crate) messages: Keyspace,
    /// `(app, sender, client_msg_id)` → `(conv, seq)`.
    pub(crate) dedup: Keyspace,
    /// `(app, user, conv)` → `(last_seq, last_time)`.
    pub(crate) user_convs: Keyspace,
    /// `(app, user)` → empty.
    pub(crate) users: Keyspace,
    /// `(app, conv, user)` → read position.
    pub(crate) reads: Keyspace,
    /// `(app, conv, user or everyone)` → seq of the last mention.
    pub(crate) mentions: Keyspace,
    /// `(app, table, key)` → the record's bytes.
    pub(crate) records: Keyspace,
}

impl Tables {
    /// Opens (or creates) the database in `dir`. Recovery of the journal after a crash
    /// happens here: fjall replays every complete, checksummed batch and drops a torn tail.
    pub(crate) fn open(dir: &Path) -> Result<Self, StoreError> {
        let db = Database::builder(dir).open().map_err(backend)?;
        let ks = |name: &str| {
            db.keyspace(name, KeyspaceCreateOptions::default)
                .map_err(backend)
        };
        Ok(Self {
            messages: ks("messages")?,
            dedup: ks("dedup")?,
            user_convs: ks("user_convs")?,
            users: ks("users")?,
            reads: ks("reads")?,
            mentions: ks("mentions")?,
            records: ks("records")?,
            db,
        })
    }
}

/// Maps an engine error. fjall errors are I/O or engine-state failures, not data the caller
/// sent, so they are all [`StoreError::Backend`].
pub(crate) fn backend(e: fjall::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}
