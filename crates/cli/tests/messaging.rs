//! Everyday messaging on the command line, with the real binaries: `send`
//! printing the id, `reply`, `react`, `edit`, `delete` (for me, for
//! everyone), `search`, `disappear`, `draft`, `unread`, the note to self,
//! and what `read` and `listen --json` show of them. Two accounts, alice and
//! bob; companions are covered by the engine's tests.

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The id `send --json` / `reply --json` printed, after checking it was sent.
fn sent_id(out: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(v["status"], "sent", "{out}");
    let id = v["id"].as_str().unwrap().to_string();
    assert!(id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()), "{out}");
    id
}

/// The line of `read` output that holds `needle`, and the lines under it
/// (up to the next message).
fn block<'a>(read: &'a str, needle: &str) -> Vec<&'a str> {
    let lines: Vec<&str> = read.lines().collect();
    let at = lines.iter().position(|l| l.contains(needle)).unwrap_or_else(|| panic!("no `{needle}` in:\n{read}"));
    let mut v = vec![lines[at]];
    v.extend(lines[at + 1..].iter().take_while(|l| l.starts_with("    ")));
    v
}

/// Fails with `tether`'s error, which must contain `want`.
fn fails(home: &std::path::Path, args: &[&str], want: &str) {
    let (success, out, err) = tether(home, args);
    assert!(!success, "tether {args:?} succeeded:\n{out}");
    assert!(err.contains(want), "tether {args:?}: expected “{want}” in:\n{err}");
}

