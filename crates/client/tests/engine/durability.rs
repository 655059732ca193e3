//! Delivery that does not wait for the disk (docs/protocol.md,
//! "Durability"): the server pushes a copy while its group commit runs,
//! and answers the sender only once the commit is done. Here the
//! malicious-server harness holds the commit, as a slow disk would, so the
//! recipient has the message before the sender's answer. If the server
//! dies there, nothing was stored and the sender was not answered: its
//! engine sends the message again after the restart, with the same id, and
//! the recipient's engine shows it once. If the commit goes through, the
//! recipient's acknowledgement (sent before the commit) deletes the copy
//! after it: nothing is lost and nothing comes back. A copy acknowledged
//! while its group is still gathering behind a running commit is never
//! stored at all.

use crate::adversary::{Operator, device};
use tether_proto::frames::Request;
use crate::harness::*;
use std::time::Duration;

/// Steps both devices until `bob`'s chat with alice shows `text`, 10 s
/// at most.
async fn until_shown(alice: &mut Device, bob: &mut Device, text: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !texts(bob, "alice").iter().any(|(_, t)| t == text) {
        assert!(tokio::time::Instant::now() < deadline, "{text:?} never reached bob: {:?}", texts(bob, "alice"));
        bob.step(Duration::from_millis(20)).await;
        alice.step(Duration::from_millis(20)).await;
    }
}

fn shown(d: &Device, chat: &str, text: &str) -> usize {
    texts(d, chat).iter().filter(|(_, t)| t == text).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_dying_between_push_and_commit_delivers_the_message_once() {
    let server = TestServer::start().await;
    let (mut alice, mut bob) = alice_and_bob(&server, "Bob", "Alice").await;
    alice.engine.send_text("bob", "before", alice.now()).unwrap();
    alice.flush().await;
    settle(&mut [&mut alice, &mut bob]).await;

    let op = Operator::install(&server);
    op.hold_commits();
    let text = "pushed while its commit ran";
    alice.engine.send_text("bob", text, alice.now()).unwrap();
    alice.flush().await;
    until_shown(&mut alice, &mut bob, text).await;
    // Alice's answer waits for the commit, which never comes.
    for _ in 0..5 {
        alice.step(Duration::from_millis(50)).await;
    }
    assert_eq!(alice.engine.outbox_len(), 1, "not acknowledged before its commit");

    // The server dies between the push and the commit.
    let server = server.restart().await;
    for d in [&mut alice, &mut bob] {
        while d.connected() {
            d.step(Duration::from_millis(50)).await;
        }
        d.connect().await;
    }
    settle(&mut [&mut alice, &mut bob]).await;
    assert_eq!(alice.engine.outbox_len(), 0, "sent again after the restart, and acknowledged");
    assert_eq!(shown(&bob, "alice", text), 1, "shown once: {:?}", texts(&bob, "alice"));
    assert_eq!(shown(&bob, "alice", "before"), 1);
    let left = server.server.store().pending("bob", 0, 0, 10).await.unwrap();
    assert!(left.is_empty(), "bob acknowledged the copy sent again: {} left", left.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledgement_sent_before_the_commit_deletes_the_copy_after_it() {
    let server = TestServer::start().await;
    let (mut alice, mut bob) = alice_and_bob(&server, "Bob", "Alice").await;
    settle(&mut [&mut alice, &mut bob]).await;
    let op = Operator::install(&server);
    op.hold_commits();
    let text = "acknowledged before it was stored";
    alice.engine.send_text("bob", text, alice.now()).unwrap();
    alice.flush().await;
    until_shown(&mut alice, &mut bob, text).await;
    // Bob's engine acknowledges it at once; the ack waits behind the
    // held commit.
    until_acked(&op, &mut bob, 1).await;
    assert_eq!(alice.engine.outbox_len(), 1, "not acknowledged before its commit");
    assert_eq!(server.server.store().pending("bob", 0, 0, 10).await.unwrap().len(), 0, "not stored yet");

    op.release_commits();
    settle(&mut [&mut alice, &mut bob]).await;
    assert_eq!(alice.engine.outbox_len(), 0, "acknowledged once committed");
    let left = server.server.store().pending("bob", 0, 0, 10).await.unwrap();
    assert!(left.is_empty(), "the early ack deleted the copy after its commit: {} left", left.len());
    // Nothing comes back when bob connects again.
    bob.disconnect();
    bob.connect().await;
    settle(&mut [&mut alice, &mut bob]).await;
    assert_eq!(shown(&bob, "alice", text), 1);
    assert!(server.server.store().pending("bob", 0, 0, 10).await.unwrap().is_empty());
}

/// A counter of the server's metrics.
fn metric(server: &TestServer, name: &str) -> u64 {
    let text = server.server.metrics_text();
    let line = text.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("no {name} in:\n{text}"));
    line.rsplit(' ').next().unwrap().parse::<f64>().unwrap() as u64
}

/// Steps bob until he has acknowledged `n` copies in all.
async fn until_acked(op: &Operator, bob: &mut Device, n: usize) {
    let acked = || {
        op.requests_where(|p, r| *p == device("bob", 0) && matches!(r, Request::Ack(_)))
            .iter()
            .map(|(_, r)| match r {
                Request::Ack(a) => a.envelope_ids.len(),
                _ => 0,
            })
            .sum::<usize>()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while acked() < n {
        assert!(tokio::time::Instant::now() < deadline, "bob acknowledged {} of {n} copies", acked());
        bob.step(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_acknowledged_while_its_group_gathers_is_never_stored_and_never_comes_back() {
    let server = TestServer::start().await;
    let (mut alice, mut bob) = alice_and_bob(&server, "Bob", "Alice").await;
    settle(&mut [&mut alice, &mut bob]).await;
    let op = Operator::install(&server);
    op.hold_commits();
    // The first message's commit starts and is held (a slow disk)...
    alice.engine.send_text("bob", "first", alice.now()).unwrap();
    alice.flush().await;
    until_shown(&mut alice, &mut bob, "first").await;
    until_acked(&op, &mut bob, 1).await;
    // ... so the second gathers behind it, pushed early, and bob
    // acknowledges it before its own commit starts.
    alice.engine.send_text("bob", "second", alice.now()).unwrap();
    alice.flush().await;
    until_shown(&mut alice, &mut bob, "second").await;
    until_acked(&op, &mut bob, 2).await;
    // The ack reaches the writer on its own time: wait for it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while metric(&server, "tether_acked_before_commit_total") < 1 {
        assert!(tokio::time::Instant::now() < deadline, "the second copy's ack never reached the writer");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(alice.engine.outbox_len(), 2, "neither send is answered before its commit");

    op.release_commits();
    settle(&mut [&mut alice, &mut bob]).await;
    assert_eq!(alice.engine.outbox_len(), 0, "both answered once committed");
    assert!(server.server.store().pending("bob", 0, 0, 10).await.unwrap().is_empty());
    assert!(server.server.store().pending("alice", 0, 0, 10).await.unwrap().is_empty());
    // Nothing comes back when bob connects again.
    bob.disconnect();
    bob.connect().await;
    settle(&mut [&mut alice, &mut bob]).await;
    assert_eq!((shown(&bob, "alice", "first"), shown(&bob, "alice", "second")), (1, 1));
}
