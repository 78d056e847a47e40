//! Profiles, friends and blocks.
//!
//! All of it lives in the record store as pairs keyed `a:b` (friendships are written under
//! both users, requests under `to:from`, blocks under `blocker:blocked`), so every check is
//! one point read and every list one prefix scan. A block is enforced where it matters: a
//! blocked user's 1:1 sends are refused before anything is stored.

use std::sync::Arc;

use magpie_core::ErrorKind;
use magpie_store::Table;
use magpie_store::records::{
    self, FriendRequestRecord, ProfileRecord, SinceRecord, pair_key, pair_prefix,
};
use magpie_types::UserId;

use crate::error::ServiceError;
use crate::messaging::Service;
use crate::sessions::{Outbound, SessionCtx, SocialNotice};

/// Longest friend-request note or profile field, bytes.
const MAX_FIELD: usize = 4_096;
/// Most entries one list returns.
const MAX_LIST: usize = 5_000;

/// Profile fields to change (`None`: unchanged).
#[derive(Debug, Clone, Default)]
pub struct ProfileChange {
    /// Display name.
    pub nickname: Option<String>,
    /// Avatar URL.
    pub avatar_url: Option<String>,
    /// Free-form JSON.
    pub custom: Option<String>,
}

fn too_long(name: &str) -> ServiceError {
    ServiceError::new(
        ErrorKind::InvalidArgument,
        format!("{name} is longer than {MAX_FIELD} bytes"),
    )
}

impl Service {
    /// Changes the caller's profile.
    pub async fn set_profile(
        &self,
        who: &SessionCtx,
        change: ProfileChange,
    ) -> Result<ProfileRecord, ServiceError> {
        for (name, v) in [
            ("nickname", &change.nickname),
            ("avatar_url", &change.avatar_url),
            ("custom", &change.custom),
        ] {
            if v.as_ref().is_some_and(|v| v.len() > MAX_FIELD) {
                return Err(too_long(name));
            }
        }
        let mut p = self.profile(who, &who.user).await?;
        if let Some(v) = change.nickname {
            p.nickname = v;
        }
        if let Some(v) = change.avatar_url {
            p.avatar_url = v;
        }
        if let Some(v) = change.custom {
            p.custom = v;
        }
        let write = records::put(Table::Profiles, who.user.to_string(), &p)?;
        self.store.write_records(&who.app, vec![write]).await?;
        Ok(p)
    }

    /// Profiles of existing users (an empty profile for a user who set none).
    pub async fn profiles(
        &self,
        who: &SessionCtx,
        users: &[UserId],
    ) -> Result<Vec<(UserId, ProfileRecord)>, ServiceError> {
        if users.len() > self.limits().max_page {
            return Err(ServiceError::new(
                ErrorKind::InvalidArgument,
                format!("at most {} users per request", self.limits().max_page),
            ));
        }
        let mut out = Vec::with_capacity(users.len());
        for u in users {
            if self.user_exists(&who.app, u).await? {
                out.push((u.clone(), self.profile(who, u).await?));
            }
        }
        Ok(out)
    }

    async fn profile(
        &self,
        who: &SessionCtx,
        user: &UserId,
    ) -> Result<ProfileRecord, ServiceError> {
        match self
            .store
            .get_record(&who.app, Table::Profiles, user.as_str())
            .await?
        {
            Some(b) => Ok(records::decode(&b)?),
            None => Ok(ProfileRecord::default()),
        }
    }

    /// Asks `to` to be friends. If `to` had asked the caller already, they are friends at
    /// once (returns true).
    pub async fn friend_request(
        &self,
        who: &SessionCtx,
        to: UserId,
        message: String,
    ) -> Result<bool, ServiceError> {
        if message.len() > MAX_FIELD {
            return Err(too_long("message"));
        }
        if to == who.user {
            return Err(ServiceError::new(ErrorKind::InvalidArgument, "that is you"));
        }
        if !self.user_exists(&who.app, &to).await? {
            return Err(ServiceError::new(
                ErrorKind::NotFound,
                format!("no user {to}"),
            ));
        }
        if self.has_pair(who, Table::Blocks, &to, &who.user).await? {
            return Err(ServiceError::new(
                ErrorKind::Blocked,
                format!("{to} blocked you"),
            ));
        }
        if self.has_pair(who, Table::Friends, &who.user, &to).await? {
            return Err(ServiceError::new(
                ErrorKind::AlreadyExists,
                "already friends",
            ));
        }
        if self
            .has_pair(who, Table::FriendRequests, &who.user, &to)
            .await?
        {
            self.befriend(who, &to).await?;
            self.notify_social(who, &to, "friend_accepted", "");
            return Ok(true);
        }
        let rec = FriendRequestRecord {
            message: message.clone(),
            at_ms: self.now_ms(),
        };
        let write = records::put(Table::FriendRequests, pair_key(&to, &who.user), &rec)?;
        self.store.write_records(&who.app, vec![write]).await?;
        self.notify_social(who, &to, "friend_request", &message);
        Ok(false)
    }

