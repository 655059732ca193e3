//! The recovery phrase with the real binaries: `tether register` prints it,
//! `tether recovery-phrase` shows it again, and after the data directory is
//! lost `tether restore` (phrase on standard input) brings the account back;
//! messages flow both ways and the old copy of the data is logged out.

mod common;

use common::*;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// Runs `tether --data home args…` with `input` on standard input.
fn tether_with_input(home: &Path, args: &[&str], input: &str) -> (bool, String, String) {
    let mut child = Command::new(TETHER)
        .arg("--data")
        .arg(home)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The words of the numbered phrase block `tether register` prints.
fn phrase_from_register(out: &str) -> Vec<String> {
    let block = out.split("they restore your account:").nth(1).expect("register prints the phrase");
    block
        .lines()
        .skip(1)
        .take(6)
        .flat_map(|l| l.split_whitespace().filter(|t| !t.ends_with('.')).map(str::to_string).collect::<Vec<_>>())
        .collect()
}

#[test]
fn register_shows_the_phrase_and_restore_brings_the_account_back() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let (alice, bob) = (dir.path().join("alice"), dir.path().join("bob"));

    let out = ok(&alice, &["register", "alice", "--server", &server.url]);
    assert!(out.contains("Registered alice") && out.contains("write these 24 words down"), "{out}");
    let words = phrase_from_register(&out);
    assert_eq!(words.len(), 24, "{out}");
    let plain = ok(&alice, &["recovery-phrase", "--plain"]);
    assert_eq!(plain.trim(), words.join(" "), "recovery-phrase shows the same words");
    let quiet = ok(&bob, &["register", "bob", "--server", &server.url, "--no-phrase"]);
    assert!(!quiet.contains("24 words"), "{quiet}");
    ok(&alice, &["contacts", "add", "bob", "--name", "Bob"]);
    ok(&bob, &["contacts", "add", "alice", "--name", "Alice"]);
    ok(&alice, &["send", "bob", "before the loss"]);
    assert!(ok(&bob, &["read", "alice"]).contains("before the loss"));

    // Alice's computer loses its data; a copy of the old data stays behind
    // (the lost phone) to see it logged out.
    let old = dir.path().join("alice-old");
    std::fs::create_dir_all(&old).unwrap();
    for e in std::fs::read_dir(&alice).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), old.join(e.file_name())).unwrap();
    }
    std::fs::remove_dir_all(&alice).unwrap();

    // A typo is refused before anything is sent, naming the word.
    let mut typo = words.clone();
    typo[2] = "zzzz".into();
    let (success, _, err) = tether_with_input(&alice, &["restore", "alice", "--server", &server.url], &typo.join(" "));
    assert!(!success && err.contains("word 3 is not a recovery-phrase word"), "{err}");
    // The phrase comes in on standard input, never on the command line.
    let (success, out, err) =
        tether_with_input(&alice, &["restore", "alice", "--server", &server.url], &format!("{}\n", words.join(" ")));
    assert!(success, "{out}\n{err}");
    assert!(out.contains("Restored @alice on this computer; your other devices were logged out."), "{out}");
    assert_eq!(ok(&alice, &["recovery-phrase", "--plain"]).trim(), words.join(" "));

    // Messages flow both ways with the restored primary.
    ok(&alice, &["contacts", "add", "bob", "--name", "Bob"]);
    ok(&bob, &["send", "alice", "after the restore"]);
    assert!(ok(&alice, &["read", "bob"]).contains("after the restore"));
    ok(&alice, &["send", "bob", "back again"]);
    assert!(ok(&bob, &["read", "alice"]).contains("back again"));
    let contacts = ok(&bob, &["contacts"]);
    assert!(!contacts.contains('⚠'), "no key change for bob: {contacts}");

    // The old data learns it was logged out, and says why.
    let _ = tether(&old, &["chats"]);
    let (success, _, err) = tether(&old, &["chats"]);
    assert!(!success && err.contains("restored on another device"), "{err}");
}
