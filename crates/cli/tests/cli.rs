//! The real `tether` binary against a spawned `tether-server`, as a user
//! would run them: two homes, register, contacts, send, listen --json,
//! restart, linking a companion from a QR screenshot.

mod common;

use common::*;
use futures_util::{SinkExt, StreamExt};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;
use tether_client::store::MemoryStore;
use tether_client::{ClientInfo, Engine, Event, Random};
use tokio_tungstenite::tungstenite::Message;

#[test]
fn register_add_contact_send_and_listen_json_with_the_real_binaries() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let (alice, bob) = (dir.path().join("alice"), dir.path().join("bob"));

    let out = ok(&alice, &["register", "alice", "--server", &server.url]);
    assert!(out.contains("Registered alice") && out.contains("fingerprint"), "{out}");
    ok(&bob, &["register", "+4915112345678", "--server", &server.url]);
    let out = ok(&alice, &["contacts", "add", "+4915112345678", "--name", "Bob"]);
    assert!(out.contains("Added +4915112345678 (Bob)"), "{out}");
    let (success, _, err) = tether(&alice, &["contacts", "add", "nobody_here"]);
    assert!(!success && err.contains("no account"), "{err}");

    ok(&alice, &["send", "+4915112345678", "plaintext-marker-7c1e over the wire"]);
    ok(
        &alice,
        &["share", "+4915112345678", "https://example.org/page", "--title", "A page", "--text", "selected words"],
    );

    // Bob listens with --json: one object a line.
    let mut listen = Command::new(TETHER)
        .arg("--data")
        .arg(&bob)
        .args(["listen", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(listen.stdout.take().unwrap()).lines();
    // Bob never added alice: her messages are message requests.
    let mut got = Vec::new();
    while got.len() < 2 {
        let line = lines.next().expect("listen prints messages").unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).expect("one JSON object a line");
        assert_ne!(v["event"], "message", "a stranger's message is not a chat message: {v}");
        if v["event"] == "request" {
            got.push(v);
        }
    }
    assert_eq!(got[1]["count"], 2);
    assert_eq!(got[0]["from"], "alice");
    assert_eq!(got[0]["kind"], "text");
    assert_eq!(got[0]["text"], "plaintext-marker-7c1e over the wire");
    assert_eq!(got[1]["kind"], "link");
    assert_eq!(got[1]["url"], "https://example.org/page");
    assert_eq!(got[1]["selection"], "selected words");
    // A message sent while bob listens arrives live.
    ok(&alice, &["send", "+4915112345678", "live one"]);
    loop {
        let v: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
        if v["event"] == "request" {
            assert_eq!(v["text"], "live one");
            break;
        }
    }
    listen.kill().unwrap();
    listen.wait().unwrap();

    let chats = ok(&bob, &["chats"]);
    assert!(!chats.contains("alice"), "requests are not chats: {chats}");
    let requests = ok(&bob, &["requests"]);
    assert!(requests.contains("alice") && requests.contains("3 messages"), "{requests}");
    assert!(requests.contains("plaintext-marker-7c1e"), "the first message's preview: {requests}");
    let mine = ok(&alice, &["read", "+4915112345678"]);
    assert!(!mine.contains("✓✓"), "no receipt reaches a requester: {mine}");
    let out = ok(&bob, &["accept", "alice"]);
    assert!(out.contains("Accepted alice"), "{out}");
    assert!(ok(&bob, &["requests"]).contains("No message requests"));
    let chats = ok(&bob, &["chats"]);
    assert!(chats.contains("alice") && chats.contains("(3 unread)"), "{chats}");
    let read = ok(&bob, &["read", "alice"]);
    assert!(read.contains("plaintext-marker-7c1e") && read.contains("A page <https://example.org/page>"), "{read}");
    let chats = ok(&bob, &["chats"]);
    assert!(!chats.contains("unread"), "reading clears the count: {chats}");
    let mine = ok(&alice, &["read", "+4915112345678"]);
    assert!(mine.contains("✓✓ read"), "alice sees the read receipt: {mine}");

    // Errors say what to do.
    let (success, _, err) = tether(&alice, &["send", "carol", "hi"]);
    assert!(!success && err.contains("unknown contact carol") && err.contains("contacts add"), "{err}");
    let (success, _, err) = tether(&dir.path().join("new"), &["send", "alice", "hi"]);
    assert!(!success && err.contains("not registered") && err.contains("tether register"), "{err}");

    // Neither the server's database nor its debug log holds plaintext.
    let mut stored = Vec::new();
    for f in std::fs::read_dir(dir.path().join("server")).unwrap() {
        let path = f.unwrap().path();
        if path.is_file() {
            stored.extend(std::fs::read(path).unwrap());
        }
    }
    stored.extend(std::fs::read(&server.log).unwrap());
    for needle in ["plaintext-marker-7c1e", "example.org", "selected words", "live one"] {
        assert!(
            !stored.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "`{needle}` found in the server's files or logs"
        );
    }
}

