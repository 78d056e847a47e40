//! The group operations. Each checks its permission with `magpie_core::group_rules` and
//! changes a copy of the state through `Service::change_group`.

use magpie_core::ErrorKind;
use magpie_core::group_rules::{GroupAction, allowed};
use magpie_core::membership;
use magpie_store::records::{self, GroupRecord, JoinRequestRecord, MemberRecord};
use magpie_store::{AppendRequest, EntryExtras, Table};
use magpie_types::{
    ClientMsgId, Content, ConvId, EntryKind, GroupId, JoinPolicy, Role, Seq, UserId,
};

use super::state::GroupState;
use super::{Change, GroupInfo, GroupOutcome, refuse};
use crate::error::ServiceError;
use crate::messaging::Service;
use crate::sessions::SessionCtx;

/// A request to create a group.
#[derive(Debug, Clone, Default)]
pub struct CreateGroup {
    /// The id to use (`None`: the server picks one).
    pub id: Option<GroupId>,
    /// Display name.
    pub name: String,
    /// Initial members besides the creator.
    pub members: Vec<UserId>,
    /// Who may join.
    pub join_policy: JoinPolicy,
    /// A super group (the large member limit).
    pub super_group: bool,
    /// Avatar URL.
    pub avatar_url: String,
    /// Notice.
    pub notice: String,
    /// Free-form JSON.
    pub custom: String,
    /// Whether ordinary members may add people.
    pub members_can_invite: bool,
}

/// Profile and settings fields to change (`None`: unchanged).
#[derive(Debug, Clone, Default)]
pub struct UpdateGroup {
    /// Display name.
    pub name: Option<String>,
    /// Avatar URL.
    pub avatar_url: Option<String>,
    /// Notice.
    pub notice: Option<String>,
    /// Free-form JSON.
    pub custom: Option<String>,
    /// Who may join.
    pub join_policy: Option<JoinPolicy>,
    /// Whether ordinary members may add people.
    pub members_can_invite: Option<bool>,
}

/// The member record of `user` if active, or a refusal.
fn member<'a>(s: &'a GroupState, user: &UserId) -> Result<&'a MemberRecord, ServiceError> {
    s.active(user)
        .ok_or_else(|| refuse(ErrorKind::Forbidden, "not a member of this group"))
}

fn check(
    s: &GroupState,
    actor: &UserId,
    action: GroupAction,
    target: Option<&UserId>,
) -> Result<(), ServiceError> {
    let role = member(s, actor)?.role();
    let target_role = match target {
        Some(t) => Some(
            s.active(t)
                .ok_or_else(|| refuse(ErrorKind::NotFound, format!("{t} is not a member")))?
                .role(),
        ),
        None => None,
    };
    if allowed(action, role, target_role, s.record.members_can_invite) {
        Ok(())
    } else {
        Err(refuse(
            ErrorKind::Forbidden,
            format!("your role may not {action:?} here"),
        ))
    }
}

fn dedup(users: Vec<UserId>) -> Vec<UserId> {
    let mut seen = std::collections::HashSet::new();
    users
        .into_iter()
        .filter(|u| seen.insert(u.clone()))
        .collect()
}

/// Opens an interval for each user at `seq`; returns those who were not members.
fn admit(s: &mut GroupState, users: &[UserId], seq: Seq) -> Vec<UserId> {
    let mut added = Vec::new();
    for u in users {
        let m = s.members.entry(u.clone()).or_default();
        if membership::open(&mut m.intervals, seq) {
            m.role = Role::Member.code();
            m.muted_until_ms = 0;
            added.push(u.clone());
        }
    }
    s.record.member_count = s.record.member_count.saturating_add(added.len() as u32);
    added
}

impl Service {
    fn check_field(&self, name: &str, value: &str) -> Result<(), ServiceError> {
        let max = self.limits().max_group_field_bytes;
        if value.len() > max {
            return Err(refuse(
                ErrorKind::InvalidArgument,
                format!("{name} is longer than {max} bytes"),
            ));
        }
        Ok(())
    }

