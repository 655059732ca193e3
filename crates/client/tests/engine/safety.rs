use crate::harness::*;
use tether_client::Event;

/// A server that slips a device into bob's list without his signature:
/// alice refuses to encrypt to bob and is warned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_added_without_the_primarys_signature_gets_nothing_and_the_user_is_warned() {
    let server = TestServer::start().await;
    let mut alice = primary(&server, "alice").await;
    let mut bob = primary(&server, "bob").await;
    alice.add_contact("bob", "").await;
    settle(&mut [&mut alice, &mut bob]).await;
    let now = alice.now();

    // The "server" tampers: a new device row for bob, and a list body that
    // includes it under the old signature.
    let db = sqlx::SqlitePool::connect(&format!("sqlite://{}", server.dir.path().join("tether.db").display())).await.unwrap();
    let (body, sig): (Vec<u8>, Vec<u8>) = sqlx::query_as("SELECT list_body, list_sig FROM accounts WHERE handle = 'bob'").fetch_one(&db).await.unwrap();
    let mut list: tether_proto::frames::DeviceList = prost::Message::decode(body.as_slice()).unwrap();
    let mut evil = list.devices[0].clone();
    evil.device_id = 7;
    evil.noise_key = vec![7; 32];
    evil.identity_key = vec![7; 32];
    list.devices.push(evil);
    list.version += 1;
    sqlx::query("UPDATE accounts SET list_body = ?, list_version = list_version + 1 WHERE handle = 'bob'")
        .bind(prost::Message::encode_to_vec(&list))
        .execute(&db)
        .await
        .unwrap();
    let _ = sig;
    sqlx::query("INSERT INTO devices (handle, device_id, noise_key, platform, name, linked_ms, active_ms) VALUES ('bob', 7, ?, 'evil', 'evil', 0, 0)")
        .bind(vec![7u8; 32])
        .execute(&db)
        .await
        .unwrap();
    // The server caches device sets; a restart of the relay would reload them.
    // Here the cache is still bob's real set, so force the issue from the
    // client side: alice fetches bob's (tampered) list.
    alice.engine.trust_contact("bob", now).ok();
    alice.flush().await;
    settle(&mut [&mut alice]).await;

    let now = alice.now();
    alice.engine.send_text("bob", "must not leak", now).unwrap();
    alice.flush().await;
    // Let it try; it must hold back.
    for _ in 0..20 {
        alice.step(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(alice.engine.outbox_len(), 1, "the message is held back");
    let warned = alice.events.iter().any(|e| matches!(e, Event::SafetyWarning { handle, .. } if handle == "bob"));
    assert!(warned, "alice is warned: {:?}", alice.events);
    assert!(alice.engine.contact("bob").unwrap().warning.is_some());
    bob.step(std::time::Duration::from_millis(200)).await;
    assert!(texts(&bob, "alice").is_empty(), "bob got nothing either: no envelope was made");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_account_key_is_a_safety_warning_never_accepted_silently() {
    let server = TestServer::start().await;
    let mut alice = primary(&server, "alice").await;
    let _bob = primary(&server, "bob").await;
    alice.add_contact("bob", "").await;
    settle(&mut [&mut alice]).await;
    // Bob's account key changes on the server (re-registered elsewhere, or an attacker).
    let db = sqlx::SqlitePool::connect(&format!("sqlite://{}", server.dir.path().join("tether.db").display())).await.unwrap();
    sqlx::query("UPDATE accounts SET account_key = ? WHERE handle = 'bob'").bind(vec![9u8; 32]).execute(&db).await.unwrap();
    let now = alice.now();
    alice.engine.add_contact("bob", "", now).unwrap(); // refetches the list
    alice.flush().await;
    settle(&mut [&mut alice]).await;
    let warning = alice.engine.contact("bob").unwrap().warning.clone().expect("warned");
    assert!(warning.contains("account key changed"), "{warning}");
    let now = alice.now();
    alice.engine.send_text("bob", "held", now).unwrap();
    alice.flush().await;
    for _ in 0..10 {
        alice.step(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(alice.engine.outbox_len(), 1);
}
