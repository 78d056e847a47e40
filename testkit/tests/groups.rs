//! Groups end to end, through the SDK over real connections: membership intervals under
//! churn while a stream of messages flows, and unread clearing across devices.

use std::collections::BTreeMap;

use magpie_client::{ConvId, JoinOutcome, NewGroup, Seq, UserId};
use magpie_testkit::{Recorder, TestServer, Transport, id};
use rand::{Rng, SeedableRng, rngs::StdRng};

const MEMBERS: [&str; 5] = ["m1", "m2", "m3", "m4", "m5"];

/// Members leave, rejoin, are kicked and re-added while a sender streams messages; every
/// member's devices receive exactly the entries inside their membership intervals (taken
/// from the operations' own answers), each once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_member_gets_exactly_their_intervals() {
    let server = TestServer::start().await;
    let mut all = vec!["owner", "speaker"];
    all.extend(MEMBERS);
    server.add_users("demo", &all).await;
    let mut clients = BTreeMap::new();
    let mut recorders = BTreeMap::new();
    for (i, u) in all.iter().enumerate() {
        let t = if i % 2 == 0 {
            Transport::Tcp
        } else {
            Transport::Ws
        };
        let (c, e) = server.connect(t, u, "d1").await;
        recorders.insert(*u, Recorder::spawn(e));
        clients.insert(*u, c);
    }
    let mut first = vec![id::<UserId>("speaker")];
    first.extend(MEMBERS.iter().map(|m| id::<UserId>(m)));
    let g = clients["owner"]
        .create_group(NewGroup::named("churn").with_members(first))
        .await
        .unwrap();
    let conv = ConvId::group(&g.id);
    let mut intervals: BTreeMap<&str, Vec<(Seq, Seq)>> =
        all.iter().map(|u| (*u, vec![(1, Seq::MAX)])).collect();

    let speaker = clients["speaker"].clone();
    let gid = g.id.clone();
    let stream = tokio::spawn(async move {
        for i in 0..150 {
            speaker
                .send_group_text(&gid, format!("m{i}"))
                .await
                .expect("the speaker stays a member");
        }
    });
    let mut rng = StdRng::seed_from_u64(11);
    for _ in 0..40 {
        let m = MEMBERS[rng.random_range(0..MEMBERS.len())];
        let active = intervals[m].last().is_some_and(|&(_, to)| to == Seq::MAX);
        let u = id::<UserId>(m);
        let seq = if active {
            let change = if rng.random_bool(0.5) {
                clients[m].leave_group(&g.id).await
            } else {
                clients["owner"].kick_members(&g.id, &[u]).await
            };
            change.unwrap().seq.expect("a change has a seq")
        } else if rng.random_bool(0.5) {
            match clients[m].join_group(&g.id).await.unwrap() {
                JoinOutcome::Joined { seq, .. } => seq,
                other => panic!("open group: {other:?}"),
            }
        } else {
            let change = clients["owner"].add_members(&g.id, &[u]).await;
            change.unwrap().seq.expect("a change has a seq")
        };
        let iv = intervals.get_mut(m).unwrap();
        if active {
            iv.last_mut().unwrap().1 = seq;
        } else {
            iv.push((seq, Seq::MAX));
        }
    }
    stream.await.unwrap();
    // The last entry: a marker everyone currently in the group receives.
    let last = clients["owner"]
        .send_group_text(&g.id, "end")
        .await
        .unwrap()
        .seq;

    for u in &all {
        let iv = &intervals[u];
        let want: Vec<Seq> = (1..=last)
            .filter(|s| iv.iter().any(|&(f, t)| f <= *s && *s <= t))
            .collect();
        let rec = &recorders[u];
        if let Some(&tail) = want.last() {
            rec.wait_for_entry(&conv, tail).await;
        }
        // Own sends come back as acks; the SDK still delivers them once, in order.
        let got: Vec<Seq> = rec
            .entries()
            .into_iter()
            .filter(|(c, _)| c == &conv)
            .map(|(_, s)| s)
            .collect();
        assert_eq!(got, want, "{u}: intervals {iv:?}");
        assert!(rec.errors().is_empty(), "{u}: {:?}", rec.errors());
    }
    // Unread: the speaker has the owner's "end" unread; reading on one device clears it
    // on the other.
    let (second, events) = server.connect(Transport::Tcp, "speaker", "d2").await;
    let _rec = Recorder::spawn(events);
    let unread = |c: &magpie_client::Client| c.conversation(&conv).map(|c| c.unread);
    wait_for("unread 1 on the second device", || {
        unread(&second) == Some(1)
    })
    .await;
    assert_eq!(second.total_unread(), 1);
    clients["speaker"].mark_read(&conv, None).await.unwrap();
    wait_for("unread 0 on the second device", || {
        unread(&second) == Some(0)
    })
    .await;
    assert_eq!(second.total_unread(), 0);
}

async fn wait_for(what: &str, cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
