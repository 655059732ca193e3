//! Attacks on the engine by a malicious server, a stranger or a contact
//! (issue 9, findings 2, 9, 10, 11 and 12). Each test performs the attack
//! with real engines over a real (hooked) tether-server and passes only
//! because the engine stops it.

use crate::adversary::{Operator, device};
use crate::harness::*;
use std::time::Duration;
use tether_client::{Event, MessageBody, Role, Status};
use tether_proto::device_list::{AccountKey, PRIMARY_DEVICE};
use tether_proto::frames::{self as f, EventBody, Request, ResponseBody, ServerBody};

/// Lets every device run for `rounds` short steps (for engines that stay
/// busy on purpose, where `settle` would wait for them).
async fn run(devices: &mut [&mut Device], rounds: usize) {
    for _ in 0..rounds {
        for d in devices.iter_mut() {
            d.step(Duration::from_millis(10)).await;
        }
    }
}

async fn send(d: &mut Device, chat: &str, text: &str) -> String {
    let now = d.now();
    let id = d.engine.send_text(chat, text, now).unwrap();
    d.flush().await;
    id
}

/// The device ids `sender` encrypted to for `handle`, over all its sends.
fn copies_to(op: &Operator, sender: &str, handle: &str) -> Vec<u32> {
    op.requests_where(|p, r| p.device().is_some_and(|(h, _)| h == sender) && matches!(r, Request::Send(_)))
        .into_iter()
        .flat_map(|(_, r)| match r {
            Request::Send(s) => s.copies.into_iter().filter(|c| c.handle == handle).map(|c| c.device_id).collect::<Vec<_>>(),
            _ => vec![],
        })
        .collect()
}

// ------------------------------------------------------------- finding 2

/// Alice sent to dave, then to bob. Then dave (a contact) and carol (a
/// stranger) send many messages, dated a century ahead, later in server
/// time. The one-click targets stay the chats alice sent to, latest send
/// first: bob, then dave; carol is never one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_chat_is_the_one_the_user_last_sent_to_whatever_others_send() {
    let server = TestServer::start().await;
    let (mut alice, mut bob) = alice_and_bob(&server, "Bob", "Alice").await;
    let mut dave = primary(&server, "dave").await;
    let mut carol = primary(&server, "carol").await;
    alice.add_contact("dave", "Dave").await;
    dave.add_contact("alice", "").await;
    carol.add_contact("alice", "").await;
    settle(&mut [&mut alice, &mut bob, &mut dave, &mut carol]).await;

    send(&mut alice, "dave", "hi dave").await;
    settle(&mut [&mut alice, &mut dave]).await;
    server.clock.advance(1_000);
    send(&mut alice, "bob", "hi bob").await;
    settle(&mut [&mut alice, &mut bob]).await;
    let first = |d: &Device| d.engine.recent_chats(5).into_iter().map(|c| c.handle).collect::<Vec<_>>();
    assert_eq!(first(&alice), ["bob", "dave"]);

    let century = 100 * 365 * 24 * 3600 * 1000;
    for i in 0..5 {
        server.clock.advance(1_000);
        for d in [&mut dave, &mut carol] {
            let now = d.now() + century;
            d.engine.send_text("alice", &format!("look at me {i}"), now).unwrap();
            d.flush().await;
        }
        settle(&mut [&mut alice, &mut dave, &mut carol]).await;
    }
    let requests = alice.engine.message_requests();
    assert_eq!((requests[0].handle.as_str(), requests[0].count), ("carol", 5), "the stranger's messages wait as one request");
    assert!(alice.engine.messages("dave").iter().all(|m| m.time_ms <= server.now()), "their dates are clamped to the server's");
    assert_eq!(alice.engine.chat_list()[0].handle, "dave", "the chat list shows the newest first");
    assert_eq!(first(&alice), ["bob", "dave"], "one-click targets: only alice's own sends order them");
    assert_eq!(alice.engine.recent_chats(1)[0].handle, "bob", "the last chat is the one alice last sent to");

    // Alice's own send moves a chat up, and a restart keeps the rule.
    send(&mut alice, "dave", "ok dave").await;
    settle(&mut [&mut alice, &mut dave]).await;
    alice.restart();
    assert_eq!(first(&alice), ["dave", "bob"]);
}

// ------------------------------------------------------------- finding 9

/// The server tells a primary it was removed: it keeps its account key,
/// contacts and chats, and says what happened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_removed_close_never_wipes_a_primary() {
    let server = TestServer::start().await;
    let (mut alice, mut bob) = alice_and_bob(&server, "Bob", "Alice").await;
    send(&mut alice, "bob", "before").await;
    settle(&mut [&mut alice, &mut bob]).await;
    let role = alice.engine.role().clone();

    let closing = f::ErrorInfo { code: "device_removed".into(), message: "removed".into(), device_lists: vec![], ..Default::default() };
    assert!(server.server.inject("alice", 0, EventBody::Closing(closing)));
    run(&mut [&mut alice], 20).await;

    assert_eq!(alice.engine.role(), &role, "the account key is kept");
    assert!(matches!(alice.engine.role(), Role::Primary { .. }));
    assert_eq!(texts(&alice, "bob"), [(true, "before".to_string())], "chats are kept");
    assert!(alice.engine.contact("bob").is_some(), "contacts are kept");
    assert!(!alice.events.iter().any(|e| matches!(e, Event::Unlinked { .. })), "{:?}", alice.events);
    assert!(
        alice.events.iter().any(|e| matches!(e, Event::Error { code: Some(tether_proto::ErrorCode::DeviceRemoved), .. })),
        "the user is told: {:?}",
        alice.events
    );
    alice.restart();
    assert!(matches!(alice.engine.role(), Role::Primary { .. }), "and still after a restart");
}

