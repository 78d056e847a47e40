//! Sending to a room, and closing a batching window.

use std::sync::Arc;
use std::time::Duration;

use magpie_core::ErrorKind;
use magpie_core::room::budget::{Budget, Candidate, select};
use magpie_core::room::log::Appended;
use magpie_core::room::rules::{Refusal, SendContext, check_send};
use magpie_core::send::validate_content;
use magpie_types::{ClientMsgId, Content, MsgId, Priority, RoomId, Seq};

use super::ops::is_admin;
use super::{Room, RoomBatch, RoomEntry};
use crate::error::ServiceError;
use crate::messaging::Service;
use crate::sessions::{Outbound, SessionCtx};

/// Slow-mode entries kept before old ones are pruned.
const LAST_SENT_PRUNE: usize = 10_000;

/// The acknowledgement of a room send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomSendAck {
    /// The server's id.
    pub msg_id: MsgId,
    /// The reliable seq (high priority only; 0 otherwise).
    pub seq: Seq,
    /// Acceptance time, Unix ms.
    pub server_time_ms: u64,
    /// The priority it was sent with.
    pub priority: Priority,
    /// This answers a retry of a reliable message still in the log.
    pub duplicate: bool,
}

impl RoomSendAck {
    fn of(e: &RoomEntry, duplicate: bool) -> Self {
        Self {
            msg_id: e.msg_id,
            seq: e.seq,
            server_time_ms: e.server_time_ms,
            priority: e.priority,
            duplicate,
        }
    }
}

impl Service {
    /// Sends to a room the caller's connection has joined. The message goes out with the
    /// room's next batching window; high priority is numbered and kept in the log first.
    pub async fn send_room(
        self: &Arc<Self>,
        ctx: &SessionCtx,
        room: &RoomId,
        content: Content,
        priority: Option<Priority>,
        client_msg_id: Option<ClientMsgId>,
    ) -> Result<RoomSendAck, ServiceError> {
        validate_content(self.limits(), &content)
            .map_err(|e| ServiceError::new(e.kind(), e.to_string()))?;
        let r = self.room(&ctx.app, room).await?;
        let system = Self::is_system(ctx);
        if !system && !r.has_member(ctx.conn_id) {
            return Err(ServiceError::new(
                ErrorKind::Forbidden,
                "join the room before sending to it",
            ));
        }
        let content = self
            .screen(
                ctx,
                crate::screening::Target::Room(room),
                client_msg_id.as_ref().map_or("", |c| c.as_str()),
                content,
            )
            .await?;
        let now = self.now_ms();
        let (ack, schedule) = {
            let mut st = r.state.lock();
            if st.record.closed {
                return Err(ServiceError::new(ErrorKind::NotFound, "the room is closed"));
            }
            let settings = self.effective_settings(&r.app, &st.record);
            let standing = st.users.get(&ctx.user).cloned().unwrap_or_default();
            if standing.banned {
                return Err(ServiceError::new(
                    ErrorKind::Banned,
                    "you are banned from this room",
                ));
            }
            let check = SendContext {
                is_admin: system || is_admin(&st.record, &ctx.user),
                requested: priority,
                members_may_send_high: settings.members_may_send_high,
                mute_all: settings.mute_all,
                muted_until_ms: standing.muted_until_ms,
                slow_mode_ms: u64::from(settings.slow_mode_ms),
                last_sent_ms: st.last_sent.get(&ctx.user).copied(),
                now_ms: now,
            };
            let priority = check_send(&check).map_err(refusal)?;
            // A retry of a reliable message still in the log gets the first one's ack and
            // uses no rate.
            let key = client_msg_id
                .filter(|_| priority == Priority::High)
                .map(|c| (ctx.user.clone(), c));
            if let Some(k) = &key
                && let Some(first) = st.log.duplicate_of(k)
            {
                return Ok(RoomSendAck::of(&first, true));
            }
            if st.send_rate != settings.send_rate_per_s {
                st.send_rate = settings.send_rate_per_s;
                st.send_bucket = Budget::new(st.send_rate, now);
            }
            if st.send_bucket.available(now) == 0 {
                return Err(ServiceError::new(
                    ErrorKind::RateLimited,
                    "the room's send rate is exceeded; retry later",
                )
                .retry_after(1_000 / u64::from(st.send_rate.max(1))));
            }
            st.send_bucket.spend(1);
            if settings.slow_mode_ms > 0 {
                if st.last_sent.len() >= LAST_SENT_PRUNE {
                    let horizon = now.saturating_sub(u64::from(settings.slow_mode_ms));
                    st.last_sent.retain(|_, &mut at| at > horizon);
                }
                st.last_sent.insert(ctx.user.clone(), now);
            }
            let msg_id = self.next_id(now);
            let make = |seq: Seq| {
                Arc::new(RoomEntry {
                    room: room.clone(),
                    msg_id,
                    from: ctx.user.clone(),
                    content,
                    priority,
                    seq,
                    server_time_ms: now,
                    encoded: std::sync::OnceLock::new(),
                })
            };
            let entry = if priority == Priority::High {
                match st.log.append(now, key, make) {
                    Appended::New(_) => {
                        let e = st.log.newest().ok_or_else(|| {
                            ServiceError::new(ErrorKind::Internal, "log is empty")
                        })?;
                        r.last_seq
                            .store(e.seq, std::sync::atomic::Ordering::Release);
                        e
                    }
                    Appended::Duplicate(first) => return Ok(RoomSendAck::of(&first, true)),
                }
            } else {
                make(0)
            };
            st.pending.push(entry.clone());
            let schedule = !st.flush_scheduled;
            st.flush_scheduled = true;
            let delay = (st.last_flush_ms + self.room_config.batch_window_ms).saturating_sub(now);
            (RoomSendAck::of(&entry, false), schedule.then_some(delay))
        };
        metrics::counter!("magpie_room_messages_total", "priority" => ack.priority.name())
            .increment(1);
        if let Some(delay) = schedule {
            let (svc, room) = (self.clone(), r.clone());
            tokio::spawn(async move {
                if delay > 0 {
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                }
                svc.flush_room(&room);
            });
        }
        Ok(ack)
    }

