//! Requests: parse a client frame into service arguments, run the operation, build the
//! reply. Parsing happens here, at the edge, so the service only sees validated ids;
//! a malformed field is answered with INVALID_ARGUMENT at once and reaches nothing.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use magpie_proto::convert::content_from_pb;
use magpie_proto::pb::{self, ErrorCode, group_request::Op, send_request};
use magpie_proto::{Body, Frame, error_frame, frame};
use magpie_service::ops::MessageOp;
use magpie_service::{
    CreateGroup, GroupOutcome, Service, ServiceError, SessionCtx, SettingsChange, UpdateGroup,
};
use magpie_types::{ClientMsgId, ConvId, GroupId, JoinPolicy, UserId};

use crate::room_tracks::JoinedRooms;
use crate::{wire, wire_groups};

/// The future computing a reply frame (`None`: the request needs no reply, e.g. typing).
pub(crate) type Reply = Pin<Box<dyn Future<Output = Option<Frame>> + Send>>;

/// A malformed request: the message for INVALID_ARGUMENT.
pub(crate) type Bad = String;

/// The reply future for a request body (an error frame at once if the request is
/// malformed). Bodies that the connection handles itself (ping, acks, hello) are not
/// passed here.
pub(crate) fn dispatch(
    svc: Arc<Service>,
    ctx: SessionCtx,
    rid: u64,
    body: Body,
    rooms: &JoinedRooms,
) -> Reply {
    parse_and_run(svc, ctx, rid, body, rooms)
        .unwrap_or_else(|refusal| Box::pin(std::future::ready(Some(*refusal))))
}

fn parse_and_run(
    svc: Arc<Service>,
    ctx: SessionCtx,
    rid: u64,
    body: Body,
    rooms: &JoinedRooms,
) -> Result<Reply, Box<Frame>> {
    let invalid = |m: Bad| Box::new(error_frame(rid, ErrorCode::InvalidArgument, m));
    let reply: Reply = match body {
        Body::Send(req) => {
            let send = parse_send(req).map_err(invalid)?;
            Box::pin(async move {
                let ack = match send.to {
                    To::User(u) => {
                        svc.send_direct_reply(&ctx, u, send.cmid, send.content, send.reply_to)
                            .await
                    }
                    To::Group(g) => {
                        svc.send_group(
                            &ctx,
                            &g,
                            send.cmid,
                            send.content,
                            send.mentions,
                            send.mention_all,
                            send.reply_to,
                        )
                        .await
                    }
                };
                answer(rid, ack, wire::send_ack)
            })
        }
        Body::Pull(p) => {
            let conv = conv(&p.conversation).map_err(invalid)?;
            Box::pin(async move {
                let page = svc.pull(&ctx, &conv, p.after_seq, p.limit).await;
                answer(rid, page, |rid, page| {
                    wire::pull_result(rid, conv.as_str(), page)
                })
            })
        }
        Body::History(h) => {
            let conv = conv(&h.conversation).map_err(invalid)?;
            Box::pin(async move {
                let page = svc.history(&ctx, &conv, h.before_seq, h.limit).await;
                answer(rid, page, |rid, page| {
                    wire::history_result(rid, conv.as_str(), page)
                })
            })
        }
        Body::ListConversations(l) => {
            let after = if l.after.is_empty() {
                None
            } else {
                Some(conv(&l.after).map_err(invalid)?)
            };
            Box::pin(async move {
                let page = svc
                    .conversations(&ctx, after.as_ref(), l.limit, l.since_version)
                    .await;
                answer(rid, page, wire::conversation_list)
            })
        }
        Body::MarkRead(m) => {
            let conv = conv(&m.conversation).map_err(invalid)?;
            Box::pin(async move {
                let r = svc.mark_read(&ctx, &conv, m.seq).await;
                answer(rid, r, wire::read_result)
            })
        }
        Body::ReadCounts(r) => {
            let conv = conv(&r.conversation).map_err(invalid)?;
            Box::pin(async move {
                let counts = svc.read_counts(&ctx, &conv, &r.seqs).await;
                answer(rid, counts, |rid, counts| {
                    frame(
                        rid,
                        Body::ReadCountsResult(pb::ReadCountsResult {
                            conversation: conv.to_string(),
                            read: counts.iter().map(|c| c.0).collect(),
                            members: counts.iter().map(|c| c.1).collect(),
                        }),
                    )
                })
            })
        }
        Body::ConversationSettings(c) => {
            let conv = conv(&c.conversation).map_err(invalid)?;
            let change = SettingsChange {
                pinned: c.pinned,
                muted: c.muted,
                hidden: c.hidden,
            };
            Box::pin(async move {
                let r = svc.set_conversation(&ctx, &conv, change).await;
                answer(rid, r, |rid, (view, total)| {
                    frame(
                        rid,
                        Body::ConversationSettingsResult(pb::ConversationSettingsResult {
                            conversation: Some(wire::conversation(view)),
                            total_unread: *total,
                        }),
                    )
                })
            })
        }
        Body::Group(g) => {
            let op =
                g.op.ok_or_else(|| invalid("missing group operation".into()))?;
            group(svc, ctx, rid, op).map_err(invalid)?
        }
        Body::Room(r) => {
            crate::requests_rooms::room(svc, ctx, rid, r, rooms.clone()).map_err(invalid)?
        }
        Body::RoomSend(r) => crate::requests_rooms::send(svc, ctx, rid, r).map_err(invalid)?,
        Body::Social(s) => {
            let op =
                s.op.ok_or_else(|| invalid("missing social operation".into()))?;
            crate::requests_social::social(svc, ctx, rid, op).map_err(invalid)?
        }
        Body::MessageOp(m) => {
            let conv = conv(&m.conversation).map_err(invalid)?;
            let cmid = ClientMsgId::new(m.client_msg_id).map_err(|e| invalid(e.to_string()))?;
            let op = match m.op {
                Some(pb::message_op::Op::Recall(_)) => MessageOp::Recall,
                Some(pb::message_op::Op::Edit(c)) => {
                    MessageOp::Edit(content_from_pb(c).map_err(|e| invalid(e.to_string()))?)
                }
                Some(pb::message_op::Op::React(r)) => MessageOp::React {
                    emoji: r.emoji,
                    add: r.add,
                },
                None => return Err(invalid("missing operation".into())),
            };
            let seq = m.seq;
            Box::pin(async move {
                let r = svc.message_op(&ctx, &conv, seq, cmid, op).await;
                answer(rid, r, |rid, a| {
                    frame(
                        rid,
                        Body::MessageOpResult(pb::MessageOpResult {
                            conversation: a.conv.to_string(),
                            seq: a.seq,
                            duplicate: a.duplicate,
                        }),
                    )
                })
            })
        }
        Body::DeleteForMe(d) => {
            let conv = conv(&d.conversation).map_err(invalid)?;
            Box::pin(async move {
                let r = svc.delete_for_me(&ctx, &conv, &d.seqs).await;
                answer(rid, r, |rid, seqs| {
                    frame(
                        rid,
                        Body::DeleteForMeResult(pb::DeleteForMeResult {
                            conversation: conv.to_string(),
                            seqs: seqs.clone(),
                        }),
                    )
                })
            })
        }
        Body::Typing(t) => {
            let conv = conv(&t.conversation).map_err(invalid)?;
            Box::pin(async move {
                match svc.typing(&ctx, &conv, t.typing).await {
                    // Typing is fire and forget: success has no reply.
                    Ok(()) => None,
                    Err(_) if rid == 0 => None,
                    Err(e) => Some(wire::service_error(rid, &e)),
                }
            })
        }
        Body::SubscribePresence(p) => {
            let us = users(&p.users).map_err(invalid)?;
            let r = svc.subscribe_presence(&ctx, us);
            Box::pin(std::future::ready(answer(rid, r, |rid, list| {
                frame(
                    rid,
                    Body::PresenceList(pb::PresenceList {
                        users: list.iter().map(wire::presence).collect(),
                    }),
                )
            })))
        }
        _ => {
            return Err(Box::new(error_frame(
                rid,
                ErrorCode::BadFrame,
                "clients may not send this frame",
            )));
        }
    };
    Ok(reply)
}

