use crate::common::*;
use tether_proto::ErrorCode;
use tether_proto::frames::*;

fn ack(ids: Vec<u64>) -> Request {
    Request::Ack(Ack { envelope_ids: ids })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_delivery_is_pushed_at_once_with_the_sender_named() {
    let server = TestServer::start().await;
    let (_alice, mut a) = register(&server, "alice").await;
    let (_bob, mut b) = register(&server, "bob").await;
    a.ok(send_req(1, vec![("bob", 0, b"ciphertext-1".to_vec())])).await;
    let e = b.envelope().await;
    assert_eq!(
        (e.sender_handle.as_str(), e.sender_device, e.ciphertext.as_slice()),
        ("alice", 0, &b"ciphertext-1"[..])
    );
    assert_eq!(e.message_id, vec![1; 16]);
    b.ok(ack(vec![e.envelope_id])).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_copies_wait_in_order_and_unacked_ones_come_again_until_acked() {
    offline_copies_wait_in_order(TestServer::start().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_offline_copies_wait_in_order_and_unacked_ones_come_again_until_acked() {
    offline_copies_wait_in_order(TestServer::start_on_postgres().await).await;
}

async fn offline_copies_wait_in_order(server: TestServer) {
    let (_alice, mut a) = register(&server, "alice").await;
    let (_bob, b) = register(&server, "bob").await;
    let bob_key = b.key.clone();
    drop(b);
    for n in 1..=50u8 {
        a.ok(send_req(n, vec![("bob", 0, vec![n; 10])])).await;
    }
    let mut b = reconnect(&server, &bob_key).await;
    let mut got = Vec::new();
    for _ in 0..50 {
        got.push(b.envelope().await);
    }
    assert_eq!(
        got.iter().map(|e| e.ciphertext[0]).collect::<Vec<_>>(),
        (1..=50).collect::<Vec<u8>>(),
        "per-device order kept"
    );
    // Ack the first 20 only, then reconnect: 21..=50 come again, in order, and nothing else.
    b.ok(ack(got[..20].iter().map(|e| e.envelope_id).collect())).await;
    drop(b);
    let mut b = reconnect(&server, &bob_key).await;
    let mut again = Vec::new();
    for _ in 0..30 {
        again.push(b.envelope().await.ciphertext[0]);
    }
    assert_eq!(again, (21..=50).collect::<Vec<u8>>());
    b.ping().await;
    assert!(
        b.events.iter().all(|e| !matches!(e, EventBody::Envelope(_))),
        "no copy is delivered twice on one connection"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_covers_the_recipients_and_the_senders_other_devices() {
    let server = TestServer::start().await;
    let (mut alice, mut a0) = register(&server, "alice").await;
    let mut a1 = link(&server, &mut alice, &mut a0, 1).await;
    let (_bob, mut b) = register(&server, "bob").await;
    // From alice's companion: to bob and to alice's primary (not to itself).
    a1.ok(send_req(9, vec![("bob", 0, b"to bob".to_vec()), ("alice", 0, b"to my primary".to_vec())])).await;
    assert_eq!(b.envelope().await.ciphertext, b"to bob");
    let mine = a0.envelope().await;
    assert_eq!((mine.ciphertext.as_slice(), mine.sender_device), (&b"to my primary"[..], 1));
    // Leaving out one of bob's devices, or adding one he does not have: stale.
    let e = a1
        .fails(send_req(10, vec![("bob", 0, b"x".to_vec()), ("bob", 1, b"x".to_vec())]), ErrorCode::DeviceListChanged)
        .await;
    assert_eq!(e.device_lists.len(), 1);
    assert_eq!(e.device_lists[0].handle, "bob");
    a1.fails(send_req(11, vec![("bob", 0, b"x".to_vec()), ("alice", 1, b"x".to_vec())]), ErrorCode::DeviceListChanged)
        .await;
    a1.fails(send_req(12, vec![("nobody", 0, b"x".to_vec())]), ErrorCode::UnknownAccount).await;
    a1.fails(send_req(13, vec![("bob", 0, b"x".to_vec()), ("bob", 0, b"y".to_vec())]), ErrorCode::BadRequest).await;
    a1.fails(Request::Send(SendMessage { message_id: vec![1; 3], copies: vec![], ..Default::default() }), ErrorCode::BadRequest).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_only_acks_its_own_copies() {
    let server = TestServer::start().await;
    let (_alice, mut a) = register(&server, "alice").await;
    let (_bob, mut b) = register(&server, "bob").await;
    let (_carol, mut c) = register(&server, "carol").await;
    a.ok(send_req(1, vec![("bob", 0, b"for bob".to_vec())])).await;
    let e = b.envelope().await;
    c.ok(ack(vec![e.envelope_id])).await; // acking someone else's id does nothing
    let key = b.key.clone();
    drop(b);
    let mut b = reconnect(&server, &key).await;
    assert_eq!(b.envelope().await.envelope_id, e.envelope_id);
    server.stop().await;
}

fn unlimited(c: &mut tether_server::Config) {
    c.rate_per_sec = 100_000;
    c.rate_burst = 100_000;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_larger_than_the_push_queue_arrives_complete_and_in_order() {
    burst_arrives_complete_and_in_order(TestServer::start_with(unlimited).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_burst_larger_than_the_push_queue_arrives_complete_and_in_order() {
    burst_arrives_complete_and_in_order(TestServer::start_on_postgres_with(unlimited).await).await;
}

async fn burst_arrives_complete_and_in_order(server: TestServer) {
    let (_alice, mut a) = register(&server, "alice").await;
    let (_bob, mut b) = register(&server, "bob").await;
    // Pipeline 1,000 sends without reading: bob's push queue (256) overflows
    // and his connection must catch up from the store.
    let mut ids = Vec::new();
    for n in 0..1000u32 {
        let req = Request::Send(SendMessage {
            message_id: [n.to_le_bytes().as_slice(), &[0; 12]].concat(),
            copies: vec![Copy { handle: "bob".into(), device_id: 0, ciphertext: n.to_le_bytes().to_vec(), list_version: 0 }],
            blob_ids: vec![],
            ..Default::default()
        });
        ids.push(a.send_request(req).await);
    }
    for id in ids {
        let r = a.response(id).await;
        assert!(r.error.is_none(), "{:?}", r.error);
    }
    let mut seen = Vec::new();
    for _ in 0..1000 {
        let e = b.envelope().await;
        seen.push(u32::from_le_bytes(e.ciphertext[..4].try_into().unwrap()));
    }
    assert_eq!(seen, (0..1000).collect::<Vec<u32>>());
    server.stop().await;
}
