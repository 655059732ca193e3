//! Message requests (issue 9, finding 7): a stranger's flood lands in one
//! request entry with no notification; block silences it for good; accept
//! turns it into a chat, and answers reach the account's other devices.

use crate::harness::*;
use crate::linking::link_companion;
use tether_client::{Event, KEPT_PER_REQUEST, Standing, Status};

const FLOOD: usize = 200;

fn notifications(d: &Device) -> usize {
    d.events.iter().filter(|e| matches!(e, Event::Notify { .. })).count()
}

/// A stranger (mallory) who knows bob's handle and writes to him; bob never
/// added mallory.
async fn bob_and_a_stranger(server: &TestServer) -> (Device, Device) {
    let mut bob = primary(server, "bob").await;
    let mut mallory = primary(server, "mallory").await;
    mallory.add_contact("bob", "").await;
    settle(&mut [&mut bob, &mut mallory]).await;
    (bob, mallory)
}

async fn send_many(from: &mut Device, to: &str, n: usize, tag: &str, others: &mut Device) {
    for i in 0..n {
        from.clock.advance(10);
        let now = from.now();
        from.engine.send_text(to, &format!("{tag} {i}"), now).unwrap();
        from.flush().await;
        if i % 20 == 19 {
            settle(&mut [from, others]).await;
        }
    }
    settle(&mut [from, others]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_from_a_stranger_is_one_silent_request_and_block_drops_the_rest() {
    let server = TestServer::start().await;
    let (mut bob, mut mallory) = bob_and_a_stranger(&server).await;
    bob.take_events();

    send_many(&mut mallory, "bob", FLOOD, "buy now", &mut bob).await;

    let requests = bob.engine.message_requests();
    let filed = bob.events.iter().filter(|e| matches!(e, Event::Request { .. })).count();
    println!(
        "flood: {FLOOD} messages sent, {} notifications, {} request entries (count {}), {filed} request events",
        notifications(&bob),
        requests.len(),
        requests[0].count
    );
    assert_eq!(notifications(&bob), 0, "no notification for a stranger");
    assert!(bob.engine.notifications_owed().is_empty());
    assert_eq!(requests.len(), 1, "one entry per sender");
    assert_eq!(requests[0].handle, "mallory");
    assert_eq!(requests[0].count as usize, FLOOD);
    assert_eq!(requests[0].first_preview, "buy now 0");
    assert_eq!(bob.engine.request_messages("mallory").len(), KEPT_PER_REQUEST, "only the first few are kept");
    assert!(bob.engine.chat_list().is_empty(), "nothing in the chat list");
    assert_eq!(bob.engine.unread_unmuted(), 0, "no badge count");
    assert!(bob.engine.messages("mallory").is_empty());
    // Nothing told mallory that bob's device has them: no delivery receipts.
    assert!(mallory.engine.messages("bob").iter().all(|m| m.status == Status::Sent), "no receipt reaches a requester");

    // Block: the request goes; more messages add nothing, across a restart.
    let now = bob.now();
    bob.engine.block("mallory", now).unwrap();
    bob.flush().await;
    assert!(bob.engine.message_requests().is_empty());
    bob.restart();
    bob.connect().await;
    settle(&mut [&mut bob]).await;
    assert_eq!(bob.engine.blocked_list().len(), 1, "the block is persisted");
    bob.take_events();
    send_many(&mut mallory, "bob", 20, "more", &mut bob).await;
    assert!(bob.engine.message_requests().is_empty(), "a blocked sender opens no request");
    assert!(bob.engine.chat_list().is_empty());
    assert_eq!(notifications(&bob), 0);
    assert!(
        bob.events
            .iter()
            .all(|e| !matches!(e, Event::Request { .. } | Event::Message { .. } | Event::ChatChanged { .. })),
        "nothing at all: {:?}",
        bob.events
    );

    // Unblock: the next message is a new request again.
    let now = bob.now();
    bob.engine.unblock("mallory", now).unwrap();
    bob.flush().await;
    send_many(&mut mallory, "bob", 1, "sorry", &mut bob).await;
    let requests = bob.engine.message_requests();
    assert_eq!((requests.len(), requests[0].count), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepting_a_request_makes_a_chat_and_later_messages_notify() {
    let server = TestServer::start().await;
    let (mut bob, mut mallory) = bob_and_a_stranger(&server).await;
    send_many(&mut mallory, "bob", 3, "hello", &mut bob).await;
    assert_eq!(notifications(&bob), 0);
    assert!(bob.engine.chat_list().is_empty());

    let now = bob.now();
    bob.engine.accept_request("mallory", now).unwrap();
    bob.flush().await;
    settle(&mut [&mut bob, &mut mallory]).await;
    let chats = bob.engine.chat_list();
    assert_eq!(chats.len(), 1);
    assert_eq!(
        (chats[0].handle.as_str(), chats[0].unread),
        ("mallory", 3),
        "unread in the chat (read receipts only once read)"
    );
    assert_eq!(texts(&bob, "mallory").len(), 3, "the request's messages are in the chat");
    assert!(bob.engine.message_requests().is_empty());
    assert_eq!(notifications(&bob), 0, "accepting notifies nothing");
    assert!(matches!(bob.engine.standing("mallory"), Some(Standing::Accepted { .. })));
    assert!(mallory.engine.messages("bob").iter().all(|m| m.status == Status::Delivered), "receipts go once accepted");

    send_many(&mut mallory, "bob", 1, "now a contact", &mut bob).await;
    assert_eq!(notifications(&bob), 1, "an accepted sender's messages notify");
    assert_eq!(bob.engine.chat("mallory").unwrap().unread, 4);
    assert_eq!(bob.engine.unread_unmuted(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_the_user_added_or_wrote_to_are_never_requests() {
    let server = TestServer::start().await;
    let (mut alice, mut bob) = alice_and_bob(&server, "Bob", "Alice").await;
    // carol writes first to bob, who never added her, but bob writes to her: accepted.
    let mut carol = primary(&server, "carol").await;
    carol.add_contact("bob", "").await;
    send_many(&mut carol, "bob", 1, "hi from carol", &mut bob).await;
    assert_eq!(bob.engine.message_requests().len(), 1);
    bob.add_contact("carol", "").await;
    settle(&mut [&mut bob, &mut carol]).await;
    let now = bob.now();
    bob.engine.send_text("carol", "hello carol", now).unwrap();
    bob.flush().await;
    settle(&mut [&mut bob, &mut carol]).await;
    assert!(bob.engine.message_requests().is_empty(), "writing to a requester accepts it");
    assert_eq!(texts(&bob, "carol").len(), 2);

    send_many(&mut alice, "bob", 2, "hi", &mut bob).await;
    assert!(bob.engine.message_requests().is_empty());
    assert_eq!(bob.engine.chat("alice").unwrap().unread, 2);
    assert_eq!(notifications(&bob), 2, "a contact's messages notify");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_reach_the_accounts_other_devices() {
    let server = TestServer::start().await;
    let mut bob = primary(&server, "bob").await;
    let mut companion = link_companion(&server, &mut bob, false).await;
    let mut mallory = primary(&server, "mallory").await;
    let mut spammer = primary(&server, "spammer").await;
    mallory.add_contact("bob", "").await;
    spammer.add_contact("bob", "").await;
    settle(&mut [&mut bob, &mut companion, &mut mallory, &mut spammer]).await;
    companion.take_events();

    for (from, text) in [(&mut mallory, "hi bob"), (&mut spammer, "cheap pills")] {
        from.clock.advance(10);
        let now = from.now();
        from.engine.send_text("bob", text, now).unwrap();
        from.flush().await;
    }
    settle(&mut [&mut bob, &mut companion, &mut mallory, &mut spammer]).await;
    assert_eq!(companion.engine.message_requests().len(), 2, "the companion files them too");
    assert_eq!(notifications(&companion), 0);

    // The primary accepts one and reports the other; the companion follows.
    let now = bob.now();
    bob.engine.accept_request("mallory", now).unwrap();
    bob.engine.report_spam("spammer", now).unwrap();
    bob.flush().await;
    settle(&mut [&mut bob, &mut companion, &mut mallory, &mut spammer]).await;
    assert!(companion.engine.message_requests().is_empty());
    assert_eq!(texts(&companion, "mallory"), vec![(false, "hi bob".to_string())]);
    let blocked = companion.engine.blocked_list();
    assert_eq!((blocked.len(), blocked[0].handle.as_str(), blocked[0].reported), (1, "spammer", true));

    // From now on: mallory notifies on both, the spammer reaches neither.
    for (from, text) in [(&mut mallory, "again"), (&mut spammer, "more pills")] {
        from.clock.advance(10);
        let now = from.now();
        from.engine.send_text("bob", text, now).unwrap();
        from.flush().await;
    }
    settle(&mut [&mut bob, &mut companion, &mut mallory, &mut spammer]).await;
    assert_eq!(notifications(&companion), 1);
    assert_eq!(notifications(&bob), 1);
    assert!(companion.engine.messages("spammer").is_empty() && bob.engine.messages("spammer").is_empty());
    assert!(companion.engine.message_requests().is_empty() && bob.engine.message_requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_from_before_requests_keeps_its_contacts_as_contacts() {
    use tether_client::store::{KvStore, Op};
    let server = TestServer::start().await;
    let (mut alice, mut bob) = alice_and_bob(&server, "Bob", "Alice").await;
    // Bob's store as an older version wrote it: a contact, no standings.
    bob.disconnect();
    let old =
        [Op::Delete { ns: "standing", key: "alice".into() }, Op::Delete { ns: "self", key: "standings_v1".into() }];
    bob.store.apply(&old).unwrap();
    bob.restart();
    assert!(matches!(bob.engine.standing("alice"), Some(Standing::Accepted { .. })), "upgraded: alice is accepted");
    bob.connect().await;
    send_many(&mut alice, "bob", 1, "still friends", &mut bob).await;
    assert!(bob.engine.message_requests().is_empty());
    assert_eq!(texts(&bob, "alice").len(), 1);
    // A wiped or fresh store is not upgraded: a later stranger is a request.
    assert!(bob.store.scan("self").unwrap().iter().any(|(k, _)| k == "standings_v1"));
}

/// A peer device that keeps starting new Olm sessions (here: mallory's
/// client forgets its sessions before every message) gets at most
/// `MAX_SESSIONS_PER_DEVICE` of them made on the victim; past that its
/// pre-key messages are dropped with an error event, never shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_device_cannot_make_more_than_the_cap_of_sessions() {
    use tether_client::store::{KvStore, Op};
    let server = TestServer::start().await;
    let (mut bob, mut mallory) = bob_and_a_stranger(&server).await;
    bob.add_contact("mallory", "").await;
    settle(&mut [&mut bob, &mut mallory]).await;
    bob.take_events();
    let tries = tether_client::MAX_SESSIONS_PER_DEVICE + 2;
    for i in 0..tries {
        let forget: Vec<Op> = mallory
            .store
            .scan("sessions")
            .unwrap()
            .into_iter()
            .map(|(key, _)| Op::Delete { ns: "sessions", key })
            .collect();
        mallory.disconnect();
        mallory.store.apply(&forget).unwrap();
        mallory.restart();
        mallory.connect().await;
        send_many(&mut mallory, "bob", 1, &format!("session {i}"), &mut bob).await;
    }
    let shown = texts(&bob, "mallory");
    println!("session cap: {tries} new sessions tried, {} messages shown", shown.len());
    assert_eq!(shown.len(), tether_client::MAX_SESSIONS_PER_DEVICE, "{shown:?}");
    assert!(shown.iter().all(|(_, t)| t.starts_with("session ")), "nothing undecryptable is shown: {shown:?}");
    let dropped = bob
        .events
        .iter()
        .filter(|e| matches!(e, Event::Error { message, .. } if message.contains("too many sessions")))
        .count();
    assert_eq!(dropped, 2, "each one past the cap is an error event");
}

/// A companion linked later learns the primary's answers with the history:
/// a contact the user added (but never wrote to) stays a contact, and a
/// blocked sender stays blocked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_companion_gets_the_primarys_answers_with_the_history() {
    let server = TestServer::start().await;
    let (mut bob, mut mallory) = bob_and_a_stranger(&server).await;
    let mut carol = primary(&server, "carol").await;
    bob.add_contact("carol", "Carol").await;
    let now = bob.now();
    bob.engine.block("mallory", now).unwrap();
    bob.flush().await;
    settle(&mut [&mut bob]).await;

    let mut companion = link_companion(&server, &mut bob, false).await;
    settle(&mut [&mut bob, &mut companion]).await;
    assert!(matches!(companion.engine.standing("mallory"), Some(Standing::Blocked { .. })), "blocked on the companion too");
    assert!(matches!(companion.engine.standing("carol"), Some(Standing::Accepted { .. })), "carol is a contact there too");

    // carol writes: a chat on both of bob's devices, not a request.
    carol.add_contact("bob", "").await;
    let now = carol.now();
    carol.engine.send_text("bob", "hello from carol", now).unwrap();
    carol.flush().await;
    let now = mallory.now();
    mallory.engine.send_text("bob", "still here", now).unwrap();
    mallory.flush().await;
    settle(&mut [&mut bob, &mut companion, &mut carol, &mut mallory]).await;
    assert_eq!(texts(&companion, "carol"), vec![(false, "hello from carol".to_string())]);
    assert!(companion.engine.message_requests().is_empty(), "no request on the companion");
    assert!(texts(&companion, "mallory").is_empty());
}