    fn check_users(&self, users: &[UserId]) -> Result<(), ServiceError> {
        let max = self.limits().max_users_per_group_op;
        if users.len() > max {
            return Err(refuse(
                ErrorKind::InvalidArgument,
                format!("one operation may name at most {max} users"),
            ));
        }
        Ok(())
    }

    async fn require_users(
        &self,
        app: &magpie_types::AppId,
        users: &[UserId],
    ) -> Result<(), ServiceError> {
        self.check_users(users)?;
        for u in users {
            if !self.user_exists(app, u).await? {
                return Err(refuse(
                    ErrorKind::NotFound,
                    format!("no user {u} in this app"),
                ));
            }
        }
        Ok(())
    }

    /// The member limit of a group in `app`.
    fn member_limit(&self, app: &magpie_types::AppId, super_group: bool) -> u32 {
        let (ordinary, sup) = self.apps().group_limits(app);
        if super_group {
            sup.unwrap_or(self.limits().max_super_group_members)
        } else {
            ordinary.unwrap_or(self.limits().max_group_members)
        }
    }

    fn check_capacity(
        &self,
        app: &magpie_types::AppId,
        s: &GroupState,
        adding: usize,
    ) -> Result<(), ServiceError> {
        let limit = self.member_limit(app, s.record.super_group);
        let after = u64::from(s.record.member_count) + adding as u64;
        if after > u64::from(limit) {
            return Err(refuse(
                ErrorKind::LimitExceeded,
                format!("the group would have {after} members; its limit is {limit}"),
            ));
        }
        Ok(())
    }

    /// Admits those of `users` who are not members at `seq` (capacity permitting) and
    /// drops every named user's pending join request: the shared part of add and approve.
    fn admit_change(
        &self,
        action: &str,
        who: &SessionCtx,
        group: &GroupId,
        s: &mut GroupState,
        users: &[UserId],
        seq: Seq,
    ) -> Result<Change, ServiceError> {
        let new: Vec<UserId> = users
            .iter()
            .filter(|u| s.active(u).is_none())
            .cloned()
            .collect();
        self.check_capacity(&who.app, s, new.len())?;
        let added = admit(s, &new, seq);
        let mut c = Change::new(action, &who.user).users(&added);
        c.extra = users
            .iter()
            .map(|u| records::delete(Table::JoinRequests, records::member_key(group, u)))
            .collect();
        c.touched = added.clone();
        c.joined = added;
        Ok(c)
    }

    /// Creates a group with the creator as owner and `req.members` as members. The create
    /// event is seq 1 of the group's log.
    pub async fn create_group(
        &self,
        who: &SessionCtx,
        req: CreateGroup,
    ) -> Result<GroupOutcome, ServiceError> {
        for (name, v) in [
            ("name", &req.name),
            ("avatar_url", &req.avatar_url),
            ("notice", &req.notice),
            ("custom", &req.custom),
        ] {
            self.check_field(name, v)?;
        }
        let mut users = vec![who.user.clone()];
        users.extend(req.members);
        let users = dedup(users);
        self.require_users(&who.app, &users).await?;
        let limit = self.member_limit(&who.app, req.super_group);
        if users.len() as u64 > u64::from(limit) {
            return Err(refuse(
                ErrorKind::LimitExceeded,
                format!("a group of this kind holds at most {limit} members"),
            ));
        }
        let id = match req.id {
            Some(id) => id,
            None => {
                let n = self.next_id(self.now_ms());
                GroupId::new(format!("g{n:x}"))
                    .map_err(|e| ServiceError::new(ErrorKind::Internal, e.to_string()))?
            }
        };
        let app = &who.app;
        let conv = ConvId::group(&id);
        let mut guard = self.groups.write(&*self.store, app, &id).await?;
        if guard.is_some() || self.store.last_seq(app, &conv).await? > 0 {
            return Err(refuse(
                ErrorKind::AlreadyExists,
                format!("group {id} exists"),
            ));
        }
        let mut state = GroupState {
            record: GroupRecord {
                name: req.name,
                avatar_url: req.avatar_url,
                notice: req.notice,
                custom: req.custom,
                owner: who.user.to_string(),
                join_policy: req.join_policy.code(),
                members_can_invite: req.members_can_invite,
                super_group: req.super_group,
                created_ms: self.now_ms(),
                ..GroupRecord::default()
            },
            members: Default::default(),
        };
        let added = admit(&mut state, &users, 1);
        if let Some(owner) = state.members.get_mut(&who.user) {
            owner.role = Role::Owner.code();
        }
        let mut writes = vec![records::put(
            Table::Groups,
            records::group_key(&id),
            &state.record,
        )?];
        for (u, m) in &state.members {
            writes.push(records::put(
                Table::Members,
                records::member_key(&id, u),
                m,
            )?);
        }
        let event = Change::new("create", &who.user)
            .with("name", state.record.name.clone())
            .users(&added)
            .event;
        let msg = self
            .append_event(who, &conv, 1, event, added, writes)
            .await
            .inspect_err(|_| {
                self.groups.forget(app, &id);
            })?;
        *guard = Some(state);
        let state = guard
            .as_ref()
            .ok_or_else(|| ServiceError::new(ErrorKind::Internal, "group state vanished"))?;
        self.fan_out_group(app, state, &msg, None, &[]);
        metrics::counter!("magpie_groups_created_total").increment(1);
        Ok(GroupOutcome {
            group: GroupInfo {
                id,
                record: state.record.clone(),
            },
            seq: msg.seq,
            pending: false,
            members: Vec::new(),
            has_more: false,
        })
    }

