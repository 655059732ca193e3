//! Attacks on device lists by a malicious server (issue 9, finding 3 and
//! the acceptance items "a rolled-back list is refused" and "a server-added
//! device is never encrypted to").

use crate::adversary::{Operator, device};
use crate::harness::*;
use crate::linking::link_companion;
use std::time::Duration;
use tether_proto::frames::{self as f, EventBody, Request, ResponseBody, ServerBody};

/// The device ids alice encrypted to for `handle`, over all her sends.
fn targets(op: &Operator, sender: &str, handle: &str) -> Vec<u32> {
    let mut ids: Vec<u32> = op
        .requests_where(|p, r| p.device().is_some_and(|(h, _)| h == sender) && matches!(r, Request::Send(_)))
        .into_iter()
        .flat_map(|(_, r)| match r {
            Request::Send(s) => s.copies.into_iter().filter(|c| c.handle == handle).map(|c| c.device_id).collect::<Vec<_>>(),
            _ => vec![],
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// A list of `handle` in a response: the answer to a fetch, or carried by
/// a `device_list_changed` error.
fn list_reply(frame: &f::ServerFrame, handle: &str) -> Option<f::DeviceListReply> {
    let Some(ServerBody::Response(r)) = &frame.body else { return None };
    match (&r.body, &r.error) {
        (Some(ResponseBody::DeviceList(l)), _) if l.handle == handle => Some(l.clone()),
        (_, Some(e)) => e.device_lists.iter().find(|l| l.handle == handle).cloned(),
        _ => None,
    }
}

/// Bob removes his companion; the server then serves alice bob's older,
/// validly signed list that still holds it. Alice keeps the newer list and
/// never encrypts to the removed device.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolled_back_contact_list_is_refused_and_the_removed_device_gets_nothing() {
    let server = TestServer::start().await;
    let op = Operator::install(&server);
    let (mut alice, mut bob) = alice_and_bob(&server, "Bob", "Alice").await;
    let mut companion = link_companion(&server, &mut bob, false).await;
    settle(&mut [&mut alice, &mut bob, &mut companion]).await;
    let companion_id = bob.engine.own_devices().into_iter().max().unwrap();
    assert_ne!(companion_id, 0);

    // Alice learns the list with the companion (the server sends it to her).
    let now = alice.now();
    alice.engine.send_text("bob", "hello both", now).unwrap();
    alice.flush().await;
    settle(&mut [&mut alice, &mut bob, &mut companion]).await;
    assert_eq!(targets(&op, "alice", "bob"), vec![0, companion_id], "honest: both of bob's devices");
    let old = op.sent.lock().unwrap().iter().rev().find_map(|(p, fr)| (*p == device("alice", 0)).then(|| list_reply(fr, "bob")).flatten());
    let old = old.expect("alice got bob's list with the companion");
    let v2: f::DeviceList = prost::Message::decode(old.list.as_ref().unwrap().body.as_slice()).unwrap();
    assert_eq!(v2.devices.len(), 2, "the list alice got holds the companion");

    // Bob removes the companion: a newer list, which alice learns when
    // the server refuses her next send to the old one.
    let now = bob.now();
    bob.engine.remove_device(companion_id, now).unwrap();
    bob.flush().await;
    settle(&mut [&mut alice, &mut bob]).await;
    let now = alice.now();
    alice.engine.send_text("bob", "after the removal", now).unwrap();
    alice.flush().await;
    settle(&mut [&mut alice, &mut bob]).await;
    op.requests.lock().unwrap().clear();
    let sends_before = alice.engine.outbox_len();
    assert_eq!(sends_before, 0);

    // The server answers alice's next send with "device list changed",
    // carrying the old list (once: then it is honest again).
    let mut tampered = false;
    op.on_send(move |to, mut frame| {
        if *to == device("alice", 0) && !tampered {
            if let Some(ServerBody::Response(r)) = &mut frame.body {
                if matches!(r.body, Some(ResponseBody::Sent(_))) {
                    tampered = true;
                    r.body = None;
                    r.error = Some(f::ErrorInfo { code: "device_list_changed".into(), message: "re-encrypt".into(), device_lists: vec![old.clone()], ..Default::default() });
                }
            }
        }
        Some(frame)
    });
    let now = alice.now();
    alice.engine.send_text("bob", "only for bob's phone", now).unwrap();
    alice.flush().await;
    settle(&mut [&mut alice, &mut bob]).await;

    assert_eq!(targets(&op, "alice", "bob"), vec![0], "the removed companion is never encrypted to");
    assert_eq!(texts(&bob, "alice").last().unwrap().1, "only for bob's phone");
}

/// The server adds a device of its own to bob's list (it cannot sign it)
/// and insists, through `device_list_changed`, that alice encrypt to it.
/// Alice never does; she is warned and her message waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_added_device_is_never_encrypted_to() {
    let server = TestServer::start().await;
    let op = Operator::install(&server);
    let (mut alice, bob) = alice_and_bob(&server, "Bob", "Alice").await;
    let honest = op.sent.lock().unwrap().iter().rev().find_map(|(p, fr)| (*p == device("alice", 0)).then(|| list_reply(fr, "bob")).flatten());
    let honest = honest.expect("alice fetched bob's list");
    op.on_send(move |to, mut frame| {
        if *to != device("alice", 0) {
            return Some(frame);
        }
        let tamper = |reply: &mut f::DeviceListReply| {
            let Some(signed) = reply.list.as_mut() else { return };
            let mut list: f::DeviceList = prost::Message::decode(signed.body.as_slice()).unwrap();
            if list.devices.iter().any(|d| d.device_id == 9) {
                return;
            }
            let mut rogue = list.devices[0].clone();
            rogue.device_id = 9;
            rogue.noise_key = vec![9; 32];
            rogue.identity_key = tether_proto::noise::StaticKey::generate().public().to_vec();
            list.devices.push(rogue);
            list.version += 1;
            signed.body = prost::Message::encode_to_vec(&list);
        };
        if let Some(ServerBody::Response(r)) = &mut frame.body {
            if let Some(ResponseBody::DeviceList(l)) = &mut r.body {
                if l.handle == "bob" {
                    tamper(l);
                }
            }
            // A send is answered "device list changed", with the tampered list.
            if let Some(ResponseBody::Sent(_)) = &r.body {
                let mut l = honest.clone();
                tamper(&mut l);
                r.body = None;
                r.error = Some(f::ErrorInfo { code: "device_list_changed".into(), message: "re-encrypt".into(), device_lists: vec![l], ..Default::default() });
            }
        }
        Some(frame)
    });
    drop(bob);
    assert!(server.server.inject("alice", 0, EventBody::DeviceListUpdated(f::DeviceListUpdated { handle: "bob".into() })));
    settle(&mut [&mut alice]).await;
    let now = alice.now();
    alice.engine.send_text("bob", "must not reach the server's device", now).unwrap();
    alice.flush().await;
    for _ in 0..30 {
        alice.step(Duration::from_millis(20)).await;
    }
    assert!(!targets(&op, "alice", "bob").contains(&9), "the rogue device got no copy");
    assert!(alice.engine.contact("bob").unwrap().warning.is_some(), "alice is warned about bob's list");
}

/// Finding 11, companions: a companion signs its own entry once the
/// approval told it its handle and id, and the server serves that signature
/// beside the list. A list issued after the grace must carry it: a server
/// (or an account owner) that serves a companion entry without one, say
/// another account's keys under an unsigned entry, is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_companion_entry_must_carry_its_own_signature_once_the_list_is_older_than_the_grace() {
    let server = TestServer::start().await;
    let op = Operator::install(&server);
    let (mut alice, mut bob) = alice_and_bob(&server, "Bob", "Alice").await;
    let mut first = link_companion(&server, &mut bob, false).await;
    settle(&mut [&mut alice, &mut bob, &mut first]).await;
    let handed_in = op.requests_where(|p, r| *p == device("bob", 1) && matches!(r, Request::PublishEntrySignature(_)));
    assert_eq!(handed_in.len(), 1, "the companion handed in its signature once");

    // Later than the grace, bob links another device: a list whose first
    // companion's entry is unsigned in the body.
    server.clock.advance(tether_proto::device_list::COMPANION_SIGNATURE_GRACE_MS + 60_000);
    let mut second = link_companion(&server, &mut bob, false).await;
    settle(&mut [&mut alice, &mut bob, &mut first, &mut second]).await;

    // Honest: the signatures ride beside the list; alice reaches all three.
    let now = alice.now();
    alice.engine.send_text("bob", "to all of bob", now).unwrap();
    alice.flush().await;
    settle(&mut [&mut alice, &mut bob, &mut first, &mut second]).await;
    assert_eq!(targets(&op, "alice", "bob"), vec![0, 1, 2]);
    assert!(alice.engine.contact("bob").unwrap().warning.is_none());
    assert_eq!(texts(&first, "alice").last().unwrap().1, "to all of bob");

    // The server drops the signatures it attaches: alice refuses that list.
    op.on_send(|to, mut frame| {
        if *to == device("alice", 0) {
            if let Some(ServerBody::Response(r)) = &mut frame.body {
                if let Some(ResponseBody::DeviceList(l)) = &mut r.body {
                    if let Some(signed) = l.list.as_mut() {
                        signed.entry_signatures.clear();
                    }
                }
            }
        }
        Some(frame)
    });
    let now = alice.now();
    alice.engine.add_contact("bob", "Bob", now).unwrap(); // fetches bob's list again
    alice.flush().await;
    settle(&mut [&mut alice]).await;
    let warning = alice.engine.contact("bob").unwrap().warning.clone();
    assert!(warning.clone().is_some_and(|w| w.contains("does not prove")), "alice is warned: {warning:?}");
}
