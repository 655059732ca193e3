use crate::harness::*;
use tether_client::store::KvStore;
use tether_client::{Event, Role};

/// Links a companion to `primary` by QR payload; returns it connected.
pub async fn link_companion(server: &TestServer, primary: &mut Device, with_code: bool) -> Device {
    link_device(server, primary, with_code, Device::new(server, "chrome/linux", "Chrome on Linux")).await
}

/// Links a companion whose store keeps history apart, as the browser's does.
pub async fn link_lazy_companion(server: &TestServer, primary: &mut Device) -> Device {
    link_device(server, primary, false, Device::new_lazy(server, "chrome/linux", "Chrome on Linux")).await
}

async fn link_device(server: &TestServer, primary: &mut Device, with_code: bool, mut c: Device) -> Device {
    let now = c.now();
    c.engine.start_link(&server.url(), with_code, now).unwrap();
    c.connect().await;
    settle(&mut [&mut c]).await;
    let uri = c.events.iter().find_map(|e| match e {
        Event::LinkCode { uri, .. } => Some(uri.clone()),
        _ => None,
    });
    let uri = uri.expect("a link code is shown");
    assert!(uri.starts_with("tether://link#"));
    if with_code {
        let code = c.events.iter().find_map(|e| match e {
            Event::PairingCode { code } => Some(code.clone()),
            _ => None,
        });
        let code = code.expect("a pairing code is shown");
        assert_eq!(code.len(), 9);
        let now = primary.now();
        primary.engine.link_with_code(&code.to_lowercase(), now).unwrap();
        primary.flush().await;
        settle(&mut [&mut *primary, &mut c]).await;
    } else {
        primary.engine.link_from_uri(&uri).unwrap();
        primary.flush().await;
    }
    let asked = primary.events.iter().find_map(|e| match e {
        Event::LinkRequest { platform, name, confirmation } if platform == "chrome/linux" && name == "Chrome on Linux" => Some(confirmation.clone()),
        _ => None,
    });
    let confirmation = asked.expect("the primary is asked to confirm");
    // By code, both screens show the same confirmation digits.
    let shown = c.events.iter().find_map(|e| match e {
        Event::PairingMatched { confirmation } => Some(confirmation.clone()),
        _ => None,
    });
    assert_eq!(confirmation, shown, "the same confirmation on both screens (none for a QR)");
    let now = primary.now();
    primary.engine.confirm_link(now).unwrap();
    primary.flush().await;
    settle(&mut [&mut *primary, &mut c]).await;
    // "Linked to @handle: is this you?" The companion is inert until then.
    let handle = primary.engine.handle().unwrap().to_string();
    assert!(c.events.iter().any(|e| matches!(e, Event::ConfirmAccount { handle: h } if *h == handle)), "the companion asks: {:?}", c.events);
    assert!(!c.events.iter().any(|e| matches!(e, Event::Linked { .. } | Event::HistoryImported { .. })), "nothing applied before the answer");
    assert_eq!(c.engine.account_to_confirm(), Some(handle.as_str()));
    let now = c.now();
    c.engine.confirm_account(true, now).unwrap();
    c.flush().await;
    settle(&mut [&mut *primary, &mut c]).await;
    assert!(c.events.iter().any(|e| matches!(e, Event::Linked { .. })), "the companion is linked");
    assert_eq!(c.engine.account_to_confirm(), None);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_companion_gets_90_days_of_history_and_contacts_then_new_messages_both_ways() {
    let server = TestServer::start().await;
    let (mut alice, mut bob) = alice_and_bob(&server, "Bobby", "").await;
    let now = alice.now();
    // An old message (100 days ago) and recent ones.
    alice.engine.send_text("bob", "too old to sync", now).unwrap();
    alice.flush().await;
    settle(&mut [&mut alice, &mut bob]).await;
    server.clock.advance(100 * 24 * 3600 * 1000);
    for i in 0..30 {
        let now = alice.now() + i;
        alice.engine.send_text("bob", &format!("recent {i}"), now).unwrap();
        alice.flush().await;
    }
    server.clock.advance(100); // later than what came before, by the server's clock
    let now = bob.now();
    bob.engine.send_text("alice", "from bob", now).unwrap();
    bob.flush().await;
    settle(&mut [&mut alice, &mut bob]).await;

    let mut companion = link_companion(&server, &mut alice, false).await;
    settle(&mut [&mut alice, &mut bob, &mut companion]).await;
    assert!(matches!(companion.engine.role(), Role::Companion { device_id: 1, .. }));
    let history = texts(&companion, "bob");
    assert_eq!(history.len(), 31, "30 recent of alice's and bob's one; the 100-day-old one stays home");
    assert!(history.iter().all(|(_, t)| t != "too old to sync"));
    assert_eq!(companion.engine.contact("bob").unwrap().name, "Bobby", "contacts came along");

    // New messages reach the companion too, and what it sends reaches bob and alice's primary.
    server.clock.advance(200); // later than what came before, by the server's clock
    let now = bob.now();
    bob.engine.send_text("alice", "hello all your devices", now).unwrap();
    bob.flush().await;
    settle(&mut [&mut alice, &mut bob, &mut companion]).await;
    assert_eq!(texts(&companion, "bob").last().unwrap().1, "hello all your devices");
    assert_eq!(texts(&alice, "bob").last().unwrap().1, "hello all your devices");

    server.clock.advance(300); // later than what came before, by the server's clock
    let now = companion.now();
    companion.engine.send_text("bob", "sent from the browser", now).unwrap();
    companion.flush().await;
    settle(&mut [&mut alice, &mut bob, &mut companion]).await;
    assert_eq!(texts(&bob, "alice").last().unwrap(), &(false, "sent from the browser".to_string()));
    assert_eq!(texts(&alice, "bob").last().unwrap(), &(true, "sent from the browser".to_string()), "the primary shows it as sent");

    // Read on the companion: the primary's unread count follows (read-sync).
    assert!(alice.engine.chat("bob").unwrap().unread > 0);
    server.clock.advance(400); // later than what came before, by the server's clock
    let now = companion.now();
    companion.engine.mark_read("bob", now).unwrap();
    companion.flush().await;
    settle(&mut [&mut alice, &mut bob, &mut companion]).await;
    assert_eq!(alice.engine.chat("bob").unwrap().unread, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linking_by_pairing_code_works_too() {
    let server = TestServer::start().await;
    let mut alice = primary(&server, "alice").await;
    let companion = link_companion(&server, &mut alice, true).await;
    assert!(matches!(companion.engine.role(), Role::Companion { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_companion_gets_nothing_more_and_ends_unlinked_with_the_reason() {
    let server = TestServer::start().await;
    let mut alice = primary(&server, "alice").await;
    let mut bob = primary(&server, "bob").await;
    bob.add_contact("alice", "").await;
    alice.add_contact("bob", "").await; // else bob's message is a message request
    let mut companion = link_companion(&server, &mut alice, false).await;
    settle(&mut [&mut alice, &mut bob, &mut companion]).await;
    assert_eq!(alice.engine.own_devices().into_iter().collect::<Vec<_>>(), vec![0, 1]);

    let now = alice.now();
    alice.engine.remove_device(1, now).unwrap();
    alice.flush().await;
    settle(&mut [&mut alice, &mut companion]).await;
    assert!(alice.events.iter().any(|e| matches!(e, Event::DeviceRemoved { device_id: 1 })));
    let reason = companion.events.iter().find_map(|e| match e {
        Event::Unlinked { reason } => Some(reason.clone()),
        _ => None,
    });
    assert!(reason.expect("the companion is told").contains("logged out"));
    assert!(matches!(companion.engine.role(), Role::Unlinked { reason: Some(_) }));
    assert!(companion.engine.chats().is_empty(), "local data is wiped");
    let store = companion.store.0.lock().unwrap();
    assert!(store.scan("messages").unwrap().is_empty() && store.scan("contacts").unwrap().is_empty());
    drop(store);

    // Bob's next message is not encrypted to the removed device.
    let now = bob.now();
    bob.engine.send_text("alice", "after removal", now).unwrap();
    bob.flush().await;
    settle(&mut [&mut alice, &mut bob]).await;
    assert_eq!(bob.engine.outbox_len(), 0, "sent (the server accepted a fan-out without device 1)");
    assert_eq!(texts(&alice, "bob").last().unwrap().1, "after removal");
}