    /// Adds members (an invitation that needs no acceptance).
    pub async fn add_members(
        &self,
        who: &SessionCtx,
        group: &GroupId,
        users: Vec<UserId>,
    ) -> Result<GroupOutcome, ServiceError> {
        let users = dedup(users);
        if users.is_empty() {
            return Err(refuse(ErrorKind::InvalidArgument, "no users named"));
        }
        self.require_users(&who.app, &users).await?;
        self.change_group(who, group, |s, seq| {
            check(s, &who.user, GroupAction::Add, None)?;
            if users.iter().all(|u| s.active(u).is_some()) {
                return Err(refuse(
                    ErrorKind::AlreadyExists,
                    "every user named is a member",
                ));
            }
            self.admit_change("add", who, group, s, &users, seq)
        })
        .await
    }

    /// Joins a group: at once if it is open, as a pending request if it needs approval.
    pub async fn join_group(
        &self,
        who: &SessionCtx,
        group: &GroupId,
    ) -> Result<GroupOutcome, ServiceError> {
        let app = &who.app;
        let policy = {
            let guard = self.groups.read(&*self.store, app, group).await?;
            let s = guard
                .as_ref()
                .ok_or_else(|| refuse(ErrorKind::NotFound, format!("no group {group}")))?;
            if s.active(&who.user).is_some() {
                return Err(refuse(ErrorKind::AlreadyExists, "already a member"));
            }
            s.record.policy()
        };
        match policy {
            JoinPolicy::Invite => Err(refuse(
                ErrorKind::Forbidden,
                "this group is joined by invitation only",
            )),
            JoinPolicy::Approval => self.request_join(who, group).await,
            JoinPolicy::Open => {
                let app = app.clone();
                self.change_group(who, group, |s, seq| {
                    if s.record.policy() != JoinPolicy::Open {
                        return Err(refuse(ErrorKind::Forbidden, "the join policy changed"));
                    }
                    if s.active(&who.user).is_some() {
                        return Err(refuse(ErrorKind::AlreadyExists, "already a member"));
                    }
                    self.check_capacity(&app, s, 1)?;
                    let added = admit(s, std::slice::from_ref(&who.user), seq);
                    let mut c = Change::new("join", &who.user);
                    c.touched = added.clone();
                    c.joined = added;
                    Ok(c)
                })
                .await
            }
        }
    }

