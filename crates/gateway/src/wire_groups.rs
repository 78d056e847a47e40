//! Group values on the wire.

use magpie_proto::pb;
use magpie_proto::{Body, Frame, frame};
use magpie_service::{GroupInfo, GroupOutcome};
use magpie_store::records::MemberRecord;
use magpie_types::UserId;

/// A group's profile on the wire.
pub fn group_info(g: &GroupInfo) -> pb::GroupInfo {
    let r = &g.record;
    pb::GroupInfo {
        group: g.id.to_string(),
        conversation: g.conv().to_string(),
        name: r.name.clone(),
        avatar_url: r.avatar_url.clone(),
        notice: r.notice.clone(),
        custom: r.custom.clone(),
        owner: r.owner.clone(),
        member_count: r.member_count,
        join_policy: i32::from(r.policy().code()),
        muted_all: r.muted_all,
        dismissed: r.dismissed,
        super_group: r.super_group,
        members_can_invite: r.members_can_invite,
    }
}

/// A member on the wire.
pub fn member(user: &UserId, m: &MemberRecord) -> pb::GroupMember {
    pb::GroupMember {
        user: user.to_string(),
        role: i32::from(m.role().code()),
        joined_seq: m.joined_seq(),
        muted_until_ms: m.muted_until_ms,
    }
}

/// The answer to a group request.
pub fn group_result(request_id: u64, o: &GroupOutcome) -> Frame {
    frame(
        request_id,
        Body::GroupResult(pb::GroupResult {
            group: Some(group_info(&o.group)),
            members: o.members.iter().map(|(u, m)| member(u, m)).collect(),
            has_more: o.has_more,
            seq: o.seq,
            pending: o.pending,
        }),
    )
}
