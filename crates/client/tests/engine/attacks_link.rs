//! Attacks on linking by a malicious server or a stranger (issue 9,
//! findings 1, 3 (history replay) and 8).

use crate::adversary::{Operator, Peer, device};
use crate::harness::*;
use crate::linking::link_companion;
use tether_client::{Event, Role};
use tether_proto::frames::{self as f, EventBody, Request};
use tether_proto::pairing::{Pake, Side};

/// Starts linking by code on a new companion; returns it and its code.
async fn companion_showing_a_code(server: &TestServer) -> (Device, String) {
    let mut c = Device::new(server, "chrome/linux", "Chrome on Linux");
    let now = c.now();
    c.engine.start_link(&server.url(), true, now).unwrap();
    c.connect().await;
    settle(&mut [&mut c]).await;
    let code = c.events.iter().rev().find_map(|e| match e {
        Event::PairingCode { code } => Some(code.clone()),
        _ => None,
    });
    (c, code.expect("a pairing code is shown"))
}

/// Finding 1. The operator sees everything the pairing exchange sends, and
/// plays the primary itself with a guessed code: the companion refuses its
/// proof, reveals nothing (no link code leaves it), and shows a new code.
/// What the operator saw of the real code is only the slot and a SPAKE2
/// message, which does not let it test guesses offline: running the
/// exchange against that message with the right and a wrong code gives
/// keys that only the companion could tell apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_guessing_the_pairing_code_learns_nothing_and_links_nothing() {
    let server = TestServer::start().await;
    let op = Operator::install(&server);
    let mut mallory = primary(&server, "mallory").await;
    let (mut c, code) = companion_showing_a_code(&server).await;

    // Everything the companion put on the server for this code: the slot
    // and a 33-byte SPAKE2 message; not the code, no hash of it.
    let published: Vec<f::PairingPublish> = op
        .requests_where(|p, r| matches!(p, Peer::Guest { .. }) && matches!(r, Request::PairingPublish(_)))
        .into_iter()
        .filter_map(|(_, r)| match r {
            Request::PairingPublish(p) => Some(p),
            _ => None,
        })
        .collect();
    assert_eq!(published.len(), 1);
    let p = &published[0];
    assert_eq!(p.lookup, tether_proto::pairing::slot(&code).unwrap().to_vec(), "the slot is the code's first symbols");
    assert_eq!(p.payload.len(), tether_proto::pairing::PAKE_MESSAGE_LEN);
    assert!(!p.payload.windows(8).any(|w| w == code.replace('-', "").as_bytes()), "the code is not in the offer");

    // The operator guesses: it answers as a primary with a wrong code.
    let wrong = if code.ends_with('A') { format!("{}B", &code[..8]) } else { format!("{}A", &code[..8]) };
    let now = mallory.now();
    mallory.engine.link_with_code(&wrong, now).unwrap();
    mallory.flush().await;
    settle(&mut [&mut mallory, &mut c]).await;

    assert!(!mallory.events.iter().any(|e| matches!(e, Event::LinkRequest { .. })), "the guesser never gets the companion's link code");
    assert!(mallory.events.iter().any(|e| matches!(e, Event::Error { message, .. } if message.contains("did not match"))), "{:?}", mallory.events);
    let replies = op.requests_where(|p, r| matches!(p, Peer::Guest { .. }) && matches!(r, Request::PairingReply(_)));
    assert!(replies.iter().all(|(_, r)| matches!(r, Request::PairingReply(x) if x.payload.len() == 1)), "the companion only said no");
    let codes: Vec<_> = c.events.iter().filter(|e| matches!(e, Event::PairingCode { .. })).collect();
    assert_eq!(codes.len(), 2, "a new code replaces the guessed one");
    assert!(!c.events.iter().any(|e| matches!(e, Event::PairingMatched { .. })));

    // Offline, the operator cannot tell the right code from a wrong one:
    // both finish against the companion's message without error, giving
    // unrelated keys it has nothing to check against.
    let (right_side, _) = Pake::start(Side::Primary, &code, [7; 64]).unwrap();
    let (wrong_side, _) = Pake::start(Side::Primary, &wrong, [7; 64]).unwrap();
    assert!(right_side.finish(&p.payload).is_ok());
    assert!(wrong_side.finish(&p.payload).is_ok());
}

/// Linking by code end to end, with the operator watching: the
/// companion's link code travels only sealed, and both screens agree
/// (finding 1). Device names never reach the server: they are not in the
/// signed lists (finding 15), yet the primary still lists them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_link_code_behind_a_pairing_code_travels_sealed_and_device_names_stay_home() {
    let server = TestServer::start().await;
    let op = Operator::install(&server);
    let mut alice = primary(&server, "alice").await;
    let _companion = link_companion(&server, &mut alice, true).await;
    let all = format!("{:?}", op.requests.lock().unwrap());
    assert!(!all.contains("tether://"), "no link code in the clear anywhere");
    assert!(!all.contains("Chrome on Linux") && !all.contains("tether CLI on Linux"), "no device name reaches the server");
    let now = alice.now();
    alice.engine.request_devices(now).unwrap();
    alice.flush().await;
    settle(&mut [&mut alice]).await;
    let names = alice.events.iter().rev().find_map(|e| match e {
        Event::Devices { devices } => Some(devices.iter().map(|d| d.name.clone()).collect::<Vec<_>>()),
        _ => None,
    });
    assert_eq!(names.unwrap(), vec!["tether CLI on Linux".to_string(), "Chrome on Linux".to_string()], "the primary still knows them");
    let to_alice = op.events_to(&device("alice", 0));
    let sealed = to_alice.iter().find_map(|e| match e {
        EventBody::PairingAnswer(a) => Some(a.payload.clone()),
        _ => None,
    });
    let sealed = sealed.expect("the companion's sealed offer reached alice");
    assert!(!String::from_utf8_lossy(&sealed).contains("tether://"));
}

