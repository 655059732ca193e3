//! Findings 7 and 15, server part: what one account can make another's
//! devices store, how many one-time keys it can take, how fast it can look
//! up other accounts.

use crate::common::*;
use tether_proto::ErrorCode;
use tether_proto::frames::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_recipient_queue_refuses_the_whole_send_and_stores_none_of_it() {
    let server = TestServer::start_with(|c| {
        c.queue_max_envelopes = 5;
        c.queue_max_bytes = 1000;
    })
    .await;
    let (_a, mut alice) = register(&server, "alice").await;
    let (_b, bob) = register(&server, "bob").await;
    let (_c, carol) = register(&server, "carol").await;
    let bob_key = bob.key.clone();
    drop((bob, carol)); // offline: everything queues
    for n in 0..5 {
        alice.ok(send_req(n, vec![("bob", 0, vec![n; 10])])).await;
    }
    // The sixth copy for bob's device is one too many; carol's copy in the
    // same send is not stored either.
    alice.fails(send_req(5, vec![("bob", 0, vec![5; 10])]), ErrorCode::RecipientQueueFull).await;
    let e = alice
        .fails(send_req(6, vec![("carol", 0, vec![6; 10]), ("bob", 0, vec![6; 10])]), ErrorCode::RecipientQueueFull)
        .await;
    assert!(!e.message.contains("bob"), "no names in the message: {}", e.message);
    let store = server.server.store();
    assert_eq!(store.queue_usage("bob", 0).await.unwrap(), (5, 50));
    assert_eq!(store.queue_usage("carol", 0).await.unwrap(), (0, 0), "nothing of a refused send is stored");

    // Bytes count too: carol takes 2 × 400 bytes, not a third.
    alice.ok(send_req(7, vec![("carol", 0, vec![7; 400])])).await;
    alice.ok(send_req(8, vec![("carol", 0, vec![8; 400])])).await;
    alice.fails(send_req(9, vec![("carol", 0, vec![9; 400])]), ErrorCode::RecipientQueueFull).await;

    // Once bob takes his messages, there is room again.
    let mut bob = reconnect(&server, &bob_key).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(bob.envelope().await.envelope_id);
    }
    bob.ok(Request::Ack(Ack { envelope_ids: ids })).await;
    drop(bob);
    alice.ok(send_req(10, vec![("bob", 0, vec![10; 10])])).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_cannot_drain_a_devices_one_time_keys() {
    let server = TestServer::start_with(|c| c.claims_per_hour = 3).await;
    let (_b, mut bob) = register(&server, "bob").await;
    let keys: Vec<OneTimeKey> = (0..20).map(|i| OneTimeKey { key_id: i, key: vec![i as u8; 32], signature: vec![] }).collect();
    let fallback = Some(OneTimeKey { key_id: 999, key: vec![9; 32], signature: vec![] });
    bob.ok(Request::UploadPrekeys(UploadPrekeys { one_time_keys: keys, fallback })).await;
    let (_m, mut mallory) = register(&server, "mallory").await;
    let (_a, mut alice) = register(&server, "alice").await;
    let claim = || Request::ClaimPrekey(ClaimPrekey { handle: "bob".into(), device_id: 0 });
    for _ in 0..3 {
        match mallory.ok(claim()).await {
            ResponseBody::Prekey(p) => assert!(!p.fallback),
            other => panic!("{other:?}"),
        }
    }
    mallory.fails(claim(), ErrorCode::TooManyClaims).await;
    // Other claimers keep their own allowance; bob still has keys.
    alice.ok(claim()).await;
    match bob.ok(Request::UploadPrekeys(UploadPrekeys { one_time_keys: vec![], fallback: None })).await {
        ResponseBody::PrekeyCount(c) => assert_eq!(c.one_time_keys, 16),
        other => panic!("{other:?}"),
    }
    // An hour later, mallory may claim again.
    server.clock.advance(3_600_001);
    mallory.ok(claim()).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn looking_up_other_accounts_is_rate_limited_per_account() {
    let server = TestServer::start().await; // 30 per minute, bursts of 60
    let (_m, mut mallory) = register(&server, "mallory").await;
    let (_a, mut alice) = register(&server, "alice").await;
    let lookup = |h: &str| Request::GetDeviceList(GetDeviceList { handle: h.into() });
    for n in 0..60 {
        mallory.fails(lookup(&format!("user{n:03}")), ErrorCode::UnknownAccount).await;
    }
    // The burst is used: the next lookup, by any means that tells whether
    // a handle exists, is refused.
    mallory.fails(lookup("alice"), ErrorCode::RateLimited).await;
    mallory
        .fails(Request::ClaimPrekey(ClaimPrekey { handle: "zed".into(), device_id: 0 }), ErrorCode::RateLimited)
        .await;
    mallory.fails(send_req(1, vec![("zed", 0, b"x".to_vec())]), ErrorCode::RateLimited).await;
    mallory.fails(send_req(2, vec![("alice", 7, b"x".to_vec())]), ErrorCode::RateLimited).await;
    // Its own account: unlimited. Other accounts' lookups: their own budget.
    for _ in 0..100 {
        mallory.ok(lookup("mallory")).await;
    }
    alice.ok(lookup("mallory")).await;
    // 30 per minute: one more every 2 s.
    server.clock.advance(2_000);
    mallory.ok(lookup("alice")).await;
    mallory.fails(lookup("user999"), ErrorCode::RateLimited).await;
    // A handle looked up lately is free to look up again (a client that
    // fetches its contacts' lists on every run is not enumerating).
    for _ in 0..100 {
        mallory.ok(lookup("alice")).await;
        mallory.fails(lookup("user001"), ErrorCode::UnknownAccount).await;
    }
    server.stop().await;
}