    /// Accepts or declines `from`'s request.
    pub async fn respond_friend(
        &self,
        who: &SessionCtx,
        from: UserId,
        accept: bool,
    ) -> Result<(), ServiceError> {
        if !self
            .has_pair(who, Table::FriendRequests, &who.user, &from)
            .await?
        {
            return Err(ServiceError::new(
                ErrorKind::NotFound,
                format!("no friend request from {from}"),
            ));
        }
        if accept {
            self.befriend(who, &from).await?;
            self.notify_social(who, &from, "friend_accepted", "");
        } else {
            let del = records::delete(Table::FriendRequests, pair_key(&who.user, &from));
            self.store.write_records(&who.app, vec![del]).await?;
            self.notify_social(who, &from, "friend_declined", "");
        }
        Ok(())
    }

    /// Ends a friendship.
    pub async fn remove_friend(&self, who: &SessionCtx, other: UserId) -> Result<(), ServiceError> {
        if !self
            .has_pair(who, Table::Friends, &who.user, &other)
            .await?
        {
            return Err(ServiceError::new(ErrorKind::NotFound, "not friends"));
        }
        let writes = vec![
            records::delete(Table::Friends, pair_key(&who.user, &other)),
            records::delete(Table::Friends, pair_key(&other, &who.user)),
        ];
        self.store.write_records(&who.app, writes).await?;
        self.notify_social(who, &other, "friend_removed", "");
        Ok(())
    }

    /// Blocks or unblocks `other`.
    pub async fn block(
        &self,
        who: &SessionCtx,
        other: UserId,
        blocked: bool,
    ) -> Result<(), ServiceError> {
        if other == who.user {
            return Err(ServiceError::new(ErrorKind::InvalidArgument, "that is you"));
        }
        let key = pair_key(&who.user, &other);
        if blocked {
            // Before the write: a send racing with it must not skip the check.
            self.empty_tables.will_write(&who.app, Table::Blocks);
        }
        let write = if blocked {
            records::put(
                Table::Blocks,
                key,
                &SinceRecord {
                    since_ms: self.now_ms(),
                },
            )?
        } else {
            records::delete(Table::Blocks, key)
        };
        self.store.write_records(&who.app, vec![write]).await?;
        Ok(())
    }

    /// The caller's friends, friend requesters or blocked users.
    pub async fn social_list(
        &self,
        who: &SessionCtx,
        table: Table,
    ) -> Result<Vec<UserId>, ServiceError> {
        self.pairs_of(&who.app, table, &who.user).await
    }

    /// The users paired with `user` in `table`.
    pub(crate) async fn pairs_of(
        &self,
        app: &magpie_types::AppId,
        table: Table,
        user: &UserId,
    ) -> Result<Vec<UserId>, ServiceError> {
        let page = self
            .store
            .scan_records(app, table, &pair_prefix(user), None, MAX_LIST)
            .await?;
        page.iter()
            .map(|(k, _)| Ok(records::user_of_key(k)?))
            .collect()
    }

    /// Whether `(a, b)` is recorded in `table`.
    pub(crate) async fn has_pair(
        &self,
        who: &SessionCtx,
        table: Table,
        a: &UserId,
        b: &UserId,
    ) -> Result<bool, ServiceError> {
        Ok(self
            .store
            .get_record(&who.app, table, &pair_key(a, b))
            .await?
            .is_some())
    }

    /// Refuses a 1:1 message the recipient blocked, or one between strangers when the app
    /// allows only friends to message each other.
    pub(crate) async fn check_direct_allowed(
        &self,
        who: &SessionCtx,
        to: &UserId,
    ) -> Result<(), ServiceError> {
        if to == &who.user {
            return Ok(());
        }
        if !self.table_is_empty(&who.app, Table::Blocks).await?
            && self.has_pair(who, Table::Blocks, to, &who.user).await?
        {
            metrics::counter!("magpie_blocked_sends_total").increment(1);
            return Err(ServiceError::new(
                ErrorKind::Blocked,
                format!("{to} does not accept your messages"),
            ));
        }
        if !self.apps().allows_strangers(&who.app)
            && (self.table_is_empty(&who.app, Table::Friends).await?
                || !self.has_pair(who, Table::Friends, &who.user, to).await?)
        {
            return Err(ServiceError::new(
                ErrorKind::Blocked,
                "this app lets only friends message each other",
            ));
        }
        Ok(())
    }

    async fn befriend(&self, who: &SessionCtx, other: &UserId) -> Result<(), ServiceError> {
        let since = SinceRecord {
            since_ms: self.now_ms(),
        };
        self.empty_tables.will_write(&who.app, Table::Friends);
        let writes = vec![
            records::put(Table::Friends, pair_key(&who.user, other), &since)?,
            records::put(Table::Friends, pair_key(other, &who.user), &since)?,
            records::delete(Table::FriendRequests, pair_key(&who.user, other)),
            records::delete(Table::FriendRequests, pair_key(other, &who.user)),
        ];
        self.store.write_records(&who.app, writes).await?;
        Ok(())
    }

    fn notify_social(&self, who: &SessionCtx, to: &UserId, kind: &'static str, message: &str) {
        let item = Outbound::Social(Arc::new(SocialNotice {
            kind,
            user: who.user.clone(),
            message: message.to_owned(),
        }));
        self.sessions.push_lossy(&who.app, to, None, &item);
    }
}