    /// Closes the room's batching window: selects what it delivers within the budget and
    /// queues one shared batch to every connection of the room.
    pub(crate) fn flush_room(&self, r: &Room) {
        let now = self.now_ms();
        let batch = {
            let mut st = r.state.lock();
            st.flush_scheduled = false;
            st.last_flush_ms = now;
            let pending = std::mem::take(&mut st.pending);
            if pending.is_empty() {
                return;
            }
            let rate = self.effective_settings(&r.app, &st.record).budget_per_s;
            if st.budget_rate != rate {
                if st.budget_rate == 0 {
                    st.budget = Budget::new(rate, now);
                } else {
                    st.budget.set_rate(rate);
                }
                st.budget_rate = rate;
            }
            let candidates: Vec<Candidate<&magpie_types::UserId>> = pending
                .iter()
                .map(|e| Candidate {
                    priority: e.priority,
                    sender: &e.from,
                })
                .collect();
            let tokens = st.budget.available(now);
            st.rotation = st.rotation.wrapping_add(1);
            let selection = select(&candidates, tokens, st.rotation);
            st.budget.spend(selection.best_effort_kept(&candidates));
            let online_conns = r.online().1;
            for (priority, dropped) in [
                ("normal", selection.dropped_normal),
                ("low", selection.dropped_low),
            ] {
                if dropped > 0 {
                    metrics::counter!("magpie_room_dropped_total", "priority" => priority, "reason" => "budget")
                        .increment(dropped as u64 * online_conns);
                }
            }
            let messages: Vec<Arc<RoomEntry>> =
                selection.keep.iter().map(|&i| pending[i].clone()).collect();
            if messages.is_empty() {
                return;
            }
            // Everything in `pending` with a seq is in `messages` (high is never dropped).
            let last_seq = messages.iter().map(|e| e.seq).max().unwrap_or(0);
            st.flushed_seq = st.flushed_seq.max(last_seq);
            let batch = Arc::new(RoomBatch {
                room: r.id.clone(),
                messages,
                last_seq,
                encoded: std::sync::OnceLock::new(),
            });
            (batch, r.members_read())
        };
        let (batch, members) = batch;
        let n = batch.messages.len() as u64;
        let (queued, full) = r.broadcast_locked(members, &Outbound::Room(batch.clone()), None);
        metrics::counter!("magpie_room_batches_total").increment(1);
        metrics::counter!("magpie_room_deliveries_total").increment(n * queued as u64);
        if full > 0 {
            for e in &batch.messages {
                metrics::counter!("magpie_room_dropped_total", "priority" => e.priority.name(), "reason" => "queue_full")
                    .increment(full as u64);
            }
        }
    }
}

fn refusal(r: Refusal) -> ServiceError {
    match r {
        Refusal::Muted { .. } => ServiceError::new(ErrorKind::Muted, r.to_string()),
        Refusal::SlowMode { retry_after_ms } => {
            ServiceError::new(ErrorKind::SlowMode, r.to_string()).retry_after(retry_after_ms)
        }
        Refusal::Priority => ServiceError::new(ErrorKind::Forbidden, r.to_string()),
    }
}
