//! Groups: membership and profile changes as events in the group's log.
//!
//! Every change follows one path, [`Service::change_group`]: take the group's lock
//! exclusively, compute the change on a copy of the state at the seq the event will get,
//! append the event together with the changed records in one atomic commit (guarded by
//! `expect_seq`), then install the copy and push the event to every member it concerns.
//! A failure anywhere before the commit leaves both the store and the cache untouched.
//!
//! - [`state`]: the cached group state and its locks.
//! - `ops`: the operations (create, add, join, leave, kick, ...).

pub mod ops;
pub mod state;

use std::sync::{Arc, OnceLock};

use magpie_core::ErrorKind;
use magpie_store::records::{self, GroupRecord, MemberRecord};
use magpie_store::{AppendRequest, EntryExtras, RecordWrite, StoreError, Table};
use magpie_types::{ClientMsgId, Content, ConvId, EntryKind, GroupId, Seq, UserId};

use crate::error::ServiceError;
use crate::messaging::Service;
use crate::sessions::{Delivery, Outbound, SessionCtx};
use state::GroupState;

pub use ops::CreateGroup;

/// A group as returned to clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    /// The group.
    pub id: GroupId,
    /// Profile and settings.
    pub record: GroupRecord,
}

impl GroupInfo {
    /// The group's conversation.
    pub fn conv(&self) -> ConvId {
        ConvId::group(&self.id)
    }
}

/// The result of a group operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupOutcome {
    /// The group after the operation.
    pub group: GroupInfo,
    /// The seq of the event appended (0 if none).
    pub seq: Seq,
    /// A join that awaits approval.
    pub pending: bool,
    /// Members or requesters (for listing operations).
    pub members: Vec<(UserId, MemberRecord)>,
    /// More members follow.
    pub has_more: bool,
}

/// What a change did, computed on a copy of the state.
#[derive(Debug, Default)]
struct Change {
    /// The event's JSON (`action` and details).
    event: serde_json::Map<String, serde_json::Value>,
    /// Users whose member records changed.
    touched: Vec<UserId>,
    /// Users who became members (they get a conversation index entry).
    joined: Vec<UserId>,
    /// Former members who must still see this event (left, kicked, dismissed).
    farewell: Vec<UserId>,
    /// Extra records to write with the event (join requests removed, ...).
    extra: Vec<RecordWrite>,
}

impl Change {
    fn new(action: &str, by: &UserId) -> Self {
        let mut event = serde_json::Map::new();
        event.insert("action".into(), action.into());
        event.insert("by".into(), by.as_str().into());
        Self {
            event,
            ..Self::default()
        }
    }

    fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.event.insert(key.into(), value.into());
        self
    }

    fn users(self, users: &[UserId]) -> Self {
        let list: Vec<serde_json::Value> = users.iter().map(|u| u.as_str().into()).collect();
        self.with("users", list)
    }
}

/// Shorthand for a refusal.
fn refuse(kind: ErrorKind, message: impl Into<String>) -> ServiceError {
    ServiceError::new(kind, message)
}

