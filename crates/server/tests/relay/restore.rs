//! Restoring an account from its recovery phrase: the server's checks, the
//! atomic replacement of the devices, the old devices closed with
//! `account_restored` and the new list, and the per-source limit.

use crate::common::*;
use tether_proto::ErrorCode;
use tether_proto::device_list::{self, AccountKey};
use tether_proto::frames::*;
use tether_proto::noise::StaticKey;

/// Device 0 of `handle` on `key`, self-signed with a real signing key.
fn signed_primary(handle: &str, key: &StaticKey) -> DeviceEntry {
    let signer = AccountKey::from_seed(&[42; 32]);
    let mut e = entry(0, key, "cli/linux");
    e.signing_key = signer.public().to_vec();
    e.self_signature = signer.sign_bytes(b"", &device_list::entry_signed_bytes(handle, &e)).to_vec();
    e
}

fn restore_req(handle: &str, key: &AccountKey, version: u64, devices: Vec<DeviceEntry>) -> Request {
    let list = DeviceList { handle: handle.into(), version, devices, issued_at_ms: T0 };
    Request::Restore(Restore { handle: handle.into(), device_list: Some(key.sign(&list)) })
}

/// Reads until the server closes; the Closing event.
async fn closing(c: &mut Client) -> ErrorInfo {
    let mut found = c.events.drain(..).find_map(|e| match e {
        EventBody::Closing(info) => Some(info),
        _ => None,
    });
    while let Some(frame) = c.read_frame().await {
        if let ServerBody::Event(Event { body: Some(EventBody::Closing(info)) }) = frame {
            found = Some(info);
        }
    }
    found.expect("a Closing event")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_replaces_every_device_and_closes_the_old_ones_with_the_new_list() {
    let server = TestServer::start().await;
    let (mut alice, mut primary) = register(&server, "alice").await;
    let mut c1 = link(&server, &mut alice, &mut primary, 1).await;
    let old_key = primary.key.clone();
    let (_bob, mut bob) = register(&server, "bob").await;
    bob.ok(send_req(1, vec![("alice", 0, b"old".to_vec()), ("alice", 1, b"old".to_vec())])).await;

    let mut g = server.guest().await;
    let other = AccountKey::from_seed(&[9; 32]);
    let e = g
        .fails(
            Request::RestoreLookup(RestoreLookup { handle: "alice".into(), account_key: other.public().to_vec() }),
            ErrorCode::AccountKeyMismatch,
        )
        .await;
    assert!(e.device_lists.is_empty(), "nothing of the account is shown");
    let current = match g
        .ok(Request::RestoreLookup(RestoreLookup { handle: "alice".into(), account_key: alice.key.public().to_vec() }))
        .await
    {
        ResponseBody::DeviceList(l) => l,
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(device_list::verify(&current.account_key, current.list.as_ref().unwrap()).unwrap().version, 2);

    // Not the stored key; not newer; not only this device; an entry that
    // does not prove its keys: each refused, nothing changes.
    let me = signed_primary("alice", &g.key);
    g.fails(restore_req("alice", &other, 3, vec![me.clone()]), ErrorCode::BadSignature).await;
    g.fails(restore_req("alice", &alice.key, 2, vec![me.clone()]), ErrorCode::InvalidDeviceList).await;
    let extra = entry(1, &StaticKey::generate(), "chrome/linux");
    server.clock.advance(60 * 60 * 1000); // a fresh allowance of restore attempts
    g.fails(restore_req("alice", &alice.key, 3, vec![me.clone(), extra]), ErrorCode::InvalidDeviceList).await;
    let mut unsigned = me.clone();
    unsigned.self_signature = vec![0; 64];
    g.fails(restore_req("alice", &alice.key, 3, vec![unsigned]), ErrorCode::BadSignature).await;
    primary.ping().await;

    match g.ok(restore_req("alice", &alice.key, 3, vec![me])).await {
        ResponseBody::Registered(r) => assert_eq!((r.handle.as_str(), r.device_id), ("alice", 0)),
        other => panic!("unexpected {other:?}"),
    }
    // The old primary and the companion are closed, with the new list.
    for old in [&mut primary, &mut c1] {
        let info = closing(old).await;
        assert_eq!(info.code, "account_restored");
        let l = &info.device_lists[0];
        let list = device_list::verify(&alice.key.public(), l.list.as_ref().unwrap()).unwrap();
        assert_eq!((list.version, list.devices.len()), (3, 1));
        assert_eq!(list.devices[0].noise_key, g.key.public().to_vec());
    }
    // The old primary's key can never come back.
    assert_eq!(reconnect(&server, &old_key).await.until_closed().await.0.as_deref(), Some("account_restored"));
    // The old queues are gone; senders get the new list.
    assert!(g.events.is_empty(), "the new primary gets none of the old copies: {:?}", g.events);
    let e = bob
        .fails(
            send_req(2, vec![("alice", 0, b"x".to_vec()), ("alice", 1, b"x".to_vec())]),
            ErrorCode::DeviceListChanged,
        )
        .await;
    assert_eq!(e.device_lists[0].removed, vec![1]);
    bob.ok(send_req(3, vec![("alice", 0, b"new".to_vec())])).await;
    assert_eq!(g.envelope().await.ciphertext, b"new".to_vec());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_attempts_are_limited_per_source() {
    let server = TestServer::start().await;
    let (alice, _primary) = register(&server, "alice").await;
    let mut g = server.guest().await;
    let wrong = AccountKey::from_seed(&[9; 32]);
    let lookup = |k: &AccountKey| {
        Request::RestoreLookup(RestoreLookup { handle: "alice".into(), account_key: k.public().to_vec() })
    };
    for _ in 0..6 {
        g.fails(lookup(&wrong), ErrorCode::AccountKeyMismatch).await;
    }
    // Another connection from the same place shares the allowance.
    let mut g2 = server.guest().await;
    g2.fails(lookup(&alice.key), ErrorCode::RateLimited).await;
    server.clock.advance(6 * 60 * 1000);
    g2.ok(lookup(&alice.key)).await;
    server.stop().await;
}

/// A send whose copies state `version` for every account they address.
fn send_for(message_id: u8, version: u64, copies: Vec<(&str, u32)>) -> Request {
    Request::Send(SendMessage {
        message_id: vec![message_id; 16],
        copies: copies
            .into_iter()
            .map(|(h, d)| Copy { handle: h.into(), device_id: d, ciphertext: b"x".to_vec(), list_version: version })
            .collect(),
        blob_ids: vec![],
        ..Default::default()
    })
}

/// A restore keeps device 0 under new keys: the device ids of a sender's
/// stale view still match, so copies state the list version they were
/// encrypted for. An older one is refused with `device_list_changed` and
/// the current list; the current one, a newer one, or none goes through.
/// Copies to the sender's own other devices follow the same rule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_encrypted_for_an_older_list_is_refused() {
    let server = TestServer::start().await;
    let (alice, _primary) = register(&server, "alice").await;
    let (mut bob_account, mut bob) = register(&server, "bob").await;
    bob.ok(send_for(1, 1, vec![("alice", 0)])).await;

    let mut g = server.guest().await;
    g.ok(restore_req("alice", &alice.key, 2, vec![signed_primary("alice", &g.key)])).await;
    let e = bob.fails(send_for(2, 1, vec![("alice", 0)]), ErrorCode::DeviceListChanged).await;
    let served = device_list::verify(&alice.key.public(), e.device_lists[0].list.as_ref().unwrap()).unwrap();
    assert_eq!((e.device_lists[0].handle.as_str(), served.version), ("alice", 2));
    for (id, version) in [(3, 2), (4, 0), (5, 3)] {
        bob.ok(send_for(id, version, vec![("alice", 0)])).await;
        assert_eq!(g.envelope().await.message_id, vec![id; 16]);
    }

    // Own copies: bob's companion, after the primary re-signed the same
    // devices as version 3.
    let mut c1 = link(&server, &mut bob_account, &mut bob, 1).await;
    let same = bob_account.without_device(99);
    bob.ok(Request::PublishDeviceList(PublishDeviceList { list: Some(same) })).await;
    let e = c1.fails(send_for(6, 2, vec![("bob", 0)]), ErrorCode::DeviceListChanged).await;
    assert_eq!(e.device_lists[0].handle, "bob");
    // One account stated stale is enough, whatever the others say.
    c1.fails(send_for(7, 2, vec![("bob", 0), ("alice", 0)]), ErrorCode::DeviceListChanged).await;
    c1.ok(send_for(8, 3, vec![("bob", 0)])).await;
    c1.ok(send_for(9, 0, vec![("bob", 0)])).await;
    server.stop().await;
}
