//! User accounts as the app's backend manages them through the server API: create and
//! import users, disable and delete them, issue tokens and revoke them.
//!
//! A user also comes into being at their first login with a valid token, so an account
//! record exists only for users the API touched. Disabling, deleting or revoking writes the
//! record durably, then tells the user's open connections to go away (`GoAway`, no
//! reconnect); every later login is checked against the record ([`Service::admit`]), so a
//! revoked token can never connect again. Records are cached per user after the first
//! read, so a login costs one map lookup.

use std::sync::Arc;

use magpie_core::ErrorKind;
use magpie_core::auth::{self, Identity};
use magpie_store::Table;
use magpie_store::records::{self, AccountRecord, ProfileRecord};
use magpie_types::{AppId, DeviceId, UserId};

use crate::error::ServiceError;
use crate::messaging::Service;
use crate::sessions::SessionCtx;
use crate::social::ProfileChange;

/// The device name of requests made through the server API.
pub const API_DEVICE: &str = "api";
/// The user id that system messages come from.
pub const SYSTEM_USER: &str = "@system";
/// Longest token lifetime the API issues: 90 days.
pub const MAX_TOKEN_TTL_SECS: u64 = 90 * 24 * 3_600;
/// Most users one import may carry.
pub const MAX_IMPORT: usize = 1_000;

/// One user to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// The id.
    pub id: UserId,
    /// Profile fields to set.
    pub profile: ProfileChange,
}

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportOutcome {
    /// Users created.
    pub created: usize,
    /// Users that existed already (their profile fields were updated where given).
    pub existing: usize,
}

/// A user as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserView {
    /// The id.
    pub id: UserId,
    /// The profile.
    pub profile: ProfileRecord,
    /// Disabled.
    pub disabled: bool,
    /// Devices connected now (on this node).
    pub online_devices: usize,
}

/// A freshly issued token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The JWT.
    pub token: String,
    /// Expiry, Unix seconds.
    pub expires_at: u64,
}

fn not_found(user: &UserId) -> ServiceError {
    ServiceError::new(
        ErrorKind::NotFound,
        format!("no user {:?} in this app", user.as_str()),
    )
}

impl Service {
    /// The context of a request the app's backend makes as `user` (no connection).
    pub fn api_ctx(&self, app: &AppId, user: UserId) -> SessionCtx {
        SessionCtx {
            app: app.clone(),
            user,
            device: DeviceId::new(API_DEVICE)
                .unwrap_or_else(|_| unreachable!("the API device id is valid")),
            conn_id: 0,
        }
    }

    /// Refuses a login whose user is disabled or deleted or whose token was revoked.
    pub async fn admit(&self, id: &Identity) -> Result<(), ServiceError> {
        if id.user.as_str() == SYSTEM_USER {
            return Err(ServiceError::new(
                ErrorKind::Forbidden,
                format!("{SYSTEM_USER} cannot log in"),
            ));
        }
        let account = self.account(&id.app, &id.user).await?;
        if account.token_valid(id.device.as_str(), id.issued_at_ms) {
            Ok(())
        } else if account.deleted || account.disabled {
            Err(ServiceError::new(
                ErrorKind::Forbidden,
                "this user is disabled",
            ))
        } else {
            Err(ServiceError::new(
                ErrorKind::Forbidden,
                "this token was revoked",
            ))
        }
    }

    /// Creates users (or updates the profile of those that exist).
    pub async fn import_users(
        &self,
        app: &AppId,
        users: Vec<NewUser>,
    ) -> Result<ImportOutcome, ServiceError> {
        if users.len() > MAX_IMPORT {
            return Err(ServiceError::new(
                ErrorKind::InvalidArgument,
                format!("at most {MAX_IMPORT} users per import"),
            ));
        }
        let mut out = ImportOutcome::default();
        for u in users {
            if u.id.as_str() == SYSTEM_USER {
                return Err(ServiceError::new(
                    ErrorKind::InvalidArgument,
                    format!("{SYSTEM_USER} is reserved"),
                ));
            }
            let mut account = (*self.account(app, &u.id).await?).clone();
            let existed = self.store.user_exists(app, &u.id).await? && !account.deleted;
            if account.deleted {
                // A deleted id may be used again: the new user starts enabled, and the old
                // user's tokens stay revoked. (Other users need no account record: see
                // `empty_tables`.)
                account.tokens_valid_from_ms = self.now_ms();
                account.deleted = false;
                account.disabled = false;
                account.created_ms = self.now_ms();
                self.write_account(app, &u.id, account).await?;
            }
            self.ensure_user(app, &u.id).await?;
            let p = &u.profile;
            if p.nickname.is_some() || p.avatar_url.is_some() || p.custom.is_some() {
                self.set_profile(&self.api_ctx(app, u.id.clone()), u.profile)
                    .await?;
            }
            if existed {
                out.existing += 1;
            } else {
                out.created += 1;
            }
        }
        Ok(out)
    }

    /// The user as the API shows it.
    pub async fn user_view(&self, app: &AppId, user: &UserId) -> Result<UserView, ServiceError> {
        let account = self.account(app, user).await?;
        if account.deleted || !self.store.user_exists(app, user).await? {
            return Err(not_found(user));
        }
        let profile = self
            .profiles(&self.api_ctx(app, user.clone()), std::slice::from_ref(user))
            .await?
            .into_iter()
            .next()
            .map(|(_, p)| p)
            .unwrap_or_default();
        Ok(UserView {
            id: user.clone(),
            profile,
            disabled: account.disabled,
            online_devices: self.sessions.devices_of(app, user),
        })
    }