// ------------------------------------------------------------ finding 10

/// The server hands alice a one-time key of its own (under bob's real
/// signature) for bob's device: no session is made, nothing is encrypted
/// to bob, the message waits and alice is told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_time_key_the_device_did_not_sign_starts_no_session() {
    let server = TestServer::start().await;
    let op = Operator::install(&server);
    let (mut alice, mut bob) = alice_and_bob(&server, "Bob", "Alice").await;
    let mut servers_own = vodozemac::olm::Account::new();
    servers_own.generate_one_time_keys(1);
    let fake = servers_own.one_time_keys().values().next().unwrap().to_bytes().to_vec();
    op.on_send(move |to, mut frame| {
        if *to == device("alice", 0) {
            if let Some(ServerBody::Response(r)) = &mut frame.body {
                if let Some(ResponseBody::Prekey(b)) = &mut r.body {
                    if let Some(k) = b.key.as_mut() {
                        k.key = fake.clone(); // bob's signature stays: it does not cover this key
                    }
                }
            }
        }
        Some(frame)
    });
    send(&mut alice, "bob", "not for the server's key").await;
    run(&mut [&mut alice, &mut bob], 40).await;

    assert!(!op.requests_where(|p, r| *p == device("alice", 0) && matches!(r, Request::ClaimPrekey(_))).is_empty(), "alice claimed a key");
    assert!(copies_to(&op, "alice", "bob").is_empty(), "nothing was encrypted to the server's key");
    assert_eq!(alice.engine.outbox_len(), 1, "the message waits");
    assert!(
        alice.events.iter().any(|e| matches!(e, Event::Error { message, .. } if message.contains("did not sign"))),
        "alice is told: {:?}",
        alice.events
    );
    assert!(texts(&bob, "alice").is_empty());

    // The server turns honest: the message goes, to a key bob signed.
    op.honest();
    let now = alice.now() + 60_000;
    alice.engine.handle_timeout(now);
    alice.flush().await;
    settle(&mut [&mut alice, &mut bob]).await;
    assert_eq!(texts(&bob, "alice"), [(false, "not for the server's key".to_string())]);
}

// ------------------------------------------------------------ finding 11

/// Mallory's primary (signing with mallory's own account key) and a
/// rewrite of his list as the server serves it to alice: `edit` changes
/// the list, which is then signed with mallory's key.
fn serve_mallorys_list_as(op: &Operator, mallory: &Device, edit: impl Fn(&mut f::DeviceList) + Send + 'static) {
    let Role::Primary { account_seed, .. } = mallory.engine.role() else { panic!("mallory is a primary") };
    let key = AccountKey::from_seed(&<[u8; 32]>::try_from(account_seed.as_slice()).unwrap());
    op.on_send(move |to, mut frame| {
        if *to == device("alice", 0) {
            if let Some(ServerBody::Response(r)) = &mut frame.body {
                if let Some(ResponseBody::DeviceList(reply)) = &mut r.body {
                    if reply.handle == "mallory" {
                        let signed = reply.list.as_ref().unwrap();
                        let mut list: f::DeviceList = prost::Message::decode(signed.body.as_slice()).unwrap();
                        edit(&mut list);
                        reply.list = Some(key.sign(&list));
                    }
                }
            }
        }
        Some(frame)
    });
}

/// Bob's device 0 as his signed list has it.
fn bobs_entry(op: &Operator) -> f::DeviceEntry {
    let sent = op.sent.lock().unwrap();
    sent.iter()
        .find_map(|(_, fr)| match &fr.body {
            Some(ServerBody::Response(f::Response { body: Some(ResponseBody::DeviceList(l)), .. })) if l.handle == "bob" => {
                let list: f::DeviceList = prost::Message::decode(l.list.as_ref()?.body.as_slice()).ok()?;
                list.devices.into_iter().find(|d| d.device_id == PRIMARY_DEVICE)
            }
            _ => None,
        })
        .expect("bob's list was served")
}

