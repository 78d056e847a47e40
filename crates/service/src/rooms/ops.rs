//! Room operations: create, join, leave, close, look, moderate, change settings.

use std::sync::Arc;

use magpie_core::ErrorKind;
use magpie_store::records::{self, RoomRecord, RoomUserRecord};
use magpie_store::{RecordWrite, Table};
use magpie_types::{RoomId, Seq, UserId};

use super::{Room, RoomEntry, RoomInfo, RoomNotice, RoomNoticeKind, RoomSettings, new_room};
use crate::error::ServiceError;
use crate::messaging::Service;
use crate::sessions::SessionCtx;

/// Longest slow-mode interval a room may set: one hour.
const MAX_SLOW_MODE_MS: u32 = 3_600_000;

/// Settings to change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomSettingsChange {
    /// Downstream budget, msgs/s (0: the default).
    pub budget_per_s: Option<u32>,
    /// Slow mode, ms (0: off).
    pub slow_mode_ms: Option<u32>,
    /// Room-wide send limit, msgs/s (0: the default).
    pub send_rate_per_s: Option<u32>,
    /// Only admins may speak.
    pub mute_all: Option<bool>,
    /// Members may send high priority.
    pub members_may_send_high: Option<bool>,
    /// Display name.
    pub name: Option<String>,
}

/// A moderation action on one user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomAction {
    /// Mute for this many ms (0: unmute).
    Mute(u64),
    /// Remove the user's connections; they may join again.
    Kick,
    /// Remove them and refuse later joins.
    Ban,
    /// Lift a ban.
    Unban,
    /// Make an admin (true) or a plain member (false). Owner only.
    Admin(bool),
}

/// The outcome of a join.
#[derive(Debug)]
pub struct RoomJoined {
    /// The room (the gateway keeps it to retransmit and to leave).
    pub room: Arc<Room>,
    /// The room as it is now.
    pub info: RoomInfo,
    /// Reliable messages after the `since_seq` asked for.
    pub missed: Vec<Arc<RoomEntry>>,
    /// Some after `since_seq` were already evicted.
    pub gap: bool,
    /// The connection has every reliable message up to here (for its retransmission
    /// state): `since_seq` if one was given, else the room's last seq.
    pub acked: Seq,
}

/// Messages fetched from a room's log.
#[derive(Debug)]
pub struct RoomFetched {
    /// The room as it is now.
    pub info: RoomInfo,
    /// In seq order.
    pub messages: Vec<Arc<RoomEntry>>,
    /// Some after `since_seq` were already evicted.
    pub gap: bool,
}

pub(crate) fn is_admin(record: &RoomRecord, user: &UserId) -> bool {
    record.owner == user.as_str() || record.admins.iter().any(|a| a == user.as_str())
}

fn not_found() -> ServiceError {
    ServiceError::new(ErrorKind::NotFound, "no such room")
}

fn closed() -> ServiceError {
    ServiceError::new(ErrorKind::NotFound, "the room is closed")
}

fn admins_only() -> ServiceError {
    ServiceError::new(ErrorKind::Forbidden, "only room admins may do this")
}

impl Service {
    /// The room, loaded; `NOT_FOUND` if it does not exist.
    pub(crate) async fn room(
        &self,
        ctx_app: &magpie_types::AppId,
        room: &RoomId,
    ) -> Result<Arc<Room>, ServiceError> {
        self.rooms
            .get(
                &*self.store,
                &self.room_config,
                ctx_app,
                room,
                self.now_ms(),
            )
            .await?
            .ok_or_else(not_found)
    }

    /// The room's settings with defaults resolved.
    pub(crate) fn effective_settings(
        &self,
        app: &magpie_types::AppId,
        r: &RoomRecord,
    ) -> RoomSettings {
        let c = &self.room_config;
        let budget = if r.budget_per_s > 0 {
            r.budget_per_s
        } else {
            self.apps()
                .room_budget_per_s(app)
                .unwrap_or(c.default_budget_per_s)
        };
        RoomSettings {
            budget_per_s: budget,
            slow_mode_ms: r.slow_mode_ms,
            send_rate_per_s: if r.send_rate_per_s > 0 {
                r.send_rate_per_s
            } else {
                c.default_send_rate_per_s
            },
            mute_all: r.mute_all,
            members_may_send_high: r.members_may_send_high,
        }
    }