    /// Disables (or enables again) a user: a disabled user's connections are closed and
    /// their logins refused; their data stays.
    pub async fn set_user_disabled(
        &self,
        app: &AppId,
        user: &UserId,
        disabled: bool,
    ) -> Result<usize, ServiceError> {
        let mut account = (*self.existing_account(app, user).await?).clone();
        account.disabled = disabled;
        self.write_account(app, user, account).await?;
        Ok(if disabled {
            self.sessions
                .close_user(app, user, None, "the user was disabled")
        } else {
            0
        })
    }

    /// Deletes a user: connections closed, logins refused, profile removed. Messages the
    /// user sent stay in their conversations.
    pub async fn delete_user(&self, app: &AppId, user: &UserId) -> Result<usize, ServiceError> {
        let mut account = (*self.existing_account(app, user).await?).clone();
        account.deleted = true;
        account.tokens_valid_from_ms = self.now_ms();
        self.empty_tables.will_write(app, Table::Accounts);
        self.store
            .write_records(
                app,
                vec![
                    records::put(Table::Accounts, user.to_string(), &account)?,
                    records::delete(Table::Profiles, user.to_string()),
                ],
            )
            .await?;
        self.accounts
            .lock()
            .insert((app.clone(), user.clone()), Arc::new(account));
        self.forget_user(app, user);
        Ok(self
            .sessions
            .close_user(app, user, None, "the user was deleted"))
    }

    /// Issues a token for `user` on `device`, signed with the app's current secret.
    pub async fn issue_token(
        &self,
        app: &AppId,
        user: &UserId,
        device: &DeviceId,
        ttl_secs: u64,
    ) -> Result<IssuedToken, ServiceError> {
        if ttl_secs == 0 || ttl_secs > MAX_TOKEN_TTL_SECS {
            return Err(ServiceError::new(
                ErrorKind::InvalidArgument,
                format!("ttl_secs must be 1 to {MAX_TOKEN_TTL_SECS}"),
            ));
        }
        let account = self.account(app, user).await?;
        if account.deleted || account.disabled {
            return Err(ServiceError::new(
                ErrorKind::Forbidden,
                "this user is disabled",
            ));
        }
        let now = self.now_ms();
        let secret = self
            .apps()
            .secrets(app, now)
            .and_then(|s| s.into_iter().next())
            .ok_or_else(|| ServiceError::new(ErrorKind::NotFound, "no such app"))?;
        self.ensure_user(app, user).await?;
        let token = auth::mint_at_ms(app, secret.as_bytes(), user, device, now, ttl_secs)
            .map_err(|e| ServiceError::new(ErrorKind::Internal, e.to_string()))?;
        Ok(IssuedToken {
            token,
            expires_at: now / 1000 + ttl_secs,
        })
    }

    /// Revokes every token of `user` (of one device, if given) issued until now, and
    /// closes the connections that used them. Returns how many connections were told.
    pub async fn revoke_tokens(
        &self,
        app: &AppId,
        user: &UserId,
        device: Option<&DeviceId>,
    ) -> Result<usize, ServiceError> {
        let mut account = (*self.existing_account(app, user).await?).clone();
        // One past now: a token minted in this very millisecond is revoked too.
        let now = self.now_ms() + 1;
        match device {
            None => account.tokens_valid_from_ms = now,
            Some(d) => {
                account
                    .device_tokens_valid_from_ms
                    .retain(|(x, _)| x != d.as_str());
                account
                    .device_tokens_valid_from_ms
                    .push((d.to_string(), now));
            }
        }
        self.write_account(app, user, account).await?;
        Ok(self
            .sessions
            .close_user(app, user, device, "the token was revoked"))
    }

    /// The user's account record (the default for a user the API never touched).
    pub(crate) async fn account(
        &self,
        app: &AppId,
        user: &UserId,
    ) -> Result<Arc<AccountRecord>, ServiceError> {
        let key = (app.clone(), user.clone());
        if let Some(a) = self.accounts.lock().get(&key) {
            return Ok(a.clone());
        }
        // An app without any account record (most, until the API disables or revokes
        // something) answers without a store read and without caching per user, so a
        // login stays a set lookup and the cache does not grow with every user.
        if self.table_is_empty(app, Table::Accounts).await? {
            return Ok(Arc::new(AccountRecord::default()));
        }
        let a = match self
            .store
            .get_record(app, Table::Accounts, user.as_str())
            .await?
        {
            Some(b) => Arc::new(records::decode::<AccountRecord>(&b)?),
            None => Arc::new(AccountRecord::default()),
        };
        // A change written since this read has put the newer record in the cache: keep it.
        Ok(self.accounts.lock().entry(key).or_insert(a).clone())
    }

    async fn existing_account(
        &self,
        app: &AppId,
        user: &UserId,
    ) -> Result<Arc<AccountRecord>, ServiceError> {
        let a = self.account(app, user).await?;
        if a.deleted || !self.store.user_exists(app, user).await? {
            return Err(not_found(user));
        }
        Ok(a)
    }

    async fn write_account(
        &self,
        app: &AppId,
        user: &UserId,
        account: AccountRecord,
    ) -> Result<(), ServiceError> {
        self.empty_tables.will_write(app, Table::Accounts);
        self.store
            .write_records(
                app,
                vec![records::put(Table::Accounts, user.to_string(), &account)?],
            )
            .await?;
        self.accounts
            .lock()
            .insert((app.clone(), user.clone()), Arc::new(account));
        Ok(())
    }
}