#[test]
fn state_survives_restarts_and_the_outbox_is_resent() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let (alice, bob) = register_alice_and_bob(dir.path(), &server);
    ok(&alice, &["contacts", "add", "bob"]);
    ok(&bob, &["contacts", "add", "alice"]);
    ok(&alice, &["send", "bob", "first"]);
    let addr = server.addr().to_string();
    server.kill(); // the server goes away

    // Written while the server is down: kept in the outbox.
    let (success, _, err) = tether(&alice, &["send", "bob", "while you were out"]);
    assert!(!success && err.contains("cannot reach"), "{err}");
    assert!(err.contains("queued") && err.contains("Do not send it again"), "{err}");
    let status = ok(&alice, &["status"]);
    assert!(status.contains("outbox: 1"), "{status}");

    // The server comes back on the same data, same address.
    let restarted = Server::start_at(dir.path(), &addr);
    restarted.wait_healthy();
    // Any command that connects sends the outbox; sessions continue.
    ok(&alice, &["chats"]);
    assert!(ok(&alice, &["status"]).contains("outbox: 0"));
    let read = ok(&bob, &["read", "alice"]);
    assert!(read.contains("first") && read.contains("while you were out"), "{read}");
    ok(&bob, &["send", "alice", "got both"]);
    let read = ok(&alice, &["read", "bob"]);
    assert!(read.contains("got both") && !read.contains("could not be decrypted"), "{read}");
}

/// A stranger's messages wait as a request; block and report drop
/// everything after, unblock lets the next one in as a new request.
#[test]
fn requests_block_unblock_and_report_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let (alice, bob) = register_alice_and_bob(dir.path(), &server);
    ok(&alice, &["contacts", "add", "bob"]);
    ok(&alice, &["send", "bob", "hello \u{1b}[31mstranger\u{1b}[0m"]);
    ok(&alice, &["send", "bob", "still there?"]);
    let requests = ok(&bob, &["requests"]);
    assert!(requests.contains("alice") && requests.contains("2 messages") && requests.contains("hello stranger"), "{requests}");
    assert!(!requests.contains('\u{1b}') && !requests.contains("[31m"), "escape sequences are stripped whole: {requests:?}");

    let out = ok(&bob, &["block", "alice"]);
    assert!(out.contains("Blocked alice"), "{out}");
    ok(&alice, &["send", "bob", "let me in"]);
    assert!(ok(&bob, &["requests"]).contains("No message requests"));
    assert!(!ok(&bob, &["chats"]).contains("alice"));
    let blocked = ok(&bob, &["requests", "--blocked"]);
    assert!(blocked.contains("alice") && blocked.contains("blocked"), "{blocked}");

    ok(&bob, &["unblock", "alice"]);
    assert!(ok(&bob, &["requests", "--blocked"]).contains("Nobody is blocked"));
    ok(&alice, &["send", "bob", "second try"]);
    let requests = ok(&bob, &["requests"]);
    assert!(requests.contains("1 message ") && requests.contains("second try"), "{requests}");

    let out = ok(&bob, &["report", "alice"]);
    assert!(out.contains("Reported and blocked alice"), "{out}");
    assert!(ok(&bob, &["requests", "--blocked"]).contains("reported as spam"));
    assert!(ok(&bob, &["requests"]).contains("No message requests"));
    let (success, _, err) = tether(&bob, &["decline", "alice"]);
    assert!(!success && err.contains("no message request"), "{err}");
}

