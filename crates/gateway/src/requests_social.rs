//! Social requests: profiles, friends, blocks.

use std::sync::Arc;

use magpie_proto::pb::{self, social_request::Op};
use magpie_proto::{Body, Frame, frame};
use magpie_service::{ProfileChange, Service, ServiceError, SessionCtx};
use magpie_store::Table;
use magpie_store::records::ProfileRecord;
use magpie_types::UserId;

use crate::requests::{Bad, Reply, answer, user, users};

/// The reply to a social request.
pub(crate) fn social(svc: Arc<Service>, ctx: SessionCtx, rid: u64, op: Op) -> Result<Reply, Bad> {
    Ok(match op {
        Op::SetProfile(p) => {
            let change = ProfileChange {
                nickname: p.nickname,
                avatar_url: p.avatar_url,
                custom: p.custom,
            };
            Box::pin(async move {
                let r = svc.set_profile(&ctx, change).await;
                let me = ctx.user.clone();
                answer(rid, r, |rid, p| profiles(rid, &[(me, p.clone())]))
            })
        }
        Op::GetProfiles(list) => {
            let us = users(&list.users)?;
            Box::pin(async move {
                let r = svc.profiles(&ctx, &us).await;
                answer(rid, r, |rid, ps| profiles(rid, ps))
            })
        }
        Op::FriendRequest(f) => {
            let to = user(&f.user)?;
            Box::pin(async move {
                let r = svc.friend_request(&ctx, to, f.message).await;
                answer(rid, r, |rid, friends| result(rid, Vec::new(), *friends))
            })
        }
        Op::FriendResponse(f) => {
            let from = user(&f.user)?;
            Box::pin(async move {
                let r = svc.respond_friend(&ctx, from, f.accept).await;
                answer(rid, r, |rid, ()| result(rid, Vec::new(), f.accept))
            })
        }
        Op::RemoveFriend(u) => {
            let other = user(&u)?;
            Box::pin(async move {
                let r = svc.remove_friend(&ctx, other).await;
                answer(rid, r, |rid, ()| result(rid, Vec::new(), false))
            })
        }
        Op::Block(b) => {
            let other = user(&b.user)?;
            Box::pin(async move {
                let r = svc.block(&ctx, other, b.blocked).await;
                answer(rid, r, |rid, ()| result(rid, Vec::new(), false))
            })
        }
        Op::ListFriends(_) => list(svc, ctx, rid, Table::Friends),
        Op::ListFriendRequests(_) => list(svc, ctx, rid, Table::FriendRequests),
        Op::ListBlocked(_) => list(svc, ctx, rid, Table::Blocks),
    })
}

fn list(svc: Arc<Service>, ctx: SessionCtx, rid: u64, table: Table) -> Reply {
    Box::pin(async move {
        let r: Result<Vec<UserId>, ServiceError> = svc.social_list(&ctx, table).await;
        answer(rid, r, |rid, us| result(rid, us.clone(), false))
    })
}

fn result(rid: u64, users: Vec<UserId>, friends: bool) -> Frame {
    frame(
        rid,
        Body::SocialResult(pb::SocialResult {
            profiles: Vec::new(),
            users: users.iter().map(ToString::to_string).collect(),
            friends,
        }),
    )
}

fn profiles(rid: u64, ps: &[(UserId, ProfileRecord)]) -> Frame {
    frame(
        rid,
        Body::SocialResult(pb::SocialResult {
            profiles: ps
                .iter()
                .map(|(u, p)| pb::Profile {
                    user: u.to_string(),
                    nickname: p.nickname.clone(),
                    avatar_url: p.avatar_url.clone(),
                    custom: p.custom.clone(),
                })
                .collect(),
            users: Vec::new(),
            friends: false,
        }),
    )
}
