//! The fake server's groups: create, join, leave, add and get. Every change appends a
//! GROUP_EVENT entry (JSON `{"action", "by", "users", "name"}`) and moves membership
//! intervals: a joiner sees the log from the join event on, a leaver up to the leave event.

use magpie_proto::convert::text_content;
use magpie_proto::pb::{self, ErrorCode, group_request::Op};
use magpie_proto::{Body, Frame, error_frame, frame};

use super::{FakeGroup, State, append, fan_out};

type Refusal = (ErrorCode, &'static str);

pub(super) fn on_group(st: &mut State, id: u64, req: pb::GroupRequest, user: &str) -> Frame {
    match handle(st, req, user) {
        Ok(result) => frame(id, Body::GroupResult(result)),
        Err((code, message)) => error_frame(id, code, message),
    }
}

fn handle(st: &mut State, req: pb::GroupRequest, user: &str) -> Result<pb::GroupResult, Refusal> {
    let op = req.op.ok_or((ErrorCode::InvalidArgument, "no op"))?;
    let me = user.to_owned();
    let (gid, seq) = match op {
        Op::Create(c) => {
            let gid = if c.group.is_empty() {
                format!("grp{}", st.groups.len() + 1)
            } else {
                c.group
            };
            if st.groups.contains_key(&gid) {
                return Err((ErrorCode::AlreadyExists, "group exists"));
            }
            let group = FakeGroup {
                name: c.name.clone(),
                owner: me.clone(),
                ..FakeGroup::default()
            };
            st.groups.insert(gid.clone(), group);
            let mut users = vec![me.clone()];
            users.extend(c.members);
            let seq = event(st, &gid, &me, "create", &users, Change::Join, Some(&c.name));
            (gid, seq)
        }
        Op::Join(t) => {
            let g = group(st, &t.group)?;
            if g.members.contains(&me) {
                return Err((ErrorCode::AlreadyExists, "already a member"));
            }
            let seq = event(
                st,
                &t.group,
                &me,
                "join",
                std::slice::from_ref(&me),
                Change::Join,
                None,
            );
            (t.group, seq)
        }
        Op::AddMembers(t) => {
            member(st, &t.group, &me)?;
            let seq = event(st, &t.group, &me, "add", &t.users, Change::Join, None);
            (t.group, seq)
        }
        Op::Leave(t) => {
            member(st, &t.group, &me)?;
            let seq = event(
                st,
                &t.group,
                &me,
                "leave",
                std::slice::from_ref(&me),
                Change::Leave,
                None,
            );
            (t.group, seq)
        }
        Op::Get(t) => {
            group(st, &t.group)?;
            (t.group, 0)
        }
        _ => return Err((ErrorCode::InvalidArgument, "not supported by the fake")),
    };
    Ok(pb::GroupResult {
        group: Some(info(st, &gid)),
        seq,
        ..Default::default()
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Change {
    Join,
    Leave,
}

/// Appends a group event, moving membership first (a joiner sees their join event) or after
/// (a leaver sees their leave event), and pushes it to whoever may see it.
fn event(
    st: &mut State,
    gid: &str,
    by: &str,
    action: &str,
    users: &[String],
    change: Change,
    name: Option<&str>,
) -> u64 {
    let conv = format!("g:{gid}");
    let seq = st.logs.get(&conv).map_or(0, Vec::len) as u64 + 1;
    let g = st.groups.get_mut(gid).unwrap();
    for u in users {
        match change {
            Change::Join => {
                if g.members.insert(u.clone()) {
                    g.intervals
                        .entry(u.clone())
                        .or_default()
                        .push((seq, u64::MAX));
                }
            }
            Change::Leave => {
                g.members.remove(u);
                if let Some(last) = g.intervals.get_mut(u).and_then(|iv| iv.last_mut()) {
                    last.1 = seq;
                }
            }
        }
    }
    let quoted: Vec<String> = users.iter().map(|u| format!("\"{u}\"")).collect();
    let name = name
        .map(|n| format!(",\"name\":\"{n}\""))
        .unwrap_or_default();
    let json = format!(
        "{{\"action\":\"{action}\",\"by\":\"{by}\",\"users\":[{}]{name}}}",
        quoted.join(",")
    );
    let entry = pb::Message {
        from_user: by.into(),
        from_device: "srv".into(),
        content: Some(text_content(&json)),
        kind: pb::EntryKind::GroupEvent as i32,
        ..Default::default()
    };
    let m = append(st, &conv, entry);
    fan_out(st, &m, None);
    m.seq
}

fn group<'a>(st: &'a State, gid: &str) -> Result<&'a FakeGroup, Refusal> {
    st.groups
        .get(gid)
        .ok_or((ErrorCode::NotFound, "no such group"))
}

fn member(st: &State, gid: &str, user: &str) -> Result<(), Refusal> {
    if group(st, gid)?.members.contains(user) {
        Ok(())
    } else {
        Err((ErrorCode::Forbidden, "not a member"))
    }
}

fn info(st: &State, gid: &str) -> pb::GroupInfo {
    let g = &st.groups[gid];
    pb::GroupInfo {
        group: gid.into(),
        conversation: format!("g:{gid}"),
        name: g.name.clone(),
        owner: g.owner.clone(),
        member_count: g.members.len() as u32,
        ..Default::default()
    }
}
