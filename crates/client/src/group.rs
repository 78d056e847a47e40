//! Groups as the application sees them: [`GroupInfo`], [`GroupMember`], [`GroupRole`],
//! [`JoinPolicy`], what to create ([`NewGroup`]) or change ([`GroupUpdate`]), and the
//! results of group operations ([`GroupChange`], [`JoinOutcome`], [`MembersPage`]).
//!
//! Every change a group operation makes is also appended to the group's log, so members'
//! devices learn it in order as an [`Event::GroupEvent`](crate::Event::GroupEvent); the
//! results here are for the caller of the operation.

use magpie_proto::pb;
use magpie_types::{ConvId, GroupId, Millis, Seq, UserId};

/// Who may join a group (the domain type of `magpie-types`).
pub use magpie_types::JoinPolicy;
/// A member's role in a group (the domain type of `magpie-types`, named for the SDK).
pub use magpie_types::Role as GroupRole;

/// A wire join policy; one added by a newer server reads as the strictest known one.
fn join_policy_from_wire(code: i32) -> JoinPolicy {
    u32::try_from(code)
        .ok()
        .and_then(JoinPolicy::from_code)
        .unwrap_or(JoinPolicy::Invite)
}

fn join_policy_to_wire(policy: JoinPolicy) -> i32 {
    i32::from(policy.code())
}

/// A wire role; one added by a newer server grants nothing by assumption.
fn role_from_wire(code: i32) -> GroupRole {
    u32::try_from(code)
        .ok()
        .and_then(GroupRole::from_code)
        .unwrap_or(GroupRole::Member)
}

/// A group as its members see it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupInfo {
    /// The group.
    pub id: GroupId,
    /// Its conversation (`g:<group>`), where its messages and events are.
    pub conversation: ConvId,
    /// Display name.
    pub name: String,
    /// Avatar URL (empty if none).
    pub avatar_url: String,
    /// The notice (announcement) shown to members.
    pub notice: String,
    /// Free-form JSON set by the application.
    pub custom: String,
    /// The owner (none once the group is dismissed, if the server says so).
    pub owner: Option<UserId>,
    /// Current number of members.
    pub member_count: u32,
    /// Who may join.
    pub join_policy: JoinPolicy,
    /// Only admins may send.
    pub muted_all: bool,
    /// The group was dismissed: nobody may send or join any more.
    pub dismissed: bool,
    /// A super group (large member limit).
    pub super_group: bool,
    /// Members (not only admins) may add people.
    pub members_can_invite: bool,
}

impl GroupInfo {
    pub(crate) fn from_pb(g: pb::GroupInfo) -> Result<Self, String> {
        let id = GroupId::new(g.group.as_str()).map_err(|e| format!("group {:?}: {e}", g.group))?;
        // The conversation is derived from the id; a server that says otherwise is ignored
        // rather than trusted with a second name for the same thing.
        let conversation = ConvId::group(&id);
        if !g.conversation.is_empty() && g.conversation != conversation.as_str() {
            tracing::debug!(group = %id, conversation = %g.conversation, "unexpected group conversation id");
        }
        Ok(Self {
            conversation,
            id,
            name: g.name,
            avatar_url: g.avatar_url,
            notice: g.notice,
            custom: g.custom,
            owner: UserId::new(g.owner).ok(),
            member_count: g.member_count,
            join_policy: join_policy_from_wire(g.join_policy),
            muted_all: g.muted_all,
            dismissed: g.dismissed,
            super_group: g.super_group,
            members_can_invite: g.members_can_invite,
        })
    }
}

/// A member of a group (or, in [`Client::join_requests`](crate::Client::join_requests), a
/// user asking to join).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupMember {
    /// The user.
    pub user: UserId,
    /// Their role.
    pub role: GroupRole,
    /// The `seq` of their (latest) join: they see the group's log from there on.
    pub joined_seq: Seq,
    /// Muted until this time (Unix milliseconds), if muted.
    pub muted_until: Option<Millis>,
}

impl GroupMember {
    pub(crate) fn from_pb(m: pb::GroupMember) -> Result<Self, String> {
        Ok(Self {
            user: UserId::new(m.user.as_str()).map_err(|e| format!("member {:?}: {e}", m.user))?,
            role: role_from_wire(m.role),
            joined_seq: m.joined_seq,
            muted_until: (m.muted_until_ms != 0).then_some(m.muted_until_ms),
        })
    }
}

/// Parses members, dropping (and logging) malformed ones rather than the whole answer.
pub(crate) fn members_from_pb(members: Vec<pb::GroupMember>) -> Vec<GroupMember> {
    members
        .into_iter()
        .filter_map(|m| {
            GroupMember::from_pb(m)
                .inspect_err(|e| tracing::warn!("ignoring a group member: {e}"))
                .ok()
        })
        .collect()
}

