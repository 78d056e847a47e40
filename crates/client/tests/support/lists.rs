//! The fake server's per-user views: the conversation list (unread, read positions,
//! settings, version), pulls with hidden ranges, MarkRead with its ReadUpdate fan-out, and
//! conversation settings.

use magpie_proto::pb::{self, ErrorCode};
use magpie_proto::{Body, Frame, error_frame, frame};
use magpie_types::{ConvId, UserId};

use super::{State, send_to_user, visible};

/// The entries of `conv` that `user` may see.
fn visible_log<'a>(st: &'a State, user: &str, conv: &str) -> Vec<&'a pb::Message> {
    st.logs
        .get(conv)
        .map(|log| {
            log.iter()
                .filter(|m| visible(st, user, conv, m.seq))
                .collect()
        })
        .unwrap_or_default()
}

fn read_seq(st: &State, user: &str, conv: &str) -> u64 {
    st.reads
        .get(&(user.to_owned(), conv.to_owned()))
        .copied()
        .unwrap_or(0)
}

fn prefs(st: &State, user: &str, conv: &str) -> (bool, bool, bool) {
    st.prefs
        .get(&(user.to_owned(), conv.to_owned()))
        .copied()
        .unwrap_or_default()
}

fn unread_entries<'a>(st: &'a State, user: &str, conv: &str) -> Vec<&'a pb::Message> {
    let read = read_seq(st, user, conv);
    visible_log(st, user, conv)
        .into_iter()
        .filter(|m| m.seq > read && m.kind == 0 && m.from_user != user)
        .collect()
}

fn peer(conv: &str, user: &str) -> Option<UserId> {
    ConvId::parse(conv)
        .unwrap()
        .peer_of(&UserId::new(user).unwrap())
}

/// The user's view of one conversation; `None` if they may see none of it.
pub(super) fn info(st: &State, user: &str, conv: &str) -> Option<pb::ConversationInfo> {
    let log = visible_log(st, user, conv);
    let last = log.last()?;
    let unread = unread_entries(st, user, conv);
    let (pinned, muted, hidden) = prefs(st, user, conv);
    let peer = peer(conv, user);
    let group = conv.strip_prefix("g:").and_then(|g| st.groups.get(g));
    Some(pb::ConversationInfo {
        conversation: conv.to_owned(),
        last_seq: last.seq,
        last_time_ms: last.server_time_ms,
        peer: peer.as_ref().map(|p| p.to_string()).unwrap_or_default(),
        unread: unread.len() as u64,
        read_seq: read_seq(st, user, conv),
        mentioned: unread
            .iter()
            .any(|m| m.mention_all || m.mentions.iter().any(|u| u == user)),
        pinned,
        muted,
        hidden,
        last_message: log.iter().rev().find(|m| m.kind == 0).map(|m| (*m).clone()),
        peer_read_seq: peer.map_or(0, |p| read_seq(st, p.as_str(), conv)),
        name: group.map(|g| g.name.clone()).unwrap_or_default(),
        active: group.is_some_and(|g| g.members.contains(user)),
        first_seq: log[0].seq,
    })
}

fn total_unread(st: &State, user: &str) -> u64 {
    st.logs
        .keys()
        .filter_map(|c| info(st, user, c))
        .filter(|c| !c.muted)
        .map(|c| c.unread)
        .sum()
}

pub(super) fn list(st: &mut State, id: u64, req: pb::ListConversations, user: &str) -> Frame {
    st.list_since.push(req.since_version);
    // Every conversation, whatever `since_version` says: a superset is a correct answer.
    let mut convs: Vec<pb::ConversationInfo> = st
        .logs
        .keys()
        .filter(|c| c.as_str() > req.after.as_str())
        .filter_map(|c| info(st, user, c))
        .collect();
    let limit = req.limit.max(1) as usize;
    let has_more = convs.len() > limit;
    convs.truncate(limit);
    let list = pb::ConversationList {
        conversations: convs,
        has_more,
        version: st.version,
        total_unread: total_unread(st, user),
    };
    frame(id, Body::ConversationList(list))
}

