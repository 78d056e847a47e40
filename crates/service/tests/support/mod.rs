//! A service over the memory store, with in-process sessions whose queues tests read.

#![allow(dead_code)]

use std::sync::Arc;

use magpie_core::Limits;
use magpie_service::outbox;
use magpie_service::{AppConfig, AppRegistry, Clock, Outbound, Service, ServiceConfig, SessionCtx};
use magpie_store::MemoryStore;
use magpie_types::{AppId, ConvId, DeviceId, Seq, UserId};

/// A clock tests can move.
#[derive(Debug, Default)]
pub struct TestClock(pub std::sync::atomic::AtomicU64);

impl Clock for TestClock {
    fn now_ms(&self) -> u64 {
        1_800_000_000_000 + self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

pub fn app(s: &str) -> AppId {
    AppId::new(s).unwrap()
}

pub fn user(s: &str) -> UserId {
    UserId::new(s).unwrap()
}

/// A service with apps `a` and `b`, no send rate limit, and `users` in both apps.
pub async fn service(users: &[&str]) -> (Arc<Service>, Arc<TestClock>) {
    service_with(users, Limits::default()).await
}

pub async fn service_with(users: &[&str], limits: Limits) -> (Arc<Service>, Arc<TestClock>) {
    let apps = AppRegistry::new();
    for id in ["a", "b"] {
        let mut config = AppConfig::new(app(id), id, "secret-secret-secret");
        // App `b` lets only friends message each other.
        config.settings.allow_strangers = id == "a";
        apps.upsert(config).expect("valid app");
    }
    let clock = Arc::new(TestClock::default());
    let svc = Service::new(
        ServiceConfig {
            node_id: 1,
            limits: Limits {
                send_rate_per_user: 0,
                ..limits
            },
            rooms: magpie_service::RoomConfig::default(),
        },
        Arc::new(MemoryStore::new()),
        apps,
        clock.clone(),
    )
    .unwrap();
    for a in ["a", "b"] {
        for u in users {
            svc.ensure_user(&app(a), &user(u)).await.unwrap();
        }
    }
    (Arc::new(svc), clock)
}

/// A connected device whose pushes the test reads.
pub struct Device {
    pub ctx: SessionCtx,
    pub rx: outbox::Receiver<Outbound>,
}

impl Device {
    /// Every message pushed so far, as (conversation, seq).
    pub fn drain(&mut self) -> Vec<(ConvId, Seq)> {
        let mut out = Vec::new();
        while let Ok(item) = self.rx.try_recv() {
            if let Outbound::Message(d) = item {
                out.push((d.msg.conv.clone(), d.msg.seq));
            }
        }
        out
    }

    /// Every read notice pushed so far.
    pub fn reads(&mut self) -> Vec<magpie_service::ReadNotice> {
        let mut out = Vec::new();
        while let Ok(item) = self.rx.try_recv() {
            if let Outbound::Read(n) = item {
                out.push((*n).clone());
            }
        }
        out
    }
}

pub fn connect(svc: &Service, app_id: &str, u: &str, dev: &str) -> Device {
    let (tx, rx) = outbox::channel(1 << 16);
    let ctx = svc
        .sessions()
        .register(app(app_id), user(u), DeviceId::new(dev).unwrap(), tx);
    Device { ctx, rx }
}