    /// Records a request to join; admins see it with `join_requests` and answer it.
    async fn request_join(
        &self,
        who: &SessionCtx,
        group: &GroupId,
    ) -> Result<GroupOutcome, ServiceError> {
        let write = records::put(
            Table::JoinRequests,
            records::member_key(group, &who.user),
            &JoinRequestRecord {
                at_ms: self.now_ms(),
            },
        )?;
        self.store.write_records(&who.app, vec![write]).await?;
        let guard = self.groups.read(&*self.store, &who.app, group).await?;
        let record = guard.as_ref().map(|s| s.record.clone()).unwrap_or_default();
        Ok(GroupOutcome {
            group: GroupInfo {
                id: group.clone(),
                record,
            },
            seq: 0,
            pending: true,
            members: Vec::new(),
            has_more: false,
        })
    }

    /// Approves pending join requests.
    pub async fn approve_joins(
        &self,
        who: &SessionCtx,
        group: &GroupId,
        users: Vec<UserId>,
    ) -> Result<GroupOutcome, ServiceError> {
        let users = dedup(users);
        self.check_users(&users)?;
        let mut pending = Vec::new();
        for u in &users {
            let key = records::member_key(group, u);
            if self
                .store
                .get_record(&who.app, Table::JoinRequests, &key)
                .await?
                .is_some()
            {
                pending.push(u.clone());
            }
        }
        if pending.is_empty() {
            return Err(refuse(
                ErrorKind::NotFound,
                "no pending request from these users",
            ));
        }
        self.change_group(who, group, |s, seq| {
            check(s, &who.user, GroupAction::ReviewJoins, None)?;
            self.admit_change("approve", who, group, s, &pending, seq)
        })
        .await
    }

    /// Rejects pending join requests (no event: the requesters were never members).
    pub async fn reject_joins(
        &self,
        who: &SessionCtx,
        group: &GroupId,
        users: Vec<UserId>,
    ) -> Result<GroupOutcome, ServiceError> {
        let users = dedup(users);
        self.check_users(&users)?;
        {
            let guard = self.groups.read(&*self.store, &who.app, group).await?;
            let s = guard
                .as_ref()
                .ok_or_else(|| refuse(ErrorKind::NotFound, format!("no group {group}")))?;
            check(s, &who.user, GroupAction::ReviewJoins, None)?;
        }
        let writes = users
            .iter()
            .map(|u| records::delete(Table::JoinRequests, records::member_key(group, u)))
            .collect();
        self.store.write_records(&who.app, writes).await?;
        Ok(GroupOutcome {
            group: self.group_info(who, group).await?,
            seq: 0,
            pending: false,
            members: Vec::new(),
            has_more: false,
        })
    }

    /// Pending join requests (admins only).
    pub async fn join_requests(
        &self,
        who: &SessionCtx,
        group: &GroupId,
    ) -> Result<GroupOutcome, ServiceError> {
        let info = {
            let guard = self.groups.read(&*self.store, &who.app, group).await?;
            let s = guard
                .as_ref()
                .ok_or_else(|| refuse(ErrorKind::NotFound, format!("no group {group}")))?;
            check(s, &who.user, GroupAction::ReviewJoins, None)?;
            GroupInfo {
                id: group.clone(),
                record: s.record.clone(),
            }
        };
        let limit = self.limits().max_page;
        let page = self
            .store
            .scan_records(
                &who.app,
                Table::JoinRequests,
                &records::member_prefix(group),
                None,
                limit + 1,
            )
            .await?;
        let has_more = page.len() > limit;
        let members = page
            .iter()
            .take(limit)
            .map(|(k, _)| Ok((records::user_of_key(k)?, MemberRecord::default())))
            .collect::<Result<Vec<_>, ServiceError>>()?;
        Ok(GroupOutcome {
            group: info,
            seq: 0,
            pending: false,
            members,
            has_more,
        })
    }

    /// Leaves a group. The owner must transfer the group first.
    pub async fn leave_group(
        &self,
        who: &SessionCtx,
        group: &GroupId,
    ) -> Result<GroupOutcome, ServiceError> {
        self.change_group(who, group, |s, seq| {
            let m = member(s, &who.user)?;
            if m.role() == Role::Owner {
                return Err(refuse(
                    ErrorKind::Forbidden,
                    "the owner cannot leave; transfer the group or dismiss it",
                ));
            }
            remove(s, &who.user, seq);
            let mut c = Change::new("leave", &who.user);
            c.touched = vec![who.user.clone()];
            c.farewell = vec![who.user.clone()];
            Ok(c)
        })
        .await
    }

