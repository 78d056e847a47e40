//! Group commands. Each is one `GroupRequest` answered by one `GroupResult`, parsed into the
//! typed results of [`group`](crate::group).
//!
//! Operations that change a group append an event to its log and are not idempotent, so they
//! are written at most once: if the connection drops before the answer they fail with
//! [`ClientError::Interrupted`] rather than, say, creating a second group. Reads (`group`,
//! `group_members`, `join_requests`) are retried on the next connection like other queries.

use std::time::Duration;

use magpie_proto::pb::group_request::Op;
use magpie_proto::{Body, pb};
use magpie_types::{GroupId, UserId};

use super::Client;
use crate::group::{GroupAnswer, target};
use crate::{
    ClientError, GroupChange, GroupInfo, GroupMember, GroupUpdate, JoinOutcome, MembersPage,
    NewGroup,
};

impl Client {
    /// Creates a group owned by the user, with `group.members` as first members; returns it
    /// (with the id the server picked, if none was given). Fails with
    /// [`ErrorCode::AlreadyExists`](crate::ErrorCode::AlreadyExists) if the id is taken.
    pub async fn create_group(&self, group: NewGroup) -> Result<GroupInfo, ClientError> {
        self.group_op(Op::Create(group.to_pb()), false)
            .await?
            .info("create")
            .map_err(ClientError::Protocol)
    }

    /// Adds users to a group (admins, or members if the group lets them invite).
    pub async fn add_members(
        &self,
        group: &GroupId,
        users: &[UserId],
    ) -> Result<GroupChange, ClientError> {
        self.change(Op::AddMembers(target(group, users))).await
    }

    /// Joins a group: at once if it is open, as a request waiting for an admin if it needs
    /// approval. The user sees the group's log from the join event on.
    pub async fn join_group(&self, group: &GroupId) -> Result<JoinOutcome, ClientError> {
        self.group_op(Op::Join(target(group, &[])), false)
            .await?
            .join()
            .map_err(ClientError::Protocol)
    }

    /// Leaves a group. The leave event is the last entry of the group the user receives.
    pub async fn leave_group(&self, group: &GroupId) -> Result<GroupChange, ClientError> {
        self.change(Op::Leave(target(group, &[]))).await
    }

    /// Removes users from a group (admins).
    pub async fn kick_members(
        &self,
        group: &GroupId,
        users: &[UserId],
    ) -> Result<GroupChange, ClientError> {
        self.change(Op::Kick(target(group, users))).await
    }

    /// Dismisses a group (the owner): nobody is a member any more.
    pub async fn dismiss_group(&self, group: &GroupId) -> Result<GroupChange, ClientError> {
        self.change(Op::Dismiss(target(group, &[]))).await
    }

    /// Hands the group over to another member (the owner).
    pub async fn transfer_owner(
        &self,
        group: &GroupId,
        new_owner: &UserId,
    ) -> Result<GroupChange, ClientError> {
        let users = std::slice::from_ref(new_owner);
        self.change(Op::TransferOwner(target(group, users))).await
    }

    /// Makes a member an admin, or an ordinary member again (the owner).
    pub async fn set_admin(
        &self,
        group: &GroupId,
        user: &UserId,
        admin: bool,
    ) -> Result<GroupChange, ClientError> {
        self.change(Op::SetAdmin(pb::SetAdmin {
            group: group.as_str().to_owned(),
            user: user.as_str().to_owned(),
            admin,
        }))
        .await
    }

    /// Mutes a member for `duration` (admins); [`Duration::ZERO`] lifts the mute.
    pub async fn mute_member(
        &self,
        group: &GroupId,
        user: &UserId,
        duration: Duration,
    ) -> Result<GroupChange, ClientError> {
        let mut duration_ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        if duration_ms == 0 && !duration.is_zero() {
            // 0 would lift the mute: a sub-millisecond mute is the shortest real one.
            duration_ms = 1;
        }
        self.change(Op::Mute(pb::MuteMember {
            group: group.as_str().to_owned(),
            user: user.as_str().to_owned(),
            duration_ms,
        }))
        .await
    }

    /// Lets only admins send (`muted`), or everyone again.
    pub async fn mute_all(&self, group: &GroupId, muted: bool) -> Result<GroupChange, ClientError> {
        self.change(Op::MuteAll(pb::MuteAll {
            group: group.as_str().to_owned(),
            muted,
        }))
        .await
    }

    /// Changes the group's profile or settings (admins); unset fields stay as they are.
    pub async fn update_group(
        &self,
        group: &GroupId,
        update: GroupUpdate,
    ) -> Result<GroupChange, ClientError> {
        self.change(Op::Update(update.to_pb(group))).await
    }

    /// A page of the group's members, ordered by user id: those after `after` (`None`: from
    /// the first), at most `limit`.
    pub async fn group_members(
        &self,
        group: &GroupId,
        after: Option<&UserId>,
        limit: u32,
    ) -> Result<MembersPage, ClientError> {
        let op = Op::Members(pb::ListMembers {
            group: group.as_str().to_owned(),
            after: after.map(|u| u.as_str().to_owned()).unwrap_or_default(),
            limit,
        });
        let answer = self.group_op(op, true).await?;
        Ok(MembersPage {
            members: answer.members,
            has_more: answer.has_more,
        })
    }

    /// The group's profile and settings.
    pub async fn group(&self, group: &GroupId) -> Result<GroupInfo, ClientError> {
        self.group_op(Op::Get(target(group, &[])), true)
            .await?
            .info("get")
            .map_err(ClientError::Protocol)
    }

    /// Lets users who asked to join in (admins).
    pub async fn approve_join(
        &self,
        group: &GroupId,
        users: &[UserId],
    ) -> Result<GroupChange, ClientError> {
        self.change(Op::Approve(target(group, users))).await
    }

    /// Turns down users who asked to join (admins).
    pub async fn reject_join(
        &self,
        group: &GroupId,
        users: &[UserId],
    ) -> Result<GroupChange, ClientError> {
        self.change(Op::Reject(target(group, users))).await
    }

    /// The users waiting for approval to join (admins).
    pub async fn join_requests(&self, group: &GroupId) -> Result<Vec<GroupMember>, ClientError> {
        Ok(self
            .group_op(Op::JoinRequests(target(group, &[])), true)
            .await?
            .members)
    }

    /// An operation that changes the group.
    async fn change(&self, op: Op) -> Result<GroupChange, ClientError> {
        Ok(self.group_op(op, false).await?.change())
    }

    async fn group_op(&self, op: Op, idempotent: bool) -> Result<GroupAnswer, ClientError> {
        let request = Body::Group(pb::GroupRequest { op: Some(op) });
        match self.query(request, idempotent).await? {
            Body::GroupResult(r) => GroupAnswer::from_pb(r).map_err(ClientError::Protocol),
            _ => Err(ClientError::Protocol(
                "unexpected answer to a group operation".into(),
            )),
        }
    }
}
