//! The pairing relay (protocol.md §7.2): one guest's slot, claimed by one
//! device, relaying a bounded number of PAKE messages each way.

use crate::common::*;
use tether_proto::ErrorCode;
use tether_proto::frames::*;

fn slot(n: u16) -> Vec<u8> {
    n.to_be_bytes().to_vec()
}

fn publish(n: u16, payload: &[u8]) -> Request {
    Request::PairingPublish(PairingPublish { lookup: slot(n), payload: payload.to_vec() })
}

fn fetch(n: u16) -> Request {
    Request::PairingFetch(PairingFetch { lookup: slot(n) })
}

fn reply(n: u16, payload: &[u8]) -> Request {
    Request::PairingReply(PairingReply { lookup: slot(n), payload: payload.to_vec() })
}

async fn answer(c: &mut Client) -> PairingOffer {
    match c.event().await {
        EventBody::PairingAnswer(p) => p,
        other => panic!("expected a pairing answer, got {other:?}"),
    }
}

/// Waits until the server has let go of every pairing slot.
async fn until_no_slots(server: &TestServer) {
    for _ in 0..200 {
        if server.server.rendezvous_footprint().pairings == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("pairing slots outlived their guests: {:?}", server.server.rendezvous_footprint());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_carries_a_pake_between_one_guest_and_the_one_device_that_claimed_it() {
    let server = TestServer::start().await;
    let (_alice, mut alice) = register(&server, "alice").await;
    let (_mallory, mut mallory) = register(&server, "mallory").await;
    let mut guest = server.guest().await;
    let spake_msg = [0x42u8; 33];
    guest.ok(publish(1234, &spake_msg)).await;

    // Alice's fetch claims the slot; she may fetch it again.
    match alice.ok(fetch(1234)).await {
        ResponseBody::Pairing(p) => assert_eq!((p.payload.as_slice(), p.lookup), (&spake_msg[..], slot(1234))),
        other => panic!("{other:?}"),
    }
    alice.ok(fetch(1234)).await;
    // A second device's guess at the same code: refused (one guess per code).
    mallory.fails(fetch(1234), ErrorCode::UnknownPairing).await;
    mallory.fails(reply(1234, b"my guess"), ErrorCode::UnknownPairing).await;

    // Both ways, each to the other side only.
    alice.ok(reply(1234, b"alice's spake2 message")).await;
    let p = answer(&mut guest).await;
    assert_eq!((p.payload.as_slice(), p.lookup), (&b"alice's spake2 message"[..], slot(1234)));
    guest.ok(reply(1234, b"guest's confirmation")).await;
    assert_eq!(answer(&mut alice).await.payload, b"guest's confirmation");
    assert!(mallory.events.is_empty());

    // Another guest cannot take the slot, nor reply on it.
    let mut other = server.guest().await;
    other.fails(publish(1234, b"x"), ErrorCode::PairingSlotTaken).await;
    other.fails(reply(1234, b"x"), ErrorCode::UnknownPairing).await;

    // At most four replies per side.
    for i in 0..3 {
        alice.ok(reply(1234, &[i])).await;
        guest.ok(reply(1234, &[i])).await;
    }
    alice.fails(reply(1234, b"fifth"), ErrorCode::BadRequest).await;
    guest.fails(reply(1234, b"fifth"), ErrorCode::BadRequest).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairing_arguments_are_checked_and_roles_enforced() {
    let server = TestServer::start().await;
    let (_alice, mut alice) = register(&server, "alice").await;
    let mut guest = server.guest().await;
    // The lookup is a 15-bit slot number: 2 bytes, top bit clear.
    let long = Request::PairingPublish(PairingPublish { lookup: vec![7; 16], payload: b"x".to_vec() });
    guest.fails(long, ErrorCode::BadRequest).await;
    let top = Request::PairingPublish(PairingPublish { lookup: vec![0x80, 0], payload: b"x".to_vec() });
    guest.fails(top, ErrorCode::BadRequest).await;
    alice.fails(Request::PairingFetch(PairingFetch { lookup: vec![1] }), ErrorCode::BadRequest).await;
    // Offers are PAKE messages: 1 to 64 bytes. Replies: 1 to 4 096 bytes.
    guest.fails(publish(1, &[]), ErrorCode::BadRequest).await;
    guest.fails(publish(1, &[0; 65]), ErrorCode::BadRequest).await;
    guest.ok(publish(1, &[0; 64])).await;
    alice.ok(fetch(1)).await;
    alice.fails(reply(1, &[0; 4097]), ErrorCode::BadRequest).await;
    alice.fails(reply(1, &[]), ErrorCode::BadRequest).await;
    alice.ok(reply(1, &[0; 4096])).await;
    answer(&mut guest).await;
    // Guests publish and devices fetch, not the other way round.
    alice.fails(publish(2, b"x"), ErrorCode::AlreadyRegistered).await;
    guest.fails(fetch(1), ErrorCode::NotRegistered).await;
    // An unclaimed slot has no one to reply to.
    let mut lonely = server.guest().await;
    lonely.ok(publish(3, b"x")).await;
    lonely.fails(reply(3, b"x"), ErrorCode::UnknownPairing).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_lives_only_as_long_as_its_guest_connection_and_its_ttl() {
    let server = TestServer::start().await;
    let (mut account, mut alice) = register(&server, "alice").await;

    // Disconnecting drops the slot: nothing is parked for later.
    let mut guest = server.guest().await;
    guest.ok(publish(10, b"offer")).await;
    drop(guest);
    until_no_slots(&server).await;
    alice.fails(fetch(10), ErrorCode::UnknownPairing).await;
    // The slot number is free again.
    let mut next = server.guest().await;
    next.ok(publish(10, b"offer")).await;

    // One slot per connection: publishing again replaces it.
    next.ok(publish(11, b"offer")).await;
    assert_eq!(server.server.rendezvous_footprint().pairings, 1);
    alice.fails(fetch(10), ErrorCode::UnknownPairing).await;

    // It expires after pairing_ttl (180 s), claimed or not.
    alice.ok(fetch(11)).await;
    server.clock.advance(181_000);
    alice.fails(fetch(11), ErrorCode::UnknownPairing).await;
    alice.fails(reply(11, b"late"), ErrorCode::UnknownPairing).await;
    assert_eq!(server.server.rendezvous_footprint().pairings, 0);

    // A guest that becomes a device gives its slot up.
    let mut companion = server.guest().await;
    companion.ok(publish(12, b"offer")).await;
    let refs = match companion.ok(Request::RequestLinkRefs(RequestLinkRefs {})).await {
        ResponseBody::LinkRefs(r) => r.refs,
        other => panic!("{other:?}"),
    };
    let new_list = account.with_device(entry(1, &companion.key, "chrome/linux"));
    alice
        .ok(Request::ApproveLink(ApproveLink {
            link_ref: refs[0].link_ref.clone(),
            device_id: 1,
            new_list: Some(new_list),
            approval: b"approval".to_vec(),
        }))
        .await;
    assert!(matches!(companion.event().await, EventBody::LinkApproved(_)));
    until_no_slots(&server).await;
    server.stop().await;
}
