//! The before-send hook and `message.sent` events through the real service.

#![allow(clippy::unwrap_used)] // tests: a failure should panic.

mod support;

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use magpie_core::{ErrorKind, Limits};
use magpie_service::{
    AppConfig, AppRegistry, RoomConfig, Service, ServiceConfig, SessionCtx, SystemClock,
};
use magpie_store::{MemoryStore, Store};
use magpie_types::{ClientMsgId, Content, ConvId, UserId};
use magpie_webhooks::WebhookSender;
use serde_json::json;
use support::*;

struct World {
    rx: Receiver,
    apps: AppRegistry,
    service: Arc<Service>,
    sender: Arc<WebhookSender>,
    alice: SessionCtx,
    conv: ConvId,
}

fn user(s: &str) -> UserId {
    UserId::new(s).unwrap()
}

/// App `a` with its webhook and before-send hook on one receiver, users alice and bob.
async fn world() -> World {
    let rx = Receiver::start(|_| StatusCode::OK).await;
    let apps = AppRegistry::new();
    apps.upsert(hooked_app(&rx, |_| {})).unwrap();
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let service = Arc::new(
        Service::new(
            ServiceConfig {
                node_id: 1,
                limits: Limits {
                    send_rate_per_user: 0,
                    ..Limits::default()
                },
                rooms: RoomConfig::default(),
            },
            store.clone(),
            apps.clone(),
            Arc::new(SystemClock),
        )
        .unwrap(),
    );
    let sender = WebhookSender::start(store, apps.clone(), fast_config(5))
        .await
        .unwrap();
    service.set_hooks(sender.clone());
    let a = app_id("a");
    for u in ["alice", "bob"] {
        service.ensure_user(&a, &user(u)).await.unwrap();
    }
    World {
        alice: service.api_ctx(&a, user("alice")),
        conv: ConvId::direct(&user("alice"), &user("bob")),
        rx,
        apps,
        service,
        sender,
    }
}

fn hooked_app(rx: &Receiver, tweak: impl FnOnce(&mut AppConfig)) -> AppConfig {
    let mut app = app_config("a", &rx.events_url());
    app.settings.webhooks.before_send_url = Some(rx.before_url());
    app.settings.webhooks.before_send_timeout_ms = 200;
    tweak(&mut app);
    app
}

impl World {
    async fn send(
        &self,
        id: &str,
        text: &str,
    ) -> Result<magpie_service::SendAck, magpie_service::ServiceError> {
        self.service
            .send_direct(
                &self.alice,
                user("bob"),
                ClientMsgId::new(id).unwrap(),
                Content::text(text),
            )
            .await
    }

    async fn stored(&self) -> Vec<String> {
        let page = self
            .service
            .history(&self.alice, &self.conv, 0, 50)
            .await
            .unwrap();
        page.messages
            .iter()
            .map(|m| String::from_utf8(m.content.body.clone()).unwrap())
            .collect()
    }
}

#[tokio::test]
async fn allow_stores_and_message_sent_arrives_signed() {
    let w = world().await;
    let ack = w.send("m1", "hello bob").await.unwrap();
    assert_eq!(w.stored().await, vec!["hello bob"]);

    // The hook saw the message, signed.
    let asked = w.rx.shared.before.lock().clone();
    assert_eq!(asked.len(), 1);
    assert_eq!(
        asked[0].header("x-magpie-event-type"),
        "message.before_send"
    );
    assert!(magpie_webhooks::verify(
        SECRET.as_bytes(),
        &asked[0].body,
        &asked[0].header("x-magpie-signature")
    ));
    let q = asked[0].json();
    assert_eq!(q["app"], "a");
    assert_eq!(q["from"], "alice");
    assert_eq!(q["to"], json!({ "user": "bob" }));
    assert_eq!(q["client_msg_id"], "m1");
    assert_eq!(q["content_type"], "text");
    assert_eq!(q["body"], "hello bob");

    // And the stored message became an event.
    eventually("message.sent delivered", || async {
        w.rx.events()
            .iter()
            .any(|d| d.header("x-magpie-event-type") == "message.sent")
    })
    .await;
    let ev =
        w.rx.events()
            .into_iter()
            .find(|d| d.header("x-magpie-event-type") == "message.sent")
            .unwrap();
    assert!(magpie_webhooks::verify(
        SECRET.as_bytes(),
        &ev.body,
        &ev.header("x-magpie-signature")
    ));
    let j = ev.json();
    assert_eq!(j["type"], "message.sent");
    assert_eq!(j["app"], "a");
    assert_eq!(j["id"], ev.header("x-magpie-event-id"));
    assert_eq!(j["data"]["seq"], ack.seq);
    assert_eq!(j["data"]["msg_id"], ack.msg_id.to_string());
    assert_eq!(j["data"]["conversation"], w.conv.to_string());
    assert_eq!(j["data"]["from"], "alice");
    assert_eq!(j["data"]["client_msg_id"], "m1");
    assert_eq!(j["data"]["body"], "hello bob");
    w.sender.shutdown().await;
}

#[tokio::test]
async fn reject_refuses_with_the_reason_and_stores_nothing() {
    let w = world().await;
    w.rx.set_before(BeforeMode::Answer(
        json!({ "action": "reject", "reason": "no links please" }),
    ));
    let err = w.send("m1", "see http://spam").await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::ContentRejected);
    assert!(err.message.contains("no links please"), "{}", err.message);
    assert!(w.stored().await.is_empty());
    w.sender.shutdown().await;
}

#[tokio::test]
async fn rewrite_stores_the_rewritten_body() {
    let w = world().await;
    w.rx.set_before(BeforeMode::Answer(
        json!({ "action": "rewrite", "body": "you are ***" }),
    ));
    w.send("m1", "you are dumb").await.unwrap();
    assert_eq!(w.stored().await, vec!["you are ***"]);
    eventually("message.sent with the rewritten body", || async {
        w.rx.events()
            .iter()
            .any(|d| d.json()["data"]["body"] == "you are ***")
    })
    .await;
    w.sender.shutdown().await;
}

#[tokio::test]
async fn a_slow_hook_resolves_by_the_fail_open_setting() {
    let w = world().await;
    // Far longer than the 200 ms timeout; the handler is abandoned with the runtime.
    w.rx.set_before(BeforeMode::Sleep(Duration::from_secs(30)));

    w.apps
        .upsert(hooked_app(&w.rx, |a| {
            a.settings.webhooks.before_send_fail_open = true
        }))
        .unwrap();
    w.send("open", "through anyway").await.unwrap();
    assert_eq!(w.stored().await, vec!["through anyway"]);

    w.apps
        .upsert(hooked_app(&w.rx, |a| {
            a.settings.webhooks.before_send_fail_open = false
        }))
        .unwrap();
    let err = w.send("closed", "not this one").await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unavailable);
    assert_eq!(
        w.stored().await,
        vec!["through anyway"],
        "nothing more stored"
    );
    w.sender.shutdown().await;
}

#[tokio::test]
async fn a_broken_answer_is_a_failure_not_an_allow() {
    let w = world().await;
    w.rx.set_before(BeforeMode::Answer(json!({ "action": "maybe" })));
    let err = w.send("m1", "hello").await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unavailable);
    assert!(w.stored().await.is_empty());
    w.sender.shutdown().await;
}