    /// Removes members.
    pub async fn kick_members(
        &self,
        who: &SessionCtx,
        group: &GroupId,
        users: Vec<UserId>,
    ) -> Result<GroupOutcome, ServiceError> {
        let users = dedup(users);
        if users.is_empty() {
            return Err(refuse(ErrorKind::InvalidArgument, "no users named"));
        }
        self.check_users(&users)?;
        self.change_group(who, group, |s, seq| {
            for u in &users {
                check(s, &who.user, GroupAction::Kick, Some(u))?;
            }
            for u in &users {
                remove(s, u, seq);
            }
            let mut c = Change::new("kick", &who.user).users(&users);
            c.touched = users.clone();
            c.farewell = users.clone();
            Ok(c)
        })
        .await
    }

    /// Dismisses the group: every membership ends with the dismiss event; history stays.
    pub async fn dismiss_group(
        &self,
        who: &SessionCtx,
        group: &GroupId,
    ) -> Result<GroupOutcome, ServiceError> {
        self.change_group(who, group, |s, seq| {
            check(s, &who.user, GroupAction::Dismiss, None)?;
            let everyone: Vec<UserId> = s.active_members().map(|(u, _)| u.clone()).collect();
            for u in &everyone {
                remove(s, u, seq);
            }
            s.record.dismissed = true;
            let mut c = Change::new("dismiss", &who.user);
            c.touched = everyone.clone();
            c.farewell = everyone;
            Ok(c)
        })
        .await
    }

    /// Makes `to` the owner; the old owner becomes an admin.
    pub async fn transfer_group(
        &self,
        who: &SessionCtx,
        group: &GroupId,
        to: UserId,
    ) -> Result<GroupOutcome, ServiceError> {
        self.change_group(who, group, |s, _| {
            check(s, &who.user, GroupAction::Transfer, None)?;
            if to == who.user {
                return Err(refuse(ErrorKind::InvalidArgument, "already the owner"));
            }
            member(s, &to)
                .map_err(|_| refuse(ErrorKind::NotFound, format!("{to} is not a member")))?;
            for (u, role) in [(&who.user, Role::Admin), (&to, Role::Owner)] {
                if let Some(m) = s.members.get_mut(u) {
                    m.role = role.code();
                }
            }
            s.record.owner = to.to_string();
            let mut c = Change::new("transfer_owner", &who.user).users(std::slice::from_ref(&to));
            c.touched = vec![who.user.clone(), to.clone()];
            Ok(c)
        })
        .await
    }

    /// Grants or revokes admin.
    pub async fn set_admin(
        &self,
        who: &SessionCtx,
        group: &GroupId,
        user: UserId,
        admin: bool,
    ) -> Result<GroupOutcome, ServiceError> {
        self.change_group(who, group, |s, _| {
            check(s, &who.user, GroupAction::SetAdmin, Some(&user))?;
            let role = if admin { Role::Admin } else { Role::Member };
            if let Some(m) = s.members.get_mut(&user) {
                m.role = role.code();
            }
            let action = if admin { "set_admin" } else { "unset_admin" };
            let mut c = Change::new(action, &who.user).users(std::slice::from_ref(&user));
            c.touched = vec![user.clone()];
            Ok(c)
        })
        .await
    }

    /// Mutes a member for `duration_ms` (0 lifts the mute).
    pub async fn mute_member(
        &self,
        who: &SessionCtx,
        group: &GroupId,
        user: UserId,
        duration_ms: u64,
    ) -> Result<GroupOutcome, ServiceError> {
        let until = if duration_ms == 0 {
            0
        } else {
            self.now_ms().saturating_add(duration_ms)
        };
        self.change_group(who, group, |s, _| {
            check(s, &who.user, GroupAction::Mute, Some(&user))?;
            if let Some(m) = s.members.get_mut(&user) {
                m.muted_until_ms = until;
            }
            let action = if until == 0 { "unmute" } else { "mute" };
            let mut c = Change::new(action, &who.user)
                .users(std::slice::from_ref(&user))
                .with("until_ms", until);
            c.touched = vec![user.clone()];
            Ok(c)
        })
        .await
    }

