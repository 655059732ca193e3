//! Groups on the command line, with the real binaries: `tether group
//! create | add | remove | leave | rename | admin | info | list`, and
//! `send`, `read`, `chats`, `listen --json` naming a group by its name or
//! its id. Three accounts: alice (the admin), bob and carol.

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Three registered homes; alice has bob and carol as contacts (named).
fn three(dir: &Path, server: &Server) -> (PathBuf, PathBuf, PathBuf) {
    let (alice, bob) = register_alice_and_bob(dir, server);
    let carol = dir.join("carol");
    ok(&carol, &["register", "carol", "--server", &server.url]);
    ok(&alice, &["contacts", "add", "bob", "--name", "Bob"]);
    ok(&alice, &["contacts", "add", "carol", "--name", "Carol"]);
    (alice, bob, carol)
}

/// The id `group create` printed.
fn created_id(out: &str) -> String {
    let id = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("id").map(|r| r.trim().to_string()))
        .unwrap_or_else(|| panic!("no id in:\n{out}"));
    assert!(id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()), "{out}");
    id
}

/// The message lines of `tether read` (those with a sender), in order.
fn said(read: &str) -> Vec<String> {
    read.lines()
        .filter_map(|l| l.split_once("] ").map(|(_, rest)| rest.trim_end().to_string()))
        .filter(|l| !l.starts_with('—'))
        .map(|l| l.split(" ✓").next().unwrap().to_string())
        .collect()
}