/// Finding 3. After linking, the server replays the first history chunk
/// (contacts and chats as they were) under a new message id: the
/// companion refuses it, so nothing rolls back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_history_chunk_is_refused() {
    let server = TestServer::start().await;
    let op = Operator::install(&server);
    let (mut alice, mut bob) = alice_and_bob(&server, "Bob", "Alice").await;
    let mut companion = link_companion(&server, &mut alice, false).await;
    settle(&mut [&mut alice, &mut bob, &mut companion]).await;
    assert_eq!(companion.engine.contact("bob").unwrap().name, "Bob");

    // The history alice sent the companion, as the server saw it.
    let history: Vec<f::Copy> = op
        .requests_where(|p, r| *p == device("alice", 0) && matches!(r, Request::Send(s) if s.copies.iter().all(|c| c.handle == "alice" && c.device_id == 1)))
        .into_iter()
        .filter_map(|(_, r)| match r {
            Request::Send(s) => s.copies.into_iter().next(),
            _ => None,
        })
        .collect();
    assert!(!history.is_empty(), "history went to the companion");

    // Later, the contact is renamed on the companion (synced or local).
    let now = companion.now();
    companion.engine.add_contact("bob", "Robert", now).unwrap();
    companion.flush().await;
    settle(&mut [&mut alice, &mut companion]).await;
    assert_eq!(companion.engine.contact("bob").unwrap().name, "Robert");

    // The replay: chunk 0 again, as a new envelope from alice's primary.
    let errors_before = companion.events.len();
    let replay = f::Envelope {
        envelope_id: 1_000_000,
        message_id: vec![0xee; 16],
        sender_handle: "alice".into(),
        sender_device: 0,
        ciphertext: history[0].ciphertext.clone(),
        server_time_ms: server.now(),
    };
    assert!(server.server.inject("alice", 1, EventBody::Envelope(replay)));
    settle(&mut [&mut companion]).await;
    assert_eq!(companion.engine.contact("bob").unwrap().name, "Robert", "the contact is not rolled back");
    let refused = companion.events[errors_before..].iter().any(|e| matches!(e, Event::Error { message, .. } if message.contains("history")));
    assert!(refused, "{:?}", &companion.events[errors_before..]);
}

/// Finding 8. Mallory sees the QR on a victim's screen first and links the
/// victim's browser into her own account. The browser asks "Linked to
/// @mallory: is this you?", applies nothing meanwhile, and on "no" leaves
/// mallory's account and wipes itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_linked_into_a_strangers_account_asks_first_and_can_refuse() {
    let server = TestServer::start().await;
    let mut mallory = primary(&server, "mallory").await;
    let mut bob = primary(&server, "bob").await;
    mallory.add_contact("bob", "Bob").await;
    settle(&mut [&mut mallory, &mut bob]).await;
    let now = mallory.now();
    mallory.engine.send_text("bob", "history the victim should never see", now).unwrap();
    mallory.flush().await;
    settle(&mut [&mut mallory, &mut bob]).await;

    let mut victim = Device::new(&server, "chrome/linux", "Chrome on Linux");
    let now = victim.now();
    victim.engine.start_link(&server.url(), false, now).unwrap();
    victim.connect().await;
    settle(&mut [&mut victim]).await;
    let uri = victim.events.iter().find_map(|e| match e {
        Event::LinkCode { uri, .. } => Some(uri.clone()),
        _ => None,
    });
    mallory.engine.link_from_uri(&uri.unwrap()).unwrap();
    let now = mallory.now();
    mallory.engine.confirm_link(now).unwrap();
    mallory.flush().await;
    settle(&mut [&mut mallory, &mut victim]).await;

    assert!(victim.events.iter().any(|e| matches!(e, Event::ConfirmAccount { handle } if handle == "mallory")), "{:?} {:?}", victim.events, mallory.events);
    assert_eq!(victim.engine.account_to_confirm(), Some("mallory"));
    assert!(victim.engine.chat_list().is_empty(), "nothing of mallory's is applied before the answer");
    assert!(!victim.events.iter().any(|e| matches!(e, Event::Linked { .. })));
    // Sending is inert too.
    let now = victim.now();
    let _ = victim.engine.send_text("bob", "must not go", now);
    victim.flush().await;
    settle(&mut [&mut mallory, &mut bob, &mut victim]).await;
    assert!(!texts(&bob, "mallory").iter().any(|(_, t)| t == "must not go"));

    let now = victim.now();
    victim.engine.confirm_account(false, now).unwrap();
    victim.flush().await;
    settle(&mut [&mut mallory, &mut victim]).await;
    assert!(matches!(victim.engine.role(), Role::Unlinked { .. }), "the browser left mallory's account");
    assert!(victim.engine.chat_list().is_empty());
    assert_eq!(mallory.engine.own_devices().into_iter().collect::<Vec<_>>(), vec![0], "mallory's account lost the device");
}
