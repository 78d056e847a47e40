//! Which tables of which apps are known to hold no record at all.
//!
//! Some questions are asked on hot paths and almost always have the empty answer: does
//! this user have an account record (a login), did the recipient block the sender (a 1:1
//! send), who are this user's friends (presence, on every connect and disconnect). Most
//! apps have no record in those tables until a feature is used, so an app seen with an
//! empty table answers from memory instead of reading the store (and waiting for a
//! blocking thread) each time.
//!
//! The race to avoid: a scan that starts, a write that lands, then the scan's "empty"
//! being believed. Every write first calls [`EmptyTables::will_write`], which forgets the
//! table and bumps a counter; a scan's empty answer is recorded only if no write started
//! while it ran ([`EmptyTables::scanned_empty`]).
//!
//! One node: with several nodes a write on another node must reach this one over the bus
//! before it is seen here.

use std::collections::HashSet;

use magpie_store::Table;
use magpie_types::AppId;
use parking_lot::Mutex;

/// See the module documentation.
#[derive(Debug, Default)]
pub(crate) struct EmptyTables {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    empty: HashSet<(AppId, Table)>,
    /// Writes started so far.
    writes: u64,
}

/// What [`EmptyTables::check`] knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Known {
    /// The table is empty.
    Empty,
    /// Unknown: scan, then report an empty result with this token.
    Unknown(u64),
}

impl EmptyTables {
    /// Whether `table` of `app` is known to be empty.
    pub(crate) fn check(&self, app: &AppId, table: Table) -> Known {
        let state = self.state.lock();
        if state.empty.contains(&(app.clone(), table)) {
            Known::Empty
        } else {
            Known::Unknown(state.writes)
        }
    }

    /// A scan that began with token `seen` found the table empty.
    pub(crate) fn scanned_empty(&self, app: &AppId, table: Table, seen: u64) {
        let mut state = self.state.lock();
        // A write that started after `seen` may not have been visible to the scan.
        if state.writes == seen {
            state.empty.insert((app.clone(), table));
        }
    }

    /// Must be called before any write to `table` of `app` (a put: deletes cannot make a
    /// table non-empty).
    pub(crate) fn will_write(&self, app: &AppId, table: Table) {
        let mut state = self.state.lock();
        state.writes += 1;
        state.empty.remove(&(app.clone(), table));
    }
}

impl crate::Service {
    /// Whether `table` of `app` holds no record: from memory once seen empty, else one
    /// bounded scan.
    pub(crate) async fn table_is_empty(
        &self,
        app: &AppId,
        table: Table,
    ) -> Result<bool, crate::ServiceError> {
        let seen = match self.empty_tables.check(app, table) {
            Known::Empty => return Ok(true),
            Known::Unknown(seen) => seen,
        };
        let empty = self
            .store
            .scan_records(app, table, "", None, 1)
            .await?
            .is_empty();
        if empty {
            self.empty_tables.scanned_empty(app, table, seen);
        }
        Ok(empty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_during_a_scan_keeps_the_table_unknown() {
        let t = EmptyTables::default();
        let app = AppId::new("a").unwrap();
        let Known::Unknown(seen) = t.check(&app, Table::Blocks) else {
            panic!("nothing is known at first");
        };
        t.will_write(&app, Table::Blocks);
        t.scanned_empty(&app, Table::Blocks, seen);
        assert!(matches!(t.check(&app, Table::Blocks), Known::Unknown(_)));

        let Known::Unknown(seen) = t.check(&app, Table::Blocks) else {
            unreachable!()
        };
        t.scanned_empty(&app, Table::Blocks, seen);
        assert_eq!(t.check(&app, Table::Blocks), Known::Empty);
        assert!(
            matches!(t.check(&app, Table::Friends), Known::Unknown(_)),
            "per table"
        );
        t.will_write(&app, Table::Blocks);
        assert!(matches!(t.check(&app, Table::Blocks), Known::Unknown(_)));
    }
}