    /// Mutes or unmutes everyone but the admins.
    pub async fn mute_all(
        &self,
        who: &SessionCtx,
        group: &GroupId,
        muted: bool,
    ) -> Result<GroupOutcome, ServiceError> {
        self.change_group(who, group, |s, _| {
            check(s, &who.user, GroupAction::MuteAll, None)?;
            s.record.muted_all = muted;
            let action = if muted { "mute_all" } else { "unmute_all" };
            Ok(Change::new(action, &who.user))
        })
        .await
    }

    /// Changes the profile or settings.
    pub async fn update_group(
        &self,
        who: &SessionCtx,
        group: &GroupId,
        u: UpdateGroup,
    ) -> Result<GroupOutcome, ServiceError> {
        for (name, v) in [
            ("name", &u.name),
            ("avatar_url", &u.avatar_url),
            ("notice", &u.notice),
            ("custom", &u.custom),
        ] {
            if let Some(v) = v {
                self.check_field(name, v)?;
            }
        }
        self.change_group(who, group, |s, _| {
            check(s, &who.user, GroupAction::Update, None)?;
            let mut c = Change::new("update", &who.user);
            let r = &mut s.record;
            if let Some(v) = u.name {
                c = c.with("name", v.clone());
                r.name = v;
            }
            if let Some(v) = u.avatar_url {
                c = c.with("avatar_url", v.clone());
                r.avatar_url = v;
            }
            if let Some(v) = u.notice {
                c = c.with("notice", v.clone());
                r.notice = v;
            }
            if let Some(v) = u.custom {
                c = c.with("custom", v.clone());
                r.custom = v;
            }
            if let Some(p) = u.join_policy {
                c = c.with("join_policy", u64::from(p.code()));
                r.join_policy = p.code();
            }
            if let Some(v) = u.members_can_invite {
                c = c.with("members_can_invite", v);
                r.members_can_invite = v;
            }
            Ok(c)
        })
        .await
    }

    /// The group's profile, for current and former members (and the app's backend
    /// speaking as the system).
    pub async fn group_info(
        &self,
        who: &SessionCtx,
        group: &GroupId,
    ) -> Result<GroupInfo, ServiceError> {
        let guard = self.groups.read(&*self.store, &who.app, group).await?;
        let s = guard
            .as_ref()
            .ok_or_else(|| refuse(ErrorKind::NotFound, format!("no group {group}")))?;
        if !Self::is_system(who) && !s.members.contains_key(&who.user) {
            return Err(refuse(ErrorKind::Forbidden, "not a member of this group"));
        }
        Ok(GroupInfo {
            id: group.clone(),
            record: s.record.clone(),
        })
    }

    /// Current members with ids after `after`, ascending, paged (current members only).
    pub async fn group_members(
        &self,
        who: &SessionCtx,
        group: &GroupId,
        after: Option<UserId>,
        limit: u32,
    ) -> Result<GroupOutcome, ServiceError> {
        let limit = self.limits().page(limit);
        let guard = self.groups.read(&*self.store, &who.app, group).await?;
        let s = guard
            .as_ref()
            .ok_or_else(|| refuse(ErrorKind::NotFound, format!("no group {group}")))?;
        member(s, &who.user)?;
        // Sorting a copy keeps the cache a plain map; a page of a 100,000-member group
        // costs one pass and a partial sort of the ids after `after`.
        let mut ids: Vec<&UserId> = s
            .active_members()
            .map(|(u, _)| u)
            .filter(|u| after.as_ref().is_none_or(|a| *u > a))
            .collect();
        let has_more = ids.len() > limit;
        if has_more {
            ids.select_nth_unstable(limit);
            ids.truncate(limit);
        }
        ids.sort_unstable();
        let members = ids
            .into_iter()
            .filter_map(|u| s.members.get(u).map(|m| (u.clone(), m.clone())))
            .collect();
        Ok(GroupOutcome {
            group: GroupInfo {
                id: group.clone(),
                record: s.record.clone(),
            },
            seq: 0,
            pending: false,
            members,
            has_more,
        })
    }

