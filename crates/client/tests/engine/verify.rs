//! Safety numbers (issue 9, finding 5): both sides compute the same number;
//! scanning the other side's code verifies; a server that serves another
//! account key is caught by the number, and a key change takes the
//! verified state away and holds sends until the user accepts it.

use crate::adversary::{Operator, device};
use crate::harness::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tether_client::{Comparison, Event};
use tether_proto::device_list::AccountKey;
use tether_proto::frames::{self as f, Request, ResponseBody, ServerBody};

/// Rewrites every list of `handle` that `to` gets so it carries (and is
/// signed by) `key`: a server presenting another account key as `handle`'s.
fn serve_key_for(op: &Operator, to: tether_server::adversary::Peer, handle: &'static str, key: AccountKey, on: Arc<AtomicBool>) {
    op.on_send(move |peer, mut frame| {
        if *peer != to || !on.load(Ordering::SeqCst) {
            return Some(frame);
        }
        let swap = |reply: &mut f::DeviceListReply| {
            if reply.handle != handle {
                return;
            }
            let Some(signed) = reply.list.as_ref() else { return };
            let list: f::DeviceList = prost::Message::decode(signed.body.as_slice()).unwrap();
            reply.account_key = key.public().to_vec();
            reply.list = Some(key.sign(&list));
        };
        if let Some(ServerBody::Response(r)) = &mut frame.body {
            if let Some(ResponseBody::DeviceList(l)) = &mut r.body {
                swap(l);
            }
            if let Some(e) = &mut r.error {
                e.device_lists.iter_mut().for_each(swap);
            }
        }
        Some(frame)
    });
}

/// Sends alice made with a copy for `handle`.
fn sends_to(op: &Operator, handle: &str) -> usize {
    op.requests_where(|p, r| *p == device("alice", 0) && matches!(r, Request::Send(s) if s.copies.iter().any(|c| c.handle == handle)))
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_sides_see_the_same_safety_number_and_scanning_the_others_code_verifies() {
    let server = TestServer::start().await;
    let (mut alice, mut bob) = alice_and_bob(&server, "Bob", "Alice").await;
    let a = alice.engine.safety_number("bob").unwrap();
    let b = bob.engine.safety_number("alice").unwrap();
    assert_eq!(a.number, b.number, "one number per pair");
    assert_eq!(a.number.len(), 71, "12 groups of 5 digits: {}", a.number);
    assert_ne!(a.qr, b.qr, "each side's code names itself first");
    assert!(!a.verified && !alice.engine.contact("bob").unwrap().verified);

    // Alice scans bob's screen; bob reads the digits and confirms.
    assert_eq!(alice.engine.verify_scanned("bob", &b.qr).unwrap(), Comparison::Match);
    assert_eq!(alice.engine.verify_scanned("bob", &a.qr).unwrap(), Comparison::WrongPair, "her own code is not his");
    bob.engine.mark_verified("alice").unwrap();
    alice.flush().await;
    bob.flush().await;
    assert!(alice.engine.safety_number("bob").unwrap().verified);
    assert!(bob.engine.contact("alice").unwrap().verified);
    assert!(alice.events.iter().any(|e| matches!(e, Event::ContactChanged { contact } if contact.handle == "bob" && contact.verified)));

    // The verified state is kept.
    alice.restart();
    assert!(alice.engine.contact("bob").unwrap().verified, "persisted");
}

/// The server pins a key of its own for bob in alice's first fetch (an
/// unverified contact cannot tell). Comparing safety numbers does: bob's
/// code is a mismatch and verifies nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_the_server_slipped_in_at_first_contact_shows_as_a_safety_number_mismatch() {
    let server = TestServer::start().await;
    let op = Operator::install(&server);
    let mut alice = primary(&server, "alice").await;
    let mut bob = primary(&server, "bob").await;
    serve_key_for(&op, device("alice", 0), "bob", AccountKey::from_seed(&[7; 32]), Arc::new(AtomicBool::new(true)));
    alice.add_contact("bob", "Bob").await;
    bob.add_contact("alice", "Alice").await;
    settle(&mut [&mut alice, &mut bob]).await;
    assert_eq!(alice.engine.contact("bob").unwrap().account_key, AccountKey::from_seed(&[7; 32]).public().to_vec(), "pinned blind");

    let a = alice.engine.safety_number("bob").unwrap();
    let b = bob.engine.safety_number("alice").unwrap();
    assert_ne!(a.number, b.number, "the numbers differ");
    assert_eq!(alice.engine.verify_scanned("bob", &b.qr).unwrap(), Comparison::Mismatch);
    assert_eq!(bob.engine.verify_scanned("alice", &a.qr).unwrap(), Comparison::Mismatch);
    assert!(!alice.engine.contact("bob").unwrap().verified && !bob.engine.contact("alice").unwrap().verified);
}