    pub(crate) fn room_info(&self, room: &Room) -> RoomInfo {
        let (online, connections) = room.online();
        let st = room.state.lock();
        RoomInfo {
            room: room.id.clone(),
            name: st.record.name.clone(),
            owner: st.record.owner.clone(),
            admins: st.record.admins.clone(),
            online,
            connections,
            last_seq: st.log.last_seq(),
            closed: st.record.closed,
            settings: self.effective_settings(&room.app, &st.record),
        }
    }

    fn check_settings(&self, c: &RoomSettingsChange) -> Result<(), ServiceError> {
        let max = self.room_config.max_rate_per_s;
        let over = |v: Option<u32>| v.is_some_and(|v| v > max);
        if over(c.budget_per_s) || over(c.send_rate_per_s) {
            return Err(ServiceError::new(
                ErrorKind::InvalidArgument,
                format!("room rates are at most {max} per second"),
            ));
        }
        if c.slow_mode_ms.is_some_and(|v| v > MAX_SLOW_MODE_MS) {
            return Err(ServiceError::new(
                ErrorKind::InvalidArgument,
                format!("slow mode is at most {MAX_SLOW_MODE_MS} ms"),
            ));
        }
        let max_field = self.limits().max_group_field_bytes;
        if c.name.as_ref().is_some_and(|n| n.len() > max_field) {
            return Err(ServiceError::new(
                ErrorKind::InvalidArgument,
                format!("room name is longer than {max_field} bytes"),
            ));
        }
        Ok(())
    }