#[test]
fn three_accounts_talk_in_a_group_a_removed_member_reads_nothing_after_and_only_admins_change_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let (alice, bob, carol) = three(dir.path(), &server);

    let out = ok(&alice, &["group", "create", "Ski trip", "--members", "bob,carol"]);
    assert!(out.contains("Created the group “Ski trip” with bob, carol."), "{out}");
    let id = created_id(&out);
    assert!(out.contains("name  Ski trip"), "{out}");

    // Each sends in turn; bob's and carol's devices learn of the group as
    // they look for it (they never added alice).
    ok(&alice, &["send", "Ski trip", "one from alice"]);
    let out = ok(&bob, &["send", "ski TRIP", "two from bob"]);
    assert!(out.contains("Sent to “Ski trip”"), "a name matches ignoring case: {out}");
    ok(&carol, &["send", &id, "three from carol"]);

    // Everyone reads all three, in order, with the senders' names.
    let read = ok(&alice, &["read", "Ski trip"]);
    assert!(read.starts_with("“Ski trip” (3 members: you, Bob, Carol)"), "{read}");
    assert!(read.contains("— You created the group “Ski trip” —"), "{read}");
    assert_eq!(said(&read), ["alice: one from alice", "Bob: two from bob", "Carol: three from carol"], "{read}");
    // bob and carol have alice's message, unread: her tick says who has it.
    let first = read.lines().find(|l| l.contains("one from alice")).unwrap();
    assert!(first.ends_with("✓✓ (delivered to Bob, Carol)"), "{read}");
    let read = ok(&bob, &["read", "Ski trip"]);
    assert!(read.contains("— alice created the group “Ski trip” —"), "{read}");
    let second = read.lines().find(|l| l.contains("two from bob")).unwrap();
    assert!(second.ends_with("two from bob ✓✓ (read by alice; delivered to carol)"), "{read}");
    assert_eq!(said(&read), ["alice: one from alice", "bob: two from bob", "carol: three from carol"], "{read}");
    let read = ok(&carol, &["read", &format!("g:{id}")]);
    assert_eq!(said(&read), ["alice: one from alice", "bob: two from bob", "carol: three from carol"], "{read}");
    // Both have read it now; bob's message was read by alice, not yet by carol.
    let read = ok(&alice, &["read", "Ski trip"]);
    let first = read.lines().find(|l| l.contains("one from alice")).unwrap();
    assert!(first.ends_with("one from alice ✓✓ read"), "{read}");
    let read = ok(&bob, &["read", "Ski trip"]);
    let second = read.lines().find(|l| l.contains("two from bob")).unwrap();
    assert!(second.ends_with("two from bob ✓✓ read"), "{read}");

    let chats = ok(&bob, &["chats"]);
    assert!(chats.lines().any(|l| l.starts_with("Ski trip [group]")), "{chats}");

    // bob listens: a group message names the group by id and name.
    let mut listen = KillOnDrop(
        Command::new(TETHER)
            .arg("--data")
            .arg(&bob)
            .args(["listen", "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(listen.0.stdout.take().unwrap()).lines();
    ok(&alice, &["send", &id[..8], "four, live"]);
    let v = loop {
        let v: serde_json::Value = serde_json::from_str(&lines.next().expect("listen prints").unwrap()).unwrap();
        if v["event"] == "message" && v["text"] == "four, live" {
            break v;
        }
    };
    assert_eq!(v["from"], "alice");
    assert_eq!(v["chat"], format!("g:{id}"));
    assert_eq!(v["group"]["id"], id.as_str());
    assert_eq!(v["group"]["name"], "Ski trip");
    drop(listen);

    // A file to the group: bob saves it byte for byte.
    let file = dir.path().join("map.bin");
    let bytes: Vec<u8> = (0..70_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    std::fs::write(&file, &bytes).unwrap();
    let out = ok(&alice, &["send-file", "Ski trip", file.to_str().unwrap(), "--caption", "the map"]);
    assert!(out.contains("Sent map.bin to “Ski trip”."), "{out}");
    let read = ok(&bob, &["read", "Ski trip"]);
    assert!(read.contains("alice: 📄 map.bin (68.4 KB)") && read.contains("the map"), "{read}");
    let file_id = read.lines().find_map(|l| l.trim().strip_prefix("id ")).unwrap().split_whitespace().next().unwrap();
    let saved = dir.path().join("bob-map.bin");
    ok(&bob, &["download", file_id, "--out", saved.to_str().unwrap()]);
    assert_eq!(std::fs::read(&saved).unwrap(), bytes);

    // Only an admin changes the group.
    let (success, _, err) = tether(&bob, &["group", "add", "Ski trip", "dave"]);
    assert!(!success && err.contains("you are not an admin of “Ski trip”: only an admin may add members"), "{err}");
    let (success, _, err) = tether(&bob, &["group", "remove", "Ski trip", "carol"]);
    assert!(!success && err.contains("you are not an admin of “Ski trip”") && err.contains("admins: alice"), "{err}");
    let (success, _, err) = tether(&bob, &["group", "rename", "Ski trip", "Mine"]);
    assert!(!success && err.contains("not an admin"), "{err}");

    // alice removes carol and writes again: carol never reads it.
    let out = ok(&alice, &["group", "remove", "Ski trip", "carol"]);
    assert!(out.contains("Removed carol from “Ski trip”."), "{out}");
    ok(&alice, &["send", "Ski trip", "five, after carol left"]);
    let read = ok(&bob, &["read", "Ski trip"]);
    assert!(read.contains("alice: five, after carol left"), "{read}");
    assert!(read.contains("— alice removed carol —"), "{read}");
    let read = ok(&carol, &["read", "Ski trip"]);
    assert!(read.contains("— alice removed you —"), "{read}");
    assert!(read.contains("four, live") && !read.contains("five"), "{read}");
    assert!(read.contains("(you are not in this group any more)"), "{read}");
    let (success, _, err) = tether(&carol, &["send", "Ski trip", "let me back"]);
    assert!(!success && err.contains("not in “Ski trip” any more"), "{err}");

    // info: members, admins, who is who (and carol's reading sent alice nothing).
    let (success, info, err) = tether(&alice, &["group", "info", "Ski trip"]);
    assert!(success && !err.contains("receipt"), "{info}{err}");
    assert!(info.contains(&format!("id       {id}")), "{info}");
    assert!(info.contains("members  2 (you are an admin)"), "{info}");
    assert!(info.lines().any(|l| l.contains("alice (you)") && l.trim_end().ends_with("admin")), "{info}");
    assert!(info.lines().any(|l| l.contains("bob") && l.contains("Bob") && !l.contains("admin")), "{info}");
    assert!(!info.contains("carol"), "{info}");
    let info = ok(&carol, &["group", "info", "Ski trip"]);
    assert!(info.contains("you are not in it any more"), "{info}");

    // alice makes bob an admin; now he may rename; the list shows it.
    let out = ok(&alice, &["group", "admin", "Ski trip", "bob"]);
    assert!(out.contains("bob is now an admin of “Ski trip”."), "{out}");
    let out = ok(&bob, &["group", "rename", "Ski trip", "Ski trip 2026"]);
    assert!(out.contains("Renamed “Ski trip” to “Ski trip 2026”."), "{out}");
    let list = ok(&alice, &["group", "list"]);
    assert!(list.contains("Ski trip 2026") && list.contains(&id) && list.contains("admin"), "{list}");
    let out = ok(&alice, &["group", "admin", "Ski trip 2026", "bob", "--remove"]);
    assert!(out.contains("bob is no longer an admin"), "{out}");
    let out = ok(&bob, &["group", "leave", "Ski trip 2026"]);
    assert!(out.contains("You left “Ski trip 2026”."), "{out}");
    let info = ok(&alice, &["group", "info", &id]);
    assert!(info.contains("members  1") && !info.contains("bob"), "{info}");
}

#[test]
fn a_name_two_groups_share_is_refused_with_their_ids_and_a_contact_handle_wins_over_a_group_name() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let (alice, bob, _carol) = three(dir.path(), &server);
    ok(&bob, &["contacts", "add", "alice"]);

    let first = created_id(&ok(&alice, &["group", "create", "Book club", "-m", "bob"]));
    let out = ok(&alice, &["group", "create", "Book club", "--members", "bob,carol"]);
    assert!(out.contains("Another group is called that too"), "{out}");
    let second = created_id(&out);

    for args in [&["send", "Book club", "hi"][..], &["read", "book club"], &["group", "info", "Book club"]] {
        let (success, _, err) = tether(&alice, args);
        assert!(!success, "{args:?} picked one of two groups");
        assert!(err.to_lowercase().contains("“book club” names 2 groups; name one by its id"), "{err}");
        assert!(err.contains(&first) && err.contains(&second), "{err}");
    }
    // By id (whole, 8 digits, g:…) each is found.
    ok(&alice, &["send", &first, "to the first"]);
    ok(&alice, &["send", &format!("g:{}", &second[..10]), "to the second"]);
    assert!(ok(&alice, &["read", &first[..8]]).contains("to the first"));
    let read = ok(&bob, &["read", &second]);
    assert!(read.contains("to the second") && !read.contains("to the first"), "{read}");

    // A group called like a contact: the contact wins; the group by id.
    let out = ok(&alice, &["group", "create", "bob", "--members", "bob"]);
    assert!(out.contains("bob is also a contact's handle"), "{out}");
    let group = created_id(&out);
    let (success, out, err) = tether(&alice, &["send", "bob", "just to bob"]);
    assert!(success && out.contains("Sent to bob."), "{out}{err}");
    assert!(err.contains(&format!("the group “bob” is `{group}`")), "{err}");
    assert!(ok(&bob, &["read", "alice"]).contains("just to bob"));
    assert!(!ok(&bob, &["read", &group]).contains("just to bob"));

    // Unknown names and contacts say what to do.
    let (success, _, err) = tether(&alice, &["send", "Chess club", "hi"]);
    assert!(!success && err.contains("no group called “Chess club”") && err.contains("group list"), "{err}");
    let (success, _, err) = tether(&alice, &["group", "create", "Chess", "--members", "dave"]);
    assert!(!success && err.contains("unknown contact dave") && err.contains("contacts add dave"), "{err}");
    let (success, _, err) = tether(&alice, &["group", "add", &first, "dave"]);
    assert!(!success && err.contains("unknown contact dave"), "{err}");
    let (success, _, err) = tether(&alice, &["group", "add", &first, "bob"]);
    assert!(!success && err.contains("bob is already in “Book club”"), "{err}");
}
