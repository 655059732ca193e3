//! Groups against a real server: every device of every member gets every
//! message, in order; a removed member reads nothing sent after; the
//! state rules hold whatever a member's client or the server does.

use crate::adversary::Operator;
use crate::harness::*;
use crate::linking::link_companion;
use tether_client::{Event, GroupOp, MessageBody, Status};
use tether_proto::frames::{Recipients, Request};

/// The group chat's messages as "sender: text" (changes as "— text").
fn lines(d: &Device, chat: &str) -> Vec<String> {
    d.engine
        .messages(chat)
        .iter()
        .map(|m| match &m.body {
            MessageBody::Text { body } => format!("{}: {body}", m.sender_handle),
            MessageBody::GroupEvent { text } => format!("— {text}"),
            MessageBody::Undecryptable { .. } => "undecryptable".to_string(),
            other => format!("{other:?}"),
        })
        .collect()
}

fn texts_only(d: &Device, chat: &str) -> Vec<String> {
    lines(d, chat).into_iter().filter(|l| !l.starts_with('—')).collect()
}

async fn say(d: &mut Device, chat: &str, text: &str) -> String {
    let now = d.now();
    let id = d.engine.send_text(chat, text, now).unwrap();
    d.flush().await;
    id
}

fn members(d: &Device, chat: &str) -> Vec<(String, bool)> {
    d.engine.group_info(chat).map(|g| g.members.into_iter().map(|m| (m.handle, m.admin)).collect()).unwrap_or_default()
}

