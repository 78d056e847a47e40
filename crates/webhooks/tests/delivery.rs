//! After-events against a real local receiver: signatures, retries, ids, durability,
//! giving up, and isolation between apps.

#![allow(clippy::unwrap_used)] // tests: a failure should panic.

mod support;

use std::sync::Arc;

use axum::http::StatusCode;
use hmac::{Hmac, Mac};
use magpie_service::AppRegistry;
use magpie_service::hooks::Hooks;
use magpie_store::{MemoryStore, Store};
use sha2::Sha256;
use support::*;

fn store() -> Arc<dyn Store> {
    Arc::new(MemoryStore::new())
}

fn registry(apps: &[magpie_service::AppConfig]) -> AppRegistry {
    let reg = AppRegistry::new();
    for a in apps {
        reg.upsert(a.clone()).unwrap();
    }
    reg
}

#[tokio::test]
async fn signature_verifies_over_the_raw_body() {
    let rx = Receiver::start(|_| StatusCode::OK).await;
    let app = app_config("a", &rx.events_url());
    let apps = registry(std::slice::from_ref(&app));
    let store = store();
    let sender = sender(&store, &apps, 3).await;
    let ev = event("a", "message.sent:1");
    sender.emit(ev.clone(), &app.settings.webhooks);

    eventually("one delivery", || async { !rx.events().is_empty() }).await;
    let got = rx.events().remove(0);

    // The receiver's own HMAC over the raw bytes, independent of the crate's helpers.
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(&got.body);
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(got.header("x-magpie-signature"), expected);
    assert!(magpie_webhooks::verify(
        SECRET.as_bytes(),
        &got.body,
        &expected
    ));
    assert!(!magpie_webhooks::verify(b"wrong", &got.body, &expected));
    assert_eq!(
        magpie_webhooks::sign(SECRET.as_bytes(), &got.body),
        expected
    );

    assert_eq!(got.header("content-type"), "application/json");
    assert_eq!(got.header("x-magpie-event-id"), "message.sent:1");
    assert_eq!(got.header("x-magpie-event-type"), "message.sent");
    assert_eq!(
        got.body.as_ref(),
        serde_json::to_vec(&ev).unwrap().as_slice()
    );
    let json = got.json();
    assert_eq!(json["id"], "message.sent:1");
    assert_eq!(json["type"], "message.sent");
    assert_eq!(json["app"], "a");
    assert_eq!(json["time_ms"], 1_800_000_000_000u64);
    assert_eq!(json["data"]["body"], "héllo \"world\"");

    eventually("outbox emptied", || async {
        outbox_len(&store, "a").await == 0
    })
    .await;
    sender.shutdown().await;
}

#[tokio::test]
async fn retries_until_a_failing_receiver_recovers_with_the_same_id() {
    const FAILURES: usize = 3;
    let rx = Receiver::start(|n| {
        if n < FAILURES {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::OK
        }
    })
    .await;
    let app = app_config("a", &rx.events_url());
    let apps = registry(std::slice::from_ref(&app));
    let store = store();
    let sender = sender(&store, &apps, 10).await;
    sender.emit(event("a", "message.sent:retry"), &app.settings.webhooks);

    eventually("the delivery after the failures", || async {
        rx.events().len() > FAILURES
    })
    .await;
    eventually("outbox emptied", || async {
        outbox_len(&store, "a").await == 0
    })
    .await;
    let all = rx.events();
    assert_eq!(
        all.len(),
        FAILURES + 1,
        "delivered once it succeeded, then no more"
    );
    for d in &all {
        assert_eq!(d.header("x-magpie-event-id"), "message.sent:retry");
        assert_eq!(d.json()["id"], "message.sent:retry");
        assert_eq!(d.body, all[0].body, "every attempt sends the same bytes");
        assert!(magpie_webhooks::verify(
            SECRET.as_bytes(),
            &d.body,
            &d.header("x-magpie-signature")
        ));
    }
    sender.shutdown().await;
}

