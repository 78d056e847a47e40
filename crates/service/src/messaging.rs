//! [`Service`]: the operations of an authenticated connection.
//!
//! A send is: validate (core) → check the recipient exists → allocate a message id →
//! append durably (store; dedup and seq assignment happen there, atomically) → fan out to
//! every online device of every party except the sending connection → ack. A retry of an
//! already stored message returns the original ack and fans out nothing: devices that missed
//! the original push sync it by seq.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use magpie_core::auth::{self, AuthError, Identity};
use magpie_core::send::validate_direct;
use magpie_core::{ErrorKind, Limits};
use magpie_store::{AppendOutcome, AppendRequest, EntryExtras, Store};
use magpie_types::{AppId, ClientMsgId, Content, ConvId, MsgId, Seq, Snowflake, UserId};
use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use parking_lot::Mutex;

use crate::apps::AppRegistry;
use crate::clock::Clock;
use crate::error::ServiceError;
use crate::groups::state::GroupCache;
use crate::hooks::Hooks;
use crate::sessions::{Delivery, Outbound, SessionCtx, SessionRegistry};
use magpie_store::records::AccountRecord;

/// Settings of the service.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Node id for message ids (0..1024), unique per node of a cluster.
    pub node_id: u16,
    /// Limits.
    pub limits: Limits,
    /// Live-room settings.
    pub rooms: crate::rooms::RoomConfig,
}

/// The acknowledgement of a send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendAck {
    /// The client's id for the message.
    pub client_msg_id: ClientMsgId,
    /// The server's id for the message.
    pub msg_id: MsgId,
    /// The conversation.
    pub conv: ConvId,
    /// Position in the conversation.
    pub seq: Seq,
    /// Server time at acceptance.
    pub server_time: u64,
    /// Whether this answers a retry.
    pub duplicate: bool,
}

/// The messaging service of one node. Cheap to share (`Arc`).
pub struct Service {
    config: ServiceConfig,
    pub(crate) store: Arc<dyn Store>,
    apps: AppRegistry,
    pub(crate) sessions: SessionRegistry,
    clock: Arc<dyn Clock>,
    ids: Mutex<Snowflake>,
    /// Loaded groups and their locks.
    pub(crate) groups: GroupCache,
    /// Typing limits and presence subscriptions.
    pub(crate) signals: crate::signals::Signals,
    /// Tables known to be empty per app (accounts, blocks, friends): hot paths skip
    /// their reads (see `empty_tables`).
    pub(crate) empty_tables: crate::empty_tables::EmptyTables,
    /// Loaded live rooms.
    pub(crate) rooms: crate::rooms::RoomRegistry,
    /// Live-room settings (a copy of `config.rooms`, for short paths).
    pub(crate) room_config: crate::rooms::RoomConfig,
    /// Users known to exist, so a send checks the store only once per recipient.
    known_users: crate::known_users::KnownUsers,
    /// Account records read so far (see `accounts`), so a login costs a map lookup.
    pub(crate) accounts: Mutex<HashMap<(AppId, UserId), Arc<AccountRecord>>>,
    /// Serialises changes to the apps (`apps::admin`).
    pub(crate) app_writes: tokio::sync::Mutex<()>,
    /// Where the sweep of expired idempotent answers goes on, per app.
    pub(crate) sweep_cursor: Mutex<HashMap<AppId, String>>,
    /// Webhooks and the before-send hook, once the server installs them.
    pub(crate) hooks: OnceLock<Arc<dyn Hooks>>,
    /// Per-user send rate (GCRA, lock-free per key); `None` when the limit is off.
    send_limiter: Option<DefaultKeyedRateLimiter<(AppId, UserId)>>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("config", &self.config)
            .field("online", &self.sessions.online())
            .finish_non_exhaustive()
    }
}

