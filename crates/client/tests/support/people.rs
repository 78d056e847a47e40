//! The fake server's users-facing requests: typing (passed on to the other party of a 1:1
//! conversation or the group's other members), presence subscriptions (online = has a
//! connection), profiles, friends with their notices, and blocks.

use magpie_proto::pb::{self, ErrorCode, social_request::Op};
use magpie_proto::{Body, Frame, error_frame, frame};
use magpie_types::{ConvId, UserId};

use super::{State, send_to_user};

pub(super) fn typing(st: &mut State, req: pb::Typing, user: &str) {
    st.typing
        .push((user.to_owned(), req.conversation.clone(), req.typing));
    let others: Vec<String> = match req.conversation.strip_prefix("g:") {
        Some(g) => st
            .groups
            .get(g)
            .map(|g| g.members.iter().cloned().collect())
            .unwrap_or_default(),
        None => ConvId::parse(&req.conversation)
            .ok()
            .and_then(|c| c.peer_of(&UserId::new(user).unwrap()))
            .map(|p| vec![p.as_str().to_owned()])
            .unwrap_or_default(),
    };
    let notice = frame(
        0,
        Body::TypingNotice(pb::TypingNotice {
            conversation: req.conversation,
            user: user.to_owned(),
            typing: req.typing,
        }),
    );
    for other in others.iter().filter(|o| *o != user) {
        send_to_user(st, other, &notice, None);
    }
}

pub(super) fn subscribe_presence(
    st: &mut State,
    id: u64,
    req: pb::SubscribePresence,
    user: &str,
) -> Frame {
    st.presence_subs.push((user.to_owned(), req.users.clone()));
    let users = req
        .users
        .into_iter()
        .map(|u| {
            let online = st.conns.values().any(|c| c.user == u);
            pb::UserPresence {
                user: u,
                online,
                last_seen_ms: if online { 0 } else { 7 },
            }
        })
        .collect();
    frame(id, Body::PresenceList(pb::PresenceList { users }))
}

pub(super) fn on_social(st: &mut State, id: u64, req: pb::SocialRequest, user: &str) -> Frame {
    match social(st, req, user) {
        Ok(result) => frame(id, Body::SocialResult(result)),
        Err((code, message)) => error_frame(id, code, message),
    }
}

fn pair(a: &str, b: &str) -> (String, String) {
    if a < b {
        (a.to_owned(), b.to_owned())
    } else {
        (b.to_owned(), a.to_owned())
    }
}

fn notice(st: &State, to: &str, kind: &str, from: &str, message: &str) {
    let n = pb::SocialNotice {
        kind: kind.into(),
        user: from.into(),
        message: message.into(),
    };
    send_to_user(st, to, &frame(0, Body::SocialNotice(n)), None);
}

fn social(
    st: &mut State,
    req: pb::SocialRequest,
    me: &str,
) -> Result<pb::SocialResult, (ErrorCode, &'static str)> {
    let mut result = pb::SocialResult::default();
    match req.op.ok_or((ErrorCode::InvalidArgument, "no op"))? {
        Op::SetProfile(u) => {
            let p = st.profiles.entry(me.to_owned()).or_insert(pb::Profile {
                user: me.to_owned(),
                ..Default::default()
            });
            p.nickname = u.nickname.unwrap_or_else(|| p.nickname.clone());
            p.avatar_url = u.avatar_url.unwrap_or_else(|| p.avatar_url.clone());
            p.custom = u.custom.unwrap_or_else(|| p.custom.clone());
        }
        Op::GetProfiles(list) => {
            result.profiles = list
                .users
                .iter()
                .filter_map(|u| st.profiles.get(u).cloned())
                .collect();
        }
        Op::FriendRequest(r) => {
            if st
                .friend_requests
                .remove(&(r.user.clone(), me.to_owned()))
                .is_some()
            {
                st.friends.insert(pair(me, &r.user));
                notice(st, &r.user, "friend_accepted", me, "");
                result.friends = true;
            } else {
                st.friend_requests
                    .insert((me.to_owned(), r.user.clone()), r.message.clone());
                notice(st, &r.user, "friend_request", me, &r.message);
            }
        }
        Op::FriendResponse(r) => {
            st.friend_requests
                .remove(&(r.user.clone(), me.to_owned()))
                .ok_or((ErrorCode::NotFound, "no such request"))?;
            if r.accept {
                st.friends.insert(pair(me, &r.user));
            }
            let kind = if r.accept {
                "friend_accepted"
            } else {
                "friend_declined"
            };
            notice(st, &r.user, kind, me, "");
        }
        Op::RemoveFriend(u) => {
            if !st.friends.remove(&pair(me, &u)) {
                return Err((ErrorCode::NotFound, "not friends"));
            }
            notice(st, &u, "friend_removed", me, "");
        }
        Op::ListFriends(_) => {
            result.users = st
                .friends
                .iter()
                .filter_map(|(a, b)| match (a == me, b == me) {
                    (true, _) => Some(b.clone()),
                    (_, true) => Some(a.clone()),
                    _ => None,
                })
                .collect();
        }
        Op::ListFriendRequests(_) => {
            result.users = st
                .friend_requests
                .keys()
                .filter(|(_, to)| to == me)
                .map(|(from, _)| from.clone())
                .collect();
        }
        Op::Block(b) => {
            let key = (me.to_owned(), b.user);
            if b.blocked {
                st.blocks.insert(key);
            } else {
                st.blocks.remove(&key);
            }
        }
        Op::ListBlocked(_) => {
            result.users = st
                .blocks
                .iter()
                .filter(|(by, _)| by == me)
                .map(|(_, u)| u.clone())
                .collect();
        }
    }
    Ok(result)
}