pub(super) fn pull(st: &mut State, id: u64, req: pb::PullRequest, user: &str) -> Frame {
    st.pulls.push((req.conversation.clone(), req.after_seq));
    st.user_pulls
        .push((user.to_owned(), req.conversation.clone(), req.after_seq));
    let conv = req.conversation.as_str();
    let log = visible_log(st, user, conv);
    let last_seq = log.last().map_or(0, |m| m.seq);
    let limit = req.limit.max(1) as usize;
    let after: Vec<pb::Message> = log
        .into_iter()
        .filter(|m| m.seq > req.after_seq)
        .cloned()
        .collect();
    let has_more = after.len() > limit;
    let messages: Vec<pb::Message> = after.into_iter().take(limit).collect();
    let end = messages.last().map_or(last_seq, |m| m.seq);
    let mut hidden: Vec<pb::SeqRange> = Vec::new();
    for seq in req.after_seq + 1..=end {
        if visible(st, user, conv, seq) {
            continue;
        }
        match hidden.last_mut() {
            Some(r) if r.to + 1 == seq => r.to = seq,
            _ => hidden.push(pb::SeqRange { from: seq, to: seq }),
        }
    }
    let result = pb::PullResult {
        conversation: req.conversation,
        messages,
        has_more,
        last_seq,
        hidden,
    };
    frame(id, Body::PullResult(result))
}

pub(super) fn mark_read(
    st: &mut State,
    id: u64,
    req: pb::MarkRead,
    user: &str,
    conn: u64,
) -> Frame {
    let conv = req.conversation.clone();
    let Some(last) = visible_log(st, user, &conv).last().map(|m| m.seq) else {
        return error_frame(id, ErrorCode::Forbidden, "not yours");
    };
    let want = if req.seq == 0 {
        last
    } else {
        req.seq.min(last)
    };
    let read = read_seq(st, user, &conv).max(want);
    st.reads.insert((user.to_owned(), conv.clone()), read);
    st.version += 1;
    let unread = unread_entries(st, user, &conv).len() as u64;
    let total = total_unread(st, user);
    let update = pb::ReadUpdate {
        conversation: conv.clone(),
        user: user.to_owned(),
        read_seq: read,
        unread,
        total_unread: total,
    };
    send_to_user(
        st,
        user,
        &frame(0, Body::ReadUpdate(update.clone())),
        Some(conn),
    );
    if let Some(peer) = peer(&conv, user) {
        let receipt = pb::ReadUpdate {
            unread: 0,
            total_unread: 0,
            ..update
        };
        send_to_user(
            st,
            peer.as_str(),
            &frame(0, Body::ReadUpdate(receipt)),
            None,
        );
    }
    let result = pb::ReadResult {
        conversation: conv,
        read_seq: read,
        unread,
        total_unread: total,
    };
    frame(id, Body::ReadResult(result))
}

pub(super) fn settings(
    st: &mut State,
    id: u64,
    req: pb::ConversationSettings,
    user: &str,
) -> Frame {
    let key = (user.to_owned(), req.conversation.clone());
    let mut p = st.prefs.get(&key).copied().unwrap_or_default();
    p.0 = req.pinned.unwrap_or(p.0);
    p.1 = req.muted.unwrap_or(p.1);
    p.2 = req.hidden.unwrap_or(p.2);
    st.prefs.insert(key, p);
    st.version += 1;
    let Some(info) = info(st, user, &req.conversation) else {
        return error_frame(id, ErrorCode::NotFound, "no such conversation");
    };
    let result = pb::ConversationSettingsResult {
        conversation: Some(info),
        total_unread: total_unread(st, user),
    };
    frame(id, Body::ConversationSettingsResult(result))
}