/// The reply to a group operation.
fn group(svc: Arc<Service>, ctx: SessionCtx, rid: u64, op: Op) -> Result<Reply, Bad> {
    let reply =
        move |r: Result<GroupOutcome, ServiceError>| answer(rid, r, wire_groups::group_result);
    Ok(match op {
        Op::Create(c) => {
            let req = CreateGroup {
                id: if c.group.is_empty() {
                    None
                } else {
                    Some(group_id(&c.group)?)
                },
                name: c.name,
                members: users(&c.members)?,
                join_policy: policy(c.join_policy)?,
                super_group: c.super_group,
                avatar_url: c.avatar_url,
                notice: c.notice,
                custom: c.custom,
                members_can_invite: c.members_can_invite,
            };
            Box::pin(async move { reply(svc.create_group(&ctx, req).await) })
        }
        Op::AddMembers(t) => {
            let (g, us) = (group_id(&t.group)?, users(&t.users)?);
            Box::pin(async move { reply(svc.add_members(&ctx, &g, us).await) })
        }
        Op::Join(t) => {
            let g = group_id(&t.group)?;
            Box::pin(async move { reply(svc.join_group(&ctx, &g).await) })
        }
        Op::Leave(t) => {
            let g = group_id(&t.group)?;
            Box::pin(async move { reply(svc.leave_group(&ctx, &g).await) })
        }
        Op::Kick(t) => {
            let (g, us) = (group_id(&t.group)?, users(&t.users)?);
            Box::pin(async move { reply(svc.kick_members(&ctx, &g, us).await) })
        }
        Op::Dismiss(t) => {
            let g = group_id(&t.group)?;
            Box::pin(async move { reply(svc.dismiss_group(&ctx, &g).await) })
        }
        Op::TransferOwner(t) => {
            let g = group_id(&t.group)?;
            let to = users(&t.users)?
                .into_iter()
                .next()
                .ok_or("transfer_owner needs one user")?;
            Box::pin(async move { reply(svc.transfer_group(&ctx, &g, to).await) })
        }
        Op::SetAdmin(a) => {
            let (g, u) = (group_id(&a.group)?, user(&a.user)?);
            Box::pin(async move { reply(svc.set_admin(&ctx, &g, u, a.admin).await) })
        }
        Op::Mute(m) => {
            let (g, u) = (group_id(&m.group)?, user(&m.user)?);
            Box::pin(async move { reply(svc.mute_member(&ctx, &g, u, m.duration_ms).await) })
        }
        Op::MuteAll(m) => {
            let g = group_id(&m.group)?;
            Box::pin(async move { reply(svc.mute_all(&ctx, &g, m.muted).await) })
        }
        Op::Update(u) => {
            let g = group_id(&u.group)?;
            let change = UpdateGroup {
                name: u.name,
                avatar_url: u.avatar_url,
                notice: u.notice,
                custom: u.custom,
                join_policy: u.join_policy.map(policy).transpose()?,
                members_can_invite: u.members_can_invite,
            };
            Box::pin(async move { reply(svc.update_group(&ctx, &g, change).await) })
        }
        Op::Members(m) => {
            let g = group_id(&m.group)?;
            let after = if m.after.is_empty() {
                None
            } else {
                Some(user(&m.after)?)
            };
            Box::pin(async move { reply(svc.group_members(&ctx, &g, after, m.limit).await) })
        }
        Op::Get(t) => {
            let g = group_id(&t.group)?;
            Box::pin(async move {
                let info = svc.group_info(&ctx, &g).await.map(|group| GroupOutcome {
                    group,
                    seq: 0,
                    pending: false,
                    members: Vec::new(),
                    has_more: false,
                });
                reply(info)
            })
        }
        Op::Approve(t) => {
            let (g, us) = (group_id(&t.group)?, users(&t.users)?);
            Box::pin(async move { reply(svc.approve_joins(&ctx, &g, us).await) })
        }
        Op::Reject(t) => {
            let (g, us) = (group_id(&t.group)?, users(&t.users)?);
            Box::pin(async move { reply(svc.reject_joins(&ctx, &g, us).await) })
        }
        Op::JoinRequests(t) => {
            let g = group_id(&t.group)?;
            Box::pin(async move { reply(svc.join_requests(&ctx, &g).await) })
        }
    })
}