    /// Sends a message to a group as the session's user.
    #[allow(clippy::too_many_arguments)]
    pub async fn send_group(
        &self,
        who: &SessionCtx,
        group: &GroupId,
        client_msg_id: ClientMsgId,
        content: Content,
        mentions: Vec<UserId>,
        mention_all: bool,
        reply_to: Seq,
    ) -> Result<crate::SendAck, ServiceError> {
        let started = std::time::Instant::now();
        self.check_send_rate(who)?;
        magpie_core::send::validate_content(self.limits(), &content)
            .map_err(|e| ServiceError::new(e.kind(), e.to_string()))?;
        let mentions = dedup(mentions);
        if mentions.len() > self.limits().max_mentions {
            return Err(refuse(
                ErrorKind::InvalidArgument,
                format!(
                    "at most {} mentions per message",
                    self.limits().max_mentions
                ),
            ));
        }
        let app = &who.app;
        let conv = ConvId::group(group);
        // Screened before the group's lock is taken: a slow before-send hook must not hold
        // up the group's membership changes.
        let content = self
            .screen(
                who,
                crate::screening::Target::Group(group),
                client_msg_id.as_str(),
                content,
            )
            .await?;
        let guard = self.groups.read(&*self.store, app, group).await?;
        let s = guard
            .as_ref()
            .ok_or_else(|| refuse(ErrorKind::NotFound, format!("no group {group}")))?;
        if s.record.dismissed {
            return Err(refuse(ErrorKind::Forbidden, "the group was dismissed"));
        }
        // The app's backend speaking as the system is an admin of every group.
        let system_member;
        let m = if Self::is_system(who) {
            system_member = MemberRecord {
                role: Role::Owner.code(),
                intervals: vec![(0, Seq::MAX)],
                muted_until_ms: 0,
            };
            &system_member
        } else {
            member(s, &who.user)?
        };
        let now = self.now_ms();
        if m.muted_until_ms > now {
            return Err(refuse(ErrorKind::Muted, "you are muted in this group"));
        }
        if s.record.muted_all && !m.role().is_admin() {
            return Err(refuse(
                ErrorKind::Muted,
                "only admins may speak while everyone is muted",
            ));
        }
        if mention_all && !allowed(GroupAction::MentionAll, m.role(), None, false) {
            return Err(refuse(
                ErrorKind::Forbidden,
                "only admins may mention everyone",
            ));
        }
        if reply_to > 0 && !membership::visible(&m.intervals, reply_to) {
            return Err(refuse(
                ErrorKind::InvalidArgument,
                "reply_to is not a message you can see",
            ));
        }
        let msg_id = self.next_id(now);
        let outcome = self
            .store
            .append(AppendRequest {
                app: app.clone(),
                conv,
                msg_id,
                from_user: who.user.clone(),
                from_device: who.device.clone(),
                client_msg_id,
                content,
                server_time: now,
                parties: Vec::new(),
                extras: EntryExtras {
                    kind: EntryKind::Message,
                    mentions,
                    mention_all,
                    reply_to,
                },
                expect_seq: None,
                sender_read: true,
                records: Vec::new(),
            })
            .await?;
        let (ack, fresh) = self.record_send(&outcome, started);
        if fresh {
            self.fan_out_group(app, s, outcome.message(), Some(who.conn_id), &[]);
            self.emit_sent(app, outcome.message());
        }
        Ok(ack)
    }
}

/// Ends `user`'s membership at `seq` (inclusive).
fn remove(s: &mut GroupState, user: &UserId, seq: Seq) {
    if let Some(m) = s.members.get_mut(user)
        && membership::close(&mut m.intervals, seq)
    {
        m.role = Role::Member.code();
        s.record.member_count = s.record.member_count.saturating_sub(1);
    }
}