/// Mallory's account (its own key signs) lists bob's device — keys and
/// self-signature copied — as mallory/1. Alice refuses the list: the entry
/// does not prove it belongs to mallory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_entry_with_another_accounts_keys_is_refused() {
    let server = TestServer::start().await;
    let op = Operator::install(&server);
    let (mut alice, _bob) = alice_and_bob(&server, "Bob", "Alice").await;
    let mallory = primary(&server, "mallory").await;
    let bobs = bobs_entry(&op);
    serve_mallorys_list_as(&op, &mallory, move |list| {
        list.devices.push(f::DeviceEntry { device_id: 1, ..bobs.clone() });
        list.version += 1;
    });
    alice.add_contact("mallory", "Mallory").await;
    run(&mut [&mut alice], 20).await;
    let warning = alice.engine.contact("mallory").unwrap().warning.clone();
    assert!(warning.as_deref().is_some_and(|w| w.contains("does not prove")), "refused: {warning:?}");
    assert!(alice.engine.contact("mallory").unwrap().list.is_empty(), "the list is not kept");
}

/// Mallory lists bob's identity key as mallory/1 (without a self-signature,
/// which a companion entry may still lack), and the server relabels bob's
/// reply to alice as sent by mallory/1. Alice's session with bob/0 is never
/// used for mallory/1: the message is not shown as mallory's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_with_bob_is_never_used_for_another_device_with_his_key() {
    let server = TestServer::start().await;
    let op = Operator::install(&server);
    let (mut alice, mut bob) = alice_and_bob(&server, "Bob", "Alice").await;
    let mallory = primary(&server, "mallory").await;
    let bobs = bobs_entry(&op);
    serve_mallorys_list_as(&op, &mallory, move |list| {
        list.devices.push(f::DeviceEntry { device_id: 1, self_signature: vec![], ..bobs.clone() });
        list.version += 1;
    });
    alice.add_contact("mallory", "Mallory").await;
    settle(&mut [&mut alice]).await;
    assert!(alice.engine.contact("mallory").unwrap().warning.is_none(), "the list (with an unsigned companion entry) was taken");

    // Alice and bob talk: sessions both ways.
    send(&mut alice, "bob", "hi bob").await;
    settle(&mut [&mut alice, &mut bob]).await;
    assert_eq!(texts(&bob, "alice"), [(false, "hi bob".to_string())]);

    // The server delivers bob's reply to alice as if mallory/1 sent it.
    op.on_send(|to, mut frame| {
        if *to == device("alice", 0) {
            if let Some(ServerBody::Event(f::Event { body: Some(EventBody::Envelope(e)) })) = &mut frame.body {
                if e.sender_handle == "bob" {
                    e.sender_handle = "mallory".into();
                    e.sender_device = 1;
                }
            }
        }
        Some(frame)
    });
    send(&mut bob, "alice", "secret from bob").await;
    run(&mut [&mut alice, &mut bob], 40).await;

    let shown: Vec<_> = ["mallory", "bob"].iter().flat_map(|c| texts(&alice, c)).collect();
    assert!(!shown.iter().any(|(_, t)| t == "secret from bob"), "bob's message is never shown as mallory's: {shown:?}");
    let from_mallory = alice.engine.messages("mallory");
    assert!(from_mallory.iter().all(|m| matches!(m.body, MessageBody::Undecryptable { .. })), "{from_mallory:?}");
}

// ------------------------------------------------------------ finding 12

/// Bob sends a read receipt for the id of a message alice sent to carol
/// (the server gave bob's copy of another message that id): alice's
/// message to carol does not change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_from_bob_never_changes_a_message_in_another_chat() {
    let server = TestServer::start().await;
    let op = Operator::install(&server);
    let (mut alice, mut bob) = alice_and_bob(&server, "Bob", "Alice").await;
    let mut carol = primary(&server, "carol").await;
    alice.add_contact("carol", "Carol").await;
    carol.add_contact("alice", "").await;
    settle(&mut [&mut alice, &mut bob, &mut carol]).await;
    let to_carol = send(&mut alice, "carol", "for carol only").await;
    settle(&mut [&mut alice, &mut carol]).await;
    let status = |a: &Device| a.engine.messages("carol").iter().find(|m| m.id == to_carol).unwrap().status;
    assert_eq!(status(&alice), Status::Delivered, "carol's device has it; carol has not read it");

    // Bob's copy of alice's next message carries the id of the one to carol.
    let id: Vec<u8> = (0..16).map(|i| u8::from_str_radix(&to_carol[2 * i..2 * i + 2], 16).unwrap()).collect();
    op.on_send(move |to, mut frame| {
        if *to == device("bob", 0) {
            if let Some(ServerBody::Event(f::Event { body: Some(EventBody::Envelope(e)) })) = &mut frame.body {
                e.message_id = id.clone();
            }
        }
        Some(frame)
    });
    send(&mut alice, "bob", "for bob").await;
    settle(&mut [&mut alice, &mut bob]).await;
    let now = bob.now();
    bob.engine.mark_read("alice", now).unwrap(); // a read receipt for that id
    bob.flush().await;
    settle(&mut [&mut alice, &mut bob]).await;
    assert!(bob.engine.messages("alice").iter().any(|m| m.id == to_carol), "bob holds a message under that id");

    assert_eq!(status(&alice), Status::Delivered, "alice's message to carol is not marked read by bob");
    assert!(
        !alice.events.iter().any(|e| matches!(e, Event::MessageStatus { chat, status: Status::Read, .. } if chat == "carol")),
        "{:?}",
        alice.events
    );
}