/// Alice verified bob; then the server serves a new account key for him
/// (a new phone, or an impersonator). Alice is warned, the verified state
/// is gone, nothing is encrypted to bob until she accepts the key, and the
/// accepted key is unverified with a new number.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_account_key_for_a_verified_contact_unverifies_and_holds_sends_until_accepted() {
    let server = TestServer::start().await;
    let op = Operator::install(&server);
    let (mut alice, mut bob) = alice_and_bob(&server, "Bob", "Alice").await;
    let before = alice.engine.safety_number("bob").unwrap();
    let theirs = bob.engine.safety_number("alice").unwrap();
    assert_eq!(alice.engine.verify_scanned("bob", &theirs.qr).unwrap(), Comparison::Match);
    alice.flush().await;

    // From now on the server presents another key as bob's.
    let on = Arc::new(AtomicBool::new(true));
    serve_key_for(&op, device("alice", 0), "bob", AccountKey::from_seed(&[8; 32]), on.clone());
    let now = alice.now();
    alice.engine.add_contact("bob", "", now).unwrap(); // fetches his list again
    alice.flush().await;
    settle(&mut [&mut alice, &mut bob]).await;
    let c = alice.engine.contact("bob").unwrap().clone();
    assert!(c.warning.as_deref().is_some_and(|w| w.contains("account key changed")), "{c:?}");
    assert!(!c.verified, "the verified state belonged to the old key");
    assert!(alice.events.iter().any(|e| matches!(e, Event::SafetyWarning { handle, .. } if handle == "bob")));
    assert!(alice.engine.safety_number("bob").is_err(), "no number until the key is accepted");
    assert!(alice.engine.mark_verified("bob").is_err(), "nor a verified mark");

    // A send is held back: nothing is encrypted to bob.
    let sent_before = sends_to(&op, "bob");
    let now = alice.now();
    alice.engine.send_text("bob", "held back", now).unwrap();
    alice.flush().await;
    for _ in 0..10 {
        alice.step(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(alice.engine.outbox_len(), 1, "the message waits");
    assert_eq!(sends_to(&op, "bob"), sent_before, "no copy for bob was made");

    // Alice accepts the new key: pinned, unverified, with a new number.
    let now = alice.now();
    alice.engine.trust_contact("bob", now).unwrap();
    alice.flush().await;
    for _ in 0..20 {
        alice.step(std::time::Duration::from_millis(20)).await;
    }
    let c = alice.engine.contact("bob").unwrap().clone();
    assert_eq!(c.account_key, AccountKey::from_seed(&[8; 32]).public().to_vec());
    assert!(c.warning.is_none() && !c.verified, "{c:?}");
    let after = alice.engine.safety_number("bob").unwrap();
    assert!(!after.verified);
    assert_ne!(after.number, before.number, "a new key has a new number");
    assert_eq!(alice.engine.verify_scanned("bob", &theirs.qr).unwrap(), Comparison::Mismatch, "bob's real code no longer matches");
    on.store(false, Ordering::SeqCst);
}

/// The key a warning is about is the key accepting pins: a server that
/// swaps in yet another key while the user checks (between the warning
/// and the acceptance) gets a new warning, not a silent pin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepting_a_new_key_pins_the_key_that_was_shown_not_whatever_the_server_sends_next() {
    let server = TestServer::start().await;
    let op = Operator::install(&server);
    let (mut alice, mut bob) = alice_and_bob(&server, "Bob", "Alice").await;
    let on = Arc::new(AtomicBool::new(true));
    serve_key_for(&op, device("alice", 0), "bob", AccountKey::from_seed(&[8; 32]), on.clone());
    let now = alice.now();
    alice.engine.add_contact("bob", "", now).unwrap();
    alice.flush().await;
    settle(&mut [&mut alice, &mut bob]).await;
    let c = alice.engine.contact("bob").unwrap().clone();
    assert!(c.warning.is_some());
    assert_eq!(c.offered_key, AccountKey::from_seed(&[8; 32]).public().to_vec(), "the key the warning is about");

    // The user checked key 8 with bob; the server now serves key 9.
    serve_key_for(&op, device("alice", 0), "bob", AccountKey::from_seed(&[9; 32]), on.clone());
    let now = alice.now();
    alice.engine.trust_contact("bob", now).unwrap();
    alice.flush().await;
    settle(&mut [&mut alice, &mut bob]).await;
    let c = alice.engine.contact("bob").unwrap().clone();
    assert_ne!(c.account_key, AccountKey::from_seed(&[9; 32]).public().to_vec(), "key 9 was never shown to the user: not pinned");
    assert!(c.warning.as_deref().is_some_and(|w| w.contains("account key changed")), "a new warning: {c:?}");
    assert_eq!(c.offered_key, AccountKey::from_seed(&[9; 32]).public().to_vec());
    assert!(alice.engine.safety_number("bob").is_err());
    on.store(false, Ordering::SeqCst);
}
