//! Everyday messaging against a real server, across two accounts, one
//! with a linked companion: replies, reactions, edits and deletes agree on
//! every device; disappearing messages go from every device (virtual
//! clock) and from history sent to a new companion; drafts, "mark as
//! unread" and the note to self sync between own devices.

use crate::harness::*;
use crate::linking::link_companion;
use tether_client::{ChatFlag, MessageBody};

fn body(d: &Device, chat: &str, id: &str) -> Option<MessageBody> {
    d.engine.messages(chat).iter().find(|m| m.id == id).map(|m| m.body.clone())
}

fn reactions(d: &Device, chat: &str, id: &str) -> Vec<(String, String)> {
    let m = d.engine.messages(chat).iter().find(|m| m.id == id).cloned().expect("the message is there");
    m.reactions.into_iter().collect()
}

fn text(s: &str) -> Option<MessageBody> {
    Some(MessageBody::Text { body: s.into() })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_reactions_edits_and_deletes_agree_on_every_device() {
    let server = TestServer::start().await;
    let (mut alice, mut bob) = alice_and_bob(&server, "Bob", "Alice").await;
    let mut alice2 = link_companion(&server, &mut alice, false).await;
    settle(&mut [&mut alice, &mut alice2, &mut bob]).await;

    let now = alice.now();
    let hello = alice.engine.send_text("bob", "hello there", now).unwrap();
    alice.flush().await;
    settle(&mut [&mut alice, &mut alice2, &mut bob]).await;

    // Bob answers it: the quote reaches alice's two devices.
    server.clock.advance(10);
    let now = bob.now();
    let answer = bob.engine.reply("alice", &hello, "hi back", now).unwrap();
    bob.flush().await;
    settle(&mut [&mut alice, &mut alice2, &mut bob]).await;
    for d in [&alice, &alice2] {
        let m = d.engine.messages("bob").iter().find(|m| m.id == answer).cloned().expect("the reply arrived");
        let q = m.reply_to.expect("it quotes alice's message");
        assert_eq!((q.id.as_str(), q.author.as_str(), q.text.as_str()), (hello.as_str(), "alice", "hello there"));
    }

    // Reactions: one per person; a new one replaces, from any own device.
    let now = bob.now();
    bob.engine.react("alice", &hello, "👍", now).unwrap();
    bob.flush().await;
    let now = alice.now();
    alice.engine.react("bob", &answer, "❤️", now).unwrap();
    alice.flush().await;
    settle(&mut [&mut alice, &mut alice2, &mut bob]).await;
    let now = alice2.now();
    alice2.engine.react("bob", &answer, "😂", now).unwrap();
    alice2.flush().await;
    settle(&mut [&mut alice, &mut alice2, &mut bob]).await;
    for (d, chat) in [(&alice, "bob"), (&alice2, "bob"), (&bob, "alice")] {
        assert_eq!(reactions(d, chat, &hello), [("bob".to_string(), "👍".to_string())]);
        assert_eq!(reactions(d, chat, &answer), [("alice".to_string(), "😂".to_string())], "alice's second reaction replaced her first");
    }
    let now = bob.now();
    bob.engine.react("alice", &hello, "", now).unwrap();
    bob.flush().await;
    settle(&mut [&mut alice, &mut alice2, &mut bob]).await;
    assert!(reactions(&alice2, "bob", &hello).is_empty(), "a reaction taken back is gone everywhere");

    // Edits: only the sender, and the earlier text is kept.
    server.clock.advance(60_000);
    let now = alice.now();
    assert!(bob.engine.edit("alice", &hello, "forged", now).is_err(), "bob cannot edit alice's message");
    alice.engine.edit("bob", &hello, "hello there, edited", now).unwrap();
    alice.flush().await;
    settle(&mut [&mut alice, &mut alice2, &mut bob]).await;
    for (d, chat) in [(&alice, "bob"), (&alice2, "bob"), (&bob, "alice")] {
        let m = d.engine.messages(chat).iter().find(|m| m.id == hello).cloned().unwrap();
        assert_eq!(m.body, MessageBody::Text { body: "hello there, edited".into() });
        assert_eq!(m.edits.iter().map(|e| e.text.as_str()).collect::<Vec<_>>(), ["hello there"]);
        assert!(m.edited_ms > m.time_ms);
    }
    assert_eq!(bob.engine.chat("alice").unwrap().last_preview, "hi back", "the preview is the last message's");

    // Search finds the edited words on every own device, and not the old ones.
    for d in [&alice, &alice2] {
        let hits = d.engine.search("EDITED hello", None, 10);
        assert_eq!(hits.iter().map(|h| h.message.id.as_str()).collect::<Vec<_>>(), [hello.as_str()]);
        assert_eq!(hits[0].chat_name, "Bob");
        assert!(d.engine.search("hi", Some("bob"), 10).iter().any(|h| h.message.id == answer));
        assert!(d.engine.search("forged", None, 10).is_empty());
    }

    // Delete for everyone: the sender only, and everywhere.
    let now = bob.now();
    assert!(bob.engine.delete_for_everyone("alice", &hello, now).is_err());
    let now = alice2.now();
    alice2.engine.delete_for_everyone("bob", &hello, now).unwrap();
    alice2.flush().await;
    settle(&mut [&mut alice, &mut alice2, &mut bob]).await;
    for (d, chat) in [(&alice, "bob"), (&alice2, "bob"), (&bob, "alice")] {
        assert_eq!(body(d, chat, &hello), Some(MessageBody::Deleted));
        assert!(d.engine.search("edited", None, 10).is_empty(), "a deleted message is not found");
        let quote = d.engine.messages(chat).iter().find(|m| m.id == answer).and_then(|m| m.reply_to.clone()).unwrap();
        assert_eq!((quote.id.as_str(), quote.text.as_str()), (hello.as_str(), ""), "the reply keeps its place, not the deleted words");
    }
    // Too late: past 48 hours nobody deletes for everyone, past 24 nobody edits.
    server.clock.advance(49 * 3600 * 1000);
    let now = bob.now();
    assert!(bob.engine.edit("alice", &answer, "late", now).unwrap_err().to_string().contains("too old"));
    assert!(bob.engine.delete_for_everyone("alice", &answer, now).unwrap_err().to_string().contains("too old"));

    // Delete for me: gone from alice's devices, still with bob.
    let now = alice.now();
    alice.engine.delete_for_me("bob", &[answer.clone()], now).unwrap();
    alice.flush().await;
    settle(&mut [&mut alice, &mut alice2, &mut bob]).await;
    assert_eq!(body(&alice, "bob", &answer), None);
    assert_eq!(body(&alice2, "bob", &answer), None);
    assert_eq!(body(&bob, "alice", &answer), text("hi back"));
    // And it stays so after a restart.
    alice2.restart();
    assert_eq!(body(&alice2, "bob", &answer), None);
    assert_eq!(body(&alice2, "bob", &hello), Some(MessageBody::Deleted));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disappearing_messages_drafts_unread_marks_and_the_note_to_self_sync_between_devices() {
    let server = TestServer::start().await;
    let (mut alice, mut bob) = alice_and_bob(&server, "Bob", "Alice").await;
    let mut alice2 = link_companion(&server, &mut alice, false).await;
    settle(&mut [&mut alice, &mut alice2, &mut bob]).await;

    // The timer: set by either side, shown as a line, applied to what both send.
    let now = bob.now();
    bob.engine.set_disappearing("alice", 86_400, now).unwrap();
    bob.flush().await;
    settle(&mut [&mut alice, &mut alice2, &mut bob]).await;
    for (d, chat) in [(&alice, "bob"), (&alice2, "bob"), (&bob, "alice")] {
        assert_eq!(d.engine.chat(chat).unwrap().disappear_secs, 86_400);
        let line = d.engine.messages(chat).last().cloned().unwrap();
        let MessageBody::GroupEvent { text } = line.body else { panic!("a line says the timer changed") };
        assert!(text.ends_with("set messages to disappear after 24 hours"), "{text}");
    }
    server.clock.advance(10);
    let now = alice.now();
    let gone1 = alice.engine.send_text("bob", "vanishing one", now).unwrap();
    alice.flush().await;
    server.clock.advance(10);
    let now = bob.now();
    let gone2 = bob.engine.send_text("alice", "vanishing two", now).unwrap();
    bob.flush().await;
    settle(&mut [&mut alice, &mut alice2, &mut bob]).await;
    assert!(alice2.engine.messages("bob").iter().all(|m| m.id != gone1 || m.expires_ms > 0));
    assert!(body(&alice2, "bob", &gone2).is_some());
    // Turned off by alice: what follows stays.
    let now = alice.now();
    alice.engine.set_disappearing("bob", 0, now).unwrap();
    alice.flush().await;
    settle(&mut [&mut alice, &mut alice2, &mut bob]).await;
    let now = bob.now();
    let kept = bob.engine.send_text("alice", "this one stays", now).unwrap();
    bob.flush().await;
    settle(&mut [&mut alice, &mut alice2, &mut bob]).await;

    // A day later every device removes the two, and keeps the rest.
    server.clock.advance(86_400 * 1000 + 1000);
    for d in [&mut alice, &mut alice2, &mut bob] {
        let now = d.now();
        assert!(d.engine.poll_timeout().is_some_and(|t| t <= now), "the engine asks to be woken for the expiry");
        d.engine.handle_timeout(now);
        d.flush().await;
    }
    for (d, chat) in [(&alice, "bob"), (&alice2, "bob"), (&bob, "alice")] {
        assert_eq!(body(d, chat, &gone1), None);
        assert_eq!(body(d, chat, &gone2), None);
        assert_eq!(body(d, chat, &kept), text("this one stays"));
    }
    // A companion linked now gets none of them from history.
    let alice3 = link_companion(&server, &mut alice, false).await;
    assert!(body(&alice3, "bob", &kept).is_some(), "history arrived");
    assert_eq!(body(&alice3, "bob", &gone1), None);

    // Drafts: kept across a restart, synced, and gone once the message is sent.
    let now = alice.now();
    alice.engine.set_draft("bob", "half-typed thought", now).unwrap();
    alice.flush().await;
    settle(&mut [&mut alice, &mut alice2]).await;
    alice2.restart();
    alice2.connect().await;
    settle(&mut [&mut alice, &mut alice2]).await;
    assert_eq!(alice2.engine.chat("bob").unwrap().draft, "half-typed thought");
    server.clock.advance(10);
    let now = alice2.now();
    alice2.engine.send_text("bob", "half-typed thought, finished", now).unwrap();
    alice2.flush().await;
    settle(&mut [&mut alice, &mut alice2, &mut bob]).await;
    assert_eq!(alice.engine.chat("bob").unwrap().draft, "", "sending on another device took the draft with it");

    // Mark as unread: synced, counted once on the badge, cleared by reading.
    let now = alice.now();
    alice.engine.mark_read("bob", now).unwrap();
    alice.engine.set_chat_flag("bob", ChatFlag::Unread, true, now).unwrap();
    alice.flush().await;
    settle(&mut [&mut alice, &mut alice2]).await;
    assert!(alice2.engine.chat("bob").unwrap().marked_unread);
    assert_eq!(alice2.engine.unread_unmuted(), 1);
    let now = alice2.now();
    alice2.engine.mark_read("bob", now).unwrap();
    alice2.flush().await;
    settle(&mut [&mut alice, &mut alice2]).await;
    assert!(!alice.engine.chat("bob").unwrap().marked_unread);
    assert_eq!(alice.engine.unread_unmuted(), 0);

    // The note to self: on own devices only.
    let me = alice.engine.note_to_self().unwrap().to_string();
    let now = alice.now();
    let note = alice.engine.send_link(&me, "https://example.org/later", "Read later", "", None, now).unwrap();
    alice.flush().await;
    settle(&mut [&mut alice, &mut alice2, &mut bob]).await;
    assert!(body(&alice2, &me, &note).is_some(), "the note reached the companion");
    let summary = alice2.engine.chat_list().into_iter().find(|c| c.handle == me).unwrap();
    assert!(summary.note_to_self);
    assert_eq!(summary.name, "Note to self");
    assert_eq!(summary.unread, 0);
    assert!(alice2.engine.contact(&me).is_none(), "the account is not its own contact");
    assert!(bob.engine.messages("alice").iter().all(|m| m.id != note), "nobody else gets it");
}

/// A companion whose store keeps history apart (as the browser's does):
/// nothing of the history is loaded at start; what changes messages of a
/// chat that is not loaded waits, across a restart, until the host loaded
/// it, then applies in order; search reads the word index.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lazy_history_loads_chats_on_demand_and_changes_wait_for_them() {
    let server = TestServer::start().await;
    let (mut alice, mut bob) = alice_and_bob(&server, "Bob", "Alice").await;
    let mut lazy = crate::linking::link_lazy_companion(&server, &mut alice).await;
    assert!(lazy.engine.conversations().is_lazy());
    settle(&mut [&mut alice, &mut lazy, &mut bob]).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        server.clock.advance(10);
        let now = alice.now();
        ids.push(alice.engine.send_text("bob", &format!("note number {i} about zebras"), now).unwrap());
        alice.flush().await;
    }
    settle(&mut [&mut alice, &mut lazy, &mut bob]).await;
    assert_eq!(texts(&lazy, "bob").len(), 5);

    // A restart: nothing of the history is in memory, the chat list is.
    lazy.restart();
    lazy.serve_history = false;
    assert!(lazy.engine.messages("bob").is_empty());
    assert_eq!(lazy.engine.chat_list().iter().find(|c| c.handle == "bob").unwrap().last_preview, "note number 4 about zebras");
    lazy.connect().await;

    // Bob reacts and reads while the chat is not loaded: the changes wait.
    let now = bob.now();
    bob.engine.react("alice", &ids[1], "🎉", now).unwrap();
    bob.engine.mark_read("alice", now).unwrap();
    bob.flush().await;
    settle(&mut [&mut alice, &mut lazy, &mut bob]).await;
    assert!(lazy.engine.messages("bob").is_empty(), "the chat was not loaded for them");
    let now = lazy.now();
    assert!(matches!(lazy.engine.react("bob", &ids[0], "👍", now), Err(tether_client::Error::NotLoaded(_))), "a command asks for the chat first");
    // They wait across a restart too.
    lazy.restart();
    lazy.serve_history = false;
    lazy.connect().await;
    settle(&mut [&mut lazy]).await;
    assert_eq!(lazy.engine.poll_want().as_deref(), None, "nothing asked for until something needs the chat");
    assert!(!lazy.engine.chat_loaded("bob"));
    assert_eq!(lazy.engine.poll_want().as_deref(), Some("bob"));
    let rows = lazy.store.read("messages", "bob/");
    let now = lazy.now();
    lazy.engine.load_chat("bob", rows, now);
    lazy.flush().await;
    let m = |d: &Device, id: &str| d.engine.messages("bob").iter().find(|m| m.id == id).cloned().unwrap();
    assert_eq!(m(&lazy, &ids[1]).reactions.get("bob").map(String::as_str), Some("🎉"), "the reaction applied once the chat loaded");
    assert!(ids.iter().all(|id| m(&lazy, id).status == tether_client::Status::Read), "so did the read receipt");

    // Search reads the word index (the host's three steps), newest first.
    let word = tether_client::Engine::search_word("ZEBRA number").unwrap();
    assert_eq!(word, "number");
    let index: Vec<String> = lazy.store.read("words", &word).into_iter().map(|(k, _)| k).collect();
    let keys = tether_client::Engine::search_keys(&index, None);
    let records: Vec<Vec<u8>> = keys.iter().flat_map(|k| lazy.store.read("messages", k)).map(|(_, v)| v).collect();
    let hits = lazy.engine.search_results("ZEBRA number", &records, 3);
    assert_eq!(hits.iter().map(|h| h.message.id.as_str()).collect::<Vec<_>>(), [&ids[4], &ids[3], &ids[2]].map(String::as_str));
    assert!(lazy.engine.search_results("giraffe", &records, 3).is_empty());

    // An edit changes the index: the old words are not found, the new are.
    lazy.serve_history = true;
    let now = alice.now();
    alice.engine.edit("bob", &ids[4], "now about giraffes", now).unwrap();
    alice.flush().await;
    settle(&mut [&mut alice, &mut lazy, &mut bob]).await;
    assert!(lazy.store.read("words", "zebras/").iter().all(|(k, _)| !k.ends_with(&ids[4])));
    assert!(lazy.store.read("words", "giraffes/").iter().any(|(k, _)| k.ends_with(&ids[4])));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oneself_is_not_a_contact_the_note_to_self_needs_none() {
    let server = TestServer::start().await;
    let (mut alice, _bob) = alice_and_bob(&server, "Bob", "Alice").await;
    let now = alice.now();
    assert!(alice.engine.add_contact("alice", "Me", now).is_err(), "one's own handle is the note to self");
    assert!(alice.engine.contact_list().iter().all(|c| c.handle != "alice"));
    alice.engine.send_text("alice", "a note", now).unwrap();
    assert_eq!(alice.engine.chat_list().iter().find(|c| c.note_to_self).map(|c| c.name.as_str()), Some("Note to self"));
}