#[test]
fn reply_react_edit_delete_search_disappear_drafts_and_the_note_to_self() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let (alice, bob) = register_alice_and_bob(dir.path(), &server);
    ok(&alice, &["contacts", "add", "bob", "--name", "Bob"]);
    ok(&bob, &["contacts", "add", "alice"]);

    // `send` prints the id: in words, and as JSON for scripts.
    let out = ok(&alice, &["send", "bob", "hello bob"]);
    assert!(out.starts_with("Sent to bob. (id ") && out.trim_end().ends_with(')'), "{out}");
    let hello = out.trim_end().trim_end_matches(')').rsplit(' ').next().unwrap().to_string();
    assert_eq!(hello.len(), 8, "{out}");
    let friday = sent_id(&ok(&alice, &["send", "bob", "Are we still on for Friday?", "--json"]));

    // alice listens while bob answers: a reply, then a reaction.
    let mut listen = KillOnDrop(
        Command::new(TETHER)
            .arg("--data")
            .arg(&alice)
            .args(["listen", "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let (tx, rx) = mpsc::channel::<serde_json::Value>();
    let stdout = listen.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(serde_json::from_str(&line).unwrap());
        }
    });
    // bob names alice's message by its first 8 digits; his computer has
    // not fetched it yet, so the command catches up first.
    let out = ok(&bob, &["reply", &friday[..8], "yes, 7pm", "--json"]);
    let reply = sent_id(&out);
    let out = ok(&bob, &["react", &friday[..10], "👍"]);
    assert!(out.contains("Reacted 👍 to alice's “Are we still on for Friday?”"), "{out}");
    let (mut got_reply, mut got_reaction) = (None, None);
    let deadline = Instant::now() + Duration::from_secs(10);
    while (got_reply.is_none() || got_reaction.is_none()) && Instant::now() < deadline {
        let Ok(v) = rx.recv_timeout(Duration::from_millis(200)) else { continue };
        match v["event"].as_str() {
            Some("message") if v["id"] == reply.as_str() => got_reply = Some(v),
            Some("reaction") => got_reaction = Some(v),
            _ => {}
        }
    }
    drop(listen);
    let v = got_reply.expect("listen reported bob's reply");
    assert_eq!(v["reply_to"]["id"], friday.as_str());
    assert_eq!(v["reply_to"]["author"], "alice");
    assert_eq!(v["text"], "yes, 7pm");
    assert_eq!((v["edited"].as_bool(), v["expires_ms"].as_u64()), (Some(false), Some(0)));
    let v = got_reaction.expect("listen reported bob's reaction");
    assert_eq!(
        (v["id"].as_str(), v["from"].as_str(), v["emoji"].as_str()),
        (Some(friday.as_str()), Some("bob"), Some("👍"))
    );
    assert_eq!(v["chat"], "bob");

    // alice edits her question; she sends one to delete for everyone.
    let out = ok(&alice, &["edit", &friday[..8], "Are we still on for Saturday?"]);
    assert!(out.contains(&format!("Edited your message {} in bob.", &friday[..8])), "{out}");
    let oops = sent_id(&ok(&alice, &["send", "bob", "wrong chat, sorry", "--json"]));
    let out = ok(&alice, &["delete", &oops[..8], "--everyone"]);
    assert!(out.contains("Deleted 1 message for everyone in bob."), "{out}");

    // Both read it all: the quote, the reaction, "(edited)", the deleted line.
    let read = ok(&bob, &["read", "alice"]);
    let question = block(&read, "Saturday?");
    assert!(
        question[0].starts_with(&friday[..8]) && question[0].ends_with("alice: Are we still on for Saturday? (edited)"),
        "{read}"
    );
    assert_eq!(question.get(1).map(|l| l.trim()), Some("👍 you"), "{read}");
    let answer = block(&read, "yes, 7pm");
    assert!(answer[0].starts_with(&reply[..8]), "{read}");
    assert_eq!(answer.get(1).map(|l| l.trim()), Some("↳ replying to alice: “Are we still on for Saturday?”"), "{read}");
    assert!(
        read.contains(&format!("{} ", &oops[..8]))
            && block(&read, &oops[..8])[0].ends_with("alice: 🚫 This message was deleted"),
        "{read}"
    );
    assert!(!read.contains("wrong chat"), "{read}");
    let read = ok(&alice, &["read", "bob"]);
    assert!(block(&read, "Saturday?")[0].contains("(edited) ✓✓"), "{read}");
    assert_eq!(block(&read, "Saturday?").get(1).map(|l| l.trim()), Some("👍 Bob"), "{read}");
    assert_eq!(
        block(&read, "yes, 7pm").get(1).map(|l| l.trim()),
        Some("↳ replying to you: “Are we still on for Saturday?”"),
        "{read}"
    );
    assert!(block(&read, &oops[..8])[0].ends_with("alice: 🚫 This message was deleted"), "{read}");

    // What cannot be done says why, and fails.
    fails(&bob, &["edit", &friday[..8], "mine now"], "only its sender's own message can be edited");
    fails(&bob, &["delete", &friday[..8], "--everyone"], "only its sender's own message can be deleted for everyone");
    fails(&alice, &["react", "0123456789", "👍"], "no message with id 0123456789");
    fails(&alice, &["reply", "hello", "x"], "is not a message id");
    fails(&alice, &["disappear", "bob", "5m"], "off, 24h, 7d or 90d");

    // The note to self: `me`, `self` or the own handle.
    let out = ok(&alice, &["send", "me", "buy oat milk"]);
    assert!(out.starts_with("Saved in Note to self. (id "), "{out}");
    ok(&alice, &["send", "self", "call the dentist"]);
    let read = ok(&alice, &["read", "alice"]);
    assert!(
        read.starts_with("Note to self") && read.contains("alice: buy oat milk") && read.contains("call the dentist"),
        "{read}"
    );

    // Search: every word, in all chats or one.
    let found = ok(&alice, &["search", "SATURDAY", "still"]);
    assert_eq!(found.lines().count(), 1, "{found}");
    assert!(
        found.starts_with(&friday[..8]) && found.contains("alice to Bob: Are we still on for Saturday?"),
        "{found}"
    );
    let found = ok(&alice, &["search", "oat"]);
    assert!(found.contains("Note to self: buy oat milk"), "{found}");
    let found = ok(&alice, &["search", "7pm", "--chat", "bob"]);
    assert!(found.starts_with(&reply[..8]) && found.contains("Bob: yes, 7pm"), "{found}");
    let found = ok(&alice, &["search", "7pm", "--chat", "me"]);
    assert!(found.starts_with("No messages with “7pm” in that chat."), "{found}");

    // Drafts: set, print as is (for scripts), shown in chats, cleared.
    ok(&alice, &["draft", "bob", "half a thought"]);
    assert_eq!(ok(&alice, &["draft", "bob"]), "half a thought\n");
    assert!(ok(&alice, &["draft"]).contains("bob: half a thought"));
    ok(&alice, &["unread", "bob"]);
    let chats = ok(&alice, &["chats"]);
    let line = chats.lines().find(|l| l.starts_with("bob ")).unwrap_or_else(|| panic!("{chats}"));
    assert!(line.contains("(unread)") && line.contains("Draft: half a thought"), "{chats}");
    assert!(chats.lines().any(|l| l.starts_with("Note to self ")), "{chats}");
    ok(&alice, &["draft", "bob", "--clear"]);
    assert_eq!(ok(&alice, &["draft", "bob"]), "");

    // Disappearing messages: both sides see the line; new messages carry the timer.
    let out = ok(&alice, &["disappear", "bob", "24h"]);
    assert!(out.contains("New messages in bob now disappear 24 hours after they are sent."), "{out}");
    let late = sent_id(&ok(&alice, &["send", "bob", "this one goes away", "--json"]));
    let read = ok(&bob, &["read", "alice"]);
    assert!(read.contains("— alice set messages to disappear after 24 hours —"), "{read}");
    assert!(read.contains("(new messages disappear 24 hours after they are sent)"), "{read}");
    assert!(block(&read, &late[..8])[0].contains("this one goes away"), "{read}");
    let found = ok(&bob, &["search", "goes", "away", "--json"]);
    let v: serde_json::Value = serde_json::from_str(found.trim()).unwrap_or_else(|e| panic!("{e}: {found}"));
    let (time, expires) = (v["time_ms"].as_u64().unwrap(), v["expires_ms"].as_u64().unwrap());
    assert_eq!(expires, time + 86_400_000, "{found}");
    assert_eq!((v["id"].as_str(), v["chat_name"].as_str()), (Some(late.as_str()), Some("alice")), "{found}");
    assert!(ok(&bob, &["disappear", "alice"]).contains("Disappearing messages in alice: 24 hours"));
    let read = ok(&alice, &["read", "bob"]);
    assert!(read.contains("— You set messages to disappear after 24 hours —"), "{read}");

    // Delete for me: gone from bob's computer only.
    let out = ok(&bob, &["delete", &reply[..8]]);
    assert!(out.contains("Deleted 1 message from this computer"), "{out}");
    assert!(!ok(&bob, &["read", "alice"]).contains("yes, 7pm"));
    assert!(ok(&alice, &["read", "bob"]).contains("yes, 7pm"));

    eprintln!("messaging test: {:.1} s", started.elapsed().as_secs_f64());
}
