//! The in-memory view of groups: profile and members, loaded once from the record store.
//!
//! Why a cache: fan-out and authorization need a group's members on every message, and a
//! 100,000-member group is far too many records to read per message. The stored records
//! stay the truth; this is a copy kept exact by one rule: every change goes through
//! [`GroupSlot::write`], which holds the group's lock across "append the event, write the
//! records, update the copy". Messages hold the same lock shared while they append and fan
//! out, so a message's fan-out sees exactly the membership in force at its seq.

use std::collections::HashMap;
use std::sync::Arc;

use magpie_store::records::{self, GroupRecord, MemberRecord};
use magpie_store::{Store, Table};
use magpie_types::{AppId, GroupId, UserId};
use parking_lot::Mutex;
use tokio::sync::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};

use crate::error::ServiceError;

/// Records read per page while loading a group's members.
const LOAD_PAGE: usize = 4_096;

/// A group as loaded: its record and every member, current and former.
#[derive(Debug, Clone, Default)]
pub struct GroupState {
    /// Profile and settings.
    pub record: GroupRecord,
    /// Every user who has ever been a member, with their intervals.
    pub members: HashMap<UserId, MemberRecord>,
}

impl GroupState {
    /// The member record of `user` if they are a member now.
    pub fn active(&self, user: &UserId) -> Option<&MemberRecord> {
        self.members.get(user).filter(|m| m.is_active())
    }

    /// Current members.
    pub fn active_members(&self) -> impl Iterator<Item = (&UserId, &MemberRecord)> {
        self.members.iter().filter(|(_, m)| m.is_active())
    }
}

/// One group's slot: `None` inside means the group does not exist (yet).
pub type GroupSlot = Arc<RwLock<Option<GroupState>>>;

/// Loaded groups of every app.
#[derive(Debug, Default)]
pub struct GroupCache {
    slots: Mutex<HashMap<(AppId, GroupId), GroupSlot>>,
}

impl GroupCache {
    /// The group's state, shared (for sends, reads, syncs). Loads it on first use.
    pub async fn read(
        &self,
        store: &dyn Store,
        app: &AppId,
        group: &GroupId,
    ) -> Result<OwnedRwLockReadGuard<Option<GroupState>>, ServiceError> {
        let slot = self.slot(app, group);
        {
            let guard = slot.clone().read_owned().await;
            if guard.is_some() {
                return Ok(guard);
            }
        }
        // Not loaded (or absent): load under the write lock, then downgrade.
        let mut guard = slot.write_owned().await;
        if guard.is_none() {
            *guard = load(store, app, group).await?;
        }
        if guard.is_none() {
            // No such group: keep no slot for it, or probing random ids would grow the map.
            self.forget(app, group);
        }
        Ok(guard.downgrade())
    }

    /// The group's state, exclusively (for membership and profile changes). Loads it on
    /// first use; `None` inside means the group does not exist.
    pub async fn write(
        &self,
        store: &dyn Store,
        app: &AppId,
        group: &GroupId,
    ) -> Result<OwnedRwLockWriteGuard<Option<GroupState>>, ServiceError> {
        let mut guard = self.slot(app, group).write_owned().await;
        if guard.is_none() {
            *guard = load(store, app, group).await?;
        }
        Ok(guard)
    }

    /// Drops a loaded copy, so the next use reloads it from the store (after a write whose
    /// outcome is unknown).
    pub fn forget(&self, app: &AppId, group: &GroupId) {
        self.slots.lock().remove(&(app.clone(), group.clone()));
    }

    fn slot(&self, app: &AppId, group: &GroupId) -> GroupSlot {
        self.slots
            .lock()
            .entry((app.clone(), group.clone()))
            .or_default()
            .clone()
    }
}

/// Reads a group and all its member records from the store (`None` if it does not exist).
async fn load(
    store: &dyn Store,
    app: &AppId,
    group: &GroupId,
) -> Result<Option<GroupState>, ServiceError> {
    let Some(bytes) = store
        .get_record(app, Table::Groups, &records::group_key(group))
        .await?
    else {
        return Ok(None);
    };
    let record: GroupRecord = records::decode(&bytes)?;
    let prefix = records::member_prefix(group);
    let mut members = HashMap::new();
    let mut after: Option<String> = None;
    loop {
        let page = store
            .scan_records(app, Table::Members, &prefix, after.as_deref(), LOAD_PAGE)
            .await?;
        let full = page.len() == LOAD_PAGE;
        for (key, value) in &page {
            members.insert(records::user_of_key(key)?, records::decode(value)?);
        }
        after = page.into_iter().last().map(|(k, _)| k);
        if !full {
            break;
        }
    }
    Ok(Some(GroupState { record, members }))
}
