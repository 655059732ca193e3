//! Several nodes (docs/architecture.md, "Several nodes"): two in-process
//! servers on one PostgreSQL database and one data directory (the server
//! key, the blobs), telling each other through a real nats-server
//! (tether-services starts throwaway ones). A device on one node and its
//! contact on the other chat both ways; a device removed through one node
//! loses its socket on the other at once; a node killed (SIGKILL) in the
//! middle of traffic loses nothing: its devices move to the other node and
//! every acknowledged message arrives exactly once.

use crate::common::*;
use tether_proto::ErrorCode;
use tether_proto::frames::*;
use tether_proto::noise::StaticKey;
use tether_server::{Config, DatabaseUrl, ManualClock};

/// Two nodes on one database, and the NATS between them. Start it from
/// the test's own task: PostgreSQL and NATS die with the thread that
/// started them.
pub(crate) struct TwoNodes {
    pub(crate) a: TestServer,
    pub(crate) b: TestServer,
    _nats: tether_services::Nats,
    _postgres: tether_services::Postgres,
    _data: tempfile::TempDir,
}

impl TwoNodes {
    async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub(crate) async fn start_with(tune: impl FnOnce(&mut Config)) -> Self {
        let postgres = tether_services::Postgres::start().unwrap();
        let url = postgres.create_database("cluster").unwrap();
        let nats = tether_services::Nats::start().unwrap();
        let data = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(T0);
        let mut config = Config {
            data: data.path().to_path_buf(),
            database_url: Some(DatabaseUrl(url)),
            nats_url: Some(nats.url()),
            ..Config::default()
        };
        tune(&mut config);
        let a = TestServer::node(config.clone(), clock.clone()).await;
        let b = TestServer::node(config, clock).await;
        assert_eq!(a.pin(), b.pin(), "every node answers with the same server key");
        Self { a, b, _nats: nats, _postgres: postgres, _data: data }
    }

    pub(crate) async fn stop(self) {
        self.a.stop().await;
        self.b.stop().await;
    }
}

