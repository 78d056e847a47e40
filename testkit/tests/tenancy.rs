//! Tenant isolation: two apps with identical user, group and client message ids run the
//! same workload side by side; nothing crosses: no delivery, no read, no dedup collision.

// Tests fail loudly on any unexpected error.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use magpie_client::{ClientMsgId, Content, ConvId, GroupId, SendOptions, UserId};
use magpie_testkit::{OTHER_APP, Recorder, TestServer, Transport, id};
use serde_json::json;

const APPS: [&str; 2] = ["demo", OTHER_APP];
const USERS: [&str; 3] = ["alice", "bob", "carol"];
const N: usize = 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_apps_with_identical_ids_never_meet() {
    let server = TestServer::start().await;
    for app in APPS {
        let (status, body) = server
            .rest(app)
            .post(
                "/v1/users/import",
                json!({ "users": USERS.iter().map(|u| json!({ "id": u })).collect::<Vec<_>>() }),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = server
            .rest(app)
            .post(
                "/v1/groups",
                json!({ "id": "team", "owner": "alice", "name": format!("{app} team"), "members": ["bob", "carol"] }),
            )
            .await;
        assert_eq!(status, 201, "the same group id in both apps: {body}");
    }
    // Devices of the same user ids in both apps, all online at once.
    let mut recorders = BTreeMap::new();
    let mut senders = BTreeMap::new();
    // The receiving clients stay connected until the end of the test.
    let mut receivers = Vec::new();
    for app in APPS {
        for (i, u) in USERS.iter().enumerate() {
            let t = if i % 2 == 0 {
                Transport::Tcp
            } else {
                Transport::Ws
            };
            let (c, e) = magpie_client::Client::connect(server.client_config_in(app, t, u, "d1"))
                .await
                .unwrap();
            recorders.insert((app, *u), Recorder::spawn(e));
            if *u == "alice" {
                senders.insert(app, c);
            } else {
                receivers.push(c);
            }
        }
    }
    // The same workload, interleaved, with the same client message ids in both apps.
    let bob: UserId = id("bob");
    let team: GroupId = id("team");
    let mut acks: BTreeMap<&str, Vec<(bool, u64)>> = BTreeMap::new();
    for i in 0..N {
        for app in APPS {
            let alice = &senders[app];
            let direct = alice
                .send_with(
                    &bob,
                    Content::text(format!("{app}:d{i}")),
                    SendOptions::default().client_msg_id(id::<ClientMsgId>(&format!("c{i}"))),
                )
                .await
                .unwrap();
            let group = alice
                .send_with(
                    &team,
                    Content::text(format!("{app}:g{i}")),
                    SendOptions::default().client_msg_id(id::<ClientMsgId>(&format!("g{i}"))),
                )
                .await
                .unwrap();
            let a = acks.entry(app).or_default();
            a.push((direct.duplicate, direct.seq));
            a.push((group.duplicate, group.seq));
        }
    }
    for app in APPS {
        assert!(
            acks[app].iter().all(|(dup, _)| !dup),
            "{app}: a client message id used in the other app is no duplicate here"
        );
    }
    let direct_conv = ConvId::direct(&id("alice"), &bob);
    let group_conv = ConvId::group(&team);
    for app in APPS {
        for u in ["bob", "carol"] {
            let r = &recorders[&(app, u)];
            r.wait_for_seq(&group_conv, (N + 1) as u64).await;
            if u == "bob" {
                r.wait_for_seq(&direct_conv, N as u64).await;
            }
            // The workload's two conversations (the demo app's seed adds a welcome chat).
            let texts: Vec<String> = r
                .messages()
                .iter()
                .filter(|m| m.conversation == direct_conv || m.conversation == group_conv)
                .map(|m| String::from_utf8_lossy(&m.content.body).into_owned())
                .collect();
            let foreign: Vec<&String> = texts
                .iter()
                .filter(|t| !t.starts_with(&format!("{app}:")) && !t.starts_with('{'))
                .collect();
            assert!(
                foreign.is_empty(),
                "{app}/{u} received another app's messages: {foreign:?}"
            );
            let expected = if u == "bob" { 2 * N } else { N };
            let own = texts
                .iter()
                .filter(|t| t.starts_with(&format!("{app}:")))
                .count();
            assert_eq!(own, expected, "{app}/{u}: every own message exactly once");
        }
    }
    // History and reads through the server API stay in their app.
    for app in APPS {
        let (status, page) = server
            .rest(app)
            .get(&format!(
                "/v1/users/bob/conversations/{direct_conv}/messages?limit=100"
            ))
            .await;
        assert_eq!(status, 200, "{page}");
        let bodies = page.to_string();
        let other = APPS.iter().find(|a| **a != app).unwrap();
        assert!(
            bodies.contains(&format!("{app}:d0")),
            "{app} history has its own messages"
        );
        assert!(
            !bodies.contains(&format!("{other}:d")),
            "{app} history has none of {other}'s"
        );
    }
    let (status, body) = server
        .rest("demo")
        .post(
            &format!("/v1/users/bob/conversations/{direct_conv}/read"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, list) = server
        .rest(OTHER_APP)
        .get("/v1/users/bob/conversations")
        .await;
    assert!(
        list.to_string().contains(&format!("\"unread\":{N}")),
        "bob's read in one app leaves the other app's unread alone: {list}"
    );
    // A group that exists in one app only is not found from the other.
    let (status, _) = server
        .rest("demo")
        .post(
            "/v1/groups",
            json!({ "id": "solo", "owner": "alice", "name": "solo" }),
        )
        .await;
    assert_eq!(status, 201);
    let (status, _) = server.rest(OTHER_APP).get("/v1/groups/solo").await;
    assert_eq!(status, 404);
    drop(receivers);
    server.shutdown().await;
}