/// The server copies every fanned-out send to `handle`'s device 0 as well.
fn copy_fanout_to(op: &Operator, handle: &'static str) {
    op.on_request(move |_, mut frame| {
        if let Some(Request::Send(s)) = &mut frame.request
            && !s.fanout.is_empty()
            && !s.fanout.iter().any(|r| r.handle == handle)
        {
            s.fanout.push(Recipients { handle: handle.into(), device_ids: vec![0], list_version: 0 });
        }
        Some(frame)
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_accounts_and_a_companion_get_every_group_message_in_order_and_a_removed_member_reads_nothing_after() {
    let server = TestServer::start().await;
    let op = Operator::install(&server);
    let mut alice = primary(&server, "alice").await;
    let mut alice2 = link_companion(&server, &mut alice, false).await;
    let mut bob = primary(&server, "bob").await;
    let mut carol = primary(&server, "carol").await;
    alice.add_contact("bob", "Bob").await;
    alice.add_contact("carol", "Carol").await;
    settle(&mut [&mut alice, &mut alice2, &mut bob, &mut carol]).await;

    let now = alice.now();
    let chat = alice.engine.create_group("Trip", &["bob".into(), "carol".into()], now).unwrap();
    assert!(chat.starts_with("g:"));
    alice.flush().await;
    settle(&mut [&mut alice, &mut alice2, &mut bob, &mut carol]).await;
    let all = vec![("alice".to_string(), true), ("bob".to_string(), false), ("carol".to_string(), false)];
    for d in [&alice, &alice2, &bob, &carol] {
        assert_eq!(members(d, &chat), all, "{:?} holds the group", d.engine.handle());
        assert_eq!(d.engine.group_info(&chat).unwrap().name, "Trip");
    }
    assert_eq!(lines(&bob, &chat), vec!["— alice created the group “Trip”"]);

    // One at a time, from every account and the companion.
    let one = say(&mut alice, &chat, "one").await;
    settle(&mut [&mut alice, &mut alice2, &mut bob, &mut carol]).await;
    say(&mut bob, &chat, "two").await;
    settle(&mut [&mut alice, &mut alice2, &mut bob, &mut carol]).await;
    say(&mut carol, &chat, "three").await;
    settle(&mut [&mut alice, &mut alice2, &mut bob, &mut carol]).await;
    say(&mut alice2, &chat, "four").await;
    settle(&mut [&mut alice, &mut alice2, &mut bob, &mut carol]).await;
    let expected = vec!["alice: one", "bob: two", "carol: three", "alice: four"];
    for d in [&alice, &alice2, &bob, &carol] {
        assert_eq!(texts_only(d, &chat), expected, "{:?} has every message in order", d.engine.handle());
    }
    // Delivered to both members; read once both read it.
    let status = |d: &Device| d.engine.messages(&chat).iter().find(|m| m.id == one).unwrap().status;
    assert_eq!(status(&alice), Status::Delivered);
    let now = bob.now();
    bob.engine.mark_read(&chat, now).unwrap();
    bob.flush().await;
    settle(&mut [&mut alice, &mut alice2, &mut bob, &mut carol]).await;
    assert_eq!(status(&alice), Status::Delivered, "carol has not read it yet");
    assert!(alice.engine.message_receipts(&one).contains(&("Bob".to_string(), Status::Read)));
    let now = carol.now();
    carol.engine.mark_read(&chat, now).unwrap();
    carol.flush().await;
    settle(&mut [&mut alice, &mut alice2, &mut bob, &mut carol]).await;
    assert_eq!(status(&alice), Status::Read, "both read it: blue ticks");

    // Carol is removed; the server then copies alice's next message to her anyway.
    let now = alice.now();
    alice.engine.change_group(&chat, GroupOp::Remove { handles: vec!["carol".into()] }, now).unwrap();
    alice.flush().await;
    settle(&mut [&mut alice, &mut alice2, &mut bob, &mut carol]).await;
    let two = vec![("alice".to_string(), true), ("bob".to_string(), false)];
    for d in [&alice, &alice2, &bob] {
        assert_eq!(members(d, &chat), two);
    }
    let carols = carol.engine.group_info(&chat).unwrap();
    assert!(!carols.am_member, "carol knows she was removed");
    assert!(lines(&carol, &chat).contains(&"— alice removed you".to_string()), "{:?}", lines(&carol, &chat));
    copy_fanout_to(&op, "carol");
    say(&mut alice, &chat, "after").await;
    settle(&mut [&mut alice, &mut alice2, &mut bob, &mut carol]).await;
    op.honest();
    say(&mut bob, &chat, "bob after").await;
    settle(&mut [&mut alice, &mut alice2, &mut bob, &mut carol]).await;
    for d in [&alice, &alice2, &bob] {
        assert_eq!(texts_only(d, &chat)[4..], ["alice: after", "bob: bob after"]);
    }
    let got = carol.engine.messages(&chat).iter().filter(|m| matches!(m.body, MessageBody::Text { .. })).count();
    assert_eq!(got, 4, "carol reads only what came before her removal: {:?}", lines(&carol, &chat));
    assert_eq!(lines(&carol, &chat).last().map(String::as_str), Some("undecryptable"), "the copy the server slipped her does not decrypt");
    assert!(carol.engine.send_text(&chat, "still here?", carol.now()).is_err(), "a removed member cannot send");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_admins_forged_add_and_a_device_the_server_adds_to_a_fanout_change_nothing() {
    let server = TestServer::start().await;
    let op = Operator::install(&server);
    let mut alice = primary(&server, "alice").await;
    let mut bob = primary(&server, "bob").await;
    let mut mallory = primary(&server, "mallory").await;
    alice.add_contact("bob", "Bob").await;
    bob.add_contact("mallory", "").await;
    settle(&mut [&mut alice, &mut bob, &mut mallory]).await;
    let now = alice.now();
    let chat = alice.engine.create_group("Plans", &["bob".into()], now).unwrap();
    alice.flush().await;
    settle(&mut [&mut alice, &mut bob, &mut mallory]).await;
    let two = vec![("alice".to_string(), true), ("bob".to_string(), false)];
    assert_eq!(members(&bob, &chat), two);

    // Bob is no admin: his client refuses; a hacked one sends it anyway.
    let now = bob.now();
    assert!(bob.engine.change_group(&chat, GroupOp::Add { handles: vec!["mallory".into()] }, now).is_err());
    bob.engine.danger_send_group_members(&chat, &[("alice", true), ("bob", true), ("mallory", false)], now);
    bob.flush().await;
    settle(&mut [&mut alice, &mut bob, &mut mallory]).await;
    assert_eq!(members(&alice, &chat), two, "alice ignored it");
    assert_eq!(members(&bob, &chat), two, "bob's own device ignores it too");
    // Mallory, whom bob's forgery names, cannot tell it from a real add
    // (a new member knows the group only from the change that adds it): at
    // most bob's word; no member's device treats mallory as one.
    assert!(alice.events.iter().any(|e| matches!(e, Event::Error { message, .. } if message.contains("ignored a group change by bob"))));

    // The server slips mallory's device into alice's fan-out.
    copy_fanout_to(&op, "mallory");
    say(&mut alice, &chat, "secret plan").await;
    settle(&mut [&mut alice, &mut bob, &mut mallory]).await;
    op.honest();
    assert_eq!(texts_only(&bob, &chat), vec!["alice: secret plan"]);
    let readable = mallory.engine.chats().iter().flat_map(|c| mallory.engine.messages(&c.handle).to_vec()).filter(|m| matches!(m.body, MessageBody::Text { .. })).count();
    assert_eq!(readable, 0, "mallory can read nothing: {:?}", lines(&mallory, &chat));
    // And alice can still change her group (the forged change used up an epoch at the server).
    let now = alice.now();
    alice.engine.change_group(&chat, GroupOp::Rename { name: "Plans B".into() }, now).unwrap();
    alice.flush().await;
    settle_in_time(&mut [&mut alice, &mut bob, &mut mallory]).await;
    assert_eq!(bob.engine.group_info(&chat).unwrap().name, "Plans B");
    assert_eq!(alice.engine.group_info(&chat).unwrap().name, "Plans B");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_admins_changing_a_group_at_once_both_land_and_every_device_converges() {
    let server = TestServer::start().await;
    let mut alice = primary(&server, "alice").await;
    let mut bob = primary(&server, "bob").await;
    let mut carol = primary(&server, "carol").await;
    let mut dave = primary(&server, "dave").await;
    alice.add_contact("bob", "").await;
    alice.add_contact("carol", "").await;
    bob.add_contact("dave", "").await;
    settle(&mut [&mut alice, &mut bob, &mut carol, &mut dave]).await;
    let now = alice.now();
    let chat = alice.engine.create_group("Band", &["bob".into(), "carol".into()], now).unwrap();
    alice.flush().await;
    settle(&mut [&mut alice, &mut bob, &mut carol, &mut dave]).await;
    let now = alice.now();
    alice.engine.change_group(&chat, GroupOp::SetAdmin { handle: "bob".into(), admin: true }, now).unwrap();
    alice.flush().await;
    settle(&mut [&mut alice, &mut bob, &mut carol, &mut dave]).await;
    assert!(bob.engine.group_info(&chat).unwrap().am_admin);

    // Both at once, on the same state: one is refused by the server and
    // made again on top of the other.
    let now = alice.now();
    alice.engine.change_group(&chat, GroupOp::Rename { name: "The Band".into() }, now).unwrap();
    bob.engine.change_group(&chat, GroupOp::Add { handles: vec!["dave".into()] }, now).unwrap();
    alice.flush().await;
    bob.flush().await;
    settle_in_time(&mut [&mut alice, &mut bob, &mut carol, &mut dave]).await;
    let want = vec![("alice".to_string(), true), ("bob".to_string(), true), ("carol".to_string(), false), ("dave".to_string(), false)];
    for d in [&alice, &bob, &carol, &dave] {
        let g = d.engine.group_info(&chat).unwrap_or_else(|| panic!("{:?} has the group", d.engine.handle()));
        assert_eq!((g.name.as_str(), members(d, &chat)), ("The Band", want.clone()), "{:?}", d.engine.handle());
    }
    // Dave reads what is sent after he joined.
    say(&mut carol, &chat, "welcome dave").await;
    settle(&mut [&mut alice, &mut bob, &mut carol, &mut dave]).await;
    assert_eq!(texts_only(&dave, &chat), vec!["carol: welcome dave"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_companion_linked_later_gets_the_groups_from_history_and_reads_what_follows() {
    let server = TestServer::start().await;
    let mut alice = primary(&server, "alice").await;
    let mut bob = primary(&server, "bob").await;
    alice.add_contact("bob", "Bob").await;
    settle(&mut [&mut alice, &mut bob]).await;
    let now = alice.now();
    let chat = alice.engine.create_group("Book club", &["bob".into()], now).unwrap();
    alice.flush().await;
    settle(&mut [&mut alice, &mut bob]).await;
    say(&mut bob, &chat, "before the link").await;
    settle(&mut [&mut alice, &mut bob]).await;

    let mut alice2 = link_companion(&server, &mut alice, false).await;
    settle(&mut [&mut alice, &mut alice2, &mut bob]).await;
    let g = alice2.engine.group_info(&chat).expect("the group came with the history");
    assert_eq!((g.name.as_str(), g.am_admin), ("Book club", true));
    assert_eq!(texts_only(&alice2, &chat), vec!["bob: before the link"], "its recent messages too");
    // Bob's next message reaches the new device (his device shares its key
    // with it first), and so does one from alice's primary.
    say(&mut bob, &chat, "after the link").await;
    settle(&mut [&mut alice, &mut alice2, &mut bob]).await;
    say(&mut alice, &chat, "from the primary").await;
    settle(&mut [&mut alice, &mut alice2, &mut bob]).await;
    assert_eq!(texts_only(&alice2, &chat), vec!["bob: before the link", "bob: after the link", "alice: from the primary"]);
    // And the companion writes to the group.
    say(&mut alice2, &chat, "from the browser").await;
    settle(&mut [&mut alice, &mut alice2, &mut bob]).await;
    assert_eq!(texts_only(&bob, &chat).last().map(String::as_str), Some("alice: from the browser"));
}