impl Service {
    /// Applies a membership or profile change (see the module docs). `apply` gets a copy
    /// of the state and the seq the event will have, and returns what it changed.
    async fn change_group(
        &self,
        who: &SessionCtx,
        group: &GroupId,
        apply: impl FnOnce(&mut GroupState, Seq) -> Result<Change, ServiceError>,
    ) -> Result<GroupOutcome, ServiceError> {
        let app = &who.app;
        let conv = ConvId::group(group);
        let mut guard = self.groups.write(&*self.store, app, group).await?;
        let Some(current) = guard.as_ref() else {
            drop(guard);
            self.groups.forget(app, group);
            return Err(refuse(ErrorKind::NotFound, format!("no group {group}")));
        };
        if current.record.dismissed {
            return Err(refuse(ErrorKind::Forbidden, "the group was dismissed"));
        }
        let seq = self.store.last_seq(app, &conv).await? + 1;
        let mut next = current.clone();
        let change = apply(&mut next, seq)?;
        let mut writes = change.extra;
        writes.push(records::put(
            Table::Groups,
            records::group_key(group),
            &next.record,
        )?);
        for user in &change.touched {
            if let Some(m) = next.members.get(user) {
                writes.push(records::put(
                    Table::Members,
                    records::member_key(group, user),
                    m,
                )?);
            }
        }
        let msg = self
            .append_event(who, &conv, seq, change.event, change.joined, writes)
            .await;
        let msg = match msg {
            Ok(m) => m,
            Err(e) => {
                // The state on disk may differ from the copy (another node, or a commit
                // whose outcome is unknown): reload on next use.
                drop(guard);
                self.groups.forget(app, group);
                return Err(e);
            }
        };
        *guard = Some(next);
        let state = guard.as_ref().ok_or_else(|| {
            ServiceError::new(ErrorKind::Internal, "group state vanished under its lock")
        })?;
        self.fan_out_group(app, state, &msg, None, &change.farewell);
        Ok(GroupOutcome {
            group: GroupInfo {
                id: group.clone(),
                record: state.record.clone(),
            },
            seq: msg.seq,
            pending: false,
            members: Vec::new(),
            has_more: false,
        })
    }

    /// Appends a GROUP_EVENT entry at exactly `seq`, with `records` in the same commit.
    async fn append_event(
        &self,
        who: &SessionCtx,
        conv: &ConvId,
        seq: Seq,
        event: serde_json::Map<String, serde_json::Value>,
        joined: Vec<UserId>,
        records: Vec<RecordWrite>,
    ) -> Result<magpie_store::StoredMessage, ServiceError> {
        let now = self.now_ms();
        let msg_id = self.next_id(now);
        let body = serde_json::Value::Object(event).to_string();
        let client_msg_id = ClientMsgId::new(format!("ev-{msg_id:x}"))
            .map_err(|e| ServiceError::new(ErrorKind::Internal, e.to_string()))?;
        let outcome = self
            .store
            .append(AppendRequest {
                app: who.app.clone(),
                conv: conv.clone(),
                msg_id,
                from_user: who.user.clone(),
                from_device: who.device.clone(),
                client_msg_id,
                content: Content::text(body),
                server_time: now,
                parties: joined,
                extras: EntryExtras {
                    kind: EntryKind::GroupEvent,
                    ..EntryExtras::default()
                },
                expect_seq: Some(seq),
                sender_read: false,
                records,
            })
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => ServiceError::new(
                    ErrorKind::Unavailable,
                    "the group changed concurrently; retry",
                ),
                other => ServiceError::from(other),
            })?;
        metrics::counter!("magpie_group_events_total").increment(1);
        let msg = outcome.message();
        self.emit(&who.app, "group.changed", || {
            let mut data = serde_json::from_slice::<serde_json::Value>(&msg.content.body)
                .unwrap_or(serde_json::Value::Null);
            if let Some(obj) = data.as_object_mut() {
                obj.insert(
                    "group".into(),
                    conv.to_string().trim_start_matches("g:").into(),
                );
                obj.insert("seq".into(), msg.seq.into());
            }
            (format!("group.changed:{}", msg.msg_id), data)
        });
        Ok(msg.clone())
    }

    /// Pushes a group entry to every online device of every current member (and of
    /// `farewell`, former members who must still see it), except connection `except`.
    pub(crate) fn fan_out_group(
        &self,
        app: &magpie_types::AppId,
        state: &GroupState,
        msg: &magpie_store::StoredMessage,
        except: Option<u64>,
        farewell: &[UserId],
    ) {
        let item = Outbound::Message(Arc::new(Delivery {
            msg: msg.clone(),
            encoded: OnceLock::new(),
        }));
        let mut queued = 0;
        for (user, _) in state.active_members() {
            queued += self.sessions.push_to_user(app, user, except, &item);
        }
        for user in farewell {
            queued += self.sessions.push_to_user(app, user, except, &item);
        }
        metrics::counter!("magpie_pushes_queued_total").increment(queued as u64);
    }
}
