//! Message operations and blocks end to end through the SDK: a recall reaches every device
//! of the other user and history serves the message as recalled; a block refuses the
//! blocked user's 1:1 messages with a typed error and stores nothing.

use magpie_client::{ConvId, ErrorCode, UserId};
use magpie_testkit::{Recorder, TestServer, Transport, id};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recall_reaches_every_device_and_a_block_refuses() {
    let server = TestServer::start().await;
    let (alice, ae) = server.connect(Transport::Tcp, "alice", "a1").await;
    let _ar = Recorder::spawn(ae);
    let (bob1, e1) = server.connect(Transport::Tcp, "bob", "b1").await;
    let (_bob2, e2) = server.connect(Transport::Ws, "bob", "b2").await;
    let (r1, r2) = (Recorder::spawn(e1), Recorder::spawn(e2));
    let bob = id::<UserId>("bob");
    let conv = ConvId::direct(&id("alice"), &bob);

    let sent = alice.send_text(&bob, "oops, wrong chat").await.unwrap();
    for r in [&r1, &r2] {
        r.wait_for_seq(&conv, sent.seq).await;
    }
    let op = alice.recall(&conv, sent.seq).await.unwrap();
    for r in [&r1, &r2] {
        r.wait_for_entry(&conv, op.seq).await;
        assert_eq!(r.recalls(), vec![(conv.clone(), sent.seq)]);
    }
    let page = bob1.history(&conv, 0, 50).await.unwrap();
    let m = page.messages.iter().find(|m| m.seq == sent.seq).unwrap();
    assert!(m.recalled, "{m:?}");
    assert!(
        m.content.body.is_empty(),
        "a recalled message's content is not served"
    );

    // Bob blocks alice: her message is refused, typed, and nothing is stored.
    bob1.block(&id("alice"), true).await.unwrap();
    let before = bob1.history(&conv, 0, 1).await.unwrap().messages[0].seq;
    let err = alice.send_text(&bob, "hello?").await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::Blocked), "{err}");
    let after = bob1.history(&conv, 0, 1).await.unwrap().messages[0].seq;
    assert_eq!(before, after, "nothing stored");
    bob1.block(&id("alice"), false).await.unwrap();
    alice.send_text(&bob, "hello again").await.unwrap();
}