/// A group to create (see [`Client::create_group`](crate::Client::create_group)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewGroup {
    /// The id to use; `None` lets the server pick one.
    pub id: Option<GroupId>,
    /// Display name.
    pub name: String,
    /// Members besides the creator (who becomes the owner).
    pub members: Vec<UserId>,
    /// Who may join.
    pub join_policy: JoinPolicy,
    /// A super group (large member limit).
    pub super_group: bool,
    /// Avatar URL.
    pub avatar_url: String,
    /// The notice shown to members.
    pub notice: String,
    /// Free-form JSON for the application.
    pub custom: String,
    /// Members (not only admins) may add people.
    pub members_can_invite: bool,
}

impl NewGroup {
    /// A group named `name`; every other setting at its default.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    /// Uses this id instead of letting the server pick one.
    pub fn with_id(mut self, id: GroupId) -> Self {
        self.id = Some(id);
        self
    }

    /// Adds members.
    pub fn with_members(mut self, members: impl IntoIterator<Item = UserId>) -> Self {
        self.members.extend(members);
        self
    }

    /// Sets who may join.
    pub fn with_join_policy(mut self, policy: JoinPolicy) -> Self {
        self.join_policy = policy;
        self
    }

    pub(crate) fn to_pb(&self) -> pb::CreateGroup {
        pb::CreateGroup {
            group: self
                .id
                .as_ref()
                .map(|g| g.as_str().to_owned())
                .unwrap_or_default(),
            name: self.name.clone(),
            members: strings(&self.members),
            join_policy: join_policy_to_wire(self.join_policy),
            super_group: self.super_group,
            avatar_url: self.avatar_url.clone(),
            notice: self.notice.clone(),
            custom: self.custom.clone(),
            members_can_invite: self.members_can_invite,
        }
    }
}

/// Changes to a group's profile and settings; `None` leaves a field unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupUpdate {
    /// Display name.
    pub name: Option<String>,
    /// Avatar URL.
    pub avatar_url: Option<String>,
    /// The notice shown to members.
    pub notice: Option<String>,
    /// Free-form JSON for the application.
    pub custom: Option<String>,
    /// Who may join.
    pub join_policy: Option<JoinPolicy>,
    /// Members (not only admins) may add people.
    pub members_can_invite: Option<bool>,
}

impl GroupUpdate {
    /// Sets the name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the avatar URL.
    pub fn avatar_url(mut self, url: impl Into<String>) -> Self {
        self.avatar_url = Some(url.into());
        self
    }

    /// Sets the notice.
    pub fn notice(mut self, notice: impl Into<String>) -> Self {
        self.notice = Some(notice.into());
        self
    }

    /// Sets the application's JSON.
    pub fn custom(mut self, custom: impl Into<String>) -> Self {
        self.custom = Some(custom.into());
        self
    }

    /// Sets who may join.
    pub fn join_policy(mut self, policy: JoinPolicy) -> Self {
        self.join_policy = Some(policy);
        self
    }

    /// Sets whether members may add people.
    pub fn members_can_invite(mut self, on: bool) -> Self {
        self.members_can_invite = Some(on);
        self
    }

    pub(crate) fn to_pb(&self, group: &GroupId) -> pb::UpdateGroup {
        pb::UpdateGroup {
            group: group.as_str().to_owned(),
            name: self.name.clone(),
            avatar_url: self.avatar_url.clone(),
            notice: self.notice.clone(),
            custom: self.custom.clone(),
            join_policy: self.join_policy.map(join_policy_to_wire),
            members_can_invite: self.members_can_invite,
        }
    }
}

/// What a group operation did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupChange {
    /// The group afterwards, when the server says.
    pub group: Option<GroupInfo>,
    /// The `seq` of the last event the operation appended to the group's log (`None` if it
    /// appended nothing). The event also arrives as an
    /// [`Event::GroupEvent`](crate::Event::GroupEvent) to every member.
    pub seq: Option<Seq>,
}

/// The outcome of [`Client::join_group`](crate::Client::join_group).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JoinOutcome {
    /// The user is a member from `seq` (the join event) on.
    Joined {
        /// The group afterwards, when the server says.
        group: Option<GroupInfo>,
        /// The join event's `seq`.
        seq: Seq,
    },
    /// The group requires approval: the request waits for an admin.
    Pending,
}

/// A page of a group's members, ordered by user id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembersPage {
    /// The members.
    pub members: Vec<GroupMember>,
    /// More follow: ask again with `after` = the last member's id.
    pub has_more: bool,
}