fn ack(ids: Vec<u64>) -> Request {
    Request::Ack(Ack { envelope_ids: ids })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_on_one_node_and_its_contact_on_the_other_chat_both_ways() {
    let nodes = TwoNodes::start().await;
    let (_alice, mut alice) = register(&nodes.a, "alice").await;
    let (_bob, mut bob) = register(&nodes.b, "bob").await;
    for n in 1..=20u8 {
        alice.ok(send_req(n, vec![("bob", 0, vec![n; 8])])).await;
        let e = bob.envelope().await;
        assert_eq!((e.sender_handle.as_str(), e.ciphertext[0]), ("alice", n), "pushed across nodes, in order");
        bob.ok(ack(vec![e.envelope_id])).await;
        bob.ok(send_req(100 + n, vec![("alice", 0, vec![100 + n; 8])])).await;
        let e = alice.envelope().await;
        assert_eq!((e.sender_handle.as_str(), e.ciphertext[0]), ("bob", 100 + n));
        alice.ok(ack(vec![e.envelope_id])).await;
    }
    // Nothing twice: a ping answered with no envelope left behind.
    alice.ping().await;
    bob.ping().await;
    assert!(alice.events.iter().chain(bob.events.iter()).all(|e| !matches!(e, EventBody::Envelope(_))));
    nodes.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_removed_through_one_node_loses_its_socket_on_the_other_at_once() {
    let nodes = TwoNodes::start().await;
    let (mut alice, mut primary) = register(&nodes.a, "alice").await;
    let companion = link(&nodes.a, &mut alice, &mut primary, 1).await;
    // The companion comes back through node B.
    let key = companion.key.clone();
    drop(companion);
    let mut companion = reconnect(&nodes.b, &key).await;
    companion.ping().await;
    let list = alice.without_device(1);
    primary.ok(Request::RemoveDevice(RemoveDevice { device_id: 1, new_list: Some(list) })).await;
    let closed = tokio::time::timeout(std::time::Duration::from_secs(5), companion.until_closed()).await;
    assert_eq!(closed.expect("closed within 5 s"), (Some("device_removed".into()), "device_removed".into()));
    nodes.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_traffic_loses_nothing_its_devices_move_and_each_message_arrives_once() {
    use crate::crash::start_with;
    use std::collections::HashSet;

    let postgres = tether_services::Postgres::start().unwrap();
    let url = postgres.create_database("cluster").unwrap();
    let nats = tether_services::Nats::start().unwrap();
    let data = tempfile::tempdir().unwrap();
    let launch = || {
        let (dir, url, nats) = (data.path().to_path_buf(), url.clone(), nats.url());
        tokio::task::spawn_blocking(move || start_with(&dir, Some(&url), &["--nats-url", &nats]))
    };
    let mut a = launch().await.unwrap();
    let b = launch().await.unwrap();
    assert_eq!(a.pin, b.pin, "one server key for both nodes");

    // Alice sends through node A; bob reads on node B, acknowledging as he goes.
    let (alice_key, bob_key) = (StaticKey::generate(), StaticKey::generate());
    let mut alice = Client::connect(&a.url, alice_key.clone(), Some(a.pin)).await.unwrap();
    alice.ok(TestAccount::new("alice", &alice_key).register_request()).await;
    let mut bob = Client::connect(&b.url, bob_key.clone(), Some(b.pin)).await.unwrap();
    bob.ok(TestAccount::new("bob", &bob_key).register_request()).await;

    let mut got: Vec<u32> = Vec::new();
    let mut acked: HashSet<u32> = HashSet::new();
    let send = |n: u32| {
        let Request::Send(mut m) = send_req(0, vec![("bob", 0, n.to_le_bytes().to_vec())]) else { unreachable!() };
        m.message_id = [n.to_le_bytes().as_slice(), &[0; 12]].concat();
        Request::Send(m)
    };
    // Reads what bob has been pushed so far and acknowledges it.
    async fn drain(bob: &mut Client, got: &mut Vec<u32>) {
        bob.ping().await;
        let mut ids = Vec::new();
        for e in std::mem::take(&mut bob.events) {
            if let EventBody::Envelope(e) = e {
                got.push(u32::from_le_bytes(e.ciphertext[..4].try_into().unwrap()));
                ids.push(e.envelope_id);
            }
        }
        if !ids.is_empty() {
            bob.ok(Request::Ack(Ack { envelope_ids: ids })).await;
        }
    }

    // Windows of 16 pipelined sends; node A is killed mid-window.
    let mut n = 0u32;
    'traffic: loop {
        let mut pending = Vec::new();
        for _ in 0..16 {
            pending.push((n, alice.send_request(send(n)).await));
            n += 1;
        }
        if acked.len() >= 300 {
            a.child.kill().unwrap(); // SIGKILL
            a.child.wait().unwrap();
        }
        for (msg, id) in pending {
            match tokio::time::timeout(std::time::Duration::from_secs(5), alice.try_response(id)).await {
                Ok(Some(r)) if r.error.is_none() => {
                    acked.insert(msg);
                }
                Ok(Some(r)) => panic!("send refused: {:?}", r.error),
                _ => break 'traffic,
            }
        }
        drain(&mut bob, &mut got).await;
    }
    assert!(acked.len() >= 300, "traffic ran before the kill");

    // Alice's device moves to node B and goes on from where it was.
    let mut alice = Client::connect(&b.url, alice_key, Some(b.pin)).await.unwrap();
    for _ in 0..100 {
        alice.ok(send(n)).await;
        acked.insert(n);
        n += 1;
    }
    // Everything acknowledged reaches bob, none twice, in order.
    for _ in 0..50 {
        drain(&mut bob, &mut got).await;
        if acked.iter().all(|m| got.contains(m)) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let unique: HashSet<u32> = got.iter().copied().collect();
    assert_eq!(unique.len(), got.len(), "no message delivered twice");
    let lost: Vec<_> = acked.difference(&unique).collect();
    assert!(lost.is_empty(), "{} acknowledged messages lost with node A: {lost:?}", lost.len());
    assert!(got.windows(2).all(|w| w[0] < w[1]), "delivered in the order sent");
    let mut b = b;
    b.child.kill().unwrap();
    b.child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_companion_links_through_node_b_while_its_primary_is_on_node_a() {
    let nodes = TwoNodes::start().await;
    let (mut alice, mut primary) = register(&nodes.a, "alice").await;

    // Online: the companion-to-be shows its QR (refs) from node B; the
    // primary approves through node A; node B promotes it.
    let mut companion = nodes.b.guest().await;
    let refs = match companion.ok(Request::RequestLinkRefs(RequestLinkRefs {})).await {
        ResponseBody::LinkRefs(r) => r.refs,
        other => panic!("unexpected {other:?}"),
    };
    let new_list = alice.with_device(entry(1, &companion.key, "chrome/linux"));
    let approve = |link_ref: Vec<u8>, device_id, new_list| {
        Request::ApproveLink(ApproveLink {
            link_ref,
            device_id,
            new_list: Some(new_list),
            approval: b"signed identity + hmac".to_vec(),
        })
    };
    primary.ok(approve(refs[0].link_ref.clone(), 1, new_list)).await;
    match companion.event().await {
        EventBody::LinkApproved(a) => assert_eq!((a.handle.as_str(), a.device_id), ("alice", 1)),
        other => panic!("unexpected {other:?}"),
    }
    // It is a device now, on node B: messages from the primary reach it.
    primary.ok(send_req(1, vec![("alice", 1, b"history".to_vec())])).await;
    assert_eq!(companion.envelope().await.ciphertext, b"history");
    // The batch is retired everywhere: its other refs are single-use too.
    primary
        .fails(
            approve(refs[1].link_ref.clone(), 2, alice.with_device(entry(2, &StaticKey::generate(), "x"))),
            ErrorCode::UnknownRef,
        )
        .await;
    alice.without_device(2);
    alice.list.version -= 2;

    // Offline: the next companion-to-be got its refs from node B and went
    // away; the primary approves through node A; it comes back through
    // node A and gets its approval first.
    let mut second = nodes.b.guest().await;
    let refs = match second.ok(Request::RequestLinkRefs(RequestLinkRefs {})).await {
        ResponseBody::LinkRefs(r) => r.refs,
        other => panic!("unexpected {other:?}"),
    };
    let key = second.key.clone();
    drop(second);
    let new_list = alice.with_device(entry(3, &key, "firefox/linux"));
    primary.ok(approve(refs[0].link_ref.clone(), 3, new_list)).await;
    let mut second = reconnect(&nodes.a, &key).await;
    match second.event().await {
        EventBody::LinkApproved(a) => assert_eq!((a.handle.as_str(), a.device_id), ("alice", 3)),
        other => panic!("unexpected {other:?}"),
    }
    // Taken once: connecting again brings no second approval.
    drop(second);
    let mut again = reconnect(&nodes.b, &key).await;
    again.ping().await;
    assert!(again.events.iter().all(|e| !matches!(e, EventBody::LinkApproved(_))));
    // An unknown ref is refused as on one node.
    primary
        .fails(approve(vec![7; 16], 4, alice.with_device(entry(4, &StaticKey::generate(), "x"))), ErrorCode::UnknownRef)
        .await;
    nodes.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pairing_code_shown_through_one_node_is_answered_through_the_other() {
    let nodes = TwoNodes::start().await;
    let (_alice, mut alice) = register(&nodes.a, "alice").await;
    let (_mallory, mut mallory) = register(&nodes.b, "mallory").await;
    let slot = |n: u16| n.to_be_bytes().to_vec();
    let publish = |n: u16, p: &[u8]| Request::PairingPublish(PairingPublish { lookup: slot(n), payload: p.to_vec() });
    let fetch = |n: u16| Request::PairingFetch(PairingFetch { lookup: slot(n) });
    let reply = |n: u16, p: &[u8]| Request::PairingReply(PairingReply { lookup: slot(n), payload: p.to_vec() });
    async fn answer(c: &mut Client) -> Vec<u8> {
        match c.event().await {
            EventBody::PairingAnswer(p) => p.payload,
            other => panic!("expected a pairing answer, got {other:?}"),
        }
    }

    // The companion-to-be shows its code through node B.
    let mut guest = nodes.b.guest().await;
    guest.ok(publish(4321, b"guest's spake2 message")).await;
    // No guest on node A can take the same slot.
    nodes.a.guest().await.fails(publish(4321, b"x"), ErrorCode::PairingSlotTaken).await;
    // Alice's primary, on node A, claims it and the PAKE runs both ways.
    match alice.ok(fetch(4321)).await {
        ResponseBody::Pairing(p) => assert_eq!(p.payload, b"guest's spake2 message"),
        other => panic!("{other:?}"),
    }
    mallory.fails(fetch(4321), ErrorCode::UnknownPairing).await;
    alice.ok(reply(4321, b"alice's spake2 message")).await;
    assert_eq!(answer(&mut guest).await, b"alice's spake2 message");
    guest.ok(reply(4321, b"guest's confirmation")).await;
    assert_eq!(answer(&mut alice).await, b"guest's confirmation");
    // Mallory (node B, where the slot is) cannot reply on alice's claim.
    mallory.fails(reply(4321, b"x"), ErrorCode::UnknownPairing).await;
    // At most four replies per side, across nodes too.
    for i in 0..3 {
        alice.ok(reply(4321, &[i])).await;
    }
    alice.fails(reply(4321, b"fifth"), ErrorCode::BadRequest).await;
    // An unknown code is unknown on every node.
    alice.fails(fetch(999), ErrorCode::UnknownPairing).await;
    nodes.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_has_one_lookup_allowance_over_all_nodes_not_one_per_node() {
    let nodes = TwoNodes::start_with(|c| {
        c.lookup_burst = 4;
        c.lookups_per_minute = 0;
    })
    .await;
    let (_alice, mut through_a) = register(&nodes.a, "alice").await;
    let look = |h: &str| Request::GetDeviceList(GetDeviceList { handle: h.into() });
    // Two lookups through node A (unknown handles cost a token too) …
    through_a.fails(look("nobody1"), ErrorCode::UnknownAccount).await;
    through_a.fails(look("nobody2"), ErrorCode::UnknownAccount).await;
    // … then the same account through node B, once node B heard of them.
    let mut through_b = reconnect(&nodes.b, &through_a.key).await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    through_b.fails(look("nobody3"), ErrorCode::UnknownAccount).await;
    through_b.fails(look("nobody4"), ErrorCode::UnknownAccount).await;
    // The allowance of 4 is spent everywhere.
    through_b.fails(look("nobody5"), ErrorCode::RateLimited).await;
    let mut again_a = reconnect(&nodes.a, &through_a.key).await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    again_a.fails(look("nobody6"), ErrorCode::RateLimited).await;
    // A handle looked up lately is free again, on either node.
    again_a.fails(look("nobody3"), ErrorCode::UnknownAccount).await;
    nodes.stop().await;
}