/// The frame for a service result: `ok` on success, the typed error otherwise.
pub(crate) fn answer<T>(
    rid: u64,
    r: Result<T, ServiceError>,
    ok: impl FnOnce(u64, &T) -> Frame,
) -> Option<Frame> {
    Some(match r {
        Ok(v) => ok(rid, &v),
        Err(e) => wire::service_error(rid, &e),
    })
}

enum To {
    User(UserId),
    Group(GroupId),
}

struct SendArgs {
    to: To,
    cmid: ClientMsgId,
    content: magpie_types::Content,
    mentions: Vec<UserId>,
    mention_all: bool,
    reply_to: u64,
}

fn parse_send(req: pb::SendRequest) -> Result<SendArgs, Bad> {
    let cmid = ClientMsgId::new(req.client_msg_id).map_err(|e| e.to_string())?;
    let to = match req.to {
        Some(send_request::To::User(u)) => {
            To::User(UserId::new(u).map_err(|e| format!("recipient: {e}"))?)
        }
        Some(send_request::To::Group(g)) => To::Group(group_id(&g)?),
        None => return Err("missing recipient".into()),
    };
    if matches!(to, To::User(_)) && (!req.mentions.is_empty() || req.mention_all) {
        return Err("mentions are for group messages".into());
    }
    let content =
        content_from_pb(req.content.ok_or("missing content")?).map_err(|e| e.to_string())?;
    Ok(SendArgs {
        to,
        cmid,
        content,
        mentions: users(&req.mentions)?,
        mention_all: req.mention_all,
        reply_to: req.reply_to,
    })
}

fn conv(s: &str) -> Result<ConvId, Bad> {
    ConvId::parse(s).map_err(|_| "malformed conversation id".to_owned())
}

fn group_id(s: &str) -> Result<GroupId, Bad> {
    GroupId::new(s).map_err(|e| format!("group: {e}"))
}

pub(crate) fn user(s: &str) -> Result<UserId, Bad> {
    UserId::new(s).map_err(|e| format!("user {s:?}: {e}"))
}

pub(crate) fn users(list: &[String]) -> Result<Vec<UserId>, Bad> {
    list.iter().map(|u| user(u)).collect()
}

fn policy(code: i32) -> Result<JoinPolicy, Bad> {
    u32::try_from(code)
        .ok()
        .and_then(JoinPolicy::from_code)
        .ok_or_else(|| format!("unknown join policy {code}"))
}