#[tokio::test]
async fn a_redelivery_carries_the_same_id() {
    let rx = Receiver::start(|n| {
        if n == 0 {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::OK
        }
    })
    .await;
    let app = app_config("a", &rx.events_url());
    let apps = registry(std::slice::from_ref(&app));
    let store = store();
    let sender = sender(&store, &apps, 5).await;
    sender.emit(event("a", "message.sent:dup"), &app.settings.webhooks);

    eventually("two deliveries", || async { rx.events().len() >= 2 }).await;
    eventually("outbox emptied", || async {
        outbox_len(&store, "a").await == 0
    })
    .await;
    let all = rx.events();
    assert_eq!(all.len(), 2);
    assert_eq!(
        all[0].header("x-magpie-event-id"),
        all[1].header("x-magpie-event-id")
    );
    assert_eq!(all[0].json()["id"], all[1].json()["id"]);
    assert_eq!(all[1].json()["id"], "message.sent:dup");
    sender.shutdown().await;
}

#[tokio::test]
async fn undelivered_events_survive_a_restart_and_follow_a_url_change() {
    let dead = dead_addr().await;
    let app = app_config("a", &format!("http://{dead}/events"));
    let apps = registry(std::slice::from_ref(&app));
    let store = store();

    let first = sender(&store, &apps, 12).await;
    first.emit(event("a", "message.sent:durable"), &app.settings.webhooks);
    first.shutdown().await;
    assert_eq!(
        outbox_len(&store, "a").await,
        1,
        "accepted events are stored by shutdown"
    );
    first.emit(event("a", "message.sent:late"), &app.settings.webhooks);
    drop(first);

    // The receiver comes up elsewhere; the operator points the app at it.
    let rx = Receiver::start(|_| StatusCode::OK).await;
    apps.upsert(app_config("a", &rx.events_url())).unwrap();
    let second = sender(&store, &apps, 12).await;

    eventually("the stored event delivered", || async {
        !rx.events().is_empty()
    })
    .await;
    eventually("outbox emptied", || async {
        outbox_len(&store, "a").await == 0
    })
    .await;
    let got = rx.events();
    assert_eq!(
        got.len(),
        1,
        "an event emitted after shutdown is not accepted"
    );
    assert_eq!(got[0].header("x-magpie-event-id"), "message.sent:durable");
    assert_eq!(got[0].json()["data"]["body"], "héllo \"world\"");
    assert!(magpie_webhooks::verify(
        SECRET.as_bytes(),
        &got[0].body,
        &got[0].header("x-magpie-signature")
    ));
    second.shutdown().await;
}

#[tokio::test]
async fn gives_up_after_max_attempts_and_removes_the_record() {
    const MAX: u32 = 3;
    let rx = Receiver::start(|_| StatusCode::INTERNAL_SERVER_ERROR).await;
    let app = app_config("a", &rx.events_url());
    let apps = registry(std::slice::from_ref(&app));
    let store = store();
    let sender = sender(&store, &apps, MAX).await;
    sender.emit(event("a", "message.sent:doomed"), &app.settings.webhooks);

    eventually("every attempt made and the record removed", || async {
        rx.events().len() >= MAX as usize && outbox_len(&store, "a").await == 0
    })
    .await;
    assert_eq!(rx.events().len(), MAX as usize);
    assert!(
        rx.events()
            .iter()
            .all(|d| d.header("x-magpie-event-id") == "message.sent:doomed")
    );
    sender.shutdown().await;
}

#[tokio::test]
async fn a_dead_receiver_does_not_hold_up_other_apps() {
    let dead = dead_addr().await;
    let rx = Receiver::start(|_| StatusCode::OK).await;
    let dead_app = app_config("dead", &format!("http://{dead}/events"));
    let live_app = app_config("live", &rx.events_url());
    let apps = registry(&[dead_app.clone(), live_app.clone()]);
    let store = store();
    // Enough attempts that the dead app's events outlive the test.
    let sender = sender(&store, &apps, 1_000).await;
    for i in 0..200 {
        sender.emit(
            event("dead", &format!("dead:{i}")),
            &dead_app.settings.webhooks,
        );
    }
    for i in 0..20 {
        sender.emit(
            event("live", &format!("live:{i}")),
            &live_app.settings.webhooks,
        );
    }
    eventually("every live event delivered", || async {
        rx.events().len() >= 20
    })
    .await;
    eventually("live outbox emptied", || async {
        outbox_len(&store, "live").await == 0
    })
    .await;
    assert_eq!(
        outbox_len(&store, "dead").await,
        200,
        "the dead app's events wait"
    );
    let mut ids: Vec<String> = rx
        .events()
        .iter()
        .map(|d| d.header("x-magpie-event-id"))
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20);
    sender.shutdown().await;
    assert_eq!(
        outbox_len(&store, "dead").await,
        200,
        "shutdown keeps them for the next start"
    );
}