    /// Creates a room owned by the caller (with `room` as id, or one the server picks).
    pub async fn create_room(
        &self,
        ctx: &SessionCtx,
        room: Option<RoomId>,
        settings: RoomSettingsChange,
    ) -> Result<RoomInfo, ServiceError> {
        self.check_settings(&settings)?;
        let now = self.now_ms();
        let id = match room {
            Some(r) => r,
            None => RoomId::new(format!("r{:x}", self.next_id(now)))
                .map_err(|e| ServiceError::new(ErrorKind::Internal, e.to_string()))?,
        };
        // Only a definite "no such room" lets the create go on: a store failure must not
        // read as absence and overwrite an existing room.
        match self.room(&ctx.app, &id).await {
            Ok(_) => {
                return Err(ServiceError::new(
                    ErrorKind::AlreadyExists,
                    "a room with this id exists",
                ));
            }
            Err(e) if e.kind == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let mut record = RoomRecord {
            owner: ctx.user.to_string(),
            created_ms: now,
            ..RoomRecord::default()
        };
        apply(&mut record, &settings);
        self.store
            .write_records(
                &ctx.app,
                vec![records::put(Table::Rooms, records::room_key(&id), &record)?],
            )
            .await?;
        let loaded = Arc::new(new_room(
            &ctx.app,
            &id,
            record,
            Default::default(),
            &self.room_config,
            now,
        ));
        self.rooms.insert(loaded.clone());
        Ok(self.room_info(&loaded))
    }

    /// Puts the caller's connection in the room. With `since_seq > 0`, returns the reliable
    /// messages after it that are still in the log.
    pub async fn join_room(
        &self,
        ctx: &SessionCtx,
        room: &RoomId,
        since_seq: Seq,
    ) -> Result<RoomJoined, ServiceError> {
        let r = self.room(&ctx.app, room).await?;
        let tx = self
            .sessions
            .sender_of(ctx)
            .ok_or_else(|| ServiceError::new(ErrorKind::Unavailable, "connection is closing"))?;
        let now = self.now_ms();
        let (missed, gap, acked) = {
            // Under the room's lock, so no ban or close slips between the check and the
            // join, and the seq the connection starts from is exact.
            let mut st = r.state.lock();
            if st.record.closed {
                return Err(closed());
            }
            if st.users.get(&ctx.user).is_some_and(|u| u.banned) {
                return Err(ServiceError::new(
                    ErrorKind::Banned,
                    "you are banned from this room",
                ));
            }
            r.add_member(ctx.conn_id, ctx.user.clone(), tx);
            if since_seq > 0 {
                // Messages still in the open window reach the connection in its batch.
                let flushed = st.flushed_seq;
                let after = st.log.after(since_seq, self.room_config.max_fetch, now);
                let missed = after
                    .items
                    .into_iter()
                    .filter(|e| e.seq <= flushed)
                    .collect();
                (missed, after.gap, since_seq.min(st.log.last_seq()))
            } else {
                (Vec::new(), false, st.log.last_seq())
            }
        };
        Ok(RoomJoined {
            info: self.room_info(&r),
            room: r,
            missed,
            gap,
            acked,
        })
    }

    /// Takes the caller's connection out of the room.
    pub async fn leave_room(
        &self,
        ctx: &SessionCtx,
        room: &RoomId,
    ) -> Result<RoomInfo, ServiceError> {
        let r = self.room(&ctx.app, room).await?;
        r.remove_member(ctx.conn_id);
        Ok(self.room_info(&r))
    }

    /// The room as it is now.
    pub async fn get_room(
        &self,
        ctx: &SessionCtx,
        room: &RoomId,
    ) -> Result<RoomInfo, ServiceError> {
        let r = self.room(&ctx.app, room).await?;
        Ok(self.room_info(&r))
    }

    /// A page of the users online in the room.
    pub async fn room_members(
        &self,
        ctx: &SessionCtx,
        room: &RoomId,
        after: Option<&UserId>,
        limit: u32,
    ) -> Result<(RoomInfo, Vec<UserId>, bool), ServiceError> {
        let r = self.room(&ctx.app, room).await?;
        let (users, more) = r.online_users(after, self.limits().page(limit));
        Ok((self.room_info(&r), users, more))
    }

    /// Reliable messages after `since_seq` still in the room's log.
    pub async fn fetch_room(
        &self,
        ctx: &SessionCtx,
        room: &RoomId,
        since_seq: Seq,
        limit: u32,
    ) -> Result<RoomFetched, ServiceError> {
        let r = self.room(&ctx.app, room).await?;
        {
            let st = r.state.lock();
            if st.users.get(&ctx.user).is_some_and(|u| u.banned) {
                return Err(ServiceError::new(
                    ErrorKind::Banned,
                    "you are banned from this room",
                ));
            }
        }
        let limit = usize::try_from(limit)
            .unwrap_or(usize::MAX)
            .clamp(1, self.room_config.max_fetch);
        let after = r.reliable_after(since_seq, limit, self.now_ms());
        Ok(RoomFetched {
            info: self.room_info(&r),
            messages: after.items,
            gap: after.gap,
        })
    }

    /// Closes the room (owner or admin): every connection is told and removed, and nobody
    /// may join or send again.
    pub async fn close_room(
        &self,
        ctx: &SessionCtx,
        room: &RoomId,
    ) -> Result<RoomInfo, ServiceError> {
        let r = self.room(&ctx.app, room).await?;
        let _writing = r.writes.lock().await;
        let record = {
            let st = r.state.lock();
            if !is_admin(&st.record, &ctx.user) {
                return Err(admins_only());
            }
            let mut record = st.record.clone();
            record.closed = true;
            record
        };
        self.write_room(&r, &record, Vec::new()).await?;
        let notice = Arc::new(RoomNotice {
            room: room.clone(),
            kind: RoomNoticeKind::Closed,
            by: ctx.user.clone(),
            until_ms: 0,
        });
        r.remove_user(None, &notice);
        Ok(self.room_info(&r))
    }

    /// Changes the room's settings (owner or admin).
    pub async fn update_room(
        &self,
        ctx: &SessionCtx,
        room: &RoomId,
        change: RoomSettingsChange,
    ) -> Result<RoomInfo, ServiceError> {
        self.check_settings(&change)?;
        let r = self.room(&ctx.app, room).await?;
        let _writing = r.writes.lock().await;
        let record = {
            let st = r.state.lock();
            if !is_admin(&st.record, &ctx.user) {
                return Err(admins_only());
            }
            if st.record.closed {
                return Err(closed());
            }
            let mut record = st.record.clone();
            apply(&mut record, &change);
            record
        };
        self.write_room(&r, &record, Vec::new()).await?;
        Ok(self.room_info(&r))
    }

    /// Mutes, kicks, bans, unbans, or changes the admin status of `user`.
    pub async fn moderate_room(
        &self,
        ctx: &SessionCtx,
        room: &RoomId,
        user: &UserId,
        action: RoomAction,
    ) -> Result<RoomInfo, ServiceError> {
        let r = self.room(&ctx.app, room).await?;
        let _writing = r.writes.lock().await;
        let now = self.now_ms();
        let (record, standing) = {
            let st = r.state.lock();
            let owner = st.record.owner == ctx.user.as_str();
            let allowed = match action {
                RoomAction::Admin(_) => owner,
                _ => is_admin(&st.record, &ctx.user),
            };
            if !allowed {
                return Err(admins_only());
            }
            if st.record.owner == user.as_str() {
                return Err(ServiceError::new(
                    ErrorKind::Forbidden,
                    "the room's owner cannot be moderated",
                ));
            }
            if !owner && is_admin(&st.record, user) && !matches!(action, RoomAction::Admin(_)) {
                return Err(ServiceError::new(
                    ErrorKind::Forbidden,
                    "only the owner may moderate an admin",
                ));
            }
            let mut record = st.record.clone();
            let mut standing = st.users.get(user).cloned().unwrap_or_default();
            match action {
                RoomAction::Mute(ms) => {
                    standing.muted_until_ms = if ms == 0 { 0 } else { now.saturating_add(ms) };
                }
                RoomAction::Ban => standing.banned = true,
                RoomAction::Unban => standing.banned = false,
                RoomAction::Kick => {}
                RoomAction::Admin(on) => {
                    record.admins.retain(|a| a != user.as_str());
                    if on {
                        record.admins.push(user.to_string());
                    }
                }
            }
            (record, standing)
        };
        let key = records::room_user_key(room, user);
        let standing_write = if standing == RoomUserRecord::default() {
            records::delete(Table::RoomUsers, key)
        } else {
            records::put(Table::RoomUsers, key, &standing)?
        };
        self.write_room(&r, &record, vec![standing_write]).await?;
        {
            let mut st = r.state.lock();
            if standing == RoomUserRecord::default() {
                st.users.remove(user);
            } else {
                st.users.insert(user.clone(), standing.clone());
            }
        }
        let notice = |kind| {
            Arc::new(RoomNotice {
                room: room.clone(),
                kind,
                by: ctx.user.clone(),
                until_ms: standing.muted_until_ms,
            })
        };
        match action {
            RoomAction::Kick => {
                r.remove_user(Some(user), &notice(RoomNoticeKind::Kicked));
            }
            RoomAction::Ban => {
                r.remove_user(Some(user), &notice(RoomNoticeKind::Banned));
            }
            RoomAction::Mute(ms) => {
                let kind = if ms == 0 {
                    RoomNoticeKind::Unmuted
                } else {
                    RoomNoticeKind::Muted
                };
                r.broadcast(
                    &crate::sessions::Outbound::RoomNotice(notice(kind)),
                    Some(user),
                );
            }
            RoomAction::Unban | RoomAction::Admin(_) => {}
        }
        Ok(self.room_info(&r))
    }

    /// Stores the room's record (and `extra` writes) in one commit, then updates the copy.
    async fn write_room(
        &self,
        r: &Room,
        record: &RoomRecord,
        mut extra: Vec<RecordWrite>,
    ) -> Result<(), ServiceError> {
        extra.push(records::put(
            Table::Rooms,
            records::room_key(&r.id),
            record,
        )?);
        self.store.write_records(&r.app, extra).await?;
        r.state.lock().record = record.clone();
        Ok(())
    }
}

fn apply(record: &mut RoomRecord, c: &RoomSettingsChange) {
    if let Some(v) = c.budget_per_s {
        record.budget_per_s = v;
    }
    if let Some(v) = c.slow_mode_ms {
        record.slow_mode_ms = v;
    }
    if let Some(v) = c.send_rate_per_s {
        record.send_rate_per_s = v;
    }
    if let Some(v) = c.mute_all {
        record.mute_all = v;
    }
    if let Some(v) = c.members_may_send_high {
        record.members_may_send_high = v;
    }
    if let Some(v) = &c.name {
        record.name.clone_from(v);
    }
}
