//! The demo app: what `magpie serve --demo` seeds so a person can chat at once.
//!
//! The secret is public (it is in this file and the README): the demo app is for local
//! trials on loopback, never for production. Seeding is idempotent: the welcome messages use
//! fixed client message ids, so a restart's re-seed is deduplicated like any retried send.

use magpie_service::{AppConfig, Service, SessionCtx};
use magpie_types::{AppId, ClientMsgId, Content, DeviceId};

/// The demo app's id.
pub const DEMO_APP: &str = "demo";
/// The demo app's well-known development secret.
pub const DEMO_SECRET: &str = "magpie-demo-secret-not-for-production";
/// The super-admin key `serve --demo` uses when `admin.key` is not set: public, like the
/// demo secret, so a local trial can manage apps with curl. Never for production.
pub const DEMO_ADMIN_KEY: &str = "magpie-demo-admin-key-not-for-production";
/// The demo users.
pub const DEMO_USERS: [&str; 3] = ["alice", "bob", "carol"];

/// The demo app's configuration.
pub fn app() -> AppConfig {
    AppConfig::new(id(DEMO_APP), "Magpie demo", DEMO_SECRET)
}

/// Creates the demo users and sends carol's welcome messages (once).
pub async fn seed(service: &Service) -> anyhow::Result<()> {
    let app: AppId = id(DEMO_APP);
    for u in DEMO_USERS {
        service.ensure_user(&app, &id(u)).await?;
    }
    let carol = SessionCtx {
        app: app.clone(),
        user: id("carol"),
        device: id::<DeviceId>("seed"),
        conn_id: 0,
    };
    for to in ["alice", "bob"] {
        service
            .send_direct(
                &carol,
                id(to),
                id::<ClientMsgId>(&format!("demo-welcome-{to}")),
                Content::text(format!(
                    "Welcome to Magpie, {to}! Try `magpie chat --as {to}` in two terminals."
                )),
            )
            .await?;
    }
    // A live room to try `magpie room tail --as bob --room lobby` on (created once).
    let lobby = id::<magpie_types::RoomId>("lobby");
    match service
        .create_room(
            &carol,
            Some(lobby),
            magpie_service::RoomSettingsChange {
                name: Some("Demo lobby".into()),
                ..Default::default()
            },
        )
        .await
    {
        Ok(_) => {}
        Err(e) if e.kind == magpie_core::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

fn id<T: std::str::FromStr>(s: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    // Invariant: every literal passed here is a valid identifier.
    s.parse().expect("demo identifiers are valid")
}
