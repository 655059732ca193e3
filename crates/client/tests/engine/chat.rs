use crate::harness::*;
use tether_client::{Event, Status};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_accounts_chat_both_ways_online_and_offline_with_receipts_and_unread_counts() {
    let server = TestServer::start().await;
    let (mut alice, mut bob) = alice_and_bob(&server, "Bob", "Alice").await;
    let now = alice.now();
    assert!(alice.engine.contact("bob").unwrap().warning.is_none());

    // Online, both ways.
    let id = alice.engine.send_text("bob", "hi bob, marker-1f3a", now).unwrap();
    alice.flush().await;
    settle(&mut [&mut alice, &mut bob]).await;
    assert_eq!(texts(&bob, "alice"), vec![(false, "hi bob, marker-1f3a".to_string())]);
    assert_eq!(bob.engine.chat("alice").unwrap().unread, 1);
    let mine = &alice.engine.messages("bob")[0];
    assert_eq!((mine.id.as_str(), mine.status), (id.as_str(), Status::Delivered), "delivered receipt arrived");

    server.clock.advance(10); // a later message than alice's (same-millisecond order is arbitrary)
    bob.engine.send_link("alice", "https://example.org/a", "A page", "some text", None, bob.now()).unwrap();
    bob.flush().await;
    settle(&mut [&mut alice, &mut bob]).await;
    assert_eq!(texts(&alice, "bob"), vec![(true, "hi bob, marker-1f3a".into()), (false, "https://example.org/a".into())]);

    // Bob reads: alice's message turns read, bob's unread clears.
    server.clock.advance(1000);
    let now = bob.now();
    bob.engine.mark_read("alice", now).unwrap();
    bob.flush().await;
    settle(&mut [&mut alice, &mut bob]).await;
    assert_eq!(bob.engine.chat("alice").unwrap().unread, 0);
    assert_eq!(alice.engine.messages("bob")[0].status, Status::Read);

    // Offline: bob is away while alice sends three; they arrive in order.
    bob.disconnect();
    for (i, t) in ["one", "two", "three"].iter().enumerate() {
        server.clock.advance(10);
        let now = alice.now();
        alice.engine.send_text("bob", t, now + i as u64).unwrap();
        alice.flush().await;
    }
    settle(&mut [&mut alice]).await;
    assert_eq!(alice.engine.outbox_len(), 0, "the server accepted all three while bob was away");
    bob.connect().await;
    settle(&mut [&mut alice, &mut bob]).await;
    let got: Vec<String> = texts(&bob, "alice").into_iter().map(|(_, t)| t).collect();
    assert_eq!(&got[got.len() - 3..], ["one", "two", "three"]);
    assert_eq!(bob.engine.chat("alice").unwrap().unread, 3);
    assert_eq!(bob.engine.unread_unmuted(), 3);
    let now = bob.now();
    bob.engine.set_chat_flags("alice", true, false, true, now).unwrap();
    assert_eq!(bob.engine.unread_unmuted(), 0, "muted chats do not count");

    // Nothing was stored in plaintext by the server.
    let db = std::fs::read(server.dir.path().join("tether.db")).unwrap();
    let wal = std::fs::read(server.dir.path().join("tether.db-wal")).unwrap_or_default();
    for needle in [b"marker-1f3a".as_slice(), b"example.org", b"three"] {
        assert!(!db.windows(needle.len()).any(|w| w == needle), "plaintext in the server's database");
        assert!(!wal.windows(needle.len()).any(|w| w == needle), "plaintext in the server's WAL");
    }
    assert!(bob.events.iter().any(|e| matches!(e, Event::Message { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_survives_a_restart_and_is_sent_on_reconnect() {
    let server = TestServer::start().await;
    let mut bob = primary(&server, "bob").await;
    let mut alice = primary(&server, "alice").await;
    alice.add_contact("bob", "").await;
    bob.add_contact("alice", "").await; // else alice's message is a message request
    settle(&mut [&mut alice]).await;
    let now = alice.now();
    alice.disconnect();
    // Written while offline: it waits in the outbox, and survives a restart.
    alice.engine.send_text("bob", "sent later", now).unwrap();
    assert_eq!(alice.engine.outbox_len(), 1);
    alice.restart();
    assert_eq!(alice.engine.outbox_len(), 1);
    assert_eq!(texts(&alice, "bob"), vec![(true, "sent later".to_string())], "history survives too");
    alice.connect().await;
    settle(&mut [&mut alice, &mut bob]).await;
    assert_eq!(texts(&bob, "alice"), vec![(false, "sent later".to_string())]);
}

/// Messages written during an outage go, and show, in the order they were
/// written: not in the order of their random ids (the outbox used to be
/// resent in key order), even when they share a millisecond.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_is_resent_in_send_order_after_an_outage() {
    let server = TestServer::start().await;
    let (mut alice, mut bob) = alice_and_bob(&server, "Bob", "Alice").await;
    alice.engine.send_text("bob", "before", alice.now()).unwrap();
    alice.flush().await;
    settle(&mut [&mut alice, &mut bob]).await;

    alice.disconnect();
    server.clock.advance(1000);
    let now = alice.now();
    let sent: Vec<String> = (0..30).map(|i| format!("queued {i:02}")).collect();
    let mut ids = Vec::new();
    for (i, t) in sent.iter().enumerate() {
        // Ten share each millisecond.
        ids.push(alice.engine.send_text("bob", t, now + i as u64 / 10).unwrap());
    }
    let mut by_id = ids.clone();
    by_id.sort();
    assert_ne!(by_id, ids, "random ids: key order differs from send order");
    alice.restart(); // and the outage outlives the process
    assert_eq!(alice.engine.outbox_len(), 30);
    alice.connect().await;
    settle(&mut [&mut alice, &mut bob]).await;
    assert_eq!(alice.engine.outbox_len(), 0);
    let live: Vec<String> = bob.events.iter().filter_map(|e| match e {
        tether_client::Event::Message { message } => match &message.body {
            tether_client::MessageBody::Text { body } if body.starts_with("queued") => Some(body.clone()),
            _ => None,
        },
        _ => None,
    }).collect();
    assert_eq!(live, sent, "the recipient's live stream is in send order");
    let shown: Vec<String> = texts(&bob, "alice").into_iter().map(|(_, t)| t).filter(|t| t.starts_with("queued")).collect();
    assert_eq!(shown, sent, "and so is the chat");
    bob.restart();
    let reloaded: Vec<String> = texts(&bob, "alice").into_iter().map(|(_, t)| t).filter(|t| t.starts_with("queued")).collect();
    assert_eq!(reloaded, sent, "and so it stays after a restart");
}

/// A sender's clock cannot date a message into the future: it would stay
/// the newest of the chat (and the chat the top of every list) for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_dated_in_the_future_takes_the_servers_time() {
    let server = TestServer::start().await;
    let (mut alice, mut bob) = alice_and_bob(&server, "Bob", "Alice").await;
    let year_2100 = 4_102_444_800_000;
    bob.engine.send_text("alice", "from the future", year_2100).unwrap();
    bob.flush().await;
    settle(&mut [&mut alice, &mut bob]).await;
    let m = alice.engine.messages("bob").last().unwrap().clone();
    assert!(matches!(&m.body, tether_client::MessageBody::Text { body } if body == "from the future"));
    assert!(m.time_ms <= alice.now(), "dated {} (server time {})", m.time_ms, alice.now());
    assert!(alice.engine.chat("bob").unwrap().last_ms <= alice.now());
}

/// Several sends in flight when the contact's list grows (a companion
/// linked a moment ago) are each refused with the same new list: that is
/// not the server insisting on devices no signed list has, so no safety
/// warning, and every message reaches the new device.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_in_flight_when_a_contact_links_a_device_raise_no_safety_warning() {
    let server = TestServer::start().await;
    let (mut alice, mut bob) = alice_and_bob(&server, "Bob", "Alice").await;
    let mut alice2 = crate::linking::link_companion(&server, &mut alice, false).await;
    // Bob still holds alice's old list: five sends go at once.
    for i in 0..5 {
        let now = bob.now();
        bob.engine.send_text("alice", &format!("quick {i}"), now + i).unwrap();
    }
    bob.flush().await;
    settle(&mut [&mut alice, &mut alice2, &mut bob]).await;
    let warnings: Vec<_> = bob.events.iter().filter(|e| matches!(e, Event::SafetyWarning { .. })).collect();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(bob.engine.contact("alice").unwrap().warning.is_none());
    assert_eq!(texts(&alice2, "bob").len(), 5, "the new device got them all");
}
