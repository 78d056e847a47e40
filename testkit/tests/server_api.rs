//! The server API end to end, as a developer with only HTTP would use it: create an app
//! with the admin key, import users, mint a token, create a group and send a system message
//! that a connected client receives, while a local webhook receiver logs signed events.

// Tests fail loudly on any unexpected error.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use magpie_client::{Client, ClientConfig, ConvId, GroupId};
use magpie_testkit::{Recorder, Rest, TestServer, Transport, id};
use serde_json::{Value, json};
use sha2::Sha256;

type Log = Arc<Mutex<Vec<(HeaderMap, String)>>>;

/// A webhook receiver on loopback that records every request and answers 200.
async fn receiver() -> (String, Log) {
    let log: Log = Arc::default();
    let l = log.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let l = l.clone();
            async move {
                l.lock().unwrap().push((headers, body));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), log)
}

fn signature(secret: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn wait_for_event(log: &Log, pred: impl Fn(&Value) -> bool) -> (HeaderMap, String) {
    for _ in 0..300 {
        if let Some(hit) = log
            .lock()
            .unwrap()
            .iter()
            .find(|(_, b)| serde_json::from_str(b).is_ok_and(|v: Value| pred(&v)))
        {
            return hit.clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no such webhook event arrived: {:?}", log.lock().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_app_creation_to_a_received_system_message() {
    let server = TestServer::start().await;
    let (hook_url, log) = receiver().await;
    let admin = server.admin();

    let (status, app) = admin
        .post(
            "/v1/admin/apps",
            json!({ "id": "acme", "name": "Acme", "settings": { "webhooks": { "url": hook_url } } }),
        )
        .await;
    assert_eq!(status, 201, "{app}");
    let secret = app["secret"].as_str().unwrap().to_owned();
    let (status, settings) = admin.get("/v1/admin/apps/acme/settings").await;
    assert_eq!(status, 200, "{settings}");
    let signing = settings["settings"]["webhooks"]["signing_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!signing.is_empty(), "the server made a signing secret");

    let acme = Rest::app(server.http(), "acme", &secret);
    let (status, body) = acme
        .post(
            "/v1/users/import",
            json!({ "users": [{ "id": "ann", "nickname": "Ann" }, { "id": "ben" }] }),
        )
        .await;
    assert_eq!((status, body["created"].clone()), (200, json!(2)), "{body}");
    let (status, tok) = acme
        .post("/v1/users/ann/tokens", json!({ "device": "laptop" }))
        .await;
    assert_eq!(status, 201, "{tok}");
    let token = tok["token"].as_str().unwrap().to_owned();

    let config = ClientConfig::new(server.url(Transport::Tcp), token);
    let (_ann, events) = Client::connect(config).await.unwrap();
    let ann = Recorder::spawn(events);

    let (status, group) = acme
        .post(
            "/v1/groups",
            json!({ "id": "crew", "owner": "ben", "name": "Crew", "members": ["ann"] }),
        )
        .await;
    assert_eq!(status, 201, "{group}");
    let (status, ack) = acme
        .call_with(
            "POST",
            "/v1/messages",
            Some(json!({ "to": { "group": "crew" }, "content": { "type": "text", "text": "welcome aboard" } })),
            &[("idempotency-key", "welcome-1")],
        )
        .await;
    assert_eq!(status, 200, "{ack}");
    let conv = ConvId::group(&id::<GroupId>("crew"));
    let seq = ack["seq"].as_u64().unwrap();
    ann.wait_for_seq(&conv, seq).await;
    let got = ann
        .messages()
        .into_iter()
        .find(|m| m.seq == seq && m.conversation == conv)
        .unwrap();
    assert_eq!(got.from.as_str(), "@system");
    assert_eq!(got.content.body, b"welcome aboard");

    // The retried request (same Idempotency-Key) stores nothing new.
    let (status, again) = acme
        .call_with(
            "POST",
            "/v1/messages",
            Some(json!({ "to": { "group": "crew" }, "content": { "type": "text", "text": "welcome aboard" } })),
            &[("idempotency-key", "welcome-1")],
        )
        .await;
    assert_eq!((status, &again["seq"]), (200, &ack["seq"]));

    // Signed events: the message, the group's creation, the user coming online.
    for kind in ["message.sent", "group.changed", "user.online"] {
        let (headers, body) = wait_for_event(&log, |v| v["type"] == kind).await;
        assert_eq!(
            headers["x-magpie-signature"].to_str().unwrap(),
            signature(&signing, &body),
            "{kind}: the signature verifies over the raw body"
        );
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["app"], "acme");
        assert_eq!(
            headers["x-magpie-event-id"].to_str().unwrap(),
            v["id"].as_str().unwrap()
        );
    }
    let (_, sent) = wait_for_event(&log, |v| {
        v["type"] == "message.sent" && v["data"]["body"] == "welcome aboard"
    })
    .await;
    let sent: Value = serde_json::from_str(&sent).unwrap();
    assert_eq!(sent["data"]["seq"].as_u64(), Some(seq));
    assert_eq!(sent["data"]["from"], "@system");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_change_at_run_time_without_a_restart() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let (status, s) = admin.get("/v1/admin/apps/demo/settings").await;
    assert_eq!(status, 200, "{s}");
    let version = s["version"].as_u64().unwrap();
    let mut settings = s["settings"].clone();
    settings["filters"] = json!([
        { "name": "rude", "action": "mask", "words": ["darn", "笨蛋"] },
        { "name": "spam", "action": "reject", "words": ["buy now"] }
    ]);
    let (status, body) = admin
        .call(
            "PUT",
            "/v1/admin/apps/demo/settings",
            Some(json!({ "settings": settings, "version": version })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["version"].as_u64(), Some(version + 1));
    // A second writer still holding the old version is refused.
    let (status, body) = admin
        .call(
            "PUT",
            "/v1/admin/apps/demo/settings",
            Some(json!({ "settings": settings, "version": version })),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("CONFLICT"))
    );
    // Invalid settings name the field and change nothing.
    let mut bad = settings.clone();
    bad["webhooks"] = json!({ "url": "ftp://nope" });
    let (status, body) = admin
        .call(
            "PUT",
            "/v1/admin/apps/demo/settings",
            Some(json!({ "settings": bad })),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("webhooks.url")
    );

    // The filter applies at once, to clients and to the API alike.
    let (alice, _e) = server.connect(Transport::Tcp, "alice", "d1").await;
    let (_bob, bob_events) = server.connect(Transport::Ws, "bob", "d1").await;
    let bob_rec = Recorder::spawn(bob_events);
    let ack = alice
        .send_text(&id("bob"), "darn it, 你这个笨蛋")
        .await
        .unwrap();
    let conv = ack.conversation.clone();
    bob_rec.wait_for_seq(&conv, ack.seq).await;
    let got = bob_rec
        .messages()
        .into_iter()
        .find(|m| m.seq == ack.seq && m.conversation == conv)
        .unwrap();
    assert_eq!(
        String::from_utf8(got.content.body).unwrap(),
        "**** it, 你这个**"
    );
    let err = alice
        .send_text(&id("bob"), "BUY NOW cheap")
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some(magpie_client::ErrorCode::ContentRejected),
        "{err}"
    );
    let (status, body) = server
        .rest("demo")
        .post(
            "/v1/messages",
            json!({ "from": "alice", "to": { "user": "bob" }, "content": { "type": "text", "text": "buy now" } }),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("CONTENT_REJECTED"))
    );

    // The change survives a restart.
    let mut server = server;
    server.restart().await;
    let (_, s) = server.admin().get("/v1/admin/apps/demo/settings").await;
    assert_eq!(s["version"].as_u64(), Some(version + 1));
    server.shutdown().await;
}
