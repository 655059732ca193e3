//! Trust on the command line (issue 9): safety numbers with `tether
//! verify` (finding 5 and its acceptance item), peer text that cannot
//! drive the terminal (finding 13).

mod common;

use common::*;
use std::path::Path;

/// The 60 digits `tether verify` printed.
fn number(out: &str) -> String {
    let digits: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("    "))
        .flat_map(|l| l.split_whitespace())
        .filter(|g| g.len() == 5 && g.chars().all(|c| c.is_ascii_digit()))
        .collect();
    assert_eq!(digits.len(), 12, "12 groups of 5 digits: {out}");
    digits.join(" ")
}

/// The `tether://verify#…` code `tether verify` printed.
fn code(out: &str) -> String {
    out.lines().find_map(|l| l.strip_prefix("Code: ")).expect("the code is printed").to_string()
}

/// The code as a PNG, as a screenshot of the other side's screen would be.
fn png(text: &str, path: &Path) {
    let code = qrcode::QrCode::new(text.as_bytes()).unwrap();
    code.render::<image::Luma<u8>>().min_dimensions(300, 300).build().save(path).unwrap();
}

/// The acceptance item: two CLI accounts print the same safety number;
/// after one re-registers with a new key, sending to it is refused until
/// the new key is accepted, and the verified state is gone.
#[test]
fn two_accounts_print_the_same_safety_number_and_a_re_registered_contact_is_refused_until_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let (alice, bob) = register_alice_and_bob(dir.path(), &server);
    ok(&alice, &["contacts", "add", "bob", "--name", "Bob"]);
    ok(&bob, &["contacts", "add", "alice", "--name", "Alice"]);

    let a = ok(&alice, &["verify", "bob"]);
    let b = ok(&bob, &["verify", "alice"]);
    assert_eq!(number(&a), number(&b), "one number for the pair");
    assert!(a.contains("Not verified"), "{a}");
    assert!(ok(&alice, &["contacts"]).contains("unverified"));

    // Alice scans a picture of bob's screen; bob's own code is no match for bob.
    let bobs = dir.path().join("bob-code.png");
    png(&code(&b), &bobs);
    let out = ok(&alice, &["verify", "bob", "--scan", bobs.to_str().unwrap()]);
    assert!(out.contains("matches") && out.contains("verified"), "{out}");
    let (success, _, err) = tether(&bob, &["verify", "alice", "--scan", bobs.to_str().unwrap()]);
    assert!(!success && err.contains("not alice's safety number"), "{err}");
    // Bob compared the digits by phone.
    ok(&bob, &["verify", "alice", "--confirm"]);
    assert!(ok(&alice, &["verify", "bob"]).contains("✓ Verified"));
    let list = ok(&alice, &["contacts"]);
    assert!(list.lines().any(|l| l.starts_with("bob") && l.contains("✓ verified")), "{list}");
    ok(&alice, &["send", "bob", "before"]);

    // Bob loses his phone: the server forgets his account, and he
    // registers the same handle again, with a new account key.
    let addr = server.addr().to_string();
    server.kill();
    let db = rusqlite::Connection::open(dir.path().join("server").join("tether.db")).unwrap();
    for table in ["envelopes", "prekeys", "devices", "accounts"] {
        db.execute(&format!("DELETE FROM {table} WHERE handle = 'bob'"), []).unwrap();
    }
    drop(db);
    let server = Server::start_at(dir.path(), &addr);
    server.wait_healthy();
    ok(&bob, &["logout", "--yes"]);
    ok(&bob, &["register", "bob", "--server", &server.url]);
    ok(&bob, &["contacts", "add", "alice"]);

    // Alice's send is refused: his key changed.
    let (success, out, err) = tether(&alice, &["send", "bob", "to the new key?"]);
    assert!(!success, "refused: {out}");
    assert!(err.contains("account key changed") && err.contains("contacts trust bob"), "{err}");
    let list = ok(&alice, &["contacts"]);
    let row = list.lines().find(|l| l.starts_with("bob")).unwrap();
    assert!(row.contains("unverified") && row.contains("account key changed"), "the verified state is gone: {list}");
    let (success, _, err) = tether(&alice, &["verify", "bob", "--confirm"]);
    assert!(!success && err.contains("accept their new key"), "{err}");
    // Still refused on the next try.
    let (success, _, _) = tether(&alice, &["send", "bob", "again?"]);
    assert!(!success);
    let read = ok(&bob, &["read", "alice"]);
    assert!(!read.contains("new key?") && !read.contains("could not be decrypted"), "nothing was encrypted to the old keys: {read}");

    // Alice checks with bob and accepts: the held messages go; he is unverified, with a new number.
    ok(&alice, &["contacts", "trust", "bob"]);
    let a2 = ok(&alice, &["verify", "bob"]);
    assert!(a2.contains("Not verified"), "{a2}");
    assert_ne!(number(&a2), number(&a), "a new key, a new number");
    assert_eq!(number(&a2), number(&ok(&bob, &["verify", "alice"])));
    let list = ok(&alice, &["contacts"]);
    assert!(list.lines().any(|l| l.starts_with("bob") && l.contains("unverified") && !l.contains("⚠")), "{list}");
    ok(&alice, &["send", "bob", "after accepting"]);
    let read = ok(&bob, &["read", "alice"]);
    assert!(read.contains("after accepting") && read.contains("to the new key?"), "{read}");
}

/// A message and a contact name full of escape sequences (clear screen,
/// retitle the window, colours, a bell) print as plain text.
#[test]
fn peer_text_cannot_drive_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let (alice, bob) = register_alice_and_bob(dir.path(), &server);
    ok(&bob, &["contacts", "add", "alice"]); // so alice's message is not a request
    ok(&alice, &["contacts", "add", "bob", "--name", "Bob\u{1b}[2J"]);
    ok(&alice, &["send", "bob", "\u{1b}[2J\u{1b}[Hcleared\u{1b}]0;pwned\u{7} \u{1b}[31mred\u{9b}1m\u{7}"]);
    for out in [ok(&bob, &["read", "alice"]), ok(&bob, &["chats"]), ok(&alice, &["contacts"])] {
        assert!(!out.contains('\u{1b}') && !out.contains('\u{7}') && !out.contains('\u{9b}'), "{out:?}");
    }
    let read = ok(&bob, &["read", "alice"]);
    assert!(read.contains("cleared red"), "{read:?}");
}
