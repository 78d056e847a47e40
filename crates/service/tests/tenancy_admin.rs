//! App administration, accounts and remembered answers at the service level: stored apps
//! survive a reload, rotation grace, settings versions, token revocation by issue time, and
//! the sweep of expired idempotent answers.

// Tests fail loudly on any unexpected error.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::atomic::Ordering;

use magpie_core::ErrorKind;
use magpie_service::idempotency::{IDEMPOTENCY_TTL_MS, StoredAnswer};
use magpie_types::DeviceId;
use support::{app, service, user};

fn answer(created_ms: u64) -> StoredAnswer {
    StoredAnswer {
        fingerprint: "f".into(),
        status: 200,
        body: "{}".into(),
        created_ms,
    }
}

#[tokio::test]
async fn expired_answers_are_swept_and_fresh_ones_kept() {
    let (svc, clock) = service(&["alice"]).await;
    let a = app("a");
    let now = svc.now_ms();
    for i in 0..30 {
        svc.remember_answer(&a, &format!("old{i:02}"), &answer(now))
            .await
            .unwrap();
    }
    clock.0.fetch_add(IDEMPOTENCY_TTL_MS, Ordering::Relaxed);
    svc.remember_answer(&a, "new", &answer(svc.now_ms()))
        .await
        .unwrap();
    assert!(
        svc.idempotent_answer(&a, "old00").await.unwrap().is_none(),
        "expired reads as absent"
    );
    // A small budget: successive sweeps go on where the last stopped.
    let mut deleted = 0;
    for _ in 0..10 {
        deleted += svc.sweep_answers(7).await.unwrap();
    }
    assert_eq!(deleted, 30);
    assert!(svc.idempotent_answer(&a, "new").await.unwrap().is_some());
}

#[tokio::test]
async fn revocation_refuses_tokens_issued_before_it_only() {
    let (svc, clock) = service(&["bob"]).await;
    let a = app("a");
    let bob = user("bob");
    let phone = DeviceId::new("phone").unwrap();
    let old = svc.issue_token(&a, &bob, &phone, 600).await.unwrap();
    clock.0.fetch_add(5, Ordering::Relaxed);
    svc.revoke_tokens(&a, &bob, None).await.unwrap();
    clock.0.fetch_add(5, Ordering::Relaxed);
    let new = svc.issue_token(&a, &bob, &phone, 600).await.unwrap();
    let old_id = svc.authenticate(&old.token).unwrap();
    let new_id = svc.authenticate(&new.token).unwrap();
    assert_eq!(
        svc.admit(&old_id).await.unwrap_err().kind,
        ErrorKind::Forbidden
    );
    svc.admit(&new_id).await.unwrap();
    // Another user's tokens, and the same user in another app, are untouched.
    let b = app("b");
    let other_app = svc.issue_token(&b, &bob, &phone, 600).await;
    assert!(other_app.is_ok());
    // Disabled: every token refused, and no new ones.
    svc.set_user_disabled(&a, &bob, true).await.unwrap();
    assert!(svc.admit(&new_id).await.is_err());
    assert_eq!(
        svc.issue_token(&a, &bob, &phone, 600)
            .await
            .unwrap_err()
            .kind,
        ErrorKind::Forbidden
    );
}

#[tokio::test]
async fn apps_are_stored_versioned_and_rotated_with_grace() {
    let (svc, clock) = service(&[]).await;
    let created = svc
        .create_app(app("acme"), "Acme".into(), None)
        .await
        .unwrap();
    let first = created.secrets[0].secret.clone();
    assert_eq!(created.version, 1);
    assert!(!created.settings.webhooks.signing_secret.is_empty());
    assert_eq!(
        svc.create_app(app("acme"), "again".into(), None)
            .await
            .unwrap_err()
            .kind,
        ErrorKind::AlreadyExists
    );
    assert_eq!(
        svc.create_app(app("_x"), "reserved".into(), None)
            .await
            .unwrap_err()
            .kind,
        ErrorKind::InvalidArgument
    );
    let rotated = svc.rotate_app_secret(&app("acme"), 1_000).await.unwrap();
    let second = rotated.secrets[0].secret.clone();
    let now = svc.now_ms();
    assert!(svc.apps().verify_secret(&app("acme"), &first, now));
    assert!(svc.apps().verify_secret(&app("acme"), &second, now));
    clock.0.fetch_add(1_000, Ordering::Relaxed);
    let later = svc.now_ms();
    assert!(
        !svc.apps().verify_secret(&app("acme"), &first, later),
        "the grace is over"
    );
    assert!(svc.apps().verify_secret(&app("acme"), &second, later));

    let mut s = rotated.settings.clone();
    s.recall_window_ms = 5_000;
    let v2 = svc
        .update_app_settings(&app("acme"), Some(1), s.clone())
        .await
        .unwrap();
    assert_eq!(v2.version, 2);
    assert_eq!(svc.apps().recall_window_ms(&app("acme")), 5_000);
    assert_eq!(
        svc.update_app_settings(&app("acme"), Some(1), s.clone())
            .await
            .unwrap_err()
            .kind,
        ErrorKind::Conflict
    );
    s.recall_window_ms = u64::MAX;
    assert_eq!(
        svc.update_app_settings(&app("acme"), None, s)
            .await
            .unwrap_err()
            .kind,
        ErrorKind::InvalidArgument
    );
    // What a restart loads is what the last answered change said.
    svc.apps().remove(&app("acme"));
    assert_eq!(svc.load_apps().await.unwrap(), 1);
    let loaded = svc.apps().get(&app("acme")).unwrap();
    assert_eq!(loaded.config.version, 2);
    assert_eq!(loaded.config.settings.recall_window_ms, 5_000);
}

#[tokio::test]
async fn a_filter_added_later_does_not_refuse_the_retry_of_an_accepted_message() {
    let (svc, _clock) = service(&["alice", "bob"]).await;
    let a = app("a");
    let alice = support::connect(&svc, "a", "alice", "d1");
    let cm = magpie_types::ClientMsgId::new("c1").unwrap();
    let first = svc
        .send_direct(
            &alice.ctx,
            user("bob"),
            cm.clone(),
            magpie_types::Content::text("buy now"),
        )
        .await
        .unwrap();
    let mut config = svc.apps().get(&a).unwrap().config.clone();
    config.settings.filters = vec![magpie_core::filter::WordList {
        name: "spam".into(),
        action: magpie_core::filter::FilterAction::Reject,
        words: vec!["buy now".into()],
    }];
    svc.apps().upsert(config).unwrap();
    let retry = svc
        .send_direct(
            &alice.ctx,
            user("bob"),
            cm,
            magpie_types::Content::text("buy now"),
        )
        .await
        .unwrap();
    assert!(retry.duplicate);
    assert_eq!(retry.seq, first.seq);
    let fresh = svc
        .send_direct(
            &alice.ctx,
            user("bob"),
            magpie_types::ClientMsgId::new("c2").unwrap(),
            magpie_types::Content::text("buy now"),
        )
        .await
        .unwrap_err();
    assert_eq!(fresh.kind, ErrorKind::ContentRejected);
}
