//! Live-room requests.

use std::sync::Arc;

use magpie_proto::convert::content_from_pb;
use magpie_proto::pb::{self, room_moderate::Action, room_request::Op};
use magpie_proto::{Body, frame};
use magpie_service::{RoomAction, RoomSettingsChange, Service, SessionCtx};
use magpie_types::{ClientMsgId, Priority, RoomId};

use crate::requests::{Bad, Reply, answer, user};
use crate::room_tracks::JoinedRooms;
use crate::wire_rooms;

fn room_id(s: &str) -> Result<RoomId, Bad> {
    RoomId::new(s).map_err(|e| e.to_string())
}

fn change(s: pb::RoomSettings) -> RoomSettingsChange {
    RoomSettingsChange {
        budget_per_s: s.budget_per_s,
        slow_mode_ms: s.slow_mode_ms,
        send_rate_per_s: s.send_rate_per_s,
        mute_all: s.mute_all,
        members_may_send_high: s.members_may_send_high,
        name: s.name,
    }
}

/// A room operation.
pub(crate) fn room(
    svc: Arc<Service>,
    ctx: SessionCtx,
    rid: u64,
    req: pb::RoomRequest,
    joined: JoinedRooms,
) -> Result<Reply, Bad> {
    let op = req.op.ok_or("missing room operation")?;
    // Every operation but `create` (whose id may be empty) names a room.
    let named = room_id(&req.room);
    let reply: Reply = match op {
        Op::Create(c) => {
            let id = if req.room.is_empty() {
                None
            } else {
                Some(named?)
            };
            let mut settings = c.settings.map(change).unwrap_or_default();
            if !c.name.is_empty() {
                settings.name = Some(c.name);
            }
            Box::pin(async move {
                let r = svc.create_room(&ctx, id, settings).await;
                answer(rid, r, wire_rooms::result)
            })
        }
        Op::Join(j) => {
            let room = named?;
            Box::pin(async move {
                let r = svc.join_room(&ctx, &room, j.since_seq).await;
                if let Ok(j) = &r {
                    joined.joined(j, svc.now_ms());
                }
                answer(rid, r, wire_rooms::joined)
            })
        }
        Op::Leave(_) => {
            let room = named?;
            Box::pin(async move {
                joined.left(&room);
                let r = svc.leave_room(&ctx, &room).await;
                answer(rid, r, wire_rooms::result)
            })
        }
        Op::Close(_) => {
            let room = named?;
            Box::pin(async move {
                let r = svc.close_room(&ctx, &room).await;
                answer(rid, r, wire_rooms::result)
            })
        }
        Op::Get(_) => {
            let room = named?;
            Box::pin(async move {
                let r = svc.get_room(&ctx, &room).await;
                answer(rid, r, wire_rooms::result)
            })
        }
        Op::Members(m) => {
            let room = named?;
            let after = if m.after.is_empty() {
                None
            } else {
                Some(user(&m.after)?)
            };
            Box::pin(async move {
                let r = svc.room_members(&ctx, &room, after.as_ref(), m.limit).await;
                answer(rid, r, |rid, (info, users, more)| {
                    frame(
                        rid,
                        Body::RoomResult(pb::RoomResult {
                            info: Some(wire_rooms::info(info)),
                            users: users.iter().map(ToString::to_string).collect(),
                            has_more: *more,
                            ..pb::RoomResult::default()
                        }),
                    )
                })
            })
        }
        Op::Fetch(f) => {
            let room = named?;
            Box::pin(async move {
                let r = svc.fetch_room(&ctx, &room, f.since_seq, f.limit).await;
                answer(rid, r, wire_rooms::fetched)
            })
        }
        Op::Moderate(m) => {
            let room = named?;
            let target = user(&m.user)?;
            let action = match m.action.ok_or("missing moderation action")? {
                Action::MuteMs(ms) => RoomAction::Mute(ms),
                Action::Kick(_) => RoomAction::Kick,
                Action::Ban(_) => RoomAction::Ban,
                Action::Unban(_) => RoomAction::Unban,
                Action::Admin(on) => RoomAction::Admin(on),
            };
            Box::pin(async move {
                let r = svc.moderate_room(&ctx, &room, &target, action).await;
                answer(rid, r, wire_rooms::result)
            })
        }
        Op::Settings(s) => {
            let room = named?;
            Box::pin(async move {
                let r = svc.update_room(&ctx, &room, change(s)).await;
                answer(rid, r, wire_rooms::result)
            })
        }
    };
    Ok(reply)
}

/// A room send.
pub(crate) fn send(
    svc: Arc<Service>,
    ctx: SessionCtx,
    rid: u64,
    req: pb::RoomSend,
) -> Result<Reply, Bad> {
    let room = room_id(&req.room)?;
    let content =
        content_from_pb(req.content.ok_or("missing content")?).map_err(|e| e.to_string())?;
    let priority = match req.priority {
        0 => None,
        code => Some(Priority::from_code(code).ok_or_else(|| format!("unknown priority {code}"))?),
    };
    let cmid = if req.client_msg_id.is_empty() {
        None
    } else {
        Some(ClientMsgId::new(req.client_msg_id).map_err(|e| e.to_string())?)
    };
    Ok(Box::pin(async move {
        let r = svc.send_room(&ctx, &room, content, priority, cmid).await;
        answer(rid, r, wire_rooms::send_ack)
    }))
}