/// A group operation's answer, parsed once for every result type above.
pub(crate) struct GroupAnswer {
    pub(crate) group: Option<GroupInfo>,
    pub(crate) members: Vec<GroupMember>,
    pub(crate) has_more: bool,
    pub(crate) seq: Seq,
    pub(crate) pending: bool,
}

impl GroupAnswer {
    pub(crate) fn from_pb(r: pb::GroupResult) -> Result<Self, String> {
        Ok(Self {
            group: r.group.map(GroupInfo::from_pb).transpose()?,
            members: members_from_pb(r.members),
            has_more: r.has_more,
            seq: r.seq,
            pending: r.pending,
        })
    }

    pub(crate) fn change(self) -> GroupChange {
        GroupChange {
            group: self.group,
            seq: (self.seq != 0).then_some(self.seq),
        }
    }

    pub(crate) fn join(self) -> Result<JoinOutcome, String> {
        if self.pending {
            return Ok(JoinOutcome::Pending);
        }
        if self.seq == 0 {
            return Err("join answered with neither a seq nor pending".into());
        }
        Ok(JoinOutcome::Joined {
            group: self.group,
            seq: self.seq,
        })
    }

    pub(crate) fn info(self, op: &str) -> Result<GroupInfo, String> {
        self.group
            .ok_or_else(|| format!("{op} answered without the group"))
    }
}

/// Targets for the operations that act on a group and some users.
pub(crate) fn target(group: &GroupId, users: &[UserId]) -> pb::GroupTarget {
    pb::GroupTarget {
        group: group.as_str().to_owned(),
        users: strings(users),
    }
}

fn strings(users: &[UserId]) -> Vec<String> {
    users.iter().map(|u| u.as_str().to_owned()).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn group_results_parse() {
        let answer = GroupAnswer::from_pb(pb::GroupResult {
            group: Some(pb::GroupInfo {
                group: "team".into(),
                conversation: "g:team".into(),
                name: "Team".into(),
                owner: "alice".into(),
                member_count: 2,
                join_policy: pb::JoinPolicy::Approval as i32,
                ..Default::default()
            }),
            members: vec![
                pb::GroupMember {
                    user: "bob".into(),
                    role: pb::GroupRole::Admin as i32,
                    joined_seq: 3,
                    muted_until_ms: 0,
                },
                pb::GroupMember {
                    user: "".into(),
                    ..Default::default()
                },
                pb::GroupMember {
                    user: "carol".into(),
                    role: 42,
                    joined_seq: 4,
                    muted_until_ms: 99,
                },
            ],
            has_more: true,
            seq: 7,
            pending: false,
        })
        .unwrap();
        assert_eq!(answer.members.len(), 2, "the malformed member is dropped");
        assert_eq!(answer.members[0].role, GroupRole::Admin);
        assert_eq!(
            answer.members[1].role,
            GroupRole::Member,
            "unknown roles grant nothing"
        );
        assert_eq!(join_policy_from_wire(9), JoinPolicy::Invite);
        assert_eq!(answer.members[1].muted_until, Some(99));
        let info = answer.group.clone().unwrap();
        assert_eq!(info.conversation.as_str(), "g:team");
        assert_eq!(info.join_policy, JoinPolicy::Approval);
        assert_eq!(info.owner, Some(UserId::new("alice").unwrap()));
        match answer.join().unwrap() {
            JoinOutcome::Joined { seq, .. } => assert_eq!(seq, 7),
            JoinOutcome::Pending => panic!("not pending"),
        }
        let pending = GroupAnswer::from_pb(pb::GroupResult {
            pending: true,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(pending.join().unwrap(), JoinOutcome::Pending);
        let bad = GroupAnswer::from_pb(pb::GroupResult {
            group: Some(pb::GroupInfo::default()),
            ..Default::default()
        });
        assert!(bad.is_err(), "a group without an id is refused");
    }

    #[test]
    fn requests_carry_every_field() {
        let g = NewGroup::named("Team")
            .with_id(GroupId::new("team").unwrap())
            .with_members([UserId::new("bob").unwrap()])
            .with_join_policy(JoinPolicy::Invite)
            .to_pb();
        assert_eq!(g.group, "team");
        assert_eq!(g.members, ["bob"]);
        assert_eq!(g.join_policy, pb::JoinPolicy::Invite as i32);
        assert_eq!(
            NewGroup::named("x").to_pb().group,
            "",
            "server picks the id"
        );
        let u = GroupUpdate::default()
            .name("New")
            .join_policy(JoinPolicy::Open)
            .to_pb(&GroupId::new("team").unwrap());
        assert_eq!(u.name.as_deref(), Some("New"));
        assert_eq!(u.notice, None);
        assert_eq!(u.join_policy, Some(pb::JoinPolicy::Open as i32));
    }
}