struct OsRandom;
impl Random for OsRandom {
    fn fill(&mut self, buf: &mut [u8]) {
        getrandom::fill(buf).unwrap();
    }
}

/// A companion (the engine, as the extension will run it) shows a QR; its
/// PNG goes through `tether link qr.png --yes`; the companion gets the
/// history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linking_a_companion_from_a_qr_png() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let (alice, bob) = register_alice_and_bob(dir.path(), &server);
    ok(&bob, &["contacts", "add", "alice"]);
    ok(&alice, &["contacts", "add", "bob"]);
    ok(&bob, &["send", "alice", "history before linking"]);
    ok(&alice, &["read", "bob"]);

    let info =
        ClientInfo { client_version: "test".into(), platform: "chrome/linux".into(), name: "Chrome on Linux".into() };
    let mut companion = Engine::open(Box::new(MemoryStore::default()), Box::new(OsRandom), info).unwrap();
    let now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    companion.start_link(&server.url, false, now()).unwrap();
    let ws_url = server.url.replace("http://", "ws://") + "/v1/ws";
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
    companion.handle_connected(now());
    let mut uri = None;
    let mut linked = false;
    let mut imported = 0;
    let mut linker: Option<std::thread::JoinHandle<(bool, String, String)>> = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while tokio::time::Instant::now() < deadline && !(linked && imported > 0) {
        while let Some(t) = companion.poll_transmit() {
            ws.send(Message::Binary(t.into())).await.unwrap();
        }
        while let Some(e) = companion.poll_event() {
            match e {
                Event::LinkCode { uri: u, .. } if uri.is_none() => uri = Some(u),
                // "Linked to @alice: is this you?" Yes.
                Event::ConfirmAccount { handle } if handle == "alice" => companion.confirm_account(true, now()).unwrap(),
                Event::Linked { .. } => linked = true,
                Event::HistoryImported { messages, .. } => imported += messages,
                _ => {}
            }
        }
        if let (Some(u), None) = (&uri, &linker) {
            let code = qrcode::QrCode::new(u.as_bytes()).unwrap();
            let png = dir.path().join("qr.png");
            code.render::<image::Luma<u8>>().min_dimensions(400, 400).build().save(&png).unwrap();
            let home = alice.clone();
            linker = Some(std::thread::spawn(move || tether(&home, &["link", png.to_str().unwrap(), "--yes"])));
        }
        if let Ok(Some(Ok(Message::Binary(b)))) = tokio::time::timeout(Duration::from_millis(100), ws.next()).await {
            companion.handle_message(&b, now());
        }
    }
    assert!(linked, "the companion was linked");
    assert_eq!(companion.messages("bob").len(), 1, "history arrived");
    let (success, out, err) = linker.unwrap().join().unwrap();
    assert!(success && out.contains("Linked Chrome on Linux as device 1"), "{out}\n{err}");
    let devices = ok(&alice, &["devices"]);
    assert!(devices.contains("chrome/linux") && devices.contains("Chrome on Linux"), "{devices}");
    let out = ok(&alice, &["unlink", "1"]);
    assert!(out.contains("logged out"), "{out}");
    assert!(!ok(&alice, &["devices"]).contains("chrome/linux"));
}