impl Service {
    /// A service over `store` for the apps in `apps`.
    pub fn new(
        config: ServiceConfig,
        store: Arc<dyn Store>,
        apps: AppRegistry,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, magpie_types::SnowflakeError> {
        let l = &config.limits;
        let send_limiter = NonZeroU32::new(l.send_rate_per_user).map(|rate| {
            let burst =
                NonZeroU32::new(l.send_burst_per_user.max(l.send_rate_per_user)).unwrap_or(rate);
            RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        Ok(Self {
            send_limiter,
            rooms: crate::rooms::RoomRegistry::default(),
            room_config: config.rooms.clone(),
            ids: Mutex::new(Snowflake::new(config.node_id)?),
            config,
            store,
            apps,
            sessions: SessionRegistry::new(),
            clock,
            groups: GroupCache::default(),
            signals: crate::signals::Signals::default(),
            empty_tables: Default::default(),
            known_users: Default::default(),
            accounts: Mutex::new(HashMap::new()),
            app_writes: tokio::sync::Mutex::new(()),
            hooks: OnceLock::new(),
            sweep_cursor: Mutex::new(HashMap::new()),
        })
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.config.limits
    }

    /// Live-room settings.
    pub fn room_config(&self) -> &crate::rooms::RoomConfig {
        &self.room_config
    }

    /// The session registry.
    pub fn sessions(&self) -> &SessionRegistry {
        &self.sessions
    }

    /// The app registry.
    pub fn apps(&self) -> &AppRegistry {
        &self.apps
    }

    /// The clock.
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Verifies a user token against the apps' current secrets.
    pub fn authenticate(&self, token: &str) -> Result<Identity, AuthError> {
        let now = self.clock.now_ms();
        auth::verify(token, now / 1000, |app| self.apps.secrets(app, now))
    }

    /// Installs the webhook sender (once; later calls are ignored).
    pub fn set_hooks(&self, hooks: Arc<dyn Hooks>) {
        let _ = self.hooks.set(hooks);
    }

    /// Forgets that a user exists (it was deleted).
    pub(crate) fn forget_user(&self, app: &AppId, user: &UserId) {
        self.known_users.remove(app, user);
    }

    /// Records that a user exists (on first login, or when seeding).
    pub async fn ensure_user(&self, app: &AppId, user: &UserId) -> Result<(), ServiceError> {
        if self.known_users.contains(app, user) {
            return Ok(());
        }
        self.store.put_user(app, user).await?;
        self.known_users.insert(app, user);
        Ok(())
    }

    /// Sends a 1:1 message from the session's user to `recipient`.
    pub async fn send_direct(
        &self,
        from: &SessionCtx,
        recipient: UserId,
        client_msg_id: ClientMsgId,
        content: Content,
    ) -> Result<SendAck, ServiceError> {
        self.send_direct_reply(from, recipient, client_msg_id, content, 0)
            .await
    }

    /// Sends a 1:1 message that replies to the entry at `reply_to` (0 = none).
    pub async fn send_direct_reply(
        &self,
        from: &SessionCtx,
        recipient: UserId,
        client_msg_id: ClientMsgId,
        content: Content,
        reply_to: Seq,
    ) -> Result<SendAck, ServiceError> {
        let started = std::time::Instant::now();
        self.check_send_rate(from)?;
        let v = validate_direct(
            &self.config.limits,
            &from.user,
            recipient,
            client_msg_id,
            content,
        )
        .map_err(|e| ServiceError::new(e.kind(), e.to_string()))?;
        if !self.user_exists(&from.app, &v.recipient).await? {
            return Err(ServiceError::new(
                ErrorKind::NotFound,
                format!("no user {:?} in this app", v.recipient.as_str()),
            ));
        }
        if !Self::is_system(from) {
            self.check_direct_allowed(from, &v.recipient).await?;
        }
        let content = self
            .screen(
                from,
                crate::screening::Target::User(&v.recipient),
                v.client_msg_id.as_str(),
                v.content,
            )
            .await?;
        let now = self.clock.now_ms();
        let msg_id = self.next_id(now);
        let outcome = self
            .store
            .append(AppendRequest {
                app: from.app.clone(),
                conv: v.conv,
                msg_id,
                from_user: from.user.clone(),
                from_device: from.device.clone(),
                client_msg_id: v.client_msg_id,
                content,
                server_time: now,
                parties: v.parties.clone(),
                extras: EntryExtras {
                    reply_to,
                    ..EntryExtras::default()
                },
                expect_seq: None,
                // What a user sends, they have read: their own messages never count as
                // unread, on any of their devices.
                sender_read: true,
                records: Vec::new(),
            })
            .await?;
        let (ack, fresh) = self.record_send(&outcome, started);
        if fresh {
            let item = Outbound::Message(Arc::new(Delivery {
                msg: outcome.message().clone(),
                encoded: OnceLock::new(),
            }));
            let mut queued = 0;
            for party in &v.parties {
                queued += self
                    .sessions
                    .push_to_user(&from.app, party, Some(from.conn_id), &item);
            }
            metrics::counter!("magpie_pushes_queued_total").increment(queued as u64);
            self.emit_sent(&from.app, outcome.message());
        }
        Ok(ack)
    }

    /// Refuses a send over the user's rate.
    pub(crate) fn check_send_rate(&self, from: &SessionCtx) -> Result<(), ServiceError> {
        if let Some(limiter) = &self.send_limiter
            && limiter
                .check_key(&(from.app.clone(), from.user.clone()))
                .is_err()
        {
            return Err(ServiceError::new(
                ErrorKind::RateLimited,
                "send rate limit exceeded; retry later",
            ));
        }
        Ok(())
    }

    /// The ack of an append, and whether it stored something new (to fan out); records
    /// the send metrics.
    pub(crate) fn record_send(
        &self,
        outcome: &AppendOutcome,
        started: std::time::Instant,
    ) -> (SendAck, bool) {
        let duplicate = matches!(outcome, AppendOutcome::Duplicate(_));
        metrics::histogram!("magpie_send_seconds").record(started.elapsed().as_secs_f64());
        if duplicate {
            metrics::counter!("magpie_messages_deduplicated_total").increment(1);
        } else {
            metrics::counter!("magpie_messages_sent_total").increment(1);
        }
        let msg = outcome.message();
        let ack = SendAck {
            client_msg_id: msg.client_msg_id.clone(),
            msg_id: msg.msg_id,
            conv: msg.conv.clone(),
            seq: msg.seq,
            server_time: msg.server_time,
            duplicate,
        };
        (ack, !duplicate)
    }

    /// A fresh message id.
    pub(crate) fn next_id(&self, now: u64) -> MsgId {
        self.ids.lock().next(now)
    }

    /// Periodic upkeep: forgets rate-limiter state of users who have been idle, so the
    /// limiter's memory follows the active users, not every user ever seen.
    pub fn housekeeping(&self) {
        if let Some(l) = &self.send_limiter {
            l.retain_recent();
            l.shrink_to_fit();
        }
        self.signals.housekeeping();
    }

    pub(crate) async fn user_exists(
        &self,
        app: &AppId,
        user: &UserId,
    ) -> Result<bool, ServiceError> {
        if self.known_users.contains(app, user) {
            return Ok(true);
        }
        let exists =
            self.store.user_exists(app, user).await? && !self.account(app, user).await?.deleted;
        if exists {
            self.known_users.insert(app, user);
        }
        Ok(exists)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apps::AppConfig;
    use crate::outbox;
    use magpie_store::MemoryStore;
    use magpie_types::DeviceId;

    struct FixedClock;
    impl Clock for FixedClock {
        fn now_ms(&self) -> u64 {
            1_800_000_000_000
        }
    }

    fn service() -> Service {
        let apps = AppRegistry::new();
        apps.upsert(AppConfig::new(AppId::new("a").unwrap(), "A", "s"))
            .unwrap();
        Service::new(
            ServiceConfig {
                node_id: 1,
                limits: Limits::default(),
                rooms: crate::rooms::RoomConfig::default(),
            },
            Arc::new(MemoryStore::new()),
            apps,
            Arc::new(FixedClock),
        )
        .unwrap()
    }

    fn connect(s: &Service, user: &str, dev: &str) -> (SessionCtx, outbox::Receiver<Outbound>) {
        let (tx, rx) = outbox::channel(16);
        let ctx = s.sessions().register(
            AppId::new("a").unwrap(),
            UserId::new(user).unwrap(),
            DeviceId::new(dev).unwrap(),
            tx,
        );
        (ctx, rx)
    }

    #[tokio::test]
    async fn send_pushes_to_every_other_device_and_dedups() {
        let s = service();
        let app = AppId::new("a").unwrap();
        for u in ["alice", "bob"] {
            s.ensure_user(&app, &UserId::new(u).unwrap()).await.unwrap();
        }
        let (a1, mut a1rx) = connect(&s, "alice", "d1");
        let (_a2, mut a2rx) = connect(&s, "alice", "d2");
        let (_b1, mut b1rx) = connect(&s, "bob", "d1");
        let cm = ClientMsgId::new("c1").unwrap();
        let bob = UserId::new("bob").unwrap();
        let ack = s
            .send_direct(&a1, bob.clone(), cm.clone(), Content::text("hi"))
            .await
            .unwrap();
        assert_eq!((ack.seq, ack.duplicate), (1, false));
        assert!(
            a1rx.try_recv().is_err(),
            "the sending connection gets the ack only"
        );
        assert!(matches!(a2rx.try_recv(), Ok(Outbound::Message(_))));
        assert!(matches!(b1rx.try_recv(), Ok(Outbound::Message(_))));
        let again = s
            .send_direct(&a1, bob, cm, Content::text("hi"))
            .await
            .unwrap();
        assert_eq!(
            (again.seq, again.msg_id, again.duplicate),
            (1, ack.msg_id, true)
        );
        assert!(b1rx.try_recv().is_err(), "a retry pushes nothing");
    }

    #[tokio::test]
    async fn unknown_recipient_and_foreign_conversation_are_refused() {
        let s = service();
        let (a1, _rx) = connect(&s, "alice", "d1");
        let err = s
            .send_direct(
                &a1,
                UserId::new("nobody").unwrap(),
                ClientMsgId::new("c").unwrap(),
                Content::text("x"),
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::NotFound);
        let conv = ConvId::parse("p2p:bob:carol").unwrap();
        let err = s.pull(&a1, &conv, 0, 10).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Forbidden);
        let err = s.history(&a1, &conv, 0, 10).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Forbidden);
    }
}
